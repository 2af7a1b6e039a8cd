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
    /// How long it waited in our client between when it was due and when it was sent (an open
    /// loop at its `--max-concurrency`, a trace replay), ms: every latency counts it.
    #[serde(default)]
    pub queued_ms: f64,
    /// Its conversation and turn (0-based) in a multi-turn workload.
    #[serde(default)]
    pub conversation: Option<usize>,
    #[serde(default)]
    pub turn: Option<usize>,
    /// Its shared-prefix group (shared-prefix workload, trace `prefix_id`s), if it had one.
    #[serde(default)]
    pub prefix_group: Option<usize>,
    /// The text it streamed back (what a multi-turn conversation appends to its history).
    #[serde(skip)]
    pub output_text: String,
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
            queued_ms: 0.0,
            conversation: None,
            turn: None,
            prefix_group: None,
            output_text: String::new(),
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// Time to first token: from when the request was due (its time queued in our client
    /// included) to the first chunk that carried text.
    pub fn ttft_ms(&self) -> Option<f64> {
        self.chunk_ms.first().map(|t| self.queued_ms + t)
    }

    /// End-to-end latency: from when it was due (queued time included) to its end.
    pub fn e2e_ms(&self) -> f64 {
        self.queued_ms + self.end_ms
    }

    /// Whether the server reported its prompt cache held none of the prompt (cold), or some
    /// (warm); `None` when it reported nothing.
    pub fn warm(&self) -> Option<bool> {
        self.cached_tokens.map(|n| n > 0)
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

/// Service-level objectives: a limit on TTFT, TPOT and E2E, each for a share of the requests
/// (`ttft_p90<=1s`: 90% of them; `ttft=1s`: every one). A request meeting every limit counts
/// towards goodput; a point meets the objectives when each limit holds for its share of the
/// requests sent (a failed request meets none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
    /// The percentile each limit is for (`None`: 100, every request).
    #[serde(default)]
    pub ttft_percentile: Option<f64>,
    #[serde(default)]
    pub tpot_percentile: Option<f64>,
    #[serde(default)]
    pub e2e_percentile: Option<f64>,
}

