//! `mlxbench serve`: load tests of OpenAI-compatible servers. The requests ([`requests`]), one
//! streamed request ([`client`]), the load of a point ([`load`]), servers mlxbench starts
//! ([`launch`]), the metrics ([`metrics`]), and here the sweep's records and their files.
pub mod client;
pub mod launch;
pub mod load;
pub mod metrics;
pub mod requests;
pub mod search;
pub mod workload;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use self::{
    launch::MemoryTimeline,
    load::Load,
    metrics::{ErrorKind, PointSummary, RequestRecord, Spread},
    search::SearchStep,
};
use crate::{
    choice::choice,
    config::bits_or_none,
    error::{Error, Result},
    report::{
        file::write_atomically,
        table::{md_cell, one_line},
        Format,
    },
    units::human_bytes,
};

/// What `serve` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeFormat {
    Md,
    Csv,
    Json,
}

choice!(ServeFormat {
    Md => ("md", "a Markdown table, one row a point"),
    Csv => ("csv", "the CSV rows of the results file"),
    Json => ("json", "every point with every request"),
});

/// One point of a serve sweep: the servers' settings and the load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServePoint {
    pub instances: usize,
    /// mlx_lm.server's `--decode-concurrency` / `--prompt-concurrency` (launched servers).
    pub decode_concurrency: Option<u32>,
    pub prompt_concurrency: Option<u32>,
    /// The launched servers' `--kv-bits`.
    pub kv_bits: Option<i32>,
    pub load: Load,
}

/// What every record of a run shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeContext {
    pub timestamp: String,
    pub git_commit: String,
    pub mlxbench_version: String,
    pub hardware: String,
    /// The model served (as given), or `-` for servers started elsewhere without `--model`.
    pub model: String,
    pub api: String,
    /// The requests: `input 128±0 / output 64±0 tokens` or the dataset's path.
    pub requests: String,
    pub seed: u64,
    /// The workload ([`workload::Workload::label`]) and the cache mode (`as-is`, `bust`, `warm`).
    #[serde(default = "independent")]
    pub workload: String,
    #[serde(default = "as_is")]
    pub cache_mode: String,
    /// The `--slo` objectives, as [`metrics::Slo::label`] spells them.
    #[serde(default)]
    pub slo: Option<String>,
}

fn independent() -> String {
    "independent".into()
}

fn as_is() -> String {
    "as-is".into()
}

/// A point's result: its summary, every measured request, and the servers' memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeRecord {
    pub point: ServePoint,
    pub context: ServeContext,
    pub urls: Vec<String>,
    /// Why the point could not run at all (servers did not start), else `None`.
    pub error: Option<String>,
    pub summary: Option<PointSummary>,
    /// Resident memory of the launched (or `--server-pid`) process trees during the point.
    pub server_memory: Option<MemoryTimeline>,
    /// Every measured request (JSON and JSON lines only).
    pub requests: Vec<RequestRecord>,
    /// With `--search`: where this point stands in the search.
    #[serde(default)]
    pub search: Option<SearchStep>,
}

impl ServeRecord {
    /// Whether anything failed: the point, or any of its requests.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.summary.as_ref().is_some_and(|s| s.failed() > 0)
    }
}

/// The JSON document of a serve run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeReport {
    pub records: Vec<ServeRecord>,
}

