"""mlxbench's mlx-lm engine: runs trials through Apple's mlx-lm (`load_model`, `generate_step`)
with mlxbench's trial protocol and timestamps, so `mlxbench run --engine mlxbench,mlx-lm` compares
the two engines on the same prompt ids, in the same run, under the same metric definitions.

mlxbench starts this script with the chosen Python and talks to it in JSON lines: one request on
stdin, one reply on stdout. Replies: {"ok": ...} or {"error": "one line"}. Requests:
  {"op": "hello", "device": "cpu"|"gpu"}  -> versions of mlx and mlx-lm, and the platform tag of
                                              the MLX backend wheel; selects the device
  {"op": "load", "model": DIR}             -> loads the model (replacing the previous one):
                                              load_ms, load_peak_memory_bytes
  {"op": "trial", "prompt": [ids], "depth": D, "n_generate": N, "prefill_step_size": S,
   "kv_bits": B|null, "kv_group_size": G, "quantized_kv_start": Q, "max_kv_size": K|null}
                                           -> timestamps (seconds from t = 0) and memory
  {"op": "load_draft", "model": DIR}       -> loads a draft model for speculative decoding
                                              (replacing the previous one): load_ms, ...
  {"op": "trial", ..., "num_draft_tokens": K} -> the same through mlx-lm's
                                              speculative_generate_step with the draft, and
                                              "from_draft" per token (no prefill time: that
                                              generator has no progress callback)
  {"op": "quit"}

Loading is mlx-lm's `load_model` (weights evaluated, as `load` does without the tokenizer: the
prompt ids come from mlxbench). A trial, as mlxbench's own (src/measure/trial.rs): a fresh cache; the first D prompt tokens run
into it untimed; MLX's buffer cache emptied and its peak counter reset; t = 0 once the rest of the
prompt is on the device; mlx-lm's generate_step then prefills all prompt tokens but the last in
chunks (prefill_done: its last progress call before the first token) and yields each token once it
is on the host (token_times).
"""

import json
import sys
import time
from pathlib import Path


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def one_line(err):
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text[:500]


def wheel_platform():
    """The platform tag of the installed MLX backend wheel (`macosx_26_0_arm64`), from its
    dist-info WHEEL file; None when MLX did not come from a wheel we know."""
    from importlib import metadata

    for name in ("mlx-metal", "mlx-cuda-13", "mlx-cuda-12", "mlx-cpu"):
        try:
            text = metadata.distribution(name).read_text("WHEEL") or ""
        except metadata.PackageNotFoundError:
            continue
        for line in text.splitlines():
            if line.startswith("Tag:"):
                parts = line.split(":", 1)[1].strip().split("-", 2)
                if len(parts) == 3:
                    return parts[2]
    return None


