//! Trials: a generation observed from outside, the host clock taken at the boundaries where
//! [`Generation`] has evaluated its work (prompt on the device, prefill done, each token on the
//! host). Shared by `mlxbench run` (whole trials) and the Criterion benches (one phase).
use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use super::{
    metrics::{TrialMemory, TrialMetrics, TrialTimings},
    Phase,
};
use crate::{
    device,
    error::Result,
    generate::{GenerateOptions, Generation},
    models::LanguageModel,
    prompt::Tokens,
};

/// A generation ready to be timed: a fresh KV cache holding the first `depth` tokens of
/// `prompt` (untimed context), the rest of the prompt on the device, MLX's buffer cache emptied
/// and its peak-memory window started.
pub fn prepare<'m>(
    model: &'m dyn LanguageModel,
    prompt: &Tokens,
    depth: usize,
    options: &GenerateOptions,
) -> Result<Generation<'m>> {
    device::clear_cache()?;
    let mut generation = Generation::new(model, prompt, options.clone())?;
    if depth > 0 {
        generation.prefill_context(depth)?;
    }
    generation.upload_prompt()?;
    device::clear_cache()?;
    device::reset_peak_memory()?;
    Ok(generation)
}

/// MLX's counters now and the generation's KV-cache size.
pub fn memory_of(generation: &Generation) -> Result<TrialMemory> {
    let snapshot = device::memory_snapshot()?;
    Ok(TrialMemory {
        peak_memory_bytes: snapshot.peak_bytes,
        active_memory_bytes: snapshot.active_bytes,
        cache_memory_bytes: snapshot.cache_bytes,
        kv_cache_bytes: generation.cache_nbytes() as u64,
    })
}

/// What one trial measured and produced.
pub struct Trial {
    pub timings: TrialTimings,
    pub metrics: TrialMetrics,
    /// The generated ids, one `Vec` per decode step with an id per sequence.
    pub generated: Vec<Vec<u32>>,
}

/// One trial: `prompt` (`depth` context tokens, then the measured prompt) and `options.n_generate`
/// generated tokens, with the timestamps and memory counters that define its metrics.
pub fn run_trial(
    model: &dyn LanguageModel,
    prompt: &Tokens,
    depth: usize,
    options: &GenerateOptions,
) -> Result<Trial> {
    let mut generation = prepare(model, prompt, depth, options)?;
    let n_prompt = generation.pending_tokens();
    let delay = injected_delay();
    let start = Instant::now();
    generation.prefill()?;
    let prefill_done = start.elapsed();
    let n_prefill = n_prompt - generation.pending_tokens();
    let mut token_times = Vec::with_capacity(options.n_generate);
    let mut built_times = Vec::with_capacity(options.n_generate);
    let mut queued_times = Vec::with_capacity(options.n_generate);
    let mut generated = Vec::with_capacity(options.n_generate);
    while generation.build_next()? {
        built_times.push(start.elapsed());
        generation.submit_next()?;
        queued_times.push(start.elapsed());
        let step = generation.read_token()?;
        token_times.push(start.elapsed());
        generated.push(step.tokens);
        if let Some(delay) = delay {
            std::thread::sleep(delay);
        }
    }
    let timings = TrialTimings { batch: prompt.batch(), n_context: depth, n_prompt, n_prefill, prefill_done, token_times, built_times, queued_times };
    let memory = memory_of(&generation)?;
    Ok(Trial { metrics: TrialMetrics::from_timings(&timings, memory), timings, generated })
}

/// The variable that slows every generated token down by that many microseconds: a deliberate,
/// known regression for checking that the regression gate catches one. Never set it otherwise.
pub const INJECTED_DELAY_VAR: &str = "MLXBENCH_TEST_DELAY_PER_TOKEN_US";

/// The per-token delay [`INJECTED_DELAY_VAR`] asks for, read once per process.
fn injected_delay() -> Option<Duration> {
    static DELAY: OnceLock<Option<Duration>> = OnceLock::new();
    *DELAY.get_or_init(|| {
        let micros: u64 = std::env::var(INJECTED_DELAY_VAR).ok()?.trim().parse().ok()?;
        (micros > 0).then(|| Duration::from_micros(micros))
    })
}

/// One timed phase for the bench targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhaseSample {
    pub time: Duration,
    /// MLX's peak memory from the start of the phase's trial (weights included).
    pub peak_memory_bytes: u64,
    pub kv_cache_bytes: u64,
}

/// The prompt length a phase needs for `n_prompt` (`p<N>` / `d<N>` in its id): prefill runs
/// all prompt tokens but the last, so it gets one more to prefill exactly `n_prompt`.
pub fn phase_prompt_len(phase: Phase, n_prompt: usize) -> usize {
    match phase {
        Phase::Prefill => n_prompt + 1,
        Phase::Decode | Phase::Ttft => n_prompt,
    }
}

/// Runs a fresh trial and times only `phase` of it:
/// - prefill: the prompt (built with [`phase_prompt_len`]) into the empty cache, cache evaluated;
/// - ttft: prompt on the device -> first token on the host;
/// - decode: `n_generate` tokens after the first, the prompt already in the cache (the peak-memory
///   window starts with the timed part).
pub fn time_phase(
    model: &dyn LanguageModel,
    prompt: &Tokens,
    phase: Phase,
    n_generate: usize,
    options: &GenerateOptions,
) -> Result<PhaseSample> {
    let n_generate = match phase {
        Phase::Prefill | Phase::Ttft => 1,
        Phase::Decode => n_generate + 1,
    };
    let options = GenerateOptions { n_generate, ..options.clone() };
    let mut generation = prepare(model, prompt, 0, &options)?;
    let time = match phase {
        Phase::Prefill => {
            let start = Instant::now();
            generation.prefill()?;
            start.elapsed()
        }
        Phase::Ttft => {
            let start = Instant::now();
            generation.next_token()?;
            start.elapsed()
        }
        Phase::Decode => {
            generation.next_token()?;
            device::reset_peak_memory()?;
            let delay = injected_delay();
            let start = Instant::now();
            while generation.next_token()?.is_some() {
                if let Some(delay) = delay {
                    std::thread::sleep(delay);
                }
            }
            start.elapsed()
        }
    };
    let memory = memory_of(&generation)?;
    Ok(PhaseSample { time, peak_memory_bytes: memory.peak_memory_bytes, kv_cache_bytes: memory.kv_cache_bytes })
}