impl Slo {
    /// `ttft_p90<=1s,tpot_p90<=50ms` or `ttft=500ms,e2e=10s` (`<=` or `=`; units ms or s; a bare
    /// number is ms; `_pNN` a percentile, else every request).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut slo = Slo::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once("<=")
                .or_else(|| part.split_once('='))
                .ok_or_else(|| format!("{part:?}: expected METRIC<=TIME, e.g. ttft_p90<=1s or ttft=500ms"))?;
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
            let (metric, percentile) = match key.trim().split_once("_p") {
                Some((metric, p)) => {
                    let p = p.parse::<f64>().ok().filter(|p| *p > 0.0 && *p <= 100.0);
                    (metric, Some(p.ok_or_else(|| format!("{part:?}: the percentile is a number in (0, 100], e.g. ttft_p90"))?))
                }
                None => (key.trim(), None),
            };
            match metric {
                "ttft" => (slo.ttft_ms, slo.ttft_percentile) = (Some(ms), percentile),
                "tpot" => (slo.tpot_ms, slo.tpot_percentile) = (Some(ms), percentile),
                "e2e" => (slo.e2e_ms, slo.e2e_percentile) = (Some(ms), percentile),
                other => return Err(format!("unknown SLO {other:?}: use ttft, tpot or e2e (with _p90 and the like for a percentile)")),
            }
        }
        Ok(slo)
    }

    pub fn is_set(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some() || self.e2e_ms.is_some()
    }

    /// `ttft_p90<=1000ms, tpot_p90<=50ms`: the objectives as they were given, in ms.
    pub fn label(&self) -> String {
        let one = |name: &str, limit: Option<f64>, p: Option<f64>| {
            limit.map(|l| match p {
                Some(p) => format!("{name}_p{p}<={l}ms"),
                None => format!("{name}<={l}ms"),
            })
        };
        [one("ttft", self.ttft_ms, self.ttft_percentile), one("tpot", self.tpot_ms, self.tpot_percentile), one("e2e", self.e2e_ms, self.e2e_percentile)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn within_ttft(&self, r: &RequestRecord) -> bool {
        within(self.ttft_ms, r.ttft_ms())
    }

    fn within_tpot(&self, r: &RequestRecord) -> bool {
        // A request of one output token has no TPOT and meets the limit.
        self.tpot_ms.is_none() || r.output_tokens <= 1 || within(self.tpot_ms, r.tpot_ms())
    }

    fn within_e2e(&self, r: &RequestRecord) -> bool {
        within(self.e2e_ms, Some(r.e2e_ms()))
    }

    /// Whether a successful request met every limit (a TPOT limit is met by a request of one
    /// output token, which has none).
    pub fn met_by(&self, r: &RequestRecord) -> bool {
        r.ok() && self.within_ttft(r) && self.within_tpot(r) && self.within_e2e(r)
    }

    /// Whether the requests of a point meet the objectives: for each limit, the share of all
    /// requests (failed ones count as missing it) within it is at least its percentile.
    pub fn met_by_point(&self, requests: &[RequestRecord]) -> bool {
        if requests.is_empty() {
            return false;
        }
        let share = |f: &dyn Fn(&RequestRecord) -> bool| requests.iter().filter(|r| r.ok() && f(r)).count() as f64 / requests.len() as f64;
        let holds = |limit: Option<f64>, percentile: Option<f64>, f: &dyn Fn(&RequestRecord) -> bool| {
            // A tolerance for shares such as 9/10 against 90%.
            limit.is_none() || share(f) + 1e-9 >= percentile.unwrap_or(100.0) / 100.0
        };
        holds(self.ttft_ms, self.ttft_percentile, &|r| self.within_ttft(r))
            && holds(self.tpot_ms, self.tpot_percentile, &|r| self.within_tpot(r))
            && holds(self.e2e_ms, self.e2e_percentile, &|r| self.within_e2e(r))
            && (self.is_set() || requests.iter().all(RequestRecord::ok))
    }
}

/// Whether `value` is within `limit` (no limit: yes; a limit and no value: no).
fn within(limit: Option<f64>, value: Option<f64>) -> bool {
    match (limit, value) {
        (Some(limit), Some(value)) => value <= limit,
        (Some(_), None) => false,
        (None, _) => true,
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
    /// Of the successful requests whose server reported `cached_tokens`: their cached prompt
    /// tokens ÷ their prompt tokens.
    #[serde(default)]
    pub cache_hit_rate: Option<f64>,
    /// Successful requests the server reported some (warm) or no (cold) cached prompt tokens for.
    #[serde(default)]
    pub warm_requests: usize,
    #[serde(default)]
    pub cold_requests: usize,
    /// TTFT of the cold and of the warm requests.
    #[serde(default)]
    pub ttft_cold_ms: Option<Spread>,
    #[serde(default)]
    pub ttft_warm_ms: Option<Spread>,
    /// Time the requests waited in our client before they were sent.
    #[serde(default)]
    pub queued_ms: Option<Spread>,
    /// Whether the point met every `--slo` objective ([`Slo::met_by_point`]).
    #[serde(default)]
    pub slo_met: Option<bool>,
}

impl PointSummary {
    pub fn of(requests: &[RequestRecord], slo: &Slo) -> Self {
        let ok: Vec<&RequestRecord> = requests.iter().filter(|r| r.ok()).collect();
        // From the first request due (sent, less its time queued in our client).
        let start = requests.iter().map(|r| r.sent_ms - r.queued_ms).fold(f64::INFINITY, f64::min);
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
            cache_hit_rate: {
                let reported: Vec<(u64, u64)> = ok.iter().filter_map(|r| Some((r.cached_tokens?, r.input_tokens?))).collect();
                let prompt: u64 = reported.iter().map(|(_, n)| n).sum();
                (prompt > 0).then(|| reported.iter().map(|(c, _)| *c).sum::<u64>() as f64 / prompt as f64)
            },
            warm_requests: ok.iter().filter(|r| r.warm() == Some(true)).count(),
            cold_requests: ok.iter().filter(|r| r.warm() == Some(false)).count(),
            ttft_cold_ms: Spread::of(ok.iter().filter(|r| r.warm() == Some(false)).filter_map(|r| r.ttft_ms())),
            ttft_warm_ms: Spread::of(ok.iter().filter(|r| r.warm() == Some(true)).filter_map(|r| r.ttft_ms())),
            queued_ms: Spread::of(requests.iter().map(|r| r.queued_ms)),
            slo_met: slo.is_set().then(|| slo.met_by_point(requests)),
        }
    }

    pub fn failed(&self) -> usize {
        self.errors.values().sum()
    }
}
