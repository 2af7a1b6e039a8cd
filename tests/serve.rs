//! `mlxbench serve`: the metrics on synthetic timestamps, every fault against a fault-injecting
//! HTTP server on 127.0.0.1, and real `mlx_lm.server` instances launched by `serve --launch`
//! (token counts, orderings, the CSV's columns, no server left behind, Ctrl-C).
mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{serve, wait_bounded};
use mlxbench::{
    serve::{
        launch::{LogDir, MemoryTimeline, ServerCommand},
        load::Load,
        markdown,
        metrics::{ErrorKind, PointSummary, RequestRecord, Slo, Spread, TokenSource},
        progress_line, ServeContext, ServePoint, ServeRecord, ServeReport,
    },
    synth::{self, Arch, FloatDtype, SynthOptions},
};

/// The reference venv's Python, which has `mlx_lm.server` (`tests/common/reference.rs`).
fn python() -> String {
    common::reference::python_arg()
}

fn tiny_model(dir: &Path) -> PathBuf {
    let out = dir.join("tiny");
    let config = synth::preset_config("tiny", Some(Arch::Llama)).unwrap();
    synth::write_model(&config, &SynthOptions { bits: Some(4), dtype: FloatDtype::Float32, ..SynthOptions::default() }, &out).unwrap();
    out
}


/// The `mlx_lm` processes whose command line mentions `needle` (launched servers carry the
/// model's path).
fn processes_mentioning(needle: &str) -> Vec<String> {
    common::process::command_lines_containing(&[needle, "mlx_lm"])
}

/// The rest of the first line of `stderr` that holds `label`.
fn said<'a>(stderr: &'a str, label: &str) -> &'a str {
    stderr.lines().find_map(|l| l.split_once(label).map(|(_, rest)| rest)).unwrap_or_else(|| panic!("no {label:?} in {stderr}"))
}

// --- The metrics, to exact numbers. ---

fn request(sent: f64, chunks: &[f64], end: f64, output_tokens: u64) -> RequestRecord {
    RequestRecord {
        url: "http://127.0.0.1:1".into(),
        sent_ms: sent,
        chunk_ms: chunks.to_vec(),
        end_ms: end,
        input_tokens: Some(10),
        output_tokens,
        token_source: TokenSource::Usage,
        cached_tokens: None,
        error: None,
        queued_ms: 0.0,
        conversation: None,
        turn: None,
        prefix_group: None,
        output_text: String::new(),
    }
}

#[test]
fn metrics_from_synthetic_timestamps() {
    // TTFT 100, chunks every 20 ms, 5 tokens: TPOT = (180 − 100) / 4 = 20.
    let a = request(0.0, &[100.0, 120.0, 140.0, 160.0, 180.0], 180.0, 5);
    assert_eq!((a.ttft_ms(), a.tpot_ms(), a.e2e_ms()), (Some(100.0), Some(20.0), 180.0));
    assert_eq!(a.itl_ms().collect::<Vec<_>>(), vec![20.0, 20.0, 20.0, 20.0]);
    // One token: no TPOT.
    assert_eq!(request(0.0, &[50.0], 50.0, 1).tpot_ms(), None);

    // Percentiles interpolate between ranks: 1..=11 → p90 = 10, p95 = 10.5, p99 = 10.9.
    let s = Spread::of((1..=11).map(f64::from)).unwrap();
    assert_eq!((s.mean, s.median, s.p90, s.p95, s.max), (6.0, 6.0, 10.0, 10.5, 11.0));
    assert!((s.p99 - 10.9).abs() < 1e-12);

    // A point: 3 requests over 1 s (sent at 0, 200, 500 ms; the last ends at 1000), one failed.
    let b = request(200.0, &[300.0, 500.0], 600.0, 3); // TTFT 300, TPOT (600 − 300) / 2 = 150
    let mut c = request(500.0, &[], 500.0, 0);
    c.error = Some((ErrorKind::Http, "HTTP 500".into()));
    let slo = Slo::parse("ttft=150ms,tpot=50ms").unwrap();
    let point = PointSummary::of(&[a.clone(), b, c], &slo);
    assert_eq!((point.requests, point.ok_requests, point.failed()), (3, 2, 1));
    assert_eq!(point.elapsed_s, 1.0);
    assert_eq!((point.total_output_tokens, point.output_tps, point.requests_per_s), (8, 8.0, 2.0));
    // Only `a` meets TTFT ≤ 150 ms and TPOT ≤ 50 ms.
    assert_eq!(point.goodput_rps, Some(1.0));
    assert_eq!(point.ttft_ms.unwrap().median, 200.0);
    assert_eq!(point.tpot_ms.unwrap().max, 150.0);
    assert_eq!(point.errors.get(&ErrorKind::Http), Some(&1));
    assert_eq!(point.token_source, "usage");

    assert_eq!(Slo::parse("e2e=2s").unwrap().e2e_ms, Some(2000.0));
    for bad in ["ttft", "ttft=-1ms", "speed=3ms", "ttft=fast"] {
        assert!(Slo::parse(bad).is_err(), "{bad}");
    }
}

