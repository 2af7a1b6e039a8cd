//! Synthetic models (`mlxbench::synth`): every architecture's `tiny` model, float and 4-bit,
//! loads through our loader and through mlx-lm's strict loader (names, shapes and dtypes as
//! mlx-lm's own classes have them) with the same logits on both; writes are byte-reproducible;
//! presets have the parameter counts (total and active) of the real checkpoints.
//!
//! Both sides run on the test device (`MLXBENCH_TEST_DEVICE`: `cpu`, the default, or `gpu`) and
//! the MLX this build links, mlx-lm from the reference venv `target/pyref-<BUILT_MLX_VERSION>`
//! that `.ci/setup` makes (or `$MLXBENCH_REFERENCE_PYTHON`; see `tests/common/reference.rs`). Each
//! model prints one line, `synth: model=... device=... outcome=compared max_dlogit=...
//! max_logit=...`. Where mlx-lm cannot run a model with this MLX (quantized mixtures of experts on
//! MLX 0.32.2, whose `gather_qmm` lacks the `global_scale` mlx-lm passes), the test checks that
//! mlx-lm fails so and ours runs, and the line says `outcome=skipped` with the reason.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::Instant,
};

mod common;

use common::reference::{self, reference_cannot_run, GLOBAL_SCALE_ERROR};

use mlx_rs::{Array, Dtype};
use mlxbench::{
    device::DeviceKind,
    models,
    prompt::BASE_TEXT,
    synth::{self, Arch, FloatDtype, SynthOptions, EOS_TOKEN, PRESETS},
    tokenizer::Tokenizer,
};
use serde_json::{json, Value};

/// MLX work is serialized: tests run on threads, MLX's default device and stream are global.
static MLX: Mutex<()> = Mutex::new(());

const ARCHES: [Arch; 9] = [
    Arch::Llama,
    Arch::Mistral,
    Arch::Qwen2,
    Arch::Qwen3,
    Arch::Gemma2,
    Arch::Gemma3Text,
    Arch::Phi3,
    Arch::Mixtral,
    Arch::Qwen3Moe,
];

/// MLX's CPU `gather_mm` runs only float32, so float mixtures of experts are written in float32.
fn is_moe(arch: Arch) -> bool {
    matches!(arch, Arch::Mixtral | Arch::Qwen3Moe)
}

/// Largest allowed |ours − mlx-lm| of a logit, as a fraction of the largest |logit|, on the CPU.
/// bfloat16 weights and activations: both run MLX's kernels, in possibly different orders, and
/// each bfloat16 rounding is worth up to 0.4% of a value.
const CPU_LOGIT_TOLERANCE: f32 = 0.02;
/// The same on the GPU (Metal or CUDA): its bfloat16 matmuls accumulate in float32 over tiles whose
/// order and split depend on the kernel chosen for each shape, so the ulps that differ are more;
/// twice the CPU's bound is still far below what a wrong tensor layout or a missing scale gives
/// (logits unrelated to the reference's, differences of the order of the logits themselves).
const GPU_LOGIT_TOLERANCE: f32 = 0.04;

fn logit_tolerance(kind: DeviceKind) -> f32 {
    match kind {
        DeviceKind::Cpu => CPU_LOGIT_TOLERANCE,
        DeviceKind::Gpu => GPU_LOGIT_TOLERANCE,
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synth").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn options(bits: Option<i32>) -> SynthOptions {
    SynthOptions { bits, seed: 3, ..SynthOptions::default() }
}

/// Writes `config` under the MLX lock, on the test device.
fn write(config: &Value, options: &SynthOptions, dir: &Path) -> synth::SynthSummary {
    let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
    reference::select_device();
    synth::write_model(config, options, dir).unwrap()
}

fn tiny(arch: Arch) -> Value {
    synth::preset_config("tiny", Some(arch)).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every tensor of a model directory (all shards).
fn tensors(dir: &Path) -> BTreeMap<String, Array> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            all.extend(Array::load_safetensors(&path).unwrap());
        }
    }
    all
}

