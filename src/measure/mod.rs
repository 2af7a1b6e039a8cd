//! The measuring layer: times a generation from outside and turns the timestamps into metrics.
//! - [`trial`]: one trial (fresh cache, prompt on the device, host clock at each boundary where
//!   MLX has finished) and one timed phase for the Criterion benches;
//! - [`metrics`]: each metric defined once, as arithmetic on a trial's timestamps;
//! - [`stats`]: the statistics every other module uses (summaries, median, percentiles, bootstrap).
//! - [`speculative`]: a draft model's trials, acceptance measures and the verify-cost curve.
//!
//! It uses only `generate` and `device`; benches, sessions and reports sit above it.
pub mod metrics;
pub mod speculative;
pub mod stats;
mod trial;

pub use metrics::{DecodeWindow, MemoryBreakdown, MetricSummaries, TrialMemory, TrialMetrics, TrialTimings, DECODE_WINDOW};
pub use stats::Summary;
pub use trial::{phase_prompt_len, prepare, run_trial, time_phase, PhaseSample, Trial, INJECTED_DELAY_VAR};

/// The phases the bench targets time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Prompt processing: `p<N>` prompt tokens into an empty cache, cache evaluated.
    Prefill,
    /// Generation: `g<N>` tokens after the first, with `d<D>` prompt tokens in the cache.
    Decode,
    /// Time to first token: a `p<N>`-token prompt on the device -> first token on the host.
    Ttft,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prefill => "prefill",
            Phase::Decode => "decode",
            Phase::Ttft => "ttft",
        }
    }
}
