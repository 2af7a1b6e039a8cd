//! `--engine mlxbench,mlx-lm`: Apple's mlx-lm measured in the same run through its own
//! `generate_step` (a Python subprocess), on the same prompt ids, with the same protocol; and the
//! one-line errors of a missing interpreter, a missing mlx-lm and a different MLX.
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

mod common;

use common::reference;
use mlxbench::{
    bench::{engine::MlxLmProcess, PreparedModel, RunRecord, Settings, Status},
    device::{self, DeviceKind},
    measure::run_trial,
    report::JsonReport,
    synth::{self, Arch, FloatDtype, SynthOptions},
};

fn tiny_model(dir: &Path, arch: Arch) -> PathBuf {
    let out = dir.join(format!("tiny-{arch}"));
    let config = synth::preset_config("tiny", Some(arch)).unwrap();
    // A larger init than synth's default, so greedy decoding does not just repeat a token.
    let options = SynthOptions { bits: Some(4), dtype: FloatDtype::Float32, seed: 3, ..SynthOptions::default() };
    synth::write_model(&config, &options, &out).unwrap();
    out
}

#[test]
fn both_engines_generate_the_same_tokens_from_the_same_prompt_ids() {
    device::select(DeviceKind::Cpu).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny_model(tmp.path(), Arch::Qwen3);
    let model = PreparedModel::load(dir.to_str().unwrap()).unwrap();
    let settings = Settings::default();
    let mut mlx_lm = MlxLmProcess::start(&reference::python_arg(), DeviceKind::Cpu).unwrap();
    mlx_lm.load(&dir).unwrap();
    for (kv_bits, depth) in [(None, 0), (Some(8), 0), (None, 16)] {
        let point = mlxbench::bench::RunPoint {
            model: dir.to_string_lossy().into_owned(),
            kv_bits,
            batch: 1,
            depth,
            n_prompt: 24,
            n_generate: 12,
            engine: mlxbench::bench::Engine::Mlxbench,
            draft: None,
        };
        let prompt = model.prompts(settings.prompt_kind, depth + 24, 1, 0).unwrap();
        let options = settings.generate_options(&point);
        let ours = run_trial(model.loaded.model.as_ref(), &prompt, depth, &options).unwrap();
        let theirs = mlx_lm.trial(&prompt, depth, &options, None).unwrap();
        let our_tokens: Vec<u32> = ours.generated.iter().map(|step| step[0]).collect();
        assert_eq!(our_tokens, theirs.tokens, "kv {kv_bits:?} depth {depth}");
        assert_eq!(theirs.timings.token_times.len(), 12);
        assert_eq!((theirs.timings.n_prompt, theirs.timings.n_prefill), (ours.timings.n_prompt, ours.timings.n_prefill));
        assert!(theirs.timings.token_times.windows(2).all(|w| w[0] <= w[1]));
        assert!(theirs.timings.prefill_done <= theirs.timings.token_times[0]);
        assert!(theirs.memory.kv_cache_bytes > 0 && theirs.memory.peak_memory_bytes > theirs.memory.kv_cache_bytes);
    }
    // Batches are refused with a reason that reads as unsupported.
    let batch = model.prompts(settings.prompt_kind, 8, 2, 0).unwrap();
    let err = mlx_lm.trial(&batch, 0, &mlxbench::generate::GenerateOptions::default(), None).err().unwrap();
    assert_eq!(mlxbench::bench::Status::of_failure(&err), Status::Unsupported, "{err}");
}

/// `--max-kv-size` on a model whose mlx-lm class has its own `make_cache` (Llama): mlx-lm's
/// `make_prompt_cache` would ignore the bound there, so the engine must give it the rotating cache
/// itself — the same tokens as ours, and a cache that stopped growing at the bound.
#[test]
fn a_bounded_cache_is_bounded_on_both_engines() {
    device::select(DeviceKind::Cpu).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny_model(tmp.path(), Arch::Llama);
    let model = PreparedModel::load(dir.to_str().unwrap()).unwrap();
    let mut settings = Settings::default();
    settings.kv.max_kv_size = Some(16);
    let mut mlx_lm = MlxLmProcess::start(&reference::python_arg(), DeviceKind::Cpu).unwrap();
    mlx_lm.load(&dir).unwrap();
    let point = mlxbench::bench::RunPoint {
        model: dir.to_string_lossy().into_owned(),
        kv_bits: None,
        batch: 1,
        depth: 0,
        n_prompt: 40,
        n_generate: 8,
        engine: mlxbench::bench::Engine::Mlxbench,
        draft: None,
    };
    let prompt = model.prompts(settings.prompt_kind, 40, 1, 0).unwrap();
    let options = settings.generate_options(&point);
    let ours = run_trial(model.loaded.model.as_ref(), &prompt, 0, &options).unwrap();
    let theirs = mlx_lm.trial(&prompt, 0, &options, None).unwrap();
    let our_tokens: Vec<u32> = ours.generated.iter().map(|step| step[0]).collect();
    assert_eq!(our_tokens, theirs.tokens);
    let unbounded = {
        let plain = Settings::default().generate_options(&point);
        mlx_lm.trial(&prompt, 0, &plain, None).unwrap().memory.kv_cache_bytes
    };
    assert!(
        theirs.memory.kv_cache_bytes < unbounded,
        "mlx-lm's cache with --max-kv-size 16 holds {} bytes, as many as without a bound ({unbounded})",
        theirs.memory.kv_cache_bytes
    );
}

