//! What a load test measures, from each request's timestamps; every definition is in README
//! ("`mlxbench serve`"). Pure arithmetic: the clock is read by the client, not here.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::measure::stats::percentile;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No connection (refused, unreachable, DNS), or one reset or closed before any answer.
    Connect,
    /// No answer, or the stream stalled, within the request timeout (or the run's deadline).
    Timeout,
    /// An HTTP status other than 2xx.
    Http,
    /// The stream ended before `[DONE]` (connection closed or reset mid-way).
    StreamCut,
    /// An event that is not the JSON of a completion chunk, or an error object in the stream.
    Malformed,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 5] = [ErrorKind::Connect, ErrorKind::Timeout, ErrorKind::Http, ErrorKind::StreamCut, ErrorKind::Malformed];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Http => "http",
            ErrorKind::StreamCut => "stream_cut",
            ErrorKind::Malformed => "malformed",
        }
    }
}

/// Where a request's output token count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The server's `usage.completion_tokens`.
    Usage,
    /// Counted as the streamed chunks that carried text (a chunk may hold several tokens).
    Chunks,
}

/// One request, as the client saw it. Times are milliseconds from when the request was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The server (base URL) that got it.
    pub url: String,
    /// When it was sent, ms from the start of the point.
    pub sent_ms: f64,
    /// When each streamed chunk that carried text arrived.
    pub chunk_ms: Vec<f64>,
    /// When the response ended (`[DONE]`, or the error).
    pub end_ms: f64,
    /// Prompt tokens: the server's `usage.prompt_tokens`, else what mlxbench built.
    pub input_tokens: Option<u64>,
    pub output_tokens: u64,
    pub token_source: TokenSource,
    /// Prompt tokens the server took from its prompt cache (`usage.prompt_tokens_details`).
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    pub error: Option<(ErrorKind, String)>,
}

impl RequestRecord {
    /// A request to `url` sent at `sent_ms` with `input_tokens` prompt tokens, before anything
    /// came back.
    pub fn sent(url: &str, sent_ms: f64, input_tokens: Option<u64>) -> Self {
        RequestRecord {
            url: url.to_string(),
            sent_ms,
            chunk_ms: Vec::new(),
            end_ms: 0.0,
            input_tokens,
            output_tokens: 0,
            token_source: TokenSource::Chunks,
            cached_tokens: None,
            error: None,
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// Time to first token: to the first chunk that carried text.
    pub fn ttft_ms(&self) -> Option<f64> {
        self.chunk_ms.first().copied()
    }

    /// End-to-end latency.
    pub fn e2e_ms(&self) -> f64 {
        self.end_ms
    }

    /// Time per output token after the first: (E2E − TTFT) ÷ (output tokens − 1).
    pub fn tpot_ms(&self) -> Option<f64> {
        let ttft = self.ttft_ms()?;
        (self.output_tokens > 1).then(|| (self.e2e_ms() - ttft) / (self.output_tokens - 1) as f64)
    }

    /// Inter-token latencies: the gaps between consecutive chunks that carried text.
    pub fn itl_ms(&self) -> impl Iterator<Item = f64> + '_ {
        self.chunk_ms.windows(2).map(|w| w[1] - w[0])
    }
}

/// Latency-like samples summarised: mean, median, p90, p95, p99, max (percentiles interpolate
/// linearly between ranks, as `run`'s do).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(samples: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut sorted: Vec<f64> = samples.into_iter().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        Some(Spread {
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            median: percentile(&sorted, 50.0),
            p90: percentile(&sorted, 90.0),
            p95: percentile(&sorted, 95.0),
            p99: percentile(&sorted, 99.0),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// Service-level objectives a request must meet to count towards goodput.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
}

