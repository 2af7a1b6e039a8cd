//! What a reader sees of `run` results, built once and printed by the Markdown table (terminal,
//! `.md` results) and the HTML report alike: header lines (the runs' context, the models with
//! their paths, parameters and load times, the settings every row shares, what was merged), the
//! summary table of the settings that vary and the headline numbers ([`super::headline`]), a
//! table of extras only when there are some (cold trial, memory drift, energy), every statistic
//! (for the HTML report's details), and the mlxbench ÷ mlx-lm ratios of a two-engine run.
use super::{
    headline::{with_interval, Headline, Interval, RANGE_MARK, RANGE_NOTE},
    mlx::{mlx_description, MlxBuilds},
    read::protocol_known,
    runs::Runs,
    table::{Cell, Column, Table},
};
use crate::{
    bench::{
        ids::model_label,
        record::{engine_ratios, EngineRatio, Ratio},
        RunContext, RunRecord, Status,
    },
    config::bits_or_none,
    measure::{stats::median, MetricSummaries, Summary, TrialMetrics},
    units::{human_bytes, human_count},
};

/// The views' reading of some records.
#[derive(Debug, Clone)]
pub struct RunView {
    /// One line per distinct run context (machine, MLX, commit, start, trial protocol).
    pub context_lines: Vec<String>,
    /// One line per model: its short name (the tables' `model`), its path, parameters, load time.
    pub model_lines: Vec<String>,
    /// The settings every row shares (`kv none | batch 1 | ...`), when some do.
    pub same_line: Option<String>,
    /// What was merged, when some configuration was measured in more than one run.
    pub merged_line: Option<String>,
    pub summary: Table,
    /// Cold trial, memory drift and energy, when some record has something to say about them.
    pub extras: Option<Table>,
    /// Every statistic of every metric, per configuration.
    pub statistics: Table,
    /// mlxbench ÷ mlx-lm, for a run of both engines.
    pub ratios: Option<Table>,
    /// Acceptance and speed-up, for a run with a draft model.
    pub speculative: Option<Table>,
}

/// `mean ± stddev` with `decimals`, or `-` when undefined.
fn mean_sd(summary: Option<&Summary>, decimals: usize) -> String {
    match summary {
        Some(s) if s.samples.len() > 1 => format!("{:.decimals$} ± {:.decimals$}", s.mean, s.stddev),
        Some(s) => format!("{:.decimals$}", s.mean),
        None => "-".into(),
    }
}

/// `30.53 B (3.35 B active)`: the total, and the active count when a token uses fewer.
pub fn parameters_text(total: Option<u64>, active: Option<u64>) -> String {
    match (total, active) {
        (Some(total), Some(active)) if active < total => format!("{} ({} active)", human_count(total), human_count(active)),
        (Some(total), _) => human_count(total),
        (None, _) => "-".into(),
    }
}

/// A context line: `mlxbench 0.1.0 (abc) | MLX 0.32.4 (build) cuda (gpu) | hardware | start | 1 warmup, 3 repeats`.
fn context_line(c: &RunContext) -> String {
    let protocol = if !protocol_known(c) {
        "warmup and repeats unknown (CSV results do not keep them)".to_string()
    } else {
        match c.target_ci_pct {
            Some(pct) => format!("{} warmup, repeats until ±{pct}% (at most {})", c.warmup, c.repeats),
            None => format!("{} warmup, {} repeats", c.warmup, c.repeats),
        }
    };
    let mlxbench = match c.mlxbench_version.as_str() {
        "" => format!("mlxbench ({})", c.git_commit),
        version => format!("mlxbench {version} ({})", c.git_commit),
    };
    format!(
        "{mlxbench} | {} {} ({}) | {} | {} | {protocol}",
        mlx_description(&c.mlx_version, &c.mlx_build),
        c.backend,
        c.device,
        c.hardware,
        c.timestamp
    )
}

/// The values of `items` in first-seen order, without repeats.
fn distinct<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// A setting column: its header, how a header line says a value of it (`kv none`), the cells.
struct SettingColumn {
    column: Column,
    /// `kv none`: the value as the line of shared settings says it; `None` for settings that line
    /// leaves to others (parameters are in the model lines, the MLX build in the context lines).
    shared: Option<String>,
}