/// Logits of the last position for `ids` through our loader.
fn our_last_logits(dir: &Path, ids: &[u32]) -> (Vec<i32>, Vec<f32>) {
    let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
    reference::select_device();
    let loaded = models::load(dir).unwrap();
    let tokens = Array::from_slice(&ids.iter().map(|&i| i as i32).collect::<Vec<_>>(), &[1, ids.len() as i32]);
    let logits = loaded.model.forward(&tokens, None).unwrap();
    let shape = logits.shape().to_vec();
    let mut all = common::host_f32(&logits);
    let last = all.split_off(all.len() - shape[2] as usize);
    (shape, last)
}

#[derive(serde::Deserialize)]
struct PyResult {
    ids: Vec<u32>,
    #[serde(default)]
    shape: Vec<i32>,
    #[serde(default)]
    last: Vec<f32>,
    /// Where mlx-lm loaded the model but could not run it (a `TypeError`).
    error: Option<String>,
}

#[derive(serde::Deserialize)]
struct PyOutput {
    results: Vec<PyResult>,
}

/// Loads each directory with `mlx_lm.utils.load` (strict: every tensor must exist with mlx-lm's
/// shape and none may be left over) on the test device, tokenizes BASE_TEXT's first words with the
/// transformers tokenizer and returns the last position's logits.
fn mlx_lm_logits(dirs: &[&Path], text: &str) -> Vec<PyResult> {
    // The device first, before any MLX work; reported back from MLX, not from the argument.
    let script = r#"
import json, sys
import mlx.core as mx
mx.set_default_device(getattr(mx, sys.argv[1]))
from mlx_lm.utils import load
text = sys.argv[2]
results = []
for d in sys.argv[3:]:
    model, tokenizer = load(d)
    ids = tokenizer.encode(text)
    try:
        logits = model(mx.array([ids]))
    except TypeError as e:
        # mlx-lm's quantized mixtures of experts on an MLX without gather_qmm's global_scale.
        results.append({"ids": ids, "error": f"{type(e).__name__}: {e}"})
        continue
    results.append({"ids": ids, "shape": list(logits.shape),
                    "last": logits[0, -1].astype(mx.float32).tolist()})
json.dump({"device": mx.default_device().type.name, "mlx_version": mx.__version__,
           "results": results}, sys.stdout)
"#;
    let out = Command::new(reference::python())
        .arg("-c")
        .arg(script)
        .arg(reference::device().to_string())
        .arg(text)
        .args(dirs)
        .output()
        .expect("running the Python reference");
    assert!(out.status.success(), "mlx-lm failed to load {dirs:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    let reported: Value = serde_json::from_slice(&out.stdout).unwrap();
    reference::assert_ran_on_test_device(&reported, "mlx-lm's loader");
    let output: PyOutput = serde_json::from_value(reported).unwrap();
    assert_eq!(output.results.len(), dirs.len());
    output.results
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Our loader and mlx-lm's read the same model from each directory: same token ids from the
/// tokenizer for the first `text_len` bytes of BASE_TEXT, logits of shape [1, L, vocab] that agree.
fn check_against_mlx_lm(dirs: &[PathBuf], text_len: usize) {
    let text = &BASE_TEXT[..text_len];
    let refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let references = mlx_lm_logits(&refs, text);
    let kind = reference::device();
    for (dir, reference) in dirs.iter().zip(references) {
        let tokenizer = Tokenizer::from_dir(dir).unwrap();
        let ids = tokenizer.encode(text).unwrap();
        assert_eq!(ids, reference.ids, "{}: tokenizers disagree", dir.display());
        let (shape, ours) = our_last_logits(dir, &ids);
        let config = read_json(&dir.join("config.json"));
        let vocab = config["vocab_size"].as_i64().unwrap() as i32;
        assert_eq!(shape, vec![1, ids.len() as i32, vocab]);
        let scale = ours.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(scale > 0.1, "{}: logits are all near zero", dir.display());
        let label = format!("model={} device={kind}", dir.file_name().unwrap().to_string_lossy());
        let quantized = config.get("quantization").is_some();
        if let Some(reason) = reference_cannot_run(config["model_type"].as_str().unwrap(), quantized) {
            let error = reference.error.as_deref().unwrap_or_default();
            assert!(error.contains(GLOBAL_SCALE_ERROR), "{label}: expected mlx-lm to fail ({reason}); it gave {:?}", reference.error);
            eprintln!("synth: {label} outcome=skipped reason={reason:?} (ours ran; mlx-lm failed as expected)");
            continue;
        }
        assert!(reference.error.is_none(), "{label}: mlx-lm failed: {:?}", reference.error);
        assert_eq!(shape, reference.shape, "{}", dir.display());
        let diff = max_abs_diff(&ours, &reference.last);
        eprintln!("synth: {label} outcome=compared max_dlogit={diff:.2e} max_logit={scale:.3}");
        let tolerance = logit_tolerance(kind);
        assert!(
            diff <= tolerance * scale,
            "{label}: logits differ from mlx-lm's by {diff} (largest logit {scale}, tolerance {tolerance} of it)"
        );
    }
}

#[test]
fn tiny_models_load_here_and_in_mlx_lm() {
    let mut dirs = Vec::new();
    for arch in ARCHES {
        for bits in [Some(4), None] {
            let dir = scratch(&format!("tiny-{}-{}", arch.model_type(), bits.map_or("none".into(), |b| b.to_string())));
            let dtype = if is_moe(arch) && bits.is_none() { FloatDtype::Float32 } else { FloatDtype::Bfloat16 };
            let summary = write(&tiny(arch), &SynthOptions { dtype, ..options(bits) }, &dir);
            assert!(summary.parameters > 1_000_000 && summary.parameters < 2_500_000, "{}", summary.parameters);
            // 8 experts of 2 × 128 × 256 × 3 parameters per layer, 2 of them used per token.
            let inactive = if is_moe(arch) { 2 * 6 * 128 * 256 * 3 } else { 0 };
            assert_eq!(summary.parameters - summary.active_parameters, inactive, "{arch}");
            dirs.push(dir);
        }
    }
    check_against_mlx_lm(&dirs, 120);
}

#[test]
fn sharded_model_loads_here_and_in_mlx_lm() {
    let dir = scratch("tiny-qwen3-sharded");
    let opts = SynthOptions { max_shard_bytes: 200_000, ..options(Some(8)) };
    let summary = write(&tiny(Arch::Qwen3), &opts, &dir);
    let shards: Vec<String> = summary
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    let n = shards.len();
    assert!(n > 3, "{shards:?}");
    assert_eq!(shards[0], format!("model-00001-of-{n:05}.safetensors"));
    let index = read_json(&dir.join("model.safetensors.index.json"));
    assert_eq!(index["metadata"]["total_size"].as_u64(), Some(summary.weight_bytes));
    assert_eq!(index["metadata"]["total_parameters"].as_u64(), Some(summary.parameters));
    let mapped: std::collections::BTreeSet<&str> =
        index["weight_map"].as_object().unwrap().values().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(mapped.len(), n);
    assert_eq!(index["weight_map"].as_object().unwrap().len(), tensors(&dir).len());
    check_against_mlx_lm(&[dir], 120);
}

#[test]
fn quantized_models_hold_affine_uint32_weights() {
    let dir = scratch("tiny-llama-layout");
    let summary = write(&tiny(Arch::Llama), &options(Some(4)), &dir);
    let config = read_json(&dir.join("config.json"));
    let block = json!({"group_size": 64, "bits": 4, "mode": "affine"});
    assert_eq!(config["quantization"], block);
    assert_eq!(config["quantization_config"], block);
    assert_eq!(config["torch_dtype"], "bfloat16");
    let t = tensors(&dir);
    let q = &t["model.layers.0.self_attn.q_proj.weight"];
    assert_eq!((q.dtype(), q.shape()), (Dtype::Uint32, &[256, 256 * 4 / 32][..]));
    let scales = &t["model.layers.0.self_attn.q_proj.scales"];
    assert_eq!((scales.dtype(), scales.shape()), (Dtype::Bfloat16, &[256, 4][..]));
    assert_eq!(t["model.layers.0.self_attn.q_proj.biases"].shape(), &[256, 4]);
    // mlx-lm quantizes the embedding and the untied head too; norms stay float (and are ones).
    assert_eq!(t["model.embed_tokens.weight"].shape(), &[512, 32]);
    assert_eq!(t["lm_head.weight"].shape(), &[512, 32]);
    let norm = &t["model.norm.weight"];
    assert_eq!(norm.dtype(), Dtype::Bfloat16);
    assert!(common::host_f32(norm).iter().all(|&x| x == 1.0));
    // 2 layers × (2 norms + 7 matrices × 3) + embedding × 3 + head × 3 + final norm.
    assert_eq!(t.len(), 2 * (2 + 7 * 3) + 3 + 3 + 1);
    assert_eq!(summary.weight_bytes, t.values().map(|a| a.nbytes() as u64).sum::<u64>());

    // Dequantized, the weights are the random normals they came from: mean 0, std 0.02.
    let w = mlx_rs::ops::dequantize(q, scales, &t["model.layers.0.self_attn.q_proj.biases"], 64, 4).unwrap();
    let values = common::host_f32(&w);
    let mean = values.iter().sum::<f32>() / values.len() as f32;
    let std = (values.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / values.len() as f32).sqrt();
    assert!(mean.abs() < 1e-3 && (std - 0.02).abs() < 2e-3, "mean {mean}, std {std}");

    let float_dir = scratch("tiny-qwen2-float-layout");
    let opts = SynthOptions { dtype: FloatDtype::Float16, ..options(None) };
    write(&tiny(Arch::Qwen2), &opts, &float_dir);
    let config = read_json(&float_dir.join("config.json"));
    assert!(config.get("quantization").is_none() && config.get("quantization_config").is_none());
    assert!(config.get("head_dim").is_none(), "qwen2 configs derive head_dim");
    let t = tensors(&float_dir);
    let q = &t["model.layers.1.self_attn.q_proj.weight"];
    assert_eq!((q.dtype(), q.shape()), (Dtype::Float16, &[256, 256][..]));
    assert_eq!(t["model.layers.1.self_attn.k_proj.bias"].shape(), &[128]);
    assert!(!t.contains_key("model.layers.1.self_attn.o_proj.bias"));
    assert!(!t.contains_key("lm_head.weight"), "qwen2 tiny ties its embeddings");
}

#[test]
fn same_seed_writes_the_same_bytes() {
    let files = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
            .collect()
    };
    let (a, b, c) = (scratch("seed-a"), scratch("seed-b"), scratch("seed-c"));
    let config = tiny(Arch::Qwen3);
    let started = Instant::now();
    write(&config, &options(Some(4)), &a);
    eprintln!("tiny qwen3 4-bit written in {:?}", started.elapsed());
    write(&config, &options(Some(4)), &b);
    write(&config, &SynthOptions { seed: 4, ..options(Some(4)) }, &c);
    let (fa, fb, fc) = (files(&a), files(&b), files(&c));
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        ["config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"]
    );
    for (name, bytes) in &fa {
        assert!(*bytes == fb[name], "{name} differs between two writes with the same seed");
    }
    assert!(fa["model.safetensors"] != fc["model.safetensors"], "another seed gave the same weights");
    assert_eq!(fa["tokenizer.json"], fc["tokenizer.json"]);
}

