//! The CI regression gate: compares two Criterion baselines of our bench targets (time per
//! iteration, with tokens/s, and our peak-memory sidecar) and says whether anything regressed.
//!
//! # How the gate decides
//!
//! Rows are matched by Criterion's benchmark id (`full_id` in each baseline folder's
//! `benchmark.json`), never by path. The threshold `T` is a percentage (default 5).
//!
//! **Time.** From each baseline's `sample.json`, the time per iteration of every sample
//! (`times[i] / iters[i]`, nanoseconds). The change is `mean(now) / mean(baseline) - 1`. Its 95%
//! confidence interval comes from a percentile bootstrap: 10,000 rounds, each resampling both
//! sets with replacement, seeded from the id so reruns give the same interval.
//! - *regressed*: the whole interval above `+T` (confidently slower by more than `T`);
//! - *improved*: the whole interval below `-T` (confidently faster by more than `T`);
//! - *unchanged*: anything else, within the threshold or within the noise.
//!
//! When the bench declared `Throughput::Elements(tokens)`, tokens/s (`tokens / time`) is shown
//! beside the time. Its change is `1 / (1 + time change) - 1`: the same event as the time
//! change, with the same verdict, never counted twice.
//!
//! **Peak memory** (from our `mlxbench-memory.json` sidecar, one peak per sample). The change is
//! `median(now) / median(baseline) - 1`. Memory is nearly deterministic, so instead of a
//! confidence interval the range `min(now) / max(baseline) - 1 ..= max(now) / min(baseline) - 1`
//! is shown, and:
//! - *regressed*: the whole range above `+T` (every sample up by more than `T` on every one);
//! - *improved*: the whole range below `-T`;
//! - *unchanged*: anything else.
//!
//! **What fails the gate.** Any regressed row. An id in the baseline but not in the compared run
//! (renamed, or a partial run) is listed as a problem; it fails the gate only in strict mode
//! (`--strict`), since a filtered `cargo bench` run is a normal thing to compare. An id only in
//! the compared run, a sidecar missing on one side (time is still compared), or a different MLX
//! version, build or backend between the two is a note and never fails the gate.
//!
//! **Errors** (the gate cannot run): the criterion directory missing or empty, a baseline name
//! that no benchmark has (the message lists those that exist), or an unreadable or corrupt file
//! (the message names it).
mod criterion;
pub mod interleave;
mod memory;
mod print;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use criterion::{
    baseline_dir, criterion_dir_for, criterion_output_dir, find_benchmark_dir, make_filename_safe, saved_baselines,
    BenchmarkRecord, CriterionArgs, SavedSample, Throughput, BENCHMARK_FILE, DEFAULT_SAVED_BASELINE, NEW_BASELINE,
    SAMPLE_FILE,
};
pub use memory::{memory_page, memory_records, write_memory_page, MemoryRecord, MEMORY_FILE, MEMORY_PAGE};
pub use print::{JsonPrinter, MarkdownPrinter, TablePrinter};

use crate::{measure::stats, report::mlx_description};

use criterion::{baseline_counts, baseline_folders, load_json, load_sample, BaselineFolder};

/// Default `--threshold`, in percent.
pub const DEFAULT_THRESHOLD_PCT: f64 = 5.0;
/// Default `--against`: Criterion's latest run.
pub const DEFAULT_AGAINST: &str = NEW_BASELINE;

