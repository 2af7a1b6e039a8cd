//! The gate's statistics: a seeded bootstrap of the relative change of two means, and medians.
//! Deterministic: the same samples and seed give the same interval on every machine.

use crate::rng::{fnv1a, SplitMix64};

/// Resamples drawn for each bootstrap interval.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;
/// Confidence level of the bootstrap intervals.
pub const CONFIDENCE_LEVEL: f64 = 0.95;

/// A seed derived from a benchmark id, so each row has its own stream and reruns agree.
pub(crate) fn seed_for(id: &str) -> u64 {
    fnv1a(id.as_bytes())
}

pub(crate) fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn resampled_mean(xs: &[f64], rng: &mut SplitMix64) -> f64 {
    (0..xs.len()).map(|_| xs[rng.below(xs.len())]).sum::<f64>() / xs.len() as f64
}

/// The `p`-th percentile (0..=100) of sorted values, interpolated linearly as Criterion does.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

pub(crate) fn median(xs: &[f64]) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 50.0)
}

/// The 95% percentile-bootstrap interval of `mean(now) / mean(base) - 1`: each of
/// [`BOOTSTRAP_RESAMPLES`] rounds resamples both sets with replacement, independently.
pub(crate) fn relative_change_interval(base: &[f64], now: &[f64], seed: u64) -> (f64, f64) {
    let mut rng = SplitMix64::new(seed);
    let mut changes: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let base_mean = resampled_mean(base, &mut rng);
            resampled_mean(now, &mut rng) / base_mean - 1.0
        })
        .collect();
    changes.sort_by(f64::total_cmp);
    let tail = 50.0 * (1.0 - CONFIDENCE_LEVEL);
    (percentile(&changes, tail), percentile(&changes, 100.0 - tail))
}
