//! Reports: the output formats of every command, one [`Printer`] interface for every document
//! (run records here, the gate's comparison in `gate`), and the results files of `mlxbench run`
//! ([`file`]). Printers never measure.
pub mod export;
pub mod file;
pub mod html;
pub mod read;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use file::{write_atomically, ResultsFile};

use crate::{
    bench::{
        record::{engine_ratios, EngineRatio, Ratio, RunRecord},
        Engine,
    },
    choice::choice,
    config::bits_or_none,
    error::{Error, Result},
    measure::{stats::median, MetricSummaries, Summary, TrialMetrics},
    units::{gigabytes, human_count},
};

/// The output formats (each command offers those that suit its document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// A Markdown table.
    Md,
    /// Comma-separated values, one row per measured trial.
    Csv,
    /// One JSON document.
    Json,
    /// One JSON record per line.
    Jsonl,
}

choice!(Format {
    Table => ("table", "Aligned columns for a terminal"),
    Md => ("md", "A Markdown table (mlxbench run: one row per configuration, mean ± sample stddev)", ["markdown"]),
    Csv => ("csv", "One row per measured trial, MLXBench's columns first"),
    Json => ("json", "One JSON document with every record, raw samples and statistics"),
    Jsonl => ("jsonl", "One JSON record per line"),
});

impl Format {
    /// The format a file name asks for, by extension.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(Format::Md),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// Turns a document (`[RunRecord]`, a gate comparison) into text in one format.
pub trait Printer<D: ?Sized> {
    fn render(&self, doc: &D) -> Result<String>;
}

/// A document with a printer per format it can be printed in.
pub trait Printable {
    /// The printer for `format`, or `None` when this document has none.
    fn printer(format: Format) -> Option<Box<dyn Printer<Self>>>;

