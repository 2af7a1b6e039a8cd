//! The quality of a KV-cache setting against the plain cache (`mlxbench quality`): over a text, at
//! each depth (context already in the cache, filled through it in prefill chunks as real prefill
//! does), the next `n_score` tokens are fed one at a time as decode steps, teacher-forced, and each
//! step's next-token distribution is compared with the plain cache's ([`metrics`]); from the same
//! depth a greedy run of `n_generate` tokens measures repetition and where the text leaves the
//! plain cache's. Our engine runs here ([`DepthSession`]); mlx-lm's caches run in its Python
//! ([`mlx_lm`]); both feed the same metrics into the same [`QualityRecord`]s.
pub mod metrics;
pub mod mlx_lm;
pub mod record;
pub mod text;

use mlx_rs::{Array, Dtype};

use crate::{
    cache::KvCacheOptions,
    error::{Error, Result},
    generate::{GenerateOptions, Generation, Sampling},
    models::LanguageModel,
    prompt::Tokens,
};
pub use metrics::{ScoreSummary, TokenScore, REPETITION_NGRAM};
pub use record::{QualityRecord, QualityRecords};

/// What one quality measurement runs: the depths, how many tokens it scores and generates from
/// each, and the cache settings compared with the plain cache.
#[derive(Debug, Clone)]
pub struct QualityPlan {
    pub depths: Vec<usize>,
    pub n_score: usize,
    pub n_generate: usize,
    pub prefill_step_size: usize,
    /// The settings measured; the plain cache is the baseline and always runs first.
    pub settings: Vec<KvCacheOptions>,
}

impl QualityPlan {
    /// Tokens the text needs: the deepest context, the scored tokens and the one they predict.
    pub fn tokens_needed(&self) -> usize {
        self.depths.iter().max().copied().unwrap_or(0) + self.n_score + 1
    }

    /// Checks the plan against a text of `n_tokens` tokens.
    pub fn validate(&self, n_tokens: usize) -> Result<()> {
        if self.n_score == 0 {
            return Err(Error::InvalidOption("n_score must be at least 1".into()));
        }
        if self.depths.is_empty() {
            return Err(Error::InvalidOption("no depth to measure at".into()));
        }
        if n_tokens < self.tokens_needed() {
            return Err(Error::InvalidOption(format!(
                "the text has {n_tokens} tokens; depth {} plus {} scored tokens needs {}: use a longer text or smaller --depth/--n-score",
                self.depths.iter().max().unwrap_or(&0),
                self.n_score,
                self.tokens_needed()
            )));
        }
        Ok(())
    }

    /// The plain cache's options (the baseline), with the plan's group size.
    pub fn plain(&self) -> KvCacheOptions {
        let group = self.settings.first().map_or(64, |s| s.kv_group_size);
        KvCacheOptions { kv_group_size: group, ..KvCacheOptions::default() }
    }

    /// Whether a setting's cache at `depth` is exactly the plain cache's turned into it: a
    /// quantized, non-rotating cache whose depth is filled by one prefill chunk and is past
    /// `quantized_kv_start` (the chunk runs with the plain cache, then is quantized, in both
    /// engines). The measurement then reuses the plain prefill.
    pub fn shares_prefill(&self, kv: &KvCacheOptions, depth: usize) -> bool {
        kv.kv_bits.is_some()
            && kv.max_kv_size.is_none()
            && depth > 0
            && depth <= self.prefill_step_size
            && kv.quantized_kv_start as usize <= depth
    }
}

/// What one engine produced for one setting at one depth: the log-probability row of each scored
/// step and the greedy tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingRun {
    /// `n_score` rows; row `j` predicts token `depth + j + 1` of the text.
    pub rows: Vec<Vec<f32>>,
    pub greedy: Vec<u32>,
}

/// The comparison of a setting's run with the plain cache's, at one depth.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub scores: ScoreSummary,
    pub repeated_ngram_share: Option<f64>,
    pub repeated_ngram_share_plain: Option<f64>,
    pub first_divergence: Option<usize>,
}

