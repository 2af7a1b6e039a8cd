//! Numbers for the services that track benchmarks over commits, from `run` results or from a
//! Criterion baseline (with our memory sidecar):
//! - Bencher Metric Format (`bmf`): `{"<benchmark>": {"<measure>": {"value", "lower_value",
//!   "upper_value"}}}`;
//! - github-action-benchmark's custom JSON, one file for the measures where bigger is better
//!   (`github-bigger`: tokens/s) and one where smaller is (`github-smaller`: TTFT, time per
//!   iteration, memory, energy): `[{"name", "unit", "value", "range", "extra"}]`.
//!
//! A `run` configuration's benchmark is `<model>/<engine>/kv<bits>/p<N>/g<N>/b<B>/d<D>`, with
//! `/mlx<version>` added when the exported results ran on more than one MLX build (see
//! [`MlxBuilds::slug`]): one build keeps the names a dashboard already tracks, two never share one.
//! A configuration measured again in a later run of the same results (a sweep appended twice)
//! is kept apart by name, never dropped nor listed twice: its first run keeps the name, a later
//! run `n` adds `/run<n>` ([`Runs`]). Values are the headlines of [`super::headline`], the same
//! numbers the terminal table and the HTML report show.
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::{
    headline::{Headline, Interval},
    mlx::{mlx_description, MlxBuilds},
    runs::Runs,
};
use crate::{
    bench::{ids::config_id, RunRecord, Status},
    choice::choice,
    error::{Error, Result},
    gate::BaselineEntry,
    measure::{MemoryBreakdown, Summary},
};

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Bmf,
    GithubBigger,
    GithubSmaller,
}

choice!(ExportFormat {
    Bmf => ("bmf", "Bencher Metric Format: every measure of every benchmark, with its interval"),
    GithubBigger => ("github-bigger", "github-action-benchmark customBiggerIsBetter: tokens/s"),
    GithubSmaller => ("github-smaller", "github-action-benchmark customSmallerIsBetter: times, memory, energy"),
});

/// One measure of one benchmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// The benchmark (a `run` configuration or a Criterion id).
    pub benchmark: String,
    /// The measure's slug, e.g. `generation-tps`.
    pub measure: &'static str,
    pub unit: &'static str,
    pub value: f64,
    /// Its interval: the median's 95% interval where there is one, else the samples' range.
    pub lower: f64,
    pub upper: f64,
    pub bigger_is_better: bool,
    /// Context a reader of the chart wants: samples, engine, commit, hardware.
    pub extra: String,
    /// The run of merged results it came from (from 1; see [`Runs`]); a benchmark measured in
    /// an earlier run too carries `/run<n>` at the end of its name.
    pub run: usize,
}

/// The measure `summary` gives, valued at its median.
fn measurement(benchmark: &str, measure: &'static str, unit: &'static str, bigger_is_better: bool, summary: &Summary, extra: &str) -> Measurement {
    let Interval { low: lower, high: upper, .. } = Interval::of(summary);
    Measurement {
        benchmark: benchmark.to_string(),
        measure,
        unit,
        value: summary.median,
        lower,
        upper,
        bigger_is_better,
        extra: format!("{} samples; {extra}", summary.samples.len()),
        run: 1,
    }
}

/// The measures of every successful configuration of `records`.
pub fn from_records(records: &[RunRecord]) -> Vec<Measurement> {
    let runs = Runs::of(records);
    let ok: Vec<(usize, &RunRecord)> = records.iter().enumerate().filter(|(_, r)| r.status == Status::Ok && r.summary.is_some()).collect();
    let mlx = MlxBuilds::of(ok.iter().map(|(_, r)| &r.context));
    let mut out = Vec::new();
    let mut named: Vec<String> = Vec::new();
    for (i, r) in ok {
        let Some(s) = &r.summary else { continue };
        let mut id = match mlx.slug(&r.context) {
            Some(slug) => format!("{}/{slug}", config_id(&r.point)),
            None => config_id(&r.point),
        };
        if named.contains(&id) {
            id = format!("{id}/run{}", runs.number(i));
        }
        named.push(id.clone());
        let c = &r.context;
        let extra = format!("{} {}; {}; commit {}", mlx_description(&c.mlx_version, &c.mlx_build), c.backend, c.hardware, c.git_commit);
        let measures: [(&'static str, &'static str, bool, Option<&Summary>); 6] = [
            ("generation-tps", "tokens/s", true, Headline::Decode.summary(s)),
            ("prompt-tps", "tokens/s", true, Headline::Prompt.summary(s)),
            ("ttft", "ms", false, Headline::Ttft.summary(s)),
            ("inter-token-latency-p99", "ms", false, s.itl_p99_ms.as_ref()),
            ("peak-memory", "bytes", false, Headline::PeakMemory.summary(s)),
            ("energy-per-token", "J", false, s.joules_per_token.as_ref()),
        ];
        for (measure, unit, bigger, summary) in measures {
            if let Some(summary) = summary {
                out.push(Measurement { run: runs.number(i), ..measurement(&id, measure, unit, bigger, summary, &extra) });
            }
        }
        // The parts of the memory breakdown a KV setting changes (the cache) and does not
        // (transient), per trial, when the record knows its weights.
        if let Some(weights) = r.memory_breakdown.map(|b| b.weights_bytes) {
            let transient: Vec<f64> =
                r.trials.iter().map(|t| MemoryBreakdown::of_trial(&t.memory, weights).transient_bytes as f64).collect();
            for (measure, summary) in [("kv-cache-memory", s.kv_cache_bytes.clone()), ("transient-memory", Summary::of(&transient))] {
                if let Some(summary) = summary {
                    out.push(Measurement { run: runs.number(i), ..measurement(&id, measure, "bytes", false, &summary, &extra) });
                }
            }
        }
    }
    out
}