#[test]
fn the_tokenizer_round_trips_and_ends_with_the_configured_eos() {
    let dir = scratch("tokenizer");
    let started = Instant::now();
    write(&tiny(Arch::Mistral), &options(None), &dir);
    eprintln!("tiny mistral float written in {:?}", started.elapsed());
    let tokenizer = Tokenizer::from_dir(&dir).unwrap();
    let ids = tokenizer.encode(BASE_TEXT).unwrap();
    assert_eq!(tokenizer.decode(&ids).unwrap(), BASE_TEXT);
    // Trained on the prompt text, so the merges compress it well below one token per byte.
    assert!(ids.len() * 2 < BASE_TEXT.len(), "{} tokens for {} bytes", ids.len(), BASE_TEXT.len());
    let eos = tokenizer.token_id(EOS_TOKEN).unwrap();
    assert_eq!(read_json(&dir.join("config.json"))["eos_token_id"], json!(eos));
    assert_eq!(read_json(&dir.join("tokenizer_config.json"))["eos_token"], EOS_TOKEN);
    let ordinary = tokenizer.ordinary_ids();
    assert!(ordinary.len() > 400 && *ordinary.last().unwrap() < 512, "{} ids", ordinary.len());
    assert!(!ordinary.contains(&eos));
}

/// A preset's shape as the published checkpoint has it.
#[derive(Debug, PartialEq)]
struct RealShape<'a> {
    preset: &'a str,
    model_type: &'a str,
    hidden: u64,
    layers: u64,
    heads: u64,
    kv_heads: u64,
    head_dim: Option<u64>,
    vocab: u64,
    /// `tie_word_embeddings` (Gemma's configs have none: Gemma 2 always ties, Gemma 3 unless
    /// the checkpoint has an lm_head).
    tied: Option<bool>,
    /// The checkpoint's parameter count, and the parameters one token uses.
    parameters: u64,
    active_parameters: u64,
}

