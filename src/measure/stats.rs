//! The statistics of mlxbench, in one place: the summary of a metric over trials, the median and
//! percentiles, and a seeded bootstrap of the relative change of two means (the gate's interval).
//! Deterministic: the same samples and seed give the same numbers on every machine.
use serde::{Deserialize, Serialize};

use crate::rng::{fnv1a, SplitMix64};

/// Resamples drawn for each bootstrap interval.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;
/// Confidence level of the bootstrap intervals.
pub const CONFIDENCE_LEVEL: f64 = 0.95;

/// Statistics of one metric over the measured trials, with every sample kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator); 0 for a single sample.
    pub stddev: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// The 95% confidence interval of the median ([`median_interval`]); `None` below 6 samples.
    #[serde(default)]
    pub median_ci95: Option<[f64; 2]>,
    pub samples: Vec<f64>,
}

impl Summary {
    /// `None` when there are no samples.
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let n = samples.len() as f64;
        let mean = mean(samples);
        let stddev = if samples.len() > 1 {
            (samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        let sorted = sorted(samples);
        Some(Self {
            mean,
            stddev,
            median: percentile(&sorted, 50.0),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            median_ci95: median_interval(&sorted).map(|(low, high)| [low, high]),
            samples: samples.to_vec(),
        })
    }

    /// The half-width of the median's 95% interval relative to the median (0.02 is ±2%): the
    /// larger of the distances from the median to either end. `None` without an interval.
    pub fn relative_ci_half_width(&self) -> Option<f64> {
        let [low, high] = self.median_ci95?;
        (self.median != 0.0).then(|| (self.median - low).max(high - self.median) / self.median.abs())
    }
}

/// The arithmetic mean (NaN for no values).
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The values in ascending order (NaNs last).
pub fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// The `p`-th percentile (0..=100) of ascending values, interpolated linearly between the two
/// nearest ranks (Criterion's and numpy's default). Panics on no values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

/// The median: the middle value, or the mean of the two middle values. Panics on no values.
pub fn median(xs: &[f64]) -> f64 {
    percentile(&sorted(xs), 50.0)
}

/// The distribution-free 95% confidence interval of the median of ascending values, from order
/// statistics: `[x(k), x(n+1-k)]` (1-based ranks) with the largest `k` whose coverage
/// `1 - 2·P(B <= k-1)`, `B ~ Binomial(n, 1/2)`, is still at least 95%. It assumes only independent
/// samples; `None` below 6 samples, where even `[min, max]` covers less than 95%.
pub fn median_interval(sorted: &[f64]) -> Option<(f64, f64)> {
    let n = sorted.len();
    let tail = (1.0 - CONFIDENCE_LEVEL) / 2.0;
    // P(B <= i) accumulated in log space, so large n does not underflow 0.5^n.
    let ln_half = 0.5f64.ln();
    let mut ln_pmf = n as f64 * ln_half; // P(B = 0)
    let mut ln_cdf = ln_pmf;
    if ln_cdf.exp() > tail {
        return None;
    }
    let mut k = 1; // P(B <= k - 1) <= tail holds for this k
    for i in 0..n / 2 {
        ln_pmf += ((n - i) as f64).ln() - ((i + 1) as f64).ln(); // P(B = i + 1)
        ln_cdf = ln_cdf.max(ln_pmf) + (1.0 + (-(ln_cdf - ln_pmf).abs()).exp()).ln();
        if ln_cdf.exp() > tail {
            break;
        }
        k = i + 2;
    }
    Some((sorted[k - 1], sorted[n - k]))
}

/// The 95% percentile-bootstrap interval of `median(a) / median(b)`: each of
/// [`BOOTSTRAP_RESAMPLES`] rounds resamples both sets with replacement, independently. Seeded,
/// so the same samples give the same interval.
pub fn ratio_of_medians_interval(a: &[f64], b: &[f64], seed: u64) -> (f64, f64) {
    let mut rng = SplitMix64::new(seed);
    let mut resample = |xs: &[f64]| median(&(0..xs.len()).map(|_| xs[rng.below(xs.len())]).collect::<Vec<_>>());
    let mut ratios: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let top = resample(a);
            top / resample(b)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let tail = 50.0 * (1.0 - CONFIDENCE_LEVEL);
    (percentile(&ratios, tail), percentile(&ratios, 100.0 - tail))
}

/// A seed derived from a benchmark id, so each row has its own stream and reruns agree.
pub fn seed_for(id: &str) -> u64 {
    fnv1a(id.as_bytes())
}

fn resampled_mean(xs: &[f64], rng: &mut SplitMix64) -> f64 {
    (0..xs.len()).map(|_| xs[rng.below(xs.len())]).sum::<f64>() / xs.len() as f64
}

/// The 95% percentile-bootstrap interval of `mean(now) / mean(base) - 1`: each of
/// [`BOOTSTRAP_RESAMPLES`] rounds resamples both sets with replacement, independently.
pub fn relative_change_interval(base: &[f64], now: &[f64], seed: u64) -> (f64, f64) {
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

/// The 95% percentile-bootstrap interval of `statistic` over `n` paired observations: each of
/// [`BOOTSTRAP_RESAMPLES`] rounds draws `n` indices with replacement and evaluates `statistic` on
/// them, so values that belong together (one scored token's numbers) stay together. Seeded.
pub fn paired_bootstrap_interval(n: usize, seed: u64, mut statistic: impl FnMut(&[usize]) -> f64) -> (f64, f64) {
    let mut rng = SplitMix64::new(seed);
    let mut indices = vec![0; n];
    let mut values: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            indices.iter_mut().for_each(|i| *i = rng.below(n));
            statistic(&indices)
        })
        .collect();
    values.sort_by(f64::total_cmp);
    let tail = 50.0 * (1.0 - CONFIDENCE_LEVEL);
    (percentile(&values, tail), percentile(&values, 100.0 - tail))
}

