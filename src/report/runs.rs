//! Which run (invocation of `mlxbench run`) each record of merged results came from, so that a
//! sweep appended twice to one file, or results files merged by `report` and `export`, keep the
//! two measurements of one configuration apart instead of mixing them.
//!
//! A run is told by its start time (`context.timestamp`, shared by every record of one
//! invocation), numbered from 1 in the order the runs first appear. Where two records of one
//! configuration (settings, engine and MLX build) share a start time (records made by hand), the
//! k-th record of each configuration is run k instead. The views label runs only when some
//! configuration was measured in more than one: results of one run, or of runs of different
//! configurations, look as they always did.
use crate::bench::RunRecord;

/// The run of each record of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runs {
    /// The run number (from 1) of each record, in record order.
    numbers: Vec<usize>,
    /// Each run's start time, when the runs are told by start times.
    starts: Vec<String>,
    /// Whether some configuration appears in more than one run.
    repeated: bool,
}

/// What makes two records measurements of the same configuration.
fn same_configuration(a: &RunRecord, b: &RunRecord) -> bool {
    a.point == b.point && a.context.mlx_version == b.context.mlx_version && a.context.mlx_build == b.context.mlx_build
}

impl Runs {
    pub fn of(records: &[RunRecord]) -> Self {
        let mut starts: Vec<String> = Vec::new();
        let mut numbers: Vec<usize> = records
            .iter()
            .map(|r| match starts.iter().position(|s| *s == r.context.timestamp) {
                Some(i) => i + 1,
                None => {
                    starts.push(r.context.timestamp.clone());
                    starts.len()
                }
            })
            .collect();
        let clash = (0..records.len())
            .any(|i| (0..i).any(|j| numbers[i] == numbers[j] && same_configuration(&records[i], &records[j])));
        if clash {
            starts.clear();
            numbers = (0..records.len()).map(|i| 1 + (0..i).filter(|&j| same_configuration(&records[i], &records[j])).count()).collect();
        }
        let repeated =
            (0..records.len()).any(|i| (0..i).any(|j| numbers[i] != numbers[j] && same_configuration(&records[i], &records[j])));
        Runs { numbers, starts, repeated }
    }

    /// Whether some configuration was measured in more than one run (and the views say which).
    pub fn repeated(&self) -> bool {
        self.repeated
    }

    /// The run number of record `i`, from 1.
    pub fn number(&self, i: usize) -> usize {
        self.numbers.get(i).copied().unwrap_or(1)
    }

    /// `run 2`: record `i`'s run where runs need telling apart, else `None`.
    pub fn label(&self, i: usize) -> Option<String> {
        self.repeated.then(|| format!("run {}", self.number(i)))
    }

    /// How many runs the records came from.
    pub fn count(&self) -> usize {
        self.numbers.iter().copied().max().unwrap_or(0)
    }

    /// `2 runs of the same configurations, kept apart: run 1 started 2026-12-04T18:43:23Z (6
    /// configurations), run 2 ...`, when runs need telling apart.
    pub fn describe(&self) -> Option<String> {
        if !self.repeated {
            return None;
        }
        let runs: Vec<String> = (1..=self.count())
            .map(|n| {
                let configurations = match self.numbers.iter().filter(|&&k| k == n).count() {
                    1 => "1 configuration".to_string(),
                    count => format!("{count} configurations"),
                };
                match self.starts.get(n - 1) {
                    Some(start) => format!("run {n} started {start} ({configurations})"),
                    None => format!("run {n} ({configurations})"),
                }
            })
            .collect();
        Some(format!(
            "{} runs measured the same configurations; tables and charts keep them apart: {}",
            self.count(),
            runs.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{Engine, RunContext, RunPoint};

    fn record(n_prompt: usize, timestamp: &str) -> RunRecord {
        let point = RunPoint { model: "m".into(), kv_bits: None, batch: 1, depth: 0, n_prompt, n_generate: 8, engine: Engine::Mlxbench, draft: None };
        let context = RunContext { timestamp: timestamp.into(), ..RunContext::for_tests() };
        RunRecord::new(point, context, Ok(Vec::new()), None, None)
    }

    #[test]
    fn runs_are_told_by_their_start_and_labelled_only_when_a_configuration_repeats() {
        let twice = [record(16, "T1"), record(32, "T1"), record(16, "T2"), record(32, "T2")];
        let runs = Runs::of(&twice);
        assert!(runs.repeated());
        assert_eq!((0..4).map(|i| runs.number(i)).collect::<Vec<_>>(), [1, 1, 2, 2]);
        assert_eq!(runs.label(2).as_deref(), Some("run 2"));
        assert_eq!(
            runs.describe().as_deref(),
            Some("2 runs measured the same configurations; tables and charts keep them apart: run 1 started T1 (2 configurations), run 2 started T2 (2 configurations)")
        );
        // Two runs of different configurations need no labels.
        let apart = Runs::of(&[record(16, "T1"), record(32, "T2")]);
        assert!(!apart.repeated() && apart.label(1).is_none() && apart.describe().is_none());
        // One start for both (records made by hand): the k-th record of a configuration is run k.
        let same_start = Runs::of(&[record(16, "T"), record(32, "T"), record(16, "T")]);
        assert_eq!((0..3).map(|i| same_start.number(i)).collect::<Vec<_>>(), [1, 1, 2]);
        assert_eq!(same_start.describe().as_deref().map(|d| d.ends_with("run 1 (2 configurations), run 2 (1 configuration)")), Some(true));
    }
}
