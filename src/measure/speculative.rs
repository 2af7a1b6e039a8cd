//! Speculative decoding measured: a trial of [`SpeculativeGeneration`] timed at its boundaries
//! (draft proposals evaluated, target's verdict on the host), the acceptance measures of its verify
//! steps, the target's verify-cost curve (forward time for T = 1…k+1 tokens at the trial's
//! context) and the speed-up that curve predicts for a measured acceptance rate. Each measure is
//! defined once here and in README's metrics table; the arithmetic is pure, tested on synthetic
//! step records.
use std::time::{Duration, Instant};

use mlx_rs::{transforms::eval, Array};
use serde::{Deserialize, Serialize};

use super::{
    metrics::{TrialMemory, TrialMetrics, TrialTimings},
    stats::median,
};
use crate::{
    cache::{self, KvCache},
    device,
    error::{Error, Result},
    generate::GenerateOptions,
    models::LanguageModel,
    prompt::Tokens,
    speculative::{SpeculativeGeneration, VerifyOutcome},
};

/// One verify step of a trial: what it did and, for mlxbench's engine, how long the draft's and
/// the target's parts took (mlx-lm's engine reports tokens only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimedStep {
    pub outcome: VerifyOutcome,
    pub draft: Option<Duration>,
    pub verify: Option<Duration>,
}

/// The acceptance measures of one speculative trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeculativeTrial {
    /// The `k` the draft was asked for per step (`--num-draft-tokens`).
    pub num_draft_tokens: usize,
    pub verify_steps: usize,
    /// Tokens the draft proposed, and those the target kept.
    pub drafted_tokens: usize,
    pub accepted_tokens: usize,
    /// `accepted_tokens / drafted_tokens`.
    pub acceptance_rate: Option<f64>,
    /// Tokens emitted per verify step, the target's bonus token included:
    /// `(accepted_tokens + bonus tokens) / verify_steps` (k + 1 when every proposal is kept).
    pub mean_accepted_length: Option<f64>,
    /// Per draft position i = 1…k: of the steps that drafted at least i tokens, the share that
    /// kept at least i.
    pub acceptance_by_position: Vec<Option<f64>>,
    /// The draft's part of the step time: `sum(draft) / sum(draft + verify)`; the target's is
    /// `1 - draft_share` (mlxbench's engine only).
    pub draft_time_share: Option<f64>,
    pub target_time_share: Option<f64>,
    /// Draft time per proposed token, ms (mlxbench's engine only).
    pub draft_ms_per_token: Option<f64>,
    /// The decode rate after the first verify step: `(generated − e₁) / (last token − first
    /// token)`, e₁ the first step's tokens (which all arrive with the first token). For plain
    /// decoding e₁ = 1 and this is `generation_tps`; the speed-up divides the two.
    pub decode_tps: Option<f64>,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

impl SpeculativeTrial {
    /// The measures of `steps`, drafted with `num_draft_tokens` a step.
    pub fn of(num_draft_tokens: usize, steps: &[TimedStep]) -> Self {
        let drafted: usize = steps.iter().map(|s| s.outcome.drafted).sum();
        let accepted: usize = steps.iter().map(|s| s.outcome.accepted).sum();
        let emitted: usize = steps.iter().map(|s| s.outcome.emitted).sum();
        let acceptance_by_position = (1..=num_draft_tokens)
            .map(|i| {
                let reached = steps.iter().filter(|s| s.outcome.drafted >= i).count();
                let kept = steps.iter().filter(|s| s.outcome.drafted >= i && s.outcome.accepted >= i).count();
                ratio(kept as f64, reached as f64)
            })
            .collect();
        let times: Option<(f64, f64)> = steps.iter().try_fold((0.0, 0.0), |(d, v), s| {
            Some((d + s.draft?.as_secs_f64(), v + s.verify?.as_secs_f64()))
        });
        let times = times.filter(|_| !steps.is_empty());
        let draft_time_share = times.and_then(|(d, v)| ratio(d, d + v));
        Self {
            num_draft_tokens,
            verify_steps: steps.len(),
            drafted_tokens: drafted,
            accepted_tokens: accepted,
            acceptance_rate: ratio(accepted as f64, drafted as f64),
            mean_accepted_length: ratio(emitted as f64, steps.len() as f64),
            acceptance_by_position,
            draft_time_share,
            target_time_share: draft_time_share.map(|d| 1.0 - d),
            draft_ms_per_token: times.and_then(|(d, _)| ratio(d * 1e3, drafted as f64)),
            decode_tps: None,
        }
    }

