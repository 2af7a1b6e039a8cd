//! Reports: the output formats of every command, one [`Printer`] interface for every document
//! (run records here, the gate's comparison in `gate`), and the results files of `mlxbench run`
//! ([`file`]). Printers never measure. Records print as CSV ([`csv_rows`]), JSON ([`json`]),
//! Markdown ([`markdown`]) and HTML ([`html`]); the Markdown and HTML views share one reading of
//! the records ([`view`]), the one number per metric ([`headline`]) and the runs of merged results
//! ([`runs`]).
pub mod csv_rows;
pub mod export;
pub mod file;
pub mod headline;
pub mod html;
pub mod json;
pub mod kv_choice;
pub mod markdown;
pub mod mlx;
pub mod read;
pub mod runs;
pub mod serve_html;
pub mod speculative;
pub mod table;
pub mod view;

use std::path::Path;

pub use csv_rows::{csv_header, CsvRow};
pub use file::{write_atomically, ResultsFile};
pub use json::JsonReport;
pub use markdown::ratio_table;
pub use mlx::{mlx_description, MlxBuilds};

use crate::{
    bench::record::RunRecord,
    choice::choice,
    error::{Error, Result},
};
use csv_rows::Csv;
use json::{Json, JsonLines};
use markdown::Markdown;

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
    Md => ("md", "A Markdown table (mlxbench run: one row per configuration, medians; decode t/s with its interval)", ["markdown"]),
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

