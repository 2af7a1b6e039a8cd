//! Quality records: one per (engine, model, cache setting, depth), plain data, printed as JSON,
//! CSV (one flat row each) and a Markdown table through the report printers. The JSON shape is
//! the one other reports read (see README's `quality` section).
use serde::{Deserialize, Serialize};

use super::{Comparison, REPETITION_NGRAM};
use crate::{
    bench::Status,
    cache::KvCacheOptions,
    config::bits_or_none,
    error::{Error, Result},
    report::{
        table::{Cell, Column, Table},
        Format, Printable, Printer,
    },
};

/// One setting's quality at one depth, against the same engine's plain cache. The metric fields
/// are `None` unless `status` is ok (and a repetition share without enough generated tokens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityRecord {
    pub engine: String,
    pub model: String,
    pub text: String,
    pub kv_bits: Option<i32>,
    pub kv_group_size: i32,
    pub quantized_kv_start: i32,
    pub max_kv_size: Option<i32>,
    pub depth: usize,
    pub n_score: usize,
    pub n_generate: usize,
    pub status: Status,
    pub error: Option<String>,
    pub kl_mean: Option<f64>,
    pub kl_mean_ci95: Option<[f64; 2]>,
    pub kl_p99: Option<f64>,
    pub top1_agreement: Option<f64>,
    pub top1_agreement_ci95: Option<[f64; 2]>,
    pub delta_log_likelihood: Option<f64>,
    pub delta_log_likelihood_ci95: Option<[f64; 2]>,
    pub perplexity_plain: Option<f64>,
    pub perplexity: Option<f64>,
    pub delta_perplexity: Option<f64>,
    pub delta_perplexity_ci95: Option<[f64; 2]>,
    pub repetition_ngram: usize,
    pub repeated_ngram_share: Option<f64>,
    pub repeated_ngram_share_plain: Option<f64>,
    pub first_divergence: Option<usize>,
}

/// What a record is about, before it has results.
#[derive(Debug, Clone)]
pub struct QualityPoint {
    pub engine: String,
    pub model: String,
    pub text: String,
    pub kv: KvCacheOptions,
    pub depth: usize,
    pub n_score: usize,
    pub n_generate: usize,
}

impl QualityRecord {
    fn empty(point: &QualityPoint, status: Status, error: Option<String>) -> Self {
        QualityRecord {
            engine: point.engine.clone(),
            model: point.model.clone(),
            text: point.text.clone(),
            kv_bits: point.kv.kv_bits,
            kv_group_size: point.kv.kv_group_size,
            quantized_kv_start: point.kv.quantized_kv_start,
            max_kv_size: point.kv.max_kv_size,
            depth: point.depth,
            n_score: point.n_score,
            n_generate: point.n_generate,
            status,
            error,
            kl_mean: None,
            kl_mean_ci95: None,
            kl_p99: None,
            top1_agreement: None,
            top1_agreement_ci95: None,
            delta_log_likelihood: None,
            delta_log_likelihood_ci95: None,
            perplexity_plain: None,
            perplexity: None,
            delta_perplexity: None,
            delta_perplexity_ci95: None,
            repetition_ngram: REPETITION_NGRAM,
            repeated_ngram_share: None,
            repeated_ngram_share_plain: None,
            first_divergence: None,
        }
    }

    /// A measured setting.
    pub fn ok(point: &QualityPoint, c: &Comparison) -> Self {
        let s = &c.scores;
        QualityRecord {
            kl_mean: Some(s.kl_mean),
            kl_mean_ci95: Some(s.kl_mean_ci95),
            kl_p99: Some(s.kl_p99),
            top1_agreement: Some(s.top1_agreement),
            top1_agreement_ci95: Some(s.top1_agreement_ci95),
            delta_log_likelihood: Some(s.delta_log_likelihood),
            delta_log_likelihood_ci95: Some(s.delta_log_likelihood_ci95),
            perplexity_plain: Some(s.perplexity_plain),
            perplexity: Some(s.perplexity),
            delta_perplexity: Some(s.delta_perplexity),
            delta_perplexity_ci95: Some(s.delta_perplexity_ci95),
            repeated_ngram_share: c.repeated_ngram_share,
            repeated_ngram_share_plain: c.repeated_ngram_share_plain,
            first_divergence: c.first_divergence,
            ..Self::empty(point, Status::Ok, None)
        }
    }

