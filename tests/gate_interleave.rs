//! The interleaved gate (`mlxbench compare --interleave OLD NEW -- <run args>`): block order,
//! the verdicts on blocks' medians, and an injected per-token slowdown caught end to end.
use std::{path::Path, process::Command, time::Duration};

mod common;

use common::run_context;

use mlxbench::{
    bench::{Engine, RunPoint, RunRecord},
    gate::{
        interleave::{block_order, compare_blocks, Build},
        Metric, Verdict,
    },
    measure::{TrialMemory, TrialMetrics, TrialTimings, INJECTED_DELAY_VAR},
    synth::{self, Arch, FloatDtype, SynthOptions},
};

/// A block: one configuration whose three trials decode a token every `gap_us` microseconds.
fn block(gap_us: u64, peak_bytes: u64) -> Vec<RunRecord> {
    let trial = || {
        let timings = TrialTimings {
            batch: 1,
            n_context: 0,
            n_prompt: 65,
            n_prefill: 64,
            prefill_done: Duration::from_millis(10),
            token_times: (0..33).map(|i| Duration::from_millis(12) + Duration::from_micros(gap_us * i)).collect(),
            built_times: Vec::new(),
            queued_times: Vec::new(),
        };
        TrialMetrics::from_timings(&timings, TrialMemory { peak_memory_bytes: peak_bytes, ..TrialMemory::default() })
    };
    let point = RunPoint { model: "/m/l1b".into(), kv_bits: None, batch: 1, depth: 0, n_prompt: 65, n_generate: 33, engine: Engine::Mlxbench, draft: None };
    vec![RunRecord::new(point, run_context(3), Ok(vec![trial(), trial(), trial()]), None, None)]
}

#[test]
fn blocks_take_turns_old_new_new_old() {
    use Build::{New, Old};
    assert_eq!(block_order(3), vec![Old, New, New, Old, Old, New]);
    assert_eq!(block_order(2), vec![Old, New, New, Old]);
}

#[test]
fn verdicts_are_judged_on_the_blocks_medians() {
    // Old: 2.00–2.05 ms per token across blocks (the machine drifts a little).
    let old: Vec<_> = [2000, 2050, 2020, 2030].iter().map(|&g| block(g, 1_000_000)).collect();
    // 10% slower in every block: regressed.
    let slower: Vec<_> = [2210, 2260, 2230, 2240].iter().map(|&g| block(g, 1_000_000)).collect();
    let c = compare_blocks(&old, &slower, ("old", "new"), 5.0).unwrap();
    let decode = c.rows.iter().find(|r| r.id.starts_with("decode/") && r.metric == Metric::Time).unwrap();
    assert_eq!(decode.id, "decode/l1b/mlxbench/kvnone/p65/g33/b1/d0");
    assert_eq!(decode.verdict, Verdict::Regressed, "{decode:?}");
    assert!((decode.change_pct - 10.3).abs() < 0.2, "{}", decode.change_pct);
    assert_eq!((decode.baseline_samples, decode.now_samples), (4, 4), "one sample per block");
    assert!(c.failed());
    // Within the blocks' spread: unchanged.
    let same: Vec<_> = [2040, 2010, 2030, 2000].iter().map(|&g| block(g, 1_000_000)).collect();
    let c = compare_blocks(&old, &same, ("old", "new"), 5.0).unwrap();
    assert!(c.rows.iter().all(|r| r.verdict == Verdict::Unchanged), "{:#?}", c.rows);
    assert!(!c.failed());
    // Peak memory up 20% in every block: regressed.
    let fatter: Vec<_> = [2000, 2050, 2020, 2030].iter().map(|&g| block(g, 1_200_000)).collect();
    let c = compare_blocks(&old, &fatter, ("old", "new"), 5.0).unwrap();
    let memory = c.rows.iter().find(|r| r.metric == Metric::PeakMemory).unwrap();
    assert_eq!(memory.verdict, Verdict::Regressed);
    // A configuration that failed in a block fails the gate: it cannot vouch for it.
    let mut broken = same.clone();
    broken[1][0] = RunRecord::new(broken[1][0].point.clone(), run_context(3), Err("out of memory".into()), None, None);
    let c = compare_blocks(&old, &broken, ("old", "new"), 5.0).unwrap();
    assert!(c.failed() && c.problems.iter().any(|p| p.contains("out of memory")), "{:?}", c.problems);
    assert!(compare_blocks(&old, &same, ("old", "new"), -1.0).is_err());
}

#[test]
fn an_injected_slowdown_is_caught_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    let config = synth::preset_config("tiny", Some(Arch::Llama)).unwrap();
    synth::write_model(&config, &SynthOptions { dtype: FloatDtype::Float32, ..SynthOptions::default() }, &model).unwrap();
    let bin = env!("CARGO_BIN_EXE_mlxbench");
    // The "new build": the same binary with a test-only 20 ms sleep after every token.
    let slow = tmp.path().join("slow-mlxbench");
    std::fs::write(&slow, format!("#!/bin/sh\n{INJECTED_DELAY_VAR}=20000 exec {bin} \"$@\"\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(bin)
        .args(["compare", "--interleave", bin, slow.to_str().unwrap(), "--blocks", "2", "--format", "json", "--"])
        .args(["--model", model.to_str().unwrap(), "-p", "16", "-n", "6", "--repeats", "2", "--warmup", "0", "--device", "cpu"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let decode = report["rows"].as_array().unwrap().iter().find(|r| r["id"].as_str().unwrap().starts_with("decode/") && r["metric"] == "time").unwrap();
    assert_eq!(decode["verdict"], "regressed", "{decode}");
    assert!(Path::new(bin).is_file());
    // Without --, the gate says what it needs.
    let out = Command::new(bin).args(["compare", "--interleave", bin, bin]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("after `--`"), "{}", String::from_utf8_lossy(&out.stderr));
}
