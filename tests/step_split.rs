//! The two halves of a decode step: the host's share measured end to end (a host slowed on
//! purpose, by the injected per-token delay, shows up in each step's host part, not in its wait
//! for the token), and the compiled sampler (`--compile`) against the uncompiled step.
use std::{path::Path, process::Command};

mod common;

use mlxbench::{
    cache::KvCacheOptions,
    choice::Choice,
    generate::{compiled_sampler_traces, GenerateOptions, Generation},
    graph,
    measure::INJECTED_DELAY_VAR,
    models,
    prompt::Tokens,
    report::JsonReport,
    synth::Arch,
};

#[test]
fn an_injected_host_delay_is_host_time_not_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::tiny_model(tmp.path(), Arch::Llama, None);
    let delay_ms = 30.0;
    let out = Command::new(env!("CARGO_BIN_EXE_mlxbench"))
        .env(INJECTED_DELAY_VAR, format!("{}", (delay_ms * 1e3) as u64))
        .args(["run", "--model", model.to_str().unwrap(), "-p", "8", "-n", "6", "--repeats", "1", "--warmup", "0"])
        .args(["--device", "cpu", "--format", "json", "--no-save"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let report: JsonReport = serde_json::from_slice(&out.stdout).unwrap();
    let trial = &report.records[0].trials[0];
    let (tokens, queued) = (&trial.token_ms, &trial.step_queued_ms);
    assert_eq!((tokens.len(), queued.len()), (6, 6));
    for k in 1..tokens.len() {
        // The delay comes after token k − 1 is on the host and before step k + 1 is queued.
        let host = queued[k] - tokens[k - 1];
        let wait = tokens[k] - queued[k];
        assert!(host >= delay_ms, "step {k}: host part {host} ms misses the {delay_ms} ms delay");
        assert!(wait >= 0.0 && wait < delay_ms, "step {k}: wait {wait} ms holds the delay");
    }
    assert!(trial.step_host_p50_ms.unwrap() >= delay_ms);
    assert!(trial.step_host_share.unwrap() > 0.5, "{:?}", trial.step_host_share);
}

/// Greedy tokens and log-probabilities of `n` steps of `model` after a 12-token prompt.
fn greedy_run(model: &dyn mlxbench::models::LanguageModel, kv: KvCacheOptions, compile: bool, n: usize) -> Result<(Vec<u32>, Vec<Vec<f32>>), String> {
    let ids: Vec<u32> = (0..12).map(|i| (i * 37 + 5) % 200).collect();
    let options = GenerateOptions { n_generate: n, kv, compile, ..GenerateOptions::default() };
    let mut generation = Generation::new(model, &Tokens::single(ids).unwrap(), options).map_err(|e| e.to_string())?;
    let (mut tokens, mut logprobs) = (Vec::new(), Vec::new());
    while let Some(step) = generation.next_token().map_err(|e| e.to_string())? {
        tokens.push(step.tokens[0]);
        logprobs.push(common::host_f32(&step.logprobs));
    }
    Ok((tokens, logprobs))
}

/// Largest difference of the compiled sampler's log-probabilities from the uncompiled ones (both
/// float32): it runs the same operations, fused.
const COMPILED_LOGPROB_TOLERANCE: f32 = 1e-5;

/// `--compile` computes what the uncompiled step computes, for every architecture, cache kind and
/// weight type; a setting the uncompiled step refuses, the compiled one refuses too.
#[test]
fn the_compiled_sampler_matches_the_uncompiled_step() {
    let tmp = tempfile::tempdir().unwrap();
    let caches = [
        ("plain", KvCacheOptions::default()),
        ("kv8", KvCacheOptions { kv_bits: Some(8), ..KvCacheOptions::default() }),
        ("rotating", KvCacheOptions { max_kv_size: Some(16), ..KvCacheOptions::default() }),
    ];
    let mut compared = 0;
    for &arch in Arch::ALL {
        for bits in [None, Some(4)] {
            let dir = tmp.path().join(format!("{}-{bits:?}", arch.name()));
            std::fs::create_dir_all(&dir).unwrap();
            let loaded = models::load(&common::tiny_model(&dir, arch, bits)).unwrap();
            for (cache, kv) in caches {
                let label = format!("arch={} bits={bits:?} cache={cache}", arch.name());
                // 8 steps: the rotating cache (16 tokens) wraps after the 12-token prompt.
                let plain = greedy_run(loaded.model.as_ref(), kv, false, 8);
                let compiled = greedy_run(loaded.model.as_ref(), kv, true, 8);
                let (plain, compiled) = match (plain, compiled) {
                    (Ok(p), Ok(c)) => (p, c),
                    (Err(p), Err(c)) => {
                        assert_eq!(p, c, "{label}: refused differently");
                        eprintln!("compile: {label} refused: {p}");
                        continue;
                    }
                    (p, c) => panic!("{label}: uncompiled {:?} vs compiled {:?}", p.err(), c.err()),
                };
                assert_eq!(plain.0, compiled.0, "{label}: greedy tokens");
                let diff = plain.1.iter().flatten().zip(compiled.1.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                eprintln!("compile: {label} tokens_equal=true max_dlogprob={diff:.2e}");
                assert!(diff <= COMPILED_LOGPROB_TOLERANCE, "{label}: log-probabilities differ by {diff}");
                compared += 1;
            }
        }
    }
    assert!(compared >= Arch::ALL.len() * 2 * 2, "only {compared} settings compared");
}

/// The compiled sampler is traced once for a shape and replayed: 600 generated tokens, across two
/// cache growth steps, trace it once on this thread.
#[test]
fn the_compiled_sampler_is_traced_once_over_600_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let loaded = models::load(&common::tiny_model(tmp.path(), Arch::Qwen3, Some(4))).unwrap();
    let before = compiled_sampler_traces();
    let (tokens, _) = greedy_run(loaded.model.as_ref(), KvCacheOptions::default(), true, 600).unwrap();
    assert_eq!(tokens.len(), 600);
    assert_eq!(compiled_sampler_traces() - before, 1);
    // Uncompiled, nothing is traced.
    greedy_run(loaded.model.as_ref(), KvCacheOptions::default(), false, 4).unwrap();
    assert_eq!(compiled_sampler_traces() - before, 1);
}

/// A batch-4 decode step builds exactly the primitives a batch-1 step builds: nothing of ours is
/// done per sequence (the batch rides along each operation's first axis), so a batch step's extra
/// cost is in MLX's kernels for more than one row (quantized matmul), not in our graph.
#[test]
fn a_batch_4_step_builds_the_primitives_of_a_batch_1_step() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("batch-graphs");
    std::fs::create_dir_all(&out).unwrap();
    for arch in [Arch::Llama, Arch::Qwen3] {
        let dir = tmp.path().join(arch.name());
        std::fs::create_dir_all(&dir).unwrap();
        let loaded = models::load(&common::tiny_model(&dir, arch, Some(4))).unwrap();
        let counts = |batch: usize| {
            let rows: Vec<Vec<u32>> = (0..batch).map(|b| (0..12).map(|i| (i * 31 + 7 * b as u32 + 3) % 200).collect()).collect();
            let options = GenerateOptions { n_generate: 2, ..GenerateOptions::default() };
            let mut generation = Generation::new(loaded.model.as_ref(), &Tokens::batch_of(rows).unwrap(), options).unwrap();
            let (sampled, logprobs) = generation.first_step_graph().unwrap();
            let path = out.join(format!("{}-b{batch}.dot", arch.name()));
            graph::export_dot(&[&sampled, &logprobs], &path).unwrap();
            graph::primitive_counts(&std::fs::read_to_string(&path).unwrap())
        };
        let (one, four) = (counts(1), counts(4));
        eprintln!("batch-graph: arch={} b1={} b4={} nodes", arch.name(), one.values().sum::<usize>(), four.values().sum::<usize>());
        assert!(one.contains_key("QuantizedMatmul"), "{one:?}");
        assert_eq!(one, four, "{}: batch 4 builds other primitives than batch 1", arch.name());
    }
}
