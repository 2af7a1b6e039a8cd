//! Speculative decoding (`src/speculative.rs`): greedy speculative tokens equal the target's own
//! greedy tokens with any draft (the target itself: everything accepted; an unrelated
//! random-weight draft of the same vocabulary), float32 and 4-bit, plain and quantized KV cache;
//! the same tokens and `from_draft` flags as mlx-lm's `speculative_generate_step`; cache trimming
//! with mlx-lm's rules; the refusals; and `run --draft-model` end to end.
use std::path::{Path, PathBuf};

mod common;

use common::reference;
use mlxbench::{
    bench::{engine::MlxLmProcess, Axes, Engine, PreparedModel, Repeats, Session, Settings, Silent, Status},
    cache::{self, KvCache, KvCacheOptions},
    device::{self, DeviceKind},
    generate::{GenerateOptions, Generation, Sampling},
    measure::speculative::{run_speculative_trial, steps_from_flags, SpeculativeTrial, TimedStep},
    models::LanguageModel,
    prompt::Tokens,
    speculative::{check_draft, SpeculativeGeneration},
    synth::{self, Arch, FloatDtype, SynthOptions},
    tokenizer::Tokenizer,
};

/// A tiny model of `arch` written by `synth` with `seed` (float32 compute; `bits` weights).
fn model(dir: &Path, name: &str, arch: Arch, bits: Option<i32>, seed: u64) -> PathBuf {
    let out = dir.join(name);
    let config = synth::preset_config("tiny", Some(arch)).unwrap();
    let options = SynthOptions { bits, dtype: FloatDtype::Float32, seed, ..SynthOptions::default() };
    synth::write_model(&config, &options, &out).unwrap();
    out
}

fn prompt(len: usize) -> Tokens {
    Tokens::single((0..len as u32).map(|i| (i * 37 + 11) % 500).collect()).unwrap()
}

fn options(n_generate: usize, kv_bits: Option<i32>) -> GenerateOptions {
    GenerateOptions {
        n_generate,
        sampling: Sampling::Greedy,
        kv: KvCacheOptions { kv_bits, ..KvCacheOptions::default() },
        prefill_step_size: 2048,
        stop_tokens: Vec::new(),
        compile: false,
    }
}

fn plain_greedy(model: &dyn LanguageModel, prompt: &Tokens, options: &GenerateOptions) -> Vec<u32> {
    let mut generation = Generation::new(model, prompt, options.clone()).unwrap();
    let mut out = Vec::new();
    while let Some(step) = generation.next_token().unwrap() {
        out.push(step.tokens[0]);
    }
    out
}

/// Tokens and `from_draft` flags of a speculative generation, and its verify steps.
fn speculative(
    target: &dyn LanguageModel,
    draft: &dyn LanguageModel,
    prompt: &Tokens,
    options: &GenerateOptions,
    k: usize,
) -> (Vec<u32>, Vec<bool>, SpeculativeTrial) {
    let mut generation = SpeculativeGeneration::new(target, draft, prompt, options.clone(), k).unwrap();
    let (mut tokens, mut flags, mut steps) = (Vec::new(), Vec::new(), Vec::new());
    while !generation.done() {
        generation.draft().unwrap();
        let outcome = generation.verify().unwrap();
        for t in generation.take_step_tokens() {
            tokens.push(t.token);
            flags.push(t.from_draft);
        }
        steps.push(TimedStep { outcome, draft: None, verify: None });
    }
    (tokens, flags, SpeculativeTrial::of(k, &steps))
}

