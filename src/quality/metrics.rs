//! The quality metrics of a KV-cache setting against the plain cache, each defined once here (and
//! in README's metrics table): per scored token, the KL divergence of the two next-token
//! distributions, whether their most likely tokens agree and the log-likelihood each gives the
//! text's own next token; over a run, their means with 95% bootstrap intervals, the p99 of the KL
//! divergence and the change in perplexity; for free-running greedy text, the share of repeated
//! n-grams and the first position where it leaves the plain cache's text.
use serde::{Deserialize, Serialize};

use crate::measure::stats::{mean, mean_interval, paired_bootstrap_interval, percentile, sorted};

/// The n of [`repeated_ngram_share`] in the records: 4-grams, long enough that ordinary English
/// rarely repeats one within a hundred tokens, short enough that a loop shows at once.
pub const REPETITION_NGRAM: usize = 4;

/// `KL(P || Q) = Σ_v P(v) (log P(v) − log Q(v))` in nats, from log-probabilities over the same
/// vocabulary (`p` the plain cache's, `q` the setting's). Terms with `P(v) = 0` add nothing.
/// Summed in f64.
pub fn kl_divergence(p_log: &[f32], q_log: &[f32]) -> f64 {
    p_log
        .iter()
        .zip(q_log)
        .map(|(&lp, &lq)| {
            let (lp, lq) = (f64::from(lp), f64::from(lq));
            let p = lp.exp();
            if p == 0.0 {
                0.0
            } else {
                p * (lp - lq)
            }
        })
        .sum()
}

/// The index of the largest value (the first of equal ones): the greedy next token.
pub fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

/// The share (0..=1) of `generated`'s n-grams (`generated.len() − n + 1` of them, overlapping)
/// that already occurred earlier in it: 0 for text that never repeats itself, close to 1 for a
/// model repeating one token. `None` when there are fewer than `n` tokens (no n-gram).
pub fn repeated_ngram_share(generated: &[u32], n: usize) -> Option<f64> {
    if n == 0 || generated.len() < n {
        return None;
    }
    let grams: Vec<&[u32]> = generated.windows(n).collect();
    let mut seen = std::collections::HashSet::new();
    let repeated = grams.iter().filter(|g| !seen.insert(**g)).count();
    Some(repeated as f64 / grams.len() as f64)
}

/// The first position at which `tokens` differs from `reference` (the plain cache's greedy text);
/// where one ends first with the rest equal, the shorter length. `None` when they are the same.
pub fn first_divergence(reference: &[u32], tokens: &[u32]) -> Option<usize> {
    match reference.iter().zip(tokens).position(|(a, b)| a != b) {
        Some(i) => Some(i),
        None if reference.len() != tokens.len() => Some(reference.len().min(tokens.len())),
        None => None,
    }
}

/// One scored position: the plain and the setting's log-probabilities of the text's own next
/// token, their KL divergence and whether their greedy tokens agree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenScore {
    pub kl: f64,
    pub top1_agrees: bool,
    pub log_likelihood_plain: f64,
    pub log_likelihood: f64,
}

impl TokenScore {
    /// The scores of one position from the two log-probability rows and the next token's id.
    pub fn of(plain: &[f32], setting: &[f32], target: usize) -> Self {
        TokenScore {
            kl: kl_divergence(plain, setting),
            top1_agrees: argmax(plain) == argmax(setting),
            log_likelihood_plain: f64::from(plain[target]),
            log_likelihood: f64::from(setting[target]),
        }
    }
}