    /// With the decode rate of a trial whose tokens were on the host at `token_ms` (ms from
    /// `t = 0`) and whose first verify step handed out `first_step_tokens` of them.
    pub fn with_decode_rate(mut self, token_ms: &[f64], first_step_tokens: usize) -> Self {
        self.decode_tps = match (token_ms.first(), token_ms.last()) {
            (Some(first), Some(last)) if token_ms.len() > first_step_tokens => {
                ratio((token_ms.len() - first_step_tokens) as f64 * 1e3, last - first)
            }
            _ => None,
        };
        self
    }
}

/// The verify steps that a token stream with mlx-lm's `from_draft` flags implies, for `k` drafted
/// per step and `n_generate` tokens asked for: each step hands out its accepted proposals
/// (`from_draft`) and then the target's own token, and drafts `min(k, tokens still to go)`.
pub fn steps_from_flags(from_draft: &[bool], k: usize, n_generate: usize) -> Vec<VerifyOutcome> {
    let mut steps = Vec::new();
    let mut i = 0;
    while i < from_draft.len() {
        let drafted = k.min(n_generate.saturating_sub(i));
        let accepted = from_draft[i..].iter().take_while(|f| **f).count().min(drafted);
        let bonus = usize::from(i + accepted < from_draft.len() && !from_draft[i + accepted]);
        steps.push(VerifyOutcome { drafted, accepted, emitted: accepted + bonus });
        i += accepted + bonus;
        if accepted + bonus == 0 {
            break;
        }
    }
    steps
}

/// The expected tokens per verify step when each proposal is kept with probability `alpha`
/// independently and the first rejection ends the step: `(1 - alpha^(k+1)) / (1 - alpha)`
/// (k + 1 at alpha = 1), Leviathan et al. 2023.
pub fn expected_tokens_per_step(alpha: f64, k: usize) -> f64 {
    if (1.0 - alpha).abs() < 1e-12 {
        (k + 1) as f64
    } else {
        (1.0 - alpha.powi(k as i32 + 1)) / (1.0 - alpha)
    }
}

/// The speed-up over plain decoding that the verify-cost curve predicts for acceptance rate
/// `alpha`: `E(alpha, k) × V(1) / (k × d + V(k+1))`, with `E` from [`expected_tokens_per_step`],
/// `V(T)` the target's forward time for T tokens (`verify_ms[T-1]`) and `d` the draft's time per
/// proposed token. `None` when the curve does not reach k + 1 tokens.
pub fn predicted_speedup(alpha: f64, k: usize, draft_ms_per_token: f64, verify_ms: &[f64]) -> Option<f64> {
    let single = *verify_ms.first()?;
    let verify = *verify_ms.get(k)?;
    let step = k as f64 * draft_ms_per_token + verify;
    ratio(expected_tokens_per_step(alpha, k) * single, step)
}

/// A speculative configuration's measures over its trials: each the median of the trials'
/// values, the speed-up over the same setting without a draft (measured interleaved with it), the
/// verify-cost curve and the speed-up it predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeculativeSummary {
    pub num_draft_tokens: usize,
    pub acceptance_rate: Option<f64>,
    pub mean_accepted_length: Option<f64>,
    pub acceptance_by_position: Vec<Option<f64>>,
    pub draft_time_share: Option<f64>,
    pub target_time_share: Option<f64>,
    pub draft_ms_per_token: Option<f64>,
    /// `median(decode_tps) / median(generation_tps without a draft)`, and its 95% bootstrap
    /// interval (`stats::ratio_of_medians_interval`).
    pub speedup: Option<f64>,
    pub speedup_ci95: Option<[f64; 2]>,
    /// The target's forward time for T = 1…k+1 tokens at the configuration's context, ms.
    pub verify_cost_ms: Vec<f64>,
    /// [`predicted_speedup`] for the measured acceptance rate and draft time.
    pub predicted_speedup: Option<f64>,
}

fn median_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let values: Vec<f64> = values.flatten().collect();
    (!values.is_empty()).then(|| median(&values))
}

