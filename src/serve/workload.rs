//! The traffic a serve point sends ([`Workload`]): independent prompts, groups sharing a prefix,
//! multi-turn conversations that re-send their whole history, or a replayed trace; and what is
//! done to the server's prompt cache ([`CacheMode`]): nothing, a unique marker at the start of
//! every prompt (cache-bust), or every shared part sent once before the point (warm).
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::{
    client::RequestSpec,
    requests::{prompt_text, Lengths},
};
use crate::{
    choice::choice,
    error::{Error, Result},
    rng::SplitMix64,
    tokenizer::Tokenizer,
};

/// What the requests of a point are.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// Prompts of their own (synthetic or a dataset's).
    Independent,
    /// Each prompt is a prefix of `prefix_tokens` and a suffix of its own of `--n-prompt` tokens;
    /// a `share` of the requests take one of `groups` shared prefixes (round-robin), the others a
    /// prefix of their own of the same length.
    SharedPrefix { prefix_tokens: usize, groups: usize, share: f64 },
    /// Conversations of `turns` turns: each turn sends the whole history (every earlier user turn
    /// and the reply it got) and a new user turn of `--n-prompt` tokens, `think_ms` after the
    /// last reply.
    MultiTurn { turns: usize, think_ms: f64 },
    /// The requests of a trace file ([`read_trace`]), each sent at its time.
    Trace { path: PathBuf },
}

impl Workload {
    /// `shared-prefix 8192 tokens, 4 groups, share 100%`: as records and the table name it.
    pub fn label(&self) -> String {
        match self {
            Workload::Independent => "independent".into(),
            Workload::SharedPrefix { prefix_tokens, groups, share } => {
                format!("shared-prefix {prefix_tokens} tokens, {groups} group{}, share {}%", if *groups == 1 { "" } else { "s" }, share * 100.0)
            }
            Workload::MultiTurn { turns, think_ms } => format!("multi-turn {turns} turns, think {think_ms} ms"),
            Workload::Trace { path } => format!("trace {}", path.display()),
        }
    }
}

/// The kinds of [`Workload`], as `--workload` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkloadKind {
    #[default]
    Independent,
    SharedPrefix,
    MultiTurn,
    Trace,
}

choice!(WorkloadKind {
    Independent => ("independent", "prompts of their own (synthetic, or --dataset)"),
    SharedPrefix => ("shared-prefix", "--prefix-groups prefixes of --prefix-tokens shared by a --prefix-share of the requests"),
    MultiTurn => ("multi-turn", "conversations of --turns turns re-sending their whole history; --concurrency conversations at once"),
    Trace => ("trace", "the requests of --trace FILE, each at its time"),
});

/// What a point does to the servers' prompt cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    #[default]
    AsIs,
    Bust,
    Warm,
}

choice!(CacheMode {
    AsIs => ("as-is", "send the workload's prompts as they are"),
    Bust => ("bust", "a marker of its own starts every prompt (a token no other request starts with): only what every prompt shares, a BOS or chat template, can come from the cache"),
    Warm => ("warm", "send every shared prefix (independent prompts: every prompt) once before the point"),
});

/// The markers of cache-bust: request `k`'s starts with the text of an ordinary token of its own
/// (a server's prompt cache matches from the first token on, so requests whose first tokens differ
/// share nothing), then a number unique to the run and the request.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheBuster {
    /// The texts of the tokenizer's ordinary tokens (empty: markers are numbers alone).
    firsts: Vec<String>,
    nonce: u64,
    /// Added to every request number (a point's conversations are numbered after its warmup).
    offset: usize,
}

impl CacheBuster {
    pub fn new(tokenizer: Option<&Tokenizer>, nonce: u64) -> Result<Self> {
        let mut firsts = Vec::new();
        if let Some(t) = tokenizer {
            for id in t.ordinary_ids() {
                let text = t.decode(&[id])?;
                // Only tokens that come back as themselves at the start of a text.
                if !text.trim().is_empty() && t.encode(&text)?.first() == Some(&id) && !firsts.contains(&text) {
                    firsts.push(text);
                }
            }
        }
        Ok(CacheBuster { firsts, nonce, offset: 0 })
    }