    /// The document in `format`; an error names a format it cannot be printed in.
    fn render(&self, format: Format) -> Result<String> {
        Self::printer(format)
            .ok_or_else(|| Error::InvalidOption(format!("this output cannot be printed as {format}")))?
            .render(self)
    }
}

/// A results file format that records can be added to.
pub trait Append: Printer<[RunRecord]> {
    /// `existing` followed by `records`, or `None` when `existing` is not a file of this format
    /// that records can be added to (the caller then writes a new file).
    fn append(&self, existing: &str, records: &[RunRecord]) -> Result<Option<String>>;
}

impl Printable for [RunRecord] {
    fn printer(format: Format) -> Option<Box<dyn Printer<Self>>> {
        Some(match format {
            Format::Md => Box::new(Markdown),
            Format::Csv => Box::new(Csv),
            Format::Json => Box::new(Json),
            Format::Jsonl => Box::new(JsonLines),
            Format::Table => return None,
        })
    }
}

/// The appender of a results file in `format` (Markdown, CSV, JSON or JSON lines).
pub fn appender(format: Format) -> Result<Box<dyn Append>> {
    Ok(match format {
        Format::Md => Box::new(Markdown),
        Format::Csv => Box::new(Csv),
        Format::Json => Box::new(Json),
        Format::Jsonl => Box::new(JsonLines),
        Format::Table => return Err(Error::InvalidOption("a results file cannot be an aligned table".into())),
    })
}

fn invalid(detail: impl std::fmt::Display) -> Error {
    Error::InvalidOption(detail.to_string())
}

/// A CSV row: one measured trial (or one row for a configuration without trials).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CsvRow {
    pub run: usize,
    pub prompt_tokens: usize,
    pub prompt_tps: Option<f64>,
    pub generation_tokens: usize,
    pub generation_tps: Option<f64>,
    pub peak_memory_gb: Option<f64>,
    pub model: String,
    pub kv_bits: String,
    pub batch: usize,
    pub depth: usize,
    pub ttft_ms: Option<f64>,
    pub device: String,
    pub backend: String,
    pub mlx_version: String,
    pub hardware: String,
    pub git_commit: String,
    pub timestamp: String,
    pub generation_tps_per_sequence: Option<f64>,
    pub peak_memory_bytes: Option<u64>,
    pub active_memory_bytes: Option<u64>,
    pub cache_memory_bytes: Option<u64>,
    pub kv_cache_bytes: Option<u64>,
    pub prompt_kind: String,
    pub prefill_step_size: usize,
    pub kv_group_size: i32,
    pub max_kv_size: Option<i32>,
    /// The model's parameters, those one token uses, and the weight bytes a decode step reads.
    pub parameters: Option<u64>,
    pub active_parameters: Option<u64>,
    pub decode_weight_bytes: Option<u64>,
    /// The configuration's decode memory traffic (median trial), GB/s, and its share of the
    /// device's peak bandwidth, when known.
    pub decode_gbps: Option<f64>,
    pub bandwidth_utilisation: Option<f64>,
    pub status: String,
    pub error: Option<String>,
    /// `batch / median inter-token latency` of the trial, and its inter-token latency percentiles.
    pub generation_tps_robust: Option<f64>,
    pub itl_p50_ms: Option<f64>,
    pub itl_p90_ms: Option<f64>,
    pub itl_p99_ms: Option<f64>,
    pub itl_max_ms: Option<f64>,
    /// The trial's decode rate per window of generated tokens: `context:tps` pairs, `;`-separated
    /// (context = tokens the window's first step attended to).
    pub decode_windows: String,
    pub engine: String,
    /// The configuration's 95% interval of the median robust decode rate.
    pub generation_tps_robust_ci_low: Option<f64>,
    pub generation_tps_robust_ci_high: Option<f64>,
    /// Loading the model (cold start) and, with `--cold`, the first trial after it.
    pub load_ms: Option<f64>,
    pub load_peak_memory_bytes: Option<u64>,
    pub cold_ttft_ms: Option<f64>,
    pub cold_generation_tps: Option<f64>,
    /// The configuration's trend of active memory across its trials, bytes per trial.
    pub memory_drift_bytes_per_trial: Option<f64>,
    /// The trial's GPU telemetry (NVIDIA) and energy per generated token.
    pub gpu_energy_j: Option<f64>,
    pub gpu_mean_power_w: Option<f64>,
    pub gpu_sm_clock_mhz: Option<u32>,
    pub gpu_memory_clock_mhz: Option<u32>,
    pub gpu_temperature_c: Option<u32>,
    pub gpu_utilisation_pct: Option<u32>,
    pub gpu_throttle_reasons: String,
    pub joules_per_token: Option<f64>,
    /// The Mac's thermal state during the trial (macOS only; empty elsewhere).
    #[serde(default)]
    pub thermal_state: String,
}