// --- Faults, from a server written here. ---

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Streams 4 chunks, the usage and [DONE].
    Good,
    /// Answers headers, then waits 3 s before the first chunk.
    SlowFirstToken,
    /// Two chunks, then the connection closes.
    CutStream,
    /// HTTP 500.
    ServerError,
    /// An event that is not JSON.
    Garbage,
    /// A server of a known capacity: 4 chunks 20 ms after the request, or 600 ms when more than
    /// this many requests are in flight at its arrival.
    SlowAbove(usize),
}

/// What a test server received: each request's path and JSON body.
type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A server with one fault for every request; returns its base URL and what it received.
fn fault_server(fault: Fault) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = seen.clone();
            let in_flight = in_flight.clone();
            std::thread::spawn(move || {
                let _ = answer(stream, fault, &seen, &in_flight);
            });
        }
    });
    (url, bodies)
}

fn answer(mut stream: TcpStream, fault: Fault, seen: &Mutex<Vec<(String, serde_json::Value)>>, in_flight: &std::sync::atomic::AtomicUsize) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    seen.lock().unwrap().push((path, serde_json::from_slice(&body).unwrap_or_default()));
    let chunk = |text: &str| format!("data: {}\n\n", serde_json::json!({"choices": [{"index": 0, "text": text}]}));
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
    match fault {
        Fault::ServerError => {
            stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops")?;
        }
        Fault::Good | Fault::SlowFirstToken => {
            stream.write_all(head.as_bytes())?;
            stream.write_all(b": keepalive 1/1\n\n")?;
            if let Fault::SlowFirstToken = fault {
                std::thread::sleep(Duration::from_secs(3));
            }
            for t in ["a", "b", "c", "d"] {
                stream.write_all(chunk(t).as_bytes())?;
                stream.flush()?;
            }
            let usage = serde_json::json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}});
            stream.write_all(format!("data: {usage}\n\ndata: [DONE]\n\n").as_bytes())?;
        }
        Fault::SlowAbove(capacity) => {
            use std::sync::atomic::Ordering::SeqCst;
            let busy = in_flight.fetch_add(1, SeqCst) + 1 > capacity;
            stream.write_all(head.as_bytes())?;
            std::thread::sleep(Duration::from_millis(if busy { 600 } else { 20 }));
            for t in ["a", "b", "c", "d"] {
                stream.write_all(chunk(t).as_bytes())?;
                stream.flush()?;
                std::thread::sleep(Duration::from_millis(5));
            }
            // Out of flight before [DONE]: a client's next request cannot find this one busy.
            in_flight.fetch_sub(1, SeqCst);
            let usage = serde_json::json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}});
            stream.write_all(format!("data: {usage}\n\ndata: [DONE]\n\n").as_bytes())?;
        }
        Fault::CutStream => {
            stream.write_all(head.as_bytes())?;
            stream.write_all(format!("{}{}", chunk("a"), chunk("b")).as_bytes())?;
            stream.flush()?;
        }
        Fault::Garbage => {
            stream.write_all(head.as_bytes())?;
            stream.write_all(format!("{}data: {{not json\n\n", chunk("a")).as_bytes())?;
        }
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

