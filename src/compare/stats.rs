//! The gate's statistics: a seeded bootstrap of the relative change of two means, and medians.
//! Deterministic: the same samples and seed give the same interval on every machine.

/// Resamples drawn for each bootstrap interval.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;
/// Confidence level of the bootstrap intervals.
pub const CONFIDENCE_LEVEL: f64 = 0.95;

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, fast, and good enough to pick resample indices.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (Lemire's multiply-shift; the bias is below 2^-50 for our `n`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// A seed derived from a benchmark id (FNV-1a), so each row has its own stream and reruns agree.
pub(crate) fn seed_for(id: &str) -> u64 {
    id.bytes().fold(0xCBF2_9CE4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3))
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