impl CsvRow {
    fn rows_of(record: &RunRecord) -> Vec<CsvRow> {
        let robust_ci = record.summary.as_ref().and_then(|s| s.generation_tps_robust.as_ref()?.median_ci95);
        let row = |run: usize, trial: Option<&TrialMetrics>| {
            let gpu = trial.and_then(|t| t.gpu.as_ref());
            CsvRow {
                run,
                prompt_tokens: record.point.n_prompt,
                prompt_tps: trial.and_then(|t| t.prompt_tps),
                generation_tokens: record.point.n_generate,
                generation_tps: trial.and_then(|t| t.generation_tps),
                peak_memory_gb: trial.map(|t| gigabytes(t.memory.peak_memory_bytes as f64)),
                model: record.point.model.clone(),
                kv_bits: bits_or_none(record.point.kv_bits),
                batch: record.point.batch,
                depth: record.point.depth,
                ttft_ms: trial.map(|t| t.ttft_ms),
                device: record.context.device.clone(),
                backend: record.context.backend.clone(),
                mlx_version: record.context.mlx_version.clone(),
                hardware: record.context.hardware.clone(),
                git_commit: record.context.git_commit.clone(),
                timestamp: record.context.timestamp.clone(),
                generation_tps_per_sequence: trial.and_then(|t| t.generation_tps_per_sequence),
                peak_memory_bytes: trial.map(|t| t.memory.peak_memory_bytes),
                active_memory_bytes: trial.map(|t| t.memory.active_memory_bytes),
                cache_memory_bytes: trial.map(|t| t.memory.cache_memory_bytes),
                kv_cache_bytes: trial.map(|t| t.memory.kv_cache_bytes),
                prompt_kind: record.context.prompt_kind.clone(),
                prefill_step_size: record.context.prefill_step_size,
                kv_group_size: record.context.kv_group_size,
                max_kv_size: record.context.max_kv_size,
                parameters: record.parameters,
                active_parameters: record.active_parameters,
                decode_weight_bytes: record.decode_weight_bytes,
                decode_gbps: record.decode_gbps,
                bandwidth_utilisation: record.bandwidth_utilisation,
                status: record.status.as_str().into(),
                error: record.error.clone(),
                generation_tps_robust: trial.and_then(|t| t.generation_tps_robust),
                itl_p50_ms: trial.and_then(|t| t.itl_p50_ms),
                itl_p90_ms: trial.and_then(|t| t.itl_p90_ms),
                itl_p99_ms: trial.and_then(|t| t.itl_p99_ms),
                itl_max_ms: trial.and_then(|t| t.itl_max_ms),
                decode_windows: trial.map_or_else(String::new, |t| {
                    t.decode_windows.iter().map(|w| format!("{}:{:.2}", w.context_tokens, w.tps)).collect::<Vec<_>>().join(";")
                }),
                engine: record.point.engine.to_string(),
                generation_tps_robust_ci_low: robust_ci.map(|[low, _]| low),
                generation_tps_robust_ci_high: robust_ci.map(|[_, high]| high),
                load_ms: record.load.map(|l| l.load_ms),
                load_peak_memory_bytes: record.load.map(|l| l.load_peak_memory_bytes),
                cold_ttft_ms: record.cold_trial.as_ref().map(|t| t.ttft_ms),
                cold_generation_tps: record.cold_trial.as_ref().and_then(|t| t.generation_tps),
                memory_drift_bytes_per_trial: record.memory_drift.map(|d| d.slope),
                gpu_energy_j: gpu.and_then(|g| g.energy_j),
                gpu_mean_power_w: gpu.and_then(|g| g.mean_power_w),
                gpu_sm_clock_mhz: gpu.and_then(|g| g.sm_clock_mhz),
                gpu_memory_clock_mhz: gpu.and_then(|g| g.memory_clock_mhz),
                gpu_temperature_c: gpu.and_then(|g| g.temperature_c),
                gpu_utilisation_pct: gpu.and_then(|g| g.utilisation_pct),
                gpu_throttle_reasons: gpu.map_or_else(String::new, |g| g.throttle_reasons.join(";")),
                joules_per_token: trial.and_then(|t| t.joules_per_token),
                thermal_state: trial.and_then(|t| t.thermal_state).map_or_else(String::new, |s| s.as_str().into()),
            }
        };
        if record.trials.is_empty() {
            vec![row(0, None)]
        } else {
            record.trials.iter().enumerate().map(|(i, t)| row(i + 1, Some(t))).collect()
        }
    }
}

/// The header line our CSV files start with.
pub fn csv_header() -> Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.serialize(CsvRow::default()).map_err(invalid)?;
    let text = String::from_utf8(writer.into_inner().map_err(invalid)?).map_err(invalid)?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

struct Csv;

