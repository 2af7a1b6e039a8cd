//! `mlxbench serve`'s workloads against a real `mlx_lm.server` on a tiny model: shared prefixes
//! hit the server's prompt cache (and cache-bust makes them miss), warm TTFT is below cold on a
//! long prefix, multi-turn conversations re-send a history that grows turn by turn; and the cache
//! and SLO metrics on synthetic numbers, to exact values.
mod common;

use std::{path::Path, time::Duration};

use common::serve;
use mlxbench::{
    serve::{
        launch::{LaunchSpec, LogDir, ServerCommand, Servers},
        metrics::{PointSummary, RequestRecord, Slo, TokenSource},
        ServeRecord, ServeReport,
    },
    synth::Arch,
};

fn request(queued: f64, ttft: f64, end: f64, input: u64, cached: Option<u64>) -> RequestRecord {
    RequestRecord {
        chunk_ms: vec![ttft, end],
        end_ms: end,
        output_tokens: 2,
        token_source: TokenSource::Usage,
        cached_tokens: cached,
        queued_ms: queued,
        ..RequestRecord::sent("http://127.0.0.1:1", 100.0, Some(input))
    }
}

#[test]
fn cache_accounting_queue_time_and_point_objectives_from_synthetic_numbers() {
    // Three requests sent at 100 ms: a cold one (0 of 100 prompt tokens cached), two warm ones
    // (90 and 60 of 100); the last waited 50 ms in our client before it was sent.
    let cold = request(0.0, 400.0, 500.0, 100, Some(0));
    let warm = request(0.0, 40.0, 140.0, 100, Some(90));
    let queued = request(50.0, 30.0, 130.0, 100, Some(60));
    let unknown = request(0.0, 10.0, 20.0, 100, None);
    // Queue time counts in TTFT and E2E, not in TPOT.
    assert_eq!((queued.ttft_ms(), queued.e2e_ms(), queued.tpot_ms()), (Some(80.0), 180.0, Some(100.0)));
    let point = PointSummary::of(&[cold.clone(), warm.clone(), queued.clone(), unknown], &Slo::default());
    // Hit rate: (0 + 90 + 60) ÷ 300 prompt tokens of the requests that reported a count.
    assert_eq!(point.cache_hit_rate, Some(0.5));
    assert_eq!((point.warm_requests, point.cold_requests, point.cached_prompt_tokens), (2, 1, 150));
    assert_eq!(point.ttft_cold_ms.unwrap().median, 400.0);
    assert_eq!((point.ttft_warm_ms.unwrap().median, point.ttft_warm_ms.unwrap().max), (60.0, 80.0));
    assert_eq!((point.queued_ms.unwrap().max, point.queued_ms.unwrap().median), (50.0, 0.0));
    // The span starts when the first request was due: the queued one was due at 50 ms.
    assert_eq!(point.elapsed_s, 0.55);
    assert_eq!(point.slo_met, None, "no objectives, no verdict");

    // Objectives for a share of the requests: 2 of 3 have TTFT ≤ 100 ms (67%).
    let three = [cold, warm, queued];
    let slo = |text: &str| Slo::parse(text).unwrap();
    assert!(slo("ttft_p60<=100ms").met_by_point(&three));
    assert!(!slo("ttft_p90<=100ms").met_by_point(&three));
    assert!(slo("ttft_p100<=0.4s").met_by_point(&three) && slo("ttft=400").met_by_point(&three));
    assert!(!slo("ttft_p60<=100ms,e2e_p60<=150ms").met_by_point(&three), "E2E ≤ 150 ms: only 1 of 3");
    // A failed request misses every limit.
    let mut failed = three.clone();
    failed[1].error = Some((mlxbench::serve::metrics::ErrorKind::Http, "HTTP 500".into()));
    assert!(!slo("ttft_p60<=100ms").met_by_point(&failed));
    let point = PointSummary::of(&three, &slo("ttft_p60<=100ms,tpot_p90<=100ms"));
    assert_eq!((point.slo_met, point.goodput_rps.map(|g| (g * 0.55).round())), (Some(true), Some(2.0)));
    assert_eq!(slo("ttft_p90<=1s, tpot_p90<=50ms").label(), "ttft_p90<=1000ms, tpot_p90<=50ms");
    for bad in ["ttft_p0<=1s", "ttft_p101<=1s", "ttft_px<=1s", "speed_p90<=1s"] {
        assert!(Slo::parse(bad).is_err(), "{bad}");
    }
}

