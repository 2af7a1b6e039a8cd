//! Phi-3 (mlx-lm `phi3`, also Phi-3.5 and Phi-4-mini): one fused `qkv_proj`, one fused
//! `gate_up_proj`, head_dim `hidden / heads`, RoPE over `partial_rotary_factor` of each head,
//! LongRoPE (`longrope` / `su`: mlx-lm's `SuScaledRoPE`) or linear scaling when the config says.
use serde::Deserialize;

use super::{
    composed::{layer_plans, AttentionShape, Blueprint, LayerPlan},
    layers::{attention::Scores, mlp::GateActivation, rope::RopeSpec},
};
use crate::{
    config::ModelConfig,
    error::{Error, Result},
};

/// The keys mlx-lm's `phi3.ModelArgs` reads beyond the common ones, with its defaults.
#[derive(Debug, Deserialize)]
pub struct ModelArgs {
    #[serde(default = "default_partial_rotary_factor")]
    pub partial_rotary_factor: f64,
    #[serde(default = "default_original_max_position_embeddings")]
    pub original_max_position_embeddings: usize,
}

fn default_partial_rotary_factor() -> f64 {
    1.0
}

fn default_original_max_position_embeddings() -> usize {
    4096
}

/// mlx-lm's choice of RoPE for Phi-3: `SuScaledRoPE` for `longrope`/`su`, `nn.RoPE` scaled by
/// `1 / factor` for `linear`, plain `nn.RoPE` without `rope_scaling`.
fn rope(c: &ModelConfig, args: &ModelArgs, dims: usize) -> Result<RopeSpec> {
    let base = c.rope_theta.unwrap_or(10_000.0);
    let Some(scaling) = &c.rope_scaling else {
        return Ok(RopeSpec::Standard { dims, base, traditional: c.rope_traditional, scaling: None });
    };
    let invalid = |detail: String| Error::InvalidOption(format!("phi3 config.json: rope_scaling {detail}"));
    let (Some(kind), Some(long_factor)) = (scaling.rope_type.as_deref(), &scaling.long_factor) else {
        return Err(invalid("must contain keys type and long_factor (as mlx-lm requires)".into()));
    };
    match kind {
        "longrope" | "su" => Ok(RopeSpec::SuScaled {
            dims,
            base,
            max_position_embeddings: c.max_position_embeddings.unwrap_or(131_072),
            original_max_position_embeddings: args.original_max_position_embeddings,
            long_factor: long_factor.clone(),
        }),
        "linear" => Ok(RopeSpec::Standard { dims, base, traditional: c.rope_traditional, scaling: Some(scaling.clone()) }),
        other => Err(invalid(format!("type {other:?} is not supported (longrope, su, linear; mlx-lm drops any other with a warning)"))),
    }
}

pub fn blueprint(c: &ModelConfig) -> Result<Blueprint> {
    let args: ModelArgs = c.keys()?;
    let head_dim = c.hidden_per_head();
    let shape = AttentionShape::of(c, head_dim);
    let rope = rope(c, &args, (head_dim as f64 * args.partial_rotary_factor) as usize)?;
    let layers = layer_plans(c, |_, p| LayerPlan {
        norms: p.pre_norms(c.hidden_size),
        attention: p.attention(shape, true, false, shape.default_scale(), Scores::Fused, rope.clone()),
        feed_forward: p.gated_mlp(c.hidden_size, c.intermediate_size, true, GateActivation::Silu),
        window: None,
    });
    Ok(Blueprint::new(c, layers, c.tie_word_embeddings.unwrap_or(false)))
}