/// The setting columns of `records`, every one, in reading order.
fn setting_columns(records: &[RunRecord], mlx: &MlxBuilds, runs: &Runs) -> Vec<SettingColumn> {
    let cells = |f: &dyn Fn(usize, &RunRecord) -> String| records.iter().enumerate().map(|(i, r)| Cell::text(f(i, r))).collect();
    let numbers = |f: &dyn Fn(&RunRecord) -> usize| records.iter().map(|r| Cell::number(f(r).to_string(), Some(f(r) as f64))).collect();
    let first = records.first();
    let shared = |name: &str, value: Option<String>| value.map(|v| format!("{name} {v}"));
    let mut columns = vec![
        SettingColumn { column: Column::new("model", false, cells(&|_, r| model_label(&r.point.model))), shared: None },
        SettingColumn {
            column: Column::new("params", true, cells(&|_, r| parameters_text(r.parameters, r.active_parameters))),
            shared: None,
        },
        SettingColumn {
            column: Column::new("engine", false, cells(&|_, r| r.point.engine.to_string())),
            shared: shared("engine", first.map(|r| r.point.engine.to_string())),
        },
    ];
    if mlx.varies() {
        columns.push(SettingColumn { column: Column::new("MLX", false, cells(&|_, r| mlx.name(&r.context).unwrap_or_default())), shared: None });
    }
    if runs.repeated() {
        columns.push(SettingColumn { column: Column::new("run", true, cells(&|i, _| runs.number(i).to_string())), shared: None });
    }
    columns.extend([
        SettingColumn {
            column: Column::new("kv", false, cells(&|_, r| bits_or_none(r.point.kv_bits))),
            shared: shared("kv", first.map(|r| bits_or_none(r.point.kv_bits))),
        },
        SettingColumn { column: Column::new("batch", true, numbers(&|r| r.point.batch)), shared: shared("batch", first.map(|r| r.point.batch.to_string())) },
        SettingColumn { column: Column::new("depth", true, numbers(&|r| r.point.depth)), shared: shared("depth", first.map(|r| r.point.depth.to_string())) },
        SettingColumn {
            column: Column::new("prompt", true, numbers(&|r| r.point.n_prompt)),
            shared: shared("prompt", first.map(|r| r.point.n_prompt.to_string())),
        },
        SettingColumn {
            column: Column::new("gen", true, numbers(&|r| r.point.n_generate)),
            shared: shared("gen", first.map(|r| r.point.n_generate.to_string())),
        },
    ]);
    if records.iter().any(|r| r.point.draft.is_some()) {
        let draft = |r: &RunRecord| r.point.draft.as_ref().map_or_else(|| "none".into(), |d| format!("{} k{}", model_label(&d.draft_model), d.num_draft_tokens));
        columns.push(SettingColumn { column: Column::new("draft", false, cells(&|_, r| draft(r))), shared: None });
    }
    columns
}

/// The setting columns a table shows: `model` always (each row says what it measured), the
/// others when they vary; and the values of those that do not, for the shared settings' line.
fn varying_settings(records: &[RunRecord], mlx: &MlxBuilds, runs: &Runs) -> (Vec<Column>, Vec<String>) {
    let mut shown = Vec::new();
    let mut shared = Vec::new();
    for (i, setting) in setting_columns(records, mlx, runs).into_iter().enumerate() {
        if i == 0 || setting.column.varies() {
            shown.push(setting.column);
        } else if let Some(value) = setting.shared {
            shared.push(value);
        }
    }
    (shown, shared)
}

/// A metric column of the records' summaries.
fn metric_column(records: &[RunRecord], name: &str, cell: impl Fn(Option<&MetricSummaries>) -> Cell) -> Column {
    let cells = records.iter().map(|r| cell(r.summary.as_ref().filter(|_| r.status == Status::Ok))).collect();
    Column::new(name, true, cells)
}

/// The headline of `headline` with its interval (the decode rate) or alone.
fn headline_column(records: &[RunRecord], headline: Headline, with_its_interval: bool) -> Column {
    metric_column(records, headline.name(), |s| {
        let summary = s.and_then(|s| headline.summary(s));
        let text = match (summary, with_its_interval) {
            (Some(_), true) => with_interval(headline, summary),
            (Some(summary), false) => headline.show(summary.median),
            (None, _) => "-".into(),
        };
        Cell::number(text, summary.map(|s| s.median))
    })
}

