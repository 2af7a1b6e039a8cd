//! Errors as a person meets them, through the real binary: bad values refused by the parser
//! before anything loads (with the allowed values), one line per error with each cause once and
//! no backtrace even with `RUST_BACKTRACE=1`, directories that are not models, `synth --set`
//! naming its key, and `compare --interleave` stopping at a failed configuration.
use std::{
    path::Path,
    process::{Command, Output},
};

use mlxbench::synth::Arch;


mod common;
use common::{stderr, tiny_model};
/// The binary with `RUST_BACKTRACE=1`: a user error must still print no backtrace.
fn mlxbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlxbench")).args(args).env("RUST_BACKTRACE", "1").output().expect("running mlxbench")
}



/// `out` failed with `code`, its stderr holds every one of `mentions`, and no backtrace or
/// repeated cause.
#[track_caller]
fn assert_refused(out: &Output, code: i32, mentions: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    for m in mentions {
        assert!(err.contains(m), "{m:?} not in: {err}");
    }
    for trace in ["Stack backtrace", "backtrace", "Caused by", "panicked"] {
        assert!(!err.contains(trace), "{trace:?} in: {err}");
    }
}

#[test]
fn bad_values_are_refused_by_the_parser_with_what_is_allowed() {
    let allowed = "[possible values: none, 2, 3, 4, 5, 6, 8]";
    // The model does not exist: a refusal that mentions it would have tried to load it.
    let run = |extra: &[&str]| mlxbench(&[&["run", "--model", "no-such-model", "--no-save"][..], extra].concat());
    assert_refused(&run(&["--kv-bits", "7"]), 2, &["invalid value '7' for '--kv-bits <KV_BITS>'", allowed]);
    assert_refused(&run(&["--kv-bits", "4,8,"]), 2, &["--kv-bits", allowed]);
    assert_refused(&run(&["--kv-bits", "4,,8"]), 2, &["--kv-bits <KV_BITS>", allowed]);
    assert_refused(&run(&["-p", "16,"]), 2, &["'--n-prompt <N_PROMPT>'"]);
    assert_refused(&run(&["--model", "a,"]), 2, &["an empty model name"]);
    let synth = mlxbench(&["synth", "--preset", "tiny", "--bits", "7", "--out", "never-written"]);
    assert_refused(&synth, 2, &["invalid value '7' for '--bits <BITS>'", allowed]);
    assert!(!Path::new("never-written").exists());
    for out in [&run(&["--kv-bits", "7"]), &synth] {
        assert!(!stderr(out).contains("no-such-model"), "loaded before refusing: {}", stderr(out));
    }

    // An output named like a format, or with an extension no format has: never a CSV named `json`.
    let tmp = tempfile::tempdir().unwrap();
    let with_output = |output: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_mlxbench"))
            .args(["run", "--model", "no-such-model", "-o", output])
            .current_dir(tmp.path())
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        assert!(!tmp.path().join(output).exists(), "{output} was written");
        out
    };
    assert_refused(&with_output("json"), 2, &["did you mean --format json?", ".csv, .json, .jsonl or .md"]);
    assert_refused(&with_output("csv"), 2, &["did you mean --format csv?"]);
    assert_refused(&with_output("out.txt"), 2, &["unknown extension .txt", ".csv, .json, .jsonl or .md"]);
    assert_refused(&with_output("results"), 2, &["no extension"]);
    assert_refused(&with_output("page.html"), 2, &["--report"]);

    // `compare` with nothing to compare names both ways.
    assert_refused(&mlxbench(&["compare"]), 2, &["--baseline <BASELINE>", "--interleave <OLD_BIN> <NEW_BIN>"]);
}

#[test]
fn help_lists_allowed_values_headings_and_the_shared_flag_names() {
    let help = |args: &[&str]| String::from_utf8_lossy(&mlxbench(args).stdout).into_owned();
    let run = help(&["run", "--help"]);
    for heading in ["Sweep (comma lists: every combination runs):", "Trials:", "Prompts and the KV cache:", "Output:", "Machine:"] {
        assert!(run.contains(heading), "{heading:?} not in: {run}");
    }
    assert!(run.contains("[possible values: none, 2, 3, 4, 5, 6, 8]"), "{run}");
    // One name per length across commands; the old spellings stay as aliases.
    assert!(run.contains("-p, --n-prompt <N_PROMPT>") && run.contains("-n, --n-generate <N_GENERATE>"), "{run}");
    let generate = help(&["generate", "--help"]);
    for flag in ["-p, --n-prompt <N_PROMPT>", "[alias: --prompt-tokens]", "-n, --n-generate <N_GENERATE>", "[alias: --max-tokens]"] {
        assert!(generate.contains(flag), "{flag:?} not in: {generate}");
    }
    let serve = help(&["serve", "--help"]);
    assert!(serve.contains("--n-prompt") && serve.contains("--input-len") && serve.contains("--output-len"), "{serve}");
    // --format json wherever --json was; --json stays.
    for command in ["info", "hwinfo", "generate"] {
        let text = help(&[command, "--help"]);
        assert!(text.contains("-f, --format <FORMAT>") && text.contains("--json"), "{command}: {text}");
    }
    let json = |args: &[&str]| serde_json::from_slice::<serde_json::Value>(&mlxbench(args).stdout).unwrap();
    assert_eq!(json(&["hwinfo", "--format", "json"])["cpu_model"], json(&["hwinfo", "--json"])["cpu_model"]);
    assert!(String::from_utf8_lossy(&mlxbench(&["hwinfo", "-f", "text"]).stdout).contains(" GiB"));
    // `-o/--output` for what synth writes too.
    assert!(help(&["synth", "--help"]).contains("-o, --out <OUT>"));
}

