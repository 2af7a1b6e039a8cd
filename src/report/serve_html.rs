//! The HTML report of `mlxbench serve` results (`mlxbench report serve.json`): the run's header
//! line, a table of every point (workload, cache mode, throughput, latency percentiles, cache hit
//! rate, SLO verdict and search probe), the search's answer, and the throughput-vs-latency
//! (Pareto) chart: output t/s against TTFT p90, one series per server setting and workload, each
//! point one `<circle>`, the points no other point of its series beats on both axes joined.
//! Self-contained, as the run report ([`super::html`]).
use plotters::prelude::*;

use super::{
    html::{si, STYLE},
    table::escape,
};
use crate::{
    error::{Error, Result},
    serve::{search_line, ServeRecord},
};

/// The indices of the Pareto front of `points` (latency, throughput): those no other point beats
/// on both (lower or equal latency and higher or equal throughput, one of them strictly), sorted
/// by latency.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let beats = |a: (f64, f64), b: (f64, f64)| a.0 <= b.0 && a.1 >= b.1 && (a.0 < b.0 || a.1 > b.1);
    let mut front: Vec<usize> = (0..points.len()).filter(|&i| !points.iter().any(|&other| beats(other, points[i]))).collect();
    front.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0));
    front
}

/// A chart series: its label and points (TTFT p90 ms, output t/s, the load's label).
struct Series {
    label: String,
    points: Vec<(f64, f64, String)>,
}

/// The series of the chart: the successful points with a TTFT, grouped by all but their load.
fn series(records: &[ServeRecord]) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for r in records {
        let Some(s) = &r.summary else { continue };
        let Some(ttft) = s.ttft_ms else { continue };
        let p = &r.point;
        let mut label = vec![format!("{} server{}", p.instances, if p.instances == 1 { "" } else { "s" })];
        label.extend(p.decode_concurrency.map(|d| format!("decode {d}")));
        label.extend(p.kv_bits.map(|b| format!("kv {b}")));
        label.push(r.context.workload.clone());
        if r.context.cache_mode != "as-is" {
            label.push(format!("cache {}", r.context.cache_mode));
        }
        let label = label.join(", ");
        let point = (ttft.p90, s.output_tps, p.load.label());
        match out.iter_mut().find(|s| s.label == label) {
            Some(series) => series.points.push(point),
            None => out.push(Series { label, points: vec![point] }),
        }
    }
    out
}

/// The Pareto chart as SVG.
fn pareto_svg(series: &[Series]) -> Result<String> {
    let draw_error = |e: &dyn std::fmt::Display| Error::InvalidOption(format!("drawing the throughput-latency chart: {e}"));
    let all = series.iter().flat_map(|s| &s.points);
    let x_max = all.clone().map(|p| p.0).fold(0f64, f64::max);
    let y_max = all.map(|p| p.1).fold(0f64, f64::max);
    let mut text = String::new();
    {
        let height = 480 + 18 * series.len() as u32;
        let root = SVGBackend::with_string(&mut text, (1000, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(&e))?;
        let (plot, legend) = root.split_vertically(480);
        let mut c = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..(x_max * 1.1).max(1.0), 0.0..(y_max * 1.1).max(1.0))
            .map_err(|e| draw_error(&e))?;
        c.configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&|v| si(*v))
            .y_label_formatter(&|v| si(*v))
            .x_desc("TTFT p90 (ms, client side, queued time included)")
            .y_desc("output tokens/s")
            .draw()
            .map_err(|e| draw_error(&e))?;
        for (i, s) in series.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            let xy: Vec<(f64, f64)> = s.points.iter().map(|p| (p.0, p.1)).collect();
            let front: Vec<(f64, f64)> = pareto_front(&xy).into_iter().map(|k| xy[k]).collect();
            c.draw_series(LineSeries::new(front, colour.stroke_width(2))).map_err(|e| draw_error(&e))?;
            c.draw_series(s.points.iter().map(|p| Circle::new((p.0, p.1), 5, colour.filled()))).map_err(|e| draw_error(&e))?;
            c.draw_series(s.points.iter().map(|p| Text::new(p.2.clone(), (p.0, p.1), ("sans-serif", 12).into_font())))
                .map_err(|e| draw_error(&e))?;
            let y = 6 + 18 * i as i32;
            legend.draw(&Rectangle::new([(80, y + 3), (100, y + 9)], colour.filled())).map_err(|e| draw_error(&e))?;
            legend.draw(&Text::new(s.label.clone(), (108, y), ("sans-serif", 13).into_font())).map_err(|e| draw_error(&e))?;
        }
        root.present().map_err(|e| draw_error(&e))?;
    }
    Ok(text)
}

/// `12.3`, or `-`.
fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

