//! Shapes of real checkpoints, as their Hugging Face `config.json` spells them, for synthetic
//! models. A named preset belongs to one architecture and implies it; `tiny` exists for every
//! architecture (llama unless told otherwise) and writes in well under a second.
use serde_json::{json, Value};

use super::Arch;
use crate::error::{Error, Result};

/// Every preset name `preset_config` accepts.
pub const PRESETS: &[&str] = &[
    "tiny",
    "llama-3.2-1b",
    "llama-3.2-3b",
    "llama-3.1-8b",
    "qwen2.5-0.5b",
    "qwen3-0.6b",
    "qwen3-4b",
    "mistral-7b",
    "gemma-2-2b",
    "gemma-3-1b",
    "phi-3-mini",
    "mixtral-8x7b",
    "qwen3-30b-a3b",
];

/// Llama 3.x RoPE frequency smoothing (`factor` 32 for 3.2, 8 for 3.1).
fn llama3_scaling(factor: f64) -> Value {
    json!({
        "rope_type": "llama3",
        "factor": factor,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    })
}

/// meta-llama/Llama-3.x: GQA with 8 KV heads, vocabulary 128256, RoPE base 500000.
fn llama3(
    hidden: u32,
    intermediate: u32,
    layers: u32,
    heads: u32,
    head_dim: Option<u32>,
    factor: f64,
    tied: bool,
) -> Value {
    let mut config = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "rope_scaling": llama3_scaling(factor),
        "max_position_embeddings": 131072,
        "tie_word_embeddings": tied,
        "attention_bias": false,
        "mlp_bias": false,
    });
    if let Some(head_dim) = head_dim {
        config["head_dim"] = json!(head_dim);
    }
    config
}

/// Qwen/Qwen3-*: explicit head_dim 128 with a per-head q/k norm, vocabulary 151936.
fn qwen3(hidden: u32, intermediate: u32, layers: u32, heads: u32) -> Value {
    json!({
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "hidden_act": "silu",
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "max_position_embeddings": 40960,
        "tie_word_embeddings": true,
        "attention_bias": false,
    })
}

/// A few seconds' worth of model on a CPU: hidden 256, 2 layers, 4 query and 2 KV heads of
/// head_dim 64 (so a KV cache quantizes with group size 32 or 64), vocabulary 512 (the synthetic
/// tokenizer's size). Every input size is a multiple of 128, so all matrices quantize. The
/// mixture-of-experts ones have 8 experts of width 128, 2 per token; Gemma 3's first layer
/// slides over 16 tokens, its second is global.
fn tiny(arch: Arch) -> Value {
    let mut config = json!({
        "model_type": arch.model_type(),
        "hidden_act": "silu",
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 64,
        "vocab_size": 512,
        "max_position_embeddings": 4096,
    });
    let keys = match arch {
        Arch::Llama => json!({
            "architectures": ["LlamaForCausalLM"],
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "rope_scaling": llama3_scaling(32.0),
            "tie_word_embeddings": false,
            "attention_bias": false,
            "mlp_bias": false,
        }),
        Arch::Mistral => json!({
            "architectures": ["MistralForCausalLM"],
            "rms_norm_eps": 1e-5,
            "rope_theta": 1000000.0,
            "tie_word_embeddings": false,
        }),
        // Qwen2 configs carry no head_dim: it is hidden / heads (64 here).
        Arch::Qwen2 => json!({
            "architectures": ["Qwen2ForCausalLM"],
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "tie_word_embeddings": true,
            "head_dim": null,
        }),
        Arch::Qwen3 => json!({
            "architectures": ["Qwen3ForCausalLM"],
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "tie_word_embeddings": true,
            "attention_bias": false,
        }),
        Arch::Gemma2 => json!({
            "architectures": ["Gemma2ForCausalLM"],
            "hidden_act": "gelu_pytorch_tanh",
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "query_pre_attn_scalar": 64,
            "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0,
            "sliding_window": 4096,
        }),
        Arch::Gemma3Text => json!({
            "architectures": ["Gemma3ForCausalLM"],
            "hidden_act": "gelu_pytorch_tanh",
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "rope_local_base_freq": 10000.0,
            "query_pre_attn_scalar": 64,
            "sliding_window": 16,
            "sliding_window_pattern": 2,
        }),
        Arch::Phi3 => json!({
            "architectures": ["Phi3ForCausalLM"],
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "original_max_position_embeddings": 4096,
            "tie_word_embeddings": false,
            "head_dim": null,
        }),
        Arch::Mixtral => json!({
            "architectures": ["MixtralForCausalLM"],
            "rms_norm_eps": 1e-5,
            "rope_theta": 1000000.0,
            "intermediate_size": 128,
            "num_local_experts": 8,
            "num_experts_per_tok": 2,
            "tie_word_embeddings": false,
            "head_dim": null,
        }),
        Arch::Qwen3Moe => json!({
            "architectures": ["Qwen3MoeForCausalLM"],
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "num_experts": 8,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": 128,
            "decoder_sparse_step": 1,
            "mlp_only_layers": [],
            "norm_topk_prob": true,
            "tie_word_embeddings": false,
        }),
    };
    let object = config.as_object_mut().expect("a JSON object literal");
    for (key, value) in keys.as_object().expect("a JSON object literal") {
        match value {
            Value::Null => object.remove(key),
            _ => object.insert(key.clone(), value.clone()),
        };
    }
    config
}

