//! Sparse mixture-of-experts layers with mlx-lm's numerics and weight layout: a router (a linear
//! layer scoring every expert) picks the top k experts per token, and the experts run as one
//! stacked tensor per projection (`switch_mlp.{gate,up,down}_proj`, `[experts, out, in]`) through
//! MLX's `gather_mm` (float) or `gather_qmm` (quantized), as `SwitchGLU` does.
use mlx_rs::{
    ops::{
        argpartition_axis, argsort_axis, gather_mm, gather_qmm,
        indexing::{Ellipsis, TryIndexOp},
        softmax_axis, unflatten,
    },
    Array,
};

use super::{activations::swiglu, Linear, Quantized};
use crate::{config::QuantizationConfig, distributed::Group, error::Result, weights::WeightStore};

/// mlx-lm sorts the token-expert pairs by expert before the gathered matmuls from this many
/// pairs on (`indices.size >= 64` in `SwitchGLU`), so that each expert's rows are contiguous.
const SORT_FROM_PAIRS: usize = 64;

/// The stacked weights of one projection of every expert, `[experts, out, in]`.
pub enum SwitchLinear {
    Float(Array),
    Quantized(Quantized),
}

impl SwitchLinear {
    /// Loads `<path>.weight` (and `.scales`, `.biases` when quantized) of logical shape
    /// `[experts, out_dim, in_dim]`.
    pub fn load(
        store: &mut WeightStore,
        path: &str,
        experts: usize,
        in_dim: usize,
        out_dim: usize,
        quantization: Option<&QuantizationConfig>,
    ) -> Result<Self> {
        let rows = [experts as i32, out_dim as i32];
        Ok(match Quantized::load(store, path, &rows, in_dim as i32, quantization)? {
            Some(q) => SwitchLinear::Quantized(q),
            None => SwitchLinear::Float(store.take_shaped(&format!("{path}.weight"), &[rows[0], rows[1], in_dim as i32])?),
        })
    }

    /// `x · W[e]ᵀ` for each row's expert `e` in `indices`.
    fn forward(&self, x: &Array, indices: &Array, sorted: bool) -> Result<Array> {
        Ok(match self {
            SwitchLinear::Float(w) => gather_mm(x, w.swap_axes(-1, -2)?, None, indices, sorted)?,
            SwitchLinear::Quantized(q) => gather_qmm(
                x,
                &q.weight,
                &q.scales,
                &q.biases,
                None,
                indices,
                true,
                q.params.group_size,
                q.params.bits,
                sorted,
            )?,
        })
    }
}

/// The experts of a SwiGLU MoE layer (mlx-lm's `SwitchGLU`).
pub struct SwitchGlu {
    pub gate_proj: SwitchLinear,
    pub up_proj: SwitchLinear,
    pub down_proj: SwitchLinear,
}

impl SwitchGlu {
    /// `x`: `[B, L, hidden]`, `indices`: `[B, L, k]` → each chosen expert's output `[B, L, k, hidden]`.
    pub fn forward(&self, x: &Array, indices: &Array) -> Result<Array> {
        let x = x.expand_dims_axes(&[-2, -3])?;
        let sort = indices.size() >= SORT_FROM_PAIRS;
        let out = if sort {
            // mlx-lm's `_gather_sort` / `_scatter_unsort`.
            let k = indices.dim(-1);
            let flat = indices.flatten(None, None)?;
            let order = argsort_axis(&flat, -1)?;
            let inverse = argsort_axis(&order, -1)?;
            let rows = order.floor_divide(Array::from_int(k).as_dtype(order.dtype())?)?;
            let x = x.flatten(0, -3)?.take_axis(&rows, 0)?;
            let idx = flat.take_axis(&order, 0)?;
            let y = self.run(&x, &idx, true)?;
            unflatten(y.take_axis(&inverse, 0)?, 0, indices.shape())?
        } else {
            self.run(&x, indices, false)?
        };
        Ok(out.squeeze_axes(&[-2])?)
    }

    fn run(&self, x: &Array, indices: &Array, sorted: bool) -> Result<Array> {
        let up = self.up_proj.forward(x, indices, sorted)?;
        let gate = self.gate_proj.forward(x, indices, sorted)?;
        self.down_proj.forward(&swiglu(&gate, &up)?, indices, sorted)
    }
}

/// How router scores become the chosen experts and their weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// Mixtral: the k largest router logits, softmax over those k.
    TopKThenSoftmax,
    /// Qwen3-MoE: softmax over all experts, the k largest probabilities, renormalized to sum to
    /// one when `normalize` (`norm_topk_prob`).
    SoftmaxThenTopK { normalize: bool },
}

/// A sparse MoE feed-forward layer: router, experts, and how to combine them.
pub struct SparseMoe {
    pub router: Linear,
    pub experts: SwitchGlu,
    pub top_k: i32,
    pub routing: Routing,
    /// In a tensor-parallel group, where each rank holds a slice of every expert's features: the
    /// group the combined output is summed over (mlx-lm's `sharding_group`).
    pub reduce: Option<Group>,
}

impl SparseMoe {
    /// The experts each token uses (`[B, L, k]`, uint32) and their weights (`[B, L, k]`).
    pub fn route(&self, x: &Array) -> Result<(Array, Array)> {
        let logits = self.router.forward(x)?;
        let k = self.top_k;
        Ok(match self.routing {
            Routing::TopKThenSoftmax => {
                let indices = argpartition_axis(logits.negative()?, k - 1, -1)?.try_index((Ellipsis, ..k))?;
                let scores = softmax_axis(logits.take_along_axis(&indices, -1)?, -1, true)?;
                (indices, scores)
            }
            Routing::SoftmaxThenTopK { normalize } => {
                let probs = softmax_axis(&logits, -1, true)?;
                let indices = argpartition_axis(&probs, -k, -1)?.try_index((Ellipsis, -k..))?;
                let mut scores = probs.take_along_axis(&indices, -1)?;
                if normalize {
                    scores = scores.divide(scores.sum_axis(-1, true)?)?;
                }
                (indices, scores)
            }
        })
    }

    pub fn forward(&self, x: &Array) -> Result<Array> {
        let (indices, scores) = self.route(x)?;
        let y = self.experts.forward(x, &indices)?;
        let combined = y.multiply(scores.expand_dims(-1)?)?.sum_axis(-2, None)?;
        let combined = match self.routing {
            // Qwen3-MoE casts back to the experts' dtype (float32 scores could widen it).
            Routing::SoftmaxThenTopK { .. } => combined.as_dtype(y.dtype())?,
            Routing::TopKThenSoftmax => combined,
        };
        Ok(match &self.reduce {
            Some(group) => group.all_sum(&combined)?,
            None => combined,
        })
    }
}
