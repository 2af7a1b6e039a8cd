//! Parity with Apple's Python mlx-lm on the same weights: for each architecture, float and 4-bit
//! models written by mlx-lm's own classes (tests/reference/mlx_lm_reference.py), the same prompts
//! through mlx-lm's `generate_step` and through our loader, caches and decode loop. Logits (as
//! log-probabilities) must agree within a tolerance and the 32 greedy tokens must be identical,
//! without KV quantization, with kv_bits 8 and 4, with a rotating cache and with chunked prefill,
//! wherever the architecture allows them in mlx-lm; where it does not (Gemma 2 and 3 with kv_bits,
//! Gemma 3 with max_kv_size), ours must refuse with a message naming the setting, and the test
//! shows what mlx-lm does with it. Gemma 3's sliding-window layers see prompts longer than their
//! window. One decode step must build the same MLX primitives on both sides.
//!
//! Both sides run on one device, `MLXBENCH_TEST_DEVICE` (`cpu`, the default, or `gpu`), and one
//! MLX, the release this build links: the reference is the venv `.ci/setup` makes,
//! `target/pyref-<BUILT_MLX_VERSION>`, or `$MLXBENCH_REFERENCE_PYTHON` (`tests/common/reference.rs`).
//! Log-probabilities must agree within [`CPU_LOGPROB_TOLERANCE`] on the CPU and
//! [`GPU_LOGPROB_TOLERANCE`] on the GPU. Each case prints one line (`--nocapture` gives the table):
//! `parity: arch=llama bits=4 case=kv_bits_8 device=cpu outcome=compared max_dlogprob=0.00e0
//! greedy_equal=true min_top2_gap=3.10e-2`. Where mlx-lm cannot run a model with this MLX
//! (quantized Mixtral and Qwen3-MoE on MLX 0.32.2, whose `gather_qmm` lacks the `global_scale`
//! that mlx-lm passes), the test checks that mlx-lm fails so and ours runs, and the line says
//! `outcome=skipped` with the reason.
use std::{
    path::{Path, PathBuf},
    sync::Mutex,
};

mod common;

use common::host_f32 as logprobs_row;
use common::reference::{self, reference_cannot_run, GLOBAL_SCALE_ERROR};
use mlx_rs::Array;
use mlxbench::{
    cache::KvCacheOptions,
    device::{self, DeviceKind, BUILT_MLX_VERSION},
    generate::{GenerateOptions, Generation, Sampling},
    graph, models,
    prompt::Tokens,
};
use serde::Deserialize;

/// MLX work is serialized: tests run on threads, MLX's default device and stream are global.
static MLX: Mutex<()> = Mutex::new(());

/// Largest allowed |ours − mlx-lm| of any log-probability on the CPU. Both sides run the same MLX
/// kernels in float32; what remains is the order of a few additions (in practice none: 0.0).
const CPU_LOGPROB_TOLERANCE: f32 = 2e-3;
/// The same on the GPU (Metal or CUDA). The models are float32 (4-bit weights with float32
/// scales), so the same graph on the same device is normally bit-exact there too; what this allows
/// for is the fused kernels' freedom that a graph does not show: matmul tiling and split
/// reductions, the SDPA kernel (vector or full, per query length and cache layout), fast `exp`
/// and `rsqrt`, each a few float32 ulps that a 4-bit KV cache can turn into one quantization step.
/// 1e-2 in log-probability is a 1% change of any probability; the bugs parity exists to catch (a
/// wrong RoPE base, norm or attention scale, a misplaced cache offset) move them by 0.1 or more.
const GPU_LOGPROB_TOLERANCE: f32 = 1e-2;
/// Largest allowed |cached − uncached| logit of ours on the CPU (one implementation, two paths).
const CPU_CACHE_TOLERANCE: f32 = 1e-3;
const NEW_TOKENS: usize = 32;

fn logprob_tolerance(kind: DeviceKind) -> f32 {
    match kind {
        DeviceKind::Cpu => CPU_LOGPROB_TOLERANCE,
        DeviceKind::Gpu => GPU_LOGPROB_TOLERANCE,
    }
}

