//! Tensor parallelism over MLX's ring backend between real processes on 127.0.0.1 (`mlxbench
//! launch`): 2 and 4 ranks give the single process's last-position logits within float
//! tolerance and its 32 greedy tokens, float and 4-bit, plain and quantized KV cache, for every
//! architecture; a killed rank stops the group within a deadline and leaves no process behind;
//! records carry the group; bad setups are errors that name the culprit. Ranks are watched with
//! `common::process` (no `/proc`: the same on macOS), which counts a zombie as ended.
mod common;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use common::{process::{alive, command_lines_containing}, wait_bounded};
use mlxbench::synth::{self, Arch, FloatDtype, SynthOptions};
use serde_json::{json, Value};

fn mlxbench() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mlxbench"));
    command.env_remove("RUST_BACKTRACE").env_remove("MLX_HOSTFILE").env_remove("MLX_RANK").stdin(Stdio::null());
    command
}


fn run(mut command: Command, what: &str) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_bounded(child, Duration::from_secs(300), what)
}

fn write(config: &Value, bits: Option<i32>, dir: &Path) -> PathBuf {
    synth::write_model(config, &SynthOptions { bits, dtype: FloatDtype::Float32, ..SynthOptions::default() }, dir).unwrap();
    dir.to_path_buf()
}

/// Tiny Llama with 8 query and 4 KV heads, so that it splits over 4 ranks (with 4-bit weights:
/// each rank's output projection still has 128 inputs, two quantization groups).
fn llama_for_four(dir: &Path, bits: Option<i32>) -> PathBuf {
    let mut config = synth::preset_config("tiny", Some(Arch::Llama)).unwrap();
    config["num_attention_heads"] = json!(8);
    config["num_key_value_heads"] = json!(4);
    write(&config, bits, dir)
}