#[test]
fn greedy_speculative_tokens_are_the_targets_own_with_any_draft() {
    device::select(DeviceKind::Cpu).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for bits in [None, Some(4)] {
        let tag = bits.map_or("f32".to_string(), |b| format!("q{b}"));
        let target = PreparedModel::load(model(tmp.path(), &format!("target-{tag}"), Arch::Llama, bits, 3).to_str().unwrap()).unwrap();
        // Unrelated: another architecture, other weights, the same (synth) tokenizer.
        let other = PreparedModel::load(model(tmp.path(), &format!("other-{tag}"), Arch::Qwen3, bits, 11).to_str().unwrap()).unwrap();
        let target = target.loaded.model.as_ref();
        let other = other.loaded.model.as_ref();
        let prompt = prompt(12);
        for kv_bits in [None, Some(8)] {
            for k in [2, 4] {
                // A multiple of k + 1, so that a draft that is always right fills every step.
                let n = 3 * (k + 1);
                let options = options(n, kv_bits);
                let expected = plain_greedy(target, &prompt, &options);
                let what = format!("{tag} kv {kv_bits:?} k {k}");

                let (tokens, flags, stats) = speculative(target, target, &prompt, &options, k);
                assert_eq!(tokens, expected, "target as its own draft, {what}");
                assert_eq!(stats.acceptance_rate, Some(1.0), "{what}");
                assert_eq!(stats.mean_accepted_length, Some((k + 1) as f64), "{what}");
                assert_eq!(flags.iter().filter(|f| !**f).count(), 3, "one bonus token per step, {what}");

                let (tokens, _, stats) = speculative(target, other, &prompt, &options, k);
                assert_eq!(tokens, expected, "unrelated draft, {what}");
                let rate = stats.acceptance_rate.unwrap();
                assert!(rate < 1.0, "an unrelated random draft is not always right ({rate}), {what}");
            }
        }
    }
}

#[test]
fn sampled_speculative_decoding_is_reproducible_and_counts_what_it_kept() {
    device::select(DeviceKind::Cpu).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let target = PreparedModel::load(model(tmp.path(), "t", Arch::Llama, None, 3).to_str().unwrap()).unwrap();
    let draft = PreparedModel::load(model(tmp.path(), "d", Arch::Llama, None, 5).to_str().unwrap()).unwrap();
    let (target, draft) = (target.loaded.model.as_ref(), draft.loaded.model.as_ref());
    let sampled = |seed| GenerateOptions { sampling: Sampling::Random { temperature: 1.0, top_p: 0.9, seed }, ..options(14, None) };
    let (a, flags, stats) = speculative(target, draft, &prompt(8), &sampled(1), 3);
    let (b, _, _) = speculative(target, draft, &prompt(8), &sampled(1), 3);
    assert_eq!(a, b, "the same seed draws the same tokens");
    assert_eq!(a.len(), 14);
    assert!(a.iter().all(|&t| t < 512));
    assert_eq!(stats.accepted_tokens, flags.iter().filter(|f| **f).count());
    let emitted: usize = 14;
    assert_eq!(stats.mean_accepted_length, Some(emitted as f64 / stats.verify_steps as f64));
}

