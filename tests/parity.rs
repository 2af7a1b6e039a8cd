//! Parity with Apple's Python mlx-lm on the same weights: for each architecture, float and 4-bit
//! models written by mlx-lm's own classes (tests/reference/mlx_lm_reference.py), the same prompts
//! through mlx-lm's `generate_step` and through our loader, caches and decode loop. Logits (as
//! log-probabilities) must agree within a tolerance and the 32 greedy tokens must be identical,
//! without KV quantization, with kv_bits 8 and 4, with a rotating cache and with chunked prefill.
//!
//! Needs the Python reference that `.ci/setup` installs into target/pyref (or
//! `$MLXBENCH_REFERENCE_PYTHON`).
use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

mod common;

use common::host_f32 as logprobs_row;
use mlx_rs::Array;
use mlxbench::{
    cache::KvCacheOptions,
    device::{self, DeviceKind},
    generate::{GenerateOptions, Generation, Sampling},
    graph, models,
    prompt::Tokens,
};
use serde::Deserialize;

/// MLX work is serialized: tests run on threads, MLX's default device and stream are global.
static MLX: Mutex<()> = Mutex::new(());

/// Largest allowed |ours − mlx-lm| of any log-probability. Both sides run the same MLX kernels in
/// float32; what remains is the order of a few additions.
const LOGPROB_TOLERANCE: f32 = 2e-3;
const NEW_TOKENS: usize = 32;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MLXBENCH_REFERENCE_PYTHON") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyref/bin/python");
    assert!(p.is_file(), "no Python reference at {}: run .ci/setup (it installs mlx-lm there)", p.display());
    p
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/mlx_lm_reference.py")
}

