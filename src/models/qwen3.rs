//! Qwen3: RMS norm on each query and key head, no biases, explicit head_dim.
use super::transformer::DecoderSpec;
use crate::{
    config::ModelConfig,
    error::{Error, Result},
};

/// mlx-lm `qwen3.ModelArgs`: `head_dim`, `tie_word_embeddings` and `rope_theta` are required, the
/// last two possibly under `rope_parameters` (transformers >= 5).
pub fn spec(c: &ModelConfig) -> Result<DecoderSpec> {
    let missing = |key: &str| Error::InvalidOption(format!("qwen3 config.json lacks {key}"));
    let nested = c.rope_parameters.as_ref();
    Ok(DecoderSpec {
        head_dim: c.head_dim.ok_or_else(|| missing("head_dim"))?,
        qkv_bias: false,
        o_bias: false,
        mlp_bias: false,
        qk_norm: true,
        tie_word_embeddings: c.tie_word_embeddings.ok_or_else(|| missing("tie_word_embeddings"))?,
        rope_theta: c.rope_theta.or(nested.and_then(|p| p.rope_theta)).ok_or_else(|| missing("rope_theta"))?,
        rope_traditional: false,
        rope_scaling: c.rope_scaling.clone().or_else(|| nested.map(|p| p.scaling.clone())),
        ..DecoderSpec::from_config(c, 0.0)
    })
}