    /// The markers of point `point`, its requests numbered from `offset`.
    pub fn for_point(&self, point: usize, offset: usize) -> Self {
        CacheBuster { firsts: self.firsts.clone(), nonce: crate::rng::mix(self.nonce ^ point as u64), offset }
    }

    /// The marker of request `k`: distinct first tokens for as many requests as there are tokens.
    pub fn marker(&self, k: usize) -> String {
        let k = k + self.offset;
        let number = crate::rng::mix(self.nonce ^ k as u64);
        match self.firsts.len() {
            0 => format!("{number:016x} "),
            n => format!("{}{number:016x} ", self.firsts[(self.nonce as usize).wrapping_add(k) % n]),
        }
    }

    /// Prefixes each request's prompt with its own marker, `first` the number of the first (the
    /// turns of a conversation are marked as each is sent: [`super::load::run_conversations`]).
    pub fn bust(&self, specs: &mut [RequestSpec], first: usize) {
        for (k, spec) in specs.iter_mut().enumerate() {
            spec.prompt = self.marker(first + k) + &spec.prompt;
            spec.shared_bytes = 0;
        }
    }
}

/// What warm mode sends before a point: each distinct shared start once (a group's prefix), and
/// every request that shares nothing whole; one output token each.
pub fn priming(specs: &[RequestSpec]) -> Vec<RequestSpec> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for spec in specs {
        let prompt = match spec.prefix_group {
            Some(group) if spec.shared_bytes > 0 => {
                if !seen.insert(group) {
                    continue;
                }
                spec.prompt.get(..spec.shared_bytes).unwrap_or(&spec.prompt).to_string()
            }
            _ => spec.prompt.clone(),
        };
        out.push(RequestSpec { prompt, input_tokens: None, max_tokens: 1, ..RequestSpec::default() });
    }
    out
}

/// Whether request `k` takes a shared prefix when a `share` of them do: spread evenly
/// (`floor((k+1)·share) > floor(k·share)`), so any run of requests holds about that share.
pub fn takes_shared(k: usize, share: f64) -> bool {
    ((k + 1) as f64 * share).floor() > (k as f64 * share).floor()
}

/// `count` requests of the shared-prefix workload ([`Workload::SharedPrefix`]).
pub fn shared_prefix(tokenizer: &Tokenizer, lengths: Lengths, prefix_tokens: usize, groups: usize, share: f64, count: usize, seed: u64) -> Result<Vec<RequestSpec>> {
    let mut rng = SplitMix64::new(seed);
    let prefixes: Vec<String> = (0..groups.max(1)).map(|_| prompt_text(tokenizer, prefix_tokens, &mut rng).map(|(t, _)| t)).collect::<Result<_>>()?;
    let mut shared_so_far = 0;
    (0..count)
        .map(|k| {
            let (prefix, group) = if takes_shared(k, share) {
                let group = shared_so_far % prefixes.len();
                shared_so_far += 1;
                (prefixes[group].clone(), Some(group))
            } else {
                (prompt_text(tokenizer, prefix_tokens, &mut rng)?.0, None)
            };
            let (suffix, _) = prompt_text(tokenizer, lengths.input, &mut rng)?;
            let prompt = format!("{prefix}\n{suffix}");
            let input_tokens = tokenizer.encode(&prompt)?.len() as u64;
            Ok(RequestSpec {
                shared_bytes: if group.is_some() { prefix.len() + 1 } else { 0 },
                prompt,
                input_tokens: Some(input_tokens),
                max_tokens: lengths.output as u64,
                prefix_group: group,
                ..RequestSpec::default()
            })
        })
        .collect()
}

/// The turns of `conversations` conversations of `turns` turns: each turn's new user text of
/// `lengths.input` tokens (the history is added as the conversation runs).
pub fn conversations(tokenizer: &Tokenizer, lengths: Lengths, turns: usize, conversations: usize, seed: u64) -> Result<Vec<Vec<RequestSpec>>> {
    let mut rng = SplitMix64::new(seed);
    (0..conversations)
        .map(|c| {
            (0..turns.max(1))
                .map(|t| {
                    let (prompt, tokens) = prompt_text(tokenizer, lengths.input, &mut rng)?;
                    Ok(RequestSpec {
                        prompt,
                        input_tokens: Some(tokens as u64),
                        max_tokens: lengths.output as u64,
                        conversation: Some(c),
                        turn: Some(t),
                        ..RequestSpec::default()
                    })
                })
                .collect()
        })
        .collect()
}

