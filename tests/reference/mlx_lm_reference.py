"""Python reference for mlxbench's parity tests, driven by Apple's mlx-lm.

The Rust tests (``tests/common/reference.rs``) call this script with the interpreter of the venv
``.ci/setup`` makes for the MLX the Rust build links, ``target/pyref-<MLX version>`` (or
``$MLXBENCH_REFERENCE_PYTHON``), whose ``mx.__version__`` must be that version. Every call names
the device first: ``--device cpu|gpu`` becomes MLX's default device before any MLX work (the
Rust side runs on the same one: in a Metal build RMSNorm, RoPE and attention are fused kernels on
the GPU and basic ops on the CPU). Each subcommand prints one JSON object to stdout holding
``"device"`` (the type of ``mx.default_device()`` after the work: ``cpu`` or ``gpu``) and
``"mlx_version"``; all logging goes to stderr. The subcommands:

``make --arch ARCH --bits BITS --out DIR [--seed N]``
    Writes a tiny random-weight model in MLX format using mlx-lm's own model classes,
    quantizer and save helpers (``config.json``, ``model.safetensors``,
    ``model.safetensors.index.json``), plus a byte-level BPE ``tokenizer.json`` trained
    offline on text embedded below and a ``tokenizer_config.json``. ARCH is one of
    ARCHES (llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3, mixtral,
    qwen3_moe); BITS is none, 4 or 8. Weights are float32, seeded, and scaled so that
    greedy decoding does not collapse onto one token; the command fails if it does. It
    prints ``{"probe_distinct": N, ...}``, or ``{"probe_error": "TypeError: ..."}`` where
    mlx-lm cannot run the model it wrote: mlx-lm 0.32.1 and later pass ``global_scale`` to
    ``mx.gather_qmm`` in quantized mixtral and qwen3_moe, which MLX 0.32.2 lacks (0.32.3 has it).

``run --cases CASES.json``
    Runs ``mlx_lm.generate.generate_step`` greedily for each case of a JSON list of
    ``{"model": DIR, "prompt_ids": [...], "max_tokens": 32, "kv_bits": null|4|8,
    "kv_group_size": 64, "quantized_kv_start": 0, "max_kv_size": null|N,
    "prefill_step_size": 2048}`` (missing keys take the values shown; a max_kv_size
    gives every layer a ``RotatingKVCache(max_kv_size, keep=4)``) and prints
    ``{"results": [...]}``, one object per case:
    ``{"tokens": [...], "first_logprobs": [...], "last_logprobs": [...],
    "top2_gaps": [...]}`` (the full-vocabulary log-probabilities the first and last
    tokens were picked from, and per generated token the log-probability margin of the
    best token over the runner-up: random models have near ties, where a tiny numerical
    difference may flip a greedy pick), or ``{"error": "..."}`` where mlx-lm itself
    rejects the case's settings (or, as above, cannot run the model). A model whose
    ``make_cache`` gives sliding-window layers rotating caches (gemma3_text) keeps those,
    ignoring max_kv_size as ``generate_step`` does.

``dot --model DIR --prompt-ids JSON --out PATH [--kv-bits B]``
    Writes the graph of mlx-lm's first decode step after prefilling the prompt as DOT (what
    ``mx.export_to_dot`` writes), so a test can compare its primitives with ours; prints
    ``{"out": PATH}``, or ``{"error": "TypeError: ..."}`` where mlx-lm cannot build the step.
    (Speed side by side is ``mlxbench run --engine mlxbench,mlx-lm``.)

``device``
    Only reports the device and the MLX version: what a test of the ``--device`` flag needs.

``make`` also takes ``--override JSON`` (config keys, e.g. a real model's shape) and
``--dtype`` (float32, float16, bfloat16) to write timing models.
"""

import argparse
import contextlib
import functools
import importlib
import json
import sys
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten, tree_unflatten
from mlx_lm.generate import generate_step
from mlx_lm.generate import maybe_quantize_kv_cache
from mlx_lm.models.cache import RotatingKVCache, make_prompt_cache
from mlx_lm.sample_utils import greedy_sampler
from mlx_lm.utils import load_model, quantize_model, save_config, save_model
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

VOCAB_SIZE = 1024
EOS_TOKEN = "<|endoftext|>"
GROUP_SIZE = 64