/// `generate --json --logits` of 32 greedy tokens, in one process or over `ranks` ranks.
fn generate(model: &Path, ranks: Option<usize>, kv_bits: &str) -> (Vec<u64>, Vec<f64>) {
    let mut command = mlxbench();
    if let Some(n) = ranks {
        command.args(["launch", "-n", &n.to_string(), "--"]);
    }
    command.arg("generate").arg("--model").arg(model);
    command.args(["--prompt-tokens", "24", "--max-tokens", "32", "--kv-bits", kv_bits, "--json", "--logits", "--device", "cpu"]);
    let out = run(command, "generate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{} ranks: {stderr}", ranks.unwrap_or(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "rank 0 alone prints: {text}");
    let value: Value = serde_json::from_str(lines[0]).unwrap();
    let ids = value["generated_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let logits = value["last_logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    (ids, logits)
}

/// Largest |a - b| over the largest |a|.
fn relative_gap(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// float32 sums in another order: the logits agree to about 1e-6 of their size.
const TOLERANCE: f64 = 1e-4;

#[test]
fn two_and_four_ranks_compute_what_one_process_computes() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = vec!["| weights | KV cache | ranks | max logit gap (relative) | 32 greedy tokens |".to_string(), "|---|---|---:|---:|---|".into()];
    for (name, bits) in [("float32", None), ("4-bit", Some(4))] {
        let model = llama_for_four(&dir.path().join(name), bits);
        for kv in ["none", "8"] {
            let (ids, logits) = generate(&model, None, kv);
            assert_eq!(ids.len(), 32);
            for ranks in [2, 4] {
                let (tp_ids, tp_logits) = generate(&model, Some(ranks), kv);
                let gap = relative_gap(&logits, &tp_logits);
                table.push(format!("| {name} | {kv} | {ranks} | {gap:.1e} | {} |", if tp_ids == ids { "identical" } else { "DIFFER" }));
                assert!(gap <= TOLERANCE, "{name}, kv {kv}, {ranks} ranks: logits differ by {gap:e} of their scale");
                assert_eq!(tp_ids, ids, "{name}, kv {kv}, {ranks} ranks: greedy tokens differ");
            }
        }
    }
    eprintln!("{}", table.join("\n"));
}

#[test]
fn every_architecture_splits_over_two_ranks() {
    let dir = tempfile::tempdir().unwrap();
    for arch in [Arch::Mistral, Arch::Qwen2, Arch::Qwen3, Arch::Gemma2, Arch::Gemma3Text, Arch::Phi3, Arch::Mixtral, Arch::Qwen3Moe] {
        let config = synth::preset_config("tiny", Some(arch)).unwrap();
        let model = write(&config, Some(4), &dir.path().join(format!("{arch:?}")));
        let (ids, logits) = generate(&model, None, "none");
        let (tp_ids, tp_logits) = generate(&model, Some(2), "none");
        let gap = relative_gap(&logits, &tp_logits);
        eprintln!("{arch:?}: 2 ranks, logit gap {gap:.1e}, tokens {}", if tp_ids == ids { "identical" } else { "DIFFER" });
        assert!(gap <= TOLERANCE, "{arch:?}: logits differ by {gap:e} of their scale");
        assert_eq!(tp_ids, ids, "{arch:?}: greedy tokens differ");
    }
}

/// The process helpers themselves, on a child of ours: seen while it runs, with its command
/// line; a zombie once killed and not yet reaped (as `ps` says), and not alive from then on.
#[test]
fn a_child_is_alive_until_it_is_a_zombie_and_its_command_line_is_seen() {
    let mut child = Command::new("sleep").arg("61.25").spawn().unwrap();
    let pid = child.id();
    assert!(alive(pid), "a sleeping child runs");
    let found = command_lines_containing(&["sleep", "61.25"]);
    assert_eq!(found, [format!("{pid}: sleep 61.25")]);
    // SAFETY: kill(2) to a child we started and have not reaped.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let state = || {
        let out = Command::new("ps").args(["-o", "stat=", "-p", &pid.to_string()]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !state().starts_with('Z') {
        assert!(Instant::now() < deadline, "no zombie 10 s after SIGKILL: ps says {:?}", state());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "a zombie has ended");
    assert_eq!(command_lines_containing(&["sleep", "61.25"]), Vec::<String>::new());
    child.wait().unwrap();
    assert!(!alive(pid), "a reaped process has ended");
}

/// A launch of a long `run` on 2 ranks, and its ranks' process ids once it has named them.
fn long_launch(model: &Path) -> (Child, BufReader<std::process::ChildStderr>, Vec<u32>) {
    let mut child = mlxbench()
        .args(["launch", "-n", "2", "--grace", "3", "--", "run", "--model"])
        .arg(model)
        .args(["-p", "64", "-n", "64", "--repeats", "1000", "--device", "cpu", "--no-save"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let pids: Vec<u32> = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "launch ended before naming its ranks");
        if let Some(list) = line.trim().split("; pids ").nth(1) {
            break list.split(' ').map(|p| p.parse().unwrap()).collect();
        }
    };
    assert_eq!(pids.len(), 2);
    // Let the ranks get into their trials (collectives under way).
    std::thread::sleep(Duration::from_secs(3));
    assert!(pids.iter().all(|&p| alive(p)), "both ranks run");
    (child, stderr, pids)
}

/// Sends `signal` to `pid`, then waits (at most 60 s) for `child` to end: its status and the
/// rest of its stderr.
fn signal_and_wait(child: &mut Child, stderr: BufReader<std::process::ChildStderr>, pid: u32, signal: i32) -> (std::process::ExitStatus, String) {
    unsafe {
        libc::kill(pid as i32, signal);
    }
    let sent = Instant::now();
    let reader = std::thread::spawn(move || {
        let mut stderr = stderr;
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        rest
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(sent.elapsed() < Duration::from_secs(60), "launch still runs 60 s after signal {signal}");
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, reader.join().unwrap())
}

#[test]
fn a_killed_rank_stops_the_group_and_leaves_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(&synth::preset_config("tiny", Some(Arch::Llama)).unwrap(), Some(4), &dir.path().join("tiny"));
    let (mut child, stderr, pids) = long_launch(&model);
    let (status, rest) = signal_and_wait(&mut child, stderr, pids[1], libc::SIGKILL);
    assert!(!status.success());
    assert!(rest.contains("rank 1 of 2 failed") && rest.contains("SIGKILL"), "{rest}");
    for pid in pids {
        assert!(!alive(pid), "rank process {pid} is left running");
    }
}

#[test]
fn ctrl_c_stops_every_rank() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(&synth::preset_config("tiny", Some(Arch::Llama)).unwrap(), Some(4), &dir.path().join("tiny"));
    let (mut child, stderr, pids) = long_launch(&model);
    let launcher = child.id();
    let (status, rest) = signal_and_wait(&mut child, stderr, launcher, libc::SIGINT);
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("stopped (Ctrl-C)"), "{rest}");
    for pid in pids {
        assert!(!alive(pid), "rank process {pid} is left running");
    }
}

#[test]
fn records_carry_the_group_and_only_rank_0_reports() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(&synth::preset_config("tiny", Some(Arch::Llama)).unwrap(), Some(4), &dir.path().join("tiny"));
    let results = dir.path().join("results.json");
    let mut command = mlxbench();
    command.args(["launch", "-n", "2", "--", "run", "--model"]).arg(&model);
    command.args(["-p", "32", "-n", "8", "--repeats", "2", "--device", "cpu", "-o"]).arg(&results);
    let out = run(command, "launch run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.matches("| model | decode t/s |").count(), 1, "one table, from rank 0: {stdout}");
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    let records = value["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "rank 0 alone writes");
    let group = &records[0]["distributed"];
    assert_eq!((group["backend"].as_str(), group["size"].as_u64()), (Some("ring"), Some(2)));
    let peaks: Vec<u64> = group["peak_memory_bytes"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(peaks.len(), 2);
    assert!(peaks.iter().all(|&p| p > 0), "{peaks:?}");
    // The whole model's size is reported, not one rank's share.
    assert_eq!(records[0]["parameters"], json!(mlxbench::models::load(&model).unwrap().footprint.parameters));
}

#[test]
fn speedup_runs_alone_then_as_a_group_and_prints_the_ratios() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(&synth::preset_config("tiny", Some(Arch::Llama)).unwrap(), Some(4), &dir.path().join("tiny"));
    let results = dir.path().join("results.jsonl");
    let mut command = mlxbench();
    command.args(["launch", "-n", "2", "--speedup", "--", "run", "--model"]).arg(&model);
    command.args(["-p", "32", "-n", "8", "--repeats", "2", "--device", "cpu", "-o"]).arg(&results);
    let out = run(command, "launch --speedup");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&results).unwrap();
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 2, "one record alone, then one from the group");
    assert!(records[0].get("distributed").is_none());
    assert_eq!(records[1]["distributed"]["size"], json!(2));
    let table = stdout.split("2 ranks ÷ one process").nth(1).unwrap_or_else(|| panic!("no speed-up table: {stdout}"));
    let row = table.lines().find(|l| l.starts_with("| tiny |")).unwrap_or_else(|| panic!("{table}"));
    // Every ratio is a number with its interval: `0.5× [0.4, 0.6]`.
    assert_eq!(row.matches('×').count(), 4, "{row}");
}

