//! The KV-cache decision, one table and one figure per model: for each kv-bits setting, side by
//! side, decode and prompt speed and peak memory at each context `mlxbench run` measured, the
//! quality against the plain cache at each depth `mlxbench quality` scored (mean KL divergence,
//! top-1 agreement), and the longest context that fit `mlxbench capacity`'s budget. It only
//! reads records: the runs' headline numbers ([`super::headline`]), the quality records' and
//! the capacity records' own fields.
use std::path::Path;

use serde::Deserialize;

use super::{
    headline::Headline,
    table::{escape, Cell, Column, Table},
};
use crate::{
    bench::{capacity::{CapacityRecord, CapacityReport}, ids::model_label, Engine, RunRecord, Status},
    config::bits_or_none,
    error::{Error, Result},
    units::human_bytes,
};

/// What this view reads of a quality record (`mlxbench quality`'s JSON array; other fields are
/// ignored). Field names are the quality record's own.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QualityEntry {
    #[serde(default = "default_engine")]
    pub engine: String,
    pub model: String,
    pub kv_bits: Option<i32>,
    #[serde(default)]
    pub max_kv_size: Option<i32>,
    pub depth: usize,
    pub status: Status,
    pub kl_mean: Option<f64>,
    pub top1_agreement: Option<f64>,
}

fn default_engine() -> String {
    Engine::Mlxbench.to_string()
}

/// The records of issue 22's three commands, read from their files.
#[derive(Debug, Clone, Default)]
pub struct KvInputs {
    pub runs: Vec<RunRecord>,
    pub quality: Vec<QualityEntry>,
    pub capacity: Vec<CapacityRecord>,
}

/// A JSON file of quality or capacity records (`None`: it holds neither, e.g. `run` results).
pub fn read_kv_file(path: &Path) -> Result<Option<(Vec<QualityEntry>, Vec<CapacityRecord>)>> {
    if !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    if let Ok(report) = serde_json::from_str::<CapacityReport>(&text) {
        return Ok(Some((Vec::new(), report.capacity)));
    }
    match serde_json::from_str::<Vec<QualityEntry>>(&text) {
        Ok(quality) if !quality.is_empty() => Ok(Some((quality, Vec::new()))),
        _ => Ok(None),
    }
}

/// One model's table: a row per kv-bits setting.
#[derive(Debug, Clone, PartialEq)]
pub struct KvChoice {
    pub model: String,
    pub table: Table,
    /// Per kv setting (in row order): its label, and per context the decode rate, for the figure.
    pub decode: Vec<(String, Vec<(usize, f64)>)>,
    /// Per kv setting: the longest context that fit, for the figure.
    pub longest: Vec<(String, Option<usize>)>,
}

fn sorted_distinct<T: Ord + Clone>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = items.collect();
    v.sort();
    v.dedup();
    v
}

/// The context a run record measured speed at: depth plus prompt.
fn context_of(r: &RunRecord) -> usize {
    r.point.depth + r.point.n_prompt
}

/// Every model's table (models by their short name, `ids::model_label`), in the order they first appear. Speed comes from mlxbench-engine
/// records of one sequence (batch 1); quality from the mlxbench engine with an unbounded cache;
/// capacity at batch 1. A cell with nothing measured is `-`.
pub fn kv_choices(inputs: &KvInputs) -> Vec<KvChoice> {
    let runs: Vec<&RunRecord> =
        inputs.runs.iter().filter(|r| r.point.engine == Engine::Mlxbench && r.point.batch == 1).collect();
    let quality: Vec<&QualityEntry> = inputs
        .quality
        .iter()
        .filter(|q| q.engine == Engine::Mlxbench.to_string() && q.max_kv_size.is_none())
        .collect();
    let capacity: Vec<&CapacityRecord> = inputs.capacity.iter().filter(|c| c.batch == 1).collect();
    // A model is known by its short name: one command may have been given `target/models/m`, another
    // its absolute path.
    let mut models: Vec<String> = Vec::new();
    for m in runs.iter().map(|r| &r.point.model).chain(quality.iter().map(|q| &q.model)).chain(capacity.iter().map(|c| &c.model)) {
        let label = model_label(m);
        if !models.contains(&label) {
            models.push(label);
        }
    }
    models
        .into_iter()
        .map(|model| {
            let runs: Vec<&RunRecord> = runs.iter().copied().filter(|r| model_label(&r.point.model) == model).collect();
            let quality: Vec<&QualityEntry> = quality.iter().copied().filter(|q| model_label(&q.model) == model).collect();
            let capacity: Vec<&CapacityRecord> = capacity.iter().copied().filter(|c| model_label(&c.model) == model).collect();
            choice_of(model, &runs, &quality, &capacity)
        })
        .collect()
}

