//! Rotary position embeddings of every kind the architectures use: mlx-lm's `initialize_rope`
//! (default, `linear`, `llama3`) and Phi-3's `SuScaledRoPE` (`longrope` / `su`), described as
//! plain data ([`RopeSpec`]) so a blueprint can hold them, and built into a [`Rotary`] at load.
use mlx_rs::{
    ops::{arange, broadcast_to, power},
    Array,
};

use super::Rope;
use crate::{
    config::{RopeFactors, RopeScaling},
    error::{Error, Result},
    models::transformer::llama3_freqs,
    ops::{slice_update, Update},
};

/// How one attention layer rotates its queries and keys.
#[derive(Debug, Clone)]
pub enum RopeSpec {
    /// `nn.RoPE` over the first `dims` features, with mlx-lm's `initialize_rope` scaling.
    Standard { dims: usize, base: f32, traditional: bool, scaling: Option<RopeScaling> },
    /// Phi-3's LongRoPE: frequencies times `long_factor`, inputs times a magnitude scale that
    /// grows with `max_position_embeddings / original_max_position_embeddings`.
    SuScaled { dims: usize, base: f32, max_position_embeddings: usize, original_max_position_embeddings: usize, long_factor: RopeFactors },
}

/// A built rotary embedding.
pub enum Rotary {
    Standard(Rope),
    SuScaled { rope: Rope, input_scale: f32 },
}

impl RopeSpec {
    pub fn build(&self) -> Result<Rotary> {
        match self {
            RopeSpec::Standard { dims, base, traditional, scaling } => {
                Ok(Rotary::Standard(initialize(*dims as i32, *base, *traditional, scaling.as_ref())?))
            }
            RopeSpec::SuScaled { dims, base, max_position_embeddings, original_max_position_embeddings, long_factor } => {
                let dims = *dims as i32;
                let factors = match long_factor {
                    RopeFactors::One(f) => Array::from_f32(*f),
                    RopeFactors::Each(fs) if fs.len() == dims as usize / 2 => Array::from_slice(fs, &[dims / 2]),
                    RopeFactors::Each(fs) => {
                        return Err(Error::InvalidOption(format!(
                            "rope_scaling long_factor has {} values; the {dims} rotated dimensions need {}",
                            fs.len(),
                            dims / 2
                        )))
                    }
                };
                let freqs = factors.multiply(base_frequencies(dims, *base)?)?;
                let original = *original_max_position_embeddings as f64;
                let factor = *max_position_embeddings as f64 / original;
                let input_scale = if factor <= 1.0 { 1.0 } else { (1.0 + factor.ln() / original.ln()).sqrt() };
                let rope = Rope { dims, traditional: false, base: 0.0, scale: 1.0, freqs: Some(freqs) };
                Ok(Rotary::SuScaled { rope, input_scale: input_scale as f32 })
            }
        }
    }
}

/// `base ** (arange(0, dims, 2) / dims)`, in float32 as mlx-lm computes it.
fn base_frequencies(dims: i32, base: f32) -> Result<Array> {
    let exponents = arange::<_, f32>(0, dims, 2)?.divide(Array::from_f32(dims as f32))?;
    Ok(power(Array::from_f32(base), &exponents)?)
}

/// mlx-lm's `initialize_rope` for the scaling kinds our architectures use.
pub fn initialize(dims: i32, base: f32, traditional: bool, scaling: Option<&RopeScaling>) -> Result<Rope> {
    let mut rope = Rope { dims, traditional, base, scale: 1.0, freqs: None };
    let Some(scaling) = scaling else { return Ok(rope) };
    let kind = scaling.rope_type.as_deref().unwrap_or("default");
    let factor = || scaling.factor.ok_or_else(|| Error::InvalidOption(format!("rope_scaling {kind:?} needs a factor")));
    match kind {
        "default" => {}
        "linear" => rope.scale = 1.0 / factor()?,
        "llama3" => rope.freqs = Some(llama3_freqs(dims, base, factor()?, scaling)?),
        other => {
            return Err(Error::InvalidOption(format!("rope_scaling type {other:?} is not supported (default, linear, llama3)")))
        }
    }
    Ok(rope)
}

impl Rotary {
    /// `x`: `[B, heads, L, head_dim]`, positions start at `offset`.
    pub fn forward(&self, x: &Array, offset: i32) -> Result<Array> {
        match self {
            Rotary::Standard(rope) => rope.forward(x, offset),
            Rotary::SuScaled { rope, input_scale } => {
                // mlx-lm: `x.at[..., :dims].multiply(scale)`, then RoPE with the long factors.
                let scale = Array::from_f32(*input_scale).as_dtype(x.dtype())?;
                let scaled = if rope.dims == x.dim(-1) {
                    x.multiply(&scale)?
                } else {
                    let mut stops = x.shape().to_vec();
                    *stops.last_mut().expect("[B, heads, L, head_dim]") = rope.dims;
                    let scale = broadcast_to(&scale, &stops)?;
                    slice_update(x, &scale, &vec![0; stops.len()], &stops, Update::Multiply)?
                };
                rope.forward(&scaled, offset)
            }
        }
    }
}