    /// A setting that did not run: `status` failed or unsupported, with the error.
    pub fn not_run(point: &QualityPoint, status: Status, error: String) -> Self {
        Self::empty(point, status, Some(error))
    }

    /// `8`, `none`, `none, max 256`: the setting as tables name it.
    pub fn setting_label(&self) -> String {
        match self.max_kv_size {
            Some(max) => format!("{}, max {max}", bits_or_none(self.kv_bits)),
            None => bits_or_none(self.kv_bits),
        }
    }
}

/// Records as a document the report printers print.
pub struct QualityRecords(pub Vec<QualityRecord>);

/// One flat CSV row (the intervals split into `_low`/`_high` columns).
#[derive(Serialize)]
struct CsvRow<'a> {
    engine: &'a str,
    model: &'a str,
    text: &'a str,
    kv_bits: Option<i32>,
    kv_group_size: i32,
    quantized_kv_start: i32,
    max_kv_size: Option<i32>,
    depth: usize,
    n_score: usize,
    n_generate: usize,
    status: &'a str,
    error: Option<&'a str>,
    kl_mean: Option<f64>,
    kl_mean_ci95_low: Option<f64>,
    kl_mean_ci95_high: Option<f64>,
    kl_p99: Option<f64>,
    top1_agreement: Option<f64>,
    top1_agreement_ci95_low: Option<f64>,
    top1_agreement_ci95_high: Option<f64>,
    delta_log_likelihood: Option<f64>,
    delta_log_likelihood_ci95_low: Option<f64>,
    delta_log_likelihood_ci95_high: Option<f64>,
    perplexity_plain: Option<f64>,
    perplexity: Option<f64>,
    delta_perplexity: Option<f64>,
    delta_perplexity_ci95_low: Option<f64>,
    delta_perplexity_ci95_high: Option<f64>,
    repetition_ngram: usize,
    repeated_ngram_share: Option<f64>,
    repeated_ngram_share_plain: Option<f64>,
    first_divergence: Option<usize>,
}

impl<'a> From<&'a QualityRecord> for CsvRow<'a> {
    fn from(r: &'a QualityRecord) -> Self {
        let low = |ci: Option<[f64; 2]>| ci.map(|c| c[0]);
        let high = |ci: Option<[f64; 2]>| ci.map(|c| c[1]);
        CsvRow {
            engine: &r.engine,
            model: &r.model,
            text: &r.text,
            kv_bits: r.kv_bits,
            kv_group_size: r.kv_group_size,
            quantized_kv_start: r.quantized_kv_start,
            max_kv_size: r.max_kv_size,
            depth: r.depth,
            n_score: r.n_score,
            n_generate: r.n_generate,
            status: r.status.as_str(),
            error: r.error.as_deref(),
            kl_mean: r.kl_mean,
            kl_mean_ci95_low: low(r.kl_mean_ci95),
            kl_mean_ci95_high: high(r.kl_mean_ci95),
            kl_p99: r.kl_p99,
            top1_agreement: r.top1_agreement,
            top1_agreement_ci95_low: low(r.top1_agreement_ci95),
            top1_agreement_ci95_high: high(r.top1_agreement_ci95),
            delta_log_likelihood: r.delta_log_likelihood,
            delta_log_likelihood_ci95_low: low(r.delta_log_likelihood_ci95),
            delta_log_likelihood_ci95_high: high(r.delta_log_likelihood_ci95),
            perplexity_plain: r.perplexity_plain,
            perplexity: r.perplexity,
            delta_perplexity: r.delta_perplexity,
            delta_perplexity_ci95_low: low(r.delta_perplexity_ci95),
            delta_perplexity_ci95_high: high(r.delta_perplexity_ci95),
            repetition_ngram: r.repetition_ngram,
            repeated_ngram_share: r.repeated_ngram_share,
            repeated_ngram_share_plain: r.repeated_ngram_share_plain,
            first_divergence: r.first_divergence,
        }
    }
}

struct Csv;
struct Json;
struct Markdown;

impl Printer<QualityRecords> for Csv {
    fn render(&self, doc: &QualityRecords) -> Result<String> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        for r in &doc.0 {
            writer.serialize(CsvRow::from(r)).map_err(|e| Error::InvalidOption(format!("quality CSV: {e}")))?;
        }
        let bytes = writer.into_inner().map_err(|e| Error::InvalidOption(format!("quality CSV: {e}")))?;
        String::from_utf8(bytes).map_err(|e| Error::InvalidOption(format!("quality CSV: {e}")))
    }
}

