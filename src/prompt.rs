//! Prompts of an exact number of tokens: a base text repeated (as MLXBench does) or random token
//! ids (as llama-bench does), for one sequence or a batch of equal-length ones.
use mlx_rs::Array;

use crate::{
    error::{Error, Result},
    rng::SplitMix64,
    tokenizer::Tokenizer,
};

/// Where prompt tokens come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptKind {
    /// A fixed English text, tokenized and repeated until long enough.
    Text,
    /// Uniformly random ids from the tokenizer's ordinary (non-special) vocabulary.
    Random,
}

crate::choice::choice!(PromptKind {
    Text => ("text", "A fixed English text, tokenized and repeated until long enough"),
    Random => ("random", "Uniformly random ids from the tokenizer's ordinary (non-special) vocabulary"),
});

/// The text that `PromptKind::Text` repeats.
pub const BASE_TEXT: &str = "The history of computing is a story of people finding ways to make machines do \
arithmetic faster and more reliably. Early mechanical calculators gave way to electronic machines \
that filled rooms, and those in turn to integrated circuits small enough to hold in a hand. Each step \
changed what questions people could afford to ask. Today a laptop can run a language model that \
answers questions, writes summaries and translates between languages, and the limits that matter \
are memory bandwidth, the size of the model and the patience of the person waiting for an answer. ";

/// Token ids of `batch` sequences of equal length, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    ids: Vec<u32>,
    batch: usize,
}

impl Tokens {
    /// One sequence.
    pub fn single(ids: Vec<u32>) -> Result<Self> {
        Self::batch_of(vec![ids])
    }

    /// Several sequences, which must be non-empty and of equal length.
    pub fn batch_of(rows: Vec<Vec<u32>>) -> Result<Self> {
        let len = rows.first().map_or(0, Vec::len);
        if len == 0 || rows.iter().any(|r| r.len() != len) {
            return Err(Error::InvalidOption("prompts must be non-empty and of equal length".into()));
        }
        Ok(Self { batch: rows.len(), ids: rows.concat() })
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Tokens per sequence.
    pub fn len(&self) -> usize {
        self.ids.len() / self.batch
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn row(&self, i: usize) -> &[u32] {
        &self.ids[i * self.len()..(i + 1) * self.len()]
    }

    /// `[B, L]` int32 ids.
    pub fn to_array(&self) -> Result<Array> {
        let ids: Vec<i32> = self.ids.iter().map(|&id| id as i32).collect();
        Ok(Array::from_slice(&ids, &[self.batch as i32, self.len() as i32]))
    }
}

/// `batch` prompts of exactly `n` tokens each. Text prompts start at different points of the
/// repeated text so that rows differ; random ones use `seed + row`.
pub fn build_prompts(tokenizer: &Tokenizer, kind: PromptKind, n: usize, batch: usize, seed: u64) -> Result<Tokens> {
    if n == 0 || batch == 0 {
        return Err(Error::InvalidOption("a prompt needs at least 1 token and a batch at least 1 sequence".into()));
    }
    let rows = match kind {
        PromptKind::Text => {
            let base = tokenizer.encode(BASE_TEXT)?;
            if base.is_empty() {
                return Err(Error::InvalidOption("the tokenizer turns the base text into no tokens".into()));
            }
            (0..batch)
                .map(|row| base.iter().copied().cycle().skip(row * 7 % base.len()).take(n).collect())
                .collect()
        }
        PromptKind::Random => {
            let ordinary = tokenizer.ordinary_ids();
            if ordinary.is_empty() {
                return Err(Error::InvalidOption("the tokenizer has no ordinary tokens to draw from".into()));
            }
            (0..batch)
                .map(|row| {
                    let mut rng = SplitMix64::new(seed.wrapping_add(row as u64));
                    (0..n).map(|_| ordinary[(rng.next_u64() % ordinary.len() as u64) as usize]).collect()
                })
                .collect()
        }
    };
    Tokens::batch_of(rows)
}
