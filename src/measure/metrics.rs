//! The benchmark's numbers, each defined once: what a trial's timestamps and memory counters turn
//! into (TTFT, prompt tokens/s, generation tokens/s, peak memory, decode bandwidth) and their
//! summaries over trials. Pure arithmetic on plain data, so it is tested without a clock.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::stats::Summary;

/// Host-side timestamps of one trial, each measured from the moment the prompt's tokens are on
/// the device (`t = 0`), and the shape of what was run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialTimings {
    /// Sequences run together.
    pub batch: usize,
    /// Prompt tokens per sequence (not counting context already in the cache).
    pub n_prompt: usize,
    /// Prompt tokens per sequence run by the prefill phase: all but the last one, which the first
    /// decode step runs (as in mlx-lm).
    pub n_prefill: usize,
    /// Tokens generated per sequence.
    pub n_generated: usize,
    /// When the prefill's last chunk was evaluated (cache filled).
    pub prefill_done: Duration,
    /// When the first generated token was on the host.
    pub first_token: Duration,
    /// When the last generated token was on the host.
    pub last_token: Duration,
}

/// MLX's memory counters at the end of a trial, whose peak window began at the trial's start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TrialMemory {
    /// Highest allocated bytes during the trial (weights included).
    pub peak_memory_bytes: u64,
    /// Allocated bytes at the end of the trial.
    pub active_memory_bytes: u64,
    /// Freed bytes MLX's allocator holds for reuse at the end of the trial.
    pub cache_memory_bytes: u64,
    /// Bytes of the KV cache itself at the end of the trial (all layers, all sequences).
    pub kv_cache_bytes: u64,
}

/// One trial's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrialMetrics {
    /// Time to first token: prompt on the device -> first generated token on the host.
    pub ttft_ms: f64,
    /// `batch × prefill_tokens / prefill time`; `None` for a 1-token prompt (nothing to prefill).
    pub prompt_tps: Option<f64>,
    /// `batch × (generated − 1) / (first token -> last token)`; `None` with fewer than 2 tokens.
    pub generation_tps: Option<f64>,
    /// `(generated − 1) / (first token -> last token)`: the speed one sequence sees.
    pub generation_tps_per_sequence: Option<f64>,
    #[serde(flatten)]
    pub memory: TrialMemory,
}

fn per_second(count: usize, time: Duration) -> Option<f64> {
    (count > 0 && !time.is_zero()).then(|| count as f64 / time.as_secs_f64())
}

impl TrialMetrics {
    /// The metrics of a trial, so that the first token's time counts in exactly one of prefill
    /// throughput (no), TTFT (yes) and generation throughput (no).
    pub fn from_timings(t: &TrialTimings, memory: TrialMemory) -> Self {
        let decode_time = t.last_token.saturating_sub(t.first_token);
        let decoded = t.n_generated.saturating_sub(1);
        let per_sequence = per_second(decoded, decode_time);
        Self {
            ttft_ms: t.first_token.as_secs_f64() * 1e3,
            prompt_tps: per_second(t.batch * t.n_prefill, t.prefill_done),
            generation_tps: per_sequence.map(|tps| tps * t.batch as f64),
            generation_tps_per_sequence: per_sequence,
            memory,
        }
    }
}

/// The statistics of every metric over a configuration's measured trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummaries {
    pub ttft_ms: Option<Summary>,
    pub prompt_tps: Option<Summary>,
    pub generation_tps: Option<Summary>,
    pub generation_tps_per_sequence: Option<Summary>,
    pub peak_memory_bytes: Option<Summary>,
    pub kv_cache_bytes: Option<Summary>,
}

impl MetricSummaries {
    /// Summaries of `trials`; a metric that is undefined in some trial (e.g. prompt t/s of a
    /// 1-token prompt) summarises the trials where it is defined.
    pub fn of(trials: &[TrialMetrics]) -> Self {
        let of = |f: &dyn Fn(&TrialMetrics) -> Option<f64>| Summary::of(&trials.iter().filter_map(f).collect::<Vec<_>>());
        Self {
            ttft_ms: of(&|t| Some(t.ttft_ms)),
            prompt_tps: of(&|t| t.prompt_tps),
            generation_tps: of(&|t| t.generation_tps),
            generation_tps_per_sequence: of(&|t| t.generation_tps_per_sequence),
            peak_memory_bytes: of(&|t| Some(t.memory.peak_memory_bytes as f64)),
            kv_cache_bytes: of(&|t| Some(t.memory.kv_cache_bytes as f64)),
        }
    }
}

/// Memory traffic of decoding: each step reads the weights once and every sequence's KV cache,
/// and steps happen `per_sequence_tps` times a second. Returns GB/s (decimal).
pub fn decode_bandwidth_gbps(weight_bytes: u64, kv_cache_bytes: u64, per_sequence_tps: f64) -> f64 {
    (weight_bytes + kv_cache_bytes) as f64 * per_sequence_tps / 1e9
}

/// The share of the device's peak bandwidth (GB/s, from `hwinfo`) that `decode_gbps` is; `None`
/// when the peak is not positive.
pub fn bandwidth_utilisation(decode_gbps: f64, peak_gbps: f64) -> Option<f64> {
    (peak_gbps > 0.0).then(|| decode_gbps / peak_gbps)
}
