//! Gemma 3 text models (mlx-lm `gemma3_text`): Gemma 2's blocks without soft-capping, plus `1 +
//! weight` RMS norms on each query and key head; of every `sliding_window_pattern` layers the
//! last attends to everything (RoPE base `rope_theta`, with `rope_scaling`) and the others slide
//! over `sliding_window` tokens (RoPE base `rope_local_base_freq`). Caches as its `make_cache`:
//! rotating caches of the window for the sliding layers, plain ones for the global layers.
//! Embeddings are scaled by `sqrt(hidden_size)` rounded to bfloat16, residuals clipped in
//! float16, and the head is tied unless the checkpoint has an `lm_head` (mlx-lm's `sanitize`).
use serde::Deserialize;

use super::{
    composed::{layer_plans, AttentionShape, Blueprint, CachePolicy, EmbedScale, LayerPlan, Residual},
    layers::{attention::Scores, mlp::GateActivation, rope::RopeSpec},
};
use crate::{
    config::ModelConfig,
    error::{Error, Result},
};

/// The keys mlx-lm's `gemma3_text.ModelArgs` reads beyond the common ones, with its defaults.
#[derive(Debug, Deserialize)]
pub struct ModelArgs {
    #[serde(default = "default_query_pre_attn_scalar")]
    pub query_pre_attn_scalar: f64,
    #[serde(default = "default_sliding_window")]
    pub sliding_window: usize,
    #[serde(default = "default_sliding_window_pattern")]
    pub sliding_window_pattern: usize,
    #[serde(default = "default_rope_local_base_freq")]
    pub rope_local_base_freq: f32,
}

fn default_query_pre_attn_scalar() -> f64 {
    256.0
}

fn default_sliding_window() -> usize {
    512
}

fn default_sliding_window_pattern() -> usize {
    6
}

fn default_rope_local_base_freq() -> f32 {
    10_000.0
}

impl ModelArgs {
    /// mlx-lm's rule: layer `i` is global when `(i + 1) % sliding_window_pattern == 0`.
    pub fn is_sliding(&self, layer: usize) -> bool {
        (layer + 1) % self.sliding_window_pattern != 0
    }
}

/// `has_lm_head`: whether the checkpoint carries `lm_head.weight` (published ones do not).
pub fn blueprint(c: &ModelConfig, has_lm_head: bool) -> Result<Blueprint> {
    let args: ModelArgs = c.keys()?;
    if args.sliding_window_pattern == 0 || args.sliding_window == 0 {
        return Err(Error::InvalidOption("gemma3_text config.json: sliding_window and sliding_window_pattern must be at least 1".into()));
    }
    let head_dim = c.head_dim.unwrap_or(256);
    let shape = AttentionShape { kv_heads: c.num_key_value_heads.unwrap_or(1), ..AttentionShape::of(c, head_dim) };
    let scale = args.query_pre_attn_scalar.powf(-0.5) as f32;
    let local = RopeSpec::Standard { dims: head_dim, base: args.rope_local_base_freq, traditional: false, scaling: None };
    let global = RopeSpec::Standard {
        dims: head_dim,
        base: c.rope_theta.unwrap_or(1_000_000.0),
        traditional: false,
        scaling: c.rope_scaling.clone(),
    };
    let layers = layer_plans(c, |i, p| {
        let sliding = args.is_sliding(i);
        let rope = if sliding { local.clone() } else { global.clone() };
        LayerPlan {
            norms: p.sandwich_norms(c.hidden_size),
            attention: p.attention(shape, false, true, scale, Scores::Fused, rope),
            feed_forward: p.gated_mlp(c.hidden_size, c.intermediate_size, false, GateActivation::GeluApprox),
            window: sliding.then_some(args.sliding_window),
        }
    });
    Ok(Blueprint {
        embed_scale: EmbedScale::SqrtHiddenBfloat16,
        norms_offset_by_one: true,
        residual: Residual::ClipFloat16,
        caches: CachePolicy::PerLayer,
        ..Blueprint::new(c, layers, !has_lm_head)
    })
}