fn choice_of(model: String, runs: &[&RunRecord], quality: &[&QualityEntry], capacity: &[&CapacityRecord]) -> KvChoice {
    // `none` first, then the bits from most to fewest.
    let mut kvs = sorted_distinct(
        runs.iter().map(|r| r.point.kv_bits).chain(quality.iter().map(|q| q.kv_bits)).chain(capacity.iter().map(|c| c.kv_bits)),
    );
    kvs.sort_by_key(|k| k.map_or(i32::MIN, |b| -b));
    let contexts = sorted_distinct(runs.iter().map(|r| context_of(r)));
    let depths = sorted_distinct(quality.iter().map(|q| q.depth));
    // The last record of a setting wins (a later run of the same setting replaces an earlier one).
    let run_at = |kv: Option<i32>, context: usize| runs.iter().rev().find(|r| r.point.kv_bits == kv && context_of(r) == context);
    let quality_at = |kv: Option<i32>, depth: usize| quality.iter().rev().find(|q| q.kv_bits == kv && q.depth == depth);
    let capacity_of = |kv: Option<i32>| capacity.iter().rev().find(|c| c.kv_bits == kv);

    let mut columns = vec![Column::new("kv", false, kvs.iter().map(|&k| Cell::text(bits_or_none(k))).collect())];
    let number = |value: Option<f64>, show: &dyn Fn(f64) -> String| Cell::number(value.map_or("-".into(), show), value);
    for &context in &contexts {
        let speed = |kv: Option<i32>, headline: Headline| {
            let r = run_at(kv, context)?;
            match r.status {
                Status::Ok => headline.value(r.summary.as_ref()).map(Ok),
                status => Some(Err(status)),
            }
        };
        for headline in [Headline::Decode, Headline::Prompt, Headline::PeakMemory] {
            let cells = kvs
                .iter()
                .map(|&kv| match speed(kv, headline) {
                    Some(Ok(v)) => Cell::number(headline.show(v), Some(v)),
                    Some(Err(status)) => Cell::text(status.as_str()),
                    None => Cell::text("-"),
                })
                .collect();
            columns.push(Column::new(format!("{} @{context}", headline.name()), true, cells));
        }
    }
    for &depth in &depths {
        let ok = |kv: Option<i32>| quality_at(kv, depth).filter(|q| q.status == Status::Ok);
        columns.push(Column::new(
            format!("KL mean @{depth}"),
            true,
            kvs.iter().map(|&kv| number(ok(kv).and_then(|q| q.kl_mean), &|v| format!("{v:.5}"))).collect(),
        ));
        columns.push(Column::new(
            format!("top-1 @{depth}"),
            true,
            kvs.iter().map(|&kv| number(ok(kv).and_then(|q| q.top1_agreement), &|v| format!("{:.1}%", v * 100.0))).collect(),
        ));
    }
    let budgets = sorted_distinct(capacity.iter().map(|c| (c.budget_bytes, c.budget_source.describe())));
    if !capacity.is_empty() {
        let cells = kvs
            .iter()
            .map(|&kv| match capacity_of(kv) {
                Some(c) if c.status() == "ok" && c.longest_n_prompt.is_none() => Cell::text("nothing fits"),
                Some(c) if c.status() == "ok" || c.longest_n_prompt.is_some() => {
                    let mark = if c.status() == "ok" { "" } else { " (incomplete)" };
                    number(c.longest_n_prompt.map(|l| l as f64), &|l| format!("{l:.0}{mark}"))
                }
                Some(c) => Cell::text(c.status()),
                None => Cell::text("-"),
            })
            .collect();
        columns.push(Column::new("longest context", true, cells));
        columns.push(Column::new(
            "peak at longest",
            true,
            kvs.iter()
                .map(|&kv| {
                    let peak = capacity_of(kv).and_then(|c| c.at_longest).map(|m| m.peak_memory_bytes as f64);
                    number(peak, &|p| human_bytes(p as u64))
                })
                .collect(),
        ));
    }
    let mut notes = Vec::new();
    if !contexts.is_empty() {
        notes.push("@N: decode t/s (batch ÷ median inter-token latency), prompt t/s and peak memory at N tokens of context (medians over the trials of `mlxbench run`);".to_string());
    }
    if !depths.is_empty() {
        notes.push("KL mean (nats) and top-1 agreement against the plain cache at depth N (`mlxbench quality`);".into());
    }
    if !budgets.is_empty() {
        let budgets: Vec<String> = budgets.iter().map(|(b, source)| format!("{} ({source})", human_bytes(*b))).collect();
        notes.push(format!(
            "longest context: tokens per sequence that ran (prefill + decode steps) within {} (`mlxbench capacity`).",
            budgets.join(", ")
        ));
    }
    let label = |k: Option<i32>| format!("kv {}", bits_or_none(k));
    let decode = kvs
        .iter()
        .map(|&kv| {
            let points = contexts
                .iter()
                .filter_map(|&c| {
                    let r = run_at(kv, c).filter(|r| r.status == Status::Ok)?;
                    Some((c, Headline::Decode.value(r.summary.as_ref())?))
                })
                .collect();
            (label(kv), points)
        })
        .collect();
    let longest = kvs.iter().map(|&kv| (label(kv), capacity_of(kv).and_then(|c| c.longest_n_prompt))).collect();
    KvChoice {
        table: Table { title: Some(format!("KV cache: {}", model_label(&model))), columns, notes },
        model,
        decode,
        longest,
    }
}

