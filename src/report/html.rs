//! The HTML report (`mlxbench report`, `run --report`): one self-contained page (inline SVG charts
//! drawn by `plotters`, inline CSS, no script, nothing fetched when viewed) from run records of
//! one or more results files: the runs' context, a summary table, then charts.
//!
//! Each chart plots a metric's median over the trials against one swept setting (prompt length,
//! depth, batch, kv-bits), one line per series, with a bar from the fastest to the slowest trial.
//! A series is every configuration equal in all other settings; its label names what tells it
//! from the others (model, engine, kv-bits, and any other setting that varies). A chart appears
//! only when some series has two points or more on it. Each `<figure class="chart">` carries
//! `data-points`, the number of points it plots, each drawn as one `<circle>`.
use std::collections::BTreeMap;

use plotters::prelude::*;

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

/// The swept settings a chart can put on its x axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    Model,
    Engine,
    KvBits,
    Batch,
    Depth,
    Prompt,
    Generate,
}

const SETTINGS: [Setting; 7] =
    [Setting::Model, Setting::Engine, Setting::KvBits, Setting::Batch, Setting::Depth, Setting::Prompt, Setting::Generate];

impl Setting {
    /// The setting's value in a label, e.g. `kv8`, `p512`.
    fn label(self, p: &RunPoint) -> String {
        match self {
            Setting::Model => model_label(&p.model),
            Setting::Engine => p.engine.to_string(),
            Setting::KvBits => crate::bench::kv_label(p.kv_bits),
            Setting::Batch => format!("b{}", p.batch),
            Setting::Depth => format!("d{}", p.depth),
            Setting::Prompt => format!("p{}", p.n_prompt),
            Setting::Generate => format!("g{}", p.n_generate),
        }
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
            Setting::Model | Setting::Engine => 0,
        }
    }

    /// The value's tick label on the x axis.
    fn tick(self, p: &RunPoint) -> String {
        match self {
            Setting::KvBits => bits_or_none(p.kv_bits),
            Setting::Batch => p.batch.to_string(),
            Setting::Depth => p.depth.to_string(),
            Setting::Prompt => p.n_prompt.to_string(),
            Setting::Generate => p.n_generate.to_string(),
            Setting::Model | Setting::Engine => self.label(p),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Setting::Model => "model",
            Setting::Engine => "engine",
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

/// `metric` of the successful records against `x`, one series per combination of the other
/// settings; `None` when no series has two points.
fn chart_against(records: &[&RunRecord], x: Setting, metric: Metric, title: &str, y_desc: &'static str) -> Option<Chart> {
    let varying: Vec<Setting> = SETTINGS
        .into_iter()
        .filter(|&s| s != x)
        .filter(|&s| records.iter().any(|r| s.label(&r.point) != s.label(&records[0].point)))
        .collect();
    let mut ticks: Vec<(i64, String)> = records.iter().map(|r| (x.order(&r.point), x.tick(&r.point))).collect();
    ticks.sort();
    ticks.dedup();
    let position = |p: &RunPoint| ticks.iter().position(|(order, _)| *order == x.order(p)).unwrap_or(0) as f64;
    let mut groups: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for r in records {
        let Some(summary) = r.summary.as_ref().and_then(metric) else { continue };
        let label = varying.iter().map(|s| s.label(&r.point)).collect::<Vec<_>>().join(" ");
        groups.entry(label).or_default().push(Point::of(position(&r.point), summary));
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
fn windows_chart(records: &[&RunRecord]) -> Option<Chart> {
    let mut series = Vec::new();
    for r in records {
        let windows = r.trials.iter().map(|t| t.decode_windows.len()).min().unwrap_or(0);
        if windows < 2 {
            continue;
        }
        let points = (0..windows)
            .filter_map(|k| {
                let rates: Vec<f64> = r.trials.iter().map(|t| t.decode_windows[k].tps).collect();
                Summary::of(&rates).map(|s| Point::of(r.trials[0].decode_windows[k].context_tokens as f64, &s))
            })
            .collect();
        let label = SETTINGS.iter().map(|s| s.label(&r.point)).collect::<Vec<_>>().join(" ");
        series.push(Series { label, points });
    }
    (!series.is_empty()).then(|| Chart {
        title: "Decode tokens/s per window of generated tokens, against context".into(),
        x_desc: "context (tokens in the cache)",
        y_desc: "tokens/s",
        x_axis: XAxis::Numbers,
        series,
    })
}

/// Every chart the records give, in reading order.
fn charts(records: &[RunRecord]) -> Vec<Chart> {
    let ok: Vec<&RunRecord> = records.iter().filter(|r| r.status == Status::Ok && r.summary.is_some()).collect();
    if ok.is_empty() {
        return Vec::new();
    }
    let decode: Metric = |s| s.generation_tps.as_ref();
    let prefill: Metric = |s| s.prompt_tps.as_ref();
    let ttft: Metric = |s| s.ttft_ms.as_ref();
    let peak: Metric = |s| s.peak_memory_bytes.as_ref();
    let kv: Metric = |s| s.kv_cache_bytes.as_ref();
    let mut out = Vec::new();
    for (x, what) in [(Setting::Prompt, "prompt length"), (Setting::Depth, "depth"), (Setting::Batch, "batch")] {
        out.extend(chart_against(&ok, x, decode, &format!("Decode (generation) tokens/s against {what}"), "tokens/s"));
        out.extend(chart_against(&ok, x, prefill, &format!("Prefill (prompt) tokens/s against {what}"), "tokens/s"));
    }
    out.extend(chart_against(&ok, Setting::Prompt, ttft, "Time to first token against prompt length", "ms"));
    out.extend(chart_against(&ok, Setting::Depth, ttft, "Time to first token against depth", "ms"));
    out.extend(chart_against(&ok, Setting::KvBits, decode, "Decode tokens/s against kv-bits", "tokens/s"));
    out.extend(chart_against(&ok, Setting::KvBits, peak, "Peak memory against kv-bits", BYTES));
    out.extend(chart_against(&ok, Setting::KvBits, kv, "KV cache memory against kv-bits", BYTES));
    out.extend(windows_chart(&ok));
    out
}

/// A readable number for an axis: 1.2k, 3.4M, 5.6G.
fn si(v: f64) -> String {
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
        let height = 360 + 18 * chart.series.len() as u32;
        let root = SVGBackend::with_string(&mut text, (760, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(&e))?;
        let (plot, legend) = root.split_vertically(360);
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

/// Text made safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `median` (with the trials' range when it is not one value), each written by `show`, or `-`.
fn cell_with(summary: Option<&Summary>, show: impl Fn(f64) -> String) -> String {
    match summary {
        Some(s) if show(s.min) != show(s.max) => {
            format!("{} <small>({}–{})</small>", show(s.median), show(s.min), show(s.max))
        }
        Some(s) => show(s.median),
        None => "-".into(),
    }
}

fn cell(summary: Option<&Summary>, decimals: usize) -> String {
    cell_with(summary, |v| format!("{v:.decimals$}"))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}\
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}th{background:#f3f3f3}\
td.text,th.text{text-align:left}small{color:#777}\
figure{margin:2em 0}figcaption{font-weight:600;margin-bottom:.5em}\
.failed{color:#a00}.wide{overflow-x:auto}";

/// The report page of `records`.
pub fn render_html(records: &[RunRecord]) -> Result<String> {
    if records.is_empty() {
        return Err(Error::InvalidOption("no results to report".into()));
    }
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mlxbench report</title>\
         <style>{STYLE}</style></head><body>\n<h1>mlxbench report</h1>\n"
    );

    // The runs' context: one row per distinct machine, MLX build and commit.
    let mut contexts: Vec<[String; 5]> = Vec::new();
    for r in records {
        let c = &r.context;
        let row = [
            c.hardware.clone(),
            format!("MLX {} {} ({})", c.mlx_version, c.backend, c.device),
            c.git_commit.clone(),
            c.timestamp.clone(),
            format!("{} warmup, {} repeats", c.warmup, c.repeats),
        ];
        if !contexts.iter().any(|known| known[..3] == row[..3]) {
            contexts.push(row);
        }
    }
    page.push_str("<table class=\"context\"><tr><th class=\"text\">hardware</th><th class=\"text\">MLX</th><th class=\"text\">commit</th><th class=\"text\">first run</th><th class=\"text\">trials</th></tr>\n");
    for row in &contexts {
        page.push_str("<tr>");
        for value in row {
            page.push_str(&format!("<td class=\"text\">{}</td>", escape(value)));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n");

    page.push_str(
        "<h2>Summary</h2>\n<p>Medians over the trials, with the fastest and slowest trial in brackets.</p>\n\
         <div class=\"wide\"><table class=\"summary\"><tr><th class=\"text\">model</th><th class=\"text\">engine</th><th>kv-bits</th>\
         <th>batch</th><th>depth</th><th>prompt</th><th>gen</th><th>prompt t/s</th><th>gen t/s</th>\
         <th>TTFT ms</th><th>peak memory</th><th>KV cache</th><th>J/token</th><th class=\"text\">status</th></tr>\n",
    );
    for r in records {
        let s = r.summary.as_ref();
        let p = &r.point;
        let status = match &r.error {
            Some(e) => format!("<span class=\"failed\">{}: {}</span>", r.status.as_str(), escape(e)),
            None => r.status.as_str().to_string(),
        };
        page.push_str(&format!(
            "<tr><td class=\"text\">{}</td><td class=\"text\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"text\">{status}</td></tr>\n",
            escape(&model_label(&p.model)),
            p.engine,
            bits_or_none(p.kv_bits),
            p.batch,
            p.depth,
            p.n_prompt,
            p.n_generate,
            cell(s.and_then(|s| s.prompt_tps.as_ref()), 1),
            cell(s.and_then(|s| s.generation_tps.as_ref()), 1),
            cell(s.and_then(|s| s.ttft_ms.as_ref()), 1),
            cell_with(s.and_then(|s| s.peak_memory_bytes.as_ref()), significant_bytes),
            cell_with(s.and_then(|s| s.kv_cache_bytes.as_ref()), significant_bytes),
            cell(s.and_then(|s| s.joules_per_token.as_ref()), 3),
        ));
    }
    page.push_str("</table></div>\n");

    let charts = charts(records);
    page.push_str("<h2>Charts</h2>\n");
    if charts.is_empty() {
        page.push_str("<p>No setting was swept over two values or more with results, so there is nothing to plot.</p>\n");
    } else {
        page.push_str("<p>Each point is the median over the trials; its bar runs from the slowest to the fastest trial.</p>\n");
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
