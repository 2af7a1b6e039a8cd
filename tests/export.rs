//! `mlxbench export`, run as a user runs it, on results written by our own results files and on a
//! real Criterion tree; every document is validated against its format's schema
//! (tests/schemas).
use std::{path::Path, process::Command};

mod common;

use common::{run_context, synthetic_trial as trial};
use mlxbench::{
    bench::{Engine, RunPoint, RunRecord},
    gate::MemoryRecord,
    report::{file::ResultsFile, Format},
};
use serde_json::Value;


/// Three configurations (kv-bits none, 8, 4: 2, 2.5 and 3 ms per token) and one that failed.
fn records() -> Vec<RunRecord> {
    let point = |kv_bits| RunPoint { model: "/m/l1b".into(), kv_bits, batch: 1, depth: 0, n_prompt: 65, n_generate: 33, engine: Engine::Mlxbench, draft: None };
    let mut out: Vec<RunRecord> = [(None, 2000), (Some(8), 2500), (Some(4), 3000)]
        .into_iter()
        .map(|(bits, gap)| {
            let trials = vec![trial(gap - 50, 1_000_000), trial(gap, 1_000_000), trial(gap + 50, 1_000_000)];
            RunRecord::new(point(bits), run_context(3), Ok(trials), None, None)
        })
        .collect();
    let mut failed = point(Some(2));
    failed.model = "/m/broken".into();
    out.push(RunRecord::new(failed, run_context(3), Err("out of memory".into()), None, None));
    out
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas").join(name);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// Runs `mlxbench export ARGS` and returns its document, checked against `schema_file`.
fn export(args: &[&str], schema_file: &str) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_mlxbench")).arg("export").args(args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    let errors: Vec<String> = schema(schema_file).iter_errors(&document).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{schema_file}: {errors:#?}\n{document:#}");
    document
}

fn export_error(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_mlxbench")).arg("export").args(args).env("RUST_BACKTRACE", "0").output().unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn run_results_export_to_both_formats_from_json_and_csv_alike() {
    let dir = tempfile::tempdir().unwrap();
    let records = records();
    let mut paths = Vec::new();
    for (name, format) in [("run.json", Format::Json), ("run.csv", Format::Csv)] {
        let path = dir.path().join(name);
        ResultsFile::open(&path, format).unwrap().save(&records).unwrap();
        paths.push(path.to_str().unwrap().to_owned());
    }

    let bmf = export(&["--format", "bmf", &paths[0]], "bmf.schema.json");
    let benchmarks = bmf.as_object().unwrap();
    assert_eq!(benchmarks.len(), 3, "the failed configuration is left out: {bmf:#}");
    for (kv, ms_per_token) in [("kvnone", 2.0), ("kv8", 2.5), ("kv4", 3.0)] {
        let id = format!("l1b/mlxbench/{kv}/p65/g33/b1/d0");
        let generation = &bmf[&id]["generation-tps"];
        let value = generation["value"].as_f64().unwrap();
        assert!((value - 1000.0 / ms_per_token).abs() < 0.01 * value, "{id}: {generation}");
        let (lower, upper) = (generation["lower_value"].as_f64().unwrap(), generation["upper_value"].as_f64().unwrap());
        assert!(lower <= value && value <= upper && lower < upper, "{id}: the trials differ, so must the bounds: {generation}");
        // 64 prompt tokens in 16 ms.
        assert!((bmf[&id]["prompt-tps"]["value"].as_f64().unwrap() - 4000.0).abs() < 1.0, "{}", bmf[&id]);
        assert_eq!(bmf[&id]["peak-memory"]["value"], 1_000_000.0);
    }
    // The CSV's rows come back as the same configurations with the same numbers.
    assert_eq!(export(&["--format", "bmf", &paths[1]], "bmf.schema.json"), bmf);

    let bigger = export(&["--format", "github-bigger", &paths[0]], "github-action-benchmark.schema.json");
    let smaller = export(&["--format", "github-smaller", &paths[1]], "github-action-benchmark.schema.json");
    let names = |doc: &Value| doc.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert!(names(&bigger).iter().all(|n| n.ends_with("-tps")), "{:?}", names(&bigger));
    assert_eq!(names(&bigger).len(), 6, "generation and prompt tokens/s of 3 configurations");
    assert!(names(&smaller).iter().all(|n| !n.ends_with("-tps")), "{:?}", names(&smaller));
    let ttft = smaller.as_array().unwrap().iter().find(|e| e["name"] == "l1b/mlxbench/kv4/p65/g33/b1/d0 ttft").unwrap();
    assert_eq!((ttft["unit"].as_str(), ttft["value"].as_f64()), (Some("ms"), Some(20.0)), "{ttft}");
    assert!(ttft["extra"].as_str().unwrap().contains("3 samples"), "{ttft}");

    // -o writes the same document to a file.
    let out = dir.path().join("bmf.json");
    let status = Command::new(env!("CARGO_BIN_EXE_mlxbench")).args(["export", "--format", "bmf", &paths[0], "-o"]).arg(&out).status().unwrap();
    assert!(status.success());
    assert_eq!(serde_json::from_str::<Value>(&std::fs::read_to_string(&out).unwrap()).unwrap(), bmf);
}