/// One line of a trace file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceEntry {
    /// When the request is sent, ms from the start of the replay.
    #[serde(alias = "timestamp")]
    pub timestamp_ms: f64,
    /// Prompt tokens, shared prefix included.
    #[serde(alias = "input_length")]
    pub input_tokens: usize,
    /// Output tokens asked for (`max_tokens`).
    #[serde(alias = "output_length")]
    pub output_tokens: usize,
    /// Requests with the same id share their first `prefix_tokens` tokens.
    #[serde(default)]
    pub prefix_id: Option<Value>,
    #[serde(default)]
    pub prefix_tokens: Option<usize>,
}

/// Reads a trace: JSON lines of [`TraceEntry`] (README, "Trace files").
pub fn read_trace(path: &Path) -> Result<Vec<TraceEntry>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let invalid = |line: usize, detail: String| Error::Config { path: path.to_path_buf(), detail: format!("line {line}: {detail}") };
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let entry: TraceEntry = serde_json::from_str(line).map_err(|e| invalid(i + 1, format!("not a trace entry ({e}); expected {{\"timestamp_ms\": 0, \"input_tokens\": 128, \"output_tokens\": 64}}")))?;
        if !(entry.timestamp_ms.is_finite() && entry.timestamp_ms >= 0.0) {
            return Err(invalid(i + 1, format!("timestamp_ms {} is not a time ≥ 0", entry.timestamp_ms)));
        }
        if entry.input_tokens == 0 || entry.output_tokens == 0 {
            return Err(invalid(i + 1, "input_tokens and output_tokens must be at least 1".into()));
        }
        match (&entry.prefix_id, entry.prefix_tokens) {
            (Some(_), None) => return Err(invalid(i + 1, "a prefix_id needs prefix_tokens".into())),
            (_, Some(p)) if p >= entry.input_tokens => return Err(invalid(i + 1, format!("prefix_tokens {p} is not below input_tokens {}", entry.input_tokens))),
            _ => {}
        }
        entries.push(entry);
    }
    if entries.is_empty() {
        return Err(Error::Config { path: path.to_path_buf(), detail: "no requests in the trace".into() });
    }
    Ok(entries)
}