fn run_python(args: &[&str]) -> Vec<u8> {
    let out = Command::new(python()).arg(script()).args(args).output().expect("running the Python reference");
    assert!(out.status.success(), "reference {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Writes `<arch>-<bits>` with mlx-lm (deterministic, so reruns give the same weights), once per
/// test process: tests running in parallel share the directory, and a second writer would replace
/// the files while another test's mlx-lm is reading them ("[read] Unable to read from file").
fn make_model(arch: &str, bits: &str) -> PathBuf {
    static MADE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("parity").join(format!("{arch}-{bits}"));
    let mut made = MADE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !made.contains(&dir) {
        run_python(&["make", "--arch", arch, "--bits", bits, "--out", dir.to_str().unwrap()]);
        made.push(dir.clone());
    }
    dir
}

#[derive(Debug, Clone, serde::Serialize)]
struct Case {
    model: PathBuf,
    prompt_ids: Vec<u32>,
    max_tokens: usize,
    kv_bits: Option<i32>,
    kv_group_size: i32,
    quantized_kv_start: i32,
    max_kv_size: Option<i32>,
    prefill_step_size: usize,
}

#[derive(Debug, Deserialize)]
struct Reference {
    tokens: Vec<u32>,
    first_logprobs: Vec<f32>,
    last_logprobs: Vec<f32>,
}

struct Ours {
    tokens: Vec<u32>,
    first_logprobs: Vec<f32>,
    last_logprobs: Vec<f32>,
}

fn prompt(len: usize, salt: u32) -> Vec<u32> {
    (0..len as u32).map(|i| (i * 37 + salt * 101 + 11) % 1000 + 1).collect()
}

fn cases(model: &Path) -> Vec<(String, Case)> {
    let base = Case {
        model: model.to_path_buf(),
        prompt_ids: prompt(20, 1),
        max_tokens: NEW_TOKENS,
        kv_bits: None,
        kv_group_size: 64,
        quantized_kv_start: 0,
        max_kv_size: None,
        prefill_step_size: 2048,
    };
    vec![
        ("plain cache".into(), base.clone()),
        ("kv_bits 8".into(), Case { kv_bits: Some(8), ..base.clone() }),
        ("kv_bits 4".into(), Case { kv_bits: Some(4), ..base.clone() }),
        // 40 prompt + 32 new tokens through a 48-token window: the cache wraps.
        ("rotating cache".into(), Case { prompt_ids: prompt(40, 2), max_kv_size: Some(48), ..base.clone() }),
        ("chunked prefill + kv_bits 8".into(), Case { prompt_ids: prompt(40, 3), prefill_step_size: 16, kv_bits: Some(8), ..base }),
    ]
}

fn run_ours(case: &Case) -> Ours {
    let loaded = models::load(&case.model).unwrap();
    let options = GenerateOptions {
        n_generate: case.max_tokens,
        sampling: Sampling::Greedy,
        kv: KvCacheOptions {
            kv_bits: case.kv_bits,
            kv_group_size: case.kv_group_size,
            quantized_kv_start: case.quantized_kv_start,
            max_kv_size: case.max_kv_size,
        },
        prefill_step_size: case.prefill_step_size,
        stop_tokens: Vec::new(),
    };
    let prompt = Tokens::single(case.prompt_ids.clone()).unwrap();
    let mut generation = Generation::new(loaded.model.as_ref(), &prompt, options).unwrap();
    let (mut tokens, mut first, mut last) = (Vec::new(), None, None);
    while let Some(step) = generation.next_token().unwrap() {
        tokens.push(step.tokens[0]);
        let row = logprobs_row(&step.logprobs);
        if first.is_none() {
            first = Some(row.clone());
        }
        last = Some(row);
    }
    Ours { tokens, first_logprobs: first.unwrap(), last_logprobs: last.unwrap() }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vocabulary sizes differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn check_architecture(arch: &str) {
    let models: Vec<PathBuf> = ["none", "4"].iter().map(|bits| make_model(arch, bits)).collect();
    let all: Vec<(String, Case)> = models.iter().flat_map(|m| cases(m)).collect();
    let cases_file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("parity-{arch}-cases.json"));
    let just_cases: Vec<&Case> = all.iter().map(|(_, c)| c).collect();
    std::fs::write(&cases_file, serde_json::to_vec(&just_cases).unwrap()).unwrap();
    let references: Vec<Reference> =
        serde_json::from_slice(&run_python(&["run", "--cases", cases_file.to_str().unwrap()])).unwrap();

    let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
    device::select(DeviceKind::Cpu).unwrap();
    let mut failures = Vec::new();
    let mut plain_first: Option<Vec<f32>> = None;
    for ((name, case), reference) in all.iter().zip(&references) {
        let label = format!("{} / {name}", case.model.file_name().unwrap().to_string_lossy());
        let ours = run_ours(case);
        // The settings must take effect: a 4-bit KV cache changes the logits of the same prompt.
        match name.as_str() {
            "plain cache" => plain_first = Some(ours.first_logprobs.clone()),
            "kv_bits 4" => {
                let shift = max_abs_diff(&ours.first_logprobs, plain_first.as_ref().expect("plain case runs first"));
                assert!(shift > 1e-3, "{label}: a 4-bit KV cache left the logits unchanged ({shift})");
            }
            _ => {}
        }
        let first = max_abs_diff(&ours.first_logprobs, &reference.first_logprobs);
        let last = max_abs_diff(&ours.last_logprobs, &reference.last_logprobs);
        eprintln!("{label}: max |Δ logprob| first {first:.2e}, last {last:.2e}; tokens equal: {}", ours.tokens == reference.tokens);
        if first > LOGPROB_TOLERANCE || last > LOGPROB_TOLERANCE {
            failures.push(format!("{label}: logprobs differ by {first:.3e} (first) / {last:.3e} (last)"));
        }
        if ours.tokens != reference.tokens {
            failures.push(format!("{label}: tokens differ\n  ours   {:?}\n  mlx-lm {:?}", ours.tokens, reference.tokens));
        }
        assert_eq!(ours.tokens.len(), NEW_TOKENS, "{label}: generated count");
    }
    assert!(failures.is_empty(), "{arch}: {} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// The same logits from one forward pass over the whole sequence (no cache) and from feeding
/// the sequence token by token through a cache.
fn check_cache_consistency(arch: &str) {
    let dir = make_model(arch, "none");
    let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
    device::select(DeviceKind::Cpu).unwrap();
    let loaded = models::load(&dir).unwrap();
    let ids = prompt(12, 5);
    let tokens = Tokens::single(ids.clone()).unwrap().to_array().unwrap();
    let full = loaded.model.forward(&tokens, None).unwrap();
    let full_last = logprobs_row(&full.reshape(&[12, -1]).unwrap()).split_off(11 * 1024);
    let mut caches = KvCacheOptions::default().new_caches(loaded.model.num_layers());
    let mut stepped = None;
    for id in ids {
        let one = Array::from_slice(&[id as i32], &[1, 1]);
        stepped = Some(loaded.model.forward(&one, Some(&mut caches)).unwrap());
    }
    let stepped = logprobs_row(&stepped.unwrap());
    assert_eq!(caches[0].offset(), 12);
    let diff = max_abs_diff(&full_last, &stepped);
    assert!(diff < 1e-3, "{arch}: cached and uncached logits differ by {diff}");
}

/// A batch of two prompts gives each row the tokens that row gets alone (greedy, float32).
#[test]
fn batched_generation_matches_single_sequences() {
    let dir = make_model("llama", "none");
    let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
    device::select(DeviceKind::Cpu).unwrap();
    let loaded = models::load(&dir).unwrap();
    let rows = vec![prompt(16, 7), prompt(16, 8)];
    let generate = |prompt: Tokens| {
        let options = GenerateOptions { n_generate: 12, ..GenerateOptions::default() };
        let mut generation = Generation::new(loaded.model.as_ref(), &prompt, options).unwrap();
        let mut out = vec![Vec::new(); prompt.batch()];
        while let Some(step) = generation.next_token().unwrap() {
            for (row, t) in out.iter_mut().zip(step.tokens) {
                row.push(t);
            }
        }
        out
    };
    let batched = generate(Tokens::batch_of(rows.clone()).unwrap());
    for (i, row) in rows.into_iter().enumerate() {
        assert_eq!(batched[i], generate(Tokens::single(row).unwrap())[0], "row {i}");
    }
    assert_ne!(batched[0], batched[1]);
}

/// One decode step (after a 40-token prompt, 4-bit weights, plain and 8-bit KV cache) builds the
/// same multiset of MLX primitives in ours as in mlx-lm's `generate_step`: the same computation,
/// no extra per-token work (dtype conversions, slicing, re-traced activations).
fn check_step_graph(arch: &str) {
    let _mlx = MLX.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device::select(DeviceKind::Cpu).unwrap();
    let dir = make_model(arch, "4");
    let ids = prompt(40, 5);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graphs");
    std::fs::create_dir_all(&out).unwrap();
    let loaded = models::load(&dir).unwrap();
    for kv_bits in [None, Some(8)] {
        let name = format!("{arch}-kv{}", kv_bits.map_or("none".into(), |b| b.to_string()));
        let theirs = out.join(format!("{name}-mlx-lm.dot"));
        let mut args = vec!["dot".to_string(), "--model".into(), dir.to_string_lossy().into_owned()];
        args.extend(["--prompt-ids".into(), serde_json::to_string(&ids).unwrap(), "--out".into(), theirs.to_string_lossy().into_owned()]);
        if let Some(bits) = kv_bits {
            args.extend(["--kv-bits".into(), bits.to_string()]);
        }
        run_python(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let options = GenerateOptions {
            n_generate: 2,
            kv: KvCacheOptions { kv_bits, ..KvCacheOptions::default() },
            ..GenerateOptions::default()
        };
        let mut generation = Generation::new(loaded.model.as_ref(), &Tokens::single(ids.clone()).unwrap(), options).unwrap();
        let (sampled, logprobs) = generation.first_step_graph().unwrap();
        // mlx-lm yields one sequence's log-probabilities (`squeeze(0)`); ours keep the batch axis.
        let logprobs = logprobs.squeeze_axes(&[0]).unwrap();
        let ours = out.join(format!("{name}-mlxbench.dot"));
        graph::export_dot(&[&sampled, &logprobs], &ours).unwrap();
        let read = |p: &Path| graph::primitive_counts(&std::fs::read_to_string(p).unwrap());
        let mut expected = read(&theirs);
        // mlx-lm feeds the last prompt token as `prompt[-1:][None]`, adding the batch axis; ours
        // hold prompts as [B, L] from the start.
        *expected.get_mut("ExpandDims").expect("mlx-lm's [None]") -= 1;
        assert_eq!(read(&ours), expected, "{name}: ours {} vs mlx-lm {}", ours.display(), theirs.display());
    }
}

macro_rules! parity_tests {
    ($($name:ident => $arch:literal),* $(,)?) => {
        mod matches_mlx_lm {
            $(#[test] fn $name() { super::check_architecture($arch) })*
        }
        mod cache_matches_full_forward {
            $(#[test] fn $name() { super::check_cache_consistency($arch) })*
        }
        mod same_step_graph_as_mlx_lm {
            $(#[test] fn $name() { super::check_step_graph($arch) })*
        }
    };
}

parity_tests!(llama => "llama", mistral => "mistral", qwen2 => "qwen2", qwen3 => "qwen3");
