//! Run with: cargo bench --bench kernels
//!
//! The two kernels an LLM's decode and prefill live on, on the default device (GPU when this MLX
//! has one): a bf16 matmul and a 4-bit quantized matmul, with evaluation inside the timed region.
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use mlx_rs::{
    ops::{matmul, quantize, quantized_matmul},
    random, Array, Dtype,
};
use mlxbench::device;

fn bf16(shape: &[i32], seed: u64) -> Array {
    let key = random::key(seed).unwrap();
    random::normal::<f32>(shape, None, None, Some(&key)).unwrap().as_dtype(Dtype::Bfloat16).unwrap()
}

fn kernels(c: &mut Criterion) {
    let info = device::select(device::default_kind()).expect("MLX 0.32.2");
    let size = if info.device == device::DeviceKind::Gpu { 4096 } else { 256 };
    let mut group = c.benchmark_group(format!("kernels/{}", info.backend));
    group.sampling_mode(SamplingMode::Flat).sample_size(10).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(2 * (size as u64).pow(3)));

    let (a, b) = (bf16(&[size, size], 1), bf16(&[size, size], 2));
    group.bench_function(BenchmarkId::new("bf16_matmul", size), |bench| {
        bench.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                matmul(&a, &b).unwrap().eval().unwrap();
            }
            start.elapsed()
        })
    });

    let (wq, scales, biases) = quantize(&b, 64, 4).unwrap();
    group.bench_function(BenchmarkId::new("q4_matmul", size), |bench| {
        bench.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                quantized_matmul(&a, &wq, &scales, &biases, true, 64, 4).unwrap().eval().unwrap();
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
