//! Driving a point's load: a closed loop (N clients, each sending its next request when the last
//! ended) or an open loop (Poisson arrivals at a rate, optionally capped in flight), requests
//! spread round-robin over the servers. Every wait is bounded by the run's deadline.
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Condvar, Mutex,
    },
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use super::{
    client::{send, ClientOptions, RequestSpec},
    metrics::{ErrorKind, RequestRecord},
};
use crate::rng::SplitMix64;

/// In-flight requests of an open loop without `--max-concurrency`: a bound on threads.
pub const OPEN_LOOP_CAP: usize = 1024;

/// How a point loads the servers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Load {
    /// `concurrency` clients in a closed loop.
    Closed { concurrency: usize },
    /// Poisson arrivals at `rate` requests/s (infinite: all at once), at most `max_concurrency`
    /// in flight.
    Open { rate: f64, max_concurrency: Option<usize> },
    /// A trace replayed: each request at its time, at most `max_concurrency` in flight.
    Trace { max_concurrency: Option<usize> },
}

impl Load {
    /// `c=4`, `rate=2/s`, `rate=inf (max 8)`.
    pub fn label(&self) -> String {
        match self {
            Load::Closed { concurrency } => format!("c={concurrency}"),
            Load::Open { rate, max_concurrency } => {
                let rate = if rate.is_finite() { format!("{rate}/s") } else { "inf".into() };
                match max_concurrency {
                    Some(max) => format!("rate={rate} (max {max})"),
                    None => format!("rate={rate}"),
                }
            }
            Load::Trace { max_concurrency: Some(max) } => format!("trace (max {max})"),
            Load::Trace { max_concurrency: None } => "trace".into(),
        }
    }

    /// The value a search moves: clients of a closed loop, the rate of an open one.
    pub fn value(&self) -> Option<f64> {
        match self {
            Load::Closed { concurrency } => Some(*concurrency as f64),
            Load::Open { rate, .. } => Some(*rate),
            Load::Trace { .. } => None,
        }
    }
}

/// Where and how requests go, and until when.
pub struct Target<'a> {
    pub urls: &'a [String],
    pub client: &'a ClientOptions,
    /// Per request: connect, answer and stream.
    pub timeout: Duration,
    /// The run's deadline: no request starts after it, none lasts beyond it.
    pub deadline: Instant,
    /// Called as each request ends (progress).
    pub on_request: &'a (dyn Fn(&RequestRecord) + Sync),
}

/// How many requests a point sends: a number, or as many as fit in a duration (the specs cycle).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Requests,
    Duration(Duration),
}

/// A request not sent because the deadline had passed, recorded as a timeout.
fn past_deadline(url: &str, spec: &RequestSpec, start: Instant) -> RequestRecord {
    RequestRecord {
        error: Some((ErrorKind::Timeout, "the run's deadline passed before it was sent".into())),
        ..RequestRecord::sent(url, start.elapsed().as_secs_f64() * 1000.0, spec.input_tokens)
    }
}