/// Why a comparison could not be made.
#[derive(Debug, Error)]
pub enum CompareError {
    #[error(
        "no Criterion results at {}: run `cargo bench -- --save-baseline NAME` first, \
         or point --criterion-dir at them",
        path.display()
    )]
    NoCriterionDir { path: PathBuf },

    #[error(
        "no benchmark results (no benchmark.json) under {}: run `cargo bench -- --save-baseline NAME` first",
        path.display()
    )]
    NoResults { path: PathBuf },

    #[error(
        "baseline {name:?} not found under {}; baselines there: {}. \
         Save one with `cargo bench -- --save-baseline {name}`",
        dir.display(),
        existing.join(", ")
    )]
    UnknownBaseline { name: String, dir: PathBuf, existing: Vec<String> },

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{}: not the expected JSON: {source}", path.display())]
    Json { path: PathBuf, source: serde_json::Error },

    #[error("{}: {detail}", path.display())]
    InvalidData { path: PathBuf, detail: String },

    #[error("threshold must be a finite percentage >= 0, not {0}")]
    InvalidThreshold(f64),

    #[error("nothing to compare: the baseline and the compared run are both {0:?}")]
    SameBaseline(String),

    /// Writing a file (the memory sidecar or page) failed.
    #[error(transparent)]
    Write(#[from] crate::Error),
}

/// What a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Time per iteration, nanoseconds (mean over samples).
    Time,
    /// Peak memory per sample, bytes (median over samples).
    PeakMemory,
}

/// A row's outcome; see the module documentation for the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Regressed,
    Improved,
    /// Within the threshold or within the noise.
    Unchanged,
}

impl Verdict {
    /// The rule shared by both metrics: the whole interval beyond the threshold, so that a
    /// verdict means "worse (better) by more than the threshold, with confidence".
    fn of(change: f64, interval: (f64, f64), threshold: f64) -> Self {
        if change > threshold && interval.0 > threshold {
            Verdict::Regressed
        } else if change < -threshold && interval.1 < -threshold {
            Verdict::Improved
        } else {
            Verdict::Unchanged
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
        }
    }
}

/// Tokens/s beside a time row: `tokens / time` on each side, and the time change seen from it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TokensPerSecond {
    /// Tokens per iteration (`Throughput::Elements`) of the baseline and of the compared run.
    pub baseline_tokens: u64,
    pub now_tokens: u64,
    pub baseline_tps: f64,
    pub now_tps: f64,
    pub change_pct: f64,
    pub ci_low_pct: f64,
    pub ci_high_pct: f64,
}

/// One metric of one benchmark id, baseline against the compared run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub id: String,
    pub metric: Metric,
    /// Baseline value: mean nanoseconds per iteration (time) or median bytes (peak memory).
    pub baseline: f64,
    /// The compared run's value, in the same unit.
    pub now: f64,
    /// `now / baseline - 1`, in percent.
    pub change_pct: f64,
    /// Time: the 95% bootstrap confidence interval of the change. Peak memory: the range of the
    /// change over all pairs of samples. In percent.
    pub ci_low_pct: f64,
    pub ci_high_pct: f64,
    pub verdict: Verdict,
    /// Samples on each side.
    pub baseline_samples: usize,
    pub now_samples: usize,
    /// Present on time rows of benches with `Throughput::Elements` on both sides.
    pub tokens_per_s: Option<TokensPerSecond>,
}

/// The gate's result: rows, and what could not be compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub criterion_dir: PathBuf,
    /// The baseline's name, and the compared run's (`new` by default).
    pub baseline: String,
    pub against: String,
    pub threshold_pct: f64,
    /// Whether ids missing from the compared run fail the gate.
    pub strict: bool,
    /// Sorted by id, time before peak memory.
    pub rows: Vec<Row>,
    /// Ids of the baseline missing from the compared run. Fail the gate only when `strict`.
    pub problems: Vec<String>,
    /// Worth knowing, never failing: new ids, missing sidecars, different MLX builds.
    pub notes: Vec<String>,
    /// When the two sides ran on different MLX versions or builds, what each ran on (printed
    /// first, above the table: the interleaved gate comparing two MLX releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub different_mlx: Option<String>,
}

impl Comparison {
    /// True when a row regressed, or, in strict mode, when an id is missing.
    pub fn failed(&self) -> bool {
        self.count(Verdict::Regressed) > 0 || (self.strict && !self.problems.is_empty())
    }