/// Every model's table as Markdown.
pub fn kv_markdown(choices: &[KvChoice]) -> String {
    choices.iter().map(|c| c.table.markdown()).collect::<Vec<_>>().join("\n")
}

/// The figure of one model: per kv setting a bar of the longest context that fit (left) and its
/// decode rate at each context (right, one bar per context), as inline SVG. `data-bars` counts
/// the bars drawn, each one `<rect class="bar">`.
pub fn kv_figure(choice: &KvChoice) -> String {
    const ROW: u32 = 26;
    const LABEL: u32 = 90;
    const PANEL: u32 = 380;
    let contexts = sorted_distinct(choice.decode.iter().flat_map(|(_, points)| points.iter().map(|&(c, _)| c)));
    let per_row = 1 + contexts.len().max(1) as u32;
    let height = 40 + ROW * per_row * choice.longest.len() as u32;
    let width = LABEL + 2 * PANEL + 60;
    let max_longest = choice.longest.iter().filter_map(|(_, l)| *l).max().unwrap_or(0).max(1) as f64;
    let max_decode = choice.decode.iter().flat_map(|(_, p)| p.iter().map(|&(_, v)| v)).fold(0.0, f64::max).max(1e-9);
    let mut bars = 0;
    let mut svg = String::new();
    let mut bar = |svg: &mut String, x: u32, y: u32, w: f64, colour: &str, text: String| {
        bars += 1;
        svg.push_str(&format!(
            "<rect class=\"bar\" x=\"{x}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{}</text>",
            w.max(1.0),
            ROW - 8,
            x as f64 + w.max(1.0) + 4.0,
            y + ROW - 13,
            escape(&text)
        ));
    };
    let colours = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"];
    for (i, ((label, longest), (_, decode))) in choice.longest.iter().zip(&choice.decode).enumerate() {
        let y0 = 30 + ROW * per_row * i as u32;
        svg.push_str(&format!("<text x=\"4\" y=\"{}\" font-size=\"13\" font-weight=\"600\">{}</text>", y0 + ROW - 12, escape(label)));
        match longest {
            Some(l) => bar(&mut svg, LABEL, y0, *l as f64 / max_longest * (PANEL - 80) as f64, "#888", format!("{l} tokens")),
            None => svg.push_str(&format!("<text x=\"{LABEL}\" y=\"{}\" font-size=\"12\">-</text>", y0 + ROW - 13)),
        }
        for (j, &context) in contexts.iter().enumerate() {
            let y = y0 + ROW * j as u32;
            let colour = colours[j % colours.len()];
            match decode.iter().find(|&&(c, _)| c == context) {
                Some(&(_, v)) => bar(&mut svg, LABEL + PANEL, y, v / max_decode * (PANEL - 80) as f64, colour, format!("{v:.1} t/s @{context}")),
                None => svg.push_str(&format!("<text x=\"{}\" y=\"{}\" font-size=\"12\">- @{context}</text>", LABEL + PANEL, y + ROW - 13)),
            }
        }
    }
    format!(
        "<figure class=\"kv-choice\" data-bars=\"{bars}\"><figcaption>{}: longest context that fits (left) and decode t/s by context (right), per KV setting</figcaption>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\">\
         <text x=\"{LABEL}\" y=\"16\" font-size=\"13\">longest context (tokens)</text><text x=\"{}\" y=\"16\" font-size=\"13\">decode t/s</text>{svg}</svg></figure>\n",
        escape(&model_label(&choice.model)),
        LABEL + PANEL
    )
}