#[test]
fn a_criterion_baseline_exports_time_tokens_and_memory() {
    // fixtures/criterion/README.md: a real Criterion tree, `main` spinning 40 µs per prefill.
    let root = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/criterion");
    let status = Command::new("cp").arg("-r").arg(&fixture).arg(root.path()).status().unwrap();
    assert!(status.success());
    let criterion = root.path().join("criterion");
    let prefill = criterion.join("prefill/tiny-llama-q4_kvnone/p128/main");
    MemoryRecord {
        full_id: "prefill/tiny-llama-q4/kvnone/p128".into(),
        peak_memory_bytes: vec![2_000_000; 10],
        kv_cache_bytes: 0,
        mlx_version: "0.32.2".into(),
        mlx_build: "manylinux_2_35_x86_64".into(),
        backend: "cpu".into(),
    }
    .write(&prefill)
    .unwrap();

    let dir = criterion.to_str().unwrap();
    let bmf = export(&["--format", "bmf", "--baseline", "main", "--criterion-dir", dir], "bmf.schema.json");
    assert_eq!(bmf.as_object().unwrap().len(), 3, "{bmf:#}");
    let prefill = &bmf["prefill/tiny-llama-q4/kvnone/p128"];
    let ns = prefill["latency"]["value"].as_f64().unwrap();
    assert!((40_000.0..48_000.0).contains(&ns), "a 40 µs spin: {prefill}");
    let tps = prefill["throughput"]["value"].as_f64().unwrap();
    assert!((tps - 128.0 / (ns * 1e-9)).abs() < 0.05 * tps, "128 elements per iteration: {prefill}");
    assert_eq!(prefill["peak-memory"]["value"], 2_000_000.0);
    assert!(bmf["ttft/tiny-llama-q4/kv4/p128"].get("peak-memory").is_none(), "no sidecar, no memory");

    let smaller = export(&["--format", "github-smaller", "--baseline", "main", "--criterion-dir", dir], "github-action-benchmark.schema.json");
    assert_eq!(smaller.as_array().unwrap().len(), 4, "3 latencies and 1 peak memory: {smaller:#}");

    let error = export_error(&["--format", "bmf", "--baseline", "nope", "--criterion-dir", dir]);
    assert!(error.contains("\"nope\" not found") && error.contains("main"), "{error}");
}

