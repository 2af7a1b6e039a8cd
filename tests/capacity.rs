//! `mlxbench capacity` end to end on a tiny model under a small `--memory-limit`: the answer is
//! the longest length that runs within the limit (checked by probing it and the next step up
//! apart from the search), and a limit nothing fits in is reported, not a crash.
mod common;

use std::process::{Command, Output};

use mlxbench::{
    bench::capacity::{CapacityReport, ProbeReport, ProbeStatus},
    synth::Arch,
};

fn mlxbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlxbench")).args(args).env_remove("RUST_BACKTRACE").output().expect("running mlxbench")
}

const STEP: usize = 256;

/// The peak of one probe of `n` tokens with `kv` under `limit`, as the search's child runs it.
fn probe_peak(model: &str, kv: &str, n: usize, limit: u64) -> u64 {
    let limit = limit.to_string();
    let n = n.to_string();
    let args = [
        "capacity", "--model", model, "--kv-bits", kv, "--n-generate", "2", "--prefill-step-size", "512", "--memory-limit", &limit,
        "--device", "cpu", "--probe", &n,
    ];
    let out = mlxbench(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: ProbeReport = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("probe {n}: {e}: {stdout} {}", common::stderr(&out)));
    report.measured.unwrap_or_else(|| panic!("probe {n} failed: {:?}", report.error)).peak_memory_bytes
}

fn search(model: &str, kv: &str, limit: u64) -> (Output, CapacityReport) {
    let limit = limit.to_string();
    let args = [
        "capacity", "--model", model, "--kv-bits", kv, "--n-generate", "2", "--prefill-step-size", "512", "--memory-limit", &limit,
        "--device", "cpu", "--start", "256", "--step", "256", "--max-n-prompt", "4096", "--max-time", "240", "--json", "--no-save",
    ];
    let out = mlxbench(&args);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} {}", String::from_utf8_lossy(&out.stdout), common::stderr(&out)));
    (out, report)
}

#[test]
fn the_answer_is_the_longest_length_that_runs_within_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::tiny_model(tmp.path(), Arch::Llama, None);
    let model = model.to_str().unwrap();
    for kv in ["none", "4"] {
        // A limit between the peaks of 512 and 2048 tokens: the answer lies between them.
        let limit = (probe_peak(model, kv, 512, u64::MAX / 4) + probe_peak(model, kv, 2048, u64::MAX / 4)) / 2;
        let (out, report) = search(model, kv, limit);
        assert!(out.status.success(), "{}", common::stderr(&out));
        let [record] = &report.capacity[..] else { panic!("one record: {:?}", report.capacity) };
        assert!(record.complete, "{record:?}");
        assert_eq!(record.budget_bytes, limit);
        let longest = record.longest_n_prompt.expect("something fits");
        assert!((512..2048).contains(&longest) && longest % STEP == 0, "kv {kv}: {longest}");
        let failure = record.first_failure.as_ref().expect("a first failure");
        assert_eq!(failure.n_prompt, longest + STEP);
        assert!(matches!(failure.status, ProbeStatus::OverBudget | ProbeStatus::PredictedOverBudget), "{failure:?}");
        // Apart from the search: the answer runs within the limit, one step more does not.
        let at = probe_peak(model, kv, longest, limit);
        assert!(at <= limit, "kv {kv}: {longest} tokens peak {at} > {limit}");
        assert_eq!(Some(at), record.at_longest.map(|m| m.peak_memory_bytes));
        let above = probe_peak(model, kv, longest + STEP, limit);
        assert!(above > limit, "kv {kv}: {} tokens peak {above} <= {limit}", longest + STEP);
        // The breakdown at the answer adds up to its peak (weights + KV + transient).
        let b = record.at_longest.unwrap().memory_breakdown;
        assert!(b.kv_cache_bytes > 0 && b.weights_bytes > 0);
        assert_eq!(b.weights_bytes + b.kv_cache_bytes + b.transient_bytes, at);
    }
}

#[test]
fn a_limit_nothing_fits_in_is_reported_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::tiny_model(tmp.path(), Arch::Llama, None);
    let (out, report) = search(model.to_str().unwrap(), "none", 1000);
    assert_eq!(out.status.code(), Some(0), "an exact answer (nothing fits) is a success: {}", common::stderr(&out));
    let record = &report.capacity[0];
    assert_eq!(record.longest_n_prompt, None);
    let failure = record.first_failure.as_ref().expect("the failure is reported");
    assert_eq!((failure.n_prompt, failure.status), (STEP, ProbeStatus::OverBudget));
    assert!(failure.reason.as_deref().unwrap_or("").contains("> budget 1000 B"), "{failure:?}");
    // A model that does not load: every setting reports its error, the command ends normally.
    let (out, report) = search(tmp.path().join("missing").to_str().unwrap(), "none", 1 << 30);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let failure = report.capacity[0].first_failure.as_ref().expect("reported");
    assert_eq!(failure.status, ProbeStatus::Failed);
    assert!(failure.reason.as_deref().unwrap_or("").contains("missing"), "{failure:?}");
}
