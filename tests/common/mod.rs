//! Helpers shared by the integration tests.
pub mod process;
pub mod reference;
use std::{
    path::{Path, PathBuf},
    process::Output,
    time::Duration,
};

use mlx_rs::{Array, Dtype};
use mlxbench::{
    measure::{TrialMemory, TrialMetrics, TrialTimings},
    synth::{self, Arch, FloatDtype, SynthOptions},
};

/// The `tiny` model of `arch` in float32 (weights quantized to `bits` when given), written to
/// `dir/tiny`.
#[allow(dead_code)] // not every test crate writes models
pub fn tiny_model(dir: &Path, arch: Arch, bits: Option<i32>) -> PathBuf {
    let out = dir.join("tiny");
    let config = synth::preset_config("tiny", Some(arch)).unwrap();
    synth::write_model(&config, &SynthOptions { bits, dtype: FloatDtype::Float32, ..SynthOptions::default() }, &out).unwrap();
    out
}

/// A command's standard error as text.
#[allow(dead_code)] // not every test crate runs commands
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A trial of 64 prompt tokens (prefill done at 16 ms) decoding 33 tokens `gap_us` apart, with a
/// peak of `peak` bytes.
#[allow(dead_code)] // not every test crate makes trials by hand
pub fn synthetic_trial(gap_us: u64, peak: u64) -> TrialMetrics {
    let timings = TrialTimings {
        batch: 1,
        n_context: 0,
        n_prompt: 65,
        n_prefill: 64,
        prefill_done: Duration::from_millis(16),
        token_times: (0..33).map(|i| Duration::from_millis(20) + Duration::from_micros(gap_us * i)).collect(),
        built_times: Vec::new(),
        queued_times: Vec::new(),
    };
    TrialMetrics::from_timings(&timings, TrialMemory { peak_memory_bytes: peak, ..TrialMemory::default() })
}

/// An array's values as float32 on the host. `+ 0` materializes sliced (non-contiguous) views
/// so they can be read back as a slice.
#[allow(dead_code)] // not every test crate reads arrays back
pub fn host_f32(a: &Array) -> Vec<f32> {
    let a = a.as_dtype(Dtype::Float32).unwrap().add(Array::from_f32(0.0)).unwrap();
    a.eval().unwrap();
    a.as_slice::<f32>().to_vec()
}

/// A run context for records made by hand: a GPU run with `repeats` trials after one warmup.
#[allow(dead_code)] // each test crate compiles this module; not all of them make records
pub fn run_context(repeats: usize) -> mlxbench::bench::RunContext {
    mlxbench::bench::RunContext {
        device: "gpu".into(),
        backend: "cuda".into(),
        mlx_version: "0.32.2".into(),
        mlx_build: "manylinux_2_35_x86_64".into(),
        hardware: "Apple M2 Ultra | 192.0 GB | 24 CPU (16P+8E) | 76 GPU cores".into(),
        git_commit: "abc".into(),
        mlxbench_version: "0.1.0".into(),
        timestamp: "2026-11-23T00:00:00Z".into(),
        prompt_kind: "text".into(),
        prefill_step_size: 2048,
        kv_group_size: 64,
        max_kv_size: None,
        warmup: 1,
        repeats,
        seed: 0,
        target_ci_pct: None,
        compile: false,
    }
}

/// Waits for `child` at most `limit`; kills it and fails the test (naming `what`, with its
/// stderr) when it hangs.
#[allow(dead_code)] // for the test crates that start processes
pub fn wait_bounded(mut child: std::process::Child, limit: std::time::Duration, what: &str) -> std::process::Output {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!("{what} did not end within {limit:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `mlxbench serve ARGS`, its output piped, bounded by `limit` ([`wait_bounded`]).
#[allow(dead_code)] // for the serve test crates
pub fn serve(args: &[&str], limit: std::time::Duration) -> std::process::Output {
    use std::process::{Command, Stdio};
    let child = Command::new(env!("CARGO_BIN_EXE_mlxbench"))
        .arg("serve")
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(child, limit, "mlxbench serve")
}
