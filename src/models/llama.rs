//! Llama (1–3.x, with Llama 3 `rope_scaling`); Mistral is the same architecture.
use super::transformer::DecoderSpec;
use crate::{config::ModelConfig, error::Result};

/// mlx-lm `llama.ModelArgs`: RoPE base 10000, tied embeddings unless told otherwise, biases as
/// `attention_bias` / `mlp_bias` say.
pub fn spec(c: &ModelConfig) -> Result<DecoderSpec> {
    Ok(DecoderSpec::from_config(c, 10_000.0))
}
