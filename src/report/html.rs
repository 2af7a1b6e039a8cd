//! The HTML report (`mlxbench report`, `run --report`): one self-contained page (inline SVG charts
//! drawn by `plotters`, inline CSS, no script, nothing fetched when viewed) from run records of
//! one or more results files: what the terminal shows ([`super::view`]: the runs' context, the
//! models, what was merged, the summary table with the headline numbers, the extras and the
//! mlxbench ÷ mlx-lm ratios), every statistic on demand (`<details>`), then charts at the page's
//! width.
//!
//! Each chart plots a metric's headline (the median over the trials, [`super::headline`])
//! against one swept setting (prompt length, depth, batch, kv-bits), one line per series, with a
//! bar from the fastest to the slowest trial. A series is every configuration equal in all other
//! settings; its label names what tells it from the others in one vocabulary (`kv none`,
//! `batch 4`, the engine, the MLX build: `MLX 0.32.2` and `MLX 0.32.4`, the run: `run 2`). A chart
//! appears only when its axis has two values or more and some series has two points; series
//! with the same points are drawn once, labelled by all of them. Each `<figure class="chart">`
//! carries `data-points`, the number of points it plots, each drawn as one `<circle>`.
use std::collections::BTreeMap;

use plotters::prelude::*;

use super::{
    headline::Headline,
    mlx::{mlx_description, MlxBuilds},
    read::protocol_known,
    runs::Runs,
    table::escape,
    view::RunView,
};
use crate::{
    bench::{ids::model_label, RunPoint, RunRecord, Status},
    config::bits_or_none,
    error::{Error, Result},
    measure::{MetricSummaries, Summary},
    units::significant_bytes,
};

/// One plotted point: the median, with the trials' range.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    x: f64,
    median: f64,
    low: f64,
    high: f64,
}

impl Point {
    fn of(x: f64, s: &Summary) -> Self {
        Point { x, median: s.median, low: s.min, high: s.max }
    }
}

#[derive(Debug, Clone)]
struct Series {
    label: String,
    points: Vec<Point>,
}

/// How the x axis reads: categories at 0, 1, 2... (the swept values, in order), or numbers.
enum XAxis {
    Categories(Vec<String>),
    Numbers,
}

struct Chart {
    title: String,
    x_desc: &'static str,
    y_desc: &'static str,
    x_axis: XAxis,
    series: Vec<Series>,
}

/// A successful record as the charts see it: with the labels of its MLX build and its run, empty
/// when every record of the report ran on one build, or no configuration ran twice.
struct Plotted<'a> {
    record: &'a RunRecord,
    mlx: String,
    run: String,
}

/// The settings that tell series apart; the swept ones can go on a chart's x axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    Model,
    Engine,
    Mlx,
    Run,
    KvBits,
    Batch,
    Depth,
    Prompt,
    Generate,
}

const SETTINGS: [Setting; 9] = [
    Setting::Model,
    Setting::Engine,
    Setting::Mlx,
    Setting::KvBits,
    Setting::Batch,
    Setting::Depth,
    Setting::Prompt,
    Setting::Generate,
    Setting::Run,
];

impl Setting {
    /// The setting's value in a label, as the tables' header lines say it: `kv 8`, `prompt 512`,
    /// `MLX 0.32.4`, `run 2`.
    fn label(self, r: &Plotted) -> String {
        let p = &r.record.point;
        match self {
            Setting::Model => model_label(&p.model),
            Setting::Engine => p.engine.to_string(),
            Setting::Mlx => r.mlx.clone(),
            Setting::Run => r.run.clone(),
            Setting::KvBits => format!("kv {}", bits_or_none(p.kv_bits)),
            Setting::Batch => format!("batch {}", p.batch),
            Setting::Depth => format!("depth {}", p.depth),
            Setting::Prompt => format!("prompt {}", p.n_prompt),
            Setting::Generate => format!("gen {}", p.n_generate),
        }
    }

    /// The labels of `settings` for `r`, comma-separated (MLX and run labels are empty when they
    /// tell nothing apart).
    fn labels(settings: &[Setting], r: &Plotted) -> String {
        settings.iter().map(|s| s.label(r)).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(", ")
    }