const fn shape(
    preset: &'static str,
    model_type: &'static str,
    [hidden, layers, heads, kv_heads]: [u64; 4],
    head_dim: Option<u64>,
    vocab: u64,
    tied: Option<bool>,
    [parameters, active_parameters]: [u64; 2],
) -> RealShape<'static> {
    RealShape { preset, model_type, hidden, layers, heads, kv_heads, head_dim, vocab, tied, parameters, active_parameters }
}

const fn dense(parameters: u64) -> [u64; 2] {
    [parameters, parameters]
}

const REAL_SHAPES: [RealShape<'static>; 12] = [
    shape("llama-3.2-1b", "llama", [2048, 16, 32, 8], Some(64), 128256, Some(true), dense(1_235_814_400)),
    shape("llama-3.2-3b", "llama", [3072, 28, 24, 8], Some(128), 128256, Some(true), dense(3_212_749_824)),
    shape("llama-3.1-8b", "llama", [4096, 32, 32, 8], None, 128256, Some(false), dense(8_030_261_248)),
    shape("qwen2.5-0.5b", "qwen2", [896, 24, 14, 2], None, 151936, Some(true), dense(494_032_768)),
    shape("qwen3-0.6b", "qwen3", [1024, 28, 16, 8], Some(128), 151936, Some(true), dense(596_049_920)),
    shape("qwen3-4b", "qwen3", [2560, 36, 32, 8], Some(128), 151936, Some(true), dense(4_022_468_096)),
    shape("mistral-7b", "mistral", [4096, 32, 32, 8], None, 32768, Some(false), dense(7_248_023_552)),
    shape("gemma-2-2b", "gemma2", [2304, 26, 8, 4], Some(256), 256000, None, dense(2_614_341_888)),
    shape("gemma-3-1b", "gemma3_text", [1152, 26, 4, 1], Some(256), 262144, None, dense(999_885_952)),
    shape("phi-3-mini", "phi3", [3072, 32, 32, 32], None, 32064, Some(false), dense(3_821_079_552)),
    // Mistral AI: "46.7B total parameters but only uses 12.9B parameters per token".
    shape("mixtral-8x7b", "mixtral", [4096, 32, 32, 8], None, 32000, Some(false), [46_702_792_704, 12_879_925_248]),
    // Qwen: "30.5B in total and 3.3B activated".
    shape("qwen3-30b-a3b", "qwen3_moe", [2048, 48, 32, 4], Some(128), 151936, Some(false), [30_532_122_624, 3_353_032_704]),
];

