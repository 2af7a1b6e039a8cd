//! The requests of a serve run: synthetic prompts of an exact length in the model's tokens, or
//! prompts from a dataset (JSON lines, or ShareGPT JSON), each with its output length.
use std::path::Path;

use serde_json::Value;

use super::client::RequestSpec;
use crate::{
    error::{Error, Result},
    rng::SplitMix64,
    tokenizer::Tokenizer,
};

/// Lengths of synthetic requests: a mean and a standard deviation, in tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lengths {
    pub input: usize,
    pub output: usize,
    /// Standard deviation of both, as a share of each mean (0: every request the same).
    pub stddev: f64,
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    let uniform = |rng: &mut SplitMix64| ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let (u, v) = (uniform(rng), uniform(rng));
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// `mean`, or a normal draw around it of `share × mean` standard deviation, at least 1.
fn draw(rng: &mut SplitMix64, mean: usize, share: f64) -> usize {
    if share <= 0.0 {
        return mean.max(1);
    }
    (mean as f64 * (1.0 + share * normal(rng))).round().max(1.0) as usize
}

/// A text of `n` tokens of `tokenizer` (random ordinary tokens, decoded, re-encoded and adjusted
/// until the text encodes to `n` tokens; a few tries, then the nearest), and its token count.
pub fn prompt_text(tokenizer: &Tokenizer, n: usize, rng: &mut SplitMix64) -> Result<(String, usize)> {
    let ordinary = tokenizer.ordinary_ids();
    if ordinary.is_empty() {
        return Err(Error::InvalidOption("the tokenizer has no ordinary tokens to build prompts from".into()));
    }
    let pick = |rng: &mut SplitMix64| ordinary[rng.below(ordinary.len())];
    let mut ids: Vec<u32> = (0..n).map(|_| pick(rng)).collect();
    let mut text = tokenizer.decode(&ids)?;
    for _ in 0..16 {
        let encoded = tokenizer.encode(&text)?;
        if encoded.len() == n {
            return Ok((text, n));
        }
        ids = encoded;
        ids.truncate(n);
        while ids.len() < n {
            ids.push(pick(rng));
        }
        text = tokenizer.decode(&ids)?;
    }
    let count = tokenizer.encode(&text)?.len();
    Ok((text, count))
}

/// `count` synthetic requests.
pub fn synthetic(tokenizer: &Tokenizer, lengths: Lengths, count: usize, seed: u64) -> Result<Vec<RequestSpec>> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|_| {
            let input = draw(&mut rng, lengths.input, lengths.stddev);
            let output = draw(&mut rng, lengths.output, lengths.stddev);
            let (prompt, tokens) = prompt_text(tokenizer, input, &mut rng)?;
            Ok(RequestSpec { prompt, input_tokens: Some(tokens as u64), max_tokens: output as u64, ..RequestSpec::default() })
        })
        .collect()
}

/// The prompts of a dataset file: JSON lines (each a string, or an object with `prompt` or
/// `text`), or ShareGPT JSON (an array of `{"conversations": [{"from": "human", "value": ...}]}`,
/// the first human turn taken).
pub fn dataset_prompts(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let invalid = |detail: String| Error::Config { path: path.to_path_buf(), detail };
    let prompt_of = |v: &Value| -> Option<String> {
        if let Some(s) = v.as_str() {
            return Some(s.to_string());
        }
        if let Some(p) = v.get("prompt").or_else(|| v.get("text")).and_then(Value::as_str) {
            return Some(p.to_string());
        }
        let turns = v.get("conversations").or_else(|| v.get("messages"))?.as_array()?;
        turns
            .iter()
            .find(|t| matches!(t.get("from").or_else(|| t.get("role")).and_then(Value::as_str), Some("human" | "user")))
            .and_then(|t| t.get("value").or_else(|| t.get("content")))
            .and_then(Value::as_str)
            .map(String::from)
    };
    let prompts: Vec<String> = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => items.iter().filter_map(prompt_of).collect(),
        _ => {
            let mut out = Vec::new();
            for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let value: Value = serde_json::from_str(line).map_err(|e| invalid(format!("line {}: not JSON: {e}", i + 1)))?;
                out.push(prompt_of(&value).ok_or_else(|| invalid(format!("line {}: no prompt, text or human turn", i + 1)))?);
            }
            out
        }
    };
    let prompts: Vec<String> = prompts.into_iter().filter(|p| !p.trim().is_empty()).collect();
    if prompts.is_empty() {
        return Err(invalid("no prompts in it (JSON lines with prompt/text, or ShareGPT JSON)".into()));
    }
    Ok(prompts)
}

/// `count` requests cycling through `prompts`, each asking for `output` tokens (± the stddev
/// share), their lengths counted with `tokenizer` when there is one.
pub fn from_dataset(prompts: &[String], tokenizer: Option<&Tokenizer>, lengths: Lengths, count: usize, seed: u64) -> Result<Vec<RequestSpec>> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|i| {
            let prompt = prompts[i % prompts.len()].clone();
            let input_tokens = match tokenizer {
                Some(t) => Some(t.encode(&prompt)?.len() as u64),
                None => None,
            };
            Ok(RequestSpec { prompt, input_tokens, max_tokens: draw(&mut rng, lengths.output, lengths.stddev) as u64, ..RequestSpec::default() })
        })
        .collect()
}
