//! Grouped-query attention in the variants the architectures need: separate or fused (`qkv_proj`)
//! projections, optional per-head q/k norms, a query scale of the architecture's choosing, and
//! either MLX's fused kernel (quantized attention on a quantized cache, as mlx-lm) or Gemma 2's
//! soft-capped scores, computed with plain matmuls as mlx-lm's `gemma2` does.
use mlx_rs::{
    fast::{self, ScaledDotProductAttentionMask},
    ops::{select, softmax_axis},
    Array,
};

use super::{activations::softcap, rope::Rotary, Linear, RmsNorm};
use crate::{
    cache::{Fetched, KvCache, Mask},
    error::{Error, Result},
    models::transformer::{dtype_min, quantized_attention},
};

/// How queries, keys and values are projected from the hidden state.
pub enum Projections {
    Separate { q_proj: Linear, k_proj: Linear, v_proj: Linear },
    /// One matrix whose output is queries, keys and values side by side (Phi-3).
    Fused { qkv_proj: Linear },
}

/// How attention weights come from queries and keys.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scores {
    /// `softmax(q·kᵀ·scale)` by MLX's fused kernel, or quantized attention on a quantized cache.
    Fused,
    /// `softmax(cap·tanh(q·kᵀ·scale / cap))`: Gemma 2. Needs dense keys and values.
    SoftCapped { cap: f32 },
}

pub struct Attention {
    pub projections: Projections,
    pub o_proj: Linear,
    pub q_norm: Option<RmsNorm>,
    pub k_norm: Option<RmsNorm>,
    pub heads: i32,
    pub kv_heads: i32,
    pub head_dim: i32,
    pub scale: f32,
    pub scores: Scores,
}

/// `[B, L, heads·head_dim]` → `[B, heads, L, head_dim]`, with the optional per-head norm.
fn split_heads(x: &Array, heads: i32, norm: Option<&RmsNorm>) -> Result<Array> {
    let x = x.reshape(&[x.dim(0), x.dim(1), heads, -1])?;
    let x = match norm {
        Some(norm) => norm.forward(&x)?,
        None => x,
    };
    Ok(x.transpose_axes(&[0, 2, 1, 3])?)
}

impl Attention {
    fn project(&self, x: &Array) -> Result<(Array, Array, Array)> {
        Ok(match &self.projections {
            Projections::Separate { q_proj, k_proj, v_proj } => (q_proj.forward(x)?, k_proj.forward(x)?, v_proj.forward(x)?),
            Projections::Fused { qkv_proj } => {
                let q_end = self.heads * self.head_dim;
                let k_end = q_end + self.kv_heads * self.head_dim;
                let mut parts = qkv_proj.forward(x)?.split_at_indices(&[q_end, k_end], -1)?.into_iter();
                let mut next = || parts.next().expect("a split at two indices gives three parts");
                (next(), next(), next())
            }
        })
    }

    /// `x`: `[B, L, hidden]`; positions start at the cache's offset.
    pub fn forward(&self, x: &Array, mask: &Mask, rope: &Rotary, cache: Option<&mut KvCache>) -> Result<Array> {
        let (b, l) = (x.dim(0), x.dim(1));
        let (queries, keys, values) = self.project(x)?;
        let queries = split_heads(&queries, self.heads, self.q_norm.as_ref())?;
        let keys = split_heads(&keys, self.kv_heads, self.k_norm.as_ref())?;
        let values = split_heads(&values, self.kv_heads, None)?;
        let offset = cache.as_ref().map_or(0, |c| c.offset());
        let queries = rope.forward(&queries, offset)?;
        let keys = rope.forward(&keys, offset)?;
        let fetched = match cache {
            Some(cache) => cache.update_and_fetch(&keys, &values)?,
            None => Fetched::Dense { keys, values },
        };
        let out = match (self.scores, fetched) {
            (Scores::Fused, Fetched::Dense { keys, values }) => {
                let mask = match mask {
                    Mask::None => None,
                    Mask::Causal => Some(ScaledDotProductAttentionMask::Causal),
                    Mask::Array(m) => Some(ScaledDotProductAttentionMask::Array(m)),
                };
                fast::scaled_dot_product_attention(&queries, &keys, &values, self.scale, mask, None)?
            }
            (Scores::Fused, Fetched::Quantized { keys, values, group_size, bits }) => {
                quantized_attention(&queries, &keys, &values, self.scale, mask, group_size, bits)?
            }
            (Scores::SoftCapped { cap }, Fetched::Dense { keys, values }) => {
                self.soft_capped(&queries, &keys, &values, cap, mask)?
            }
            (Scores::SoftCapped { .. }, Fetched::Quantized { .. }) => {
                return Err(Error::InvalidOption(
                    "soft-capped attention (Gemma 2) needs dense keys and values: a quantized KV cache is not supported".into(),
                ))
            }
        };
        self.o_proj.forward(&out.transpose_axes(&[0, 2, 1, 3])?.reshape(&[b, l, -1])?)
    }

    /// mlx-lm's `gemma2.Attention`: scaled queries, grouped heads as a broadcast axis, scores
    /// soft-capped before the mask and a precise softmax.
    fn soft_capped(&self, queries: &Array, keys: &Array, values: &Array, cap: f32, mask: &Mask) -> Result<Array> {
        let &[b, heads, len, dim] = queries.shape() else { unreachable!("queries are [B, H, L, D]") };
        let repeats = self.heads / self.kv_heads;
        let mut queries = queries.multiply(Array::from_f32(self.scale).as_dtype(queries.dtype())?)?;
        let (keys, values) = if repeats > 1 {
            queries = queries.reshape(&[b, self.kv_heads, repeats, len, dim])?;
            (keys.expand_dims(2)?, values.expand_dims(2)?)
        } else {
            (keys.clone(), values.clone())
        };
        let mut scores = softcap(&queries.matmul(keys.swap_axes(-1, -2)?)?, cap)?;
        if let Some(mask) = mask.to_array(len, keys.dim(-2))? {
            let floor = Array::from_f32(dtype_min(scores.dtype())).as_dtype(scores.dtype())?;
            scores = select(&mask, &scores, &floor)?;
        }
        let out = softmax_axis(&scores, -1, true)?.matmul(&values)?;
        Ok(if repeats > 1 { out.reshape(&[b, heads, len, dim])? } else { out })
    }
}