    /// Rows with this verdict.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|row| row.verdict == verdict).count()
    }

}

/// One benchmark of one saved baseline, as the exports need it.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineEntry {
    pub id: String,
    /// Nanoseconds per iteration of each sample.
    pub time_ns: Vec<f64>,
    /// Tokens per iteration, when the bench declared them.
    pub tokens: Option<u64>,
    /// Peak memory of each sample (our sidecar), bytes.
    pub peak_memory_bytes: Vec<u64>,
}

/// The baseline folders under `criterion_dir`, which must hold results of each of `names`:
/// otherwise an error saying which baselines it does hold.
fn folders_of_baselines(criterion_dir: &Path, names: &[&str]) -> Result<Vec<BaselineFolder>, CompareError> {
    if !criterion_dir.is_dir() {
        return Err(CompareError::NoCriterionDir { path: criterion_dir.to_owned() });
    }
    let folders = baseline_folders(criterion_dir)?;
    if folders.is_empty() {
        return Err(CompareError::NoResults { path: criterion_dir.to_owned() });
    }
    let counts = baseline_counts(&folders);
    if let Some(name) = names.iter().find(|name| !counts.contains_key(**name)) {
        return Err(CompareError::UnknownBaseline {
            name: name.to_string(),
            dir: criterion_dir.to_owned(),
            existing: counts.iter().map(|(name, n)| format!("{name} ({n} benchmarks)")).collect(),
        });
    }
    Ok(folders)
}

/// Every benchmark of baseline `name` under `criterion_dir`, sorted by id.
pub fn baseline_entries(criterion_dir: &Path, name: &str) -> Result<Vec<BaselineEntry>, CompareError> {
    let folders = folders_of_baselines(criterion_dir, &[name])?;
    let mut notes = Vec::new();
    let mut entries = Vec::new();
    for (id, run) in index(&folders, name, &mut notes)? {
        entries.push(BaselineEntry {
            id,
            time_ns: load_sample(&run.folder)?.per_iteration_ns(),
            tokens: run.record.elements(),
            peak_memory_bytes: MemoryRecord::read(&run.folder)?.map(|m| m.peak_memory_bytes).unwrap_or_default(),
        });
    }
    Ok(entries)
}

/// Compares baseline `baseline` with baseline `against` (usually `new`) of every benchmark under
/// `criterion_dir`, with `threshold_pct` percent as the threshold; `strict` makes ids missing
/// from `against` fail the gate. The rules are in the module documentation.
pub fn compare(
    criterion_dir: &Path,
    baseline: &str,
    against: &str,
    threshold_pct: f64,
    strict: bool,
) -> Result<Comparison, CompareError> {
    if !(threshold_pct.is_finite() && threshold_pct >= 0.0) {
        return Err(CompareError::InvalidThreshold(threshold_pct));
    }
    if baseline == against {
        return Err(CompareError::SameBaseline(baseline.to_owned()));
    }
    let folders = folders_of_baselines(criterion_dir, &[baseline, against])?;

    let mut notes = Vec::new();
    let base_runs = index(&folders, baseline, &mut notes)?;
    let now_runs = index(&folders, against, &mut notes)?;
    let side = Side { baseline, against, threshold: threshold_pct / 100.0 };

    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut environments = (BTreeSet::new(), BTreeSet::new());
    for (id, base) in &base_runs {
        let Some(now) = now_runs.get(id) else {
            problems.push(format!("missing in {against}: {id} — renamed or not run (partial run?)"));
            continue;
        };
        rows.push(side.time_row(id, base, now, &mut notes)?);
        let (base_memory, now_memory) = (MemoryRecord::read(&base.folder)?, MemoryRecord::read(&now.folder)?);
        if let Some(record) = &base_memory {
            environments.0.insert(environment(&record.mlx_version, &record.mlx_build, &record.backend));
        }
        if let Some(record) = &now_memory {
            environments.1.insert(environment(&record.mlx_version, &record.mlx_build, &record.backend));
        }
        rows.extend(side.memory_row(id, base, now, base_memory, now_memory, &mut notes));
    }
    for id in now_runs.keys().filter(|id| !base_runs.contains_key(*id)) {
        notes.push(format!("new in {against}, no {baseline} to compare with: {id}"));
    }
    notes.extend(different_environments((baseline, against), &environments));

    Ok(Comparison {
        criterion_dir: criterion_dir.to_owned(),
        baseline: baseline.to_owned(),
        against: against.to_owned(),
        threshold_pct,
        strict,
        rows,
        problems,
        notes,
        different_mlx: None,
    })
}

