//! The benchmark's numbers, each defined once: what a trial's timestamps and memory counters turn
//! into (TTFT, prompt tokens/s, generation tokens/s, peak memory, decode bandwidth) and their
//! summaries over trials. Pure arithmetic on plain data, so it is tested without a clock.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::stats::{percentile, sorted, Summary};
use crate::hwinfo::{
    telemetry::{joules_per_token, GpuTelemetry},
    thermal::ThermalState,
};

/// Host-side timestamps of one trial, each measured from the moment the prompt's tokens are on
/// the device (`t = 0`), and the shape of what was run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialTimings {
    /// Sequences run together.
    pub batch: usize,
    /// Tokens already in the cache before the prompt (`--depth`, untimed).
    pub n_context: usize,
    /// Prompt tokens per sequence (not counting context already in the cache).
    pub n_prompt: usize,
    /// Prompt tokens per sequence run by the prefill phase: all but the last one, which the first
    /// decode step runs (as in mlx-lm).
    pub n_prefill: usize,
    /// When the prefill's last chunk was evaluated (cache filled).
    pub prefill_done: Duration,
    /// When each generated token (one per sequence) was on the host, in order.
    pub token_times: Vec<Duration>,
    /// For each generated token, when the host had built the step after it (the graph, lazily),
    /// and when it had queued that step (MLX `async_eval` returned), just before it began to wait
    /// for the token; empty when the engine does not expose the split (mlx-lm).
    pub built_times: Vec<Duration>,
    pub queued_times: Vec<Duration>,
}

impl TrialTimings {
    /// Tokens generated per sequence.
    pub fn n_generated(&self) -> usize {
        self.token_times.len()
    }

    /// When the first token was on the host (the prefill's end if there is none).
    pub fn first_token(&self) -> Duration {
        self.token_times.first().copied().unwrap_or(self.prefill_done)
    }

    /// When the last token was on the host (the prefill's end if there is none).
    pub fn last_token(&self) -> Duration {
        self.token_times.last().copied().unwrap_or(self.prefill_done)
    }

    /// Inter-token latencies: the gaps between consecutive tokens, from the first to the second
    /// token on (the first token's own time is TTFT's).
    pub fn inter_token_latencies(&self) -> Vec<Duration> {
        self.token_times.windows(2).map(|w| w[1].saturating_sub(w[0])).collect()
    }

    /// Each inter-token latency split in two at the moment the next step was queued: the host's
    /// part (previous token on the host -> next step's graph built and handed to MLX, with
    /// whatever else the host did in between) and the wait (-> this token on the host). The two
    /// add up to the latency. `None` without a queue time for every token.
    pub fn step_host_and_wait(&self) -> Option<Vec<(Duration, Duration)>> {
        (self.queued_times.len() == self.token_times.len()).then(|| {
            self.token_times
                .windows(2)
                .zip(&self.queued_times[1.min(self.queued_times.len())..])
                .map(|(w, &queued)| (queued.saturating_sub(w[0]), w[1].saturating_sub(queued)))
                .collect()
        })
    }

    /// The part of each step's host part spent building the next step's graph (previous token on
    /// the host -> graph built); the rest, up to `async_eval` returning, is MLX encoding and
    /// launching it, and waiting there when more than MLX's limit of tasks (10) are in flight.
    /// `None` without a build time for every token.
    pub fn step_build(&self) -> Option<Vec<Duration>> {
        (self.built_times.len() == self.token_times.len()).then(|| {
            self.token_times.windows(2).zip(&self.built_times[1.min(self.built_times.len())..]).map(|(w, &built)| built.saturating_sub(w[0])).collect()
        })
    }
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

/// Where a trial's peak memory went: the model's weights, the KV cache, and the rest of the peak
/// (transient: activations, attention scores, the prompt), with MLX's buffer cache beside it
/// (freed bytes MLX keeps for reuse, not part of the peak). What a KV-bits setting saves shows in
/// `kv_cache_bytes`; what it does not, in the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryBreakdown {
    /// Bytes of the model's weight tensors on the device (as stored: quantized or not).
    pub weights_bytes: u64,
    /// Bytes of the KV cache at the end of the trial (all layers, all sequences).
    pub kv_cache_bytes: u64,
    /// `peak − weights − KV cache` (0 when the peak is smaller than the two).
    pub transient_bytes: u64,
    /// MLX's buffer cache at the end of the trial.
    pub buffer_cache_bytes: u64,
}