impl SpeculativeSummary {
    /// The summary of `trials` (those with acceptance measures); `None` when none has them.
    /// The speed-up and the curve are filled in by [`Self::with_baseline`] and
    /// [`Self::with_verify_cost`].
    pub fn of(trials: &[TrialMetrics]) -> Option<Self> {
        let spec: Vec<&SpeculativeTrial> = trials.iter().filter_map(|t| t.speculative.as_ref()).collect();
        let k = spec.first()?.num_draft_tokens;
        let draft_time_share = median_of(spec.iter().map(|s| s.draft_time_share));
        Some(Self {
            num_draft_tokens: k,
            acceptance_rate: median_of(spec.iter().map(|s| s.acceptance_rate)),
            mean_accepted_length: median_of(spec.iter().map(|s| s.mean_accepted_length)),
            acceptance_by_position: (0..k)
                .map(|i| median_of(spec.iter().map(|s| s.acceptance_by_position.get(i).copied().flatten())))
                .collect(),
            draft_time_share,
            target_time_share: draft_time_share.map(|d| 1.0 - d),
            draft_ms_per_token: median_of(spec.iter().map(|s| s.draft_ms_per_token)),
            speedup: None,
            speedup_ci95: None,
            verify_cost_ms: Vec::new(),
            predicted_speedup: None,
        })
    }

    /// With the speed-up of `trials` (this configuration's, their `decode_tps`) over `baseline`
    /// (the same setting without a draft, its `generation_tps`); `seed` seeds the bootstrap.
    pub fn with_baseline(mut self, trials: &[TrialMetrics], baseline: &[TrialMetrics], seed: u64) -> Self {
        let a: Vec<f64> = trials.iter().filter_map(|t| t.speculative.as_ref()?.decode_tps).collect();
        let b: Vec<f64> = baseline.iter().filter_map(|t| t.generation_tps).collect();
        if !a.is_empty() && !b.is_empty() {
            self.speedup = Some(median(&a) / median(&b));
            let (low, high) = super::stats::ratio_of_medians_interval(&a, &b, seed);
            self.speedup_ci95 = Some([low, high]);
        }
        self
    }

    /// With the verify-cost curve, and the speed-up it predicts.
    pub fn with_verify_cost(mut self, verify_cost_ms: Vec<f64>) -> Self {
        self.predicted_speedup = self.acceptance_rate.zip(self.draft_ms_per_token).and_then(|(alpha, d)| {
            predicted_speedup(alpha, self.num_draft_tokens, d, &verify_cost_ms)
        });
        self.verify_cost_ms = verify_cost_ms;
        self
    }
}

/// What one speculative trial measured: the usual metrics (its tokens arrive in bursts, one per
/// verify step) with the acceptance measures in `metrics.speculative`.
pub struct SpeculativeRun {
    pub metrics: TrialMetrics,
    pub generated: Vec<u32>,
    pub from_draft: Vec<bool>,
}

/// One trial of `target` with `draft` proposing `k` tokens a step: `depth` context tokens, then
/// the measured prompt, `options.n_generate` tokens. Clocks as [`super::trial::run_trial`]; each
/// token of a step is on the host when the step's verify returns.
pub fn run_speculative_trial(
    target: &dyn LanguageModel,
    draft: &dyn LanguageModel,
    prompt: &Tokens,
    depth: usize,
    options: &GenerateOptions,
    k: usize,
) -> Result<SpeculativeRun> {
    device::clear_cache()?;
    let mut generation = SpeculativeGeneration::new(target, draft, prompt, options.clone(), k)?;
    if depth > 0 {
        generation.prefill_context(depth)?;
    }
    generation.upload_prompt()?;
    device::clear_cache()?;
    device::reset_peak_memory()?;
    let n_prompt = generation.pending_tokens();
    let start = Instant::now();
    generation.prefill()?;
    let prefill_done = start.elapsed();
    let n_prefill = n_prompt - generation.pending_tokens();
    let (mut token_times, mut generated, mut from_draft, mut steps) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    while !generation.done() {
        let t0 = start.elapsed();
        generation.draft()?;
        let t1 = start.elapsed();
        let outcome = generation.verify()?;
        let t2 = start.elapsed();
        for token in generation.take_step_tokens() {
            token_times.push(t2);
            generated.push(token.token);
            from_draft.push(token.from_draft);
        }
        steps.push(TimedStep { outcome, draft: Some(t1 - t0), verify: Some(t2 - t1) });
    }
    // Speculative tokens arrive in bursts, so there is no per-token host/wait split.
    let timings = TrialTimings {
        batch: 1,
        n_context: depth,
        n_prompt,
        n_prefill,
        prefill_done,
        token_times,
        built_times: Vec::new(),
        queued_times: Vec::new(),
    };
    let snapshot = device::memory_snapshot()?;
    let memory = TrialMemory {
        peak_memory_bytes: snapshot.peak_bytes,
        active_memory_bytes: snapshot.active_bytes,
        cache_memory_bytes: snapshot.cache_bytes,
        kv_cache_bytes: generation.cache_nbytes() as u64,
    };
    let mut metrics = TrialMetrics::from_timings(&timings, memory);
    let first_step = steps.first().map_or(0, |s| s.outcome.emitted);
    metrics.speculative = Some(SpeculativeTrial::of(k, &steps).with_decode_rate(&metrics.token_ms, first_step));
    Ok(SpeculativeRun { metrics, generated, from_draft })
}