# Shapes shared by every architecture: small enough for a 2-core CPU, with head_dim 64
# so mlx-lm's quantized KV cache (group size 64) applies.
BASE_CONFIG = {
    "vocab_size": VOCAB_SIZE,
    "hidden_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "intermediate_size": 512,
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": 4096,
}

# Per-architecture config keys (as a Hugging Face config.json spells them) and the
# mlx_lm.models module that implements each.
ARCHES = {
    "llama": (
        "llama",
        {
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "tie_word_embeddings": False,
            "rope_theta": 500000.0,
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 512,
            },
        },
    ),
    "mistral": (
        "llama",
        {
            "model_type": "mistral",
            "architectures": ["MistralForCausalLM"],
            "tie_word_embeddings": False,
            "rope_theta": 1000000.0,
        },
    ),
    "qwen2": (
        "qwen2",
        {
            "model_type": "qwen2",
            "architectures": ["Qwen2ForCausalLM"],
            "tie_word_embeddings": True,
            "rope_theta": 1000000.0,
        },
    ),
    "qwen3": (
        "qwen3",
        {
            "model_type": "qwen3",
            "architectures": ["Qwen3ForCausalLM"],
            "tie_word_embeddings": False,
            "rope_theta": 1000000.0,
        },
    ),
    # Gemma 2: tied embeddings, soft-capped attention and logits, a query scale from
    # query_pre_attn_scalar (not head_dim). mlx-lm's gemma2 ignores sliding_window: every layer
    # attends to the whole cache.
    "gemma2": (
        "gemma2",
        {
            "model_type": "gemma2",
            "architectures": ["Gemma2ForCausalLM"],
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "query_pre_attn_scalar": 128,
            "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0,
            "sliding_window": 8,
        },
    ),
    # Gemma 3 text: layer 0 of each SLIDING_PATTERN is global, the others slide over an 8-token
    # window (prompts of 20 and 40 tokens are longer), with their own RoPE base; the global
    # layers' RoPE is linearly scaled as in the 4B-27B checkpoints.
    "gemma3_text": (
        "gemma3_text",
        {
            "model_type": "gemma3_text",
            "architectures": ["Gemma3ForCausalLM"],
            "num_hidden_layers": 3,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "rope_local_base_freq": 10000.0,
            "rope_scaling": {"rope_type": "linear", "factor": 8.0},
            "query_pre_attn_scalar": 128,
            "sliding_window": 8,
            "sliding_window_pattern": 3,
        },
    ),
    # Phi-3 (Phi-3.5 / Phi-4-mini style): fused qkv_proj and gate_up_proj, LongRoPE
    # ("longrope", a.k.a. "su") with per-frequency factors, a partial rotary dimension.
    "phi3": (
        "phi3",
        {
            "model_type": "phi3",
            "architectures": ["Phi3ForCausalLM"],
            "tie_word_embeddings": False,
            "rope_theta": 10000.0,
            "partial_rotary_factor": 0.75,
            "max_position_embeddings": 16384,
            "original_max_position_embeddings": 1024,
            "rope_scaling": {
                "type": "longrope",
                "long_factor": [1.0 + 0.25 * i for i in range(24)],
                "short_factor": [1.0] * 24,
            },
        },
    ),
    # Mixtral: 4 experts, 2 per token, top-k then softmax over the chosen gates.
    "mixtral": (
        "mixtral",
        {
            "model_type": "mixtral",
            "architectures": ["MixtralForCausalLM"],
            "tie_word_embeddings": False,
            "rope_theta": 1000000.0,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
            "intermediate_size": 256,
        },
    ),
    # Qwen3-MoE: 8 experts, 2 per token, softmax then top-k renormalized; layer 1 is a dense
    # MLP (mlp_only_layers). mlx-lm's quant_predicate keeps the routers at 8 bits.
    "qwen3_moe": (
        "qwen3_moe",
        {
            "model_type": "qwen3_moe",
            "architectures": ["Qwen3MoeForCausalLM"],
            "tie_word_embeddings": False,
            "rope_theta": 1000000.0,
            "num_experts": 8,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": 128,
            "decoder_sparse_step": 1,
            "mlp_only_layers": [1],
            "norm_topk_prob": True,
        },
    ),
}

