//! A quick check that MLX computes correctly and at what speed on the selected device: a bf16
//! matmul and a 4-bit quantized matmul, each compared with a float32 reference on the same device.
//! This is what `mlxbench selftest` runs (and how the CUDA build is checked on the GPU machine).
use std::time::Instant;

use mlx_rs::{
    ops::{abs, dequantize, matmul, max, quantize, quantized_matmul, subtract},
    random, Array, Dtype,
};
use serde::Serialize;

use crate::{error::Result, measure::stats::median};

/// One kernel's outcome: accuracy against float32 and its speed.
#[derive(Debug, Clone, Serialize)]
pub struct KernelCheck {
    pub name: &'static str,
    pub m: i32,
    pub n: i32,
    pub k: i32,
    /// max |result − reference| ÷ max |reference|
    pub relative_error: f32,
    pub tolerance: f32,
    /// Median of the timed repeats, evaluation included.
    pub median_seconds: f64,
    pub tflops: f64,
}

impl KernelCheck {
    pub fn passed(&self) -> bool {
        self.relative_error.is_finite() && self.relative_error <= self.tolerance
    }
}

fn relative_error(result: &Array, reference: &Array) -> Result<f32> {
    let result = result.as_dtype(Dtype::Float32)?;
    let diff = max(abs(subtract(&result, reference)?)?, None)?;
    let scale = max(abs(reference)?, None)?;
    Ok(diff.item_cast::<f32>() / scale.item_cast::<f32>())
}

/// Median wall time of `repeats` evaluations of `build()`, after one untimed warm-up (CUDA
/// JIT-compiles kernels on first use of a shape).
fn time_median(repeats: usize, build: impl Fn() -> Result<Array>) -> Result<f64> {
    build()?.eval()?;
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        build()?.eval()?;
        samples.push(start.elapsed().as_secs_f64());
    }
    Ok(median(&samples))
}

/// Runs `kernel` once to compare its `size`³ result with `reference`, then times it.
fn check(
    name: &'static str,
    size: i32,
    tolerance: f32,
    reference: &Array,
    repeats: usize,
    kernel: impl Fn() -> Result<Array>,
) -> Result<KernelCheck> {
    let relative_error = relative_error(&kernel()?, reference)?;
    let seconds = time_median(repeats, kernel)?;
    Ok(KernelCheck {
        name,
        m: size,
        n: size,
        k: size,
        relative_error,
        tolerance,
        median_seconds: seconds,
        tflops: 2.0 * f64::from(size).powi(3) / seconds / 1e12,
    })
}

/// Runs both checks on square `size`×`size` problems on MLX's current default device.
pub fn run(size: i32, repeats: usize) -> Result<Vec<KernelCheck>> {
    let (k0, k1, k2) = (random::key(7)?, random::key(8)?, random::key(9)?);
    let a = random::normal::<f32>(&[size, size], None, None, Some(&k0))?;
    let b = random::normal::<f32>(&[size, size], None, None, Some(&k1))?;

    let a16 = a.as_dtype(Dtype::Bfloat16)?;
    let b16 = b.as_dtype(Dtype::Bfloat16)?;
    let reference = matmul(a16.as_dtype(Dtype::Float32)?, b16.as_dtype(Dtype::Float32)?)?;
    let bf16 = check("bf16_matmul", size, 2e-2, &reference, repeats, || Ok(matmul(&a16, &b16)?))?;

    let w = random::normal::<f32>(&[size, size], None, None, Some(&k2))?.as_dtype(Dtype::Bfloat16)?;
    let (wq, scales, biases) = quantize(&w, 64, 4)?;
    let dequantized = dequantize(&wq, &scales, &biases, 64, 4)?.as_dtype(Dtype::Float32)?;
    let reference = matmul(a16.as_dtype(Dtype::Float32)?, dequantized.t())?;
    // bf16 activations and bf16 output: one bf16 rounding step is ~4e-3, sums add more.
    let q4 = check("q4_matmul", size, 5e-2, &reference, repeats, || {
        Ok(quantized_matmul(&a16, &wq, &scales, &biases, true, 64, 4)?)
    })?;
    Ok(vec![bf16, q4])
}
