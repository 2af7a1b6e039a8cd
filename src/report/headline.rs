//! The one number each metric is shown by, in every view of `run` results (the terminal table,
//! the HTML report and its charts, the exports): the median over the measured trials, under one
//! name, with one interval. The decode rate's headline is the robust rate
//! (`generation_tps_robust`, batch ÷ median inter-token latency), the rate the gate judges; the
//! mean-based `generation_tps` is shown beside it as "mean decode t/s", never as "decode t/s".
//!
//! The interval is the median's distribution-free 95% interval where there are 6 trials or more,
//! else the trials' range, which every view marks ([`RANGE_MARK`]) as not being a 95% interval.
use crate::{
    measure::{MetricSummaries, Summary},
    units::human_bytes,
};

/// The metrics with a headline number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headline {
    Decode,
    Prompt,
    Ttft,
    PeakMemory,
}

pub const HEADLINES: [Headline; 4] = [Headline::Decode, Headline::Prompt, Headline::Ttft, Headline::PeakMemory];

impl Headline {
    /// The metric's name in every table: column headers, chart axes.
    pub fn name(self) -> &'static str {
        match self {
            Headline::Decode => "decode t/s",
            Headline::Prompt => "prompt t/s",
            Headline::Ttft => "TTFT ms",
            Headline::PeakMemory => "peak memory",
        }
    }

    /// The summary the headline is the median of.
    pub fn summary(self, s: &MetricSummaries) -> Option<&Summary> {
        match self {
            Headline::Decode => s.generation_tps_robust.as_ref(),
            Headline::Prompt => s.prompt_tps.as_ref(),
            Headline::Ttft => s.ttft_ms.as_ref(),
            Headline::PeakMemory => s.peak_memory_bytes.as_ref(),
        }
    }

    /// A value of the metric as tables write it: rates and times to 0.1, memory in decimal
    /// units (MB below 1 GB).
    pub fn show(self, value: f64) -> String {
        match self {
            Headline::PeakMemory => human_bytes(value.max(0.0).round() as u64),
            _ => format!("{value:.1}"),
        }
    }

    /// The headline of `summaries`: the median, `None` when the metric was not measured.
    pub fn value(self, summaries: Option<&MetricSummaries>) -> Option<f64> {
        summaries.and_then(|s| self.summary(s)).map(|s| s.median)
    }
}

/// Marks an interval that is the trials' range (fewer than 6 trials), not a 95% interval.
pub const RANGE_MARK: &str = "†";

/// The note under a table that has marked intervals.
pub const RANGE_NOTE: &str = "† fewer than 6 trials: ± spans the trials' range, not a 95% interval of the median";

/// The interval shown with a median.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    /// The median's 95% interval (6 trials or more); otherwise the trials' range.
    pub of_median: bool,
}

impl Interval {
    /// The median's 95% interval where there is one, else the trials' range (a point for one trial).
    pub fn of(s: &Summary) -> Interval {
        match s.median_ci95 {
            Some([low, high]) => Interval { low, high, of_median: true },
            None => Interval { low: s.min, high: s.max, of_median: false },
        }
    }

    /// The larger distance from `median` to either end, relative to it (0.02 is ±2%).
    pub fn relative_half_width(&self, median: f64) -> Option<f64> {
        (median != 0.0).then(|| (median - self.low).max(self.high - median) / median.abs())
    }
}

/// `299.9 ±1.2%` (95% interval of the median), `299.9 ±5.1%†` (the range of fewer than 6
/// trials), `299.9` (one trial), `-` (not measured).
pub fn with_interval(headline: Headline, summary: Option<&Summary>) -> String {
    let Some(s) = summary else { return "-".into() };
    let interval = Interval::of(s);
    match interval.relative_half_width(s.median) {
        Some(width) if s.samples.len() > 1 => format!(
            "{} ±{:.1}%{}",
            headline.show(s.median),
            width * 100.0,
            if interval.of_median { "" } else { RANGE_MARK }
        ),
        _ => headline.show(s.median),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_trials_show_their_range_marked_and_six_the_median_interval() {
        let three = Summary::of(&[90.0, 100.0, 105.0]).unwrap();
        assert_eq!(with_interval(Headline::Decode, Some(&three)), "100.0 ±10.0%†");
        let six = Summary::of(&[90.0, 98.0, 99.0, 101.0, 102.0, 110.0]).unwrap();
        let interval = Interval::of(&six);
        assert!(interval.of_median);
        assert_eq!(with_interval(Headline::Decode, Some(&six)), format!("100.0 ±{:.1}%", interval.relative_half_width(100.0).unwrap() * 100.0));
        assert_eq!(with_interval(Headline::Ttft, Summary::of(&[12.34]).as_ref()), "12.3");
        assert_eq!(with_interval(Headline::Prompt, None), "-");
        assert_eq!(Headline::PeakMemory.show(4_012_345.0), "4.0 MB");
        assert_eq!(Headline::PeakMemory.show(1_234_567_890.0), "1.235 GB");
    }
}