# Layer that the 4-bit qwen3 model keeps at 8 bits, to exercise per-layer quantization.
QWEN3_8BIT_LAYER = "model.layers.0.mlp.down_proj"

# Init scales: linear weights ~ N(0, (LINEAR_GAIN / sqrt(fan_in))^2),
# embeddings ~ N(0, EMBED_STD^2), norm weights ~ 1 + N(0, NORM_NOISE^2),
# biases ~ N(0, BIAS_STD^2). With tied embeddings (qwen2) a large EMBED_STD makes the
# input token's own embedding dominate the logits, so greedy decoding repeats it.
LINEAR_GAIN = 2.0
EMBED_STD = 0.25
# Gemma multiplies embeddings by sqrt(hidden_size) (16 here) and ties them to the head, so a
# smaller table keeps greedy decoding varied.
EMBED_STD_BY_ARCH = {"gemma2": 0.02, "gemma3_text": 0.02}
# mlx-lm's gemma3_text always builds an lm_head and ties only when a checkpoint has none (as the
# published ones): `make` drops it so the reference is tied like them.
TIED_BY_DROPPING_HEAD = {"gemma3_text"}
NORM_NOISE = 0.1
BIAS_STD = 0.5

# Greedy decoding check run by `make`: from the first PROBE_PROMPT_LEN tokens of
# TOKENIZER_TEXT, PROBE_NEW_TOKENS greedy tokens must hold at least PROBE_MIN_DISTINCT ids.
PROBE_PROMPT_LEN = 20
PROBE_NEW_TOKENS = 32
PROBE_MIN_DISTINCT = 8

# Training text for the BPE tokenizer (written for this project).
TOKENIZER_TEXT = """\
The lighthouse keeper climbed the spiral stairs every evening to wind the clock and polish
the great lens. From the gallery she could see fishing boats returning to the harbour, their
lanterns swinging as the swell rolled under them. In winter the storms came from the west,
and the whole tower hummed like a struck bell while rain hammered against the windows.

A bakery on the corner opens before sunrise. The baker mixes flour, water, salt and a little
yeast, folds the dough, and leaves it to rise in wicker baskets lined with linen. By six
o'clock the shelves hold crusty loaves, cinnamon buns, almond croissants and small rye rolls
that neighbours buy on their way to the station.

Mountains shape the weather of the valley below. Warm air rises along the slopes, cools,
and forms clouds that gather over the peaks by early afternoon. Hikers who start at dawn
usually reach the ridge before thunder begins; those who linger at the lake often hurry
down through hail, counting the seconds between lightning and the echo.

Computers store numbers as patterns of bits. A floating point value keeps a sign, an
exponent and a fraction, which lets it cover tiny and enormous magnitudes with limited
precision. Quantization trades some of that precision for memory: groups of weights share
a scale and an offset, and each weight becomes a small integer of four or eight bits.

The library was quiet except for the ticking radiator and the occasional turning of a page.
Students bent over history books, maps of ancient trade routes, and thick dictionaries of
forgotten languages. A librarian wheeled a squeaky cart between the shelves, returning
novels, atlases, poetry collections and biographies of explorers to their places.

Gardening rewards patience. Tomatoes need sunshine, steady watering and strong stakes;
beans climb anything they can reach; lettuce bolts when July turns hot. Compost made from
kitchen scraps, fallen leaves and grass clippings feeds the soil, and earthworms do the
quiet work of mixing it deep into the beds.

Trains crossed the continent in four days. Passengers watched wheat fields give way to
forests, then deserts, then snowy passes where the engine slowed to a crawl. At night the
dining car served soup, roasted vegetables and apple pie, and strangers traded stories
about the cities they were leaving and the jobs waiting for them.

Music theory describes how notes relate to one another. A major scale follows a pattern of
whole and half steps; chords stack thirds; rhythm divides time into beats and measures.
Yet a good melody often surprises the listener, bending a rule just enough to feel both
familiar and new, like a river that changes its course after a flood.

Honeybees communicate through dance. A forager returning to the hive performs a waggle
run whose angle points toward the flowers relative to the sun and whose length signals the
distance. Her sisters follow her movements, taste the nectar she carries, and fly out to
find the same meadow of clover, thyme or lavender.

The old bridge was built from granite blocks quarried upstream and floated down on rafts.
Engineers measured the current, sank wooden piles into the riverbed, and raised arches
wide enough for barges to pass beneath. Two centuries later it still carries cyclists,
delivery vans, school children and the occasional stubborn goat.

Chess players study openings, tactics and endgames. A knight fork attacks two pieces at
once; a pin freezes a defender in place; a quiet pawn move can decide a game many turns
later. Grandmasters calculate deeply, but they also rely on judgement, recognising
patterns from thousands of games played and reviewed.

Volcanoes build islands one eruption at a time. Lava cools into black rock, storms grind
it into sand, and seeds carried by birds or ocean currents take root in the cracks. Within
a few decades ferns, mosses and palms cover slopes that were once bare and smoking, and
crabs scuttle along beaches that did not exist before.
"""