    /// The setting's place on its axis, ordered as a reader expects (kv-bits: none, then from
    /// the most bits to the fewest).
    fn order(self, p: &RunPoint) -> i64 {
        match self {
            Setting::KvBits => p.kv_bits.map_or(0, |b| 100 - b as i64),
            Setting::Batch => p.batch as i64,
            Setting::Depth => p.depth as i64,
            Setting::Prompt => p.n_prompt as i64,
            Setting::Generate => p.n_generate as i64,
            Setting::Model | Setting::Engine | Setting::Mlx | Setting::Run => 0,
        }
    }

    /// The value's tick label on the x axis.
    fn tick(self, r: &Plotted) -> String {
        let p = &r.record.point;
        match self {
            Setting::KvBits => bits_or_none(p.kv_bits),
            Setting::Batch => p.batch.to_string(),
            Setting::Depth => p.depth.to_string(),
            Setting::Prompt => p.n_prompt.to_string(),
            Setting::Generate => p.n_generate.to_string(),
            Setting::Model | Setting::Engine | Setting::Mlx | Setting::Run => self.label(r),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Setting::Model => "model",
            Setting::Engine => "engine",
            Setting::Mlx => "MLX",
            Setting::Run => "run",
            Setting::KvBits => "kv-bits",
            Setting::Batch => "batch",
            Setting::Depth => "depth (tokens in the cache before the prompt)",
            Setting::Prompt => "prompt length (tokens)",
            Setting::Generate => "generated tokens",
        }
    }
}

/// The y description of charts of memory, whose ticks are written in decimal units (as every report writes bytes).
const BYTES: &str = "memory";

type Metric = fn(&MetricSummaries) -> Option<&Summary>;

/// Series with the same points merged into one, labelled by all of theirs: two runs or two
/// engines that measured the same memory draw one line, not two on top of each other.
fn merge_identical(series: Vec<Series>) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for s in series {
        match out.iter_mut().find(|o| o.points == s.points) {
            Some(same) => same.label = format!("{} = {}", same.label, s.label),
            None => out.push(s),
        }
    }
    out
}

/// `metric` of the successful records against `x`, one series per combination of the other
/// settings; `None` when the axis has fewer than two values or no series has two points.
fn chart_against(records: &[Plotted], x: Setting, metric: Metric, title: &str, y_desc: &'static str) -> Option<Chart> {
    let varying: Vec<Setting> = SETTINGS
        .into_iter()
        .filter(|&s| s != x)
        .filter(|&s| records.iter().any(|r| s.label(r) != s.label(&records[0])))
        .collect();
    let mut ticks: Vec<(i64, String)> = records.iter().map(|r| (x.order(&r.record.point), x.tick(r))).collect();
    ticks.sort();
    ticks.dedup();
    if ticks.len() < 2 {
        return None;
    }
    let position = |p: &RunPoint| ticks.iter().position(|(order, _)| *order == x.order(p)).unwrap_or(0) as f64;
    let mut groups: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for r in records {
        let Some(summary) = r.record.summary.as_ref().and_then(metric) else { continue };
        groups.entry(Setting::labels(&varying, r)).or_default().push(Point::of(position(&r.record.point), summary));
    }
    if !groups.values().any(|points| points.len() >= 2) {
        return None;
    }
    let series = groups
        .into_iter()
        .map(|(label, mut points)| {
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            Series { label: if label.is_empty() { "all".into() } else { label }, points }
        })
        .collect();
    let series = merge_identical(series);
    Some(Chart {
        title: title.to_string(),
        x_desc: x.name(),
        y_desc,
        x_axis: XAxis::Categories(ticks.into_iter().map(|(_, tick)| tick).collect()),
        series,
    })
}

/// The decode rate per window of generated tokens against the context it decoded at, one series
/// per configuration (median and range over the trials of each window).
fn windows_chart(records: &[Plotted]) -> Option<Chart> {
    let mut series = Vec::new();
    for plotted in records {
        let r = plotted.record;
        let windows = r.trials.iter().map(|t| t.decode_windows.len()).min().unwrap_or(0);
        if windows < 2 {
            continue;
        }
        let points = (0..windows)
            .filter_map(|k| {
                let rates: Vec<f64> = r.trials.iter().map(|t| t.decode_windows[k].tps).collect();
                Summary::of(&rates).map(|s| Point::of(r.trials[0].decode_windows[k].context_tokens as f64, &s))
            })
            .collect::<Vec<Point>>();
        series.push((plotted, points));
    }
    // Each configuration is a series, named by the settings that tell it from the others.
    let varying: Vec<Setting> = SETTINGS
        .into_iter()
        .filter(|&s| series.iter().any(|(r, _)| s.label(r) != s.label(series[0].0)))
        .collect();
    let series: Vec<Series> = series
        .into_iter()
        .map(|(r, points)| {
            let label = Setting::labels(&varying, r);
            Series { label: if label.is_empty() { "all".into() } else { label }, points }
        })
        .collect();
    (!series.is_empty()).then(|| Chart {
        title: "decode t/s per window of generated tokens, against context".into(),
        x_desc: "context (tokens in the cache)",
        y_desc: "tokens/s",
        x_axis: XAxis::Numbers,
        series,
    })
}