/// The measures of a Criterion baseline: time per iteration, tokens/s where the bench declared
/// tokens, and peak memory from our sidecar.
pub fn from_baseline(entries: &[BaselineEntry]) -> Vec<Measurement> {
    let mut out = Vec::new();
    for entry in entries {
        let extra = "Criterion baseline";
        if let Some(time) = Summary::of(&entry.time_ns) {
            out.push(measurement(&entry.id, "latency", "ns", false, &time, extra));
        }
        if let Some(tokens) = entry.tokens {
            let tps: Vec<f64> = entry.time_ns.iter().map(|ns| tokens as f64 / (ns * 1e-9)).collect();
            if let Some(tps) = Summary::of(&tps) {
                out.push(measurement(&entry.id, "throughput", "tokens/s", true, &tps, extra));
            }
        }
        let peaks: Vec<f64> = entry.peak_memory_bytes.iter().map(|&b| b as f64).collect();
        if let Some(peak) = Summary::of(&peaks) {
            out.push(measurement(&entry.id, "peak-memory", "bytes", false, &peak, extra));
        }
    }
    out
}

/// Benchmarks that more than one configuration exports a measure under, with how many do (none
/// for `run` results, whose repeated runs are named apart; kept as a check that none slips
/// through: Bencher's format would keep the last of them).
pub fn duplicate_benchmarks(measurements: &[Measurement]) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for m in measurements {
        *counts.entry((&m.benchmark, m.measure)).or_default() += 1;
    }
    let mut duplicates: BTreeMap<&str, usize> = BTreeMap::new();
    for ((benchmark, _), n) in counts.into_iter().filter(|(_, n)| *n > 1) {
        let most = duplicates.entry(benchmark).or_default();
        *most = (*most).max(n);
    }
    duplicates.into_iter().map(|(benchmark, n)| (benchmark.to_string(), n)).collect()
}

/// The benchmarks named apart because an earlier run of the results measured their configuration
/// too (`.../run2`), once each, in export order.
pub fn renamed_runs(measurements: &[Measurement]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for m in measurements.iter().filter(|m| m.benchmark.ends_with(&format!("/run{}", m.run))) {
        if !names.contains(&m.benchmark.as_str()) {
            names.push(&m.benchmark);
        }
    }
    names
}

/// The measurements in `format`, as a JSON document.
pub fn render(measurements: &[Measurement], format: ExportFormat) -> Result<String> {
    if measurements.is_empty() {
        return Err(Error::InvalidOption("nothing to export: no successful configuration or benchmark".into()));
    }
    let value = match format {
        ExportFormat::Bmf => {
            let mut benchmarks: BTreeMap<&str, BTreeMap<&str, Value>> = BTreeMap::new();
            for m in measurements {
                benchmarks
                    .entry(&m.benchmark)
                    .or_default()
                    .insert(m.measure, json!({"value": m.value, "lower_value": m.lower, "upper_value": m.upper}));
            }
            json!(benchmarks)
        }
        ExportFormat::GithubBigger | ExportFormat::GithubSmaller => {
            let bigger = format == ExportFormat::GithubBigger;
            let entries: Vec<Value> = measurements
                .iter()
                .filter(|m| m.bigger_is_better == bigger)
                .map(|m| {
                    json!({
                        "name": format!("{} {}", m.benchmark, m.measure),
                        "unit": m.unit,
                        "value": m.value,
                        "range": format!("{} .. {}", m.lower, m.upper),
                        "extra": m.extra,
                    })
                })
                .collect();
            json!(entries)
        }
    };
    serde_json::to_string_pretty(&value).map(|text| text + "\n").map_err(|e| Error::InvalidOption(e.to_string()))
}
