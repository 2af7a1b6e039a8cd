//! The interleaved gate: two builds of mlxbench benched in alternating blocks in one job (old,
//! new, new, old, old, new, ...), each block one `mlxbench run` of the same arguments. A GPU
//! host's speed drifts between minutes by more than it varies within one run, so a gate that
//! compares two separate runs by their within-run noise cries wolf; blocks that take turns see
//! the same drift, and treating each block's median as one sample puts that drift into the
//! interval.
//!
//! Per configuration of the run and per block: the median over its trials of the robust decode
//! rate, of the prompt rate and of TTFT, and the median peak memory. Rates become times per
//! token (a regression is a time that went up), and the rows follow the gate's usual rule
//! ([`super::Verdict`]): the mean over blocks on each side, a bootstrap 95% interval of its
//! change, regressed when the whole interval lies above the threshold.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use super::{CompareError, Comparison, Side};
use crate::{
    bench::{ids::config_id, RunRecord, Status},
    report::JsonReport,
};

/// Blocks per build unless told otherwise.
pub const DEFAULT_BLOCKS: usize = 6;

/// Which build a block runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    Old,
    New,
}

/// The order of `blocks_per_build` blocks of each build: old, new, new, old, repeated, so that a
/// steady drift weighs on both builds alike.
pub fn block_order(blocks_per_build: usize) -> Vec<Build> {
    (0..2 * blocks_per_build).map(|i| if matches!(i % 4, 0 | 3) { Build::Old } else { Build::New }).collect()
}

/// One block: `bin run <run_args> --format json --no-save`, its records.
pub fn run_block(bin: &Path, run_args: &[String]) -> Result<Vec<RunRecord>, CompareError> {
    let output = Command::new(bin)
        .arg("run")
        .args(run_args)
        .args(["--format", "json", "--no-save"])
        .output()
        .map_err(|source| CompareError::Io { path: bin.to_path_buf(), source })?;
    serde_json::from_slice::<JsonReport>(&output.stdout).map(|report| report.records).map_err(|e| CompareError::InvalidData {
        path: bin.to_path_buf(),
        detail: format!(
            "`run` did not print results ({e}; {}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("")
        ),
    })
}

/// Per configuration, each block's medians: ns per decoded token, ns per prompt token, TTFT in
/// ns, peak memory in bytes.
#[derive(Default)]
struct Blocks {
    decode_ns: Vec<f64>,
    prefill_ns: Vec<f64>,
    ttft_ns: Vec<f64>,
    peak_bytes: Vec<f64>,
}

fn collect(blocks: &[Vec<RunRecord>], failures: &mut Vec<String>, name: &str) -> BTreeMap<String, Blocks> {
    let mut by_config: BTreeMap<String, Blocks> = BTreeMap::new();
    for records in blocks {
        for r in records {
            let id = config_id(&r.point);
            let Some(s) = r.summary.as_ref().filter(|_| r.status == Status::Ok) else {
                failures.push(format!("{name}: {id} {}: {}", r.status.as_str(), r.error.as_deref().unwrap_or("")));
                continue;
            };
            let entry = by_config.entry(id).or_default();
            let per_token = |rate: Option<f64>| rate.filter(|r| *r > 0.0).map(|r| 1e9 / r);
            entry.decode_ns.extend(per_token(s.generation_tps_robust.as_ref().map(|x| x.median)));
            entry.prefill_ns.extend(per_token(s.prompt_tps.as_ref().map(|x| x.median)));
            entry.ttft_ns.extend(s.ttft_ms.as_ref().map(|x| x.median * 1e6));
            entry.peak_bytes.extend(s.peak_memory_bytes.as_ref().map(|x| x.median));
        }
    }
    by_config
}

/// The comparison of `new`'s blocks against `old`'s (each block: one run's records), with the
/// builds named `names` in the table.
pub fn compare_blocks(
    old: &[Vec<RunRecord>],
    new: &[Vec<RunRecord>],
    names: (&str, &str),
    threshold_pct: f64,
) -> Result<Comparison, CompareError> {
    if !(threshold_pct.is_finite() && threshold_pct >= 0.0) {
        return Err(CompareError::InvalidThreshold(threshold_pct));
    }
    let mut problems = Vec::new();
    let (old_by, new_by) = (collect(old, &mut problems, names.0), collect(new, &mut problems, names.1));
    let side = Side { baseline: names.0, against: names.1, threshold: threshold_pct / 100.0 };
    let mut rows = Vec::new();
    let commit = |blocks: &[Vec<RunRecord>]| {
        blocks.iter().flatten().next().map_or("no results".to_string(), |r| format!("commit {}", r.context.git_commit))
    };
    let mut notes = vec![format!(
        "{} blocks of {} ({}) and {} of {} ({}), taking turns; each block's median is one sample",
        old.len(),
        names.0,
        commit(old),
        new.len(),
        names.1,
        commit(new)
    )];
    for (id, base) in &old_by {
        let Some(now) = new_by.get(id) else {
            problems.push(format!("missing in {}: {id}", names.1));
            continue;
        };
        for (phase, base_ns, now_ns, tokens) in [
            ("decode", &base.decode_ns, &now.decode_ns, Some((1, 1))),
            ("prefill", &base.prefill_ns, &now.prefill_ns, Some((1, 1))),
            ("ttft", &base.ttft_ns, &now.ttft_ns, None),
        ] {
            if !base_ns.is_empty() && !now_ns.is_empty() {
                rows.push(side.time_row_of(&format!("{phase}/{id}"), base_ns, now_ns, tokens));
            }
        }
        if !base.peak_bytes.is_empty() && !now.peak_bytes.is_empty() {
            rows.push(side.memory_row_of(&format!("decode/{id}"), &base.peak_bytes, &now.peak_bytes));
        }
    }
    for id in new_by.keys().filter(|id| !old_by.contains_key(*id)) {
        notes.push(format!("new in {}, not in {}: {id}", names.1, names.0));
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id).then(a.metric.cmp(&b.metric)));
    Ok(Comparison {
        criterion_dir: PathBuf::new(),
        baseline: names.0.to_owned(),
        against: names.1.to_owned(),
        threshold_pct,
        // A configuration that failed in some block makes the gate fail: it cannot vouch for it.
        strict: true,
        rows,
        problems,
        notes,
    })
}
