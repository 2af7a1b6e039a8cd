//! Qwen3-MoE (mlx-lm `qwen3_moe`): Qwen3's attention (explicit head_dim, per-head q/k RMS norms)
//! and, in every layer that `decoder_sparse_step` and `mlp_only_layers` make sparse, a MoE block
//! under `mlp`: a softmax over `num_experts` router logits, the `num_experts_per_tok` largest
//! probabilities (renormalized when `norm_topk_prob`), SwiGLU experts of `moe_intermediate_size`
//! stacked per projection (`switch_mlp`); the other layers have a dense SwiGLU MLP of
//! `intermediate_size`. mlx-lm's `quant_predicate` quantizes the routers at 8 bits.
use serde::Deserialize;

use super::{
    composed::{layer_plans, AttentionShape, Blueprint, LayerPlan},
    layers::{attention::Scores, experts::Routing, mlp::GateActivation, rope::RopeSpec},
};
use crate::{
    config::{ModelConfig, QuantParams},
    error::{Error, Result},
};

/// The keys mlx-lm's `qwen3_moe.ModelArgs` requires beyond the common ones.
#[derive(Debug, Deserialize)]
pub struct ModelArgs {
    pub num_experts: usize,
    pub num_experts_per_tok: usize,
    pub decoder_sparse_step: usize,
    pub mlp_only_layers: Vec<usize>,
    pub moe_intermediate_size: usize,
    pub norm_topk_prob: bool,
}

/// mlx-lm's `quant_predicate`: routers (`mlp.gate`) at 8 bits, group size 64.
pub const ROUTER_QUANTIZATION: QuantParams = QuantParams { group_size: 64, bits: 8 };

impl ModelArgs {
    /// mlx-lm's rule for which layers are sparse.
    pub fn is_sparse(&self, layer: usize) -> bool {
        !self.mlp_only_layers.contains(&layer) && self.num_experts > 0 && (layer + 1) % self.decoder_sparse_step == 0
    }
}

pub fn blueprint(c: &ModelConfig) -> Result<Blueprint> {
    let args: ModelArgs = c.keys()?;
    let missing = |key: &str| Error::InvalidOption(format!("qwen3_moe config.json lacks {key}"));
    if args.decoder_sparse_step == 0 {
        return Err(Error::InvalidOption("qwen3_moe config.json: decoder_sparse_step must be at least 1".into()));
    }
    if args.num_experts > 0 {
        super::check_experts(c, args.num_experts, args.num_experts_per_tok)?;
    }
    let head_dim = c.head_dim.ok_or_else(|| missing("head_dim"))?;
    let shape = AttentionShape::of(c, head_dim);
    let theta = c.rope_theta.or(c.rope_parameters.as_ref().and_then(|p| p.rope_theta)).ok_or_else(|| missing("rope_theta"))?;
    let rope = RopeSpec::Standard { dims: head_dim, base: theta, traditional: false, scaling: None };
    let routing = Routing::SoftmaxThenTopK { normalize: args.norm_topk_prob };
    let mut routers = Vec::new();
    let layers = layer_plans(c, |i, p| {
        let feed_forward = if args.is_sparse(i) {
            routers.push((p.path("mlp.gate"), ROUTER_QUANTIZATION));
            p.sparse_moe("mlp", c.hidden_size, args.moe_intermediate_size, args.num_experts, args.num_experts_per_tok, routing)
        } else {
            p.gated_mlp(c.hidden_size, c.intermediate_size, false, GateActivation::Silu)
        };
        LayerPlan {
            norms: p.pre_norms(c.hidden_size),
            attention: p.attention(shape, false, true, shape.default_scale(), Scores::Fused, rope.clone()),
            feed_forward,
            window: None,
        }
    });
    let tied = c.tie_word_embeddings.ok_or_else(|| missing("tie_word_embeddings"))?;
    Ok(Blueprint { quantization_overrides: routers, ..Blueprint::new(c, layers, tied) })
}