/// Every chart the records give, in reading order; `mlx` are the MLX builds of the report, `runs`
/// its runs.
fn charts(records: &[RunRecord], mlx: &MlxBuilds, runs: &Runs) -> Vec<Chart> {
    let ok: Vec<Plotted> = records
        .iter()
        .enumerate()
        // Speculative points have charts of their own (against k); the others plot their baselines.
        .filter(|(_, r)| r.status == Status::Ok && r.summary.is_some() && r.point.draft.is_none())
        .map(|(i, record)| Plotted { record, mlx: mlx.label(&record.context).unwrap_or_default(), run: runs.label(i).unwrap_or_default() })
        .collect();
    if ok.is_empty() {
        return Vec::new();
    }
    // The headlines, as the tables show them; the KV cache's median beside them.
    let decode: Metric = |s| Headline::Decode.summary(s);
    let prefill: Metric = |s| Headline::Prompt.summary(s);
    let ttft: Metric = |s| Headline::Ttft.summary(s);
    let peak: Metric = |s| Headline::PeakMemory.summary(s);
    let kv: Metric = |s| s.kv_cache_bytes.as_ref();
    let (decode_name, prefill_name, ttft_name) = (Headline::Decode.name(), Headline::Prompt.name(), Headline::Ttft.name());
    let mut out = Vec::new();
    for (x, what) in [(Setting::Prompt, "prompt length"), (Setting::Depth, "depth"), (Setting::Batch, "batch")] {
        out.extend(chart_against(&ok, x, decode, &format!("{decode_name} against {what}"), "tokens/s"));
        out.extend(chart_against(&ok, x, prefill, &format!("{prefill_name} against {what}"), "tokens/s"));
    }
    out.extend(chart_against(&ok, Setting::Prompt, ttft, &format!("{ttft_name} against prompt length"), "ms"));
    out.extend(chart_against(&ok, Setting::Depth, ttft, &format!("{ttft_name} against depth"), "ms"));
    out.extend(chart_against(&ok, Setting::KvBits, decode, &format!("{decode_name} against kv-bits"), "tokens/s"));
    out.extend(chart_against(&ok, Setting::KvBits, peak, &format!("{} against kv-bits", Headline::PeakMemory.name()), BYTES));
    out.extend(chart_against(&ok, Setting::KvBits, kv, "KV cache against kv-bits", BYTES));
    out.extend(windows_chart(&ok));
    out.extend(speculative_charts(records));
    out
}

/// Speculative decoding against k (`--num-draft-tokens`): the speed-up over the same setting
/// without a draft (bar: its 95% interval) and the acceptance rate, one series per model, engine
/// and the other settings that vary; `None` without two values of k.
fn speculative_charts(records: &[RunRecord]) -> Vec<Chart> {
    let spec: Vec<(&RunRecord, usize)> = records
        .iter()
        .filter(|r| r.status == Status::Ok)
        .filter_map(|r| Some((r, r.point.draft.as_ref()?.num_draft_tokens)))
        .collect();
    let label = |r: &RunRecord| {
        let p = &r.point;
        let draft = p.draft.as_ref().map_or_else(String::new, |d| model_label(&d.draft_model));
        format!("{} ← {draft}, {}, kv {}, prompt {}, gen {}", model_label(&p.model), p.engine, bits_or_none(p.kv_bits), p.n_prompt, p.n_generate)
    };
    type Of = fn(&crate::measure::speculative::SpeculativeSummary) -> Option<(f64, f64, f64)>;
    let speedup: Of = |s| s.speedup.map(|x| s.speedup_ci95.map_or((x, x, x), |[low, high]| (x, low, high)));
    let acceptance: Of = |s| s.acceptance_rate.map(|a| (a, a, a));
    let mut out = Vec::new();
    for (title, y_desc, of) in [
        ("speculative speed-up over plain decoding against k", "speed-up (×)", speedup),
        ("draft acceptance rate against k", "accepted ÷ drafted", acceptance),
    ] {
        let mut groups: BTreeMap<String, Vec<Point>> = BTreeMap::new();
        for (r, k) in &spec {
            let Some((median, low, high)) = r.speculative.as_ref().and_then(of) else { continue };
            groups.entry(label(r)).or_default().push(Point { x: *k as f64, median, low, high });
        }
        if !groups.values().any(|points| points.len() >= 2) {
            continue;
        }
        let series = groups
            .into_iter()
            .map(|(label, mut points)| {
                points.sort_by(|a, b| a.x.total_cmp(&b.x));
                Series { label, points }
            })
            .collect();
        out.push(Chart { title: title.into(), x_desc: "k (draft tokens per verify step)", y_desc, x_axis: XAxis::Numbers, series });
    }
    out
}