/// Median ITL p50 and p99 over the trials.
fn itl_text(summaries: Option<&MetricSummaries>) -> String {
    match summaries.and_then(|s| Some((s.itl_p50_ms.as_ref()?, s.itl_p99_ms.as_ref()?))) {
        Some((p50, p99)) => format!("{:.2} / {:.2}", p50.median, p99.median),
        None => "-".into(),
    }
}

/// Median over the trials of each step's host part, its graph building, and wait (p50, ms) and
/// of the host's share of the decode time; `-` for an engine that does not expose the split.
fn host_share_text(summaries: Option<&MetricSummaries>) -> String {
    let Some(s) = summaries else { return "-".into() };
    match (s.step_host_p50_ms.as_ref(), s.step_build_p50_ms.as_ref(), s.step_wait_p50_ms.as_ref(), s.step_host_share.as_ref()) {
        (Some(host), Some(build), Some(wait), Some(share)) => {
            format!("{:.2} ({:.2}) / {:.2} ({:.0}%)", host.median, build.median, wait.median, share.median * 100.0)
        }
        _ => "-".into(),
    }
}

/// The first and last window's decode rate (median over the trials) with the context each
/// attended to, when a trial had more than one window.
fn windows_text(trials: &[TrialMetrics]) -> String {
    let windows = trials.first().map_or(0, |t| t.decode_windows.len());
    if windows < 2 {
        return "-".into();
    }
    let at = |i: usize| {
        let rates: Vec<f64> = trials.iter().filter_map(|t| t.decode_windows.get(i).map(|w| w.tps)).collect();
        let context = trials[0].decode_windows[i].context_tokens;
        format!("{:.1} @{context}", median(&rates))
    };
    format!("{} → {}", at(0), at(windows - 1))
}

fn status_text(r: &RunRecord) -> String {
    match &r.error {
        Some(e) => format!("{}: {e}", r.status.as_str()),
        None => r.status.as_str().into(),
    }
}

/// Whether some decode rate's interval is the range of fewer than 6 trials.
fn has_ranges(records: &[RunRecord]) -> bool {
    records
        .iter()
        .filter_map(|r| r.summary.as_ref()?.generation_tps_robust.as_ref())
        .any(|s| s.samples.len() > 1 && !Interval::of(s).of_median)
}

fn summary_table(records: &[RunRecord], settings: Vec<Column>) -> Table {
    let mut columns = settings;
    columns.push(headline_column(records, Headline::Decode, true));
    columns.push(metric_column(records, "mean decode t/s", |s| {
        let summary = s.and_then(|s| s.generation_tps.as_ref());
        Cell::number(mean_sd(summary, 1), summary.map(|s| s.mean))
    }));
    columns.push(headline_column(records, Headline::Prompt, false));
    columns.push(headline_column(records, Headline::Ttft, false));
    columns.push(headline_column(records, Headline::PeakMemory, false));
    columns.push(metric_column(records, "KV cache", |s| {
        let summary = s.and_then(|s| s.kv_cache_bytes.as_ref());
        Cell::number(summary.map_or("-".into(), |s| human_bytes(s.median as u64)), summary.map(|s| s.median))
    }));
    let bandwidth = Column::new(
        "decode GB/s",
        true,
        records
            .iter()
            .map(|r| match (r.decode_gbps, r.bandwidth_utilisation) {
                (Some(gbps), Some(share)) => Cell::number(format!("{gbps:.1} ({:.0}%)", share * 100.0), Some(gbps)),
                (Some(gbps), None) => Cell::number(format!("{gbps:.1}"), Some(gbps)),
                _ => Cell::text("-"),
            })
            .collect(),
    );
    if bandwidth.has_values() {
        columns.push(bandwidth);
    }
    columns.push(metric_column(records, "ITL p50/p99 ms", |s| Cell::text(itl_text(s))));
    let host = metric_column(records, "step host (build) / wait ms (host share)", |s| Cell::text(host_share_text(s)));
    if host.has_values() {
        columns.push(host);
    }
    let windows = Column::new("decode t/s by context", true, records.iter().map(|r| Cell::text(windows_text(&r.trials))).collect());
    if windows.has_values() {
        columns.push(windows);
    }
    if records.iter().any(|r| r.status != Status::Ok) {
        columns.push(Column::new("status", false, records.iter().map(|r| Cell::text(status_text(r))).collect()));
    }
    let n_trials = distinct(records.iter().filter(|r| r.status == Status::Ok).map(|r| r.trials.len()));
    let trials = match n_trials.as_slice() {
        [n] => format!("{n} trials"),
        _ => "the trials".into(),
    };
    let mut notes = vec![
        format!("decode t/s: batch ÷ median inter-token latency (the rate the gate and the exports use), median of {trials} ± its interval;"),
        "mean decode t/s: (tokens − 1) ÷ decode time, mean ± sd (a stall moves it); other columns: medians.".to_string(),
    ];
    if has_ranges(records) {
        notes.push(RANGE_NOTE.into());
    }
    Table { title: None, columns, notes }
}