/// One CSV row a point: the MLX Throughput Lab's columns first, then ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeCsvRow {
    pub instances: usize,
    pub decode_concurrency: Option<u32>,
    pub prompt_concurrency: Option<u32>,
    /// Clients of a closed loop; an open loop's `--max-concurrency`.
    pub concurrency: Option<usize>,
    /// Output tokens/s over the point.
    pub throughput_tps: f64,
    /// Output tokens of the successful requests.
    pub total_tokens: u64,
    pub elapsed_s: f64,
    pub errors: usize,
    pub request_rate: Option<f64>,
    pub kv_bits: String,
    pub requests: usize,
    pub ok_requests: usize,
    pub requests_per_s: f64,
    pub goodput_rps: Option<f64>,
    pub ttft_ms_mean: Option<f64>,
    pub ttft_ms_median: Option<f64>,
    pub ttft_ms_p90: Option<f64>,
    pub ttft_ms_p95: Option<f64>,
    pub ttft_ms_p99: Option<f64>,
    pub ttft_ms_max: Option<f64>,
    pub tpot_ms_mean: Option<f64>,
    pub tpot_ms_median: Option<f64>,
    pub tpot_ms_p90: Option<f64>,
    pub tpot_ms_p95: Option<f64>,
    pub tpot_ms_p99: Option<f64>,
    pub tpot_ms_max: Option<f64>,
    pub itl_ms_mean: Option<f64>,
    pub itl_ms_median: Option<f64>,
    pub itl_ms_p90: Option<f64>,
    pub itl_ms_p95: Option<f64>,
    pub itl_ms_p99: Option<f64>,
    pub itl_ms_max: Option<f64>,
    pub e2e_ms_mean: Option<f64>,
    pub e2e_ms_median: Option<f64>,
    pub e2e_ms_p90: Option<f64>,
    pub e2e_ms_p95: Option<f64>,
    pub e2e_ms_p99: Option<f64>,
    pub e2e_ms_max: Option<f64>,
    pub input_tokens_mean: Option<f64>,
    pub output_tokens_mean: Option<f64>,
    pub token_count_source: String,
    pub cached_prompt_tokens: u64,
    pub errors_connect: usize,
    pub errors_timeout: usize,
    pub errors_http: usize,
    pub errors_stream_cut: usize,
    pub errors_malformed: usize,
    pub server_peak_rss_bytes: Option<u64>,
    pub workload: String,
    pub cache_mode: String,
    pub cache_hit_rate: Option<f64>,
    pub warm_requests: usize,
    pub cold_requests: usize,
    pub ttft_cold_ms_median: Option<f64>,
    pub ttft_cold_ms_p99: Option<f64>,
    pub ttft_warm_ms_median: Option<f64>,
    pub ttft_warm_ms_p99: Option<f64>,
    pub queued_ms_median: Option<f64>,
    pub queued_ms_p99: Option<f64>,
    pub slo: Option<String>,
    pub slo_met: Option<bool>,
    pub search_probe: Option<usize>,
    pub search_saturated: Option<bool>,
    pub search_best: Option<f64>,
    pub urls: String,
    pub model: String,
    pub api: String,
    pub request_set: String,
    pub timestamp: String,
    pub git_commit: String,
    pub hardware: String,
    pub error: Option<String>,
}