/// The report page of serve `records`.
pub fn render_serve_html(records: &[ServeRecord], sources: &[(String, usize)]) -> Result<String> {
    let Some(first) = records.first() else {
        return Err(Error::InvalidOption("no serve results to report".into()));
    };
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mlxbench serve report</title>\
         <style>{STYLE}</style></head><body>\n<h1>mlxbench serve report</h1>\n"
    );
    let header = crate::serve::markdown(std::slice::from_ref(first));
    page.push_str(&format!("<p class=\"header\">{}</p>\n", escape(header.lines().next().unwrap_or_default())));
    if sources.len() > 1 {
        let files: Vec<String> = sources.iter().map(|(name, n)| format!("{name} ({n} points)")).collect();
        page.push_str(&format!("<p class=\"header\">Merged from {} results files: {}.</p>\n", sources.len(), escape(&files.join(", "))));
    }
    page.push_str("<h2>Points</h2>\n<div class=\"wide\"><table class=\"points\"><tr>");
    let heads = [
        "point", "load", "workload", "cache", "ok/sent", "out t/s", "req/s", "goodput req/s", "TTFT p50 ms", "TTFT p90 ms", "TTFT p99 ms", "TPOT p90 ms",
        "E2E p90 ms", "queued p99 ms", "cache hit", "TTFT cold / warm p50 ms", "SLO met", "search probe",
    ];
    for h in heads {
        page.push_str(&format!("<th>{}</th>", escape(h)));
    }
    page.push_str("</tr>\n");
    for r in records {
        let s = r.summary.as_ref();
        let spread = |f: fn(&crate::serve::metrics::PointSummary) -> Option<crate::serve::metrics::Spread>| s.and_then(f);
        let cells = [
            r.point.label(),
            r.point.load.label(),
            r.context.workload.clone(),
            r.context.cache_mode.clone(),
            s.map_or_else(|| format!("failed: {}", r.error.clone().unwrap_or_default()), |s| format!("{}/{}", s.ok_requests, s.requests)),
            num(s.map(|s| s.output_tps), 1),
            num(s.map(|s| s.requests_per_s), 2),
            num(s.and_then(|s| s.goodput_rps), 2),
            num(spread(|s| s.ttft_ms).map(|x| x.median), 1),
            num(spread(|s| s.ttft_ms).map(|x| x.p90), 1),
            num(spread(|s| s.ttft_ms).map(|x| x.p99), 1),
            num(spread(|s| s.tpot_ms).map(|x| x.p90), 2),
            num(spread(|s| s.e2e_ms).map(|x| x.p90), 1),
            num(spread(|s| s.queued_ms).map(|x| x.p99), 1),
            s.and_then(|s| s.cache_hit_rate).map_or_else(|| "-".into(), |h| format!("{:.1}%", h * 100.0)),
            format!("{} / {}", num(spread(|s| s.ttft_cold_ms).map(|x| x.median), 1), num(spread(|s| s.ttft_warm_ms).map(|x| x.median), 1)),
            s.and_then(|s| s.slo_met).map_or("-", |m| if m { "yes" } else { "no" }).to_string(),
            r.search.map_or_else(|| "-".into(), |x| format!("{}{}", x.probe, if x.saturated { " (saturated)" } else { "" })),
        ];
        page.push_str("<tr>");
        for (i, cell) in cells.iter().enumerate() {
            let class = if i < 4 { " class=\"text\"" } else { "" };
            page.push_str(&format!("<td{class}>{}</td>", escape(cell)));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table></div>\n");
    if let Some(line) = search_line(records) {
        page.push_str(&format!("<p class=\"header search\">{}</p>\n", escape(&line)));
    }
    page.push_str("<h2>Throughput against latency</h2>\n");
    let series = series(records);
    let points: usize = series.iter().map(|s| s.points.len()).sum();
    if points < 2 {
        page.push_str("<p>Fewer than two points with results: nothing to plot.</p>\n");
    } else {
        let front: usize = series.iter().map(|s| pareto_front(&s.points.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>()).len()).sum();
        page.push_str(
            "<p>Each point is one point of the sweep: its output tokens/s against its TTFT p90; the line joins, per series, \
             the points no other point of it beats on both (the Pareto front).</p>\n",
        );
        page.push_str(&format!(
            "<figure class=\"chart\" data-points=\"{points}\" data-front=\"{front}\" id=\"pareto\"><figcaption>Throughput vs TTFT p90</figcaption>\n{}</figure>\n",
            pareto_svg(&series)?
        ));
    }
    page.push_str("</body></html>\n");
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pareto_front_keeps_what_nothing_beats_on_both_axes() {
        // (latency, throughput): the first beats the second and the fourth, the third beats the
        // fifth; the first and its twin beat each other on neither, so both stay.
        let points = [(100.0, 50.0), (120.0, 40.0), (300.0, 90.0), (150.0, 30.0), (300.0, 80.0), (100.0, 50.0)];
        assert_eq!(pareto_front(&points), vec![0, 5, 2]);
        assert_eq!(pareto_front(&[]), Vec::<usize>::new());
    }
}