#[test]
fn errors_are_one_line_each_cause_once_without_a_backtrace() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), Arch::Llama, None);
    let path = |p: &Path| p.to_str().unwrap().to_string();

    // A directory that exists and is not a model says what it lacks.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = mlxbench(&["generate", "--model", &path(&empty), "-p", "4", "-n", "2", "--device", "cpu"]);
    let not_a_model = format!("{} is not an MLX model directory: it has no config.json, no model.safetensors", empty.display());
    assert_refused(&out, 1, &[&not_a_model, "no tokenizer.json"]);
    assert_eq!(stderr(&out).lines().filter(|l| !l.starts_with("warning:")).count(), 1, "{}", stderr(&out));
    // Only the weights missing: only they are named.
    let config_only = tmp.path().join("config-only");
    std::fs::create_dir(&config_only).unwrap();
    std::fs::copy(model.join("config.json"), config_only.join("config.json")).unwrap();
    std::fs::copy(model.join("tokenizer.json"), config_only.join("tokenizer.json")).unwrap();
    let out = mlxbench(&["generate", "--model", &path(&config_only), "--prompt", "hi", "--device", "cpu"]);
    assert_refused(&out, 1, &["is not an MLX model directory: it has no model.safetensors (or its index)"]);
    assert!(!stderr(&out).contains("config.json") && !stderr(&out).contains("tokenizer.json"), "{}", stderr(&out));
    // In a sweep, the configuration is recorded as failed with the same words and the sweep goes on.
    let out = mlxbench(&[
        "run", "--model", &format!("{},{}", path(&empty), path(&model)), "-p", "8", "-n", "2", "--repeats", "1", "--warmup", "0",
        "--device", "cpu", "--no-save",
    ]);
    assert_refused(&out, 1, &[&not_a_model, "1 of 2 configurations did not complete"]);

    // `synth --set` names the key whose value is wrong, and nothing is written.
    let out_dir = tmp.path().join("never");
    let out = mlxbench(&["synth", "--preset", "tiny", "--set", "hidden_size=wide", "--out", &path(&out_dir)]);
    assert_refused(&out, 1, &["error: invalid option: --set \"hidden_size=wide\": hidden_size: invalid type: string \"wide\""]);
    assert!(!out_dir.exists());
    // A key the config does not have is added with a warning naming it.
    let out = mlxbench(&["synth", "--preset", "tiny", "--arch", "llama", "--set", "num_hiden_layers=1", "--out", &path(&out_dir)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning: --set num_hiden_layers: not a key of this config"), "{}", stderr(&out));

    // A check after parsing: one line, exit 1.
    let out = mlxbench(&["generate", "--model", &path(&model), "-p", "4", "--logits", "--device", "cpu"]);
    assert_refused(&out, 1, &["error: --logits adds the logits to the JSON output: add --format json"]);
}

#[test]
fn an_interleaved_comparison_stops_at_a_failed_configuration_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path(), Arch::Llama, None);
    let bin = env!("CARGO_BIN_EXE_mlxbench");
    // kv 4 with a rotating cache is refused by every build: the first block fails it.
    let run_args = ["--model", model.to_str().unwrap(), "-p", "16", "-n", "4", "--repeats", "2", "--warmup", "0", "--device", "cpu"];
    let compare = |extra: &[&str], run_extra: &[&str]| {
        Command::new(bin)
            .args(["compare", "--interleave", bin, bin, "--blocks", "3"])
            .args(extra)
            .arg("--")
            .args(run_args)
            .args(run_extra)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap()
    };
    let out = compare(&[], &["--kv-bits", "none,4", "--max-kv-size", "64"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failed = format!("FAILED: tiny/mlxbench/kv4/p16/g4/b1/d0 failed in old ({bin}), block 1 of 6: invalid option: a quantized KV cache");
    assert!(stdout.starts_with(&failed), "{stdout}");
    assert!(!stdout.contains("missing"), "{stdout}");
    // One block ran (stderr is a pipe: a line per configuration), then it stopped.
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("block ")).map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(lines, ["block 1/6 (old) tiny (mlxbench, kv none, p16 g4 b1 d0)", "block 1/6 (old) tiny (mlxbench, kv 4, p16 g4 b1 d0)"]);
    assert!(err.contains("kv 4, p16 g4 b1 d0): failed: invalid option"), "{err}");
    let out = compare(&["--format", "json"], &["--kv-bits", "4", "--max-kv-size", "64"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["failed"]["configuration"], "tiny/mlxbench/kv4/p16/g4/b1/d0");
    assert_eq!((json["failed"]["build"].as_str(), json["failed"]["block"].as_u64()), (Some("old"), Some(1)));
    assert_eq!(json["failed"]["status"], "failed");

    // A/A with a threshold no tiny CPU run can meet (a row may even come out "regressed" at
    // 0.001%): it says its intervals are too wide to tell.
    let out = compare(&["--threshold", "0.001"], &[]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("time intervals are wider than --threshold (±0.001%)") && stdout.contains("more --blocks or a quieter machine"), "{stdout}");
    let err = stderr(&out);
    let blocks: Vec<&str> = err.lines().filter(|l| l.starts_with("block ")).map(|l| &l[..14]).collect();
    assert_eq!(blocks, ["block 1/6 (old", "block 2/6 (new", "block 3/6 (new", "block 4/6 (old", "block 5/6 (old", "block 6/6 (new"]);
}
