//! Loading errors: each bad model directory gives an error that names the culprit (file, tensor,
//! module or model type), never a panic; settings an architecture cannot run are refused by
//! name. Models here are written by the test itself (or by `synth`, then spoiled).
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use mlx_rs::{random, Array};
use mlxbench::{
    cache::KvCacheOptions,
    device::{self, DeviceKind},
    models,
    synth::{self, Arch, FloatDtype, SynthOptions},
};
use serde_json::json;

fn config() -> serde_json::Value {
    json!({
        "model_type": "llama", "vocab_size": 32, "hidden_size": 64, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,
        "intermediate_size": 128, "rms_norm_eps": 1e-5, "tie_word_embeddings": true
    })
}

fn tensors() -> HashMap<String, Array> {
    let shapes: &[(&str, &[i32])] = &[
        ("model.embed_tokens.weight", &[32, 64]),
        ("model.layers.0.self_attn.q_proj.weight", &[64, 64]),
        ("model.layers.0.self_attn.k_proj.weight", &[32, 64]),
        ("model.layers.0.self_attn.v_proj.weight", &[32, 64]),
        ("model.layers.0.self_attn.o_proj.weight", &[64, 64]),
        ("model.layers.0.mlp.gate_proj.weight", &[128, 64]),
        ("model.layers.0.mlp.up_proj.weight", &[128, 64]),
        ("model.layers.0.mlp.down_proj.weight", &[64, 128]),
        ("model.layers.0.input_layernorm.weight", &[64]),
        ("model.layers.0.post_attention_layernorm.weight", &[64]),
        ("model.norm.weight", &[64]),
    ];
    let key = random::key(0).unwrap();
    shapes
        .iter()
        .map(|(name, shape)| (name.to_string(), random::normal::<f32>(*shape, None, None, &key).unwrap()))
        .collect()
}

/// Writes a model directory after letting the test spoil its config or tensors.
fn write_model(name: &str, spoil: impl FnOnce(&mut serde_json::Value, &mut HashMap<String, Array>)) -> PathBuf {
    device::select(DeviceKind::Cpu).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("loading").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (mut config, mut tensors) = (config(), tensors());
    spoil(&mut config, &mut tensors);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    Array::save_safetensors(tensors.iter().map(|(k, v)| (k.as_str(), v)), None, dir.join("model.safetensors")).unwrap();
    dir
}