impl MemoryBreakdown {
    /// The breakdown of a `peak_bytes` peak of a model of `weights_bytes` with a KV cache of
    /// `kv_cache_bytes` and `buffer_cache_bytes` in MLX's buffer cache.
    pub fn of(peak_bytes: u64, weights_bytes: u64, kv_cache_bytes: u64, buffer_cache_bytes: u64) -> Self {
        Self {
            weights_bytes,
            kv_cache_bytes,
            transient_bytes: peak_bytes.saturating_sub(weights_bytes.saturating_add(kv_cache_bytes)),
            buffer_cache_bytes,
        }
    }

    /// The breakdown of one trial's counters.
    pub fn of_trial(memory: &TrialMemory, weights_bytes: u64) -> Self {
        Self::of(memory.peak_memory_bytes, weights_bytes, memory.kv_cache_bytes, memory.cache_memory_bytes)
    }
}

/// Generated tokens per decode-rate window ([`DecodeWindow`]).
pub const DECODE_WINDOW: usize = 128;

/// The decode rate over a window of consecutive inter-token latencies, and how much context the
/// window's steps attended to: how decode slows as the cache grows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DecodeWindow {
    /// Tokens the window's first step attended to (context + prompt + tokens generated so far).
    pub context_tokens: usize,
    /// Inter-token latencies in the window ([`DECODE_WINDOW`], fewer in the last one).
    pub n_tokens: usize,
    /// `batch × n_tokens / (sum of the window's latencies)`.
    pub tps: f64,
}

/// One trial's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialMetrics {
    /// Time to first token: prompt on the device -> first generated token on the host.
    pub ttft_ms: f64,
    /// `batch × prefill_tokens / prefill time`; `None` for a 1-token prompt (nothing to prefill).
    pub prompt_tps: Option<f64>,
    /// `batch × (generated − 1) / (first token -> last token)`; `None` with fewer than 2 tokens.
    /// The same as `batch / mean inter-token latency`.
    pub generation_tps: Option<f64>,
    /// `(generated − 1) / (first token -> last token)`: the speed one sequence sees.
    pub generation_tps_per_sequence: Option<f64>,
    #[serde(flatten)]
    pub memory: TrialMemory,
    /// `batch / median inter-token latency`: the decode rate a few long stalls do not move.
    #[serde(default)]
    pub generation_tps_robust: Option<f64>,
    /// Percentiles of the inter-token latencies (ms), linearly interpolated ([`percentile`]).
    #[serde(default)]
    pub itl_p50_ms: Option<f64>,
    #[serde(default)]
    pub itl_p90_ms: Option<f64>,
    #[serde(default)]
    pub itl_p99_ms: Option<f64>,
    #[serde(default)]
    pub itl_max_ms: Option<f64>,
    /// The decode rate per window of [`DECODE_WINDOW`] generated tokens, in order.
    #[serde(default)]
    pub decode_windows: Vec<DecodeWindow>,
    /// When each generated token was on the host, ms from `t = 0` (the first one is the TTFT).
    #[serde(default)]
    pub token_ms: Vec<f64>,
    /// What the GPU did during the trial (NVIDIA; see `hwinfo::telemetry`).
    #[serde(default)]
    pub gpu: Option<GpuTelemetry>,
    /// The trial's GPU energy over the tokens it generated (all sequences), J.
    #[serde(default)]
    pub joules_per_token: Option<f64>,
    /// The Mac's thermal state, the hotter of the trial's start and end (macOS only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thermal_state: Option<ThermalState>,
    /// With a draft model: the acceptance measures of the trial's verify steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speculative: Option<super::speculative::SpeculativeTrial>,
    /// Percentiles of the host's part of each inter-token latency (ms): previous token on the host
    /// -> the next step's graph built and queued ([`TrialTimings::step_host_and_wait`]).
    #[serde(default)]
    pub step_host_p50_ms: Option<f64>,
    #[serde(default)]
    pub step_host_p90_ms: Option<f64>,
    #[serde(default)]
    pub step_host_p99_ms: Option<f64>,
    /// Percentiles of the rest of each inter-token latency (ms): the host waiting for the token.
    #[serde(default)]
    pub step_wait_p50_ms: Option<f64>,
    #[serde(default)]
    pub step_wait_p90_ms: Option<f64>,
    #[serde(default)]
    pub step_wait_p99_ms: Option<f64>,
    /// `sum of host parts / sum of inter-token latencies`: near 1 the decode is host-bound (the
    /// device waits for the host's graphs), near 0 device-bound.
    #[serde(default)]
    pub step_host_share: Option<f64>,
    /// When each token's next step was queued, ms from `t = 0` (beside `token_ms`).
    #[serde(default)]
    pub step_queued_ms: Vec<f64>,
    /// Percentiles of the graph-building share of each host part (ms; [`TrialTimings::step_build`]).
    #[serde(default)]
    pub step_build_p50_ms: Option<f64>,
    #[serde(default)]
    pub step_build_p90_ms: Option<f64>,
    /// When each token's next step was built, ms from `t = 0`.
    #[serde(default)]
    pub step_built_ms: Vec<f64>,
}

