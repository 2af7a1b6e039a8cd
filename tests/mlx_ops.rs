//! MLX through mlx-rs on the CPU backend, checked against numbers computed here by hand or by
//! straightforward host-side reference code.
mod common;

use common::host_f32 as to_vec;
use half::{bf16, f16};
use mlx_rs::{
    fast::{self, ScaledDotProductAttentionMask},
    ops::{dequantize, matmul, quantize, quantized_matmul},
    Array, Dtype,
};
use mlxbench::device::{self, DeviceKind};

fn cpu() {
    device::select(DeviceKind::Cpu).expect("MLX 0.32.2 on the CPU");
}

/// Deterministic values in [-1, 1): a 64-bit LCG, so tests need no MLX randomness.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: got {g}, want {w}");
    }
}

#[test]
fn matmul_matches_hand_computed_product() {
    cpu();
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = Array::from_slice(&[7.0f32, 8.0, 9.0, 10.0, 11.0, 12.0], &[3, 2]);
    let c = matmul(&a, &b).unwrap();
    assert_eq!(c.shape(), &[2, 2]);
    // [1 2 3; 4 5 6] x [7 8; 9 10; 11 12] = [58 64; 139 154]
    assert_eq!(to_vec(&c), vec![58.0, 64.0, 139.0, 154.0]);
}

#[test]
fn quantize_round_trip_picks_the_nearest_level() {
    cpu();
    let (rows, cols, group) = (8usize, 256usize, 64usize);
    let host: Vec<f32> = values(rows * cols, 1).iter().map(|v| v * 3.0).collect();
    let w = Array::from_slice(&host, &[rows as i32, cols as i32]);
    let mut worst = Vec::new();
    for bits in [4, 8] {
        let (wq, scales, biases) = quantize(&w, group as i32, bits).unwrap();
        assert_eq!(wq.shape(), &[rows as i32, (cols * bits as usize / 32) as i32]);
        assert_eq!(scales.shape(), &[rows as i32, (cols / group) as i32]);
        let back = to_vec(&dequantize(&wq, &scales, &biases, group as i32, bits).unwrap());
        let (scales, biases) = (to_vec(&scales), to_vec(&biases));
        let top = ((1u32 << bits) - 1) as f32;
        let mut max_err = 0.0f32;
        for (i, (orig, deq)) in host.iter().zip(&back).enumerate() {
            // Affine quantization: each group has levels bias + q·scale, q in 0..2^bits.
            let (scale, bias) = (scales[i / group], biases[i / group]);
            let level = (deq - bias) / scale;
            assert!(
                (level - level.round()).abs() < 1e-3 && (-1e-3..=top + 1e-3).contains(&level),
                "bits {bits}, element {i}: {deq} is not a level of its group"
            );
            // ... and the element maps to the nearest of them.
            let nearest = bias + ((orig - bias) / scale).round().clamp(0.0, top) * scale;
            let err = (orig - deq).abs();
            assert!(err <= (orig - nearest).abs() + 1e-5, "bits {bits}, element {i}: {orig} -> {deq}, nearest level {nearest}");
            // MLX shifts the levels so that 0 is one of them; the top level may then fall short of
            // the group's far end by up to one step: never more than a step of error.
            assert!(err <= 1.01 * scale.abs() + 1e-6, "bits {bits}, element {i}: error {err}, step {scale}");
            max_err = max_err.max(err);
        }
        worst.push(max_err);
    }
    assert!(worst[1] < worst[0] / 8.0, "8-bit error {} not far below 4-bit {}", worst[1], worst[0]);
}

#[test]
fn quantized_matmul_equals_matmul_with_dequantized_weights() {
    cpu();
    for bits in [4, 8] {
        let x = Array::from_slice(&values(4 * 128, 2), &[4, 128]);
        let w = Array::from_slice(&values(32 * 128, 3), &[32, 128]);
        let (wq, scales, biases) = quantize(&w, 64, bits).unwrap();
        let y = quantized_matmul(&x, &wq, &scales, &biases, true, 64, bits).unwrap();
        assert_eq!(y.shape(), &[4, 32]);
        let deq = dequantize(&wq, &scales, &biases, 64, bits).unwrap();
        let reference = matmul(&x, deq.t()).unwrap();
        assert_close(&to_vec(&y), &to_vec(&reference), 1e-4, &format!("qmm {bits}-bit"));
    }
}

#[test]
fn rms_norm_matches_reference() {
    cpu();
    let (rows, dim, eps) = (3usize, 16usize, 1e-5f32);
    let x = values(rows * dim, 4);
    let w: Vec<f32> = values(dim, 5).iter().map(|v| 1.0 + v).collect();
    let got = fast::rms_norm(
        Array::from_slice(&x, &[rows as i32, dim as i32]),
        Some(&Array::from_slice(&w, &[dim as i32])),
        eps,
    )
    .unwrap();
    let mut want = Vec::new();
    for row in x.chunks(dim) {
        let mean_sq = row.iter().map(|v| v * v).sum::<f32>() / dim as f32;
        let inv = 1.0 / (mean_sq + eps).sqrt();
        want.extend(row.iter().zip(&w).map(|(v, g)| v * inv * g));
    }
    assert_close(&to_vec(&got), &want, 1e-5, "rms_norm");
}