/// What a side ran on: `MLX 0.32.4 (manylinux_2_35_x86_64) on cuda`.
fn environment(mlx_version: &str, mlx_build: &str, backend: &str) -> String {
    format!("{} on {backend}", mlx_description(mlx_version, mlx_build))
}

/// `different MLX builds: main ran MLX 0.32.2 (...) on cpu, new MLX 0.32.4 (...) on cpu` when
/// the sides, `names`, ran on different [`environment`]s (both known).
fn different_environments(names: (&str, &str), environments: &(BTreeSet<String>, BTreeSet<String>)) -> Option<String> {
    let (base, now) = environments;
    if base.is_empty() || now.is_empty() || base == now {
        return None;
    }
    let list = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(", ");
    Some(format!("different MLX builds: {} ran {}, {} {}", names.0, list(base), names.1, list(now)))
}

/// One benchmark's folder for one baseline, with its `benchmark.json`.
struct Run {
    folder: PathBuf,
    record: BenchmarkRecord,
}

/// The runs of baseline `name`, by id. An id found in two folders (stale folders after a change
/// of names) is noted and the first folder in path order is used.
fn index(folders: &[BaselineFolder], name: &str, notes: &mut Vec<String>) -> Result<BTreeMap<String, Run>, CompareError> {
    let mut runs: BTreeMap<String, Run> = BTreeMap::new();
    for folder in folders.iter().filter(|folder| folder.name == name) {
        let record: BenchmarkRecord = load_json(&folder.path.join(BENCHMARK_FILE))?;
        if let Some(first) = runs.get(&record.full_id) {
            notes.push(format!(
                "{}: in two {name} folders, {} and {}; using the first",
                record.full_id,
                first.folder.display(),
                folder.path.display()
            ));
            continue;
        }
        runs.insert(record.full_id.clone(), Run { folder: folder.path.clone(), record });
    }
    Ok(runs)
}

/// The names and threshold (a fraction) rows are built with.
struct Side<'a> {
    baseline: &'a str,
    against: &'a str,
    threshold: f64,
}

