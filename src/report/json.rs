//! JSON results: one document of every record (`mlxbench-run-v1`), or one record per line.
use serde::{Deserialize, Serialize};

use super::{invalid, Append, Printer};
use crate::{bench::record::RunRecord, error::Result};

/// The JSON document: every record of one or more invocations.
#[derive(Debug, Serialize, Deserialize)]
pub struct JsonReport {
    /// Identifies the format for tools reading it back.
    pub format: String,
    pub records: Vec<RunRecord>,
}

const JSON_FORMAT: &str = "mlxbench-run-v1";

pub(super) struct Json;

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

pub(super) struct JsonLines;

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