#[test]
fn every_fault_is_counted_and_named_and_the_run_ends() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let faults = [Fault::Good, Fault::SlowFirstToken, Fault::CutStream, Fault::ServerError, Fault::Garbage];
    let servers: Vec<_> = faults.iter().map(|&f| fault_server(f)).collect();
    // Refused: a port that was free a moment ago, nothing listening.
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut urls: Vec<String> = servers.iter().map(|(u, _)| u.clone()).collect();
    urls.push(refused);
    let out_file = dir.path().join("faults.json");
    // Round-robin: 12 requests, 2 to each of the 6 servers.
    let out = serve(
        &[
            "--url",
            &urls.join(","),
            "--tokenizer",
            model.to_str().unwrap(),
            "--concurrency",
            "3",
            "--num-requests",
            "12",
            "--warmup",
            "0",
            "--input-len",
            "16",
            "--output-len",
            "4",
            "--request-timeout",
            "1",
            "--deadline",
            "60",
            "-o",
            out_file.to_str().unwrap(),
        ],
        Duration::from_secs(90),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "failures make exit code 1: {stderr}");
    let report: ServeReport = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    let summary = report.records[0].summary.as_ref().unwrap();
    let count = |k: ErrorKind| summary.errors.get(&k).copied().unwrap_or(0);
    assert_eq!(
        (summary.ok_requests, count(ErrorKind::Timeout), count(ErrorKind::StreamCut), count(ErrorKind::Http), count(ErrorKind::Malformed), count(ErrorKind::Connect)),
        (2, 2, 2, 2, 2, 2),
        "{stdout}\n{stderr}\n{:#?}",
        report.records[0].requests.iter().map(|r| (&r.url, &r.error)).collect::<Vec<_>>()
    );
    // The good server's requests: 4 tokens from `usage`.
    assert_eq!(summary.total_output_tokens, 8);
    assert_eq!(summary.token_source, "usage");
    let details: Vec<String> = report.records[0].requests.iter().filter_map(|r| r.error.as_ref().map(|e| e.1.clone())).collect();
    assert!(details.iter().any(|d| d.contains("HTTP 500") && d.contains("oops")), "{details:#?}");
    assert!(details.iter().any(|d| d.contains("not JSON")), "{details:#?}");
    assert!(details.iter().any(|d| d.contains("before [DONE]")), "{details:#?}");
    assert!(stdout.contains("2 connect") && stdout.contains("2 timeout"), "the table names the errors: {stdout}");
    assert!(stderr.contains("10 of 12 requests failed"), "{stderr}");
    // What the servers were asked: a stream with usage, 4 tokens, EOS suppressed.
    let received = servers[0].1.lock().unwrap().clone();
    let (path, body) = &received[0];
    assert_eq!(path, "/v1/completions");
    assert_eq!((body["stream"].as_bool(), body["max_tokens"].as_u64()), (Some(true), Some(4)), "{body}");
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert!(body["logit_bias"].as_object().is_some_and(|b| !b.is_empty()) && body["ignore_eos"] == true, "{body}");
    assert!(body["prompt"].as_str().is_some_and(|p| !p.is_empty()), "{body}");
}