/// The requests of a trace, each due at its timestamp (relative to the first).
pub fn trace_requests(tokenizer: &Tokenizer, entries: &[TraceEntry], seed: u64) -> Result<Vec<RequestSpec>> {
    let mut rng = SplitMix64::new(seed);
    let first = entries.iter().map(|e| e.timestamp_ms).fold(f64::INFINITY, f64::min);
    // One text per prefix id and length, made when first needed.
    let mut prefixes: Vec<(String, usize, String)> = Vec::new();
    let mut groups: Vec<String> = Vec::new();
    entries
        .iter()
        .map(|e| {
            let (prefix, group) = match (&e.prefix_id, e.prefix_tokens) {
                (Some(id), Some(n)) => {
                    let id = id.as_str().map_or_else(|| id.to_string(), String::from);
                    let group = groups.iter().position(|g| *g == id).unwrap_or_else(|| {
                        groups.push(id.clone());
                        groups.len() - 1
                    });
                    let text = match prefixes.iter().find(|(i, len, _)| *i == id && *len == n) {
                        Some((_, _, text)) => text.clone(),
                        None => {
                            let text = prompt_text(tokenizer, n, &mut rng)?.0;
                            prefixes.push((id, n, text.clone()));
                            text
                        }
                    };
                    (Some(text), Some(group))
                }
                _ => (None, None),
            };
            let rest = e.input_tokens - e.prefix_tokens.filter(|_| prefix.is_some()).unwrap_or(0);
            // Decoded tokens can re-encode to another count, and a prefix and a suffix can merge
            // where they meet: a few suffixes are tried for the entry's exact length.
            let mut best: Option<(String, usize)> = None;
            for _ in 0..8 {
                let (suffix, _) = prompt_text(tokenizer, rest, &mut rng)?;
                let prompt = format!("{}{suffix}", prefix.as_deref().unwrap_or(""));
                let n = tokenizer.encode(&prompt)?.len();
                if best.as_ref().is_none_or(|(_, m)| n.abs_diff(e.input_tokens) < m.abs_diff(e.input_tokens)) {
                    best = Some((prompt, n));
                }
                if n == e.input_tokens {
                    break;
                }
            }
            let (prompt, tokens) = best.unwrap_or_default();
            let shared_bytes = prefix.as_ref().map_or(0, String::len);
            Ok(RequestSpec {
                input_tokens: Some(tokens as u64),
                prompt,
                max_tokens: e.output_tokens as u64,
                due_ms: Some(e.timestamp_ms - first),
                prefix_group: group,
                shared_bytes,
                ..RequestSpec::default()
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(|mut specs| {
            // Sent in the order of their times.
            specs.sort_by(|a, b| a.due_ms.unwrap_or(0.0).total_cmp(&b.due_ms.unwrap_or(0.0)));
            specs
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_of_requests_takes_a_shared_prefix_evenly() {
        let taken = |share: f64, n: usize| (0..n).filter(|&k| takes_shared(k, share)).count();
        assert_eq!((taken(1.0, 10), taken(0.0, 10), taken(0.5, 10), taken(0.25, 8), taken(0.3, 10)), (10, 0, 5, 2, 3));
    }

    #[test]
    fn warm_mode_primes_each_group_once_and_independent_prompts_whole() {
        let spec = |prompt: &str, group: Option<usize>, shared: usize| RequestSpec { prompt: prompt.into(), prefix_group: group, shared_bytes: shared, max_tokens: 8, ..RequestSpec::default() };
        let specs = [spec("AAAA-x", Some(0), 4), spec("AAAA-y", Some(0), 4), spec("BBBB-z", Some(1), 4), spec("own", None, 0)];
        let primed: Vec<(String, u64)> = priming(&specs).into_iter().map(|s| (s.prompt, s.max_tokens)).collect();
        assert_eq!(primed, [("AAAA".to_string(), 1), ("BBBB".into(), 1), ("own".into(), 1)]);
        let mut busted = specs.to_vec();
        let buster = CacheBuster { firsts: vec!["a".into(), "b".into(), "c".into()], nonce: 7, offset: 0 };
        buster.bust(&mut busted, 1);
        // Request k (from 1) starts with token (7 + k) mod 3: c, a, b, c.
        let starts: Vec<char> = busted.iter().map(|s| s.prompt.chars().next().unwrap()).collect();
        assert_eq!(starts, ['c', 'a', 'b', 'c']);
        assert_eq!(busted[0].prompt, format!("c{:016x} AAAA-x", crate::rng::mix(7 ^ 1)));
        assert!(busted.iter().all(|s| s.shared_bytes == 0));
        assert_eq!(CacheBuster { firsts: Vec::new(), nonce: 7, offset: 0 }.marker(0), format!("{:016x} ", crate::rng::mix(7)));
    }

    #[test]
    fn traces_are_read_and_bad_lines_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, "{\"timestamp_ms\": 5, \"input_tokens\": 8, \"output_tokens\": 2}\n\n{\"timestamp\": 9, \"input_length\": 9, \"output_length\": 3, \"prefix_id\": \"sys\", \"prefix_tokens\": 4}\n").unwrap();
        let entries = read_trace(&path).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[1].timestamp_ms, entries[1].input_tokens, entries[1].prefix_tokens), (9.0, 9, Some(4)));
        for (bad, says) in [
            ("{\"timestamp_ms\": 0, \"input_tokens\": 8}", "line 1: not a trace entry"),
            ("{\"timestamp_ms\": 0, \"input_tokens\": 4, \"output_tokens\": 1, \"prefix_id\": 1, \"prefix_tokens\": 4}", "not below"),
            ("{\"timestamp_ms\": 0, \"input_tokens\": 4, \"output_tokens\": 1, \"prefix_id\": 1}", "needs prefix_tokens"),
            ("", "no requests"),
        ] {
            std::fs::write(&path, bad).unwrap();
            let error = read_trace(&path).unwrap_err().to_string();
            assert!(error.contains(says) && error.contains("t.jsonl"), "{error}");
        }
    }
}