#[test]
fn our_tokens_and_acceptance_equal_mlx_lms_speculative_generate_step() {
    device::select(DeviceKind::Cpu).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let target_dir = model(tmp.path(), "target", Arch::Llama, Some(4), 3);
    let draft_dir = model(tmp.path(), "draft", Arch::Llama, Some(4), 5);
    let target = PreparedModel::load(target_dir.to_str().unwrap()).unwrap();
    let draft = PreparedModel::load(draft_dir.to_str().unwrap()).unwrap();
    let mut mlx_lm = MlxLmProcess::start(&reference::python_arg(), DeviceKind::Cpu).unwrap();
    mlx_lm.load(&target_dir).unwrap();
    mlx_lm.load_draft(&draft_dir).unwrap();
    let prompt = prompt(20);
    for (kv_bits, k, depth) in [(None, 2, 0), (None, 4, 8), (Some(8), 3, 0)] {
        let options = options(16, kv_bits);
        for (draft_model, name) in [(&draft, "draft"), (&target, "target itself")] {
            let what = format!("{name}, kv {kv_bits:?}, k {k}, depth {depth}");
            if std::ptr::eq(draft_model, &target) {
                mlx_lm.load_draft(&target_dir).unwrap();
            } else {
                mlx_lm.load_draft(&draft_dir).unwrap();
            }
            let ours = run_speculative_trial(target.loaded.model.as_ref(), draft_model.loaded.model.as_ref(), &prompt, depth, &options, k)
                .unwrap();
            let theirs = mlx_lm.trial(&prompt, depth, &options, Some(k)).unwrap();
            assert_eq!(ours.generated, theirs.tokens, "tokens, {what}");
            assert_eq!(ours.from_draft, theirs.from_draft, "from_draft flags, {what}");
            let their_steps: Vec<TimedStep> = steps_from_flags(&theirs.from_draft, k, options.n_generate)
                .into_iter()
                .map(|outcome| TimedStep { outcome, draft: None, verify: None })
                .collect();
            let theirs = SpeculativeTrial::of(k, &their_steps);
            let ours = ours.metrics.speculative.unwrap();
            assert_eq!(
                (ours.verify_steps, ours.drafted_tokens, ours.accepted_tokens, &ours.acceptance_by_position),
                (theirs.verify_steps, theirs.drafted_tokens, theirs.accepted_tokens, &theirs.acceptance_by_position),
                "{what}"
            );
        }
    }
}

#[test]
fn caches_trim_as_mlx_lms() {
    device::select(DeviceKind::Cpu).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let model = PreparedModel::load(model(tmp.path(), "m", Arch::Llama, None, 3).to_str().unwrap()).unwrap();
    let model = model.loaded.model.as_ref();
    let ids = prompt(10).to_array().unwrap();
    let tail = Tokens::single(vec![7, 8, 9]).unwrap().to_array().unwrap();
    for kv in [KvCacheOptions::default(), KvCacheOptions { kv_bits: Some(8), ..KvCacheOptions::default() }] {
        // Run 10 + 3 tokens, trim the 3, run them again: the logits equal a run without the detour.
        let mut caches = model.make_caches(&kv).unwrap();
        model.forward(&ids, Some(&mut caches)).unwrap();
        caches.iter_mut().for_each(|c| c.maybe_quantize(&kv).unwrap());
        let first = model.forward(&tail, Some(&mut caches)).unwrap();
        assert_eq!(cache::trim_caches(&mut caches, 3), 3);
        assert_eq!(caches[0].offset(), 10);
        let again = model.forward(&tail, Some(&mut caches)).unwrap();
        assert_eq!(common::host_f32(&first), common::host_f32(&again), "kv {:?}", kv.kv_bits);
        assert_eq!(cache::trim_caches(&mut caches, 100), 13, "at most what is there");
        assert_eq!(caches[0].offset(), 0);
    }
    // A rotating cache trims until it wraps.
    let kv = KvCacheOptions { max_kv_size: Some(12), ..KvCacheOptions::default() };
    let mut caches = model.make_caches(&kv).unwrap();
    model.forward(&ids, Some(&mut caches)).unwrap();
    assert!(cache::can_trim(&caches) && matches!(caches[0], KvCache::Rotating(_)));
    model.forward(&tail, Some(&mut caches)).unwrap();
    assert!(!cache::can_trim(&caches), "13 tokens in a 12-token ring");
    assert_eq!(cache::trim_caches(&mut caches, 1), 0, "an untrimmable cache is left alone");
}

/// `from`'s tokenizer less its last token (and its merges) written into `to`: a tokenizer of
/// another vocabulary size.
fn write_cut_tokenizer(from: &Path, to: &Path) {
    let mut cut: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(from.join("tokenizer.json")).unwrap()).unwrap();
    let vocab = cut["model"]["vocab"].as_object_mut().unwrap();
    let last = vocab.iter().max_by_key(|(_, id)| id.as_u64()).map(|(t, _)| t.clone()).unwrap();
    vocab.remove(&last);
    cut["model"]["merges"] = serde_json::json!([]);
    std::fs::write(to.join("tokenizer.json"), cut.to_string()).unwrap();
}

