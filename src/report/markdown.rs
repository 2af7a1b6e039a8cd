//! The Markdown table of `run` results (the terminal's, and `.md` results files): the view's
//! header lines, its summary table, the extras table when there is something in it, and the
//! ratio table of a two-engine run ([`super::view`]).
use super::{
    view::{ratio_table_of, RunView},
    Append, Printer,
};
use crate::{
    bench::record::{EngineRatio, RunRecord},
    error::Result,
};

pub(super) struct Markdown;

impl Printer<[RunRecord]> for Markdown {
    fn render(&self, records: &[RunRecord]) -> Result<String> {
        let view = RunView::of(records);
        let mut text = String::new();
        for line in view.header_lines() {
            text.push_str(line);
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&view.summary.markdown());
        for table in view.extras.iter().chain(&view.ratios).chain(&view.speculative) {
            text.push('\n');
            text.push_str(&table.markdown());
        }
        Ok(text)
    }
}

/// A table of ratios under `title` (empty when there are none): per setting, the robust decode
/// rate, prompt rate, TTFT and peak memory, each a ratio of medians with its interval, read by one
/// rule (above 1 is better for the first).
pub fn ratio_table(title: &str, ratios: &[EngineRatio]) -> String {
    ratio_table_of(title, ratios).map_or_else(String::new, |table| format!("\n{}", table.markdown()))
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