#[test]
fn presets_have_the_real_shapes() {
    assert_eq!(PRESETS.len(), REAL_SHAPES.len() + 1);
    for expected in &REAL_SHAPES {
        let name = expected.preset;
        assert!(PRESETS.contains(&name), "{name}");
        let c = synth::preset_config(name, None).unwrap();
        let u = |key: &str| c[key].as_u64().unwrap();
        let count = synth::parameter_count(&c).unwrap();
        let got = RealShape {
            preset: name,
            model_type: c["model_type"].as_str().unwrap(),
            hidden: u("hidden_size"),
            layers: u("num_hidden_layers"),
            heads: u("num_attention_heads"),
            kv_heads: u("num_key_value_heads"),
            head_dim: c.get("head_dim").and_then(Value::as_u64),
            vocab: u("vocab_size"),
            tied: c.get("tie_word_embeddings").and_then(Value::as_bool),
            parameters: count.total,
            active_parameters: count.active,
        };
        assert_eq!(&got, expected);
    }
    let llama = synth::preset_config("llama-3.1-8b", None).unwrap();
    assert_eq!(llama["rope_theta"], 500000.0);
    assert_eq!(
        llama["rope_scaling"],
        json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192})
    );
    assert_eq!(synth::preset_config("llama-3.2-1b", None).unwrap()["rope_scaling"]["factor"], 32.0);
    assert_eq!(synth::preset_config("qwen2.5-0.5b", None).unwrap()["rms_norm_eps"], 1e-6);
    let gemma3 = synth::preset_config("gemma-3-1b", None).unwrap();
    assert_eq!((gemma3["sliding_window"].as_u64(), gemma3["sliding_window_pattern"].as_u64()), (Some(512), Some(6)));
    let qwen3_moe = synth::preset_config("qwen3-30b-a3b", None).unwrap();
    assert_eq!((u64_of(&qwen3_moe, "num_experts"), u64_of(&qwen3_moe, "num_experts_per_tok")), (128, 8));
    assert_eq!(u64_of(&qwen3_moe, "moe_intermediate_size"), 768);
}

