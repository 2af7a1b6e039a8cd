//! The speculative-decoding table of `run` results: per configuration with a draft, its
//! acceptance (overall, and by draft position), the accepted length per verify step, the draft's
//! share of the step time, the measured speed-up over the same setting without a draft with its
//! interval, and the speed-up the verify-cost curve predicts (see `measure::speculative`).
use super::table::{Cell, Column, Table};
use crate::{bench::record::RunRecord, measure::speculative::SpeculativeSummary};

/// The table, `None` when no record has a draft. `settings` are the rows' setting columns.
pub fn speculative_table(records: &[RunRecord], settings: Vec<Column>) -> Option<Table> {
    if !records.iter().any(|r| r.point.draft.is_some()) {
        return None;
    }
    let number = |x: Option<f64>, decimals: usize| Cell::number(x.map_or_else(|| "-".into(), |x| format!("{x:.decimals$}")), x);
    fn spec(r: &RunRecord) -> Option<&SpeculativeSummary> {
        r.speculative.as_ref()
    }
    let cells = |f: &dyn Fn(&RunRecord) -> Cell| records.iter().map(f).collect::<Vec<_>>();
    let mut columns = settings;
    columns.push(Column::new(
        "k",
        true,
        cells(&|r| match &r.point.draft {
            Some(d) => Cell::number(d.num_draft_tokens.to_string(), Some(d.num_draft_tokens as f64)),
            None => Cell::text("-"),
        }),
    ));
    columns.push(Column::new("acceptance", true, cells(&|r| number(spec(r).and_then(|s| s.acceptance_rate), 3))));
    columns.push(Column::new("accepted length", true, cells(&|r| number(spec(r).and_then(|s| s.mean_accepted_length), 2))));
    columns.push(Column::new(
        "acceptance by position",
        false,
        cells(&|r| {
            Cell::text(spec(r).map_or_else(
                || "-".into(),
                |s| s.acceptance_by_position.iter().map(|a| a.map_or_else(|| "-".into(), |a| format!("{a:.2}"))).collect::<Vec<_>>().join(" "),
            ))
        }),
    ));
    columns.push(Column::new("draft share", true, cells(&|r| number(spec(r).and_then(|s| s.draft_time_share), 3))));
    columns.push(Column::new(
        "speed-up [95%]",
        true,
        cells(&|r| match spec(r).and_then(|s| Some((s.speedup?, s.speedup_ci95))) {
            Some((x, Some([low, high]))) => Cell::number(format!("{x:.2} [{low:.2}, {high:.2}]"), Some(x)),
            Some((x, None)) => Cell::number(format!("{x:.2}"), Some(x)),
            None => Cell::text("-"),
        }),
    ));
    columns.push(Column::new("predicted speed-up", true, cells(&|r| number(spec(r).and_then(|s| s.predicted_speedup), 2))));
    columns.push(Column::new(
        "verify ms T=1…k+1",
        false,
        cells(&|r| {
            Cell::text(match spec(r) {
                Some(s) if !s.verify_cost_ms.is_empty() => {
                    s.verify_cost_ms.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(" ")
                }
                _ => "-".into(),
            })
        }),
    ));
    let notes = vec![
        "acceptance: accepted ÷ drafted tokens; accepted length: tokens per verify step, the target's bonus token included (k + 1 at most);".into(),
        "speed-up: median decode t/s after the first verify step over the same setting's generation t/s without a draft (trials interleaved), with its 95% bootstrap interval;".into(),
        "predicted: E(α, k) × V(1) ÷ (k × draft ms per token + V(k+1)), E = (1 − α^(k+1)) ÷ (1 − α), V = the verify-cost curve (README).".into(),
    ];
    Some(Table { title: Some("Speculative decoding".into()), columns, notes })
}
