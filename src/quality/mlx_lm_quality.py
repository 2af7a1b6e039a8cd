"""mlxbench's mlx-lm side of `mlxbench quality`: the same teacher-forced scoring and greedy runs as
src/quality/mod.rs, through Apple's mlx-lm and its own caches (`make_prompt_cache`, KVCache's
`to_quantized` as `maybe_quantize_kv_cache` calls it, RotatingKVCache(max_kv_size, keep=4) for
max_kv_size, given by hand as tests/reference does: make_prompt_cache ignores it for llama), so the
quality numbers of both engines come from one definition of each metric (src/quality/metrics.rs).

mlxbench starts this script with the chosen Python, writes one JSON request on stdin and reads
JSON lines on stdout:
  request: {"model": DIR, "tokens": [ids], "depths": [D], "n_score": N, "n_generate": G,
            "prefill_step_size": S, "out_dir": DIR,
            "settings": [{"kv_bits": B|null, "kv_group_size": 64, "quantized_kv_start": Q,
                          "max_kv_size": K|null}]}   (settings[0] is the plain cache, the
            baseline; a later plain setting reruns from its prefill)
  replies: {"loaded": true}, then one line per (depth, setting):
           {"depth": D, "setting": i, "rows_file": PATH, "greedy": [ids]} or
           {"depth": D, "setting": i, "error": "one line"}; a fatal error: {"error": "one line"}.
A rows file holds N rows of float32 log-probabilities (little-endian, vocab values a row): row j
is the distribution after feeding tokens[D + j], teacher-forced, which predicts tokens[D + j + 1].

The prefill at a depth runs once with the plain cache in chunks of S tokens, as generate_step's
prefill does; a quantized setting whose whole depth fits one chunk starts from that plain cache
turned quantized, which is exactly what generate_step's `maybe_quantize_kv_cache` does after the
first chunk. Other settings (a rotating cache, a depth over S) run their own prefill.
"""

import json
import os
import sys


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def one_line(err):
    return " ".join(f"{type(err).__name__}: {err}".split())[:500]


def main():
    try:
        import mlx.core as mx
        from mlx_lm.generate import generate_step, maybe_quantize_kv_cache
        from mlx_lm.models.cache import RotatingKVCache, make_prompt_cache
        from mlx_lm.utils import load_model
    except Exception as err:
        reply({"error": f"cannot import mlx-lm in {sys.executable}: {one_line(err)}"})
        return
    req = json.loads(sys.stdin.readline())
    if req.get("device") == "cpu":
        mx.set_default_device(mx.cpu)
    from pathlib import Path

    model, _ = load_model(Path(req["model"]))
    reply({"loaded": True})
    tokens = req["tokens"]
    step = req["prefill_step_size"]
    n_score, n_generate = req["n_score"], req["n_generate"]

    def quantize(cache, s):
        maybe_quantize_kv_cache(cache, s["quantized_kv_start"], s["kv_group_size"], s["kv_bits"])

    def new_cache(s):
        # The model's own caches; a max_kv_size gives every layer RotatingKVCache(max, keep=4)
        # unless the model already slides some layers (as tests/reference/mlx_lm_reference.py).
        # make_prompt_cache alone would ignore max_kv_size for any model with a make_cache, and
        # mlx-lm 0.32.2's llama has one (for its sliding-window variants).
        cache = make_prompt_cache(model)
        if s["max_kv_size"] is not None and not any(isinstance(c, RotatingKVCache) for c in cache):
            cache = [RotatingKVCache(max_size=s["max_kv_size"], keep=4) for _ in model.layers]
        return cache

    def prefill(s, depth):
        cache = new_cache(s)
        for start in range(0, depth, step):
            chunk = mx.array(tokens[start : min(depth, start + step)], dtype=mx.uint32)[None]
            model(chunk, cache=cache)
            quantize(cache, s)
            mx.eval([c.state for c in cache])
        return cache

    def fresh(x):
        # New array objects: mlx-lm writes its caches with `keys[..., i:j, :] = k`, which rebinds
        # the Python array in place, so a snapshot must not share the objects.
        if isinstance(x, mx.array):
            return mx.array(x)
        if isinstance(x, (list, tuple)):
            return type(x)(fresh(v) for v in x)
        return x

    def snapshot(cache):
        out = []
        for c in cache:
            copy = type(c).from_state(fresh(c.state))
            meta = getattr(c, "meta_state", None)
            if meta:
                copy.meta_state = meta
            out.append(copy)
        return out

    def score(cache, s, depth):
        rows = []
        for j in range(n_score):
            logits = model(mx.array([[tokens[depth + j]]], dtype=mx.uint32), cache=cache)
            quantize(cache, s)
            last = logits[0, -1].astype(mx.float32)
            logprobs = last - mx.logsumexp(last, keepdims=True)
            mx.eval(logprobs, [c.state for c in cache])
            rows.append(logprobs)
        return mx.stack(rows)

    def greedy(cache, s, depth):
        prompt = mx.array([tokens[depth]], dtype=mx.uint32)
        out = []
        for token, _ in generate_step(
            prompt,
            model,
            max_tokens=n_generate,
            sampler=lambda lp: mx.argmax(lp, axis=-1),
            prompt_cache=cache,
            prefill_step_size=step,
            kv_bits=s["kv_bits"],
            kv_group_size=s["kv_group_size"],
            quantized_kv_start=s["quantized_kv_start"],
        ):
            out.append(int(token))
        return out

    settings = req["settings"]
    for depth in req["depths"]:
        plain = None
        for i, s in enumerate(settings):
            try:
                if i == 0:
                    plain = prefill(s, depth)
                    cache = snapshot(plain)
                elif s == settings[0] and plain is not None:
                    cache = snapshot(plain)
                elif s["kv_bits"] is not None and s["max_kv_size"] is None and 0 < depth <= step and s["quantized_kv_start"] <= depth and plain is not None:
                    cache = snapshot(plain)
                    quantize(cache, s)
                    mx.eval([c.state for c in cache])
                else:
                    cache = prefill(s, depth)
                fork = snapshot(cache)
                rows = score(cache, s, depth)
                path = os.path.join(req["out_dir"], f"rows-d{depth}-s{i}.f32")
                import numpy as np

                np.asarray(rows, dtype="<f4").tofile(path)
                reply({"depth": depth, "setting": i, "rows_file": path, "greedy": greedy(fork, s, depth)})
            except Exception as err:
                reply({"depth": depth, "setting": i, "error": one_line(err)})


if __name__ == "__main__":
    try:
        main()
    except Exception as err:
        reply({"error": one_line(err)})