#[test]
fn bad_setups_are_errors_that_name_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(&synth::preset_config("tiny", Some(Arch::Llama)).unwrap(), None, &dir.path().join("tiny"));
    let expect_error = |args: &[&str], needles: &[&str]| {
        let mut command = mlxbench();
        command.args(args);
        let out = run(command, &args.join(" "));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{args:?}: no {needle:?} in {stderr}");
        }
    };
    let m = model.to_str().unwrap();
    let generate = ["generate", "--model", m, "--prompt-tokens", "8", "--max-tokens", "2", "--device", "cpu"];
    // 4 query heads do not split over 3 ranks; every rank says so and the launch fails.
    expect_error(&[&["launch", "-n", "3", "--"][..], &generate[..]].concat(), &["num_attention_heads 4 does not split over 3 ranks"]);
    expect_error(&["launch", "-n", "2", "--", "info"], &["launch starts `mlxbench run` or `mlxbench generate`"]);
    // The ring backend without a launcher's environment.
    expect_error(&[&generate[..], &["--distributed", "ring"][..]].concat(), &["ring", "MLX_HOSTFILE"]);
    expect_error(&[&["launch", "-n", "2", "--speedup", "--"][..], &generate[..]].concat(), &["--speedup compares `run` results"]);
    expect_error(&["launch", "-n", "2", "--speedup", "--", "run", "--model", m, "-o", "r.csv"], &["JSON or JSON lines", "r.csv"]);
    let hostfile = dir.path().join("hosts.json");
    std::fs::write(&hostfile, r#"[["127.0.0.1:1"]]"#).unwrap();
    expect_error(
        &[&["launch", "-n", "2", "--hostfile", hostfile.to_str().unwrap(), "--"][..], &generate[..]].concat(),
        &["hosts.json", "lists 1 ranks", "-n asks for 2"],
    );
}
