//! `mlxbench run` end to end on the CPU with a tiny synthetic model, as a user runs it: sweeps,
//! output formats, appending, failures that do not stop the sweep, and clap's errors.
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use mlxbench::{
    bench::{RunRecord, Status},
    report::{CsvRow, JsonReport},
    synth::{self, Arch, FloatDtype, SynthOptions},
};

fn mlxbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlxbench")).args(args).env_remove("RUST_BACKTRACE").output().expect("running mlxbench")
}

fn tiny_model(dir: &Path) -> PathBuf {
    let out = dir.join("tiny");
    let config = synth::preset_config("tiny", Some(Arch::Qwen3)).unwrap();
    let options = SynthOptions { bits: Some(4), dtype: FloatDtype::Float32, ..SynthOptions::default() };
    synth::write_model(&config, &options, &out).unwrap();
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_sweep_prints_json_and_appends_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path());
    let model = model.to_str().unwrap();
    let csv = tmp.path().join("results/out.csv");
    let args = ["run", "--model", model, "-p", "16,32", "-n", "4", "--kv-bits", "none,8", "--repeats", "2", "--warmup", "0"];
    let mut with_output = args.to_vec();
    with_output.extend(["--format", "json", "--output", csv.to_str().unwrap(), "--device", "cpu"]);
    let out = mlxbench(&with_output);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: JsonReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.records.len(), 4);
    for r in &report.records {
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.trials.len(), 2);
        let s = r.summary.as_ref().unwrap();
        assert!(s.prompt_tps.as_ref().unwrap().min > 0.0);
        assert!(s.generation_tps.as_ref().unwrap().min > 0.0);
        assert!(s.ttft_ms.as_ref().unwrap().min > 0.0);
        // The peak window includes the weights and the KV cache.
        assert!(s.peak_memory_bytes.as_ref().unwrap().min >= s.kv_cache_bytes.as_ref().unwrap().max);
    }
    // Order: kv bits outer, prompt length inner; a quantized cache is smaller than a plain one.
    let points: Vec<_> = report.records.iter().map(|r| (r.point.kv_bits, r.point.n_prompt)).collect();
    assert_eq!(points, vec![(None, 16), (None, 32), (Some(8), 16), (Some(8), 32)]);
    let kv = |i: usize| report.records[i].trials[0].memory.kv_cache_bytes;
    assert!(kv(2) < kv(0), "kv8 {} vs plain {}", kv(2), kv(0));

    let rows = |p: &Path| csv::Reader::from_path(p).unwrap().deserialize::<CsvRow>().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(rows(&csv).len(), 8);
    let again = mlxbench(&[&args[..], &["--format", "csv", "--output", csv.to_str().unwrap()]].concat());
    assert!(again.status.success(), "{}", stderr(&again));
    let all = rows(&csv);
    assert_eq!(all.len(), 16);
    assert_eq!(all[0].model, model);
    assert_eq!(all[0].prompt_tokens, 16);
    assert_eq!(all[0].generation_tokens, 4);
    let mlx = mlxbench::device::mlx_version();
    assert!(all.iter().all(|r| r.status == "ok" && r.device == "cpu" && r.mlx_version == mlx));
    // Stdout in CSV is the same table shape.
    assert_eq!(csv::Reader::from_reader(&again.stdout[..]).deserialize::<CsvRow>().count(), 8);
}

#[test]
fn a_failing_model_is_reported_and_the_sweep_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path());
    let missing = tmp.path().join("no-such-model");
    let out_path = tmp.path().join("r.jsonl");
    let models = format!("{},{}", missing.display(), model.display());
    let out = mlxbench(&[
        "run", "--model", &models, "-p", "8", "-n", "2", "--repeats", "1", "--warmup", "0", "--depth", "0,8", "--batch", "2",
        "--output", out_path.to_str().unwrap(), "--format", "md",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 of 4 configurations did not complete"), "{}", stderr(&out));
    let records: Vec<RunRecord> =
        std::fs::read_to_string(&out_path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 4);
    assert_eq!(records[0].status, Status::Failed);
    assert!(records[0].error.as_ref().unwrap().contains("no-such-model"));
    assert_eq!(records[2].status, Status::Ok);
    // Depth 8 puts 8 more tokens in the cache than depth 0; batch 2 reports total and per sequence.
    let (shallow, deep) = (&records[2].trials[0], &records[3].trials[0]);
    assert_eq!(records[3].point.depth, 8);
    assert!(deep.memory.kv_cache_bytes >= shallow.memory.kv_cache_bytes);
    let (total, per_sequence) = (shallow.generation_tps.unwrap(), shallow.generation_tps_per_sequence.unwrap());
    assert!((total - 2.0 * per_sequence).abs() < 1e-9 * total);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("| failed: "), "{table}");
}