def train_tokenizer():
    """Train a byte-level BPE tokenizer on TOKENIZER_TEXT with at most VOCAB_SIZE ids.

    Returns the `tokenizers.Tokenizer`; its end-of-sequence token is EOS_TOKEN.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TOKENIZER_TEXT.splitlines(keepends=True), trainer)
    if tokenizer.get_vocab_size() > VOCAB_SIZE:
        raise RuntimeError(f"tokenizer vocab {tokenizer.get_vocab_size()} > {VOCAB_SIZE}")
    return tokenizer


def model_config(arch, eos_token_id, overrides=None):
    """Return (mlx_lm.models module name, config.json dict) for ARCH.

    qwen2's config has no head_dim, as in real Qwen2 checkpoints: mlx-lm derives it
    from hidden_size / num_attention_heads (also 64 here). OVERRIDES (a dict) replaces
    any keys, e.g. to write a real model's shape for speed comparisons.
    """
    module_name, arch_keys = ARCHES[arch]
    config = dict(BASE_CONFIG, **arch_keys, eos_token_id=eos_token_id)
    config.update(overrides or {})
    if arch == "qwen2":
        del config["head_dim"]
    return module_name, config


def random_weights(model, seed, embed_std=EMBED_STD):
    """Return seeded random float32 weights for every parameter of MODEL.

    The scales are deliberately larger than a trained model's init so that random
    models still produce varied greedy continuations (see the module constants).
    """
    params = sorted(tree_flatten(model.parameters()), key=lambda kv: kv[0])
    keys = mx.random.split(mx.random.key(seed), len(params))
    weights = []
    for (name, value), key in zip(params, keys):
        noise = mx.random.normal(value.shape, dtype=mx.float32, key=key)
        if name.endswith("norm.weight"):
            w = 1.0 + NORM_NOISE * noise
        elif name.endswith("embed_tokens.weight"):
            w = embed_std * noise
        elif name.endswith(".bias"):
            w = BIAS_STD * noise
        elif name.endswith(".weight") and value.ndim in (2, 3):
            # Linear layers and stacked experts [E, out, in] alike: fan-in is the last axis.
            w = (LINEAR_GAIN / value.shape[-1] ** 0.5) * noise
        else:
            raise ValueError(f"no init rule for parameter {name} {value.shape}")
        weights.append((name, w))
    return tree_unflatten(weights)


def qwen3_mixed_predicate(path, module):
    """quant_predicate keeping QWEN3_8BIT_LAYER at 8 bits; everything else gets defaults."""
    if path == QWEN3_8BIT_LAYER:
        return {"group_size": GROUP_SIZE, "bits": 8, "mode": "affine"}
    return True


def greedy_tokens(model, prompt_ids, max_tokens):
    """Return the ids mlx-lm's greedy generate_step produces for PROMPT_IDS."""
    prompt = mx.array(prompt_ids, dtype=mx.uint32)
    steps = generate_step(prompt, model, max_tokens=max_tokens, sampler=greedy_sampler)
    return [token for token, _ in steps]


