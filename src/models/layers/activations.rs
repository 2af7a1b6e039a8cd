//! The elementwise functions of the architectures, with mlx-lm's numerics: the gated activations
//! it compiles (`mx.compile(shapeless=True)`: `swiglu`, `nn.gelu_approx`) are compiled here too,
//! once per thread and reused by every layer and step (mlx-rs's `nn::silu` builds a new compiled
//! function on each call, so MLX traces it again per layer; see PLATFORM.md), and soft-capping,
//! which mlx-lm runs uncompiled. Python scalars in mlx-lm take the array's dtype; so do ours.
use std::cell::RefCell;

use mlx_rs::{
    error::Exception,
    ops::{sigmoid, tanh},
    transforms::compile::compile,
    Array,
};

use crate::error::Result;

type Unary = Box<dyn for<'a> FnMut(&'a Array) -> std::result::Result<Array, Exception>>;
type Binary = Box<dyn for<'a> FnMut((&'a Array, &'a Array)) -> std::result::Result<Array, Exception>>;

/// A scalar in `like`'s dtype, as a Python float next to an MLX array.
pub fn scalar(value: f32, like: &Array) -> std::result::Result<Array, Exception> {
    Array::from_f32(value).as_dtype(like.dtype())
}

fn swiglu_graph((gate, x): (&Array, &Array)) -> std::result::Result<Array, Exception> {
    gate.multiply(sigmoid(gate)?)?.multiply(x)
}

fn gelu_approx_graph(x: &Array) -> std::result::Result<Array, Exception> {
    let inner = x.add(scalar(0.044715, x)?.multiply(x.power(scalar(3.0, x)?)?)?)?;
    let root = (2.0f64 / std::f64::consts::PI).sqrt() as f32;
    let tanh = tanh(scalar(root, x)?.multiply(inner)?)?;
    scalar(0.5, x)?.multiply(x)?.multiply(scalar(1.0, x)?.add(tanh)?)
}

thread_local! {
    static SWIGLU: RefCell<Binary> = RefCell::new(Box::new(compile(swiglu_graph, true)));
    static GELU_APPROX: RefCell<Unary> = RefCell::new(Box::new(compile(gelu_approx_graph, true)));
}

/// `silu(gate) * x`, mlx-lm's compiled `swiglu`.
pub fn swiglu(gate: &Array, x: &Array) -> Result<Array> {
    Ok(SWIGLU.with_borrow_mut(|f| f((gate, x)))?)
}

/// The tanh approximation of GELU, MLX's compiled `nn.gelu_approx`.
pub fn gelu_approx(x: &Array) -> Result<Array> {
    Ok(GELU_APPROX.with_borrow_mut(|f| f(x))?)
}

/// `tanh(x / cap) * cap`: Gemma 2's soft-capping of attention scores and logits.
pub fn softcap(x: &Array, cap: f32) -> Result<Array> {
    let cap = scalar(cap, x)?;
    Ok(tanh(x.divide(&cap)?)?.multiply(&cap)?)
}