impl Csv {
    fn rows(records: &[RunRecord], with_header: bool) -> Result<String> {
        let mut writer = csv::WriterBuilder::new().has_headers(with_header).from_writer(Vec::new());
        for record in records {
            for row in CsvRow::rows_of(record) {
                writer.serialize(row).map_err(invalid)?;
            }
        }
        if with_header && records.is_empty() {
            return Ok(format!("{}\n", csv_header()?));
        }
        String::from_utf8(writer.into_inner().map_err(invalid)?).map_err(invalid)
    }
}

impl Printer<[RunRecord]> for Csv {
    fn render(&self, records: &[RunRecord]) -> Result<String> {
        Csv::rows(records, true)
    }
}

impl Append for Csv {
    fn append(&self, existing: &str, records: &[RunRecord]) -> Result<Option<String>> {
        if existing.trim().is_empty() {
            return self.render(records).map(Some);
        }
        if existing.lines().next() != Some(csv_header()?.as_str()) {
            return Ok(None);
        }
        let mut text = existing.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&Csv::rows(records, false)?);
        Ok(Some(text))
    }
}

/// The JSON document: every record of one or more invocations.
#[derive(Debug, Serialize, Deserialize)]
pub struct JsonReport {
    /// Identifies the format for tools reading it back.
    pub format: String,
    pub records: Vec<RunRecord>,
}

const JSON_FORMAT: &str = "mlxbench-run-v1";

struct Json;

impl Printer<[RunRecord]> for Json {
    fn render(&self, records: &[RunRecord]) -> Result<String> {
        let report = JsonReport { format: JSON_FORMAT.into(), records: records.to_vec() };
        Ok(serde_json::to_string_pretty(&report).map_err(invalid)? + "\n")
    }
}

impl Append for Json {
    fn append(&self, existing: &str, records: &[RunRecord]) -> Result<Option<String>> {
        if existing.trim().is_empty() {
            return self.render(records).map(Some);
        }
        match serde_json::from_str::<JsonReport>(existing) {
            Ok(report) if report.format == JSON_FORMAT => {
                let all: Vec<RunRecord> = report.records.into_iter().chain(records.iter().cloned()).collect();
                self.render(&all).map(Some)
            }
            _ => Ok(None),
        }
    }
}

struct JsonLines;

impl Printer<[RunRecord]> for JsonLines {
    fn render(&self, records: &[RunRecord]) -> Result<String> {
        let mut text = String::new();
        for record in records {
            text.push_str(&serde_json::to_string(record).map_err(invalid)?);
            text.push('\n');
        }
        Ok(text)
    }
}

impl Append for JsonLines {
    fn append(&self, existing: &str, records: &[RunRecord]) -> Result<Option<String>> {
        if existing.lines().any(|line| serde_json::from_str::<RunRecord>(line).is_err()) {
            return Ok(None);
        }
        let mut text = existing.to_string();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&self.render(records)?);
        Ok(Some(text))
    }
}

struct Markdown;

/// `mean ± stddev` with `decimals`, or `-` when undefined.
fn mean_sd(summary: Option<&Summary>, scale: f64, decimals: usize) -> String {
    match summary {
        Some(s) if s.samples.len() > 1 => {
            format!("{:.decimals$} ± {:.decimals$}", s.mean * scale, s.stddev * scale)
        }
        Some(s) => format!("{:.decimals$}", s.mean * scale),
        None => "-".into(),
    }
}

/// `30.53 B (3.35 B active)`: the total, and the active count when a token uses fewer.
fn parameters_cell(total: Option<u64>, active: Option<u64>) -> String {
    match (total, active) {
        (Some(total), Some(active)) if active < total => format!("{} ({} active)", human_count(total), human_count(active)),
        (Some(total), _) => human_count(total),
        (None, _) => "-".into(),
    }
}

/// Cell text without characters that would break a Markdown table row.
fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

