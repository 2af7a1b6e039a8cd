//! One streamed request to an OpenAI-compatible server, timed on the client: the body, the
//! server-sent events, and every way it can fail, each named.
use std::{
    io::{BufRead, BufReader},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use super::metrics::{ErrorKind, RequestRecord, TokenSource};
use crate::choice::choice;

/// The OpenAI endpoint requests go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Api {
    #[default]
    Completions,
    Chat,
}

choice!(Api {
    Completions => ("completions", "POST /v1/completions with a prompt"),
    Chat => ("chat", "POST /v1/chat/completions with one user message"),
});

impl Api {
    pub fn path(self) -> &'static str {
        match self {
            Api::Completions => "/v1/completions",
            Api::Chat => "/v1/chat/completions",
        }
    }
}

/// A server's base URL as requests are built on it: without a trailing `/` or `/v1` (the
/// OpenAI-style base URL LM Studio and the OpenAI SDKs show ends in `/v1`; [`Api::path`] adds it).
pub fn base_url(url: &str) -> &str {
    let url = url.trim().trim_end_matches('/');
    url.strip_suffix("/v1").unwrap_or(url).trim_end_matches('/')
}

/// What one request asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestSpec {
    pub prompt: String,
    /// The prompt's length in the model's tokens, when mlxbench built or counted it.
    pub input_tokens: Option<u64>,
    pub max_tokens: u64,
    /// The earlier turns of its conversation, oldest first: (user text, the reply it got).
    pub history: Vec<(String, String)>,
    /// When it is due, ms from the point's start (trace replay); `None`: when the load says.
    pub due_ms: Option<f64>,
    /// Its conversation and turn (multi-turn), its shared-prefix group.
    pub conversation: Option<usize>,
    pub turn: Option<usize>,
    pub prefix_group: Option<usize>,
    /// The length in bytes of the prompt's start that other requests share (what `--cache-mode
    /// warm` sends before the point); 0: none.
    pub shared_bytes: usize,
}

impl RequestSpec {
    /// The prompt of the completions API: each earlier turn and its reply, then this one.
    pub fn whole_prompt(&self) -> String {
        let mut text: String = self.history.iter().map(|(user, reply)| format!("{user}{reply}\n\n")).collect();
        text.push_str(&self.prompt);
        text
    }
}

/// How every request of a run is sent.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub api: Api,
    /// The `model` field (omitted when `None`: mlx_lm.server then uses the model it loaded).
    pub served_model: Option<String>,
    /// Ask for exactly `max_tokens`: `ignore_eos` and a -100 `logit_bias` on these EOS ids.
    pub exact_output: bool,
    pub eos_ids: Vec<u32>,
}

