//! What a run produces (plain serde data: the configuration, the context it ran in, every trial's
//! metrics and their statistics) and the printers that turn it into Markdown, CSV, JSON or JSON
//! lines. Printers never measure; files are written whole to a temporary file and renamed, so a
//! crash or Ctrl-C leaves either the old file or the new one.
use std::{
    fs,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    metrics::{gigabytes, MetricSummaries, Summary, TrialMetrics},
    sweep::RunPoint,
};

/// Where and with what a run was made; the same for every record of one invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunContext {
    pub device: String,
    pub backend: String,
    pub mlx_version: String,
    /// One-line hardware summary.
    pub hardware: String,
    /// The mlxbench commit the binary was built from (`-dirty` with local changes).
    pub git_commit: String,
    pub mlxbench_version: String,
    /// UTC, RFC 3339, when the invocation started.
    pub timestamp: String,
    pub prompt_kind: String,
    pub prefill_step_size: usize,
    pub kv_group_size: i32,
    pub max_kv_size: Option<i32>,
    pub warmup: usize,
    pub repeats: usize,
    pub seed: u64,
}

/// How a configuration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// The model did not load or a trial failed (out of memory, a bad file...).
    Failed,
    /// This MLX build has no kernel for the setting (e.g. KV quantization on some CUDA shapes).
    Unsupported,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Unsupported => "unsupported",
        }
    }
}

/// One configuration of a sweep and what was measured for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    #[serde(flatten)]
    pub point: RunPoint,
    #[serde(flatten)]
    pub context: RunContext,
    pub status: Status,
    pub error: Option<String>,
    /// Bytes of the model's weight files (what a decode step reads, KV cache aside).
    pub weight_bytes: Option<u64>,
    /// Measured trials (warmup excluded), in order.
    pub trials: Vec<TrialMetrics>,
    pub summary: Option<MetricSummaries>,
    /// Mean decode memory traffic: (weights + KV cache) × per-sequence tokens/s, GB/s.
    pub decode_gbps: Option<f64>,
    /// `decode_gbps` over the device's known peak bandwidth.
    pub bandwidth_utilisation: Option<f64>,
}

/// Output formats of `mlxbench run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A Markdown table, one row per configuration (mean ± sample stddev).
    Md,
    /// One row per measured trial, MLXBench's columns first.
    Csv,
    /// One JSON document with every record, raw samples and statistics.
    Json,
    /// One JSON record per line.
    Jsonl,
}

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

    pub fn printer(self) -> Box<dyn Printer> {
        match self {
            Format::Md => Box::new(Markdown),
            Format::Csv => Box::new(Csv),
            Format::Json => Box::new(Json),
            Format::Jsonl => Box::new(JsonLines),
        }
    }
}

/// Turns records into text, alone or after an existing file's content.
pub trait Printer {
    fn render(&self, records: &[RunRecord]) -> Result<String>;

    /// `existing` followed by `records`, or `None` when `existing` is not a file of this format
    /// that records can be added to (the caller then writes a new file).
    fn append(&self, existing: &str, records: &[RunRecord]) -> Result<Option<String>>;
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
    /// The configuration's decode memory traffic (median trial), GB/s, and its share of the
    /// device's peak bandwidth, when known.
    pub decode_gbps: Option<f64>,
    pub bandwidth_utilisation: Option<f64>,
    pub status: String,
    pub error: Option<String>,
}

