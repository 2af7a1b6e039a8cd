//! Mixtral (mlx-lm `mixtral`): Llama's attention (head_dim `hidden / heads`, RoPE base 1e6 by
//! default) and a sparse MoE in every layer (`block_sparse_moe`): a router over
//! `num_local_experts` experts, the `num_experts_per_tok` largest logits softmaxed, SwiGLU experts
//! stacked per projection (`switch_mlp`).
use serde::Deserialize;

use super::{
    composed::{layer_plans, AttentionShape, Blueprint, LayerPlan},
    layers::{attention::Scores, experts::Routing, rope::RopeSpec},
};
use crate::{config::ModelConfig, error::Result};

/// The keys mlx-lm's `mixtral.ModelArgs` reads beyond the common ones, with its defaults.
#[derive(Debug, Deserialize)]
pub struct ModelArgs {
    #[serde(default = "default_num_local_experts")]
    pub num_local_experts: usize,
    #[serde(default = "default_num_experts_per_tok")]
    pub num_experts_per_tok: usize,
}

fn default_num_local_experts() -> usize {
    8
}

fn default_num_experts_per_tok() -> usize {
    2
}

pub fn blueprint(c: &ModelConfig) -> Result<Blueprint> {
    let args: ModelArgs = c.keys()?;
    super::check_experts(c, args.num_local_experts, args.num_experts_per_tok)?;
    let head_dim = c.hidden_per_head();
    let shape = AttentionShape::of(c, head_dim);
    let rope = RopeSpec::Standard { dims: head_dim, base: c.rope_theta.unwrap_or(1_000_000.0), traditional: c.rope_traditional, scaling: None };
    let layers = layer_plans(c, |_, p| LayerPlan {
        norms: p.pre_norms(c.hidden_size),
        attention: p.attention(shape, false, false, shape.default_scale(), Scores::Fused, rope.clone()),
        feed_forward: p.sparse_moe(
            "block_sparse_moe",
            c.hidden_size,
            c.intermediate_size,
            args.num_local_experts,
            args.num_experts_per_tok,
            Routing::TopKThenSoftmax,
        ),
        window: None,
    });
    Ok(Blueprint::new(c, layers, c.tie_word_embeddings.unwrap_or(false)))
}