fn mlxbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlxbench")).args(args).env_remove("RUST_BACKTRACE").output().expect("running mlxbench")
}

fn records(out: &Output) -> Vec<RunRecord> {
    serde_json::from_slice::<JsonReport>(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout))).records
}

#[test]
fn run_interleaves_the_engines_and_compares_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny_model(tmp.path(), Arch::Llama);
    let python = reference::python_arg();
    let out = mlxbench(&[
        "run", "--model", dir.to_str().unwrap(), "-p", "16", "-n", "8", "--kv-bits", "none,4", "--repeats", "2", "--warmup", "1",
        "--engine", "mlxbench,mlx-lm", "--python", &python, "--device", "cpu", "--format", "json", "--no-save",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records = records(&out);
    let engines: Vec<(String, Option<i32>)> = records.iter().map(|r| (r.point.engine.to_string(), r.point.kv_bits)).collect();
    assert_eq!(
        engines,
        vec![("mlxbench".into(), None), ("mlx-lm".into(), None), ("mlxbench".into(), Some(4)), ("mlx-lm".into(), Some(4))]
    );
    for r in &records {
        assert_eq!(r.status, Status::Ok, "{:?}", r.error);
        assert_eq!(r.trials.len(), 2);
        for t in &r.trials {
            assert_eq!(t.token_ms.len(), 8, "{}", r.point.engine);
            assert!(t.generation_tps_robust.unwrap() > 0.0 && t.itl_p50_ms.unwrap() > 0.0);
        }
    }
    // The Markdown table names the engines and adds the ratio with its interval.
    let md = mlxbench(&[
        "run", "--model", dir.to_str().unwrap(), "-p", "16", "-n", "8", "--repeats", "6", "--warmup", "0",
        "--engine", "mlxbench,mlx-lm", "--python", &python, "--device", "cpu", "--no-save",
    ]);
    assert!(md.status.success(), "{}", String::from_utf8_lossy(&md.stderr));
    let table = String::from_utf8_lossy(&md.stdout);
    assert!(table.contains("| mlx-lm |") && table.contains("mlxbench ÷ mlx-lm"), "{table}");
    assert!(table.contains("× ["), "a ratio with its interval: {table}");
}

#[test]
fn a_broken_mlx_lm_is_a_one_line_error_and_the_sweep_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny_model(tmp.path(), Arch::Llama);
    // An interpreter that reports another MLX, and one that has no mlx-lm at all.
    let other_mlx = tmp.path().join("python-other-mlx");
    std::fs::write(&other_mlx, "#!/bin/sh\nread line\necho '{\"ok\": {\"mlx_version\": \"0.31.0\", \"mlx_lm_version\": \"0.31.0\"}}'\n").unwrap();
    let no_mlx_lm = tmp.path().join("python-without-mlx-lm");
    std::fs::write(&no_mlx_lm, "#!/bin/sh\nexec python3 -S \"$@\"\n").unwrap();
    for script in [&other_mlx, &no_mlx_lm] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let missing = tmp.path().join("no-such-python");
    for (python, expected) in [
        (missing.to_str().unwrap(), "cannot run"),
        (other_mlx.to_str().unwrap(), "has MLX 0.31.0"),
        (no_mlx_lm.to_str().unwrap(), "cannot import mlx-lm"),
    ] {
        let out = mlxbench(&[
            "run", "--model", dir.to_str().unwrap(), "-p", "8", "-n", "2", "--repeats", "1", "--warmup", "0", "--kv-bits", "none,8",
            "--engine", "mlxbench,mlx-lm", "--python", python, "--device", "cpu", "--format", "json", "--no-save",
        ]);
        assert_eq!(out.status.code(), Some(1), "{python}");
        let records = records(&out);
        assert_eq!(records.len(), 4, "{python}");
        for r in &records {
            match r.point.engine {
                mlxbench::bench::Engine::Mlxbench => assert_eq!(r.status, Status::Ok, "{python}: {:?}", r.error),
                mlxbench::bench::Engine::MlxLm => {
                    let error = r.error.as_deref().unwrap();
                    assert_eq!(r.status, Status::Failed, "{python}");
                    assert!(error.contains(expected) && error.contains(python) && !error.contains('\n'), "{python}: {error}");
                }
            }
        }
    }
}