impl CsvRow {
    fn rows_of(record: &RunRecord) -> Vec<CsvRow> {
        let row = |run: usize, trial: Option<&TrialMetrics>| CsvRow {
            run,
            prompt_tokens: record.point.n_prompt,
            prompt_tps: trial.and_then(|t| t.prompt_tps),
            generation_tokens: record.point.n_generate,
            generation_tps: trial.and_then(|t| t.generation_tps),
            peak_memory_gb: trial.map(|t| gigabytes(t.memory.peak_memory_bytes as f64)),
            model: record.point.model.clone(),
            kv_bits: record.point.kv_bits.map_or_else(|| "none".into(), |b| b.to_string()),
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
            decode_gbps: record.decode_gbps,
            bandwidth_utilisation: record.bandwidth_utilisation,
            status: record.status.as_str().into(),
            error: record.error.clone(),
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

impl Printer for Csv {
    fn render(&self, records: &[RunRecord]) -> Result<String> {
        Csv::rows(records, true)
    }

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

impl Printer for Json {
    fn render(&self, records: &[RunRecord]) -> Result<String> {
        let report = JsonReport { format: JSON_FORMAT.into(), records: records.to_vec() };
        Ok(serde_json::to_string_pretty(&report).map_err(invalid)? + "\n")
    }

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

impl Printer for JsonLines {
    fn render(&self, records: &[RunRecord]) -> Result<String> {
        let mut text = String::new();
        for record in records {
            text.push_str(&serde_json::to_string(record).map_err(invalid)?);
            text.push('\n');
        }
        Ok(text)
    }

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

/// Cell text without characters that would break a Markdown table row.
fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

impl Printer for Markdown {
    fn render(&self, records: &[RunRecord]) -> Result<String> {
        let mut text = String::new();
        if let Some(first) = records.first() {
            let c = &first.context;
            text.push_str(&format!(
                "mlxbench {} ({}) | MLX {} {} ({}) | {} | {} | {} warmup, {} repeats\n\n",
                c.mlxbench_version, c.git_commit, c.mlx_version, c.backend, c.device, c.hardware, c.timestamp, c.warmup, c.repeats
            ));
        }
        text.push_str(
            "| model | kv | batch | depth | prompt | prompt t/s | gen | gen t/s | TTFT ms | peak GB | KV GB | decode GB/s | status |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
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
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                md_cell(&r.point.model),
                r.point.kv_bits.map_or_else(|| "none".into(), |b| b.to_string()),
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
                status
            ));
        }
        Ok(text)
    }

    fn append(&self, existing: &str, records: &[RunRecord]) -> Result<Option<String>> {
        let mut text = existing.to_string();
        if !text.is_empty() {
            text.push_str(if text.ends_with('\n') { "\n" } else { "\n\n" });
        }
        text.push_str(&self.render(records)?);
        Ok(Some(text))
    }
}

/// Writes `contents` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&tmp, contents).map_err(|source| Error::Io { path: tmp.clone(), source })?;
    fs::rename(&tmp, path).map_err(io)
}

/// A results file that a run adds its records to as they come, without ever losing what the
/// file held before.
pub struct ResultsFile {
    path: PathBuf,
    format: Format,
    existing: String,
    /// Set when `path` held something records cannot be added to; we write a new file instead.
    pub redirected_from: Option<PathBuf>,
}

impl ResultsFile {
    /// Opens `path` for appending in `format`. An existing file that is not of that format (a
    /// different CSV header, not our JSON) is left alone and a free name beside it is used.
    pub fn open(path: &Path, format: Format) -> Result<Self> {
        let read = |p: &Path| match fs::read_to_string(p) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(source) => Err(Error::Io { path: p.to_path_buf(), source }),
        };
        let existing = read(path)?;
        if format.printer().append(&existing, &[])?.is_some() {
            return Ok(Self { path: path.to_path_buf(), format, existing, redirected_from: None });
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
        let free = (2..)
            .map(|i| path.with_file_name(format!("{stem}-{i}{ext}")))
            .find(|p| !p.exists())
            .expect("an unbounded range has a free name");
        Ok(Self { path: free, format, existing: String::new(), redirected_from: Some(path.to_path_buf()) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rewrites the file as what it held before plus `records`.
    pub fn save(&self, records: &[RunRecord]) -> Result<()> {
        let text = self
            .format
            .printer()
            .append(&self.existing, records)?
            .ok_or_else(|| invalid(format!("{} changed while mlxbench was writing it", self.path.display())))?;
        write_atomically(&self.path, &text)
    }
}