impl Printer<QualityRecords> for Json {
    fn render(&self, doc: &QualityRecords) -> Result<String> {
        serde_json::to_string_pretty(&doc.0).map(|s| s + "\n").map_err(|e| Error::InvalidOption(format!("quality JSON: {e}")))
    }
}

impl Printer<QualityRecords> for Markdown {
    fn render(&self, doc: &QualityRecords) -> Result<String> {
        Ok(doc.table().markdown())
    }
}

impl Printable for QualityRecords {
    fn printer(format: Format) -> Option<Box<dyn Printer<Self>>> {
        Some(match format {
            Format::Md | Format::Table => Box::new(Markdown),
            Format::Csv => Box::new(Csv),
            Format::Json => Box::new(Json),
            Format::Jsonl => return None,
        })
    }
}

fn number(value: Option<f64>, text: impl Fn(f64) -> String) -> Cell {
    match value {
        Some(v) => Cell::number(text(v), Some(v)),
        None => Cell::text("-"),
    }
}

fn with_interval(value: Option<f64>, ci: Option<[f64; 2]>, digits: usize) -> Cell {
    number(value, |v| match ci {
        Some([low, high]) => format!("{v:.digits$} [{low:.digits$}, {high:.digits$}]"),
        None => format!("{v:.digits$}"),
    })
}

impl QualityRecords {
    /// The table `quality` prints: one row per record.
    pub fn table(&self) -> Table {
        let rs = &self.0;
        let col = |name: &str, numeric: bool, f: &dyn Fn(&QualityRecord) -> Cell| {
            Column::new(name, numeric, rs.iter().map(f).collect())
        };
        let columns = vec![
            col("engine", false, &|r| Cell::text(r.engine.clone())),
            col("kv", false, &|r| Cell::text(r.setting_label())),
            col("depth", true, &|r| Cell::number(r.depth.to_string(), Some(r.depth as f64))),
            col("KL mean (nats)", true, &|r| with_interval(r.kl_mean, r.kl_mean_ci95, 4)),
            col("KL p99", true, &|r| number(r.kl_p99, |v| format!("{v:.4}"))),
            col("top-1 %", true, &|r| {
                number(r.top1_agreement.map(|v| v * 100.0), |v| match r.top1_agreement_ci95 {
                    Some([low, high]) => format!("{v:.1} [{:.1}, {:.1}]", low * 100.0, high * 100.0),
                    None => format!("{v:.1}"),
                })
            }),
            col("Δ log-lik (nats/token)", true, &|r| with_interval(r.delta_log_likelihood, r.delta_log_likelihood_ci95, 4)),
            col("Δ ppl", true, &|r| with_interval(r.delta_perplexity, r.delta_perplexity_ci95, 3)),
            col("ppl", true, &|r| number(r.perplexity, |v| format!("{v:.2}"))),
            col(&format!("rep {REPETITION_NGRAM}-gram %"), true, &|r| {
                number(r.repeated_ngram_share.map(|v| v * 100.0), |v| format!("{v:.1}"))
            }),
            col("first divergence", true, &|r| match (&r.status, r.first_divergence) {
                (Status::Ok, Some(i)) => Cell::number(i.to_string(), Some(i as f64)),
                (Status::Ok, None) => Cell::text("none"),
                _ => Cell::text("-"),
            }),
            col("status", false, &|r| {
                Cell::text(match &r.error {
                    Some(e) => format!("{}: {e}", r.status.as_str()),
                    None => r.status.as_str().to_string(),
                })
            }),
        ];
        let first = rs.first();
        Table {
            title: first.map(|r| format!("KV-cache quality against the plain cache: {} on {}", r.model, r.text)),
            columns,
            notes: vec![
                format!(
                    "Teacher-forced over {} tokens after each depth, decode steps one token at a time; KL(plain || setting), top-1 agreement and Δ log-likelihood per scored token, 95% bootstrap intervals over tokens.",
                    first.map_or(0, |r| r.n_score)
                ),
                format!(
                    "Greedy runs of {} tokens from each depth: repeated {REPETITION_NGRAM}-gram share, and the first token where the setting's text leaves the plain cache's (none: identical).",
                    first.map_or(0, |r| r.n_generate)
                ),
            ],
        }
    }
}