#[test]
fn run_refuses_a_draft_of_another_vocabulary_before_loading_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let target = model(tmp.path(), "target", Arch::Llama, None, 3);
    let draft = model(tmp.path(), "draft", Arch::Llama, None, 5);
    write_cut_tokenizer(&target, &draft);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mlxbench"))
        .args(["run", "--device", "cpu", "--no-save", "--model", target.to_str().unwrap(), "--draft-model", draft.to_str().unwrap()])
        .output()
        .unwrap();
    let err = common::stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(target.to_str().unwrap()) && err.contains(draft.to_str().unwrap()) && err.contains("vocabulary"), "{err}");
    assert!(!err.contains("loading"), "refused before any model loads: {err}");

    // A draft of another family with the very same tokenizer: refused by family, naming both.
    let qwen = model(tmp.path(), "qwen-draft", Arch::Qwen3, None, 5);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mlxbench"))
        .args(["run", "--device", "cpu", "--no-save", "--model", target.to_str().unwrap(), "--draft-model", qwen.to_str().unwrap()])
        .output()
        .unwrap();
    let err = common::stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(target.to_str().unwrap()) && err.contains(qwen.to_str().unwrap()), "{err}");
    assert!(err.contains("qwen3, Qwen family") && err.contains("llama, Llama family"), "{err}");
    assert!(!err.contains("loading"), "refused before any model loads: {err}");
    // --compile compiles plain decoding only: with a draft, the speed-up would compare the two.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mlxbench"))
        .args(["run", "--device", "cpu", "--no-save", "--compile", "--model", target.to_str().unwrap(), "--draft-model", target.to_str().unwrap()])
        .output()
        .unwrap();
    let err = common::stderr(&out);
    assert!(!out.status.success() && err.contains("--compile") && err.contains("--draft-model"), "{err}");
    // The families: sizes of one family pass, another family or an unknown type as said.
    use mlxbench::speculative::check_draft_family;
    check_draft_family("t", "qwen3_moe", "d", "qwen2").unwrap();
    check_draft_family("t", "mixtral", "d", "mistral").unwrap();
    check_draft_family("t", "gemma3_text", "d", "gemma2").unwrap();
    check_draft_family("t", "llama", "d", "some_new_type").unwrap();
    assert!(check_draft_family("t", "llama", "d", "mistral").is_err());
    assert!(check_draft_family("t", "phi3", "d", "qwen3").is_err());
}

#[test]
fn refusals_name_what_is_wrong() {
    device::select(DeviceKind::Cpu).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = model(tmp.path(), "m", Arch::Llama, None, 3);
    let m = PreparedModel::load(dir.to_str().unwrap()).unwrap();
    let lm = m.loaded.model.as_ref();
    let batch = Tokens::batch_of(vec![vec![1, 2, 3], vec![4, 5, 6]]).unwrap();
    let err = SpeculativeGeneration::new(lm, lm, &batch, options(4, None), 2).err().unwrap().to_string();
    assert!(err.contains("batch 1") && err.contains("got batch 2"), "{err}");
    let err = SpeculativeGeneration::new(lm, lm, &prompt(4), options(4, None), 0).err().unwrap().to_string();
    assert!(err.contains("--num-draft-tokens"), "{err}");
    // A rotating cache that wraps mid-generation cannot be rewound: refused by name, not garbled.
    let kv = KvCacheOptions { max_kv_size: Some(8), ..KvCacheOptions::default() };
    let wrap = GenerateOptions { kv, ..options(12, None) };
    let other = PreparedModel::load(model(tmp.path(), "o", Arch::Llama, None, 9).to_str().unwrap()).unwrap();
    let err = run_speculative_trial(lm, other.loaded.model.as_ref(), &prompt(6), 0, &wrap, 4).err().unwrap().to_string();
    assert!(err.contains("trimmable") && err.contains("RotatingCache"), "{err}");

    // Tokenizers: the same one passes; another vocabulary is refused naming both models.
    let ours = Tokenizer::from_dir(&dir).unwrap();
    check_draft("target-m", &ours, "draft-m", &ours).unwrap();
    let small = tmp.path().join("small-vocab");
    std::fs::create_dir_all(&small).unwrap();
    write_cut_tokenizer(&dir, &small);
    let theirs = Tokenizer::from_dir(&small).unwrap();
    let err = check_draft("target-m", &ours, "draft-m", &theirs).unwrap_err().to_string();
    assert!(err.contains("target-m") && err.contains("draft-m") && err.contains("vocabulary"), "{err}");
}