#[test]
fn bad_arguments_are_named() {
    let out = serve(&["--url", "127.0.0.1:8080", "--tokenizer", "x"], Duration::from_secs(30));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give a base URL"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = serve(&["--launch", "mlx-lm"], Duration::from_secs(30));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --model"));
    let out = serve(&["--url", "http://127.0.0.1:1", "--slo", "ttft=soon"], Duration::from_secs(30));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ttft=soon"));
    let out = serve(&["--url", "http://127.0.0.1:1"], Duration::from_secs(30));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tokenizer"), "{}", String::from_utf8_lossy(&out.stderr));
    // Workloads and the search: what is missing or does not fit is named.
    for (args, says) in [
        (&["--workload", "trace"][..], "needs --trace FILE"),
        (&["--workload", "multi-turn", "--request-rate", "2"][..], "closed loop"),
        (&["--workload", "multi-turn", "--duration", "5"][..], "--duration applies"),
        (&["--search", "concurrency"][..], "--slo"),
        (&["--search", "rate", "--slo", "ttft_p90<=1s", "--concurrency", "2"][..], "--concurrency"),
        (&["--trace", "t.jsonl"][..], "--trace is the file of --workload trace"),
    ] {
        let out = serve(&[&["--url", "http://127.0.0.1:1", "--tokenizer", "x"][..], args].concat(), Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.code() != Some(0) && stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn base_urls_with_or_without_v1_reach_the_same_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let (url, received) = fault_server(Fault::Good);
    // The OpenAI-style base URL (LM Studio, the OpenAI SDKs), with and without a slash, and the bare one.
    let variants = [format!("{url}/v1"), format!("{url}/v1/"), format!("{url}/"), url.clone()];
    for api in ["completions", "chat"] {
        let out = serve(
            &[
                "--url",
                &variants.join(","),
                "--tokenizer",
                model.to_str().unwrap(),
                "--api",
                api,
                "--concurrency",
                "1",
                "--num-requests",
                "4",
                "--warmup",
                "0",
                "-p",
                "8",
                "-n",
                "4",
                "--format",
                "json",
                "--no-save",
            ],
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: ServeReport = serde_json::from_slice(&out.stdout).unwrap();
        let record = &report.records[0];
        assert_eq!(record.urls, vec![url.clone(); 4], "one spelling of the server");
        let s = record.summary.as_ref().unwrap();
        assert_eq!((s.ok_requests, s.failed(), s.total_output_tokens), (4, 0, 16), "{:#?}", record.requests);
    }
    let paths: Vec<String> = received.lock().unwrap().iter().map(|(path, _)| path.clone()).collect();
    assert_eq!(paths, [vec!["/v1/completions"; 4], vec!["/v1/chat/completions"; 4]].concat());
}

#[test]
fn off_a_terminal_each_point_gets_a_line_as_it_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    // Each request waits 3 s for its first token: two points of one request, about 3 s each.
    let (url, _) = fault_server(Fault::SlowFirstToken);
    let json = dir.path().join("progress.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlxbench"))
        .arg("serve")
        .args(["--url", &url, "--tokenizer", model.to_str().unwrap(), "--concurrency", "1,2", "--num-requests", "1", "--warmup", "0"])
        .args(["--input-len", "8", "--output-len", "4", "-o", json.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).map(|l| (Instant::now(), l)).collect::<Vec<_>>());
    let status = wait_bounded(child, Duration::from_secs(60), "serve").status;
    let ended = Instant::now();
    let lines = reader.join().unwrap();
    let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    assert!(status.success(), "{text}");
    assert!(!text.contains('\r') && !text.contains('\x1b'), "no bar drawn off a terminal: {text:?}");
    let report: ServeReport = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report.records.len(), 2);
    for (i, record) in report.records.iter().enumerate() {
        let expected = progress_line(record, i + 1, 2);
        let (at, _) = lines.iter().find(|(_, l)| *l == expected).unwrap_or_else(|| panic!("no line {expected:?} in\n{text}"));
        if i == 0 {
            // Printed when the point ended, not with the table: a whole point (3 s) before the end.
            assert!(ended.duration_since(*at) > Duration::from_millis(1500), "{:?} before the end", ended.duration_since(*at));
        }
        let s = record.summary.as_ref().unwrap();
        assert!(s.ttft_ms.unwrap().median >= 3000.0, "{s:?}");
        let concurrency = i + 1;
        assert!(
            expected.starts_with(&format!("point {}/2 (1 server, c={concurrency}): 1/1 ok, 0 failed, {:.1} out t/s, TTFT p50 ", i + 1, s.output_tps)),
            "{expected}"
        );
    }
}

fn context() -> ServeContext {
    ServeContext {
        timestamp: "2026-12-01T00:00:00Z".into(),
        git_commit: "abc".into(),
        mlxbench_version: "0.1.0".into(),
        hardware: "Apple M2 Ultra".into(),
        model: "/models/tiny".into(),
        api: "completions".into(),
        requests: "input 16 / output 8 tokens (stddev 0%)".into(),
        seed: 0,
        workload: "independent".into(),
        cache_mode: "as-is".into(),
        slo: None,
    }
}

