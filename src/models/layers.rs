//! Building blocks shared by every architecture. Linear and embedding layers are quantized in
//! place: the same type holds float or MLX-quantized weights, chosen at load time by whether
//! `<path>.scales` is in the weights (mlx-lm's rule), with per-layer parameters from the config.
//! The submodules hold the larger pieces architectures compose: attention variants, gated MLPs,
//! mixture-of-experts layers, RoPE kinds and the activations mlx-lm compiles.
pub mod activations;
pub mod attention;
pub mod experts;
pub mod mlp;
pub mod rope;

use mlx_rs::{
    fast,
    ops::{dequantize, matmul, quantized_matmul},
    Array,
};

use crate::{
    config::{QuantParams, QuantizationConfig},
    distributed::Group,
    error::{Error, Result},
    weights::WeightStore,
};

/// MLX-quantized weights: packed `uint32` values with per-group scales and biases.
pub struct Quantized {
    pub weight: Array,
    pub scales: Array,
    pub biases: Array,
    pub params: QuantParams,
}

impl Quantized {
    /// The quantized tensors of `<path>` when `<path>.scales` exists: logical shape
    /// `[..rows, in_dim]` (`rows` the leading axes), with parameters from the config's
    /// quantization block. `None` when the module is stored in floating point.
    pub fn load(
        store: &mut WeightStore,
        path: &str,
        rows: &[i32],
        in_dim: i32,
        quantization: Option<&QuantizationConfig>,
    ) -> Result<Option<Self>> {
        if !store.contains(&format!("{path}.scales")) {
            return Ok(None);
        }
        let params = quantization
            .ok_or_else(|| Error::UnsupportedQuantization {
                module: path.to_string(),
                detail: "has .scales but config.json has no quantization block".into(),
            })?
            .params_for(path)?
            .ok_or_else(|| Error::UnsupportedQuantization {
                module: path.to_string(),
                detail: "has .scales but config.json marks it unquantized".into(),
            })?;
        if in_dim % params.group_size != 0 {
            return Err(Error::UnsupportedQuantization {
                module: path.to_string(),
                detail: format!("input size {in_dim} is not a multiple of group_size {}", params.group_size),
            });
        }
        let shape = |last: i32| [rows, &[last]].concat();
        let packed = shape(in_dim * params.bits / 32);
        let groups = shape(in_dim / params.group_size);
        Ok(Some(Quantized {
            weight: store.take_shaped(&format!("{path}.weight"), &packed)?,
            scales: store.take_shaped(&format!("{path}.scales"), &groups)?,
            biases: store.take_shaped(&format!("{path}.biases"), &groups)?,
            params,
        }))
    }
}

/// A weight matrix `[out, in]`, float or quantized.
pub enum Weight {
    Float(Array),
    Quantized(Quantized),
}

impl Weight {
    /// Loads `<path>.weight` of logical shape `[out_dim, in_dim]`, quantized when `<path>.scales`
    /// exists.
    pub fn load(
        store: &mut WeightStore,
        path: &str,
        in_dim: usize,
        out_dim: usize,
        quantization: Option<&QuantizationConfig>,
    ) -> Result<Self> {
        Ok(match Quantized::load(store, path, &[out_dim as i32], in_dim as i32, quantization)? {
            Some(q) => Weight::Quantized(q),
            None => Weight::Float(store.take_shaped(&format!("{path}.weight"), &[out_dim as i32, in_dim as i32])?),
        })
    }

    /// `x · Wᵀ`.
    pub fn matmul_t(&self, x: &Array) -> Result<Array> {
        Ok(match self {
            Weight::Float(w) => matmul(x, w.t())?,
            Weight::Quantized(q) => quantized_matmul(
                x,
                &q.weight,
                &q.scales,
                &q.biases,
                true,
                q.params.group_size,
                q.params.bits,
            )?,
        })
    }

    /// Rows `ids` of the matrix, dequantized (an embedding lookup).
    pub fn rows(&self, ids: &Array) -> Result<Array> {
        Ok(match self {
            Weight::Float(w) => w.take_axis(ids, 0)?,
            Weight::Quantized(q) => dequantize(
                q.weight.take_axis(ids, 0)?,
                q.scales.take_axis(ids, 0)?,
                &q.biases.take_axis(ids, 0)?,
                q.params.group_size,
                q.params.bits,
            )?,
        })
    }
}

/// `y = x·Wᵀ + b`; in a tensor-parallel group, when this rank holds a slice of the input
/// features, `y = all_sum(x·Wᵀ) + b` (mlx-lm's `ShardedToAllLinear`).
pub struct Linear {
    pub weight: Weight,
    pub bias: Option<Array>,
    pub reduce: Option<Group>,
}

impl Linear {
    pub fn load(
        store: &mut WeightStore,
        path: &str,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
        quantization: Option<&QuantizationConfig>,
    ) -> Result<Self> {
        let weight = Weight::load(store, path, in_dim, out_dim, quantization)?;
        let bias = if bias { Some(store.take_shaped(&format!("{path}.bias"), &[out_dim as i32])?) } else { None };
        let reduce = store.reduce_group(&format!("{path}.weight"));
        Ok(Self { weight, bias, reduce })
    }

    /// A layer of these weights, on one process.
    pub fn new(weight: Weight, bias: Option<Array>) -> Self {
        Self { weight, bias, reduce: None }
    }

    pub fn forward(&self, x: &Array) -> Result<Array> {
        let mut y = self.weight.matmul_t(x)?;
        if let Some(group) = &self.reduce {
            y = group.all_sum(&y)?;
        }
        Ok(match &self.bias {
            Some(b) => y.add(b)?,
            None => y,
        })
    }
}

/// RMS normalisation with a learned scale.
pub struct RmsNorm {
    pub weight: Array,
    pub eps: f32,
}

impl RmsNorm {
    pub fn load(store: &mut WeightStore, path: &str, dim: usize, eps: f32) -> Result<Self> {
        Ok(Self { weight: store.take_shaped(&format!("{path}.weight"), &[dim as i32])?, eps })
    }

    /// Gemma's RMS norm, `rms_norm(x, 1 + weight)`: the stored weight is an offset from one.
    /// Adding the one once here gives the very array mlx-lm adds on every call.
    pub fn offset_by_one(self) -> Result<Self> {
        let one = Array::from_f32(1.0).as_dtype(self.weight.dtype())?;
        Ok(Self { weight: one.add(&self.weight)?, eps: self.eps })
    }

    pub fn forward(&self, x: &Array) -> Result<Array> {
        Ok(fast::rms_norm(x, Some(&self.weight), self.eps)?)
    }
}

/// Rotary position embedding over the whole head (`dims` = head_dim), with optional precomputed
/// frequencies (Llama 3 scaling) or a position scale (linear scaling).
pub struct Rope {
    pub dims: i32,
    pub traditional: bool,
    pub base: f32,
    pub scale: f32,
    pub freqs: Option<Array>,
}

impl Rope {
    /// `x`: `[B, heads, L, head_dim]`, positions start at `offset`.
    pub fn forward(&self, x: &Array, offset: i32) -> Result<Array> {
        Ok(match &self.freqs {
            Some(freqs) => fast::rope(x, self.dims, self.traditional, None, 1.0, offset, freqs)?,
            None => fast::rope(x, self.dims, self.traditional, self.base, self.scale, offset, None)?,
        })
    }
}