/// A drift whose 95% interval leaves out zero: active memory that moved across the trials.
fn drift_says_something(r: &RunRecord) -> bool {
    r.memory_drift.is_some_and(|d| d.slope_ci95[0] > 0.0 || d.slope_ci95[1] < 0.0)
}

fn extras_table(records: &[RunRecord], settings: Vec<Column>) -> Option<Table> {
    let number = |x: Option<f64>, decimals: usize| Cell::number(x.map_or_else(|| "-".into(), |x| format!("{x:.decimals$}")), x);
    let mut extras = Vec::new();
    if records.iter().any(|r| r.cold_trial.is_some()) {
        extras.push(Column::new("cold TTFT ms", true, records.iter().map(|r| number(r.cold_trial.as_ref().map(|t| t.ttft_ms), 1)).collect()));
        extras.push(Column::new(
            "cold decode t/s",
            true,
            records.iter().map(|r| number(r.cold_trial.as_ref().and_then(|t| t.generation_tps_robust), 1)).collect(),
        ));
    }
    if records.iter().any(drift_says_something) {
        let drift = |r: &RunRecord| {
            r.memory_drift.map_or_else(
                || Cell::text("-"),
                |d| Cell::number(format!("{:+.0} [{:+.0}, {:+.0}]", d.slope, d.slope_ci95[0], d.slope_ci95[1]), Some(d.slope)),
            )
        };
        extras.push(Column::new("active memory B/trial [95%]", true, records.iter().map(drift).collect()));
    }
    let joules = Column::new(
        "J/token",
        true,
        records.iter().map(|r| number(r.summary.as_ref().and_then(|s| s.joules_per_token.as_ref()).map(|j| j.median), 4)).collect(),
    );
    if joules.has_values() {
        extras.push(joules);
    }
    if extras.is_empty() {
        return None;
    }
    let mut columns = settings;
    columns.extend(extras);
    Some(Table { title: Some("Cold trial, memory drift and energy".into()), columns, notes: Vec::new() })
}

/// `median [low, high]` (`†` for a range of fewer than 6 trials), each written by `show`.
fn median_interval_text(summary: Option<&Summary>, show: impl Fn(f64) -> String) -> String {
    match summary {
        Some(s) if s.samples.len() > 1 => {
            let i = Interval::of(s);
            format!("{} [{}, {}]{}", show(s.median), show(i.low), show(i.high), if i.of_median { "" } else { RANGE_MARK })
        }
        Some(s) => show(s.median),
        None => "-".into(),
    }
}