/// The target's verify-cost curve: the median over `repeats` of its forward time (evaluated) for
/// T = 1…`max_tokens` tokens with the cache holding `prompt` (the configuration's context), ms,
/// index T − 1. Each pass is trimmed off the cache again, so every T sees the same context.
pub fn verify_cost_curve(
    target: &dyn LanguageModel,
    prompt: &Tokens,
    options: &GenerateOptions,
    max_tokens: usize,
    repeats: usize,
) -> Result<Vec<f64>> {
    use mlx_rs::ops::indexing::TryIndexOp;
    let mut caches = target.make_caches(&options.kv)?;
    let ids = prompt.to_array()?;
    // In chunks of the prefill step, as a trial fills its cache.
    let (len, step) = (ids.dim(1), options.prefill_step_size.max(1) as i32);
    for start in (0..len).step_by(step as usize) {
        target.forward(&ids.try_index((.., start..(start + step).min(len)))?, Some(&mut caches))?;
        for c in caches.iter_mut() {
            c.maybe_quantize(&options.kv)?;
        }
        eval(caches.iter().flat_map(KvCache::arrays))?;
    }
    if !cache::can_trim(&caches) {
        return Err(Error::InvalidOption("the verify-cost curve needs a trimmable cache".into()));
    }
    let token = prompt.row(0).last().copied().unwrap_or(0);
    let mut curve = Vec::with_capacity(max_tokens);
    for t in 1..=max_tokens {
        let input = Array::from_slice(&vec![token; t], &[1, t as i32]);
        input.eval()?;
        // One untimed pass first: the shape's kernels compile on first use.
        let mut times = Vec::with_capacity(repeats);
        for rep in 0..=repeats {
            let begin = Instant::now();
            let logits = target.forward(&input, Some(&mut caches))?;
            eval([&logits])?;
            let elapsed = begin.elapsed();
            cache::trim_caches(&mut caches, t as i32);
            if rep > 0 {
                times.push(elapsed.as_secs_f64() * 1e3);
            }
        }
        curve.push(median(&times));
    }
    Ok(curve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(drafted: usize, accepted: usize, emitted: usize, draft_ms: u64, verify_ms: u64) -> TimedStep {
        TimedStep {
            outcome: VerifyOutcome { drafted, accepted, emitted },
            draft: Some(Duration::from_millis(draft_ms)),
            verify: Some(Duration::from_millis(verify_ms)),
        }
    }

    #[test]
    fn acceptance_measures_of_synthetic_steps_are_exact() {
        // k = 4: all kept (5 out), 1 kept (2 out), none kept (1 out), a last step of 2 drafted, both
        // kept, no bonus (n_generate reached).
        // Times in binary-exact seconds (multiples of 1/8 s), so the shares compare exactly.
        let steps = [step(4, 4, 5, 375, 125), step(4, 1, 2, 375, 125), step(4, 0, 1, 375, 125), step(2, 2, 2, 250, 125)];
        let m = SpeculativeTrial::of(4, &steps);
        assert_eq!((m.verify_steps, m.drafted_tokens, m.accepted_tokens), (4, 14, 7));
        assert_eq!(m.acceptance_rate, Some(0.5));
        assert_eq!(m.mean_accepted_length, Some(2.5));
        assert_eq!(m.acceptance_by_position, vec![Some(0.75), Some(2.0 / 4.0), Some(1.0 / 3.0), Some(1.0 / 3.0)]);
        assert_eq!(m.draft_time_share, Some(1375.0 / 1875.0));
        assert_eq!(m.target_time_share, Some(1.0 - 1375.0 / 1875.0));
        assert_eq!(m.draft_ms_per_token, Some(1375.0 / 14.0));
    }

    #[test]
    fn steps_without_times_have_no_shares_and_no_steps_no_rates() {
        let untimed = [TimedStep { outcome: VerifyOutcome { drafted: 2, accepted: 1, emitted: 2 }, draft: None, verify: None }];
        let m = SpeculativeTrial::of(2, &untimed);
        assert_eq!((m.acceptance_rate, m.draft_time_share, m.draft_ms_per_token), (Some(0.5), None, None));
        assert_eq!(m.acceptance_by_position, vec![Some(1.0), Some(0.0)]);
        let empty = SpeculativeTrial::of(2, &[]);
        assert_eq!((empty.acceptance_rate, empty.mean_accepted_length, empty.draft_time_share), (None, None, None));
        assert_eq!(empty.acceptance_by_position, vec![None, None]);
    }

    #[test]
    fn decode_rate_leaves_out_the_first_steps_burst() {
        let m = SpeculativeTrial::of(2, &[]);
        // 3 tokens with the first token at 10 ms, then 3 at 20 ms and 2 at 30 ms: 5 in 20 ms.
        let token_ms = [10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 30.0, 30.0];
        assert_eq!(m.clone().with_decode_rate(&token_ms, 3).decode_tps, Some(250.0));
        // Plain decoding (first step: one token) is generation_tps: 7 tokens in 20 ms.
        assert_eq!(m.clone().with_decode_rate(&token_ms, 1).decode_tps, Some(350.0));
        assert_eq!(m.with_decode_rate(&token_ms[..3], 3).decode_tps, None, "one step only");
    }

    #[test]
    fn flags_give_back_the_steps() {
        // k = 3, n_generate = 9: [d d d b] [d b] [b] [d d] (last step drafts min(3, 2) = 2, no bonus).
        let flags = [true, true, true, false, true, false, false, true, true];
        let steps = steps_from_flags(&flags, 3, 9);
        let v = |drafted, accepted, emitted| VerifyOutcome { drafted, accepted, emitted };
        assert_eq!(steps, vec![v(3, 3, 4), v(3, 1, 2), v(3, 0, 1), v(2, 2, 2)]);
    }

    fn trial_with(tps: f64, spec: SpeculativeTrial) -> TrialMetrics {
        let timings = TrialTimings {
            batch: 1,
            n_context: 0,
            n_prompt: 4,
            n_prefill: 3,
            prefill_done: Duration::from_millis(1),
            token_times: vec![Duration::from_millis(2), Duration::from_millis(3)],
            built_times: Vec::new(),
            queued_times: Vec::new(),
        };
        let mut m = TrialMetrics::from_timings(&timings, TrialMemory::default());
        m.generation_tps = Some(tps);
        m.speculative = Some(SpeculativeTrial { decode_tps: Some(tps), ..spec });
        m
    }

    #[test]
    fn summary_takes_medians_and_the_speedup_over_the_baseline() {
        let spec = |steps: &[TimedStep]| SpeculativeTrial::of(2, steps);
        let trials = [
            trial_with(30.0, spec(&[step(2, 2, 3, 125, 125)])),
            trial_with(20.0, spec(&[step(2, 1, 2, 125, 125)])),
            trial_with(40.0, spec(&[step(2, 0, 1, 125, 375)])),
        ];
        let baseline: Vec<TrialMetrics> = [10.0, 12.0, 8.0].iter().map(|&tps| trial_with(tps, spec(&[]))).collect();
        let s = SpeculativeSummary::of(&trials).unwrap().with_baseline(&trials, &baseline, 7);
        assert_eq!(s.acceptance_rate, Some(0.5));
        assert_eq!(s.mean_accepted_length, Some(2.0));
        assert_eq!(s.acceptance_by_position, vec![Some(1.0), Some(0.0)]);
        assert_eq!(s.draft_time_share, Some(0.5));
        assert_eq!(s.speedup, Some(3.0));
        let [low, high] = s.speedup_ci95.unwrap();
        assert!(low <= 3.0 && 3.0 <= high && low >= 20.0 / 12.0 && high <= 40.0 / 8.0, "{low} {high}");
        // alpha 0.5, k 2: E = 1.75; d = 62.5 ms; V = [10, 11, 12] -> 17.5 / 137.
        let s = s.with_verify_cost(vec![10.0, 11.0, 12.0]);
        assert_eq!(s.predicted_speedup, Some(1.75 * 10.0 / (2.0 * 62.5 + 12.0)));
        assert!(SpeculativeSummary::of(&baseline[..0]).is_none());
    }

    #[test]
    fn prediction_formula_is_exact() {
        assert_eq!(expected_tokens_per_step(1.0, 4), 5.0);
        assert_eq!(expected_tokens_per_step(0.0, 4), 1.0);
        assert_eq!(expected_tokens_per_step(0.5, 2), 1.75);
        // E = 1.75, V(1) = 10, step = 2 × 1 + 12 = 14 -> 1.25.
        assert_eq!(predicted_speedup(0.5, 2, 1.0, &[10.0, 11.0, 12.0]), Some(1.25));
        assert_eq!(predicted_speedup(0.5, 3, 1.0, &[10.0, 11.0, 12.0]), None);
    }
}