impl ServeCsvRow {
    pub fn of(r: &ServeRecord) -> Self {
        let s = r.summary.as_ref();
        let spread = |f: fn(&PointSummary) -> Option<Spread>| s.and_then(f);
        let (ttft, tpot, itl, e2e) = (spread(|s| s.ttft_ms), spread(|s| s.tpot_ms), spread(|s| s.itl_ms), spread(|s| s.e2e_ms));
        let errors = |kind: ErrorKind| s.and_then(|s| s.errors.get(&kind).copied()).unwrap_or(0);
        let (concurrency, request_rate) = match r.point.load {
            Load::Closed { concurrency } => (Some(concurrency), None),
            Load::Open { rate, max_concurrency } => (max_concurrency, Some(rate)),
            Load::Trace { max_concurrency } => (max_concurrency, None),
        };
        ServeCsvRow {
            instances: r.point.instances,
            decode_concurrency: r.point.decode_concurrency,
            prompt_concurrency: r.point.prompt_concurrency,
            concurrency,
            throughput_tps: s.map_or(0.0, |s| s.output_tps),
            total_tokens: s.map_or(0, |s| s.total_output_tokens),
            elapsed_s: s.map_or(0.0, |s| s.elapsed_s),
            errors: s.map_or(0, |s| s.failed()),
            request_rate,
            kv_bits: bits_or_none(r.point.kv_bits),
            requests: s.map_or(0, |s| s.requests),
            ok_requests: s.map_or(0, |s| s.ok_requests),
            requests_per_s: s.map_or(0.0, |s| s.requests_per_s),
            goodput_rps: s.and_then(|s| s.goodput_rps),
            ttft_ms_mean: ttft.map(|x| x.mean),
            ttft_ms_median: ttft.map(|x| x.median),
            ttft_ms_p90: ttft.map(|x| x.p90),
            ttft_ms_p95: ttft.map(|x| x.p95),
            ttft_ms_p99: ttft.map(|x| x.p99),
            ttft_ms_max: ttft.map(|x| x.max),
            tpot_ms_mean: tpot.map(|x| x.mean),
            tpot_ms_median: tpot.map(|x| x.median),
            tpot_ms_p90: tpot.map(|x| x.p90),
            tpot_ms_p95: tpot.map(|x| x.p95),
            tpot_ms_p99: tpot.map(|x| x.p99),
            tpot_ms_max: tpot.map(|x| x.max),
            itl_ms_mean: itl.map(|x| x.mean),
            itl_ms_median: itl.map(|x| x.median),
            itl_ms_p90: itl.map(|x| x.p90),
            itl_ms_p95: itl.map(|x| x.p95),
            itl_ms_p99: itl.map(|x| x.p99),
            itl_ms_max: itl.map(|x| x.max),
            e2e_ms_mean: e2e.map(|x| x.mean),
            e2e_ms_median: e2e.map(|x| x.median),
            e2e_ms_p90: e2e.map(|x| x.p90),
            e2e_ms_p95: e2e.map(|x| x.p95),
            e2e_ms_p99: e2e.map(|x| x.p99),
            e2e_ms_max: e2e.map(|x| x.max),
            input_tokens_mean: spread(|s| s.input_tokens).map(|x| x.mean),
            output_tokens_mean: spread(|s| s.output_tokens).map(|x| x.mean),
            token_count_source: s.map_or_else(|| "-".into(), |s| s.token_source.clone()),
            cached_prompt_tokens: s.map_or(0, |s| s.cached_prompt_tokens),
            errors_connect: errors(ErrorKind::Connect),
            errors_timeout: errors(ErrorKind::Timeout),
            errors_http: errors(ErrorKind::Http),
            errors_stream_cut: errors(ErrorKind::StreamCut),
            errors_malformed: errors(ErrorKind::Malformed),
            server_peak_rss_bytes: r.server_memory.as_ref().map(|m| m.peak_bytes),
            workload: r.context.workload.clone(),
            cache_mode: r.context.cache_mode.clone(),
            cache_hit_rate: s.and_then(|s| s.cache_hit_rate),
            warm_requests: s.map_or(0, |s| s.warm_requests),
            cold_requests: s.map_or(0, |s| s.cold_requests),
            ttft_cold_ms_median: spread(|s| s.ttft_cold_ms).map(|x| x.median),
            ttft_cold_ms_p99: spread(|s| s.ttft_cold_ms).map(|x| x.p99),
            ttft_warm_ms_median: spread(|s| s.ttft_warm_ms).map(|x| x.median),
            ttft_warm_ms_p99: spread(|s| s.ttft_warm_ms).map(|x| x.p99),
            queued_ms_median: spread(|s| s.queued_ms).map(|x| x.median),
            queued_ms_p99: spread(|s| s.queued_ms).map(|x| x.p99),
            slo: r.context.slo.clone(),
            slo_met: s.and_then(|s| s.slo_met),
            search_probe: r.search.map(|x| x.probe),
            search_saturated: r.search.map(|x| x.saturated),
            search_best: r.search.and_then(|x| x.best),
            urls: r.urls.join(" "),
            model: r.context.model.clone(),
            api: r.context.api.clone(),
            request_set: r.context.requests.clone(),
            timestamp: r.context.timestamp.clone(),
            git_commit: r.context.git_commit.clone(),
            hardware: r.context.hardware.clone(),
            error: r.error.clone(),
        }
    }
}