/// The report's section of every model: its table, then its figure.
pub fn kv_section(choices: &[KvChoice]) -> String {
    let mut html = String::from("<h2>KV cache: speed, memory, quality and the longest context</h2>\n");
    for choice in choices {
        html.push_str(&choice.table.html("kv-choice"));
        html.push_str(&kv_figure(choice));
    }
    html
}

/// `page` (an HTML report) with the KV section before its end; a page of its own when there is
/// no report (quality and capacity results without `run` results).
pub fn with_kv_section(page: Option<String>, choices: &[KvChoice]) -> String {
    if choices.is_empty() {
        return page.unwrap_or_default();
    }
    let section = kv_section(choices);
    match page {
        Some(page) => match page.rfind("</body>") {
            Some(end) => format!("{}{section}{}", &page[..end], &page[end..]),
            None => page + &section,
        },
        None => format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mlxbench report</title></head><body>\n\
             <h1>mlxbench report</h1>\n{section}</body></html>\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        bench::{
            capacity::{BudgetSource, ProbeMeasure},
            RunContext, RunPoint,
        },
        measure::{MemoryBreakdown, TrialMemory, TrialMetrics, TrialTimings},
    };
    use std::time::Duration;

    fn run(kv: Option<i32>, n_prompt: usize, gap_ms: u64) -> RunRecord {
        let timings = TrialTimings {
            batch: 1,
            n_context: 0,
            n_prompt,
            n_prefill: n_prompt - 1,
            prefill_done: Duration::from_millis(100),
            token_times: (0..5).map(|i| Duration::from_millis(110 + gap_ms * i)).collect(),
            built_times: Vec::new(),
            queued_times: Vec::new(),
        };
        let trial = TrialMetrics::from_timings(&timings, TrialMemory { peak_memory_bytes: 2_000_000_000, ..TrialMemory::default() });
        let point = RunPoint { model: "m".into(), kv_bits: kv, batch: 1, depth: 0, n_prompt, n_generate: 5, draft: None, engine: Engine::Mlxbench };
        RunRecord::new(point, RunContext::for_tests(), Ok(vec![trial]), None, None)
    }

    fn capacity(kv: Option<i32>, longest: usize) -> CapacityRecord {
        CapacityRecord {
            model: "m".into(),
            kv_bits: kv,
            kv_group_size: 64,
            batch: 1,
            n_generate: 4,
            budget_bytes: 12_000_000_000,
            budget_source: BudgetSource::MemoryLimit,
            step_tokens: 256,
            max_n_prompt: 1 << 20,
            longest_n_prompt: Some(longest),
            at_longest: Some(ProbeMeasure {
                peak_memory_bytes: 11_900_000_000,
                memory_breakdown: MemoryBreakdown::default(),
                prompt_tps: None,
                generation_tps: None,
            }),
            first_failure: None,
            complete: true,
            stopped: None,
            elapsed_s: 1.0,
            probes: Vec::new(),
            context: RunContext::for_tests(),
        }
    }

    #[test]
    fn one_row_per_kv_setting_with_speed_quality_and_capacity_side_by_side() {
        let quality = |kv, kl: f64, top1: f64| QualityEntry {
            engine: "mlxbench".into(),
            model: "models/m".into(), // the same model by another path: joined by its name
            kv_bits: kv,
            max_kv_size: None,
            depth: 512,
            status: Status::Ok,
            kl_mean: Some(kl),
            top1_agreement: Some(top1),
        };
        let inputs = KvInputs {
            runs: vec![run(None, 4096, 10), run(Some(4), 4096, 20), run(Some(8), 4096, 8), run(None, 32768, 40)],
            quality: vec![quality(None, 0.0, 1.0), quality(Some(8), 0.0012, 0.99), quality(Some(4), 0.05, 0.9)],
            capacity: vec![capacity(None, 50_176), capacity(Some(8), 90_112)],
        };
        let choices = kv_choices(&inputs);
        let [choice] = &choices[..] else { panic!("one model") };
        let t = &choice.table;
        let texts = |name: &str| t.column(name).unwrap_or_else(|| panic!("{name}")).cells.iter().map(|c| c.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts("kv"), ["none", "8", "4"]);
        // 5 tokens 10 ms apart: 100 t/s; 8 ms: 125; 20 ms: 50.
        assert_eq!(texts("decode t/s @4096"), ["100.0", "125.0", "50.0"]);
        assert_eq!(texts("decode t/s @32768"), ["25.0", "-", "-"]);
        assert_eq!(texts("peak memory @4096"), ["2.000 GB", "2.000 GB", "2.000 GB"]);
        assert_eq!(texts("KL mean @512"), ["0.00000", "0.00120", "0.05000"]);
        assert_eq!(texts("top-1 @512"), ["100.0%", "99.0%", "90.0%"]);
        assert_eq!(texts("longest context"), ["50176", "90112", "-"]);
        assert_eq!(texts("peak at longest"), ["11.900 GB", "11.900 GB", "-"]);
        let md = kv_markdown(&choices);
        assert!(md.contains("| none |") && md.contains("12.000 GB (--memory-limit)"), "{md}");
        let figure = kv_figure(choice);
        // Two longest-context bars and four decode bars (none at two contexts, 8 and 4 at one).
        assert!(figure.contains("data-bars=\"6\""), "{figure}");
        assert_eq!(figure.matches("<rect class=\"bar\"").count(), 6);
        let page = with_kv_section(Some("<html><body><h1>r</h1></body></html>".into()), &choices);
        assert!(page.find("<h1>r</h1>").unwrap() < page.find("data-bars").unwrap() && page.ends_with("</body></html>"));
    }
}