fn statistics_table(records: &[RunRecord], settings: Vec<Column>) -> Table {
    let mut columns = settings;
    columns.push(Column::new("trials", true, records.iter().map(|r| Cell::number(r.trials.len().to_string(), Some(r.trials.len() as f64))).collect()));
    type Of = fn(&MetricSummaries) -> Option<&Summary>;
    type Show<'a> = &'a dyn Fn(f64) -> String;
    let bytes = |v: f64| human_bytes(v.max(0.0) as u64);
    let one = |v: f64| format!("{v:.1}");
    let two = |v: f64| format!("{v:.2}");
    let metrics: [(&str, Of, Show); 10] = [
        ("decode t/s [95%]", |s| s.generation_tps_robust.as_ref(), &one),
        ("mean decode t/s [95%]", |s| s.generation_tps.as_ref(), &one),
        ("prompt t/s [95%]", |s| s.prompt_tps.as_ref(), &one),
        ("TTFT ms [95%]", |s| s.ttft_ms.as_ref(), &one),
        ("peak memory [95%]", |s| s.peak_memory_bytes.as_ref(), &bytes),
        ("KV cache", |s| s.kv_cache_bytes.as_ref(), &bytes),
        ("ITL p50 ms", |s| s.itl_p50_ms.as_ref(), &two),
        ("ITL p90 ms", |s| s.itl_p90_ms.as_ref(), &two),
        ("ITL p99 ms", |s| s.itl_p99_ms.as_ref(), &two),
        ("ITL max ms", |s| s.itl_max_ms.as_ref(), &two),
    ];
    for (name, of, show) in metrics {
        columns.push(metric_column(records, name, |s| {
            let summary = s.and_then(of);
            Cell::number(median_interval_text(summary, show), summary.map(|s| s.median))
        }));
    }
    columns.push(metric_column(records, "mean decode t/s ± sd", |s| Cell::text(mean_sd(s.and_then(|s| s.generation_tps.as_ref()), 1))));
    let load = |r: &RunRecord| {
        r.load.map_or_else(
            || Cell::text("-"),
            |l| Cell::number(format!("{:.1} ms ({})", l.load_ms, human_bytes(l.load_peak_memory_bytes)), Some(l.load_ms)),
        )
    };
    columns.push(Column::new("load (peak)", true, records.iter().map(load).collect()));
    let breakdown = |r: &RunRecord| {
        r.memory_breakdown.map_or_else(
            || Cell::text("-"),
            |b| {
                let parts = [b.weights_bytes, b.kv_cache_bytes, b.transient_bytes, b.buffer_cache_bytes].map(human_bytes);
                Cell::number(parts.join(" / "), Some(b.transient_bytes as f64))
            },
        )
    };
    columns.push(Column::new("memory: weights / KV / transient / buffer cache", true, records.iter().map(breakdown).collect()));
    let mut notes = vec!["Medians over the trials with [the 95% interval of the median]; ITL: the median trial's percentiles.".to_string()];
    if records.iter().any(|r| r.status == Status::Ok && (2..6).contains(&r.trials.len())) {
        notes.push("† fewer than 6 trials: the brackets span the trials' range, not a 95% interval".into());
    }
    Table { title: Some("Every statistic".into()), columns, notes }
}

fn ratio_text(ratio: Option<Ratio>) -> Cell {
    match ratio {
        Some(r) => Cell::number(format!("{:.3}× [{:.3}, {:.3}]", r.value, r.ci95[0], r.ci95[1]), Some(r.value)),
        None => Cell::text("-"),
    }
}

/// A ratio inverted (`b ÷ a` from `a ÷ b`): its interval's ends swap.
fn inverted(ratio: Option<Ratio>) -> Option<Ratio> {
    ratio.map(|r| Ratio { value: 1.0 / r.value, ci95: [1.0 / r.ci95[1], 1.0 / r.ci95[0]] })
}

