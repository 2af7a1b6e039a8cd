//! Llama (1–3.x, with Llama 3 `rope_scaling`); Mistral is the same architecture.
use super::transformer::DecoderSpec;
use crate::{config::ModelConfig, error::Result};

/// mlx-lm `llama.ModelArgs` defaults: RoPE base 10000, tied embeddings unless told otherwise,
/// biases as `attention_bias` / `mlp_bias` say.
pub fn spec(c: &ModelConfig) -> Result<DecoderSpec> {
    Ok(DecoderSpec {
        hidden_size: c.hidden_size,
        layers: c.num_hidden_layers,
        heads: c.num_attention_heads,
        kv_heads: c.n_kv_heads(),
        head_dim: c.head_dim(),
        intermediate_size: c.intermediate_size,
        vocab_size: c.vocab_size,
        rms_norm_eps: c.rms_norm_eps,
        qkv_bias: c.attention_bias,
        o_bias: c.attention_bias,
        mlp_bias: c.mlp_bias,
        qk_norm: false,
        tie_word_embeddings: c.tie_word_embeddings.unwrap_or(true),
        rope_theta: c.rope_theta.unwrap_or(10000.0),
        rope_traditional: c.rope_traditional,
        rope_scaling: c.rope_scaling.clone(),
        max_position_embeddings: c.max_position_embeddings,
    })
}