impl Printer<[RunRecord]> for Markdown {
    fn render(&self, records: &[RunRecord]) -> Result<String> {
        let mut text = String::new();
        if let Some(first) = records.first() {
            let c = &first.context;
            let repeats = match c.target_ci_pct {
                Some(pct) => format!("repeats until ±{pct}% (at most {})", c.repeats),
                None => format!("{} repeats", c.repeats),
            };
            text.push_str(&format!(
                "mlxbench {} ({}) | MLX {} {} ({}) | {} | {} | {} warmup, {repeats}\n\n",
                c.mlxbench_version, c.git_commit, c.mlx_version, c.backend, c.device, c.hardware, c.timestamp, c.warmup
            ));
        }
        // The engine gets a column only when a record ran on another engine than mlxbench's.
        let engines = records.iter().any(|r| r.point.engine != Engine::Mlxbench);
        text.push_str(&format!(
            "| model | params |{} kv | batch | depth | prompt | prompt t/s | gen | gen t/s | TTFT ms | peak GB | KV GB \
             | decode GB/s | gen t/s (robust) | ITL p50/p99 ms | gen t/s by context | status |\n\
             |---|---|{}---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
            if engines { " engine |" } else { "" },
            if engines { "---|" } else { "" },
        ));
        for r in records {
            let s = r.summary.as_ref();
            let status = match &r.error {
                Some(e) => format!("{}: {}", r.status.as_str(), md_cell(e)),
                None => r.status.as_str().into(),
            };
            let bandwidth = match (r.decode_gbps, r.bandwidth_utilisation) {
                (Some(gbps), Some(share)) => format!("{gbps:.1} ({:.0}%)", share * 100.0),
                (Some(gbps), None) => format!("{gbps:.1}"),
                _ => "-".into(),
            };
            text.push_str(&format!(
                "| {} | {} |{} {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                md_cell(&r.point.model),
                parameters_cell(r.parameters, r.active_parameters),
                if engines { format!(" {} |", r.point.engine) } else { String::new() },
                bits_or_none(r.point.kv_bits),
                r.point.batch,
                r.point.depth,
                r.point.n_prompt,
                mean_sd(s.and_then(|s| s.prompt_tps.as_ref()), 1.0, 1),
                r.point.n_generate,
                mean_sd(s.and_then(|s| s.generation_tps.as_ref()), 1.0, 1),
                mean_sd(s.and_then(|s| s.ttft_ms.as_ref()), 1.0, 1),
                mean_sd(s.and_then(|s| s.peak_memory_bytes.as_ref()), 1e-9, 3),
                mean_sd(s.and_then(|s| s.kv_cache_bytes.as_ref()), 1e-9, 3),
                bandwidth,
                median_ci(s.and_then(|s| s.generation_tps_robust.as_ref())),
                itl_cell(s),
                windows_cell(&r.trials),
                status
            ));
        }
        text.push_str(&extras_table(records));
        text.push_str(&ratio_table(
            "mlxbench ÷ mlx-lm (ratio of medians, 95% bootstrap interval; above 1 is faster or, for TTFT and memory, more)",
            &engine_ratios(records),
        ));
        Ok(text)
    }
}

/// A table of ratios under `title` (empty when there are none): per setting, the robust decode
/// rate, prompt rate, TTFT and peak memory, each a ratio of medians with its interval.
pub fn ratio_table(title: &str, ratios: &[EngineRatio]) -> String {
    if ratios.is_empty() {
        return String::new();
    }
    let mut text = format!(
        "\n{title}:\n\n\
         | model | kv | batch | depth | prompt | gen | gen t/s (robust) | prompt t/s | TTFT | peak memory |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for ratio in ratios {
        let p = &ratio.point;
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            md_cell(&p.model),
            bits_or_none(p.kv_bits),
            p.batch,
            p.depth,
            p.n_prompt,
            p.n_generate,
            ratio_cell(ratio.generation_tps_robust),
            ratio_cell(ratio.prompt_tps),
            ratio_cell(ratio.ttft_ms),
            ratio_cell(ratio.peak_memory_bytes),
        ));
    }
    text
}