/// A readable number for an axis: 1.2k, 3.4M, 5.6G.
pub(super) fn si(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = match a {
        _ if a >= 1e9 => (v / 1e9, "G"),
        _ if a >= 1e6 => (v / 1e6, "M"),
        _ if a >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

/// The chart as an SVG document.
fn svg(chart: &Chart) -> Result<String> {
    let draw_error = |e: &dyn std::fmt::Display| Error::InvalidOption(format!("drawing chart {:?}: {e}", chart.title));
    let points = chart.series.iter().flat_map(|s| &s.points);
    let (mut x_min, mut x_max, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY, 0f64);
    for p in points {
        x_min = x_min.min(p.x);
        x_max = x_max.max(p.x);
        y_max = y_max.max(p.high).max(p.median);
    }
    let (x_range, x_labels) = match &chart.x_axis {
        XAxis::Categories(ticks) => (-0.5..ticks.len() as f64 - 0.5, ticks.len()),
        XAxis::Numbers => {
            let pad = ((x_max - x_min) * 0.05).max(1.0);
            (x_min - pad..x_max + pad, 8)
        }
    };
    let y_range = 0.0..if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let mut text = String::new();
    {
        let height = 400 + 18 * chart.series.len() as u32;
        let root = SVGBackend::with_string(&mut text, (1000, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(&e))?;
        let (plot, legend) = root.split_vertically(400);
        let mut c = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| draw_error(&e))?;
        let tick = |v: &f64| match &chart.x_axis {
            XAxis::Categories(ticks) => {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 {
                    ticks.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }
            XAxis::Numbers => si(*v),
        };
        c.configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(x_labels)
            .x_label_formatter(&tick)
            .y_label_formatter(&|v| if chart.y_desc == BYTES { significant_bytes(*v) } else { si(*v) })
            .x_desc(chart.x_desc)
            .y_desc(chart.y_desc)
            .draw()
            .map_err(|e| draw_error(&e))?;
        for (i, series) in chart.series.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            let line = series.points.iter().map(|p| (p.x, p.median));
            c.draw_series(LineSeries::new(line, colour.stroke_width(2))).map_err(|e| draw_error(&e))?;
            // The trials' range, with the median as the bar's (filled) circle: one circle a point.
            let bar = |p: &Point| ErrorBar::new_vertical(p.x, p.low, p.median, p.high, colour.filled(), 8);
            c.draw_series(series.points.iter().map(bar)).map_err(|e| draw_error(&e))?;
            let y = 6 + 18 * i as i32;
            legend.draw(&Rectangle::new([(80, y + 3), (100, y + 9)], colour.filled())).map_err(|e| draw_error(&e))?;
            legend
                .draw(&Text::new(series.label.clone(), (108, y), ("sans-serif", 13).into_font()))
                .map_err(|e| draw_error(&e))?;
        }
        root.present().map_err(|e| draw_error(&e))?;
    }
    Ok(text)
}

/// The run's context as the report's first table: one row per distinct machine, MLX build,
/// commit and start (each run of merged results gets its row).
fn context_table(records: &[RunRecord], runs: &Runs) -> String {
    let mut rows: Vec<[String; 6]> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let c = &r.context;
        let trials = match protocol_known(c) {
            true => format!("{} warmup, {} repeats", c.warmup, c.repeats),
            false => "unknown (CSV keeps no warmup or repeats)".into(),
        };
        let row = [
            if runs.repeated() { runs.number(i).to_string() } else { String::new() },
            c.hardware.clone(),
            format!("{} {} ({})", mlx_description(&c.mlx_version, &c.mlx_build), c.backend, c.device),
            c.git_commit.clone(),
            c.timestamp.clone(),
            trials,
        ];
        if !rows.iter().any(|known| known[..5] == row[..5]) {
            rows.push(row);
        }
    }
    let first = usize::from(!runs.repeated());
    let headers = ["run", "hardware", "MLX", "commit", "started", "trials"];
    let mut html = String::from("<table class=\"context\"><tr>");
    for h in &headers[first..] {
        html.push_str(&format!("<th class=\"text\">{h}</th>"));
    }
    html.push_str("</tr>\n");
    for row in &rows {
        html.push_str("<tr>");
        for value in &row[first..] {
            html.push_str(&format!("<td class=\"text\">{}</td>", escape(value)));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    html
}

pub(super) const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}caption{text-align:left;font-weight:600;padding:.3em 0}\
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}\
th{background:#f3f3f3;white-space:normal;vertical-align:bottom}\
td.text,th.text{text-align:left}small{color:#777}p.note,p.header{margin:.3em 0;font-size:14px}p.note{color:#555}\
figure{margin:2em 0}figcaption{font-weight:600;margin-bottom:.5em}figure.chart svg{width:100%;height:auto}\
details{margin:1em 0}summary{cursor:pointer;font-weight:600}\
table.context td{white-space:normal}.failed{color:#a00}.wide{overflow-x:auto}";

/// The report page of `records`, merged from `sources` (each results file's name and how many
/// records it held; empty when the records came from elsewhere).
pub fn render_html(records: &[RunRecord], sources: &[(String, usize)]) -> Result<String> {
    if records.is_empty() {
        return Err(Error::InvalidOption("no results to report".into()));
    }
    let mlx = MlxBuilds::of(records.iter().map(|r| &r.context));
    let runs = Runs::of(records);
    let view = RunView::of(records);
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mlxbench report</title>\
         <style>{STYLE}</style></head><body>\n<h1>mlxbench report</h1>\n"
    );
    page.push_str(&context_table(records, &runs));
    if sources.len() > 1 {
        let files: Vec<String> = sources.iter().map(|(name, n)| format!("{name} ({n} configurations)")).collect();
        page.push_str(&format!("<p class=\"header\">Merged from {} results files: {}.</p>\n", sources.len(), escape(&files.join(", "))));
    }
    for line in view.model_lines.iter().chain(&view.same_line).chain(&view.merged_line) {
        page.push_str(&format!("<p class=\"header\">{}</p>\n", escape(line)));
    }

    page.push_str("<h2>Summary</h2>\n");
    page.push_str(&view.summary.html("summary"));
    if let Some(ratios) = &view.ratios {
        page.push_str(&ratios.html("ratios"));
    }
    if let Some(extras) = &view.extras {
        page.push_str(&extras.html("extras"));
    }
    if let Some(speculative) = &view.speculative {
        page.push_str(&speculative.html("speculative"));
    }
    page.push_str("<details><summary>Every statistic per configuration</summary>\n");
    page.push_str(&view.statistics.html("statistics"));
    page.push_str("</details>\n");

    let charts = charts(records, &mlx, &runs);
    page.push_str("<h2>Charts</h2>\n");
    if charts.is_empty() {
        page.push_str("<p>No setting was swept over two values or more with results, so there is nothing to plot.</p>\n");
    } else {
        page.push_str(
            "<p>Each point is the median over the trials (decode t/s: the robust rate, as in the tables); \
             its bar runs from the slowest to the fastest trial.</p>\n",
        );
    }
    for chart in &charts {
        let points: usize = chart.series.iter().map(|s| s.points.len()).sum();
        page.push_str(&format!(
            "<figure class=\"chart\" data-points=\"{points}\"><figcaption>{}</figcaption>\n{}</figure>\n",
            escape(&chart.title),
            svg(chart)?
        ));
    }
    page.push_str("</body></html>\n");
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_numbers_read_short() {
        assert_eq!(si(1234.0), "1234");
        assert_eq!(si(12_345.0), "12.35k");
        assert_eq!(si(2_000_000.0), "2M");
        assert_eq!(si(1.5e9), "1.5G");
        assert_eq!(si(0.25), "0.25");
    }
}