#[test]
fn the_table_has_a_header_line_and_every_error_stays_in_its_row() {
    let ok = ServeRecord {
        point: ServePoint { instances: 2, decode_concurrency: None, prompt_concurrency: None, kv_bits: None, load: Load::Closed { concurrency: 1 } },
        context: context(),
        urls: vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
        error: None,
        // Output 5 tokens over 0.18 s: 27.8 t/s; TTFT 100 ms.
        summary: Some(PointSummary::of(&[request(0.0, &[100.0, 120.0, 140.0, 160.0, 180.0], 180.0, 5)], &Slo::default())),
        server_memory: Some(MemoryTimeline { peak_bytes: 512_000_000, samples: Vec::new() }),
        requests: Vec::new(),
        search: None,
    };
    let error = "mlx_lm.server on port 8080 exited (exit status: 1) before it was ready; its log (/tmp/x.log):\n  Traceback | here\n  ValueError: bad";
    let failed = ServeRecord {
        point: ServePoint { kv_bits: Some(4), ..ok.point.clone() },
        urls: Vec::new(),
        error: Some(error.into()),
        summary: None,
        server_memory: None,
        ..ok.clone()
    };
    let text = markdown(&[ok.clone(), failed.clone()]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "header line, blank, table head, rule, two rows:\n{text}");
    // What does not vary (the servers, the instances) is said once, above the table.
    assert_eq!(
        lines[0],
        "mlxbench 0.1.0 (abc) | model /models/tiny | completions API, input 16 / output 8 tokens (stddev 0%) \
         | servers http://127.0.0.1:1, http://127.0.0.1:2 | instances 2 | Apple M2 Ultra | 2026-12-01T00:00:00Z"
    );
    assert!(lines[2].starts_with("| kv | load | ok/sent |"), "only kv varies: {}", lines[2]);
    let unescaped = |line: &str| line.matches('|').count() - line.matches("\\|").count();
    for line in &lines[2..] {
        assert_eq!(unescaped(line), unescaped(lines[2]), "a row with other columns: {line}\n{text}");
    }
    assert!(lines[4].starts_with("| none | c=1 | 1/1 | - | 27.8 | 5.56 | - | 100.0 / 100.0 | 20.0 / 20.0 |"), "{}", lines[4]);
    assert!(lines[4].ends_with("| 5 | 512.0 MB |"), "{}", lines[4]);
    assert!(
        lines[5].contains("| 4 | c=1 | - | failed: mlx_lm.server on port 8080 exited (exit status: 1) before it was ready; its log (/tmp/x.log): Traceback \\| here ValueError: bad |"),
        "{}",
        lines[5]
    );
    // Progress lines: one line each, whatever the error.
    assert_eq!(progress_line(&ok, 1, 2), "point 1/2 (2 servers, c=1): 1/1 ok, 0 failed, 27.8 out t/s, TTFT p50 100.0 ms");
    let line = progress_line(&failed, 2, 2);
    assert!(line.starts_with("point 2/2 (2 servers, kv 4, c=1): failed: mlx_lm.server on port 8080") && !line.contains('\n'), "{line}");
}

#[test]
fn log_folders_are_fresh_and_a_temporary_one_is_private_and_removed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let first = LogDir::beside(&dir.path().join("serve-logs"), "20261201-000000").unwrap();
    let second = LogDir::beside(&dir.path().join("serve-logs"), "20261201-000000").unwrap();
    assert_eq!(first.path(), dir.path().join("serve-logs/20261201-000000"));
    assert_eq!(second.path(), dir.path().join("serve-logs/20261201-000000-2"), "a second run gets a folder of its own");
    drop((first, second));
    assert!(dir.path().join("serve-logs/20261201-000000-2").is_dir(), "logs beside results are kept");

    let temporary = LogDir::temporary("test").unwrap();
    let path = temporary.path().to_path_buf();
    assert!(path.starts_with(std::env::temp_dir()) && temporary.is_temporary());
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700, "private");
    drop(temporary);
    assert!(!path.exists(), "removed when dropped");
    let mut kept = LogDir::temporary("test").unwrap();
    kept.keep();
    let path = kept.path().to_path_buf();
    drop(kept);
    assert!(path.is_dir(), "kept after a server failed");
    std::fs::remove_dir_all(path).unwrap();
}