/// One serve run against `url`; its records.
fn run(url: &str, model: &Path, args: &[&str]) -> Vec<ServeRecord> {
    let mut all = vec!["--url", url, "--tokenizer", model.to_str().unwrap(), "--format", "json", "--no-save", "--request-timeout", "120"];
    all.extend(args);
    let out = serve(&all, Duration::from_secs(240));
    assert!(out.status.success(), "serve {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<ServeReport>(&out.stdout).unwrap().records
}

#[test]
fn mlx_lm_server_prompt_cache_hits_shared_prefixes_and_growing_conversations() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_model(dir.path(), Arch::Llama, Some(4));
    let logs = LogDir::temporary("serve-workloads").unwrap();
    let spec = LaunchSpec {
        server: ServerCommand::for_python(&common::reference::python_arg()),
        model: model.display().to_string(),
        base_port: 18700,
        decode_concurrency: None,
        prompt_concurrency: None,
        kv_bits: None,
        extra_args: Vec::new(),
        ready_timeout: Duration::from_secs(120),
        log_dir: logs.path().to_path_buf(),
        setting: 1,
    };
    let servers = Servers::start(&spec, 1).unwrap();
    let url = servers.urls[0].clone();
    let prefix = 1024u64;
    let shared = ["--workload", "shared-prefix", "--prefix-tokens", "1024", "-p", "16", "-n", "4", "--num-requests", "4", "--concurrency", "1"];

    // Cache-bust, first on the fresh server: every prompt (the warmup's too) starts with a token
    // of its own, so nothing is reused but what every prompt of the tokenizer starts with (a BOS
    // token, when it adds one).
    let busted = run(&url, &model, &[&shared[..], &["--cache-mode", "bust"]].concat());
    let b = &busted[0];
    assert_eq!(b.context.cache_mode, "bust");
    let cached: Vec<u64> = b.requests.iter().map(|q| q.cached_tokens.unwrap()).collect();
    let bos = mlxbench::tokenizer::Tokenizer::from_dir(&model).unwrap().encode("x").unwrap().len() as u64 - 1;
    assert!(cached.iter().all(|&c| c <= bos), "cache-bust: {cached:?} (BOS tokens {bos})");

    // As sent: the first request of the group finds nothing, every later one the whole prefix.
    let records = run(&url, &model, &shared);
    let r = &records[0];
    assert_eq!(r.context.workload, "shared-prefix 1024 tokens, 1 group, share 100%");
    let cached: Vec<u64> = r.requests.iter().map(|q| q.cached_tokens.unwrap()).collect();
    assert!(cached[1..].iter().all(|&c| c >= prefix - 2), "later requests reuse the prefix: {cached:?}");
    let s = r.summary.as_ref().unwrap();
    assert!(s.cache_hit_rate.unwrap() > 0.5 && s.warm_requests >= 3, "{s:?}");

    // Warm: the prefix sent before the point, so every measured request finds it, and its
    // TTFT is below cache-bust's, which prefills 1024 tokens more.
    let warmed = run(&url, &model, &[&shared[..], &["--cache-mode", "warm"]].concat());
    let w = &warmed[0];
    assert!(w.requests.iter().all(|q| q.cached_tokens.unwrap() >= prefix - 2), "{:?}", w.requests.iter().map(|q| q.cached_tokens).collect::<Vec<_>>());
    let ttft = |r: &ServeRecord| r.summary.as_ref().unwrap().ttft_ms.unwrap().median;
    assert!(ttft(w) < ttft(b), "warm TTFT {} ms vs cold {} ms", ttft(w), ttft(b));
    assert_eq!(w.summary.as_ref().unwrap().cold_requests, 0);

    // Multi-turn: 2 conversations of 3 turns at once; each turn re-sends the history, so the
    // prompt grows by at least the last turn and its reply, and the cache serves the history.
    let turns = run(&url, &model, &["--workload", "multi-turn", "--turns", "3", "-p", "16", "-n", "8", "--num-requests", "6", "--concurrency", "2"]);
    let t = &turns[0];
    assert_eq!(t.requests.len(), 6);
    for conversation in 0..2 {
        let mut mine: Vec<&RequestRecord> = t.requests.iter().filter(|q| q.conversation == Some(conversation)).collect();
        mine.sort_by_key(|q| q.turn);
        assert_eq!(mine.iter().map(|q| q.turn.unwrap()).collect::<Vec<_>>(), [0, 1, 2]);
        let sizes: Vec<u64> = mine.iter().map(|q| q.input_tokens.unwrap()).collect();
        for pair in sizes.windows(2) {
            assert!(pair[1] >= pair[0] + 16 + 8 - 2, "the history grows: {sizes:?}");
        }
        assert!(mine[1..].iter().all(|q| q.cached_tokens.unwrap() >= sizes[0] - 2), "{:?}", mine.iter().map(|q| q.cached_tokens).collect::<Vec<_>>());
    }
    drop(servers);
}
