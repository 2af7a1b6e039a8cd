//! Mixture-of-experts layers (`models::layers::experts`) on hand-made weights: a router built so
//! that two tokens pick disjoint experts, checked against the same experts computed densely;
//! changing an expert changes exactly the tokens routed to it; the sorted path mlx-lm takes from
//! 64 token-expert pairs on gives the unsorted results; quantized experts (`gather_qmm`) agree
//! with their dequantized weights; a model's footprint counts a token's share of the experts.
use std::sync::Mutex;

mod common;

use common::host_f32;
use mlx_rs::{
    ops::{concatenate, dequantize, indexing::TryIndexOp, quantize, softmax_axis},
    random, Array,
};
use mlxbench::{
    config::QuantParams,
    device::{self, DeviceKind},
    models::{
        self,
        layers::{
            activations::swiglu,
            experts::{Routing, SparseMoe, SwitchGlu, SwitchLinear},
            Linear, Quantized, Weight,
        },
    },
    synth::{self, Arch, FloatDtype, SynthOptions},
};

/// MLX work is serialized: tests run on threads, MLX's default device and stream are global.
static MLX: Mutex<()> = Mutex::new(());

const HIDDEN: i32 = 64;
const WIDTH: i32 = 64;
const EXPERTS: i32 = 4;

/// Token A leans on features 0 and 1, token B on 2 and 3; the router reads expert e's logit
/// from feature e, so A picks experts {0, 1} and B {2, 3}, with distinct weights.
fn token(a: f32, b: f32, c: f32, d: f32) -> Vec<f32> {
    let mut x = vec![0.01; HIDDEN as usize];
    x[..4].copy_from_slice(&[a, b, c, d]);
    x
}

fn tokens() -> (Vec<f32>, Vec<f32>) {
    (token(2.0, 1.0, -1.0, -2.0), token(-2.0, -1.0, 1.5, 0.5))
}

fn router() -> Linear {
    let mut w = vec![0.0f32; (EXPERTS * HIDDEN) as usize];
    for e in 0..EXPERTS {
        w[(e * HIDDEN + e) as usize] = 1.0;
    }
    Linear::new(Weight::Float(Array::from_slice(&w, &[EXPERTS, HIDDEN])), None)
}

/// Stacked `[EXPERTS, out, in]` weights from `seed`.
fn stacked(seed: u64, out: i32, input: i32) -> Array {
    let key = random::key(seed).unwrap();
    random::normal::<f32>(&[EXPERTS, out, input], 0.0, 0.2, &key).unwrap()
}

struct Experts {
    gate: Array,
    up: Array,
    down: Array,
}

impl Experts {
    fn new(seed: u64) -> Self {
        Self { gate: stacked(seed, WIDTH, HIDDEN), up: stacked(seed + 1, WIDTH, HIDDEN), down: stacked(seed + 2, HIDDEN, WIDTH) }
    }

    fn moe(&self, routing: Routing) -> SparseMoe {
        let float = |w: &Array| SwitchLinear::Float(w.clone());
        SparseMoe {
            router: router(),
            experts: SwitchGlu { gate_proj: float(&self.gate), up_proj: float(&self.up), down_proj: float(&self.down) },
            top_k: 2,
            routing,
            reduce: None,
        }
    }

    /// Expert `e` on one token `[HIDDEN]`, with plain matmuls.
    fn dense(&self, e: i32, x: &Array) -> Array {
        let w = |stack: &Array| stack.try_index(e).unwrap();
        let gate = x.matmul(w(&self.gate).t()).unwrap();
        let up = x.matmul(w(&self.up).t()).unwrap();
        swiglu(&gate, &up).unwrap().matmul(w(&self.down).t()).unwrap()
    }
}