def main():
    try:
        import mlx.core as mx
        import mlx_lm
        from mlx_lm.generate import generate_step, speculative_generate_step
        from mlx_lm.models.cache import RotatingKVCache, make_prompt_cache
        from mlx_lm.utils import load_model
    except Exception as err:  # ImportError and whatever a broken install raises
        reply({"error": f"cannot import mlx-lm in {sys.executable}: {one_line(err)}"})
        return

    model = None
    draft = None
    stream = None

    def greedy(logprobs):
        return mx.argmax(logprobs, axis=-1)

    def caches_for(m, max_kv_size):
        # make_prompt_cache ignores max_kv_size for every model with its own make_cache (Llama,
        # Mistral, ...: mlx_lm.generate --max-kv-size is a no-op there), so that a bounded setting
        # measures mlx-lm's RotatingKVCache as ours does, it is given by hand, as tests/reference
        # and the quality script do; a model whose own caches already rotate keeps them.
        cache = make_prompt_cache(m, max_kv_size=max_kv_size)
        if max_kv_size is not None and not any(isinstance(c, RotatingKVCache) for c in cache):
            cache = [RotatingKVCache(max_size=max_kv_size, keep=4) for _ in m.layers]
        return cache

    def with_context(m, cache, ids, depth):
        # The first `depth` ids into the cache, untimed; the rest of the prompt on the device,
        # the buffer cache emptied and the peak reset: what a trial's t = 0 starts from.
        prompt = mx.array(ids, dtype=mx.uint32)
        if depth > 0:
            m(prompt[:depth][None], cache=cache)
            mx.eval([c.state for c in cache])
            prompt = prompt[depth:]
        mx.eval(prompt)
        mx.clear_cache()
        mx.reset_peak_memory()
        return prompt

    def trial(req):
        ids = req["prompt"]
        depth = req["depth"]
        mx.clear_cache()
        cache = caches_for(model, req["max_kv_size"])
        prompt = with_context(model, cache, ids, depth)
        prefill_done = [0.0]
        start = time.perf_counter()

        def progress(processed, total):
            if processed < total:
                prefill_done[0] = time.perf_counter() - start

        token_times = []
        tokens = []
        if req.get("num_draft_tokens"):
            return speculative_trial(req, ids, depth, cache)
        steps = generate_step(
            prompt,
            model,
            stream,
            max_tokens=req["n_generate"],
            sampler=greedy,
            prompt_cache=cache,
            prefill_step_size=req["prefill_step_size"],
            kv_bits=req["kv_bits"],
            kv_group_size=req["kv_group_size"],
            quantized_kv_start=req["quantized_kv_start"],
            prompt_progress_callback=progress,
        )
        for token, _ in steps:
            token_times.append(time.perf_counter() - start)
            tokens.append(int(token))
        return {
            "n_prompt": len(ids) - depth,
            "prefill_done": prefill_done[0],
            "token_times": token_times,
            "tokens": tokens,
            "peak_memory_bytes": mx.get_peak_memory(),
            "active_memory_bytes": mx.get_active_memory(),
            "cache_memory_bytes": mx.get_cache_memory(),
            "kv_cache_bytes": sum(c.nbytes for c in cache),
        }

    def speculative_trial(req, ids, depth, cache):
        # The target's cache came prefilled with the context above; the draft's gets the same.
        draft_cache = caches_for(draft, req["max_kv_size"])
        prompt = with_context(draft, draft_cache, ids, depth)
        start = time.perf_counter()
        token_times, tokens, from_draft = [], [], []
        steps = speculative_generate_step(
            prompt,
            model,
            draft,
            stream,
            num_draft_tokens=req["num_draft_tokens"],
            max_tokens=req["n_generate"],
            sampler=greedy,
            prompt_cache=cache + draft_cache,
            prefill_step_size=req["prefill_step_size"],
            kv_bits=req["kv_bits"],
            kv_group_size=req["kv_group_size"],
            quantized_kv_start=req["quantized_kv_start"],
        )
        for token, _, drafted in steps:
            token_times.append(time.perf_counter() - start)
            tokens.append(int(token))
            from_draft.append(bool(drafted))
        return {
            "n_prompt": len(ids) - depth,
            "prefill_done": 0.0,
            "token_times": token_times,
            "tokens": tokens,
            "from_draft": from_draft,
            "peak_memory_bytes": mx.get_peak_memory(),
            "active_memory_bytes": mx.get_active_memory(),
            "cache_memory_bytes": mx.get_cache_memory(),
            "kv_cache_bytes": sum(c.nbytes for c in cache + draft_cache),
        }

    for line in sys.stdin:
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "hello":
                mx.set_default_device(mx.cpu if req.get("device") == "cpu" else mx.gpu)
                # As mlx-lm's own generation_stream, on the chosen device.
                stream = mx.new_thread_local_stream(mx.default_device())
                reply({"ok": {"mlx_version": mx.__version__, "mlx_build": wheel_platform(),
                              "mlx_lm_version": mlx_lm.__version__}})
            elif op == "load":
                model = None
                mx.clear_cache()
                mx.reset_peak_memory()
                start = time.perf_counter()
                model, _ = load_model(Path(req["model"]))
                reply({"ok": {"load_ms": (time.perf_counter() - start) * 1e3,
                              "load_peak_memory_bytes": mx.get_peak_memory()}})
            elif op == "load_draft":
                draft = None
                mx.clear_cache()
                mx.reset_peak_memory()
                start = time.perf_counter()
                draft, _ = load_model(Path(req["model"]))
                reply({"ok": {"load_ms": (time.perf_counter() - start) * 1e3,
                              "load_peak_memory_bytes": mx.get_peak_memory()}})
            elif op == "trial":
                if model is None:
                    reply({"error": "no model loaded"})
                elif req.get("num_draft_tokens") and draft is None:
                    reply({"error": "no draft model loaded"})
                else:
                    reply({"ok": trial(req)})
            elif op == "quit":
                return
            else:
                reply({"error": f"unknown request {op!r}"})
        except Exception as err:
            reply({"error": one_line(err)})


if __name__ == "__main__":
    main()