/// A mixture of experts reports its active parameters beside the total and a decode bandwidth of
/// the weights a token reads; a setting an architecture cannot run (Gemma 3 with a quantized KV
/// cache) is recorded as unsupported and the sweep goes on.
#[test]
fn mixtures_of_experts_report_active_parameters_and_refusals_are_unsupported() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |arch: Arch, name: &str| {
        let out = tmp.path().join(name);
        let options = SynthOptions { bits: Some(4), dtype: FloatDtype::Float32, ..SynthOptions::default() };
        synth::write_model(&synth::preset_config("tiny", Some(arch)).unwrap(), &options, &out).unwrap();
        out.to_str().unwrap().to_string()
    };
    let (moe, gemma3) = (write(Arch::Qwen3Moe, "moe"), write(Arch::Gemma3Text, "gemma3"));
    let json = tmp.path().join("r.json");
    let out = mlxbench(&[
        "run", "--model", &format!("{moe},{gemma3}"), "-p", "24", "-n", "4", "--kv-bits", "none,8", "--repeats", "1",
        "--warmup", "0", "--device", "cpu", "--output", json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: JsonReport = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let statuses: Vec<Status> = report.records.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Status::Ok, Status::Ok, Status::Ok, Status::Unsupported]);
    assert!(report.records[3].error.as_ref().unwrap().contains("kv_bits is not supported for gemma3_text"));

    let r = &report.records[0];
    let (total, active) = (r.parameters.unwrap(), r.active_parameters.unwrap());
    // 2 layers × 6 unused experts × 3 projections of 128 × 256.
    assert_eq!(total - active, 2 * 6 * 3 * 128 * 256);
    let (files, decode) = (r.weight_bytes.unwrap(), r.decode_weight_bytes.unwrap());
    assert!(decode < files, "a token reads {decode} of {files} bytes");
    let s = r.summary.as_ref().unwrap();
    let expected = (decode as f64 + s.kv_cache_bytes.as_ref().unwrap().median) * s.generation_tps_per_sequence.as_ref().unwrap().median / 1e9;
    assert!((r.decode_gbps.unwrap() - expected).abs() <= 1e-12 * expected);
    let dense = &report.records[2];
    assert_eq!(dense.parameters, dense.active_parameters);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains(&format!("| {:.1} M ({:.1} M active) |", total as f64 / 1e6, active as f64 / 1e6)), "{table}");
}

#[test]
fn bad_flags_are_clap_errors() {
    for (args, mentions) in [
        (vec!["run", "-p", "8"], "--model"),
        (vec!["run", "--model", "m", "--n-prompt", "0"], "--n-prompt"),
        (vec!["run", "--model", "m", "--kv-bits", "six"], "--kv-bits"),
        (vec!["run", "--model", "m", "--format", "xml"], "--format"),
        (vec!["run", "--model", "m", "--output", "x.csv", "--no-save"], "--no-save"),
        (vec!["compare"], "--baseline"),
        (vec!["synth", "--preset", "no-such-preset", "--out", "x"], "no-such-preset"),
    ] {
        let out = mlxbench(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(mentions), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn hwinfo_and_compare_explain_themselves() {
    let out = mlxbench(&["hwinfo"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(" GiB"));
    let tmp = tempfile::tempdir().unwrap();
    let out = mlxbench(&["compare", "--baseline", "main", "--criterion-dir", tmp.path().join("nothing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cargo bench"), "{}", stderr(&out));
    let help = String::from_utf8_lossy(&mlxbench(&["compare", "--help"]).stdout).into_owned();
    assert!(help.contains("[default: table]"), "{help}");
}

/// Off a terminal (stderr is a pipe here, as in CI logs or `| tee`), each configuration is one
/// line as it finishes, in the sweep's order: its label and medians, or its status and error.
#[test]
fn off_a_terminal_each_finished_configuration_is_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path());
    let missing = tmp.path().join("no-such-model");
    let models = format!("{},{}", missing.display(), model.display());
    let out = mlxbench(&[
        "run", "--model", &models, "-p", "16,32", "-n", "4", "--kv-bits", "none,8", "--repeats", "2", "--warmup", "1", "--device",
        "cpu", "--no-save",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 8, "{err}");
    let measured = regex::Regex::new(
        r"^\[(\d)/8\] (\S+) \(mlxbench, kv (none|8), p(16|32) g4 b1 d0\): prompt \d+\.\d t/s, decode \d+\.\d t/s, TTFT \d+\.\d\d ms, peak \d+\.\d (kB|MB) \(medians of 2 trials\)$",
    )
    .unwrap();
    let mut seen = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if i < 4 {
            assert!(line.starts_with(&format!("[{}/8] no-such-model (mlxbench, kv ", i + 1)), "{line}");
            assert!(line.contains("): failed: model ") && line.contains("no-such-model"), "{line}");
            continue;
        }
        let c = measured.captures(line).unwrap_or_else(|| panic!("not a result line: {line}"));
        assert_eq!(&c[1], (i + 1).to_string());
        assert_eq!(&c[2], "tiny", "the short name");
        seen.push((c[3].to_string(), c[4].to_string()));
    }
    // kv bits outer, prompt length inner.
    let expected: Vec<(String, String)> =
        [("none", "16"), ("none", "32"), ("8", "16"), ("8", "32")].iter().map(|(k, p)| (k.to_string(), p.to_string())).collect();
    assert_eq!(seen, expected);
    // The line replaces the bar's separate failure message: each failure is said once.
    assert_eq!(err.matches("no-such-model\" not found").count(), 4, "{err}");
}