def make(arch, bits, out, seed, overrides=None, dtype="float32"):
    """Write the model directory OUT for ARCH at BITS ("none", "4" or "8") from SEED.

    With OVERRIDES (config keys) the greedy probe only reports: deep random models of real
    shapes are for timing, not parity. DTYPE casts the weights before quantization. Returns
    what the greedy probe found (see the module docstring).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tokenizer()
    eos_token_id = tokenizer.token_to_id(EOS_TOKEN)
    module_name, config = model_config(arch, eos_token_id, overrides)

    module = importlib.import_module(f"mlx_lm.models.{module_name}")
    model = module.Model(module.ModelArgs.from_dict(config))
    model.update(random_weights(model, seed, EMBED_STD_BY_ARCH.get(arch, EMBED_STD)))
    if arch in TIED_BY_DROPPING_HEAD:
        model.pop("lm_head")
        model.tie_word_embeddings = True
    if dtype != "float32":
        model.set_dtype(getattr(mx, dtype))
    mx.eval(model.parameters())

    if bits != "none":
        predicate = qwen3_mixed_predicate if (arch, bits) == ("qwen3", "4") else None
        # quantize_model reports bits per weight on stdout; keep stdout for results.
        with contextlib.redirect_stdout(sys.stderr):
            model, config = quantize_model(
                model, config, GROUP_SIZE, int(bits), quant_predicate=predicate
            )

    save_model(out, model)
    save_config(config, out / "config.json")
    tokenizer.save(str(out / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": EOS_TOKEN,
        "add_bos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": config["max_position_embeddings"],
    }
    with open(out / "tokenizer_config.json", "w") as f:
        json.dump(tokenizer_config, f, indent=2)

    loaded, _ = load_model(out)
    prompt_ids = tokenizer.encode(TOKENIZER_TEXT).ids[:PROBE_PROMPT_LEN]
    try:
        generated = greedy_tokens(loaded, prompt_ids, PROBE_NEW_TOKENS)
    except TypeError as e:
        # mlx-lm's quantized mixtures of experts on an MLX without gather_qmm's global_scale.
        print(f"{out}: mlx-lm cannot run the model it wrote: {e}", file=sys.stderr)
        return {"probe_error": f"{type(e).__name__}: {e}"}
    distinct = len(set(generated))
    print(f"{out}: greedy probe gave {distinct} distinct of {len(generated)}", file=sys.stderr)
    if distinct < PROBE_MIN_DISTINCT and not overrides:
        raise SystemExit(f"{out}: greedy decoding is degenerate: {generated}")
    return {"probe_distinct": distinct, "probe_tokens": len(generated)}


def run_case(model, case):
    """Run one case with mlx-lm's generate_step and return its result object."""
    # The model's own caches (its make_cache, else a plain KVCache per layer). A model whose
    # make_cache slides some layers over a window (gemma3_text) keeps them, as generate_step
    # does, ignoring max_kv_size; otherwise max_kv_size gives every layer mlx-lm's
    # RotatingKVCache(max_kv_size, keep=4). (mlx-lm 0.32.2's llama also defines make_cache, for
    # its sliding-window variants, so generate_step would ignore max_kv_size for it too.)
    prompt_cache = make_prompt_cache(model)
    max_kv_size = case.get("max_kv_size")
    if max_kv_size is not None and not any(isinstance(c, RotatingKVCache) for c in prompt_cache):
        prompt_cache = [RotatingKVCache(max_size=max_kv_size, keep=4) for _ in model.layers]
    steps = generate_step(
        mx.array(case["prompt_ids"], dtype=mx.uint32),
        model,
        max_tokens=case.get("max_tokens", 32),
        sampler=greedy_sampler,
        prompt_cache=prompt_cache,
        prefill_step_size=case.get("prefill_step_size", 2048),
        kv_bits=case.get("kv_bits"),
        kv_group_size=case.get("kv_group_size", GROUP_SIZE),
        quantized_kv_start=case.get("quantized_kv_start", 0),
    )
    tokens, gaps, first, last = [], [], None, None
    try:
        for token, logprobs in steps:
            tokens.append(token)
            best_two = mx.topk(logprobs, 2)
            gaps.append((best_two.max() - best_two.min()).item())
            if first is None:
                first = logprobs
            last = logprobs
    except (NotImplementedError, TypeError) as e:
        # mlx-lm cannot quantize a RotatingKVCache (kv_bits with max_kv_size, or Gemma 3's
        # sliding layers: NotImplementedError), nor run Gemma 2's attention on a quantized cache
        # (TypeError).
        return {"error": f"{type(e).__name__}: {e}"}
    except RuntimeError as e:
        # A backend without a kernel for the setting (MLX's CUDA backend has no quantized_matmul
        # for attention over a quantized KV cache): reported, and the next case runs.
        if "No implementation for" not in str(e):
            raise
        return {"error": f"{type(e).__name__}: {e}"}
    return {
        "tokens": tokens,
        "first_logprobs": first.tolist() if first is not None else [],
        "last_logprobs": last.tolist() if last is not None else [],
        "top2_gaps": gaps,
    }


