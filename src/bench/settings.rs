//! The settings of a benchmark that are not axes of its plan: trial protocol (warmup, repeats,
//! delay), prompts (kind, seed) and how generations run (prefill chunk, KV-cache options).
use std::time::Duration;

use super::plan::RunPoint;
use crate::{
    cache::KvCacheOptions,
    error::{Error, Result},
    generate::{GenerateOptions, Sampling},
    prompt::PromptKind,
};

/// How every point of a plan is measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Unmeasured trials before the measured ones (kernels compile and caches warm on first use).
    pub warmup: usize,
    /// Measured trials per point.
    pub repeats: usize,
    /// Pause before each trial after the first (lets a Mac cool down).
    pub delay: Duration,
    pub prompt_kind: PromptKind,
    /// Seed of random prompts.
    pub seed: u64,
    /// Prompt tokens per prefill forward pass.
    pub prefill_step_size: usize,
    /// KV-cache options; `kv_bits` is the point's, not taken from here.
    pub kv: KvCacheOptions,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            warmup: 1,
            repeats: 3,
            delay: Duration::ZERO,
            prompt_kind: PromptKind::Text,
            seed: 0,
            prefill_step_size: 2048,
            kv: KvCacheOptions::default(),
        }
    }
}

impl Settings {
    /// `delay` in seconds, checked: a number >= 0.
    pub fn delay_from_secs(seconds: f64) -> Result<Duration> {
        Duration::try_from_secs_f64(seconds)
            .map_err(|_| Error::InvalidOption(format!("--delay {seconds}: must be a number of seconds >= 0")))
    }

    /// Trials per point, warmup included.
    pub fn trials_per_point(&self) -> usize {
        self.warmup + self.repeats
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
        }
    }
}