fn per_second(count: usize, time: Duration) -> Option<f64> {
    (count > 0 && !time.is_zero()).then(|| count as f64 / time.as_secs_f64())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl TrialMetrics {
    /// The metrics of a trial, so that the first token's time counts in exactly one of prefill
    /// throughput (no), TTFT (yes) and generation throughput (no).
    pub fn from_timings(t: &TrialTimings, memory: TrialMemory) -> Self {
        let decode_time = t.last_token().saturating_sub(t.first_token());
        let decoded = t.n_generated().saturating_sub(1);
        let per_sequence = per_second(decoded, decode_time);
        let itl = t.inter_token_latencies();
        let itl_ms = sorted(&itl.iter().copied().map(ms).collect::<Vec<_>>());
        let itl_at = |p: f64| (!itl_ms.is_empty()).then(|| percentile(&itl_ms, p));
        let batch = t.batch as f64;
        let decode_windows = itl
            .chunks(DECODE_WINDOW)
            .enumerate()
            .filter_map(|(k, window)| {
                let tps = per_second(window.len(), window.iter().sum())? * batch;
                let context_tokens = t.n_context + t.n_prompt + 1 + k * DECODE_WINDOW;
                Some(DecodeWindow { context_tokens, n_tokens: window.len(), tps })
            })
            .collect();
        let split = t.step_host_and_wait().filter(|split| !split.is_empty());
        let parts_ms = |part: fn(&(Duration, Duration)) -> Duration| {
            split.as_ref().map(|split| sorted(&split.iter().map(|s| ms(part(s))).collect::<Vec<_>>()))
        };
        let (host_ms, wait_ms) = (parts_ms(|s| s.0), parts_ms(|s| s.1));
        let host_at = |p: f64| host_ms.as_ref().map(|v| percentile(v, p));
        let wait_at = |p: f64| wait_ms.as_ref().map(|v| percentile(v, p));
        let build_ms = t.step_build().filter(|b| !b.is_empty()).map(|b| sorted(&b.into_iter().map(ms).collect::<Vec<_>>()));
        let build_at = |p: f64| build_ms.as_ref().map(|v| percentile(v, p));
        let step_host_share = split.as_ref().and_then(|split| {
            let host: Duration = split.iter().map(|s| s.0).sum();
            let total: Duration = split.iter().map(|s| s.0 + s.1).sum();
            (!total.is_zero()).then(|| host.as_secs_f64() / total.as_secs_f64())
        });
        Self {
            ttft_ms: ms(t.first_token()),
            prompt_tps: per_second(t.batch * t.n_prefill, t.prefill_done),
            generation_tps: per_sequence.map(|tps| tps * batch),
            generation_tps_per_sequence: per_sequence,
            memory,
            generation_tps_robust: itl_at(50.0).filter(|&p50| p50 > 0.0).map(|p50| batch * 1e3 / p50),
            itl_p50_ms: itl_at(50.0),
            itl_p90_ms: itl_at(90.0),
            itl_p99_ms: itl_at(99.0),
            itl_max_ms: itl_ms.last().copied(),
            decode_windows,
            token_ms: t.token_times.iter().copied().map(ms).collect(),
            gpu: None,
            joules_per_token: None,
            thermal_state: None,
            speculative: None,
            step_host_p50_ms: host_at(50.0),
            step_host_p90_ms: host_at(90.0),
            step_host_p99_ms: host_at(99.0),
            step_wait_p50_ms: wait_at(50.0),
            step_wait_p90_ms: wait_at(90.0),
            step_wait_p99_ms: wait_at(99.0),
            step_host_share,
            step_queued_ms: t.queued_times.iter().copied().map(ms).collect(),
            step_build_p50_ms: build_at(50.0),
            step_build_p90_ms: build_at(90.0),
            step_built_ms: t.built_times.iter().copied().map(ms).collect(),
        }
    }

    /// These metrics with the GPU telemetry of the trial, and the energy per token it implies.
    pub fn with_gpu(mut self, gpu: GpuTelemetry, batch: usize) -> Self {
        self.joules_per_token = gpu.energy_j.and_then(|j| joules_per_token(j, batch * self.token_ms.len()));
        self.gpu = Some(gpu);
        self
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
    #[serde(default)]
    pub generation_tps_robust: Option<Summary>,
    #[serde(default)]
    pub itl_p50_ms: Option<Summary>,
    #[serde(default)]
    pub itl_p90_ms: Option<Summary>,
    #[serde(default)]
    pub itl_p99_ms: Option<Summary>,
    #[serde(default)]
    pub itl_max_ms: Option<Summary>,
    #[serde(default)]
    pub joules_per_token: Option<Summary>,
    #[serde(default)]
    pub step_host_p50_ms: Option<Summary>,
    #[serde(default)]
    pub step_wait_p50_ms: Option<Summary>,
    #[serde(default)]
    pub step_host_share: Option<Summary>,
    #[serde(default)]
    pub step_build_p50_ms: Option<Summary>,
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
            generation_tps_robust: of(&|t| t.generation_tps_robust),
            itl_p50_ms: of(&|t| t.itl_p50_ms),
            itl_p90_ms: of(&|t| t.itl_p90_ms),
            itl_p99_ms: of(&|t| t.itl_p99_ms),
            itl_max_ms: of(&|t| t.itl_max_ms),
            joules_per_token: of(&|t| t.joules_per_token),
            step_host_p50_ms: of(&|t| t.step_host_p50_ms),
            step_wait_p50_ms: of(&|t| t.step_wait_p50_ms),
            step_host_share: of(&|t| t.step_host_share),
            step_build_p50_ms: of(&|t| t.step_build_p50_ms),
        }
    }

    /// The rate that decides how precise a point is: the robust decode rate, else (with fewer
    /// than two generated tokens) the prompt rate.
    pub fn precision_metric(&self) -> Option<&Summary> {
        self.generation_tps_robust.as_ref().or(self.prompt_tps.as_ref())
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