#[test]
fn servers_start_as_mlx_lm_asks_and_a_python_without_it_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let venv_python = python();
    // The console script mlx-lm installs beside its Python.
    let command = ServerCommand::for_python(&venv_python);
    assert_eq!((command.program, command.args), (Path::new(&venv_python).with_file_name("mlx_lm.server"), Vec::<String>::new()));
    // mlx-lm's own word: `python -m mlx_lm.server` is deprecated, its script and `-m mlx_lm server` are not.
    let help = |program: &str, args: &[&str]| {
        let out = Command::new(program).args(args).arg("--help").output().unwrap();
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let script = Path::new(&venv_python).with_file_name("mlx_lm.server");
    assert!(help(&venv_python, &["-m", "mlx_lm.server"]).contains("deprecated"));
    assert!(!help(script.to_str().unwrap(), &[]).contains("deprecated"));
    assert!(!help(&venv_python, &["-m", "mlx_lm", "server"]).contains("deprecated"));

    // A Python with mlx-lm but no script beside it: the module, as mlx-lm spells it.
    let wrapper = |name: &str, flags: &str| {
        let path = dir.path().join(name).join("python");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("#!/bin/sh\nexec {venv_python} {flags} \"$@\"\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_string()
    };
    let with_mlx_lm = wrapper("with", "");
    let command = ServerCommand::find(&with_mlx_lm).unwrap();
    assert_eq!((command.program.to_str().unwrap(), command.args), (with_mlx_lm.as_str(), vec!["-m".to_string(), "mlx_lm".into(), "server".into()]));
    // A Python without it (no site packages): refused before anything starts, naming --python.
    let without = wrapper("without", "-I -S");
    let model = tiny_model(dir.path());
    let out = serve(&["--launch", "mlx-lm", "--model", model.to_str().unwrap(), "--python", &without, "--no-save"], Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("{without} has no mlx-lm")) && stderr.contains("--python"), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("point 1/"), "{stderr}");
}

// --- Real mlx_lm.server instances. ---