/// RoPE by its definition: rotate pairs of features by (offset + position) · base^(−2i/d).
fn rope_reference(x: &[f32], len: usize, dim: usize, traditional: bool, base: f32, offset: usize) -> Vec<f32> {
    let mut out = x.to_vec();
    let half = dim / 2;
    for p in 0..len {
        for i in 0..half {
            let theta = (offset + p) as f32 * base.powf(-2.0 * i as f32 / dim as f32);
            let (a, b) = if traditional { (2 * i, 2 * i + 1) } else { (i, i + half) };
            let (xa, xb) = (x[p * dim + a], x[p * dim + b]);
            out[p * dim + a] = xa * theta.cos() - xb * theta.sin();
            out[p * dim + b] = xb * theta.cos() + xa * theta.sin();
        }
    }
    out
}

#[test]
fn rope_matches_reference_in_both_layouts() {
    cpu();
    let (len, dim, offset, base) = (5usize, 8usize, 3usize, 10000.0f32);
    let x = values(len * dim, 6);
    for traditional in [false, true] {
        let arr = Array::from_slice(&x, &[1, 1, len as i32, dim as i32]);
        let got = fast::rope(&arr, dim as i32, traditional, base, 1.0, offset as i32, None).unwrap();
        let want = rope_reference(&x, len, dim, traditional, base, offset);
        assert_close(&to_vec(&got), &want, 1e-5, &format!("rope traditional={traditional}"));
    }
}

/// softmax(q·kᵀ·scale)·v per head, with grouped-query heads and an end-aligned causal mask.
#[allow(clippy::too_many_arguments)] // the shape of a reference formula, used by two tests
fn attention_reference(
    q: &[f32], k: &[f32], v: &[f32], heads: usize, kv_heads: usize, lq: usize, lk: usize, d: usize, causal: bool,
) -> Vec<f32> {
    let scale = 1.0 / (d as f32).sqrt();
    let mut out = vec![0.0; heads * lq * d];
    for h in 0..heads {
        let kh = h / (heads / kv_heads);
        for i in 0..lq {
            let qi = &q[(h * lq + i) * d..][..d];
            let visible = if causal { lk - lq + i + 1 } else { lk };
            let scores: Vec<f32> = (0..visible)
                .map(|j| qi.iter().zip(&k[(kh * lk + j) * d..][..d]).map(|(a, b)| a * b).sum::<f32>() * scale)
                .collect();
            let max = scores.iter().cloned().fold(f32::MIN, f32::max);
            let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f32 = exps.iter().sum();
            for (j, e) in exps.iter().enumerate() {
                for c in 0..d {
                    out[(h * lq + i) * d + c] += e / total * v[(kh * lk + j) * d + c];
                }
            }
        }
    }
    out
}

#[test]
fn scaled_dot_product_attention_matches_reference() {
    cpu();
    let (heads, kv_heads, lq, lk, d) = (4usize, 2usize, 3usize, 5usize, 8usize);
    let q = values(heads * lq * d, 7);
    let k = values(kv_heads * lk * d, 8);
    let v = values(kv_heads * lk * d, 9);
    let qa = Array::from_slice(&q, &[1, heads as i32, lq as i32, d as i32]);
    let ka = Array::from_slice(&k, &[1, kv_heads as i32, lk as i32, d as i32]);
    let va = Array::from_slice(&v, &[1, kv_heads as i32, lk as i32, d as i32]);
    let scale = 1.0 / (d as f32).sqrt();
    for causal in [false, true] {
        let mask = causal.then_some(ScaledDotProductAttentionMask::Causal);
        let got = fast::scaled_dot_product_attention(&qa, &ka, &va, scale, mask, None).unwrap();
        let want = attention_reference(&q, &k, &v, heads, kv_heads, lq, lk, d, causal);
        assert_close(&to_vec(&got), &want, 1e-5, &format!("sdpa causal={causal}"));
    }
}

#[test]
fn half_precision_elements_read_back_exactly() {
    cpu();
    let halves: Vec<f16> = [1.5f32, -2.25, 65504.0, 0.000061035156].iter().map(|v| f16::from_f32(*v)).collect();
    let a = Array::from_slice(&halves, &[4]);
    assert_eq!(a.dtype(), Dtype::Float16);
    a.eval().unwrap();
    assert_eq!(a.as_slice::<f16>(), halves.as_slice());
    assert_eq!(Array::from_slice(&halves[1..2], &[]).item_exact::<f16>(), f16::from_f32(-2.25));

    // MLX's float32 -> bfloat16 rounding agrees with the `half` crate's (round to nearest even).
    let floats = [1.0f32 / 3.0, -7.75, 3.0e38, 1.0e-20];
    let b = Array::from_slice(&floats, &[4]).as_dtype(Dtype::Bfloat16).unwrap();
    b.eval().unwrap();
    let want: Vec<bf16> = floats.iter().map(|v| bf16::from_f32(*v)).collect();
    assert_eq!(b.as_slice::<bf16>(), want.as_slice());
    assert_eq!(Array::from_slice(&want[1..2], &[]).item_exact::<bf16>(), bf16::from_f32(-7.75));
}