/// The architecture and Hugging Face config of a named (non-`tiny`) preset.
fn named(name: &str) -> Option<(Arch, Value)> {
    Some(match name {
        "llama-3.2-1b" => (Arch::Llama, llama3(2048, 8192, 16, 32, Some(64), 32.0, true)),
        "llama-3.2-3b" => (Arch::Llama, llama3(3072, 8192, 28, 24, Some(128), 32.0, true)),
        "llama-3.1-8b" => (Arch::Llama, llama3(4096, 14336, 32, 32, None, 8.0, false)),
        "qwen2.5-0.5b" => (
            Arch::Qwen2,
            json!({
                "architectures": ["Qwen2ForCausalLM"],
                "model_type": "qwen2",
                "hidden_act": "silu",
                "hidden_size": 896,
                "intermediate_size": 4864,
                "num_hidden_layers": 24,
                "num_attention_heads": 14,
                "num_key_value_heads": 2,
                "vocab_size": 151936,
                "rms_norm_eps": 1e-6,
                "rope_theta": 1000000.0,
                "max_position_embeddings": 32768,
                "sliding_window": 32768,
                "use_sliding_window": false,
                "max_window_layers": 24,
                "tie_word_embeddings": true,
            }),
        ),
        "qwen3-0.6b" => (Arch::Qwen3, qwen3(1024, 3072, 28, 16)),
        "qwen3-4b" => (Arch::Qwen3, qwen3(2560, 9728, 36, 32)),
        // mistralai/Mistral-7B-v0.3: v0.1's shapes with a 32768-token vocabulary, RoPE base 1e6
        // and no sliding window.
        "mistral-7b" => (
            Arch::Mistral,
            json!({
                "architectures": ["MistralForCausalLM"],
                "model_type": "mistral",
                "hidden_act": "silu",
                "hidden_size": 4096,
                "intermediate_size": 14336,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "vocab_size": 32768,
                "rms_norm_eps": 1e-5,
                "rope_theta": 1000000.0,
                "max_position_embeddings": 32768,
                "sliding_window": null,
                "tie_word_embeddings": false,
            }),
        ),
        // google/gemma-2-2b.
        "gemma-2-2b" => (
            Arch::Gemma2,
            json!({
                "architectures": ["Gemma2ForCausalLM"],
                "model_type": "gemma2",
                "hidden_act": "gelu_pytorch_tanh",
                "hidden_activation": "gelu_pytorch_tanh",
                "hidden_size": 2304,
                "intermediate_size": 9216,
                "num_hidden_layers": 26,
                "num_attention_heads": 8,
                "num_key_value_heads": 4,
                "head_dim": 256,
                "vocab_size": 256000,
                "rms_norm_eps": 1e-6,
                "rope_theta": 10000.0,
                "query_pre_attn_scalar": 256,
                "attn_logit_softcapping": 50.0,
                "final_logit_softcapping": 30.0,
                "sliding_window": 4096,
                "cache_implementation": "hybrid",
                "max_position_embeddings": 8192,
                "attention_bias": false,
            }),
        ),
        // google/gemma-3-1b-pt.
        "gemma-3-1b" => (
            Arch::Gemma3Text,
            json!({
                "architectures": ["Gemma3ForCausalLM"],
                "model_type": "gemma3_text",
                "hidden_activation": "gelu_pytorch_tanh",
                "hidden_size": 1152,
                "intermediate_size": 6912,
                "num_hidden_layers": 26,
                "num_attention_heads": 4,
                "num_key_value_heads": 1,
                "head_dim": 256,
                "vocab_size": 262144,
                "rms_norm_eps": 1e-6,
                "rope_theta": 1000000.0,
                "rope_local_base_freq": 10000.0,
                "rope_scaling": null,
                "query_pre_attn_scalar": 256,
                "sliding_window": 512,
                "sliding_window_pattern": 6,
                "attn_logit_softcapping": null,
                "final_logit_softcapping": null,
                "cache_implementation": "hybrid",
                "max_position_embeddings": 32768,
                "attention_bias": false,
            }),
        ),
        // microsoft/Phi-3-mini-4k-instruct.
        "phi-3-mini" => (
            Arch::Phi3,
            json!({
                "architectures": ["Phi3ForCausalLM"],
                "model_type": "phi3",
                "hidden_act": "silu",
                "hidden_size": 3072,
                "intermediate_size": 8192,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 32,
                "vocab_size": 32064,
                "rms_norm_eps": 1e-5,
                "rope_theta": 10000.0,
                "rope_scaling": null,
                "max_position_embeddings": 4096,
                "original_max_position_embeddings": 4096,
                "sliding_window": 2047,
                "tie_word_embeddings": false,
                "attention_bias": false,
            }),
        ),
        // mistralai/Mixtral-8x7B-v0.1.
        "mixtral-8x7b" => (
            Arch::Mixtral,
            json!({
                "architectures": ["MixtralForCausalLM"],
                "model_type": "mixtral",
                "hidden_act": "silu",
                "hidden_size": 4096,
                "intermediate_size": 14336,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "num_local_experts": 8,
                "num_experts_per_tok": 2,
                "vocab_size": 32000,
                "rms_norm_eps": 1e-5,
                "rope_theta": 1000000.0,
                "max_position_embeddings": 32768,
                "sliding_window": null,
                "tie_word_embeddings": false,
            }),
        ),
        // Qwen/Qwen3-30B-A3B.
        "qwen3-30b-a3b" => (
            Arch::Qwen3Moe,
            json!({
                "architectures": ["Qwen3MoeForCausalLM"],
                "model_type": "qwen3_moe",
                "hidden_act": "silu",
                "hidden_size": 2048,
                "intermediate_size": 6144,
                "moe_intermediate_size": 768,
                "num_hidden_layers": 48,
                "num_attention_heads": 32,
                "num_key_value_heads": 4,
                "head_dim": 128,
                "num_experts": 128,
                "num_experts_per_tok": 8,
                "decoder_sparse_step": 1,
                "mlp_only_layers": [],
                "norm_topk_prob": true,
                "vocab_size": 151936,
                "rms_norm_eps": 1e-6,
                "rope_theta": 1000000.0,
                "rope_scaling": null,
                "max_position_embeddings": 40960,
                "tie_word_embeddings": false,
                "attention_bias": false,
            }),
        ),
        _ => return None,
    })
}

/// The Hugging Face `config.json` of preset `name` (see [`PRESETS`]). A named preset implies its
/// architecture: `arch` may be left out, and naming another architecture is an error. `tiny`
/// takes any architecture and defaults to llama.
pub fn preset_config(name: &str, arch: Option<Arch>) -> Result<Value> {
    if name == "tiny" {
        return Ok(tiny(arch.unwrap_or(Arch::Llama)));
    }
    let (preset_arch, config) = named(name)
        .ok_or_else(|| Error::InvalidOption(format!("unknown preset {name:?}; presets: {}", PRESETS.join(", "))))?;
    match arch {
        Some(asked) if asked != preset_arch => Err(Error::InvalidOption(format!(
            "preset {name} is a {} model, not {}: leave the architecture out or pick a {} preset",
            preset_arch.model_type(),
            asked.model_type(),
            asked.model_type(),
        ))),
        _ => Ok(config),
    }
}