#[test]
fn launched_mlx_lm_servers_measure_exact_tokens_and_leave_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let model_path = model.to_str().unwrap();
    let csv = dir.path().join("serve.csv");
    let json = dir.path().join("serve.json");
    let common = ["--launch", "mlx-lm", "--model", model_path, "--python", &python(), "--base-port", "18600"];
    let load = ["--concurrency", "1,2", "--num-requests", "3", "--input-len", "16", "--output-len", "8", "--ready-timeout", "120"];
    for output in [&csv, &json] {
        let mut args: Vec<&str> = common.to_vec();
        args.extend(load);
        args.extend(["--instances", "2", "-o", output.to_str().unwrap()]);
        let out = serve(&args, Duration::from_secs(300));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(processes_mentioning(model_path).is_empty(), "servers left running: {:#?}", processes_mentioning(model_path));
        // The run's logs: a folder of its own beside the results, one log per server started,
        // each started through mlx-lm's console script, which warns of nothing deprecated.
        let logs = PathBuf::from(said(&stderr, "server logs: "));
        assert_eq!(logs.parent(), Some(dir.path().join("serve-logs").as_path()), "{stderr}");
        let mut names: Vec<String> = std::fs::read_dir(&logs).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        for name in &names {
            assert!(name.starts_with("setting-1-port-") && name.ends_with(".log"), "{name}");
            let log = std::fs::read_to_string(logs.join(name)).unwrap();
            assert!(log.lines().next().unwrap().contains("bin/mlx_lm.server --model"), "{log}");
            assert!(!log.contains("deprecated"), "{log}");
        }
    }
    assert_eq!(std::fs::read_dir(dir.path().join("serve-logs")).unwrap().count(), 2, "two runs, two log folders");

    let header = std::fs::read_to_string(&csv).unwrap().lines().next().unwrap().to_string();
    assert!(
        header.starts_with("instances,decode_concurrency,prompt_concurrency,concurrency,throughput_tps,total_tokens,elapsed_s,errors,"),
        "{header}"
    );
    let report: ServeReport = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report.records.len(), 2);
    for record in &report.records {
        assert_eq!(record.urls.len(), 2, "two instances");
        let s = record.summary.as_ref().unwrap();
        assert_eq!((s.ok_requests, s.failed()), (3, 0), "{:#?}", record.requests);
        assert_eq!(s.token_source, "usage");
        for r in &record.requests {
            assert_eq!(r.output_tokens, 8, "EOS suppressed: exactly --output-len tokens");
            let ttft = r.ttft_ms().unwrap();
            assert!(0.0 < ttft && ttft <= r.e2e_ms(), "TTFT {ttft} vs E2E {}", r.e2e_ms());
            assert!(r.input_tokens.is_some_and(|n| n >= 16), "{:?}", r.input_tokens);
        }
        for spread in [s.ttft_ms, s.tpot_ms, s.itl_ms, s.e2e_ms] {
            let x = spread.unwrap();
            assert!(x.median <= x.p90 && x.p90 <= x.p95 && x.p95 <= x.p99 && x.p99 <= x.max, "{x:?}");
        }
        let memory = record.server_memory.as_ref().unwrap();
        assert!(memory.peak_bytes > 10_000_000 && !memory.samples.is_empty(), "two Python servers' memory: {memory:?}");
        // Both servers got requests.
        let mut urls: Vec<&str> = record.requests.iter().map(|r| r.url.as_str()).collect();
        urls.dedup();
        assert!(urls.len() >= 2 || record.requests.len() < 2, "{urls:?}");
    }

    // Ctrl-C while servers run: exit 130, and no server left.
    let mut args: Vec<&str> = common.to_vec();
    args.extend(["--concurrency", "1", "--duration", "600", "-p", "16", "-n", "8", "--no-save"]);
    let child = Command::new(env!("CARGO_BIN_EXE_mlxbench")).arg("serve").args(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while processes_mentioning(model_path).is_empty() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!processes_mentioning(model_path).is_empty(), "the server did not start");
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: kill(2) to a child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = wait_bounded(child, Duration::from_secs(30), "serve after Ctrl-C");
    assert_eq!(out.status.code(), Some(130));
    // A run that saves nothing kept its logs in a private temporary folder, gone with it.
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let logs = PathBuf::from(said(&stderr, "their logs: ").trim_end_matches(" (temporary: removed at the end unless a server fails)"));
    assert!(logs.starts_with(std::env::temp_dir()) && !logs.exists(), "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_mentioning(model_path).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(processes_mentioning(model_path).is_empty(), "orphans after Ctrl-C: {:#?}", processes_mentioning(model_path));
}

// --- Workloads against the test server. ---

#[test]
fn the_slo_search_finds_a_known_capacity_within_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    // 3 requests in flight are served in 20 ms; a 4th makes it 600 ms.
    let (url, _) = fault_server(Fault::SlowAbove(3));
    let json = dir.path().join("search.json");
    let out = serve(
        &[
            "--url", &url, "--tokenizer", model.to_str().unwrap(), "--search", "concurrency", "--slo", "ttft_p90<=250ms", "--search-max", "16",
            "--num-requests", "12", "-p", "8", "-n", "4", "-o", json.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: ServeReport = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let probed: Vec<f64> = report.records.iter().map(|r| r.point.load.value().unwrap()).collect();
    let steps: Vec<_> = report.records.iter().map(|r| r.search.unwrap()).collect();
    // Each probed point is recorded, numbered, with its verdict; the last carries the answer.
    assert_eq!(steps.iter().map(|s| s.probe).collect::<Vec<_>>(), (1..=probed.len()).collect::<Vec<_>>());
    assert!(steps.iter().take(probed.len() - 1).all(|s| !s.last) && steps[probed.len() - 1].last);
    for (r, s) in report.records.iter().zip(&steps) {
        assert_eq!(Some(s.met_slo), r.summary.as_ref().unwrap().slo_met, "{probed:?}");
        assert_eq!(s.met_slo, r.point.load.value().unwrap() <= 3.0, "capacity 3: {probed:?} {steps:?}");
    }
    let answer = steps[probed.len() - 1].best;
    assert_eq!(answer, Some(3.0), "probed {probed:?}: {steps:?}");
    assert_eq!(probed, [1.0, 2.0, 4.0, 3.0]);
    assert!(stderr.contains("SLO search over concurrency: 3 is the highest load that met ttft_p90<=250ms unsaturated (probed 1, 2, 4, 3)"), "{stderr}");
}

#[test]
fn a_trace_is_replayed_at_its_times_with_its_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let (url, received) = fault_server(Fault::Good);
    let trace = dir.path().join("trace.jsonl");
    // Out of order in the file; two share a prefix of 6 tokens.
    let entries: [(f64, usize, u64, Option<&str>); 5] = [(0.0, 12, 3, None), (900.0, 20, 6, Some("sys")), (300.0, 8, 2, None), (600.0, 16, 5, Some("sys")), (1500.0, 10, 4, None)];
    let lines: Vec<String> = entries
        .iter()
        .map(|(t, input, output, prefix)| match prefix {
            Some(id) => format!("{{\"timestamp_ms\": {t}, \"input_tokens\": {input}, \"output_tokens\": {output}, \"prefix_id\": \"{id}\", \"prefix_tokens\": 6}}"),
            None => format!("{{\"timestamp_ms\": {t}, \"input_tokens\": {input}, \"output_tokens\": {output}}}"),
        })
        .collect();
    std::fs::write(&trace, lines.join("\n") + "\n").unwrap();
    let out = serve(
        &["--url", &url, "--tokenizer", model.to_str().unwrap(), "--workload", "trace", "--trace", trace.to_str().unwrap(), "--warmup", "0", "--format", "json", "--no-save"],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: ServeReport = serde_json::from_slice(&out.stdout).unwrap();
    let record = &report.records[0];
    assert_eq!(record.point.load, Load::Trace { max_concurrency: None });
    let mut sent: Vec<&RequestRecord> = record.requests.iter().collect();
    sent.sort_by(|a, b| a.sent_ms.total_cmp(&b.sent_ms));
    let mut expected = entries.to_vec();
    expected.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(sent.len(), 5);
    for (r, (t, ..)) in sent.iter().zip(&expected) {
        // Each sent at its time from the point's start (within 150 ms on a busy machine), none early.
        let at = r.sent_ms;
        assert!(at >= *t && at <= t + 150.0, "sent at {at} ms for {t} ms: {:?}", sent.iter().map(|r| r.sent_ms).collect::<Vec<_>>());
    }
    // The server got each entry's lengths, in the trace's order of time.
    let tokenizer = mlxbench::tokenizer::Tokenizer::from_dir(&model).unwrap();
    let bodies: Vec<serde_json::Value> = received.lock().unwrap().iter().map(|(_, b)| b.clone()).collect();
    let lengths: Vec<(usize, u64)> = bodies.iter().map(|b| (tokenizer.encode(b["prompt"].as_str().unwrap()).unwrap().len(), b["max_tokens"].as_u64().unwrap())).collect();
    let wanted: Vec<(usize, u64)> = expected.iter().map(|(_, i, o, _)| (*i, *o)).collect();
    assert_eq!(lengths, wanted);
    // The two of prefix `sys` start alike; the group is recorded.
    let prompts: Vec<&str> = bodies.iter().map(|b| b["prompt"].as_str().unwrap()).collect();
    // (Byte-level tokens: a shared prefix of 6 tokens is 6 bytes at least.)
    let common = prompts[2].bytes().zip(prompts[3].bytes()).take_while(|(a, b)| a == b).count();
    assert!(common >= 6, "{prompts:?}");
    assert_eq!(sent.iter().filter(|r| r.prefix_group == Some(0)).count(), 2);
}

#[test]
fn time_queued_in_our_client_counts_in_the_latency() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    // Two requests due at once, one slot: the second waits for the first (3 s to its first token).
    let (url, _) = fault_server(Fault::SlowFirstToken);
    let trace = dir.path().join("trace.jsonl");
    std::fs::write(&trace, "{\"timestamp_ms\": 0, \"input_tokens\": 8, \"output_tokens\": 4}\n{\"timestamp_ms\": 0, \"input_tokens\": 8, \"output_tokens\": 4}\n").unwrap();
    let out = serve(
        &["--url", &url, "--tokenizer", model.to_str().unwrap(), "--workload", "trace", "--trace", trace.to_str().unwrap(), "--max-concurrency", "1"]
            .iter()
            .chain(&["--warmup", "0", "--format", "json", "--no-save"])
            .copied()
            .collect::<Vec<_>>(),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: ServeReport = serde_json::from_slice(&out.stdout).unwrap();
    let mut requests = report.records[0].requests.clone();
    requests.sort_by(|a, b| a.queued_ms.total_cmp(&b.queued_ms));
    let (first, second) = (&requests[0], &requests[1]);
    assert!(second.queued_ms >= 2900.0, "the second waited for the slot: {:?}", requests.iter().map(|r| r.queued_ms).collect::<Vec<_>>());
    // Its TTFT and E2E run from when it was due: the wait plus the server's 3 s.
    assert_eq!(second.ttft_ms(), Some(second.queued_ms + second.chunk_ms[0]));
    assert!(second.ttft_ms().unwrap() >= 5900.0 && second.e2e_ms() >= second.ttft_ms().unwrap(), "{second:?}");
    assert!(first.ttft_ms().unwrap() >= 2900.0 && first.queued_ms < second.queued_ms);
    let s = report.records[0].summary.as_ref().unwrap();
    assert_eq!(s.queued_ms.unwrap().max, second.queued_ms);
    assert!(s.ttft_ms.unwrap().max >= 5900.0, "the point's TTFT counts the wait: {s:?}");
}
