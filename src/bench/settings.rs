//! The settings of a benchmark that are not axes of its plan: trial protocol (warmup, repeats,
//! delay), prompts (kind, seed) and how generations run (prefill chunk, KV-cache options).
use std::time::Duration;

use super::plan::RunPoint;
use crate::{
    cache::KvCacheOptions,
    device::DeviceKind,
    error::{Error, Result},
    generate::{GenerateOptions, Sampling},
    prompt::PromptKind,
};

/// How many measured trials a point gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Repeats {
    /// Exactly this many.
    Fixed(usize),
    /// Until the 95% interval of the median decode rate (the robust one; the prompt rate when
    /// nothing is decoded) is within `target` of it (a fraction: 0.02 is ±2%), with at least
    /// `min` trials, and at most `max` trials or `max_time` per point and engine.
    Auto { target: f64, min: usize, max: usize, max_time: Duration },
}

impl Repeats {
    /// Fewest trials with which a 95% interval of the median exists.
    pub const AUTO_MIN: usize = 6;
    /// Most trials `auto` runs.
    pub const AUTO_MAX: usize = 1000;

    /// `auto` with a target in percent and a time budget in seconds, checked.
    pub fn auto(target_pct: f64, max_time_secs: f64) -> Result<Self> {
        if !(target_pct > 0.0 && target_pct.is_finite()) {
            return Err(Error::InvalidOption(format!("--target-ci {target_pct}: must be a percentage > 0")));
        }
        let max_time = Duration::try_from_secs_f64(max_time_secs)
            .map_err(|_| Error::InvalidOption(format!("--max-time {max_time_secs}: must be a number of seconds >= 0")))?;
        Ok(Repeats::Auto { target: target_pct / 100.0, min: Self::AUTO_MIN, max: Self::AUTO_MAX, max_time })
    }

    /// Whether a point with `measured` (its precision metric over the trials so far) after
    /// `elapsed` of measuring is done.
    pub fn done(&self, measured: usize, precision: Option<&crate::measure::Summary>, elapsed: Duration) -> bool {
        match *self {
            Repeats::Fixed(n) => measured >= n,
            Repeats::Auto { target, min, max, max_time } => {
                measured >= max
                    || (measured >= min
                        && (elapsed >= max_time || precision.and_then(|s| s.relative_ci_half_width()).is_some_and(|w| w <= target)))
            }
        }
    }

    /// The most measured trials a point can get (for progress bars and the report's context).
    pub fn most(&self) -> usize {
        match *self {
            Repeats::Fixed(n) => n,
            Repeats::Auto { max, .. } => max,
        }
    }
}

/// How every point of a plan is measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Unmeasured trials before the measured ones (kernels compile and caches warm on first use).
    pub warmup: usize,
    /// Measured trials per point.
    pub repeats: Repeats,
    /// Pause before each trial after the first (lets a Mac cool down).
    pub delay: Duration,
    pub prompt_kind: PromptKind,
    /// Seed of random prompts.
    pub seed: u64,
    /// Prompt tokens per prefill forward pass.
    pub prefill_step_size: usize,
    /// KV-cache options; `kv_bits` is the point's, not taken from here.
    pub kv: KvCacheOptions,
    /// Time the first trial after a model loads apart (cold caches, kernels compiling) instead of
    /// only warming up with it.
    pub cold: bool,
    /// The Python that runs the mlx-lm engine.
    pub python: String,
    /// The device the engines run on.
    pub device: DeviceKind,
    /// Run the decode step's compiled pieces (`generate::GenerateOptions::compile`).
    pub compile: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            warmup: 1,
            repeats: Repeats::Fixed(3),
            delay: Duration::ZERO,
            prompt_kind: PromptKind::Text,
            seed: 0,
            prefill_step_size: 2048,
            kv: KvCacheOptions::default(),
            cold: false,
            python: "python3".into(),
            device: DeviceKind::Cpu,
            compile: false,
        }
    }
}

impl Settings {
    /// `delay` in seconds, checked: a number >= 0.
    pub fn delay_from_secs(seconds: f64) -> Result<Duration> {
        Duration::try_from_secs_f64(seconds)
            .map_err(|_| Error::InvalidOption(format!("--delay {seconds}: must be a number of seconds >= 0")))
    }

    /// Trials per point and engine, warmup included: the count for fixed repeats, the fewest
    /// (6 measured) for `auto`, which may run more.
    pub fn trials_per_point(&self) -> usize {
        self.warmup
            + match self.repeats {
                Repeats::Fixed(n) => n,
                Repeats::Auto { min, .. } => min,
            }
    }

    /// What a generation at `point` is asked to do: greedy, `n_generate` tokens, never stopping
    /// early, with the point's KV bits.
    pub fn generate_options(&self, point: &RunPoint) -> GenerateOptions {
        GenerateOptions {
            n_generate: point.n_generate,
            sampling: Sampling::Greedy,
            kv: KvCacheOptions { kv_bits: point.kv_bits, ..self.kv },
            prefill_step_size: self.prefill_step_size,
            stop_tokens: Vec::new(),
            compile: self.compile,
        }
    }
}
