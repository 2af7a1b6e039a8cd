//! Qwen2 / Qwen2.5: biases on the q/k/v projections, RoPE base 1e6.
use super::transformer::DecoderSpec;
use crate::{config::ModelConfig, error::Result};

/// mlx-lm `qwen2.ModelArgs`: head_dim is always hidden/heads, tied embeddings by default.
pub fn spec(c: &ModelConfig) -> Result<DecoderSpec> {
    Ok(DecoderSpec {
        hidden_size: c.hidden_size,
        layers: c.num_hidden_layers,
        heads: c.num_attention_heads,
        kv_heads: c.n_kv_heads(),
        head_dim: c.hidden_size / c.num_attention_heads,
        intermediate_size: c.intermediate_size,
        vocab_size: c.vocab_size,
        rms_norm_eps: c.rms_norm_eps,
        qkv_bias: true,
        o_bias: false,
        mlp_bias: false,
        qk_norm: false,
        tie_word_embeddings: c.tie_word_embeddings.unwrap_or(true),
        rope_theta: c.rope_theta.unwrap_or(1_000_000.0),
        rope_traditional: c.rope_traditional,
        rope_scaling: c.rope_scaling.clone(),
        max_position_embeddings: c.max_position_embeddings,
    })
}