fn cache_tolerance(kind: DeviceKind) -> f32 {
    match kind {
        DeviceKind::Cpu => CPU_CACHE_TOLERANCE,
        DeviceKind::Gpu => GPU_CACHE_TOLERANCE,
    }
}

/// How MLX says a backend has no kernel for a shape or type.
const NO_KERNEL: &str = "No implementation for";

/// Cached against uncached logits of our own model on the GPU. Unlike ours against mlx-lm (the
/// same graph on the same device, exact in practice), these are two different graphs: one
/// token's matrix-vector products against the whole sequence's matrix products, and MLX's CUDA
/// backend runs float32 matmuls in TF32 (`MLX_ENABLE_TF32`, on by default), whose 10-bit mantissa
/// leaves differences of a few 1e-2 in log-probabilities between them.
const GPU_CACHE_TOLERANCE: f32 = 1e-1;

/// Writes `<arch>-<bits>` with mlx-lm (deterministic, so reruns give the same weights), once per
/// test process: tests running in parallel share the directory, and a second writer would replace
/// the files while another test's mlx-lm is reading them ("[read] Unable to read from file").
/// mlx-lm must be able to run what it wrote, except where [`reference_cannot_run`] says why not:
/// there it must fail for that reason.
fn make_model(arch: &str, bits: &str) -> PathBuf {
    static MADE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("parity").join(format!("{arch}-{bits}"));
    let mut made = MADE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !made.contains(&dir) {
        let reported = reference::run_script(&["make", "--arch", arch, "--bits", bits, "--out", dir.to_str().unwrap()]);
        let probe_error = reported.get("probe_error").and_then(|e| e.as_str());
        match (reference_cannot_run(arch, bits != "none"), probe_error) {
            (None, None) => {}
            (Some(_), Some(error)) if error.contains(GLOBAL_SCALE_ERROR) => {}
            (None, Some(error)) => panic!("{arch}-{bits}: mlx-lm cannot run the model it wrote: {error}"),
            (Some(reason), _) => panic!("{arch}-{bits}: expected mlx-lm to fail ({reason}); it reported {reported}"),
        }
        made.push(dir.clone());
    }
    dir
}