fn load_error(dir: &Path) -> String {
    match models::load(dir) {
        Ok(_) => panic!("{} loaded, but should not", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_valid_model_loads_and_runs() {
    let dir = write_model("valid", |_, _| {});
    let loaded = models::load(&dir).unwrap();
    let logits = loaded.model.forward(&Array::from_slice(&[1i32, 2, 3], &[1, 3]), None).unwrap();
    assert_eq!(logits.shape(), &[1, 3, 32]);
}

#[test]
fn missing_config_is_named() {
    let dir = write_model("no-config", |_, _| {});
    std::fs::remove_file(dir.join("config.json")).unwrap();
    let err = load_error(&dir);
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn corrupt_safetensors_header_is_named() {
    let dir = write_model("corrupt", |_, _| {});
    std::fs::write(dir.join("model.safetensors"), b"\xff\xff\xff\xff\xff\xff\xff\x7fnot a header").unwrap();
    let err = load_error(&dir);
    assert!(err.contains("model.safetensors") && err.contains("safetensors"), "{err}");
}

#[test]
fn missing_tensor_is_named() {
    let dir = write_model("missing-tensor", |_, t| {
        t.remove("model.norm.weight");
    });
    let err = load_error(&dir);
    assert!(err.contains("model.norm.weight") && err.contains("not found"), "{err}");
}

#[test]
fn extra_tensor_is_named_with_its_file() {
    let dir = write_model("extra-tensor", |_, t| {
        t.insert("model.layers.0.mystery.weight".into(), Array::from_slice(&[1.0f32], &[1]));
    });
    let err = load_error(&dir);
    assert!(err.contains("model.layers.0.mystery.weight") && err.contains("model.safetensors"), "{err}");
}

#[test]
fn shape_mismatch_is_named() {
    let dir = write_model("bad-shape", |_, t| {
        t.insert("model.layers.0.mlp.up_proj.weight".into(), Array::zeros::<f32>(&[128, 63]).unwrap());
    });
    let err = load_error(&dir);
    assert!(err.contains("model.layers.0.mlp.up_proj.weight") && err.contains("[128, 63]") && err.contains("[128, 64]"), "{err}");
}

#[test]
fn unsupported_bits_are_named() {
    let dir = write_model("bits-7", |c, t| {
        c["quantization"] = json!({"group_size": 64, "bits": 7});
        t.insert("model.layers.0.mlp.up_proj.scales".into(), Array::zeros::<f32>(&[128, 1]).unwrap());
    });
    let err = load_error(&dir);
    assert!(err.contains("model.layers.0.mlp.up_proj") && err.contains("bits 7"), "{err}");
}

#[test]
fn unsupported_model_type_lists_the_supported_ones() {
    let dir = write_model("gpt2", |c, _| c["model_type"] = json!("gpt2"));
    let err = load_error(&dir);
    assert!(err.contains("gpt2") && err.contains("llama") && err.contains("qwen3"), "{err}");
}

#[test]
fn quantized_rotating_cache_is_refused() {
    let options = KvCacheOptions { kv_bits: Some(4), max_kv_size: Some(128), ..KvCacheOptions::default() };
    let err = options.validate(64).unwrap_err().to_string();
    assert!(err.contains("kv_bits") && err.contains("max_kv_size"), "{err}");
    assert!(KvCacheOptions { kv_bits: Some(8), ..KvCacheOptions::default() }.validate(64).is_ok());
    assert!(KvCacheOptions { kv_bits: Some(8), ..KvCacheOptions::default() }.validate(48).is_err(), "group 64 must divide head_dim");
}

/// A synthetic tiny model of `arch` (float32), its tensors then spoiled by `spoil`.
fn spoiled_synthetic(name: &str, arch: Arch, spoil: impl FnOnce(&mut HashMap<String, Array>)) -> PathBuf {
    device::select(DeviceKind::Cpu).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("loading").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let config = synth::preset_config("tiny", Some(arch)).unwrap();
    let options = SynthOptions { bits: None, dtype: FloatDtype::Float32, ..SynthOptions::default() };
    synth::write_model(&config, &options, &dir).unwrap();
    let file = dir.join("model.safetensors");
    let mut tensors: HashMap<String, Array> = Array::load_safetensors(&file).unwrap();
    spoil(&mut tensors);
    std::fs::remove_file(dir.join("model.safetensors.index.json")).unwrap();
    // The loaded arrays still read from `file`: write beside it, then replace it.
    let spoiled = dir.join("spoiled.safetensors");
    Array::save_safetensors(tensors.iter().map(|(k, v)| (k.as_str(), v)), None, &spoiled).unwrap();
    std::fs::rename(&spoiled, &file).unwrap();
    dir
}

#[test]
fn expert_tensors_are_named_when_missing_misshapen_or_unstacked() {
    let switch = "model.layers.1.block_sparse_moe.switch_mlp.up_proj.weight";
    assert!(models::load(&spoiled_synthetic("mixtral-valid", Arch::Mixtral, |_| {})).is_ok());
    let dir = spoiled_synthetic("mixtral-missing", Arch::Mixtral, |t| {
        t.remove(switch);
    });
    let err = load_error(&dir);
    assert!(err.contains(switch) && err.contains("not found"), "{err}");
    // One expert short: [7, 128, 256] instead of [8, 128, 256].
    let dir = spoiled_synthetic("mixtral-shape", Arch::Mixtral, |t| {
        t.insert(switch.into(), Array::zeros::<f32>(&[7, 128, 256]).unwrap());
    });
    let err = load_error(&dir);
    assert!(err.contains(switch) && err.contains("[7, 128, 256]") && err.contains("[8, 128, 256]"), "{err}");
    // Hugging Face's per-expert layout is not ours (mlx-lm's convert stacks it).
    let dir = spoiled_synthetic("mixtral-unstacked", Arch::Mixtral, |t| {
        t.insert("model.layers.0.block_sparse_moe.experts.0.w1.weight".into(), Array::zeros::<f32>(&[128, 256]).unwrap());
    });
    let err = load_error(&dir);
    assert!(err.contains("model.layers.0.block_sparse_moe.experts.0.w1.weight") && err.contains("not used"), "{err}");
    let router = "model.layers.0.mlp.gate.weight";
    let dir = spoiled_synthetic("qwen3-moe-router", Arch::Qwen3Moe, |t| {
        t.remove(router);
    });
    let err = load_error(&dir);
    assert!(err.contains(router), "{err}");
}

#[test]
fn gemma_and_phi3_tensors_are_named() {
    let q_norm = "model.layers.1.self_attn.q_norm.weight";
    let err = load_error(&spoiled_synthetic("gemma3-q-norm", Arch::Gemma3Text, |t| {
        t.remove(q_norm);
    }));
    assert!(err.contains(q_norm) && err.contains("not found"), "{err}");
    let post_ff = "model.layers.0.post_feedforward_layernorm.weight";
    let err = load_error(&spoiled_synthetic("gemma2-post-ff", Arch::Gemma2, |t| {
        t.insert(post_ff.into(), Array::zeros::<f32>(&[255]).unwrap());
    }));
    assert!(err.contains(post_ff) && err.contains("[255]") && err.contains("[256]"), "{err}");
    // Phi-3's fused projection holds queries (4 × 64), keys and values (2 × 64 each).
    let qkv = "model.layers.0.self_attn.qkv_proj.weight";
    let err = load_error(&spoiled_synthetic("phi3-qkv", Arch::Phi3, |t| {
        t.insert(qkv.into(), Array::zeros::<f32>(&[256, 256]).unwrap());
    }));
    assert!(err.contains(qkv) && err.contains("[512, 256]"), "{err}");
}

#[test]
fn settings_the_architecture_cannot_run_are_refused_by_name() {
    let refuse = |arch: Arch, options: KvCacheOptions| -> String {
        let dir = spoiled_synthetic(&format!("refuse-{arch}"), arch, |_| {});
        let loaded = models::load(&dir).unwrap();
        match loaded.model.make_caches(&options) {
            Ok(_) => panic!("{arch}: {options:?} was accepted"),
            Err(e) => e.to_string(),
        }
    };
    let kv8 = KvCacheOptions { kv_bits: Some(8), ..KvCacheOptions::default() };
    let err = refuse(Arch::Gemma2, kv8);
    assert!(err.contains("kv_bits is not supported for gemma2") && err.contains("soft-capped"), "{err}");
    let err = refuse(Arch::Gemma3Text, kv8);
    assert!(err.contains("kv_bits is not supported for gemma3_text") && err.contains("rotating"), "{err}");
    let err = refuse(Arch::Gemma3Text, KvCacheOptions { max_kv_size: Some(64), ..KvCacheOptions::default() });
    assert!(err.contains("max_kv_size is not supported for gemma3_text"), "{err}");
    // A benchmark sweep records these as unsupported, not failed.
    assert_eq!(mlxbench::bench::Status::of_failure(&err), mlxbench::bench::Status::Unsupported);
    // MLX's CPU gather_mm runs only float32: bfloat16 experts are refused on the CPU by name
    // instead of failing inside MLX.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("loading").join("mixtral-bf16");
    let _ = std::fs::remove_dir_all(&dir);
    let options = SynthOptions { bits: None, dtype: FloatDtype::Bfloat16, ..SynthOptions::default() };
    synth::write_model(&synth::preset_config("tiny", Some(Arch::Mixtral)).unwrap(), &options, &dir).unwrap();
    device::select(DeviceKind::Cpu).unwrap();
    let Err(err) = models::load(&dir).unwrap().model.make_caches(&KvCacheOptions::default()) else {
        panic!("bfloat16 experts were accepted on the CPU")
    };
    let err = err.to_string();
    assert!(err.contains("float experts on the CPU is not supported for mixtral") && err.contains("Bfloat16"), "{err}");
}