#[test]
fn exports_refuse_what_they_cannot_read_and_say_which_file() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.csv");
    std::fs::write(&other, "a,b\n1,2\n").unwrap();
    let error = export_error(&["--format", "bmf", other.to_str().unwrap()]);
    assert!(error.contains("other.csv") && error.contains("not mlxbench CSV results"), "{error}");

    let failed_only = dir.path().join("failed.json");
    ResultsFile::open(&failed_only, Format::Json).unwrap().save(&records()[3..]).unwrap();
    let error = export_error(&["--format", "github-bigger", failed_only.to_str().unwrap()]);
    assert!(error.contains("nothing to export"), "{error}");

    let error = export_error(&["--format", "bmf", dir.path().join("missing.json").to_str().unwrap()]);
    assert!(error.contains("missing.json"), "{error}");
    let error = export_error(&["--format", "xml", other.to_str().unwrap()]);
    assert!(error.contains("bmf") && error.contains("github-bigger"), "{error}");
}

#[test]
fn results_of_two_mlx_versions_export_apart_and_a_repeated_sweep_is_kept_apart_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let old = records();
    let new: Vec<RunRecord> = records()
        .into_iter()
        .map(|mut r| {
            r.context.mlx_version = "0.32.4".into();
            r
        })
        .collect();
    let (a, b) = (dir.path().join("old.csv"), dir.path().join("new.json"));
    ResultsFile::open(&a, Format::Csv).unwrap().save(&old).unwrap();
    ResultsFile::open(&b, Format::Json).unwrap().save(&new).unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());

    let bmf = export(&["--format", "bmf", a, b], "bmf.schema.json");
    let names: Vec<&String> = bmf.as_object().unwrap().keys().collect();
    assert_eq!(names.len(), 6, "three configurations under each version: {names:?}");
    for version in ["0.32.2", "0.32.4"] {
        let id = format!("l1b/mlxbench/kv8/p65/g33/b1/d0/mlx{version}");
        let value = bmf[&id]["generation-tps"]["value"].as_f64().unwrap();
        assert!((value - 400.0).abs() < 4.0, "{id}: {value}");
    }
    let bigger = export(&["--format", "github-bigger", a, b], "github-action-benchmark.schema.json");
    let extra = bigger.as_array().unwrap().iter().find(|e| e["name"] == "l1b/mlxbench/kv4/p65/g33/b1/d0/mlx0.32.4 generation-tps").unwrap();
    assert!(extra["extra"].as_str().unwrap().contains("MLX 0.32.4 (manylinux_2_35_x86_64) cuda"), "{extra}");
    // One version: the names dashboards already track.
    assert!(export(&["--format", "bmf", b], "bmf.schema.json").get("l1b/mlxbench/kv8/p65/g33/b1/d0").is_some());

    // The same sweep saved twice into one file: both runs are exported, the second apart by
    // name, and stderr says so.
    let twice = dir.path().join("twice.json");
    ResultsFile::open(&twice, Format::Json).unwrap().save(&old).unwrap();
    ResultsFile::open(&twice, Format::Json).unwrap().save(&old).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mlxbench")).args(["export", "--format", "bmf"]).arg(&twice).output().unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let bmf: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(bmf.as_object().unwrap().len(), 6, "three configurations, twice, none dropped: {bmf:#}");
    for kv in ["kvnone", "kv8", "kv4"] {
        let id = format!("l1b/mlxbench/{kv}/p65/g33/b1/d0");
        assert_eq!(bmf[&id]["generation-tps"], bmf[&format!("{id}/run2")]["generation-tps"], "the same trials, twice");
        assert!(stderr.contains(&format!("{id}/run2")), "{stderr}");
    }
    assert!(stderr.starts_with("note: 3 configurations were measured again by a later run"), "{stderr}");
    let github = export(&["--format", "github-bigger", twice.to_str().unwrap()], "github-action-benchmark.schema.json");
    let names: Vec<&str> = github.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 12, "decode and prompt rates of 3 configurations in 2 runs: {names:?}");
    assert!(names.iter().enumerate().all(|(i, n)| !names[..i].contains(n)), "no name twice: {names:?}");
    let quiet = Command::new(env!("CARGO_BIN_EXE_mlxbench")).args(["export", "--format", "bmf", a, b]).output().unwrap();
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
}