def run(cases_path):
    """Run every case of CASES_PATH and return ``{"results": [...]}``."""
    with open(cases_path) as f:
        cases = json.load(f)
    loaded = {}
    results = []
    for i, case in enumerate(cases):
        model_dir = case["model"]
        if model_dir not in loaded:
            loaded[model_dir], _ = load_model(Path(model_dir))
        results.append(run_case(loaded[model_dir], case))
        print(f"case {i}: {model_dir} done", file=sys.stderr)
    return {"results": results}


def step_graph(model_dir, prompt_ids, kv_bits, out):
    """Write the graph of mlx-lm's first decode step as DOT to OUT, not evaluated.

    As ``generate_step`` does it: all prompt tokens but the last prefilled into a fresh cache
    (quantized as ``maybe_quantize_kv_cache`` would, evaluated), then the ops of its ``_step`` on
    the last token: the model call, the last position, the cache's quantization, the
    log-probabilities ``logits - logsumexp(logits)`` and the greedy pick. Returns ``{"out": OUT}``,
    or ``{"error": ...}`` where mlx-lm cannot build the step.
    """
    model, _ = load_model(Path(model_dir))
    cache = make_prompt_cache(model)
    quantize = functools.partial(
        maybe_quantize_kv_cache, quantized_kv_start=0, kv_group_size=GROUP_SIZE, kv_bits=kv_bits
    )
    prompt = mx.array(prompt_ids, dtype=mx.uint32)
    try:
        model(prompt[:-1][None], cache=cache)
    except TypeError as e:
        # As in `make`: a quantized mixture of experts on an MLX without global_scale.
        return {"error": f"{type(e).__name__}: {e}"}
    quantize(cache)
    mx.eval([c.state for c in cache])
    logits = model(prompt[-1:][None], cache=cache)[:, -1, :]
    quantize(cache)
    logprobs = logits - mx.logsumexp(logits, keepdims=True)
    sampled = greedy_sampler(logprobs)
    mx.export_to_dot(out, sampled, logprobs.squeeze(0))
    return {"out": str(out)}


def use_device(name):
    """Make NAME ("cpu" or "gpu") MLX's default device; a missing GPU backend ends the script."""
    try:
        mx.set_default_device(getattr(mx, name))
    except ValueError as e:
        raise SystemExit(f"--device {name}: {e}")


def main():
    """Parse the command line, choose the device, dispatch, and print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", required=True, choices=["cpu", "gpu"],
                        help="MLX's default device for all the work (the Rust side's device)")
    sub = parser.add_subparsers(dest="command", required=True)
    make_p = sub.add_parser("make", help="write a random-weight MLX model directory")
    make_p.add_argument("--arch", required=True, choices=sorted(ARCHES))
    make_p.add_argument("--bits", required=True, choices=["none", "4", "8"])
    make_p.add_argument("--out", required=True)
    make_p.add_argument("--seed", type=int, default=0)
    make_p.add_argument("--override", type=json.loads, default=None,
                        help="JSON object of config keys to replace (e.g. a real model's shape)")
    make_p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    run_p = sub.add_parser("run", help="run greedy generation cases through mlx-lm")
    run_p.add_argument("--cases", required=True)
    dot_p = sub.add_parser("dot", help="write the graph of one decode step as DOT")
    dot_p.add_argument("--model", required=True)
    dot_p.add_argument("--prompt-ids", required=True, type=json.loads)
    dot_p.add_argument("--kv-bits", type=int, default=None, choices=[4, 8])
    dot_p.add_argument("--out", required=True)
    sub.add_parser("device", help="only report the device and the MLX version")
    args = parser.parse_args()
    use_device(args.device)
    if args.command == "make":
        result = make(args.arch, args.bits, args.out, args.seed, args.override, args.dtype)
    elif args.command == "dot":
        result = step_graph(args.model, args.prompt_ids, args.kv_bits, args.out)
    elif args.command == "run":
        result = run(args.cases)
    else:
        result = {}
    # The device the work ran on, read back from MLX rather than echoed from the flag.
    result.update(device=mx.default_device().type.name, mlx_version=mx.__version__)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