impl Slo {
    /// `ttft=500ms,tpot=50ms,e2e=10s` (units ms or s; a bare number is ms).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut slo = Slo::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| format!("{part:?}: expected KEY=TIME, e.g. ttft=500ms"))?;
            let value = value.trim();
            let (number, scale) = if let Some(v) = value.strip_suffix("ms") {
                (v, 1.0)
            } else if let Some(v) = value.strip_suffix('s') {
                (v, 1000.0)
            } else {
                (value, 1.0)
            };
            let ms = number.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0).map(|v| v * scale);
            let ms = ms.ok_or_else(|| format!("{part:?}: {value:?} is not a positive time like 500ms or 2s"))?;
            match key.trim() {
                "ttft" => slo.ttft_ms = Some(ms),
                "tpot" => slo.tpot_ms = Some(ms),
                "e2e" => slo.e2e_ms = Some(ms),
                other => return Err(format!("unknown SLO {other:?}: use ttft, tpot or e2e")),
            }
        }
        Ok(slo)
    }

    pub fn is_set(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some() || self.e2e_ms.is_some()
    }

    /// Whether a successful request met every objective (a TPOT objective is met by a request of
    /// one output token, which has none).
    pub fn met_by(&self, r: &RequestRecord) -> bool {
        let within = |limit: Option<f64>, value: Option<f64>| match (limit, value) {
            (Some(limit), Some(value)) => value <= limit,
            (Some(_), None) => false,
            (None, _) => true,
        };
        r.ok()
            && within(self.ttft_ms, r.ttft_ms())
            && within(self.e2e_ms, Some(r.e2e_ms()))
            && (self.tpot_ms.is_none() || r.output_tokens <= 1 || within(self.tpot_ms, r.tpot_ms()))
    }
}

/// A point's numbers, from its measured requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointSummary {
    pub requests: usize,
    pub ok_requests: usize,
    /// From the first request sent to the last response ended, s.
    pub elapsed_s: f64,
    /// Output tokens of the successful requests.
    pub total_output_tokens: u64,
    /// `total_output_tokens` ÷ `elapsed_s`.
    pub output_tps: f64,
    /// Successful requests ÷ `elapsed_s`.
    pub requests_per_s: f64,
    /// Requests that met every SLO ÷ `elapsed_s` (with `--slo`).
    pub goodput_rps: Option<f64>,
    pub ttft_ms: Option<Spread>,
    pub tpot_ms: Option<Spread>,
    pub itl_ms: Option<Spread>,
    pub e2e_ms: Option<Spread>,
    pub output_tokens: Option<Spread>,
    pub input_tokens: Option<Spread>,
    /// Failed requests by kind.
    pub errors: BTreeMap<ErrorKind, usize>,
    /// `usage`, `chunks`, or `mixed` when servers differed.
    pub token_source: String,
    /// Prompt tokens the servers said came from their prompt cache (`cached_tokens`), summed.
    pub cached_prompt_tokens: u64,
}

impl PointSummary {
    pub fn of(requests: &[RequestRecord], slo: &Slo) -> Self {
        let ok: Vec<&RequestRecord> = requests.iter().filter(|r| r.ok()).collect();
        let start = requests.iter().map(|r| r.sent_ms).fold(f64::INFINITY, f64::min);
        let end = requests.iter().map(|r| r.sent_ms + r.end_ms).fold(f64::NEG_INFINITY, f64::max);
        let elapsed_s = if requests.is_empty() { 0.0 } else { (end - start).max(0.0) / 1000.0 };
        let per_s = |n: f64| if elapsed_s > 0.0 { n / elapsed_s } else { 0.0 };
        let total_output_tokens: u64 = ok.iter().map(|r| r.output_tokens).sum();
        let mut errors = BTreeMap::new();
        for r in requests {
            if let Some((kind, _)) = &r.error {
                *errors.entry(*kind).or_insert(0) += 1;
            }
        }
        let sources: std::collections::BTreeSet<_> = ok.iter().map(|r| r.token_source).collect();
        let token_source = match sources.len() {
            0 => "-".to_string(),
            1 => match sources.into_iter().next() {
                Some(TokenSource::Usage) => "usage".into(),
                _ => "chunks".into(),
            },
            _ => "mixed".into(),
        };
        PointSummary {
            requests: requests.len(),
            ok_requests: ok.len(),
            elapsed_s,
            total_output_tokens,
            output_tps: per_s(total_output_tokens as f64),
            requests_per_s: per_s(ok.len() as f64),
            goodput_rps: slo.is_set().then(|| per_s(ok.iter().filter(|r| slo.met_by(r)).count() as f64)),
            ttft_ms: Spread::of(ok.iter().filter_map(|r| r.ttft_ms())),
            tpot_ms: Spread::of(ok.iter().filter_map(|r| r.tpot_ms())),
            itl_ms: Spread::of(ok.iter().flat_map(|r| r.itl_ms())),
            e2e_ms: Spread::of(ok.iter().map(|r| r.e2e_ms())),
            output_tokens: Spread::of(ok.iter().map(|r| r.output_tokens as f64)),
            input_tokens: Spread::of(ok.iter().filter_map(|r| r.input_tokens.map(|t| t as f64))),
            errors,
            token_source,
            cached_prompt_tokens: ok.iter().filter_map(|r| r.cached_tokens).sum(),
        }
    }

    pub fn failed(&self) -> usize {
        self.errors.values().sum()
    }
}