fn one(x: &[f32]) -> Array {
    Array::from_slice(x, &[1, 1, HIDDEN])
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The experts a token is routed to, sorted, and their weights in that order.
fn routed(moe: &SparseMoe, x: &[f32]) -> (Vec<u32>, Vec<f32>) {
    let (indices, scores) = moe.route(&one(x)).unwrap();
    let indices: Vec<u32> = indices.as_dtype(mlx_rs::Dtype::Uint32).unwrap().reshape(&[-1]).unwrap().as_slice::<u32>().to_vec();
    let scores = host_f32(&scores);
    let mut pairs: Vec<(u32, f32)> = indices.into_iter().zip(scores).collect();
    pairs.sort_by_key(|p| p.0);
    pairs.into_iter().unzip()
}

#[test]
fn tokens_go_to_their_experts_and_only_those_experts_change_them() {
    let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
    device::select(DeviceKind::Cpu).unwrap();
    let (a, b) = tokens();
    let experts = Experts::new(7);
    for routing in [Routing::TopKThenSoftmax, Routing::SoftmaxThenTopK { normalize: true }] {
        let moe = experts.moe(routing);
        let (to_a, weights_a) = routed(&moe, &a);
        let (to_b, weights_b) = routed(&moe, &b);
        assert_eq!((to_a.as_slice(), to_b.as_slice()), (&[0, 1][..], &[2, 3][..]), "{routing:?}");
        // Both routings weigh the chosen two by the softmax of their logits (Qwen3-MoE's
        // renormalized probabilities are the same numbers): A's logits 2 and 1, B's 1.5 and 0.5.
        let pair = |x: f32, y: f32| host_f32(&softmax_axis(Array::from_slice(&[x, y], &[2]), -1, true).unwrap());
        assert!(max_abs_diff(&weights_a, &pair(2.0, 1.0)) < 1e-6, "{routing:?}: {weights_a:?}");
        assert!(max_abs_diff(&weights_b, &pair(1.5, 0.5)) < 1e-6, "{routing:?}: {weights_b:?}");

        // The layer's output is the weighted sum of exactly those experts, computed densely.
        for (x, to, weights) in [(&a, &to_a, &weights_a), (&b, &to_b, &weights_b)] {
            let x_row = Array::from_slice(x, &[1, HIDDEN]);
            let expected = to.iter().zip(weights).fold(Array::zeros::<f32>(&[1, HIDDEN]).unwrap(), |sum, (&e, &w)| {
                sum.add(experts.dense(e as i32, &x_row).multiply(Array::from_f32(w)).unwrap()).unwrap()
            });
            let got = moe.forward(&one(x)).unwrap();
            assert_eq!(got.shape(), &[1, 1, HIDDEN]);
            let diff = max_abs_diff(&host_f32(&got), &host_f32(&expected));
            assert!(diff < 1e-5, "{routing:?}: MoE output differs from its experts computed densely by {diff}");
        }

        // Changing expert 2 (B's, not A's) changes B's output and leaves A's bit for bit.
        let changed = Experts { down: experts.down.multiply(Array::from_slice(&[1.0f32, 1.0, 3.0, 1.0], &[EXPERTS, 1, 1])).unwrap(), ..Experts::new(7) };
        let changed_moe = changed.moe(routing);
        let out = |moe: &SparseMoe, x: &[f32]| host_f32(&moe.forward(&one(x)).unwrap());
        assert_eq!(out(&moe, &a), out(&changed_moe, &a), "{routing:?}: token A does not use expert 2");
        let shift = max_abs_diff(&out(&moe, &b), &out(&changed_moe, &b));
        assert!(shift > 1e-2, "{routing:?}: token B uses expert 2, its output moved by {shift}");
        assert!(max_abs_diff(&out(&moe, &a), &out(&moe, &b)) > 1e-2, "different experts, different outputs");
    }
}

#[test]
fn many_tokens_take_the_sorted_path_with_the_same_results() {
    let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
    device::select(DeviceKind::Cpu).unwrap();
    let (a, b) = tokens();
    let moe = Experts::new(11).moe(Routing::TopKThenSoftmax);
    // 40 tokens × 2 experts = 80 pairs: mlx-lm sorts them by expert (from 64 on).
    let rows: Vec<f32> = (0..40).flat_map(|i| if i % 3 == 0 { a.clone() } else { b.clone() }).collect();
    let batch = host_f32(&moe.forward(&Array::from_slice(&rows, &[1, 40, HIDDEN])).unwrap());
    let (alone_a, alone_b) = (host_f32(&moe.forward(&one(&a)).unwrap()), host_f32(&moe.forward(&one(&b)).unwrap()));
    for (i, row) in batch.chunks(HIDDEN as usize).enumerate() {
        let alone = if i % 3 == 0 { &alone_a } else { &alone_b };
        let diff = max_abs_diff(row, alone);
        assert!(diff < 1e-5, "token {i}: sorted batch and single token differ by {diff}");
    }
}

#[test]
fn quantized_experts_match_their_dequantized_weights() {
    let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
    device::select(DeviceKind::Cpu).unwrap();
    let (a, b) = tokens();
    let experts = Experts::new(13);
    let params = QuantParams { group_size: 32, bits: 4 };
    let quantized = |w: &Array| {
        let (weight, scales, biases) = quantize(w, params.group_size, params.bits).unwrap();
        let dequantized = dequantize(&weight, &scales, &biases, params.group_size, params.bits).unwrap();
        (SwitchLinear::Quantized(Quantized { weight, scales, biases, params }), dequantized)
    };
    let ((gate, gate_dq), (up, up_dq), (down, down_dq)) = (quantized(&experts.gate), quantized(&experts.up), quantized(&experts.down));
    let routing = Routing::SoftmaxThenTopK { normalize: true };
    let q_moe = SparseMoe { router: router(), experts: SwitchGlu { gate_proj: gate, up_proj: up, down_proj: down }, top_k: 2, routing, reduce: None };
    let dq_moe = Experts { gate: gate_dq, up: up_dq, down: down_dq }.moe(routing);
    let x = concatenate(&[one(&a), one(&b)], 1).unwrap();
    let (q, dq) = (host_f32(&q_moe.forward(&x).unwrap()), host_f32(&dq_moe.forward(&x).unwrap()));
    let scale = dq.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(&q, &dq);
    assert!(scale > 0.1 && diff < 1e-4 * scale.max(1.0), "gather_qmm vs gather_mm on the same weights: {diff} (scale {scale})");
}

/// What a decode step reads of a mixture of experts: every tensor but the experts a token is not
/// routed to (6 of tiny Mixtral's 8 per layer), counted from the files themselves.
#[test]
fn a_token_reads_its_share_of_the_experts() {
    let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
    device::select(DeviceKind::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = synth::preset_config("tiny", Some(Arch::Mixtral)).unwrap();
    let options = SynthOptions { bits: Some(4), dtype: FloatDtype::Float32, ..SynthOptions::default() };
    let summary = synth::write_model(&config, &options, dir.path()).unwrap();
    let tensors = Array::load_safetensors(dir.path().join("model.safetensors")).unwrap();
    let bytes = |keep: &dyn Fn(&str) -> bool| tensors.iter().filter(|(n, _)| keep(n)).map(|(_, a)| a.nbytes() as u64).sum::<u64>();
    let (all, experts) = (bytes(&|_| true), bytes(&|n| n.contains(".switch_mlp.")));
    assert!(experts > all / 2, "the experts are most of the model: {experts} of {all}");
    let footprint = models::load(dir.path()).unwrap().footprint;
    assert_eq!(footprint.weight_bytes, all);
    assert_eq!(footprint.decode_bytes, all - experts / 8 * 6);
    assert_eq!((footprint.parameters, footprint.active_parameters), (summary.parameters, summary.active_parameters));
    assert_eq!(footprint.parameters - footprint.active_parameters, 2 * 6 * 3 * 128 * 256);
}