/// The ratios as a table under `title`, `None` when there are none. One rule reads every cell:
/// above 1 is better for the first of the two; rates are first ÷ second, TTFT and peak memory
/// second ÷ first.
pub fn ratio_table_of(title: &str, ratios: &[EngineRatio]) -> Option<Table> {
    if ratios.is_empty() {
        return None;
    }
    let cells = |f: &dyn Fn(&EngineRatio) -> Cell| ratios.iter().map(f).collect::<Vec<_>>();
    let setting = |name: &str, numeric: bool, f: &dyn Fn(&EngineRatio) -> String| {
        Column::new(name, numeric, cells(&|r| Cell::text(f(r))))
    };
    let mut columns: Vec<Column> = vec![setting("model", false, &|r| model_label(&r.point.model))];
    let others = [
        setting("kv", false, &|r| bits_or_none(r.point.kv_bits)),
        setting("batch", true, &|r| r.point.batch.to_string()),
        setting("depth", true, &|r| r.point.depth.to_string()),
        setting("prompt", true, &|r| r.point.n_prompt.to_string()),
        setting("gen", true, &|r| r.point.n_generate.to_string()),
    ];
    let mut shared = Vec::new();
    for column in others {
        if column.varies() {
            columns.push(column);
        } else {
            shared.push(format!("{} {}", column.name, column.cells[0].text));
        }
    }
    columns.extend([
        Column::new("decode t/s", true, cells(&|r| ratio_text(r.generation_tps_robust))),
        Column::new("prompt t/s", true, cells(&|r| ratio_text(r.prompt_tps))),
        Column::new("TTFT (inverted)", true, cells(&|r| ratio_text(inverted(r.ttft_ms)))),
        Column::new("peak memory (inverted)", true, cells(&|r| ratio_text(inverted(r.peak_memory_bytes)))),
    ]);
    let mut notes = vec![
        "> 1 is better for the first, in every column: t/s are first ÷ second, TTFT and peak memory".to_string(),
        "inverted (second ÷ first); ratios of medians with their 95% bootstrap interval.".to_string(),
    ];
    if !shared.is_empty() {
        notes.push(format!("every row: {}", shared.join(" | ")));
    }
    Some(Table { title: Some(title.to_string()), columns, notes })
}

/// The engine comparison's title.
pub const ENGINE_RATIOS_TITLE: &str = "mlxbench ÷ mlx-lm (> 1: mlxbench is faster or, for TTFT and peak memory, lower)";

impl RunView {
    pub fn of(records: &[RunRecord]) -> Self {
        let mlx = MlxBuilds::of(records.iter().map(|r| &r.context));
        let runs = Runs::of(records);
        let context_lines = distinct(records.iter().map(|r| context_line(&r.context)));
        let model_lines = distinct(records.iter().map(|r| &r.point.model))
            .into_iter()
            .map(|model| {
                let of_model: Vec<&RunRecord> = records.iter().filter(|r| r.point.model == *model).collect();
                let mut line = format!("model {} = {model}", model_label(model));
                if let Some(r) = of_model.iter().find(|r| r.parameters.is_some()) {
                    line.push_str(&format!(" | {} parameters", parameters_text(r.parameters, r.active_parameters)));
                }
                // Each engine loads the model its own way: its load time is named by it.
                let engines = distinct(of_model.iter().map(|r| r.point.engine)).len() > 1;
                let loads = distinct(of_model.iter().filter_map(|r| {
                    let l = r.load?;
                    let by = if engines { format!(" ({})", r.point.engine) } else { String::new() };
                    Some((format!("{:.1} ms{by}", l.load_ms), human_bytes(l.load_peak_memory_bytes)))
                }));
                if !loads.is_empty() {
                    let times: Vec<&str> = loads.iter().map(|(t, _)| t.as_str()).collect();
                    let peaks = distinct(loads.iter().map(|(_, p)| p.as_str()));
                    line.push_str(&format!(" | loaded in {} (peak {})", times.join(", "), peaks.join(", ")));
                }
                line
            })
            .collect();
        let (settings, shared) = varying_settings(records, &mlx, &runs);
        let same_line = (!shared.is_empty()).then(|| format!("every row: {}", shared.join(" | ")));
        RunView {
            context_lines,
            model_lines,
            same_line,
            merged_line: runs.describe(),
            summary: summary_table(records, settings.clone()),
            extras: extras_table(records, settings.clone()),
            speculative: super::speculative::speculative_table(records, settings.clone()),
            statistics: statistics_table(records, settings),
            ratios: ratio_table_of(ENGINE_RATIOS_TITLE, &engine_ratios(records)).map(|mut table| {
                let fewest = records.iter().filter(|r| r.status == Status::Ok).map(|r| r.trials.len()).min().unwrap_or(0);
                if fewest < 6 {
                    table.notes.push(format!("intervals from {fewest} trials per engine, fewer than 6: rough"));
                }
                table
            }),
        }
    }

    /// Every header line, in reading order.
    pub fn header_lines(&self) -> Vec<&str> {
        let mut lines: Vec<&str> = self.context_lines.iter().map(String::as_str).collect();
        lines.extend(self.model_lines.iter().map(String::as_str));
        lines.extend(self.same_line.as_deref());
        lines.extend(self.merged_line.as_deref());
        lines
    }
}
