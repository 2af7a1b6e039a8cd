//! The highest load that still meets the SLOs (`serve --search concurrency|rate --slo ...`): the
//! load doubles from `--search-start` while each point meets the objectives and its throughput
//! still grows, then bisects between the highest point that passed and the lowest that did not,
//! down to one step. Pure: the caller measures each probe ([`Search::next`] says which).
use serde::{Deserialize, Serialize};

use crate::choice::choice;

/// What a search moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchAxis {
    Concurrency,
    Rate,
}

choice!(SearchAxis {
    Concurrency => ("concurrency", "clients of a closed loop, whole numbers: steps of 1"),
    Rate => ("rate", "requests/s of an open loop (Poisson, --max-concurrency capped): steps of --search-precision"),
});

/// A saturated point: its output throughput is below this share above the best of every lower
/// load probed (more load, no more throughput).
pub const SATURATION_GAIN: f64 = 1.05;

/// One measured probe.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// The concurrency or rate.
    pub value: f64,
    /// Whether the point met every objective.
    pub met: bool,
    /// Output tokens/s of the point.
    pub output_tps: f64,
}

/// What a search record says about its point (`search` in JSON; `search_*` CSV columns).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchStep {
    pub axis: SearchAxis,
    /// 1 for the first probe.
    pub probe: usize,
    pub met_slo: bool,
    /// [`is_saturated`] against the probes before it.
    pub saturated: bool,
    /// The answer so far: the highest load that met the objectives unsaturated (`None`: none yet).
    pub best: Option<f64>,
    /// Whether this was the search's last probe (then `best` is its answer).
    pub last: bool,
}

/// A search over `axis` from `start` up to `max` (rate: down to a `precision` share of the value).
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub axis: SearchAxis,
    pub start: f64,
    pub max: f64,
    pub precision: f64,
    pub probes: Vec<Probe>,
}

/// Whether `probe` is saturated: some lower load probed had output throughput ≥ its own ÷
/// [`SATURATION_GAIN`].
pub fn is_saturated(probe: &Probe, earlier: &[Probe]) -> bool {
    earlier.iter().filter(|p| p.value < probe.value).any(|p| probe.output_tps < p.output_tps * SATURATION_GAIN)
}

impl Search {
    pub fn new(axis: SearchAxis, start: f64, max: f64, precision: f64) -> Self {
        let start = match axis {
            SearchAxis::Concurrency => start.round().max(1.0),
            SearchAxis::Rate => start,
        };
        Search { axis, start, max: max.max(start), precision, probes: Vec::new() }
    }

    /// Whether probe `i` passed: met the objectives and was not saturated.
    fn passed(&self, i: usize) -> bool {
        self.probes[i].met && !is_saturated(&self.probes[i], &self.probes[..i])
    }

    /// The highest load that passed so far.
    pub fn best(&self) -> Option<f64> {
        (0..self.probes.len()).filter(|&i| self.passed(i)).map(|i| self.probes[i].value).fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
    }

    /// The step record of the latest probe.
    pub fn step(&self) -> Option<SearchStep> {
        let i = self.probes.len().checked_sub(1)?;
        let probe = &self.probes[i];
        Some(SearchStep {
            axis: self.axis,
            probe: i + 1,
            met_slo: probe.met,
            saturated: is_saturated(probe, &self.probes[..i]),
            best: self.best(),
            last: self.next().is_none(),
        })
    }

    pub fn record(&mut self, probe: Probe) {
        self.probes.push(probe);
    }

    /// The next load to probe, or `None` when the search is done.
    pub fn next(&self) -> Option<f64> {
        if self.probes.is_empty() {
            return Some(self.start);
        }
        let best = self.best();
        // The lowest probe above the best that did not pass.
        let failed = (0..self.probes.len()).filter(|&i| !self.passed(i) && best.is_none_or(|b| self.probes[i].value > b)).map(|i| self.probes[i].value).fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
        let candidate = match (best, failed) {
            // Even the first load failed: nothing lower is searched.
            (None, _) => return None,
            (Some(b), None) => {
                if b >= self.max {
                    return None;
                }
                (b * 2.0).min(self.max)
            }
            (Some(b), Some(f)) => {
                let close = match self.axis {
                    SearchAxis::Concurrency => f - b <= 1.0,
                    SearchAxis::Rate => f - b <= self.precision * b,
                };
                if close {
                    return None;
                }
                (b + f) / 2.0
            }
        };
        let candidate = match self.axis {
            SearchAxis::Concurrency => candidate.floor(),
            SearchAxis::Rate => candidate,
        };
        // Never the same load twice.
        (!self.probes.iter().any(|p| p.value == candidate)).then_some(candidate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a server that meets the objectives up to `capacity` and whose
    /// throughput grows linearly up to `knee`, then stays flat.
    fn search(axis: SearchAxis, capacity: f64, knee: f64, max: f64) -> (Option<f64>, Vec<f64>) {
        let mut s = Search::new(axis, 1.0, max, 0.1);
        while let Some(value) = s.next() {
            s.record(Probe { value, met: value <= capacity, output_tps: 10.0 * value.min(knee) });
            assert!(s.probes.len() < 50, "the search ends: {:?}", s.probes);
        }
        (s.best(), s.probes.iter().map(|p| p.value).collect())
    }

    #[test]
    fn concurrency_is_found_exactly_by_doubling_then_bisecting() {
        assert_eq!(search(SearchAxis::Concurrency, 3.0, 100.0, 64.0), (Some(3.0), vec![1.0, 2.0, 4.0, 3.0]));
        assert_eq!(search(SearchAxis::Concurrency, 11.0, 100.0, 64.0), (Some(11.0), vec![1.0, 2.0, 4.0, 8.0, 16.0, 12.0, 10.0, 11.0]));
        // Capped by --search-max, and nothing when even the start fails.
        assert_eq!(search(SearchAxis::Concurrency, 100.0, 100.0, 5.0).0, Some(5.0));
        assert_eq!(search(SearchAxis::Concurrency, 0.5, 100.0, 64.0), (None, vec![1.0]));
    }

    #[test]
    fn saturation_stops_the_search_where_throughput_stops_growing() {
        // Objectives met everywhere, throughput flat from 6: 8 still gains on 4 (60 ≥ 40 × 1.05 t/s),
        // 16 and everything between gain nothing on 8 (60 < 60 × 1.05): saturated.
        let (best, probes) = search(SearchAxis::Concurrency, 1000.0, 6.0, 64.0);
        assert_eq!(probes[..5], [1.0, 2.0, 4.0, 8.0, 16.0]);
        assert_eq!(best, Some(8.0), "{probes:?}");
        let p = |value: f64, output_tps: f64| Probe { value, met: true, output_tps };
        assert!(is_saturated(&p(4.0, 104.0), &[p(2.0, 100.0)]));
        assert!(!is_saturated(&p(4.0, 105.0), &[p(2.0, 100.0)]));
        assert!(!is_saturated(&p(2.0, 1.0), &[p(4.0, 100.0)]), "only lower loads count");
    }

    #[test]
    fn a_rate_is_found_within_its_precision() {
        let (best, probes) = search(SearchAxis::Rate, 5.0, 1000.0, 100.0);
        let best = best.unwrap();
        assert!((5.0 / 1.1..=5.0).contains(&best), "{best} {probes:?}");
        assert_eq!(probes[..4], [1.0, 2.0, 4.0, 8.0]);
    }
}