/// The `bits` a [`make_model`] directory was written with.
fn bits_of(model: &Path) -> String {
    model.file_name().unwrap().to_string_lossy().rsplit('-').next().unwrap().to_string()
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

/// What a case must show.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Same log-probabilities (within tolerance) and the same greedy tokens as mlx-lm.
    Match,
    /// We refuse, with a message holding `ours`; mlx-lm fails on it as well.
    RefusedLikeMlxLm { ours: &'static str },
    /// We refuse, with a message holding `ours`; mlx-lm silently ignores the setting (its output
    /// is that of the plain case).
    RefusedMlxLmIgnores { ours: &'static str },
}

#[derive(Debug, Deserialize)]
struct Reference {
    #[serde(default)]
    tokens: Vec<u32>,
    #[serde(default)]
    first_logprobs: Vec<f32>,
    #[serde(default)]
    last_logprobs: Vec<f32>,
    /// Per generated token, the log-probability margin of mlx-lm's pick over the runner-up.
    #[serde(default)]
    top2_gaps: Vec<f32>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct RunOutput {
    results: Vec<Reference>,
}

struct Ours {
    tokens: Vec<u32>,
    first_logprobs: Vec<f32>,
    last_logprobs: Vec<f32>,
}

fn prompt(len: usize, salt: u32) -> Vec<u32> {
    (0..len as u32).map(|i| (i * 37 + salt * 101 + 11) % 1000 + 1).collect()
}

/// The cases of `arch` on `model` and what each must show. mlx-lm refuses KV quantization for
/// Gemma 2 (its soft-capped attention indexes the quantized tuple: TypeError) and Gemma 3 (its
/// sliding layers' rotating caches: NotImplementedError), and Gemma 3's `make_cache` ignores
/// max_kv_size. Gemma 3's window (8 tokens) is shorter than every prompt (20 and 40).
fn cases(arch: &str, model: &Path) -> Vec<(String, Case, Expect)> {
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
    let kv_quantization = match arch {
        "gemma2" => Expect::RefusedLikeMlxLm { ours: "kv_bits is not supported for gemma2: its soft-capped attention" },
        "gemma3_text" => Expect::RefusedLikeMlxLm { ours: "kv_bits is not supported for gemma3_text: its sliding-window layers" },
        _ => Expect::Match,
    };
    let rotating = match arch {
        "gemma3_text" => Expect::RefusedMlxLmIgnores { ours: "max_kv_size is not supported for gemma3_text" },
        _ => Expect::Match,
    };
    let chunked = Case { prompt_ids: prompt(40, 3), prefill_step_size: 16, ..base.clone() };
    // Names without spaces: they are values in the `parity:` lines.
    let mut list = vec![
        ("plain".to_string(), base.clone(), Expect::Match),
        ("kv_bits_8".into(), Case { kv_bits: Some(8), ..base.clone() }, kv_quantization),
        ("kv_bits_4".into(), Case { kv_bits: Some(4), ..base.clone() }, kv_quantization),
        // 40 prompt + 32 new tokens through a 48-token window: the cache wraps. Where mlx-lm
        // ignores it, the plain case's prompt, to compare with the plain case.
        match rotating {
            Expect::Match => ("rotating".into(), Case { prompt_ids: prompt(40, 2), max_kv_size: Some(48), ..base.clone() }, rotating),
            _ => ("rotating".into(), Case { max_kv_size: Some(48), ..base.clone() }, rotating),
        },
        ("chunked_prefill_kv_bits_8".into(), Case { kv_bits: Some(8), ..chunked.clone() }, kv_quantization),
    ];
    if kv_quantization != Expect::Match {
        list.push(("chunked_prefill".into(), chunked, Expect::Match));
    }
    list
}

/// Our greedy generation of `case`, or the message it was refused with.
fn run_ours(case: &Case) -> Result<Ours, String> {
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
        compile: false,
    };
    let prompt = Tokens::single(case.prompt_ids.clone()).unwrap();
    let mut generation = Generation::new(loaded.model.as_ref(), &prompt, options).map_err(|e| e.to_string())?;
    let (mut tokens, mut first, mut last) = (Vec::new(), None, None);
    // A step can fail where the backend has no kernel (MLX's CUDA backend and a quantized KV cache).
    while let Some(step) = generation.next_token().map_err(|e| e.to_string())? {
        tokens.push(step.tokens[0]);
        let row = logprobs_row(&step.logprobs);
        if first.is_none() {
            first = Some(row.clone());
        }
        last = Some(row);
    }
    Ok(Ours { tokens, first_logprobs: first.unwrap(), last_logprobs: last.unwrap() })
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vocabulary sizes differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Runs every case of `arch`'s models through mlx-lm, in one call.
fn references(arch: &str, all: &[(String, Case, Expect)]) -> Vec<Reference> {
    let cases_file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("parity-{arch}-cases.json"));
    let cases: Vec<&Case> = all.iter().map(|(_, case, _)| case).collect();
    std::fs::write(&cases_file, serde_json::to_vec(&cases).unwrap()).unwrap();
    let reported = reference::run_script(&["run", "--cases", cases_file.to_str().unwrap()]);
    let out: RunOutput = serde_json::from_value(reported).unwrap();
    assert_eq!(out.results.len(), all.len(), "one result per case");
    out.results
}

fn check_architecture(arch: &str) {
    let models: Vec<PathBuf> = ["none", "4"].iter().map(|bits| make_model(arch, bits)).collect();
    let all: Vec<(String, Case, Expect)> = models.iter().flat_map(|m| cases(arch, m)).collect();
    let references = references(arch, &all);

    let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
    let kind = reference::select_device();
    let tolerance = logprob_tolerance(kind);
    let mut failures = Vec::new();
    let mut plain: Option<(Vec<f32>, Vec<u32>)> = None;
    for ((name, case, expect), reference) in all.iter().zip(&references) {
        let bits = bits_of(&case.model);
        let label = format!("arch={arch} bits={bits} case={name} device={kind}");
        let ours = match (run_ours(case), expect) {
            (Ok(ours), Expect::Match) => ours,
            (Err(e), Expect::RefusedLikeMlxLm { ours } | Expect::RefusedMlxLmIgnores { ours }) => {
                assert!(e.contains(ours), "{label}: refused with {e:?}, expected a message holding {ours:?}");
                let (_, plain_tokens) = plain.as_ref().expect("the plain case runs first");
                match expect {
                    Expect::RefusedLikeMlxLm { .. } => {
                        assert!(reference.error.is_some(), "{label}: mlx-lm ran a case we refuse as it cannot: {reference:?}")
                    }
                    _ => assert_eq!(&reference.tokens, plain_tokens, "{label}: mlx-lm did not ignore the setting"),
                }
                let theirs = reference.error.as_deref().and_then(|e| e.lines().next()).unwrap_or("ignores the setting");
                eprintln!("parity: {label} outcome=refused ours={e:?} mlx_lm={theirs:?}");
                continue;
            }
            (Ok(_), _) => panic!("{label}: ran, but mlx-lm cannot run it the same way, so it must be refused"),
            // The backend has no kernel for the setting, for either side (MLX's CUDA backend and
            // attention over a quantized KV cache): the same failure on both is parity too.
            (Err(e), Expect::Match)
                if e.contains(NO_KERNEL) && reference.error.as_deref().is_some_and(|r| r.contains(NO_KERNEL)) =>
            {
                let first_line = |text: &str| text.lines().next().unwrap_or_default().to_string();
                eprintln!("parity: {label} outcome=unsupported ours={:?} mlx_lm={:?}", first_line(&e), first_line(reference.error.as_deref().unwrap_or_default()));
                continue;
            }
            (Err(e), Expect::Match) => panic!("{label}: {e}"),
        };
        assert_eq!(ours.tokens.len(), NEW_TOKENS, "{label}: generated count");
        // The settings must take effect: a 4-bit KV cache changes the logits of the same prompt.
        match name.as_str() {
            "plain" => plain = Some((ours.first_logprobs.clone(), reference.tokens.clone())),
            "kv_bits_4" => {
                let shift = max_abs_diff(&ours.first_logprobs, &plain.as_ref().expect("plain case runs first").0);
                assert!(shift > 1e-3, "{label}: a 4-bit KV cache left the logits unchanged ({shift})");
            }
            _ => {}
        }
        if let Some(reason) = reference_cannot_run(arch, bits != "none") {
            let error = reference.error.as_deref().unwrap_or_default();
            assert!(error.contains(GLOBAL_SCALE_ERROR), "{label}: expected mlx-lm to fail ({reason}); it gave {reference:?}");
            eprintln!("parity: {label} outcome=skipped reason={reason:?} (ours ran; mlx-lm failed as expected)");
            continue;
        }
        assert!(reference.error.is_none(), "{label}: mlx-lm failed: {reference:?}");
        let first = max_abs_diff(&ours.first_logprobs, &reference.first_logprobs);
        let last = max_abs_diff(&ours.last_logprobs, &reference.last_logprobs);
        let greedy_equal = ours.tokens == reference.tokens;
        let min_gap = reference.top2_gaps.iter().copied().fold(f32::INFINITY, f32::min);
        eprintln!(
            "parity: {label} outcome=compared max_dlogprob={:.2e} greedy_equal={greedy_equal} min_top2_gap={min_gap:.2e}",
            first.max(last)
        );
        if first > tolerance || last > tolerance {
            failures.push(format!("{label}: logprobs differ by {first:.3e} (first) / {last:.3e} (last), tolerance {tolerance:.0e}"));
        }
        if !greedy_equal {
            failures.push(format!("{label}: tokens differ\n  ours   {:?}\n  mlx-lm {:?}", ours.tokens, reference.tokens));
        }
    }
    assert!(failures.is_empty(), "{arch}: {} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// The same logits from one forward pass over the whole sequence (no cache) and from feeding
/// the sequence token by token through a cache.
fn check_cache_consistency(arch: &str) {
    let dir = make_model(arch, "none");
    let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
    let kind = reference::select_device();
    let loaded = models::load(&dir).unwrap();
    let ids = prompt(12, 5);
    let tokens = Tokens::single(ids.clone()).unwrap().to_array().unwrap();
    let full = loaded.model.forward(&tokens, None).unwrap();
    let full_last = logprobs_row(&full.reshape(&[12, -1]).unwrap()).split_off(11 * 1024);
    let mut caches = loaded.model.make_caches(&KvCacheOptions::default()).unwrap();
    let mut stepped = None;
    for id in ids {
        let one = Array::from_slice(&[id as i32], &[1, 1]);
        stepped = Some(loaded.model.forward(&one, Some(&mut caches)).unwrap());
    }
    let stepped = logprobs_row(&stepped.unwrap());
    assert_eq!(caches[0].offset(), 12);
    let diff = max_abs_diff(&full_last, &stepped);
    let tolerance = cache_tolerance(kind);
    eprintln!("cache: arch={arch} device={kind} max_dlogprob={diff:.2e} tolerance={tolerance:.0e}");
    assert!(diff < tolerance, "{arch} on {kind}: cached and uncached logits differ by {diff} (tolerance {tolerance:.0e})");
}

/// A batch of two prompts gives each row the tokens that row gets alone (greedy, float32).
#[test]
fn batched_generation_matches_single_sequences() {
    let dir = make_model("llama", "none");
    let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
    reference::select_device();
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

/// Primitives mlx-lm builds per step and ours builds fewer of, on purpose: Gemma's RMS norm adds 1
/// to its weight on every call in mlx-lm (an `Add`, compiled in Gemma 3, with its `Broadcast`),
/// ours once at load; mlx-lm's routers wrap expert indices and scores in `stop_gradient`, which
/// does nothing when nothing is differentiated.
const FEWER_THAN_MLX_LM: [&str; 4] = ["Add", "Broadcast", "CompiledBroadcastBroadcastAdd", "StopGradient"];

/// One decode step (after a 40-token prompt, 4-bit weights, plain and, where the architecture
/// allows it, 8-bit KV cache) builds the same multiset of MLX primitives in ours as in mlx-lm's
/// `generate_step`: the same computation, no extra per-token work (dtype conversions, slicing,
/// re-traced activations): never more of any primitive, and fewer only where listed in
/// [`FEWER_THAN_MLX_LM`]. Both graphs are built on the test device: which primitives MLX builds
/// depends on it (fused RMSNorm, RoPE and attention on a GPU, basic ops on the CPU).
fn check_step_graph(arch: &str) {
    let _mlx = MLX.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let kind = reference::select_device();
    let dir = make_model(arch, "4");
    let ids = prompt(40, 5);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graphs");
    std::fs::create_dir_all(&out).unwrap();
    let loaded = models::load(&dir).unwrap();
    for kv_bits in [None, Some(8)] {
        let kv = kv_bits.map_or("none".into(), |b| b.to_string());
        let name = format!("{arch}-kv{kv}-{kind}");
        let label = format!("arch={arch} bits=4 kv={kv} device={kind}");
        let options = GenerateOptions {
            n_generate: 2,
            kv: KvCacheOptions { kv_bits, ..KvCacheOptions::default() },
            ..GenerateOptions::default()
        };
        // Settings an architecture refuses (mlx-lm cannot run them either; see check_architecture).
        let Ok(mut generation) = Generation::new(loaded.model.as_ref(), &Tokens::single(ids.clone()).unwrap(), options) else {
            assert!(kv_bits.is_some(), "{name}: the plain cache must run");
            eprintln!("graph: {label} outcome=refused");
            continue;
        };
        let theirs = out.join(format!("{name}-mlx-lm.dot"));
        let ids_json = serde_json::to_string(&ids).unwrap();
        let mut args = vec!["dot", "--model", dir.to_str().unwrap(), "--prompt-ids", &ids_json, "--out", theirs.to_str().unwrap()];
        let bits_arg = kv_bits.map(|b| b.to_string());
        if let Some(bits) = &bits_arg {
            args.extend(["--kv-bits", bits]);
        }
        let reported = reference::run_script(&args);
        let (sampled, logprobs) = generation.first_step_graph().unwrap();
        if let Some(reason) = reference_cannot_run(arch, true) {
            let error = reported.get("error").and_then(|e| e.as_str()).unwrap_or_default();
            assert!(error.contains(GLOBAL_SCALE_ERROR), "{label}: expected mlx-lm to fail ({reason}); it reported {reported}");
            eprintln!("graph: {label} outcome=skipped reason={reason:?} (ours built its step; mlx-lm failed as expected)");
            continue;
        }
        assert!(reported.get("error").is_none(), "{label}: mlx-lm failed: {reported}");
        // mlx-lm yields one sequence's log-probabilities (`squeeze(0)`); ours keep the batch axis.
        let logprobs = logprobs.squeeze_axes(&[0]).unwrap();
        let ours = out.join(format!("{name}-mlxbench.dot"));
        graph::export_dot(&[&sampled, &logprobs], &ours).unwrap();
        let read = |p: &Path| graph::primitive_counts(&std::fs::read_to_string(p).unwrap());
        let (ours_counts, mut theirs_counts) = (read(&ours), read(&theirs));
        // mlx-lm feeds the last prompt token as `prompt[-1:][None]`, adding the batch axis; ours
        // hold prompts as [B, L] from the start.
        *theirs_counts.get_mut("ExpandDims").expect("mlx-lm's [None]") -= 1;
        for (primitive, &count) in &ours_counts {
            let expected = theirs_counts.get(primitive).copied().unwrap_or(0);
            assert!(count <= expected, "{name}: ours builds {count} {primitive} per step, mlx-lm {expected} ({} vs {})", ours.display(), theirs.display());
        }
        for (primitive, &expected) in &theirs_counts {
            let count = ours_counts.get(primitive).copied().unwrap_or(0);
            assert!(
                count == expected || FEWER_THAN_MLX_LM.contains(&primitive.as_str()),
                "{name}: ours builds {count} {primitive} per step, mlx-lm {expected} ({} vs {})",
                ours.display(),
                theirs.display()
            );
        }
        eprintln!("graph: {label} outcome=compared primitives={}", ours_counts.values().sum::<usize>());
    }
}

/// Both sides report the device they ran on, and it is the test device: ours from MLX's default
/// device after selecting it, the reference script from `mx.default_device()`. The flag is obeyed,
/// not echoed: the other device either runs and reports itself, or (no GPU backend in this MLX)
/// fails naming the flag.
#[test]
fn both_sides_run_on_the_test_device() {
    let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
    let ours = reference::select_device();
    assert_eq!(ours, reference::device());
    let theirs = reference::run_script(&["device"]);
    assert_eq!(theirs["device"], ours.to_string());
    assert_eq!(theirs["mlx_version"], BUILT_MLX_VERSION);
    for kind in [DeviceKind::Cpu, DeviceKind::Gpu] {
        let out = reference::run_script_on(kind, &["device"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if kind == DeviceKind::Gpu && device::gpu_backend().is_none() {
            assert!(!out.status.success() && stderr.contains("--device gpu"), "{stdout}{stderr}");
        } else {
            assert!(out.status.success(), "{stderr}");
            let reported: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(reported["device"], kind.to_string());
        }
    }
}

#[test]
fn the_test_device_is_cpu_or_gpu() {
    assert_eq!(reference::parse_device(None), DeviceKind::Cpu);
    assert_eq!(reference::parse_device(Some("cpu")), DeviceKind::Cpu);
    assert_eq!(reference::parse_device(Some("gpu")), DeviceKind::Gpu);
}

#[test]
#[should_panic(expected = "MLXBENCH_TEST_DEVICE=\"metal\": the allowed values are cpu (the default) and gpu")]
fn another_test_device_is_refused() {
    reference::parse_device(Some("metal"));
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

parity_tests!(
    llama => "llama",
    mistral => "mistral",
    qwen2 => "qwen2",
    qwen3 => "qwen3",
    gemma2 => "gemma2",
    gemma3_text => "gemma3_text",
    phi3 => "phi3",
    mixtral => "mixtral",
    qwen3_moe => "qwen3_moe",
);