fn u64_of(config: &Value, key: &str) -> u64 {
    config[key].as_u64().unwrap()
}

#[test]
fn presets_imply_their_architecture() {
    for arch in ARCHES {
        assert_eq!(tiny(arch)["model_type"], arch.model_type());
    }
    assert_eq!(synth::preset_config("tiny", None).unwrap()["model_type"], "llama");
    assert_eq!(synth::preset_config("mistral-7b", Some(Arch::Mistral)).unwrap()["model_type"], "mistral");
    let err = synth::preset_config("mistral-7b", Some(Arch::Llama)).unwrap_err().to_string();
    assert!(err.contains("mistral-7b is a mistral model"), "{err}");
    let err = synth::preset_config("gpt-2", None).unwrap_err().to_string();
    assert!(err.contains("gpt-2") && err.contains("qwen3-4b"), "{err}");
}

#[test]
fn config_files_must_agree_with_the_architecture() {
    let dir = scratch("config-file");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("in.json");
    let mut config = tiny(Arch::Qwen3);
    config.as_object_mut().unwrap().remove("model_type");
    std::fs::write(&path, config.to_string()).unwrap();
    assert_eq!(synth::load_config_file(&path, Some(Arch::Qwen3)).unwrap()["model_type"], "qwen3");
    std::fs::write(&path, tiny(Arch::Qwen3).to_string()).unwrap();
    let err = synth::load_config_file(&path, Some(Arch::Llama)).unwrap_err().to_string();
    assert!(err.contains("qwen3") && err.contains("llama"), "{err}");
}

#[test]
fn bad_requests_are_refused_with_reasons() {
    let dir = scratch("refusals");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "keep me").unwrap();
    let refuse = |config: &Value, options: &SynthOptions| -> String {
        let _mlx = MLX.lock().unwrap_or_else(|e| e.into_inner());
        synth::write_model(config, options, &dir).unwrap_err().to_string()
    };
    let err = refuse(&tiny(Arch::Llama), &options(Some(4)));
    assert!(err.contains("not empty"), "{err}");
    let forced = SynthOptions { force: true, ..options(Some(4)) };
    let err = refuse(&tiny(Arch::Llama), &SynthOptions { bits: Some(7), ..forced.clone() });
    assert!(err.contains("bits 7"), "{err}");
    let err = refuse(&tiny(Arch::Llama), &SynthOptions { group_size: 48, ..forced.clone() });
    assert!(err.contains("group size 48"), "{err}");
    let mut small_vocab = tiny(Arch::Llama);
    small_vocab["vocab_size"] = json!(100);
    let err = refuse(&small_vocab, &forced);
    assert!(err.contains("vocab_size 100"), "{err}");
    let mut gpt = tiny(Arch::Llama);
    gpt["model_type"] = json!("gpt2");
    let err = refuse(&gpt, &forced);
    assert!(err.contains("gpt2"), "{err}");
    let mut no_heads = tiny(Arch::Llama);
    no_heads["num_attention_heads"] = json!(0);
    let err = refuse(&no_heads, &forced);
    assert!(err.contains("num_attention_heads"), "{err}");

    // Forced, it replaces model files and keeps the rest.
    write(&tiny(Arch::Llama), &forced, &dir);
    write(&tiny(Arch::Qwen2), &forced, &dir);
    assert_eq!(std::fs::read_to_string(dir.join("notes.txt")).unwrap(), "keep me");
    assert_eq!(read_json(&dir.join("config.json"))["model_type"], "qwen2");
    assert!(models::load(&dir).is_ok());
}

