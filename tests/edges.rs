//! Bad inputs and rough handling, as a user meets them: config values that shapes are made of,
//! unwritable outputs, a synth output that is a file, two runs appending to one results file,
//! Ctrl-C in the middle of a sweep; and the cold-start and memory-drift numbers of `run`.
use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use mlxbench::{
    bench::RunRecord,
    config::ModelConfig,
    report::JsonReport,
    synth::Arch,
};
use serde_json::Value;


mod common;
use common::{stderr, tiny_model};
fn mlxbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlxbench")).args(args).env_remove("RUST_BACKTRACE").output().expect("running mlxbench")
}



#[test]
fn config_values_that_shapes_are_made_of_are_checked_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), Arch::Llama, None);
    let original: Value = serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).unwrap()).unwrap();
    for (key, value, mentions) in [
        ("num_attention_heads", 0, "num_attention_heads is 0"),
        ("hidden_size", 0, "hidden_size is 0"),
        ("num_key_value_heads", 0, "num_key_value_heads is 0"),
        ("num_key_value_heads", 3, "not a multiple of num_key_value_heads 3"),
        ("vocab_size", 0, "vocab_size is 0"),
        ("head_dim", 0, "head_dim is 0"),
        ("num_hidden_layers", 0, "num_hidden_layers is 0"),
        ("intermediate_size", 3_000_000_000u64 as i64, "intermediate_size is 3000000000"),
    ] {
        let mut config = original.clone();
        config[key] = value.into();
        std::fs::write(model.join("config.json"), config.to_string()).unwrap();
        let err = ModelConfig::from_dir(&model).unwrap_err().to_string();
        assert!(err.contains(mentions) && err.contains("config.json"), "{key}={value}: {err}");
        // Through the command line, as a failed record, not a panic.
        let out = mlxbench(&["run", "--model", model.to_str().unwrap(), "-p", "8", "-n", "2", "--repeats", "1", "--no-save", "--device", "cpu"]);
        assert_eq!(out.status.code(), Some(1), "{key}");
        assert!(!stderr(&out).contains("panicked"), "{key}: {}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains(mentions), "{key}");
    }
}

#[test]
fn unwritable_outputs_are_named_before_anything_is_measured() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, "not a folder").unwrap();
    // The results file's folder is a file: named at once, no model loaded.
    let output = blocker.join("results.csv");
    let out = mlxbench(&["run", "--model", "no-such-model", "--output", output.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&format!("cannot write results to {}", output.display())), "{}", stderr(&out));
    assert!(!stderr(&out).contains("no-such-model"), "checked before loading: {}", stderr(&out));
    // synth into a file.
    let out = mlxbench(&["synth", "--preset", "tiny", "--out", blocker.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&format!("{} is a file", blocker.display())), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&blocker).unwrap(), "not a folder");
}

#[test]
fn two_runs_appending_to_one_file_keep_every_row() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), Arch::Llama, None);
    let csv = tmp.path().join("shared.csv");
    let spawn = |prompts: &str| {
        Command::new(env!("CARGO_BIN_EXE_mlxbench"))
            .args(["run", "--model", model.to_str().unwrap(), "-p", prompts, "-n", "2", "--repeats", "1", "--warmup", "0"])
            .args(["--device", "cpu", "--output", csv.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("8,9,10,11,12,13"), spawn("20,21,22,23,24,25"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let rows: Vec<mlxbench::report::CsvRow> =
        csv::Reader::from_path(&csv).unwrap().deserialize().collect::<Result<_, _>>().unwrap();
    let mut prompts: Vec<usize> = rows.iter().map(|r| r.prompt_tokens).collect();
    prompts.sort();
    assert_eq!(prompts, vec![8, 9, 10, 11, 12, 13, 20, 21, 22, 23, 24, 25], "no run's rows lost");
    let header_lines = std::fs::read_to_string(&csv).unwrap().lines().filter(|l| l.starts_with("run,")).count();
    assert_eq!(header_lines, 1);
}

#[test]
fn ctrl_c_keeps_every_finished_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), Arch::Llama, None);
    let jsonl = tmp.path().join("r.jsonl");
    let prompts: Vec<String> = (8..48).map(|p| p.to_string()).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlxbench"))
        .args(["run", "--model", model.to_str().unwrap(), "-p", &prompts.join(","), "-n", "4", "--repeats", "2"])
        .args(["--device", "cpu", "--output", jsonl.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(&jsonl).map_or(0, |t| t.lines().count()) < 2 {
        assert!(Instant::now() < deadline, "no configuration finished in time");
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended before Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "mlxbench did not stop after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("stopped (Ctrl-C)"), "{err}");
    let records: Vec<RunRecord> =
        std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(records.len() >= 2 && records.len() < 40, "{} records", records.len());
    assert!(records.iter().all(|r| r.trials.len() == 2), "only finished configurations are kept");
    let leftovers = std::fs::read_dir(tmp.path()).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).count();
    assert_eq!(leftovers, 0);
}

#[test]
fn cold_start_and_memory_drift_are_in_every_record() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), Arch::Llama, None);
    let out = mlxbench(&[
        "run", "--model", model.to_str().unwrap(), "-p", "8,16", "-n", "4", "--cold", "--leak-check", "5", "--device", "cpu",
        "--format", "json", "--no-save",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let records = serde_json::from_slice::<JsonReport>(&out.stdout).unwrap().records;
    assert_eq!(records.len(), 2);
    for r in &records {
        let load = r.load.unwrap();
        assert!(load.load_ms > 0.0 && load.load_peak_memory_bytes > 0, "{load:?}");
        assert_eq!(r.trials.len(), 5);
        assert!(r.memory_drift.is_some());
    }
    // The first trial after the load is timed apart; the next configuration's model is warm.
    assert!(records[0].cold_trial.as_ref().is_some_and(|t| t.generation_tps.unwrap() > 0.0));
    assert!(records[1].cold_trial.is_none());
    assert!(stderr(&out).lines().filter(|l| l.starts_with("ok ") && l.contains("per trial")).count() == 2, "{}", stderr(&out));
}
