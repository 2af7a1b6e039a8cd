//! The plan of a benchmark: the axes that take a list (`--model`, `--kv-bits`, `--batch`,
//! `--depth`, `--n-prompt`, `--n-generate`, or their `MLXBENCH_*` / `mlxbench.toml` forms) expand
//! into the points of their product, ordered so that each model is loaded once (as llama-bench
//! orders its tests). `mlxbench run` and the Criterion benches expand the same [`Axes`].
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use crate::{
    config::bits_or_none,
    error::{Error, Result},
};

/// The settings that take a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axes {
    pub models: Vec<String>,
    /// KV-cache bits; `None` is the plain cache.
    pub kv_bits: Vec<Option<i32>>,
    pub batch: Vec<usize>,
    pub depth: Vec<usize>,
    pub n_prompt: Vec<usize>,
    pub n_generate: Vec<usize>,
    /// The engines each setting runs on; their trials interleave (see `Session`).
    pub engines: Vec<Engine>,
    /// Speculative decoding: the draft model and the tokens it proposes per step (each `k` a
    /// point, beside the same setting without a draft, their trials interleaved).
    pub draft_model: Option<String>,
    pub num_draft_tokens: Vec<usize>,
}

/// A point's draft model and how many tokens it proposes per verify step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftSetting {
    pub draft_model: String,
    pub num_draft_tokens: usize,
}

/// One point of a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPoint {
    pub model: String,
    pub kv_bits: Option<i32>,
    pub batch: usize,
    /// Tokens already in the cache before the measured prompt.
    pub depth: usize,
    pub n_prompt: usize,
    pub n_generate: usize,
    /// Absent in files written before engines existed: mlxbench's own.
    #[serde(default)]
    pub engine: Engine,
    /// Speculative decoding's draft; `None`: plain decoding.
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub draft: Option<DraftSetting>,
}

impl RunPoint {
    /// Whether `other` is the same setting, whatever its engine.
    pub fn same_setting(&self, other: &RunPoint) -> bool {
        RunPoint { engine: other.engine, ..self.clone() } == *other
    }

    /// Whether `other` is the same setting, whatever its engine and draft: the points measured
    /// together, trial by trial (a draft's speed-up is over its neighbour without one).
    pub fn same_group(&self, other: &RunPoint) -> bool {
        RunPoint { engine: other.engine, draft: other.draft.clone(), ..self.clone() } == *other
    }
}

/// The values of a list in their first-seen order, without repeats.
fn unique<T: PartialEq + Clone>(values: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

impl Axes {
    /// All points: models outermost (one load each), then kv bits, batch, depth, prompt length,
    /// generation length, draft (none, then each `k`) and engine (innermost, so a setting's
    /// engines are neighbours). Repeated values in a list are run once.
    pub fn expand(&self) -> Result<Vec<RunPoint>> {
        for (name, empty) in [
            ("--model", self.models.is_empty()),
            ("--kv-bits", self.kv_bits.is_empty()),
            ("--batch", self.batch.is_empty()),
            ("--depth", self.depth.is_empty()),
            ("--n-prompt", self.n_prompt.is_empty()),
            ("--n-generate", self.n_generate.is_empty()),
            ("--engine", self.engines.is_empty()),
            ("--num-draft-tokens", self.draft_model.is_some() && self.num_draft_tokens.is_empty()),
        ] {
            if empty {
                return Err(Error::InvalidOption(format!("{name} needs at least one value")));
            }
        }
        if let Some(k) = self.num_draft_tokens.iter().find(|k| **k == 0) {
            return Err(Error::InvalidOption(format!("--num-draft-tokens {k}: a draft proposes at least 1 token")));
        }
        if self.draft_model.is_none() && !self.num_draft_tokens.is_empty() {
            return Err(Error::InvalidOption("--num-draft-tokens needs --draft-model".into()));
        }
        // Without a draft first, then each k: the baseline of the speed-up is the first point.
        let drafts: Vec<Option<DraftSetting>> = std::iter::once(None)
            .chain(self.draft_model.iter().flat_map(|draft| {
                unique(&self.num_draft_tokens)
                    .into_iter()
                    .map(|k| Some(DraftSetting { draft_model: draft.clone(), num_draft_tokens: k }))
            }))
            .collect();
        let mut runs = Vec::new();
        for model in unique(&self.models) {
            for &kv_bits in &unique(&self.kv_bits) {
                for &batch in &unique(&self.batch) {
                    for &depth in &unique(&self.depth) {
                        for &n_prompt in &unique(&self.n_prompt) {
                            for &n_generate in &unique(&self.n_generate) {
                                for draft in &drafts {
                                    for &engine in &unique(&self.engines) {
                                        let draft = draft.clone();
                                        runs.push(RunPoint { model: model.clone(), kv_bits, batch, depth, n_prompt, n_generate, engine, draft });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(runs)
    }
}

/// `kv4`, `kv8`, `kvnone`: how ids and tables name a KV setting.
pub fn kv_label(kv_bits: Option<i32>) -> String {
    format!("kv{}", bits_or_none(kv_bits))
}

