//! Numbers for the services that track benchmarks over commits, from `run` results or from a
//! Criterion baseline (with our memory sidecar):
//! - Bencher Metric Format (`bmf`): `{"<benchmark>": {"<measure>": {"value", "lower_value",
//!   "upper_value"}}}`;
//! - github-action-benchmark's custom JSON, one file for the measures where bigger is better
//!   (`github-bigger`: tokens/s) and one where smaller is (`github-smaller`: TTFT, time per
//!   iteration, memory, energy): `[{"name", "unit", "value", "range", "extra"}]`.
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::{
    bench::{ids::config_id, RunRecord, Status},
    choice::choice,
    error::{Error, Result},
    gate::BaselineEntry,
    measure::Summary,
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
}

/// The measure `summary` gives, valued at its median.
fn measurement(benchmark: &str, measure: &'static str, unit: &'static str, bigger_is_better: bool, summary: &Summary, extra: &str) -> Measurement {
    let [lower, upper] = summary.median_ci95.unwrap_or([summary.min, summary.max]);
    Measurement {
        benchmark: benchmark.to_string(),
        measure,
        unit,
        value: summary.median,
        lower,
        upper,
        bigger_is_better,
        extra: format!("{} samples; {extra}", summary.samples.len()),
    }
}

/// The measures of every successful configuration of `records`.
pub fn from_records(records: &[RunRecord]) -> Vec<Measurement> {
    let mut out = Vec::new();
    for r in records.iter().filter(|r| r.status == Status::Ok) {
        let Some(s) = &r.summary else { continue };
        let id = config_id(&r.point);
        let extra = format!("MLX {} {}; {}; commit {}", r.context.mlx_version, r.context.backend, r.context.hardware, r.context.git_commit);
        let measures: [(&'static str, &'static str, bool, Option<&Summary>); 6] = [
            ("generation-tps", "tokens/s", true, s.generation_tps_robust.as_ref()),
            ("prompt-tps", "tokens/s", true, s.prompt_tps.as_ref()),
            ("ttft", "ms", false, s.ttft_ms.as_ref()),
            ("inter-token-latency-p99", "ms", false, s.itl_p99_ms.as_ref()),
            ("peak-memory", "bytes", false, s.peak_memory_bytes.as_ref()),
            ("energy-per-token", "J", false, s.joules_per_token.as_ref()),
        ];
        for (measure, unit, bigger, summary) in measures {
            if let Some(summary) = summary {
                out.push(measurement(&id, measure, unit, bigger, summary, &extra));
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