/// Loading, the cold trial, memory drift and energy per configuration, for the records that
/// have any of them; empty otherwise.
fn extras_table(records: &[RunRecord]) -> String {
    let has = |r: &&RunRecord| r.load.is_some() || r.cold_trial.is_some() || r.memory_drift.is_some();
    if !records.iter().any(|r| has(&r)) {
        return String::new();
    }
    let mut text = String::from(
        "\nLoading, cold trial, memory drift and energy:\n\n\
         | model | engine | kv | batch | depth | prompt | gen | load ms | load peak GB | cold TTFT ms | cold gen t/s \
         | active memory B/trial [95%] | J/token |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let number = |x: Option<f64>, decimals: usize| x.map_or_else(|| "-".into(), |x| format!("{x:.decimals$}"));
    for r in records.iter().filter(has) {
        let p = &r.point;
        let drift = r.memory_drift.map_or_else(
            || "-".into(),
            |d| format!("{:+.0} [{:+.0}, {:+.0}]", d.slope, d.slope_ci95[0], d.slope_ci95[1]),
        );
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            md_cell(&p.model),
            p.engine,
            bits_or_none(p.kv_bits),
            p.batch,
            p.depth,
            p.n_prompt,
            p.n_generate,
            number(r.load.map(|l| l.load_ms), 1),
            number(r.load.map(|l| gigabytes(l.load_peak_memory_bytes as f64)), 3),
            number(r.cold_trial.as_ref().map(|t| t.ttft_ms), 1),
            number(r.cold_trial.as_ref().and_then(|t| t.generation_tps), 1),
            drift,
            number(r.summary.as_ref().and_then(|s| s.joules_per_token.as_ref()).map(|j| j.median), 4),
        ));
    }
    text
}

/// `median ±x%` with the half-width of its 95% interval, `median` without one, `-` when undefined.
fn median_ci(summary: Option<&Summary>) -> String {
    match summary {
        Some(s) => match s.relative_ci_half_width() {
            Some(width) => format!("{:.1} ±{:.1}%", s.median, width * 100.0),
            None => format!("{:.1}", s.median),
        },
        None => "-".into(),
    }
}

/// Median ITL p50 and p99 over the trials.
fn itl_cell(summaries: Option<&MetricSummaries>) -> String {
    match summaries.and_then(|s| Some((s.itl_p50_ms.as_ref()?, s.itl_p99_ms.as_ref()?))) {
        Some((p50, p99)) => format!("{:.2} / {:.2}", p50.median, p99.median),
        None => "-".into(),
    }
}

/// The first and last window's decode rate (median over trials) with the context each attended
/// to, when a trial had more than one window.
fn windows_cell(trials: &[TrialMetrics]) -> String {
    let windows = trials.first().map_or(0, |t| t.decode_windows.len());
    if windows < 2 {
        return "-".into();
    }
    let at = |i: usize| {
        let rates: Vec<f64> = trials.iter().filter_map(|t| t.decode_windows.get(i).map(|w| w.tps)).collect();
        let context = trials[0].decode_windows[i].context_tokens;
        format!("{:.1} @{context}", median(&rates))
    };
    format!("{} → {}", at(0), at(windows - 1))
}

fn ratio_cell(ratio: Option<Ratio>) -> String {
    match ratio {
        Some(r) => format!("{:.3}× [{:.3}, {:.3}]", r.value, r.ci95[0], r.ci95[1]),
        None => "-".into(),
    }
}

impl Append for Markdown {
    fn append(&self, existing: &str, records: &[RunRecord]) -> Result<Option<String>> {
        let mut text = existing.to_string();
        if !text.is_empty() {
            text.push_str(if text.ends_with('\n') { "\n" } else { "\n\n" });
        }
        text.push_str(&self.render(records)?);
        Ok(Some(text))
    }
}