#[test]
fn run_with_a_draft_model_records_acceptance_and_speedup_per_k() {
    device::select(DeviceKind::Cpu).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let target = model(tmp.path(), "t", Arch::Llama, Some(4), 3).to_string_lossy().into_owned();
    let axes = Axes {
        models: vec![target.clone()],
        kv_bits: vec![None],
        batch: vec![1],
        depth: vec![0],
        n_prompt: vec![16],
        n_generate: vec![20],
        engines: vec![Engine::Mlxbench],
        draft_model: Some(target.clone()),
        num_draft_tokens: vec![2, 8],
    };
    let points = axes.expand().unwrap();
    assert_eq!(points.iter().map(|p| p.draft.as_ref().map(|d| d.num_draft_tokens)).collect::<Vec<_>>(), [None, Some(2), Some(8)]);
    let settings = Settings { warmup: 0, repeats: Repeats::Fixed(2), device: DeviceKind::Cpu, ..Settings::default() };
    let records = Session::new(settings, common::run_context(2), None, &mut Silent).run(&points).unwrap();
    assert!(records.iter().all(|r| r.status == Status::Ok), "{:?}", records.iter().map(|r| &r.error).collect::<Vec<_>>());
    assert!(records[0].speculative.is_none());
    for (r, k) in records[1..].iter().zip([2usize, 8]) {
        let s = r.speculative.as_ref().unwrap();
        assert_eq!((s.num_draft_tokens, s.acceptance_rate), (k, Some(1.0)), "the target as its own draft");
        assert_eq!(s.acceptance_by_position.len(), k);
        assert!(s.speedup.is_some() && s.speedup_ci95.is_some(), "{s:?}");
        assert_eq!(s.verify_cost_ms.len(), k + 1, "verify cost for T = 1…k+1");
        assert!(s.predicted_speedup.is_some());
        let share = s.draft_time_share.unwrap();
        assert!(share > 0.0 && share < 1.0, "{share}");
    }
    // The exports keep the new measures: CSV rows read back into the same summaries.
    let csv = tmp.path().join("r.csv");
    let mut file = mlxbench::report::ResultsFile::open(&csv, mlxbench::report::Format::Csv).unwrap();
    file.save(&records).unwrap();
    let back = mlxbench::report::read::read_records(&csv).unwrap();
    assert_eq!(back[2].point.draft, records[2].point.draft);
    let (a, b) = (back[2].speculative.as_ref().unwrap(), records[2].speculative.as_ref().unwrap());
    assert_eq!((a.acceptance_rate, a.speedup, &a.verify_cost_ms), (b.acceptance_rate, b.speedup, &b.verify_cost_ms));
    let md = mlxbench::report::Printable::render(records.as_slice(), mlxbench::report::Format::Md).unwrap();
    assert!(md.contains("Speculative decoding") && md.contains("acceptance"), "{md}");
    // The HTML page plots the speed-up and the acceptance against k (two values of k here).
    let page = mlxbench::report::html::render_html(&records, &[]).unwrap();
    for title in ["speculative speed-up over plain decoding against k", "draft acceptance rate against k"] {
        assert!(page.contains(&format!("<figcaption>{title}</figcaption>")), "{title}");
    }
    assert!(page.contains("Speculative decoding"));
}