/// Real widths through mlx-lm without writing gigabytes: every preset with one layer and a
/// vocabulary cut to 4096 (the rest of each config as is), 4-bit. Float32 scales: MLX's CPU
/// quantized matmul is ten times slower in bfloat16. Gemma 3 keeps one whole pattern of layers
/// (five sliding, one global: mlx-lm indexes the global layer's cache), and the mixtures of
/// experts only as many experts as a token uses.
#[test]
fn preset_shapes_load_in_mlx_lm() {
    let mut dirs = Vec::new();
    for name in REAL_SHAPES.map(|s| s.preset) {
        let mut config = synth::preset_config(name, None).unwrap();
        config["num_hidden_layers"] = config.get("sliding_window_pattern").cloned().unwrap_or(json!(1));
        config["vocab_size"] = json!(4096);
        for (experts, per_token) in [("num_local_experts", "num_experts_per_tok"), ("num_experts", "num_experts_per_tok")] {
            if config.get(experts).is_some() {
                config[experts] = config[per_token].clone();
            }
        }
        let dir = scratch(&format!("{name}-1-layer"));
        let started = Instant::now();
        write(&config, &SynthOptions { dtype: FloatDtype::Float32, ..options(Some(4)) }, &dir);
        eprintln!("{name} with 1 layer written in {:?}", started.elapsed());
        dirs.push(dir);
    }
    // A few tokens: MLX's CPU quantized matmul is slow at these widths.
    check_against_mlx_lm(&dirs, 20);
}

/// Writes the whole qwen2.5-0.5b preset at 4 bits and loads it in both loaders.
/// Run with: cargo test --release --test synth -- --ignored full_preset
#[test]
#[ignore = "writes 300 MB; about 25 s on a 2-core CPU"]
fn full_preset_loads_in_mlx_lm() {
    let dir = scratch("qwen2.5-0.5b");
    let started = Instant::now();
    let opts = SynthOptions { dtype: FloatDtype::Float32, ..options(Some(4)) };
    let summary = write(&synth::preset_config("qwen2.5-0.5b", None).unwrap(), &opts, &dir);
    eprintln!("qwen2.5-0.5b 4-bit: {} bytes in {:?}", summary.bytes_written, started.elapsed());
    assert_eq!(summary.parameters, 494_032_768);
    check_against_mlx_lm(&[dir], 20);
}

/// How long a preset takes to write: `MLXBENCH_SYNTH_PRESET` (default llama-3.2-1b) at 4 bits
/// in bfloat16 into `MLXBENCH_SYNTH_OUT` (default under the target directory).
/// Run with: cargo test --release --test synth -- --ignored --nocapture time_a_preset
#[test]
#[ignore = "writes a real-size model"]
fn time_a_preset() {
    let preset = std::env::var("MLXBENCH_SYNTH_PRESET").unwrap_or_else(|_| "llama-3.2-1b".into());
    let dir = std::env::var_os("MLXBENCH_SYNTH_OUT").map_or_else(|| scratch(&preset), PathBuf::from);
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let summary = write(&synth::preset_config(&preset, None).unwrap(), &options(Some(4)), &dir);
    eprintln!(
        "{preset} 4-bit: {} parameters, {} files, {} bytes written in {:.1} s",
        summary.parameters,
        summary.files.len(),
        summary.bytes_written,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn set_changes_one_key_and_refuses_nonsense() {
    let mut config = synth::preset_config("mixtral-8x7b", None).unwrap();
    let full = synth::parameter_count(&config).unwrap();
    synth::set_key(&mut config, "num_hidden_layers=8").unwrap();
    assert_eq!(config["num_hidden_layers"], 8);
    let quarter = synth::parameter_count(&config).unwrap();
    // Embeddings, head and final norm are 262,148,096 of the total; the layers scale.
    let outside = 2 * 32_000 * 4096 + 4096;
    assert_eq!((quarter.total - outside) * 4, full.total - outside);
    assert_eq!((quarter.active - outside) * 4, full.active - outside);
    synth::set_key(&mut config, "hidden_act=gelu").unwrap();
    assert_eq!(config["hidden_act"], "gelu");
    for bad in ["num_hidden_layers", "=3", "model_type=llama"] {
        let err = synth::set_key(&mut config, bad).unwrap_err().to_string();
        assert!(err.contains(bad), "{err}");
    }
}