/// The JSON body of `spec`.
pub fn body(options: &ClientOptions, spec: &RequestSpec) -> Value {
    let mut body = json!({
        "max_tokens": spec.max_tokens,
        "temperature": 0.0,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    match options.api {
        Api::Completions => body["prompt"] = json!(spec.whole_prompt()),
        Api::Chat => {
            let mut messages: Vec<Value> = Vec::new();
            for (user, reply) in &spec.history {
                messages.push(json!({"role": "user", "content": user}));
                messages.push(json!({"role": "assistant", "content": reply}));
            }
            messages.push(json!({"role": "user", "content": spec.prompt}));
            body["messages"] = Value::Array(messages);
        }
    }
    if let Some(model) = &options.served_model {
        body["model"] = json!(model);
    }
    if options.exact_output {
        body["ignore_eos"] = json!(true);
        if !options.eos_ids.is_empty() {
            let bias: serde_json::Map<String, Value> = options.eos_ids.iter().map(|id| (id.to_string(), json!(-100))).collect();
            body["logit_bias"] = Value::Object(bias);
        }
    }
    body
}

/// The text a streamed chunk carries: a completion's `text`, a chat delta's `content` or
/// `reasoning`.
fn chunk_text(chunk: &Value) -> Option<&str> {
    let choice = chunk.get("choices")?.get(0)?;
    let text = choice
        .get("text")
        .and_then(Value::as_str)
        .or_else(|| choice.get("delta").and_then(|d| d.get("content").or_else(|| d.get("reasoning"))).and_then(Value::as_str));
    text.filter(|t| !t.is_empty())
}

/// What a broken read means: a timeout, or a stream cut.
fn read_error(e: &std::io::Error) -> ErrorKind {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => ErrorKind::Timeout,
        _ => ErrorKind::StreamCut,
    }
}

/// Sends `spec` to `base_url` and reads the stream to its end, within `timeout` (connect,
/// answer and whole stream). `point_start` is the point's `t = 0`; `due` is when the request
/// was to be sent (the time since is recorded as queued in our client).
pub fn send(base_url: &str, options: &ClientOptions, spec: &RequestSpec, timeout: Duration, point_start: Instant, due: Instant) -> RequestRecord {
    let url = format!("{}{}", self::base_url(base_url), options.api.path());
    let sent = Instant::now();
    let ms = move || sent.elapsed().as_secs_f64() * 1000.0;
    let mut record = RequestRecord::sent(base_url, sent.duration_since(point_start).as_secs_f64() * 1000.0, spec.input_tokens);
    record.queued_ms = sent.saturating_duration_since(due).as_secs_f64() * 1000.0;
    (record.conversation, record.turn, record.prefix_group) = (spec.conversation, spec.turn, spec.prefix_group);
    let fail = |mut record: RequestRecord, kind: ErrorKind, detail: String| {
        record.end_ms = ms();
        record.output_tokens = record.chunk_ms.len() as u64;
        record.error = Some((kind, detail));
        record
    };
    let agent = ureq::AgentBuilder::new().timeout_connect(timeout.min(Duration::from_secs(10))).timeout(timeout).build();
    let response = match agent.post(&url).set("Content-Type", "application/json").send_string(&body(options, spec).to_string()) {
        Ok(response) => response,
        Err(ureq::Error::Status(code, response)) => {
            let text: String = response.into_string().unwrap_or_default().chars().take(200).collect();
            return fail(record, ErrorKind::Http, format!("HTTP {code} from {url}: {}", text.trim()));
        }
        Err(ureq::Error::Transport(t)) => {
            let kind = match t.kind() {
                ureq::ErrorKind::Io if t.to_string().to_lowercase().contains("timed out") => ErrorKind::Timeout,
                // Reset or closed before the status line: the server dropped the request without
                // answering (an overflowing accept queue does this), which is no stream cut.
                _ => ErrorKind::Connect,
            };
            return fail(record, kind, format!("{url}: {t}"));
        }
    };
    let mut reader = BufReader::new(response.into_reader());
    let mut line = String::new();
    let mut usage_tokens = None;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return fail(record, ErrorKind::StreamCut, format!("{url}: the stream ended before [DONE]")),
            Ok(_) => {}
            Err(e) => {
                let kind = read_error(&e);
                return fail(record, kind, format!("{url}: {e}"));
            }
        }
        let event = line.trim_end_matches(['\r', '\n']);
        // Blank lines end events; `:` lines are comments (mlx_lm.server's keepalives).
        if event.is_empty() || event.starts_with(':') {
            continue;
        }
        let Some(data) = event.strip_prefix("data:").map(str::trim_start) else {
            if event.starts_with("event:") || event.starts_with("id:") || event.starts_with("retry:") {
                continue;
            }
            let shown: String = event.chars().take(80).collect();
            return fail(record, ErrorKind::Malformed, format!("{url}: not a server-sent event: {shown:?}"));
        };
        if data == "[DONE]" {
            break;
        }
        let chunk: Value = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                let shown: String = data.chars().take(80).collect();
                return fail(record, ErrorKind::Malformed, format!("{url}: an event that is not JSON ({e}): {shown:?}"));
            }
        };
        if let Some(error) = chunk.get("error") {
            return fail(record, ErrorKind::Malformed, format!("{url}: the server reported an error mid-stream: {error}"));
        }
        if let Some(text) = chunk_text(&chunk) {
            record.chunk_ms.push(ms());
            record.output_text.push_str(text);
        }
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            usage_tokens = usage.get("completion_tokens").and_then(Value::as_u64);
            if let Some(prompt) = usage.get("prompt_tokens").and_then(Value::as_u64) {
                record.input_tokens = Some(prompt);
            }
            record.cached_tokens = usage.get("prompt_tokens_details").and_then(|d| d.get("cached_tokens")).and_then(Value::as_u64);
        }
    }
    record.end_ms = ms();
    match usage_tokens {
        Some(tokens) => {
            record.output_tokens = tokens;
            record.token_source = TokenSource::Usage;
        }
        None => record.output_tokens = record.chunk_ms.len() as u64,
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_ask_for_a_stream_with_usage_and_exact_lengths() {
        let spec = RequestSpec { prompt: "hi".into(), input_tokens: Some(1), max_tokens: 7, ..RequestSpec::default() };
        let options = ClientOptions { api: Api::Chat, served_model: None, exact_output: true, eos_ids: vec![2, 5] };
        let b = body(&options, &spec);
        assert_eq!(b["messages"][0]["content"], "hi");
        assert_eq!((b["max_tokens"].as_u64(), b["stream"].as_bool()), (Some(7), Some(true)));
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!((b["logit_bias"]["2"].as_i64(), b["logit_bias"]["5"].as_i64()), (Some(-100), Some(-100)));
        assert!(b.get("model").is_none() && b.get("prompt").is_none());
        let options = ClientOptions { served_model: Some("m".into()), ..ClientOptions::default() };
        let b = body(&options, &spec);
        assert_eq!((b["prompt"].as_str(), b["model"].as_str()), (Some("hi"), Some("m")));
        assert!(b.get("logit_bias").is_none() && b.get("ignore_eos").is_none());
        // A later turn sends the whole history.
        let spec = RequestSpec { history: vec![("u1".into(), " r1".into())], ..spec };
        assert_eq!(body(&options, &spec)["prompt"], "u1 r1\n\nhi");
        let chat = ClientOptions { api: Api::Chat, ..ClientOptions::default() };
        let roles: Vec<Value> = body(&chat, &spec)["messages"].as_array().unwrap().iter().map(|m| m["role"].clone()).collect();
        assert_eq!(roles, [json!("user"), json!("assistant"), json!("user")]);
    }

    #[test]
    fn base_urls_with_or_without_v1_and_slashes() {
        for url in ["http://127.0.0.1:9", "http://127.0.0.1:9/", "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/", " http://127.0.0.1:9/v1// "] {
            assert_eq!(base_url(url), "http://127.0.0.1:9", "{url:?}");
        }
        assert_eq!(base_url("http://host/openai/v1"), "http://host/openai");
        assert_eq!(base_url("http://host/v1beta"), "http://host/v1beta");
    }

    #[test]
    fn chunk_text_reads_completions_and_chat_deltas() {
        assert_eq!(chunk_text(&json!({"choices": [{"text": "a"}]})), Some("a"));
        assert_eq!(chunk_text(&json!({"choices": [{"delta": {"content": "b"}}]})), Some("b"));
        assert_eq!(chunk_text(&json!({"choices": [{"delta": {"role": "assistant"}}]})), None);
        assert_eq!(chunk_text(&json!({"choices": [], "usage": {"completion_tokens": 3}})), None);
    }
}