/// Runs one point: `specs` under `load`, for `amount`. Returns every request's record, in the
/// order they ended.
pub fn run_point(target: &Target, load: Load, specs: &[RequestSpec], amount: Amount, seed: u64) -> Vec<RequestRecord> {
    if specs.is_empty() {
        return Vec::new();
    }
    let start = Instant::now();
    let records = Mutex::new(Vec::new());
    let next_url = AtomicUsize::new(0);
    let one = |spec: &RequestSpec, due: Instant| {
        let url = &target.urls[next_url.fetch_add(1, Ordering::SeqCst) % target.urls.len()];
        let left = target.deadline.saturating_duration_since(Instant::now());
        let record = if left.is_zero() { past_deadline(url, spec, start) } else { send(url, target.client, spec, target.timeout.min(left), start, due) };
        (target.on_request)(&record);
        records.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    };
    // The k-th request of the point, or None when the point is done.
    let spec_of = |k: usize, at: Duration| -> Option<&RequestSpec> {
        match amount {
            Amount::Requests => specs.get(k),
            Amount::Duration(d) => (at < d).then(|| &specs[k % specs.len()]),
        }
    };
    match load {
        Load::Closed { concurrency } => {
            let next = AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for _ in 0..concurrency.max(1) {
                    scope.spawn(|| loop {
                        if Instant::now() >= target.deadline {
                            break;
                        }
                        let k = next.fetch_add(1, Ordering::SeqCst);
                        match spec_of(k, start.elapsed()) {
                            Some(spec) => one(spec, Instant::now()),
                            None => break,
                        }
                    });
                }
            });
        }
        open => {
            // A trace is an open loop whose requests carry their own times.
            let (rate, max_concurrency) = match open {
                Load::Open { rate, max_concurrency } => (rate, max_concurrency),
                Load::Trace { max_concurrency } => (f64::INFINITY, max_concurrency),
                Load::Closed { .. } => (f64::INFINITY, None), // matched above
            };
            let cap = max_concurrency.unwrap_or(OPEN_LOOP_CAP).max(1);
            let in_flight = (Mutex::new(0usize), Condvar::new());
            let mut rng = SplitMix64::new(seed);
            let mut arrival = Duration::ZERO;
            std::thread::scope(|scope| {
                for k in 0.. {
                    if k > 0 && rate.is_finite() {
                        // Exponential gaps: −ln(U) ÷ rate, U uniform in (0, 1].
                        let u = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
                        arrival += Duration::from_secs_f64(-u.ln() / rate);
                    }
                    let Some(spec) = spec_of(k, arrival) else { break };
                    // A trace's request is due at its own time.
                    let due = start + spec.due_ms.map_or(arrival, |ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0));
                    if due >= target.deadline {
                        break;
                    }
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    // A free slot, waiting at most until the deadline.
                    let (count, freed) = &in_flight;
                    let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
                    while *n >= cap {
                        let left = target.deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        n = freed.wait_timeout(n, left.min(Duration::from_millis(100))).unwrap_or_else(|e| e.into_inner()).0;
                    }
                    if *n >= cap {
                        break;
                    }
                    *n += 1;
                    drop(n);
                    let in_flight = &in_flight;
                    let one = &one;
                    scope.spawn(move || {
                        one(spec, due);
                        let (count, freed) = in_flight;
                        *count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
                        freed.notify_one();
                    });
                }
            });
        }
    }
    records.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Runs multi-turn conversations, `clients` at once (each client takes the next conversation
/// when its last one ended): every turn sends the whole history and its new user turn, `think`
/// after the reply to the turn before. A failed turn ends its conversation. With `bust`, every
/// request's first user text starts with a marker of its own (the cache can serve nothing).
/// Returns every request's record, in the order they ended.
pub fn run_conversations(target: &Target, conversations: &[Vec<RequestSpec>], clients: usize, think: Duration, bust: Option<&super::workload::CacheBuster>) -> Vec<RequestRecord> {
    let start = Instant::now();
    let records = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let next_url = AtomicUsize::new(0);
    let sent = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..clients.max(1) {
            scope.spawn(|| {
                while let Some(turns) = conversations.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let mut history: Vec<(String, String)> = Vec::new();
                    for (t, turn) in turns.iter().enumerate() {
                        if t > 0 && !think.is_zero() {
                            std::thread::sleep(think.min(target.deadline.saturating_duration_since(Instant::now())));
                        }
                        let mut spec = RequestSpec { history: history.clone(), ..turn.clone() };
                        if let Some(buster) = bust {
                            let marker = buster.marker(sent.fetch_add(1, Ordering::SeqCst));
                            match spec.history.first_mut() {
                                Some(first) => first.0 = marker + &first.0,
                                None => spec.prompt = marker + &spec.prompt,
                            }
                        }
                        // The history is what the server saw; its count is the server's.
                        spec.input_tokens = if history.is_empty() { turn.input_tokens } else { None };
                        let url = &target.urls[next_url.fetch_add(1, Ordering::SeqCst) % target.urls.len()];
                        let left = target.deadline.saturating_duration_since(Instant::now());
                        let now = Instant::now();
                        let record = if left.is_zero() { past_deadline(url, &spec, start) } else { send(url, target.client, &spec, target.timeout.min(left), start, now) };
                        (target.on_request)(&record);
                        let ok = record.ok();
                        history.push((turn.prompt.clone(), record.output_text.clone()));
                        records.lock().unwrap_or_else(|e| e.into_inner()).push(record);
                        if !ok {
                            break;
                        }
                    }
                }
            });
        }
    });
    records.into_inner().unwrap_or_else(|e| e.into_inner())
}