/// The teacher-forced metrics of one setting over its scored tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreSummary {
    /// Mean KL(plain || setting), nats per token.
    pub kl_mean: f64,
    pub kl_mean_ci95: [f64; 2],
    /// 99th percentile of the per-token KL divergence, nats.
    pub kl_p99: f64,
    /// Share (0..=1) of positions where the two most likely next tokens are the same.
    pub top1_agreement: f64,
    pub top1_agreement_ci95: [f64; 2],
    /// Mean of `log q(x) − log p(x)` over the text's next tokens `x`, nats per token (negative:
    /// the setting finds the text less likely).
    pub delta_log_likelihood: f64,
    pub delta_log_likelihood_ci95: [f64; 2],
    /// `exp(−mean log p(x))`: the plain cache's perplexity on the scored tokens.
    pub perplexity_plain: f64,
    /// The setting's perplexity on the same tokens.
    pub perplexity: f64,
    /// `perplexity − perplexity_plain`.
    pub delta_perplexity: f64,
    pub delta_perplexity_ci95: [f64; 2],
}

impl ScoreSummary {
    /// `None` for no scores. The intervals resample the scored tokens together (paired), seeded.
    pub fn of(scores: &[TokenScore], seed: u64) -> Option<Self> {
        if scores.is_empty() {
            return None;
        }
        let kl: Vec<f64> = scores.iter().map(|s| s.kl).collect();
        let agree: Vec<f64> = scores.iter().map(|s| f64::from(u8::from(s.top1_agrees))).collect();
        let delta_ll: Vec<f64> = scores.iter().map(|s| s.log_likelihood - s.log_likelihood_plain).collect();
        let perplexity_of = |ll: &dyn Fn(&TokenScore) -> f64, idx: &[usize]| {
            (-idx.iter().map(|&i| ll(&scores[i])).sum::<f64>() / idx.len() as f64).exp()
        };
        let all: Vec<usize> = (0..scores.len()).collect();
        let plain_ll = |s: &TokenScore| s.log_likelihood_plain;
        let setting_ll = |s: &TokenScore| s.log_likelihood;
        let (perplexity_plain, perplexity) = (perplexity_of(&plain_ll, &all), perplexity_of(&setting_ll, &all));
        let pair = |(low, high): (f64, f64)| [low, high];
        Some(ScoreSummary {
            kl_mean: mean(&kl),
            kl_mean_ci95: pair(mean_interval(&kl, seed)),
            kl_p99: percentile(&sorted(&kl), 99.0),
            top1_agreement: mean(&agree),
            top1_agreement_ci95: pair(mean_interval(&agree, seed.wrapping_add(1))),
            delta_log_likelihood: mean(&delta_ll),
            delta_log_likelihood_ci95: pair(mean_interval(&delta_ll, seed.wrapping_add(2))),
            perplexity_plain,
            perplexity,
            delta_perplexity: perplexity - perplexity_plain,
            delta_perplexity_ci95: pair(paired_bootstrap_interval(scores.len(), seed.wrapping_add(3), |idx| {
                perplexity_of(&setting_ll, idx) - perplexity_of(&plain_ll, idx)
            })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(ps: &[f64]) -> Vec<f32> {
        ps.iter().map(|p| p.ln() as f32).collect()
    }

    #[test]
    fn kl_of_hand_made_distributions() {
        let p = logs(&[0.5, 0.5]);
        let q = logs(&[0.25, 0.75]);
        // 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln 2 + 0.5 ln(2/3)
        let expected = 0.5 * 2f64.ln() + 0.5 * (2.0f64 / 3.0).ln();
        assert!((kl_divergence(&p, &q) - expected).abs() < 1e-7, "{}", kl_divergence(&p, &q));
        assert_eq!(kl_divergence(&p, &p), 0.0);
        // A zero-probability token of P adds nothing, even where Q gives it mass.
        let p0 = vec![0.0f32, f32::NEG_INFINITY];
        let q0 = logs(&[0.5, 0.5]);
        assert!((kl_divergence(&p0, &q0) - 2f64.ln()).abs() < 1e-7);
    }

    #[test]
    fn argmax_takes_the_first_of_equal_values() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
        assert_eq!(argmax(&[3.0]), 0);
    }

    #[test]
    fn repeated_ngrams_counted_exactly() {
        // One token repeated: 3 four-grams, the last 2 repeat the first.
        assert_eq!(repeated_ngram_share(&[7, 7, 7, 7, 7, 7], 4), Some(2.0 / 3.0));
        assert_eq!(repeated_ngram_share(&[1, 2, 3, 4, 5, 6], 4), Some(0.0));
        // 1 2 3 1 2 3 1: bigrams 12 23 31 12 23 31 → the last 3 of 6 repeat.
        assert_eq!(repeated_ngram_share(&[1, 2, 3, 1, 2, 3, 1], 2), Some(0.5));
        assert_eq!(repeated_ngram_share(&[1, 2, 3], 4), None);
    }

    #[test]
    fn first_divergence_positions() {
        assert_eq!(first_divergence(&[1, 2, 3], &[1, 2, 3]), None);
        assert_eq!(first_divergence(&[1, 2, 3], &[1, 9, 3]), Some(1));
        assert_eq!(first_divergence(&[1, 2, 3], &[1, 2]), Some(2));
        assert_eq!(first_divergence(&[], &[]), None);
    }

    #[test]
    fn summary_of_hand_made_scores() {
        let p = logs(&[0.5, 0.5]);
        let q = logs(&[0.25, 0.75]);
        let r = logs(&[0.8, 0.2]);
        // Token 0 scored against q (top-1 1 vs 0: argmax of p is 0 → disagrees with q's 1) and
        // against r (agrees).
        let scores = [TokenScore::of(&p, &q, 0), TokenScore::of(&p, &r, 0)];
        assert!(!scores[0].top1_agrees && scores[1].top1_agrees);
        let s = ScoreSummary::of(&scores, 7).unwrap();
        let kl_q = 0.5 * 2f64.ln() + 0.5 * (2.0f64 / 3.0).ln();
        let kl_r = 0.5 * (0.5f64 / 0.8).ln() + 0.5 * (0.5f64 / 0.2).ln();
        assert!((s.kl_mean - (kl_q + kl_r) / 2.0).abs() < 1e-6);
        assert!((s.kl_p99 - (kl_q.min(kl_r) + 0.99 * (kl_q - kl_r).abs())).abs() < 1e-6);
        assert_eq!(s.top1_agreement, 0.5);
        // Δ log-likelihood: (ln .25 − ln .5 + ln .8 − ln .5) / 2 = ln(0.8) / 2.
        assert!((s.delta_log_likelihood - 0.8f64.ln() / 2.0).abs() < 1e-6);
        // Perplexities: exp(−ln .5) = 2, exp(−(ln .25 + ln .8)/2) = 1/sqrt(0.2).
        assert!((s.perplexity_plain - 2.0).abs() < 1e-6);
        assert!((s.perplexity - 1.0 / 0.2f64.sqrt()).abs() < 1e-5);
        assert!((s.delta_perplexity - (1.0 / 0.2f64.sqrt() - 2.0)).abs() < 1e-5);
        // The intervals hold the means and stay inside the range of the values.
        assert!(s.top1_agreement_ci95[0] >= 0.0 && s.top1_agreement_ci95[1] <= 1.0);
        assert!(s.kl_mean_ci95[0] <= s.kl_mean && s.kl_mean <= s.kl_mean_ci95[1]);
        assert_eq!(ScoreSummary::of(&[], 7), None);
    }

    #[test]
    fn a_setting_against_itself_is_exactly_zero() {
        let p = logs(&[0.1, 0.2, 0.7]);
        let scores = vec![TokenScore::of(&p, &p, 2); 5];
        let s = ScoreSummary::of(&scores, 1).unwrap();
        assert_eq!((s.kl_mean, s.kl_p99, s.top1_agreement), (0.0, 0.0, 1.0));
        assert_eq!((s.delta_log_likelihood, s.delta_perplexity), (0.0, 0.0));
        assert_eq!(s.kl_mean_ci95, [0.0, 0.0]);
        assert_eq!(s.top1_agreement_ci95, [1.0, 1.0]);
    }
}