/// The CSV text of `records`, with the header when `header`.
pub fn csv_text(records: &[ServeRecord], header: bool) -> Result<String> {
    let mut writer = csv::WriterBuilder::new().has_headers(header).from_writer(Vec::new());
    for r in records {
        writer.serialize(ServeCsvRow::of(r)).map_err(|e| Error::InvalidOption(format!("CSV: {e}")))?;
    }
    if records.is_empty() && header {
        return csv_header();
    }
    let bytes = writer.into_inner().map_err(|e| Error::InvalidOption(format!("CSV: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The CSV header line.
pub fn csv_header() -> Result<String> {
    let text = csv_text(std::slice::from_ref(&empty_record()), true)?;
    Ok(text.lines().next().unwrap_or_default().to_string() + "\n")
}

fn empty_record() -> ServeRecord {
    ServeRecord {
        point: ServePoint { instances: 0, decode_concurrency: None, prompt_concurrency: None, kv_bits: None, load: Load::Closed { concurrency: 0 } },
        context: ServeContext {
            timestamp: String::new(),
            git_commit: String::new(),
            mlxbench_version: String::new(),
            hardware: String::new(),
            model: String::new(),
            api: String::new(),
            requests: String::new(),
            seed: 0,
            workload: String::new(),
            cache_mode: String::new(),
            slo: None,
        },
        urls: Vec::new(),
        error: None,
        summary: None,
        server_memory: None,
        requests: Vec::new(),
        search: None,
    }
}

/// The results file of a serve run: rewritten whole (through a temporary file and a rename)
/// after each point, its earlier contents kept. An existing file of another format or header is
/// left alone and a free name beside it is used.
pub struct ServeFile {
    path: PathBuf,
    format: Format,
    /// What the file held before this run.
    existing: String,
    pub redirected_from: Option<PathBuf>,
}

impl ServeFile {
    pub fn open(path: &Path) -> Result<Self> {
        let format = match Format::from_path(path) {
            Some(f @ (Format::Csv | Format::Json | Format::Jsonl)) => f,
            _ => return Err(Error::InvalidOption(format!("{}: serve results are written as .csv, .json or .jsonl", path.display()))),
        };
        let fits = |text: &str| match format {
            Format::Csv => text.is_empty() || csv_header().is_ok_and(|h| text.starts_with(h.as_str())),
            Format::Json => text.trim().is_empty() || serde_json::from_str::<ServeReport>(text).is_ok(),
            _ => text.lines().all(|l| l.trim().is_empty() || serde_json::from_str::<ServeRecord>(l).is_ok()),
        };
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let mut chosen = path.to_path_buf();
        let mut redirected_from = None;
        if !fits(&read(path)) {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
            chosen = (2..10_000)
                .map(|i| path.with_file_name(format!("{stem}-{i}.{ext}")))
                .find(|p| fits(&read(p)))
                .ok_or_else(|| Error::InvalidOption(format!("no free file name beside {}", path.display())))?;
            redirected_from = Some(path.to_path_buf());
        }
        let existing = read(&chosen);
        if let Some(dir) = chosen.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|reason| Error::ResultsFile { path: chosen.clone(), reason })?;
        }
        let file = ServeFile { path: chosen, format, existing, redirected_from };
        file.save(&[])?;
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the earlier contents and `records` (all of this run's so far).
    pub fn save(&self, records: &[ServeRecord]) -> Result<()> {
        let text = match self.format {
            Format::Csv => {
                let header = self.existing.is_empty();
                self.existing.clone() + &csv_text(records, header)?
            }
            Format::Json => {
                let mut report = serde_json::from_str::<ServeReport>(&self.existing).unwrap_or(ServeReport { records: Vec::new() });
                report.records.extend_from_slice(records);
                serde_json::to_string_pretty(&report).map_err(|e| Error::InvalidOption(e.to_string()))? + "\n"
            }
            _ => {
                let mut text = self.existing.clone();
                for r in records {
                    text += &(serde_json::to_string(r).map_err(|e| Error::InvalidOption(e.to_string()))? + "\n");
                }
                text
            }
        };
        write_atomically(&self.path, text).map_err(|e| match e {
            Error::Io { source, .. } => Error::ResultsFile { path: self.path.clone(), reason: source },
            other => other,
        })
    }
}

/// `12.3` with one decimal, or `-`.
fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

/// `text` on one line: each line trimmed, joined by a space.

impl ServePoint {
    /// The point as progress and errors name it: `2 servers, decode 8, kv 4, c=4` (the server
    /// settings that are set, then the load).
    pub fn label(&self) -> String {
        let mut parts = vec![format!("{} server{}", self.instances, if self.instances == 1 { "" } else { "s" })];
        if let Some(d) = self.decode_concurrency {
            parts.push(format!("decode {d}"));
        }
        if let Some(p) = self.prompt_concurrency {
            parts.push(format!("prompt {p}"));
        }
        if let Some(b) = self.kv_bits {
            parts.push(format!("kv {b}"));
        }
        parts.push(self.load.label());
        parts.join(", ")
    }
}

/// The line a finished point gets when progress is not drawn (stderr is not a terminal):
/// `point 2/4 (1 server, c=4): 16/16 ok, 0 failed, 812.5 out t/s, TTFT p50 41.2 ms`.
pub fn progress_line(record: &ServeRecord, number: usize, total: usize) -> String {
    // A search's total is not known ahead (0): `?`.
    let total = if total == 0 { "?".to_string() } else { total.to_string() };
    let head = format!("point {number}/{total} ({})", record.point.label());
    match (&record.summary, &record.error) {
        (Some(s), _) => format!(
            "{head}: {}/{} ok, {} failed, {:.1} out t/s, TTFT p50 {} ms",
            s.ok_requests,
            s.requests,
            s.failed(),
            s.output_tps,
            ms(s.ttft_ms.map(|x| x.median))
        ),
        (None, error) => format!("{head}: failed: {}", one_line(error.as_deref().unwrap_or("?"))),
    }
}

/// The server settings of a point that can move to the header line when they do not vary.
const SETTING_COLUMNS: [&str; 5] = ["servers", "instances", "decode conc", "prompt conc", "kv"];

/// The cells of `r`'s server settings, in [`SETTING_COLUMNS`]' order (`None`: not set).
fn setting_cells(r: &ServeRecord) -> [Option<String>; 5] {
    let p = &r.point;
    [
        (!r.urls.is_empty()).then(|| r.urls.join(", ")),
        Some(p.instances.to_string()),
        p.decode_concurrency.map(|v| v.to_string()),
        p.prompt_concurrency.map(|v| v.to_string()),
        p.kv_bits.map(|b| b.to_string()),
    ]
}

/// The Markdown of `records`: a header line (mlxbench, the model, the requests, the hardware,
/// the time, and the server settings no point differs in), then a table, one row a point, with
/// a column for each setting that varies.
pub fn markdown(records: &[ServeRecord]) -> String {
    let mut text = String::new();
    let cells: Vec<[Option<String>; 5]> = records.iter().map(setting_cells).collect();
    // A setting varies when the points that have it (servers: those that started) differ.
    let varies: Vec<bool> = (0..SETTING_COLUMNS.len())
        .map(|i| {
            let mut values: Vec<&Option<String>> = cells.iter().map(|c| &c[i]).filter(|v| i != 0 || v.is_some()).collect();
            values.dedup();
            values.len() > 1
        })
        .collect();
    if let Some(first) = records.first() {
        let c = &first.context;
        let mut header = vec![
            format!("mlxbench {} ({})", c.mlxbench_version, c.git_commit),
            format!("model {}", c.model),
            format!("{} API, {}", c.api, c.requests),
        ];
        if c.workload != "independent" {
            header.push(c.workload.clone());
        }
        if c.cache_mode != "as-is" {
            header.push(format!("cache {}", c.cache_mode));
        }
        if let Some(slo) = &c.slo {
            header.push(format!("SLO {slo}"));
        }
        for (i, name) in SETTING_COLUMNS.iter().enumerate().filter(|(i, _)| !varies[*i]) {
            if let Some(value) = cells.iter().find_map(|c| c[i].clone()) {
                header.push(format!("{name} {value}"));
            }
        }
        header.push(c.hardware.clone());
        header.push(c.timestamp.clone());
        text.push_str(&header.iter().map(|part| one_line(part)).collect::<Vec<_>>().join(" | "));
        text.push_str("\n\n");
    }
    let shown: Vec<usize> = (0..SETTING_COLUMNS.len()).filter(|&i| varies[i]).collect();
    // Cache and SLO columns only when some point has them.
    let cache_columns = records.iter().any(|r| r.summary.as_ref().is_some_and(|s| s.cache_hit_rate.is_some()));
    let slo_columns = records.iter().any(|r| r.summary.as_ref().is_some_and(|s| s.slo_met.is_some()));
    let mut extra_head = String::new();
    let mut extra_rule = String::new();
    if cache_columns {
        extra_head.push_str(" cache hit | warm/cold | TTFT cold p50 / p99 ms | TTFT warm p50 / p99 ms |");
        extra_rule.push_str("---:|---:|---:|---:|");
    }
    if slo_columns {
        extra_head.push_str(" SLO met | queued p99 ms |");
        extra_rule.push_str("---|---:|");
    }
    let mut head = String::from("|");
    let mut rule = String::from("|");
    for &i in &shown {
        head.push_str(&format!(" {} |", SETTING_COLUMNS[i]));
        rule.push_str(if i == 0 { "---|" } else { "---:|" });
    }
    text.push_str(&format!(
        "{head} load | ok/sent | errors | out t/s | req/s | goodput req/s \
         | TTFT p50 / p99 ms | TPOT p50 / p99 ms | ITL p99 ms | E2E p50 / p99 ms | out tokens | server peak RSS |{extra_head}\n\
         {rule}---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|{extra_rule}\n",
    ));
    for (r, cells) in records.iter().zip(&cells) {
        let row = match (&r.summary, &r.error) {
            (Some(s), _) => {
                let errors: Vec<String> = s.errors.iter().map(|(k, n)| format!("{n} {}", k.as_str())).collect();
                format!(
                    "{}/{} | {} | {:.1} | {:.2} | {} | {} / {} | {} / {} | {} | {} / {} | {} | {} |",
                    s.ok_requests,
                    s.requests,
                    if errors.is_empty() { "-".into() } else { errors.join(", ") },
                    s.output_tps,
                    s.requests_per_s,
                    s.goodput_rps.map_or_else(|| "-".into(), |g| format!("{g:.2}")),
                    ms(s.ttft_ms.map(|x| x.median)),
                    ms(s.ttft_ms.map(|x| x.p99)),
                    ms(s.tpot_ms.map(|x| x.median)),
                    ms(s.tpot_ms.map(|x| x.p99)),
                    ms(s.itl_ms.map(|x| x.p99)),
                    ms(s.e2e_ms.map(|x| x.median)),
                    ms(s.e2e_ms.map(|x| x.p99)),
                    s.output_tokens.map_or_else(|| "-".into(), |x| format!("{:.0}", x.mean)),
                    r.server_memory.as_ref().map_or_else(|| "-".into(), |m| human_bytes(m.peak_bytes)),
                )
            }
            (None, error) => format!("- | failed: {} | - | - | - | - | - | - | - | - | - |", md_cell(error.as_deref().unwrap_or("?"))),
        };
        let mut row = row;
        let summary = r.summary.as_ref();
        if cache_columns {
            let pair = |x: Option<Spread>| format!("{} / {}", ms(x.map(|x| x.median)), ms(x.map(|x| x.p99)));
            row.push_str(&match summary {
                Some(s) => format!(
                    " {} | {}/{} | {} | {} |",
                    s.cache_hit_rate.map_or_else(|| "-".into(), |h| format!("{:.1}%", h * 100.0)),
                    s.warm_requests,
                    s.cold_requests,
                    pair(s.ttft_cold_ms),
                    pair(s.ttft_warm_ms)
                ),
                None => " - | - | - | - |".into(),
            });
        }
        if slo_columns {
            let met = summary.and_then(|s| s.slo_met).map_or("-", |m| if m { "yes" } else { "no" });
            let saturated = if r.search.is_some_and(|x| x.saturated) { " (saturated)" } else { "" };
            row.push_str(&format!(" {met}{saturated} | {} |", ms(summary.and_then(|s| s.queued_ms).map(|x| x.p99))));
        }
        let mut settings = String::from("|");
        for &i in &shown {
            // An unset kv is a plain cache; other unset settings are the server's default.
            let unset = if SETTING_COLUMNS[i] == "kv" { "none" } else { "-" };
            settings.push_str(&format!(" {} |", cells[i].as_deref().map_or_else(|| unset.into(), md_cell)));
        }
        text.push_str(&format!("{settings} {} | {row}\n", r.point.load.label()));
    }
    if let Some(line) = search_line(records) {
        text.push_str(&format!("\n{line}\n"));
    }
    text
}

/// The answer of the search among `records` (the last search's): `SLO search over concurrency:
/// 3 is the highest load that met ttft_p90<=200ms unsaturated (probed 1, 2, 4, 3)`.
pub fn search_line(records: &[ServeRecord]) -> Option<String> {
    let last = records.iter().rposition(|r| r.search.is_some_and(|s| s.last))?;
    let first = records[..=last].iter().rposition(|r| r.search.is_some_and(|s| s.probe == 1))?;
    let step = records[last].search?;
    let probed: Vec<String> = records[first..=last].iter().filter_map(|r| r.point.load.value()).map(|v| format!("{v}")).collect();
    let axis = match step.axis {
        search::SearchAxis::Concurrency => "concurrency",
        search::SearchAxis::Rate => "request rate (/s)",
    };
    let slo = records[last].context.slo.clone().unwrap_or_default();
    Some(match step.best {
        Some(best) => format!("SLO search over {axis}: {best} is the highest load that met {slo} unsaturated (probed {})", probed.join(", ")),
        None => format!("SLO search over {axis}: no load probed met {slo} (probed {})", probed.join(", ")),
    })
}
