//! Qwen2 / Qwen2.5: biases on the q/k/v projections, RoPE base 1e6.
use super::transformer::DecoderSpec;
use crate::{config::ModelConfig, error::Result};

/// mlx-lm `qwen2.ModelArgs`: head_dim is always hidden/heads, q/k/v (not o) have biases, the MLP
/// none, tied embeddings by default.
pub fn spec(c: &ModelConfig) -> Result<DecoderSpec> {
    Ok(DecoderSpec {
        head_dim: c.hidden_per_head(),
        qkv_bias: true,
        o_bias: false,
        mlp_bias: false,
        ..DecoderSpec::from_config(c, 1_000_000.0)
    })
}
