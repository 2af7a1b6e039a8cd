//! Printers of a [`Comparison`]: an aligned table for terminals, Markdown for CI summaries and
//! pull requests (GitHub-flavoured, for `$GITHUB_STEP_SUMMARY` or a PR comment), JSON for machines
//! (the comparison plus `failed` and the verdict counts). Table and Markdown share one list of
//! cells.
use std::fmt::Write;

use super::{Comparison, Metric, Row, Verdict};
use crate::{
    error::Result,
    report::{Format, Printable, Printer},
    units::{significant, significant_bytes, significant_time},
};

impl Printable for Comparison {
    fn printer(format: Format) -> Option<Box<dyn Printer<Self>>> {
        Some(match format {
            Format::Table => Box::new(TablePrinter),
            Format::Md => Box::new(MarkdownPrinter),
            Format::Json => Box::new(JsonPrinter),
            Format::Csv | Format::Jsonl => return None,
        })
    }
}

pub struct TablePrinter;
pub struct MarkdownPrinter;
pub struct JsonPrinter;

const COLUMNS: usize = 7;

fn header(comparison: &Comparison) -> [String; COLUMNS] {
    [
        "benchmark".to_owned(),
        "metric".to_owned(),
        comparison.baseline.clone(),
        comparison.against.clone(),
        "change".to_owned(),
        "95% CI / range".to_owned(),
        "verdict".to_owned(),
    ]
}

/// The displayed lines of a row: the row itself, then tokens/s under a time row that has it.
fn lines(row: &Row) -> Vec<[String; COLUMNS]> {
    let verdict = verdict_label(row.verdict);
    let (metric, baseline, now, interval) = match row.metric {
        Metric::Time => ("time", significant_time(row.baseline), significant_time(row.now), interval(row.ci_low_pct, row.ci_high_pct)),
        Metric::PeakMemory => (
            "peak memory",
            significant_bytes(row.baseline),
            significant_bytes(row.now),
            format!("range {}", interval(row.ci_low_pct, row.ci_high_pct)),
        ),
    };
    let mut lines = vec![[
        row.id.clone(),
        metric.to_owned(),
        baseline,
        now,
        percent(row.change_pct),
        interval,
        verdict.to_owned(),
    ]];
    if let Some(tps) = &row.tokens_per_s {
        lines.push([
            String::new(),
            "tokens/s".to_owned(),
            format!("{} tok/s", significant(tps.baseline_tps)),
            format!("{} tok/s", significant(tps.now_tps)),
            percent(tps.change_pct),
            self::interval(tps.ci_low_pct, tps.ci_high_pct),
            verdict.to_owned(),
        ]);
    }
    lines
}

fn verdict_label(verdict: Verdict) -> &'static str {
    match verdict {
        // Upper case so the one that matters stands out in a long table.
        Verdict::Regressed => "REGRESSED",
        other => other.label(),
    }
}

fn summary(comparison: &Comparison) -> String {
    let mut summary = format!(
        "{}: {} regressed, {} improved, {} unchanged",
        if comparison.failed() { "FAILED" } else { "passed" },
        comparison.count(Verdict::Regressed),
        comparison.count(Verdict::Improved),
        comparison.count(Verdict::Unchanged),
    );
    if !comparison.problems.is_empty() {
        summary.push_str(&format!(
            ", {} missing in {} ({})",
            comparison.problems.len(),
            comparison.against,
            if comparison.strict { "fails in strict mode" } else { "not failing without --strict" }
        ));
    }
    summary.push_str(&format!(
        " ({} vs {}, threshold {}%)",
        comparison.against, comparison.baseline, comparison.threshold_pct
    ));
    summary
}

impl Printer<Comparison> for TablePrinter {
    fn render(&self, comparison: &Comparison) -> Result<String> {
        let mut out = String::new();
        if let Some(mlx) = &comparison.different_mlx {
            writeln!(out, "{mlx}\n")?;
        }
        let mut table = vec![header(comparison)];
        table.extend(comparison.rows.iter().flat_map(lines));
        let mut widths = [0; COLUMNS];
        for line in &table {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for line in &table {
            let mut text = String::new();
            for (i, (cell, width)) in line.iter().zip(widths).enumerate() {
                // Text columns align left, numbers right.
                let cell = if matches!(i, 0 | 1 | 6) { format!("{cell:<width$}") } else { format!("{cell:>width$}") };
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(&cell);
            }
            writeln!(out, "{}", text.trim_end())?;
        }
        for (title, list) in [("problems", &comparison.problems), ("notes", &comparison.notes)] {
            if !list.is_empty() {
                writeln!(out, "\n{title}:")?;
                for item in list {
                    writeln!(out, "  - {item}")?;
                }
            }
        }
        writeln!(out, "\n{}", summary(comparison))?;
        Ok(out)
    }
}

/// A Markdown table cell: `|` would end the cell; ids go in code spans so `*` and `_` stay
/// literal (a code span cannot hold a backtick, so such an id is left as text).
fn markdown_cell(text: &str, code: bool) -> String {
    let escaped = text.replace('|', "\\|");
    if code && !text.is_empty() && !text.contains('`') {
        format!("`{escaped}`")
    } else {
        escaped
    }
}

impl Printer<Comparison> for MarkdownPrinter {
    fn render(&self, comparison: &Comparison) -> Result<String> {
        let mut out = String::new();
        writeln!(out, "**Regression gate {}**\n", summary(comparison))?;
        if let Some(mlx) = &comparison.different_mlx {
            writeln!(out, "{}\n", mlx.replace('|', "\\|"))?;
        }
        let row = |cells: &[String; COLUMNS], code_first: bool| {
            let cells: Vec<String> =
                cells.iter().enumerate().map(|(i, cell)| markdown_cell(cell, code_first && i == 0)).collect();
            format!("| {} |", cells.join(" | "))
        };
        writeln!(out, "{}", row(&header(comparison), false))?;
        writeln!(out, "|---|---|--:|--:|--:|--:|---|")?;
        for line in comparison.rows.iter().flat_map(lines) {
            writeln!(out, "{}", row(&line, true))?;
        }
        for (title, list) in [("Problems", &comparison.problems), ("Notes", &comparison.notes)] {
            if !list.is_empty() {
                writeln!(out, "\n{title}:\n")?;
                for item in list {
                    writeln!(out, "- {}", item.replace('|', "\\|"))?;
                }
            }
        }
        Ok(out)
    }
}

impl Printer<Comparison> for JsonPrinter {
    fn render(&self, comparison: &Comparison) -> Result<String> {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            failed: bool,
            regressed: usize,
            improved: usize,
            unchanged: usize,
            #[serde(flatten)]
            comparison: &'a Comparison,
        }
        let report = Report {
            failed: comparison.failed(),
            regressed: comparison.count(Verdict::Regressed),
            improved: comparison.count(Verdict::Improved),
            unchanged: comparison.count(Verdict::Unchanged),
            comparison,
        };
        let json = serde_json::to_string_pretty(&report).map_err(|e| crate::Error::InvalidOption(e.to_string()))?;
        Ok(json + "\n")
    }
}

fn percent(pct: f64) -> String {
    format!("{pct:+.1}%")
}

fn interval(low_pct: f64, high_pct: f64) -> String {
    format!("[{}, {}]", percent(low_pct), percent(high_pct))
}

