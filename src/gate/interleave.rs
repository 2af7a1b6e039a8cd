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
//!
//! The two builds may be two MLX releases (each binary built against its own): configurations
//! are matched by their settings alone, and when the builds' records name different MLX versions
//! or builds, the comparison says so above its table.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
};

use serde::Serialize;

use super::{different_environments, environment, CompareError, Comparison, Metric, Side};
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
            said(&String::from_utf8_lossy(&output.stderr))
        ),
    })
}

/// A configuration that failed in a block, which ends the interleaved run: a build that cannot
/// run a configuration has no speed to compare.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockFailure {
    /// The build's name (`old`, `new`) and binary.
    pub build: String,
    pub binary: PathBuf,
    /// The block (from 1) and the blocks planned.
    pub block: usize,
    pub blocks: usize,
    /// The configuration's id, its status (failed, unsupported) and error.
    pub configuration: String,
    pub status: String,
    pub error: String,
}

impl BlockFailure {
    /// The first configuration of a block's `records` that did not run, if any.
    pub fn of(records: &[RunRecord], build: (&str, &Path), block: usize, blocks: usize) -> Option<Self> {
        let r = records.iter().find(|r| r.status != Status::Ok)?;
        Some(Self {
            build: build.0.to_owned(),
            binary: build.1.to_path_buf(),
            block,
            blocks,
            configuration: config_id(&r.point),
            status: r.status.as_str().to_owned(),
            error: r.error.clone().unwrap_or_else(|| "no error given".into()),
        })
    }
}

impl std::fmt::Display for BlockFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} in {} ({}), block {} of {}: {}",
            self.configuration,
            self.status,
            self.build,
            self.binary.display(),
            self.block,
            self.blocks,
            self.error
        )
    }
}

/// What a run that printed no results said: its error line (clap's or mlxbench's), else its last.
fn said(stderr: &str) -> &str {
    stderr.lines().find(|l| l.starts_with("error:")).or_else(|| stderr.lines().last()).unwrap_or("").trim()
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

/// Each configuration's blocks; a configuration that failed in some block is named once in
/// `failures` and in `failed`.
fn collect(
    blocks: &[Vec<RunRecord>],
    failures: &mut Vec<String>,
    failed: &mut BTreeSet<String>,
    name: &str,
) -> BTreeMap<String, Blocks> {
    let mut by_config: BTreeMap<String, Blocks> = BTreeMap::new();
    for records in blocks {
        for r in records {
            let id = config_id(&r.point);
            let Some(s) = r.summary.as_ref().filter(|_| r.status == Status::Ok) else {
                if failed.insert(format!("{name}/{id}")) {
                    failures.push(format!("{id} {} in {name}: {}", r.status.as_str(), r.error.as_deref().unwrap_or("")));
                }
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

/// What the records of `blocks` ran on: `MLX 0.32.4 (manylinux_2_35_x86_64) on cuda` (one, from
/// one binary).
fn environments(blocks: &[Vec<RunRecord>]) -> BTreeSet<String> {
    blocks.iter().flatten().map(|r| environment(&r.context.mlx_version, &r.context.mlx_build, &r.context.backend)).collect()
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
    let (mut problems, mut failed) = (Vec::new(), BTreeSet::new());
    let old_by = collect(old, &mut problems, &mut failed, names.0);
    let new_by = collect(new, &mut problems, &mut failed, names.1);
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
            // A configuration that failed is a problem already, not a missing one.
            if !failed.contains(&format!("{}/{id}", names.1)) {
                problems.push(format!("missing in {}: {id}", names.1));
            }
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
    // With intervals wider than the threshold, a change of the threshold's size is lost in the
    // noise: an A/A run says how much a real one can tell.
    let times: Vec<_> = rows.iter().filter(|r| r.metric == Metric::Time).collect();
    let wide = times.iter().filter(|r| (r.ci_high_pct - r.ci_low_pct) / 2.0 > threshold_pct).count();
    if wide > 0 {
        notes.push(format!(
            "{wide} of {} time intervals are wider than --threshold (±{threshold_pct}%): a change of that size \
             cannot be told from noise; use more --blocks or a quieter machine",
            times.len()
        ));
    }
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
        different_mlx: different_environments(names, &(environments(old), environments(new))),
    })
}