impl Side<'_> {
    fn time_row(&self, id: &str, base: &Run, now: &Run, notes: &mut Vec<String>) -> Result<Row, CompareError> {
        let base_ns = load_sample(&base.folder)?.per_iteration_ns();
        let now_ns = load_sample(&now.folder)?.per_iteration_ns();
        if base.record.throughput != now.record.throughput {
            notes.push(format!(
                "{id}: throughput differs ({}: {:?}, {}: {:?}); times compared as they are",
                self.baseline, base.record.throughput, self.against, now.record.throughput
            ));
        }
        Ok(self.time_row_of(id, &base_ns, &now_ns, base.record.elements().zip(now.record.elements())))
    }

    /// The time row of samples in nanoseconds per iteration: the change of the mean with its
    /// bootstrap interval, and tokens/s beside it when the tokens per iteration are known.
    fn time_row_of(&self, id: &str, base_ns: &[f64], now_ns: &[f64], tokens: Option<(u64, u64)>) -> Row {
        let (base_mean, now_mean) = (stats::mean(base_ns), stats::mean(now_ns));
        let interval = stats::relative_change_interval(base_ns, now_ns, stats::seed_for(id));
        let tokens_per_s = tokens.map(|(base_tokens, now_tokens)| {
            // tps = tokens / time: its change mirrors the time change (and flips the interval).
            let mirror = |time_change: f64| 100.0 * (1.0 / (1.0 + time_change) - 1.0);
            TokensPerSecond {
                baseline_tokens: base_tokens,
                now_tokens,
                baseline_tps: base_tokens as f64 / (base_mean * 1e-9),
                now_tps: now_tokens as f64 / (now_mean * 1e-9),
                change_pct: 100.0 * (now_tokens as f64 / now_mean) / (base_tokens as f64 / base_mean) - 100.0,
                ci_low_pct: mirror(interval.1),
                ci_high_pct: mirror(interval.0),
            }
        });
        let mut row = self.row(id, Metric::Time, (base_ns, now_ns), (base_mean, now_mean), interval);
        row.tokens_per_s = tokens_per_s;
        row
    }

    fn memory_row(
        &self,
        id: &str,
        base: &Run,
        now: &Run,
        base_memory: Option<MemoryRecord>,
        now_memory: Option<MemoryRecord>,
        notes: &mut Vec<String>,
    ) -> Option<Row> {
        let missing = |name: &str, run: &Run| {
            format!("{id}: no {MEMORY_FILE} in {name} ({}); peak memory not compared", run.folder.display())
        };
        let (base_memory, now_memory) = match (base_memory, now_memory) {
            (None, None) => return None,
            (Some(_), None) => {
                notes.push(missing(self.against, now));
                return None;
            }
            (None, Some(_)) => {
                notes.push(missing(self.baseline, base));
                return None;
            }
            (Some(base_memory), Some(now_memory)) => (base_memory, now_memory),
        };
        for (record, run) in [(&base_memory, base), (&now_memory, now)] {
            if record.full_id != run.record.full_id {
                notes.push(format!(
                    "{id}: {} in {} is for {:?}; peak memory not compared",
                    MEMORY_FILE,
                    run.folder.display(),
                    record.full_id
                ));
                return None;
            }
            if record.peak_memory_bytes.contains(&0) {
                notes.push(format!(
                    "{id}: {MEMORY_FILE} in {} has a zero peak (not measured?); peak memory not compared",
                    run.folder.display()
                ));
                return None;
            }
        }
        let as_f64 = |record: &MemoryRecord| record.peak_memory_bytes.iter().map(|&b| b as f64).collect::<Vec<_>>();
        Some(self.memory_row_of(id, &as_f64(&base_memory), &as_f64(&now_memory)))
    }

    /// The peak-memory row of samples in bytes: the change of the median, with the range of
    /// changes between samples.
    fn memory_row_of(&self, id: &str, base_bytes: &[f64], now_bytes: &[f64]) -> Row {
        let min = |xs: &[f64]| xs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = |xs: &[f64]| xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (base_median, now_median) = (stats::median(base_bytes), stats::median(now_bytes));
        let range = (min(now_bytes) / max(base_bytes) - 1.0, max(now_bytes) / min(base_bytes) - 1.0);
        self.row(id, Metric::PeakMemory, (base_bytes, now_bytes), (base_median, now_median), range)
    }

    /// A row whose value went from `values.0` to `values.1` over these samples, with `interval`
    /// (fractions) around the change, judged against the threshold.
    fn row(&self, id: &str, metric: Metric, samples: (&[f64], &[f64]), values: (f64, f64), interval: (f64, f64)) -> Row {
        let change = values.1 / values.0 - 1.0;
        Row {
            id: id.to_owned(),
            metric,
            baseline: values.0,
            now: values.1,
            change_pct: 100.0 * change,
            ci_low_pct: 100.0 * interval.0,
            ci_high_pct: 100.0 * interval.1,
            verdict: Verdict::of(change, interval, self.threshold),
            baseline_samples: samples.0.len(),
            now_samples: samples.1.len(),
            tokens_per_s: None,
        }
    }
}