/// The 95% percentile-bootstrap interval of the mean of `xs` ([`paired_bootstrap_interval`]).
pub fn mean_interval(xs: &[f64], seed: u64) -> (f64, f64) {
    paired_bootstrap_interval(xs.len(), seed, |idx| idx.iter().map(|&i| xs[i]).sum::<f64>() / idx.len() as f64)
}

/// A least-squares line through `(i, ys[i])`, `i = 0, 1, ...`: its slope per step and the 95%
/// confidence interval of the slope (Student's t with n − 2 degrees of freedom).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    pub slope: f64,
    pub slope_ci95: [f64; 2],
}

/// The fit of `ys` against their index; `None` below 3 points (no interval without residuals).
pub fn linear_fit(ys: &[f64]) -> Option<LinearFit> {
    let n = ys.len();
    if n < 3 {
        return None;
    }
    let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let (mean_x, mean_y) = (mean(&xs), mean(ys));
    let sxx: f64 = xs.iter().map(|x| (x - mean_x).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let residuals: f64 = xs.iter().zip(ys).map(|(x, y)| (y - intercept - slope * x).powi(2)).sum();
    let standard_error = (residuals / (n - 2) as f64 / sxx).sqrt();
    let half = student_t_975(n - 2) * standard_error;
    Some(LinearFit { slope, slope_ci95: [slope - half, slope + half] })
}

/// The 97.5th percentile of Student's t with `df` degrees of freedom (two-sided 95%), from the
/// standard table; between 30 and infinity, linear in 1/df between the tabled 30, 40, 60, 120.
pub fn student_t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    const TAIL: [(f64, f64); 5] = [(30.0, 2.042), (40.0, 2.021), (60.0, 2.000), (120.0, 1.980), (f64::INFINITY, 1.960)];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => {
            let inv = 1.0 / df as f64;
            let (upper, lower) = TAIL.windows(2).map(|w| (w[0], w[1])).find(|(_, (d, _))| df as f64 <= *d).expect("infinity ends it");
            let (inv_hi, inv_lo) = (1.0 / upper.0, 1.0 / lower.0);
            lower.1 + (upper.1 - lower.1) * (inv - inv_lo) / (inv_hi - inv_lo)
        }
    }
}
