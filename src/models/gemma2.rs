//! Gemma 2 (mlx-lm `gemma2`): Gemma's `1 + weight` RMS norms before and after both halves of each
//! block, a GELU-tanh gated MLP, embeddings scaled by `sqrt(hidden_size)` and tied to the head,
//! a query scale of `query_pre_attn_scalar^-1/2`, and soft-capped attention scores and logits.
//! mlx-lm's `gemma2` has no sliding window (it ignores `sliding_window`: every layer attends to
//! the whole cache) and no `make_cache`; so does this.
use serde::Deserialize;

use super::{
    composed::{layer_plans, AttentionShape, Blueprint, EmbedScale, LayerPlan},
    layers::{attention::Scores, mlp::GateActivation, rope::RopeSpec},
};
use crate::{
    config::ModelConfig,
    error::{Error, Result},
};

/// The keys mlx-lm's `gemma2.ModelArgs` reads beyond the common ones, with its defaults; a
/// soft-cap of `null` means none.
#[derive(Debug, Deserialize)]
pub struct ModelArgs {
    #[serde(default = "default_query_pre_attn_scalar")]
    pub query_pre_attn_scalar: f64,
    #[serde(default = "default_attn_softcap")]
    pub attn_logit_softcapping: Option<f32>,
    #[serde(default = "default_final_softcap")]
    pub final_logit_softcapping: Option<f32>,
}

fn default_query_pre_attn_scalar() -> f64 {
    144.0
}

fn default_attn_softcap() -> Option<f32> {
    Some(50.0)
}

fn default_final_softcap() -> Option<f32> {
    Some(30.0)
}

pub fn blueprint(c: &ModelConfig) -> Result<Blueprint> {
    let args: ModelArgs = c.keys()?;
    let missing = |key: &str| Error::InvalidOption(format!("gemma2 config.json lacks {key}"));
    let head_dim = c.head_dim.ok_or_else(|| missing("head_dim"))?;
    let kv_heads = c.num_key_value_heads.ok_or_else(|| missing("num_key_value_heads"))?;
    let shape = AttentionShape { kv_heads, ..AttentionShape::of(c, head_dim) };
    let scores = match args.attn_logit_softcapping {
        Some(cap) => Scores::SoftCapped { cap },
        None => Scores::Fused,
    };
    let rope = RopeSpec::Standard { dims: head_dim, base: c.rope_theta.unwrap_or(10_000.0), traditional: c.rope_traditional, scaling: None };
    let scale = (1.0 / args.query_pre_attn_scalar.sqrt()) as f32;
    let layers = layer_plans(c, |_, p| LayerPlan {
        norms: p.sandwich_norms(c.hidden_size),
        attention: p.attention(shape, false, false, scale, scores, rope.clone()),
        feed_forward: p.gated_mlp(c.hidden_size, c.intermediate_size, false, GateActivation::GeluApprox),
        window: None,
    });
    Ok(Blueprint {
        embed_scale: EmbedScale::SqrtHidden,
        norms_offset_by_one: true,
        final_softcap: args.final_logit_softcapping,
        ..Blueprint::new(c, layers, true)
    })
}