/// Compares `setting` with `plain` on the text's tokens `targets` (`targets[j]` is what row `j`
/// predicts); `seed` seeds the bootstrap intervals.
pub fn compare(plain: &SettingRun, setting: &SettingRun, targets: &[u32], seed: u64) -> Result<Comparison> {
    if plain.rows.len() != setting.rows.len() || plain.rows.len() > targets.len() {
        return Err(Error::InvalidOption(format!(
            "{} plain rows, {} of the setting, {} targets: the runs do not match",
            plain.rows.len(),
            setting.rows.len(),
            targets.len()
        )));
    }
    let scores: Vec<TokenScore> = plain
        .rows
        .iter()
        .zip(&setting.rows)
        .zip(targets)
        .map(|((p, q), &t)| TokenScore::of(p, q, t as usize))
        .collect();
    let scores = ScoreSummary::of(&scores, seed).ok_or_else(|| Error::InvalidOption("nothing scored".into()))?;
    Ok(Comparison {
        scores,
        repeated_ngram_share: metrics::repeated_ngram_share(&setting.greedy, REPETITION_NGRAM),
        repeated_ngram_share_plain: metrics::repeated_ngram_share(&plain.greedy, REPETITION_NGRAM),
        first_divergence: metrics::first_divergence(&plain.greedy, &setting.greedy),
    })
}

/// Our engine at one depth: the plain cache filled with the text's first `depth` tokens, from
/// which each setting's run starts (sharing that prefill where [`QualityPlan::shares_prefill`]).
pub struct DepthSession<'m> {
    model: &'m dyn LanguageModel,
    tokens: &'m [u32],
    plan: &'m QualityPlan,
    depth: usize,
    plain: Generation<'m>,
}

impl<'m> DepthSession<'m> {
    /// Runs the plain prefill of `depth` tokens.
    pub fn new(model: &'m dyn LanguageModel, tokens: &'m [u32], plan: &'m QualityPlan, depth: usize) -> Result<Self> {
        plan.validate(tokens.len())?;
        let plain = Self::prefilled(model, tokens, plan, depth, plan.plain())?;
        Ok(Self { model, tokens, plan, depth, plain })
    }

    /// A generation of the text's first `depth + 1` tokens with `kv`, its first `depth` in the
    /// cache (chunked prefill); the pending token is the first scored step's input.
    fn prefilled(
        model: &'m dyn LanguageModel,
        tokens: &[u32],
        plan: &QualityPlan,
        depth: usize,
        kv: KvCacheOptions,
    ) -> Result<Generation<'m>> {
        let options = GenerateOptions {
            n_generate: plan.n_generate,
            sampling: Sampling::Greedy,
            kv,
            prefill_step_size: plan.prefill_step_size,
            stop_tokens: Vec::new(),
            compile: false,
        };
        let mut generation = Generation::new(model, &Tokens::single(tokens[..=depth].to_vec())?, options)?;
        generation.prefill_context(depth)?;
        Ok(generation)
    }

    /// The text's tokens that the scored rows predict.
    pub fn targets(&self) -> &[u32] {
        &self.tokens[self.depth + 1..=self.depth + self.plan.n_score]
    }

    /// Scores and generates with `kv` from this depth.
    pub fn run(&self, kv: &KvCacheOptions) -> Result<SettingRun> {
        let start = if *kv == self.plan.plain() {
            self.plain.clone()
        } else if self.plan.shares_prefill(kv, self.depth) {
            self.plain.with_kv(*kv)?
        } else {
            Self::prefilled(self.model, self.tokens, self.plan, self.depth, *kv)?
        };
        let mut greedy_run = start.clone();
        let mut scoring = start;
        let mut rows = Vec::with_capacity(self.plan.n_score);
        for j in 0..self.plan.n_score {
            let then = Array::from_slice(&[self.tokens[self.depth + j + 1] as i32], &[1, 1]);
            let logprobs = scoring.force_step(&then)?;
            rows.push(logprobs.as_dtype(Dtype::Float32)?.as_slice::<f32>().to_vec());
        }
        let mut greedy = Vec::with_capacity(self.plan.n_generate);
        while let Some(step) = greedy_run.next_token()? {
            greedy.push(step.tokens[0]);
        }
        Ok(SettingRun { rows, greedy })
    }
}
