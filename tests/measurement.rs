//! The measurement core without a clock: metric arithmetic on synthetic timings, statistics,
//! sweep expansion, and the report formats (CSV header, append rules, parse-back).
use std::time::Duration;

mod common;

use common::run_context;

use mlxbench::{
    bench::{kv_label, Axes, Engine, RunPoint, RunRecord, Status},
    config::parse_bits_or_none,
    measure::{
        metrics::{bandwidth_utilisation, decode_bandwidth_gbps},
        MetricSummaries, Summary, TrialMemory, TrialMetrics, TrialTimings,
    },
    report::{csv_header, CsvRow, Format, JsonReport, Printable, ResultsFile},
};

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

/// `n` token times from `first_ms` to `last_ms`, evenly spaced (in microseconds, exactly).
fn evenly(n: usize, first_ms: u64, last_ms: u64) -> Vec<Duration> {
    let (first, last) = (first_ms * 1000, last_ms * 1000);
    (0..n).map(|i| Duration::from_micros(if n == 1 { first } else { first + (last - first) * i as u64 / (n as u64 - 1) })).collect()
}

fn timings(batch: usize, prompt: usize, generated: usize, prefill_ms: u64, first_ms: u64, last_ms: u64) -> TrialTimings {
    TrialTimings {
        batch,
        n_prompt: prompt,
        n_prefill: prompt - 1,
        n_context: 0,
        prefill_done: ms(prefill_ms),
        token_times: evenly(generated, first_ms, last_ms),
        built_times: Vec::new(),
        queued_times: Vec::new(),
    }
}

#[test]
fn metrics_count_the_first_token_once() {
    // 1001 prompt tokens: 1000 in the prefill (500 ms), the last with the first token at 550 ms;
    // 101 tokens, the last at 2550 ms: 100 tokens in 2 s after the first.
    let m = TrialMetrics::from_timings(&timings(1, 1001, 101, 500, 550, 2550), TrialMemory::default());
    assert_eq!(m.ttft_ms, 550.0);
    assert_eq!(m.prompt_tps, Some(2000.0));
    assert_eq!(m.generation_tps, Some(50.0));
    assert_eq!(m.generation_tps_per_sequence, Some(50.0));
}

#[test]
fn batch_throughput_is_aggregate_and_per_sequence() {
    let m = TrialMetrics::from_timings(&timings(4, 101, 11, 100, 120, 1120), TrialMemory::default());
    assert_eq!(m.prompt_tps, Some(4000.0));
    assert_eq!(m.generation_tps_per_sequence, Some(10.0));
    assert_eq!(m.generation_tps, Some(40.0));
}

#[test]
fn undefined_rates_are_none_not_infinite() {
    // A 1-token prompt has nothing to prefill; one generated token has no decode interval.
    let m = TrialMetrics::from_timings(&timings(1, 1, 1, 0, 30, 30), TrialMemory::default());
    assert_eq!(m.prompt_tps, None);
    assert_eq!(m.generation_tps, None);
    assert_eq!(m.ttft_ms, 30.0);
}

#[test]
fn summary_uses_sample_stddev_and_true_median() {
    let s = Summary::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
    assert_eq!(s.mean, 5.0);
    // Sum of squared deviations 32, n - 1 = 7.
    assert!((s.stddev - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    assert_eq!(s.median, 4.5);
    assert_eq!((s.min, s.max), (2.0, 9.0));
    assert_eq!(s.samples.len(), 8);
    let odd = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
    assert_eq!(odd.median, 2.0);
    assert_eq!(Summary::of(&[7.0]).unwrap().stddev, 0.0);
    assert!(Summary::of(&[]).is_none());
}

#[test]
fn summaries_skip_undefined_samples() {
    let memory = TrialMemory { peak_memory_bytes: 1000, ..Default::default() };
    let trials = [
        TrialMetrics::from_timings(&timings(1, 1, 1, 0, 30, 30), memory),
        TrialMetrics::from_timings(&timings(1, 1, 3, 0, 10, 30), memory),
    ];
    let s = MetricSummaries::of(&trials);
    assert!(s.prompt_tps.is_none());
    assert_eq!(s.generation_tps.as_ref().unwrap().samples, vec![100.0]);
    assert_eq!(s.ttft_ms.as_ref().unwrap().samples, vec![30.0, 10.0]);
    assert_eq!(s.peak_memory_bytes.as_ref().unwrap().mean, 1000.0);
}

#[test]
fn byte_counts_read_in_decimal_units() {
    use mlxbench::units::human_bytes;
    assert_eq!(human_bytes(1_139_000_000), "1.139 GB");
    assert_eq!(human_bytes(3_365_044), "3.4 MB");
    assert_eq!(human_bytes(81_920), "81.9 kB");
}

#[test]
fn parameter_counts_read_as_model_cards_write_them() {
    use mlxbench::units::human_count;
    assert_eq!(human_count(30_532_122_624), "30.53 B");
    assert_eq!(human_count(494_032_768), "494.0 M");
    assert_eq!(human_count(81_920), "81.9 k");
}

#[test]
fn decode_bandwidth_counts_weights_and_cache_per_step() {
    // 0.5 GB of weights + 0.1 GB of cache, 100 steps/s: 60 GB/s.
    assert!((decode_bandwidth_gbps(500_000_000, 100_000_000, 100.0) - 60.0).abs() < 1e-9);
}

#[test]
fn bandwidth_utilisation_is_bytes_per_second_over_peak() {
    // 4 GB read per token at 100 tokens/s is 400 GB/s: half of an M2 Ultra.
    assert_eq!(bandwidth_utilisation(decode_bandwidth_gbps(4_000_000_000, 0, 100.0), 800.0), Some(0.5));
    assert_eq!(bandwidth_utilisation(decode_bandwidth_gbps(2_000_000_000, 0, 335.0), 3350.0), Some(0.2));
    assert!(bandwidth_utilisation(decode_bandwidth_gbps(4_000_000_000, 0, 100.0), 0.0).is_none());
}

fn spec() -> Axes {
    Axes {
        models: vec!["a".into(), "b".into()],
        kv_bits: vec![None, Some(8), Some(4)],
        batch: vec![1],
        depth: vec![0, 512],
        n_prompt: vec![128, 1024],
        n_generate: vec![32],
        engines: vec![Engine::Mlxbench],
        draft_model: None,
        num_draft_tokens: Vec::new(),
    }
}

#[test]
fn sweep_is_the_product_with_each_model_contiguous() {
    let runs = spec().expand().unwrap();
    assert_eq!(runs.len(), 2 * 3 * 2 * 2);
    let first_b = runs.iter().position(|r| r.model == "b").unwrap();
    assert!(runs[..first_b].iter().all(|r| r.model == "a"));
    assert!(runs[first_b..].iter().all(|r| r.model == "b"));
    // Within a model, kv bits vary slowest, prompt length fastest (after generation length).
    assert_eq!(runs[0], RunPoint { model: "a".into(), kv_bits: None, batch: 1, depth: 0, n_prompt: 128, n_generate: 32, engine: Engine::Mlxbench, draft: None });
    assert_eq!(runs[1].n_prompt, 1024);
    assert_eq!(runs[2].depth, 512);
    assert_eq!(runs[4].kv_bits, Some(8));
    let mut unique = runs.clone();
    unique.dedup();
    assert_eq!(unique.len(), runs.len());
}

#[test]
fn sweep_drops_repeats_and_refuses_empty_lists() {
    let mut s = spec();
    s.models = vec!["a".into(), "a".into()];
    s.kv_bits = vec![None, None];
    assert_eq!(s.expand().unwrap().len(), 2 * 2);
    s.n_generate.clear();
    assert!(s.expand().unwrap_err().to_string().contains("--n-generate"));
}

#[test]
fn kv_bits_values_parse_and_label() {
    assert_eq!(parse_bits_or_none("none"), Ok(None));
    assert_eq!(parse_bits_or_none(" 4"), Ok(Some(4)));
    assert!(parse_bits_or_none("four").is_err());
    assert_eq!(kv_label(None), "kvnone");
    assert_eq!(kv_label(Some(8)), "kv8");
}

fn record(model: &str, status: Status, trials: usize) -> RunRecord {
    let trials: Vec<TrialMetrics> = (0..trials)
        .map(|i| {
            let memory = TrialMemory { peak_memory_bytes: 2_000_000_000 + i as u64, kv_cache_bytes: 1 << 20, ..Default::default() };
            TrialMetrics::from_timings(&timings(1, 129, 33, 100 + i as u64, 120, 1120), memory)
        })
        .collect();
    RunRecord {
        point: RunPoint { model: model.into(), kv_bits: Some(4), batch: 1, depth: 0, n_prompt: 129, n_generate: 33, engine: Engine::Mlxbench, draft: None },
        context: run_context(trials.len()),
        status,
        error: (status != Status::Ok).then(|| "out of memory, \"quoted\", | piped\nand two lines".into()),
        weight_bytes: Some(700_000_000),
        parameters: Some(1_240_000_000),
        active_parameters: Some(1_240_000_000),
        decode_weight_bytes: Some(699_000_000),
        summary: (!trials.is_empty()).then(|| MetricSummaries::of(&trials)),
        trials,
        decode_gbps: Some(22.0),
        bandwidth_utilisation: Some(0.0275),
        load: None,
        cold_trial: None,
        memory_drift: None,
        distributed: None,
        speculative: None,
        memory_breakdown: None,
    }
}

#[test]
fn csv_starts_with_mlxbench_columns() {
    let header = csv_header().unwrap();
    assert!(header.starts_with("run,prompt_tokens,prompt_tps,generation_tokens,generation_tps,peak_memory_gb,"), "{header}");
    assert!(header.contains(",model,kv_bits,batch,depth,ttft_ms,device,backend,mlx_version,mlx_build,hardware,git_commit,timestamp,"));
}

#[test]
fn csv_has_a_row_per_trial_and_parses_back() {
    let records = [record("m1", Status::Ok, 3), record("m2", Status::Failed, 0)];
    let text = records.render(Format::Csv).unwrap();
    let rows: Vec<CsvRow> = csv::Reader::from_reader(text.as_bytes()).deserialize().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows.iter().map(|r| r.run).collect::<Vec<_>>(), vec![1, 2, 3, 0]);
    assert_eq!(rows[0].prompt_tps, Some(1280.0));
    assert_eq!(rows[1].peak_memory_gb, Some(2.000000001));
    assert_eq!(rows[0].kv_bits, "4");
    assert_eq!(rows[3].status, "failed");
    assert_eq!(rows[3].prompt_tps, None);
    assert_eq!(rows[3].error.as_deref(), Some("out of memory, \"quoted\", | piped\nand two lines"));
    assert_eq!(rows[0].hardware, "Apple M2 Ultra | 192.0 GB | 24 CPU (16P+8E) | 76 GPU cores");
    assert_eq!((rows[0].decode_gbps, rows[0].bandwidth_utilisation), (Some(22.0), Some(0.0275)));
}

#[test]
fn json_and_jsonl_parse_back_to_the_records() {
    let records = vec![record("m1", Status::Ok, 2), record("m2", Status::Unsupported, 0)];
    let json: JsonReport = serde_json::from_str(&records.render(Format::Json).unwrap()).unwrap();
    assert_eq!(json.records, records);
    let lines = records.render(Format::Jsonl).unwrap();
    let back: Vec<RunRecord> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(back, records);
    let value: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(value["trials"][0]["peak_memory_bytes"], 2_000_000_000u64);
    assert_eq!(value["summary"]["generation_tps"]["samples"].as_array().unwrap().len(), 2);
}

#[test]
fn markdown_has_one_row_per_configuration_and_escapes_cells() {
    let ok = record("m1", Status::Ok, 3);
    let text = [ok.clone(), record("m2", Status::Failed, 0)].render(Format::Md).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| m1 ") || l.starts_with("| m2 ")).collect();
    assert_eq!(rows.len(), 2);
    let prompt = ok.summary.as_ref().unwrap().prompt_tps.clone().unwrap();
    assert!(prompt.stddev > 0.0);
    // Prompt t/s is shown by its median, as every view shows it (report::headline).
    assert!(rows[0].contains(&format!("| {:.1} |", prompt.median)), "{}", rows[0]);
    assert!(rows[0].contains("| 22.0 (3%) |"), "{}", rows[0]);
    assert!(text.contains("model m1 = m1 | 1.24 B parameters\n"), "a dense model's parameters, no active count: {text}");
    let moe = RunRecord { parameters: Some(30_532_122_624), active_parameters: Some(3_353_032_704), ..ok.clone() };
    assert!([moe].render(Format::Md).unwrap().contains("model m1 = m1 | 30.53 B (3.35 B active) parameters"));
    assert!(rows[1].contains("failed: out of memory, \"quoted\", \\| piped and two lines"), "{}", rows[1]);
    // Every row has the header's number of cells.
    let cells = |l: &str| l.replace("\\|", "").matches('|').count();
    let header = text.lines().find(|l| l.starts_with("| model")).unwrap();
    assert!(rows.iter().all(|r| cells(r) == cells(header)));
}

#[test]
fn appending_keeps_earlier_results() {
    let dir = tempfile::tempdir().unwrap();
    for format in [Format::Csv, Format::Json, Format::Jsonl, Format::Md] {
        let path = dir.path().join(format!("r.{}", format!("{format:?}").to_lowercase()));
        ResultsFile::open(&path, format).unwrap().save(&[record("first", Status::Ok, 2)]).unwrap();
        let mut file = ResultsFile::open(&path, format).unwrap();
        assert!(file.redirected_from.is_none(), "{format:?}");
        file.save(&[record("second", Status::Ok, 1)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("first") && text.contains("second"), "{format:?}: {text}");
        match format {
            Format::Csv => {
                assert_eq!(text.lines().filter(|l| l.starts_with("run,")).count(), 1);
                assert_eq!(csv::Reader::from_reader(text.as_bytes()).deserialize::<CsvRow>().count(), 3);
            }
            Format::Json => assert_eq!(serde_json::from_str::<JsonReport>(&text).unwrap().records.len(), 2),
            Format::Jsonl => assert_eq!(text.lines().count(), 2),
            Format::Md => assert_eq!(text.lines().filter(|l| l.starts_with("| model")).count(), 2),
            Format::Table => unreachable!("not a results file format"),
        }
    }
    // No temporary files are left beside the results.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_foreign_file_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("results.csv");
    std::fs::write(&csv_path, "run,prompt_tokens,prompt_tps\n1,2,3\n").unwrap();
    let mut file = ResultsFile::open(&csv_path, Format::Csv).unwrap();
    assert_eq!(file.redirected_from.as_deref(), Some(csv_path.as_path()));
    assert_eq!(file.path(), dir.path().join("results-2.csv"));
    file.save(&[record("m", Status::Ok, 1)]).unwrap();
    assert_eq!(std::fs::read_to_string(&csv_path).unwrap(), "run,prompt_tokens,prompt_tps\n1,2,3\n");
    let json_path = dir.path().join("other.json");
    std::fs::write(&json_path, "{\"something\": \"else\"}").unwrap();
    assert!(ResultsFile::open(&json_path, Format::Json).unwrap().redirected_from.is_some());
    let jsonl_path = dir.path().join("x.jsonl");
    std::fs::write(&jsonl_path, "not json\n").unwrap();
    assert!(ResultsFile::open(&jsonl_path, Format::Jsonl).unwrap().redirected_from.is_some());
}

#[test]
fn format_follows_the_extension() {
    use std::path::Path;
    assert_eq!(Format::from_path(Path::new("a/b.CSV")), Some(Format::Csv));
    assert_eq!(Format::from_path(Path::new("b.jsonl")), Some(Format::Jsonl));
    assert_eq!(Format::from_path(Path::new("b.md")), Some(Format::Md));
    assert_eq!(Format::from_path(Path::new("b")), None);
}

#[test]
fn error_descriptions_drop_repeats_and_source_locations() {
    #[derive(Debug)]
    struct Text(&'static str, Option<Box<Text>>);
    impl std::fmt::Display for Text {
        fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Text {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|t| t as _)
        }
    }
    let inner = "\"[quantized_matmul] No implementation for problem shape: 1x512x64x32. at /root/.cargo/registry/src/mlx-c/mlx/c/transforms.cpp:15\" at /rustc/abc/library/core/src/ops/function.rs:250:5";
    let top = Text("MLX error: [quantized_matmul] No implementation for problem shape: 1x512x64x32.", Some(Box::new(Text(inner, None))));
    let chain: Vec<&(dyn std::error::Error + 'static)> = vec![&top, top.1.as_deref().unwrap()];
    assert_eq!(
        mlxbench::error::describe(chain),
        "MLX error: [quantized_matmul] No implementation for problem shape: 1x512x64x32."
    );
    let loading = Text("loading /m", Some(Box::new(Text("/m/config.json: file not found", None))));
    let chain: Vec<&(dyn std::error::Error + 'static)> = vec![&loading, loading.1.as_deref().unwrap()];
    assert_eq!(mlxbench::error::describe(chain), "loading /m: /m/config.json: file not found");
}

/// A trial whose tokens came at these times (ms from t = 0), batch `batch`, after a 10-token
/// prompt and `n_context` tokens of context.
fn at(batch: usize, n_context: usize, token_ms: &[u64]) -> TrialMetrics {
    let timings = TrialTimings {
        batch,
        n_context,
        n_prompt: 10,
        n_prefill: 9,
        prefill_done: ms(5),
        token_times: token_ms.iter().map(|&t| ms(t)).collect(),
        built_times: Vec::new(),
        queued_times: Vec::new(),
    };
    TrialMetrics::from_timings(&timings, TrialMemory::default())
}

#[test]
fn inter_token_latencies_and_the_robust_rate_see_through_one_stall() {
    // 11 tokens: 9 gaps of 10 ms and one stall of 110 ms (after the 5th token).
    let times = [20, 30, 40, 50, 60, 170, 180, 190, 200, 210, 220];
    let m = at(1, 0, &times);
    assert_eq!(m.ttft_ms, 20.0);
    // Mean-based: 10 tokens in 200 ms = 50 t/s; the median gap is 10 ms: 100 t/s.
    assert_eq!(m.generation_tps, Some(50.0));
    assert_eq!(m.generation_tps_robust, Some(100.0));
    assert_eq!(m.itl_p50_ms, Some(10.0));
    // Sorted gaps: nine 10s and one 110: p90 = 10 + 0.1·(110 − 10) = 20, p99 = 10 + 0.91·100 = 101.
    assert!((m.itl_p90_ms.unwrap() - 20.0).abs() < 1e-9, "{:?}", m.itl_p90_ms);
    assert!((m.itl_p99_ms.unwrap() - 101.0).abs() < 1e-9, "{:?}", m.itl_p99_ms);
    assert_eq!(m.itl_max_ms, Some(110.0));
    assert_eq!(m.token_ms, times.iter().map(|&t| t as f64).collect::<Vec<_>>());
    // A batch of 4 decodes 4 tokens per step.
    assert_eq!(at(4, 0, &times).generation_tps_robust, Some(400.0));
    // One token: no gap, no decode rate, no windows.
    let one = at(1, 0, &[25]);
    assert_eq!((one.generation_tps_robust, one.itl_p50_ms, one.decode_windows.len()), (None, None, 0));
}

#[test]
fn decode_windows_show_the_rate_as_context_grows() {
    // 300 tokens: 128 gaps of 2 ms, 128 gaps of 4 ms, 43 gaps of 8 ms.
    let mut times = vec![100u64];
    for gap in std::iter::repeat_n(2, 128).chain(std::iter::repeat_n(4, 128)).chain(std::iter::repeat_n(8, 43)) {
        times.push(times.last().unwrap() + gap);
    }
    let m = at(2, 1000, &times);
    let windows: Vec<(usize, usize)> = m.decode_windows.iter().map(|w| (w.context_tokens, w.n_tokens)).collect();
    // Context: 1000 of depth + 10 prompt tokens + 1 for the first window's first step, then +128.
    assert_eq!(windows, vec![(1011, 128), (1139, 128), (1267, 43)]);
    // Batch 2: 2 tokens every 2, 4 and 8 ms.
    for (window, tps) in m.decode_windows.iter().zip([1000.0, 500.0, 250.0]) {
        assert!((window.tps - tps).abs() < 1e-9, "{window:?}");
    }
}

#[test]
fn the_median_interval_comes_from_order_statistics() {
    use mlxbench::measure::stats::{median_interval, ratio_of_medians_interval};
    let xs: Vec<f64> = (1..=20).map(f64::from).collect();
    // Binomial(20, 1/2): P(B <= 5) = 0.0207 <= 2.5% < P(B <= 6): ranks 6 and 15.
    assert_eq!(median_interval(&xs), Some((6.0, 15.0)));
    assert_eq!(median_interval(&xs[..10]), Some((2.0, 9.0)));
    assert_eq!(median_interval(&xs[..6]), Some((1.0, 6.0)));
    assert_eq!(median_interval(&xs[..5]), None, "5 samples cover at most 93.75%");
    // Large n does not underflow: the interval narrows around the middle.
    let many: Vec<f64> = (0..5000).map(f64::from).collect();
    let (low, high) = median_interval(&many).unwrap();
    assert!(low > 2400.0 && high < 2600.0 && low < 2499.5 && high > 2499.5, "{low} {high}");
    // A summary carries it, and its relative half-width.
    let s = Summary::of(&xs).unwrap();
    assert_eq!(s.median_ci95, Some([6.0, 15.0]));
    // Median 10.5; the interval reaches 4.5 either side.
    assert_eq!(s.relative_ci_half_width(), Some(4.5 / 10.5));
    // Ratio of medians: exact when both sides are constant; seeded otherwise.
    assert_eq!(ratio_of_medians_interval(&[3.0; 8], &[2.0; 8], 1), (1.5, 1.5));
    let a: Vec<f64> = (0..10).map(|i| 100.0 + i as f64).collect();
    let b: Vec<f64> = (0..10).map(|i| 80.0 + i as f64).collect();
    let (low, high) = ratio_of_medians_interval(&a, &b, 7);
    assert!(low < 104.5 / 84.5 && 104.5 / 84.5 < high, "{low} {high}");
    assert_eq!((low, high), ratio_of_medians_interval(&a, &b, 7));
}

#[test]
fn auto_repeats_stop_when_the_interval_is_narrow_or_the_budget_is_spent() {
    use mlxbench::bench::Repeats;
    use std::time::Duration;
    let auto = Repeats::auto(2.0, 60.0).unwrap();
    let s = |xs: &[f64]| Summary::of(xs).unwrap();
    let steady: Vec<f64> = (0..6).map(|i| 100.0 + i as f64 * 0.1).collect();
    let noisy = [80.0, 120.0, 95.0, 110.0, 70.0, 130.0];
    let secs = Duration::from_secs;
    // Fewer than 6 trials: never done before the budget, whatever the spread.
    assert!(!auto.done(5, Some(&s(&steady[..5])), secs(1)));
    // Six steady trials: [100.0, 100.5] around 100.25 is within ±2%.
    assert!(auto.done(6, Some(&s(&steady)), secs(1)));
    // Six noisy ones: ±30%, not done until the time budget is spent.
    assert!(!auto.done(6, Some(&s(&noisy)), secs(59)));
    assert!(auto.done(6, Some(&s(&noisy)), secs(60)));
    // No decode rate at all: only the budget ends it.
    assert!(!auto.done(6, None, secs(1)));
    assert!(auto.done(Repeats::AUTO_MAX, None, secs(1)));
    // A fixed count is a fixed count.
    assert!(!Repeats::Fixed(3).done(2, Some(&s(&steady)), secs(100)));
    assert!(Repeats::Fixed(3).done(3, None, secs(0)));
    assert!(Repeats::auto(0.0, 60.0).is_err() && Repeats::auto(2.0, -1.0).is_err());
}

#[test]
fn memory_drift_is_a_least_squares_slope_with_its_interval() {
    use mlxbench::measure::stats::{linear_fit, student_t_975};
    // A straight line: slope 2 exactly, no residuals, so no width.
    let fit = linear_fit(&[10.0, 12.0, 14.0, 16.0]).unwrap();
    assert_eq!((fit.slope, fit.slope_ci95), (2.0, [2.0, 2.0]));
    // y = 0, 1, 0, 1, 0: slope 0; residual sum 1.2, Sxx 10, df 3: se = sqrt(0.4 / 10) = 0.2.
    let fit = linear_fit(&[0.0, 1.0, 0.0, 1.0, 0.0]).unwrap();
    assert!(fit.slope.abs() < 1e-12);
    assert!((fit.slope_ci95[1] - 3.182 * 0.2).abs() < 1e-9, "{fit:?}");
    assert!(linear_fit(&[1.0, 2.0]).is_none());
    assert_eq!(student_t_975(1), 12.706);
    assert_eq!(student_t_975(30), 2.042);
    assert!((student_t_975(40) - 2.021).abs() < 1e-12 && (student_t_975(1_000_000) - 1.960).abs() < 1e-3);

    // A record's leak verdict: active memory +1000 B per trial over 10 trials is 9000 B.
    let trials: Vec<TrialMetrics> = (0..10u64)
        .map(|i| {
            let memory = TrialMemory { active_memory_bytes: 5_000_000 + 1000 * i, ..Default::default() };
            TrialMetrics::from_timings(&timings(1, 9, 3, 10, 20, 40), memory)
        })
        .collect();
    let point = RunPoint { model: "m".into(), kv_bits: None, batch: 1, depth: 0, n_prompt: 9, n_generate: 3, engine: Engine::Mlxbench, draft: None };
    let record = RunRecord::new(point, run_context(10), Ok(trials), None, None);
    assert_eq!(record.memory_drift.unwrap().slope, 1000.0);
    assert_eq!(record.leaks(8_999), Some(true));
    assert_eq!(record.leaks(9_000), Some(false));
}

#[test]
fn thermal_states_count_throttled_trials_and_travel_through_every_format() {
    use mlxbench::{hwinfo::thermal::ThermalState, report::read::read_records};
    let mut hot = record("mac", Status::Ok, 4);
    let states = [Some(ThermalState::Nominal), Some(ThermalState::Fair), Some(ThermalState::Serious), Some(ThermalState::Critical)];
    for (trial, state) in hot.trials.iter_mut().zip(states) {
        trial.thermal_state = state;
    }
    assert_eq!(hot.throttled_trials(), 2, "serious and critical slow a Mac down; fair does not");
    let cool = record("linux", Status::Ok, 3);
    assert_eq!(cool.throttled_trials(), 0);
    // JSON of a machine that tells nothing is unchanged: no thermal_state key at all.
    assert!(!serde_json::to_string(&cool).unwrap().contains("thermal_state"));
    let dir = tempfile::tempdir().unwrap();
    for name in ["r.json", "r.csv"] {
        let path = dir.path().join(name);
        std::fs::write(&path, [hot.clone()].render(Format::from_path(&path).unwrap()).unwrap()).unwrap();
        let back = read_records(&path).unwrap();
        let read: Vec<_> = back[0].trials.iter().map(|t| t.thermal_state).collect();
        assert_eq!(read, states, "{name}");
    }
}

#[test]
fn each_step_splits_into_host_part_and_wait_exactly() {
    // Tokens at 20, 30, 45, 50 ms; the next steps were queued at 19, 24, 41, 46 ms.
    // Host parts (queued_k − token_{k−1}): 4, 11, 1; waits (token_k − queued_k): 6, 4, 4.
    let timings = TrialTimings {
        batch: 2,
        n_context: 0,
        n_prompt: 10,
        n_prefill: 9,
        prefill_done: ms(5),
        token_times: [20, 30, 45, 50].map(ms).to_vec(),
        built_times: [18, 22, 35, 45].map(ms).to_vec(),
        queued_times: [19, 24, 41, 46].map(ms).to_vec(),
    };
    let split = timings.step_host_and_wait().unwrap();
    assert_eq!(split, vec![(ms(4), ms(6)), (ms(11), ms(4)), (ms(1), ms(4))]);
    let itl = timings.inter_token_latencies();
    assert!(split.iter().zip(&itl).all(|(&(host, wait), &gap)| host + wait == gap));
    let m = TrialMetrics::from_timings(&timings, TrialMemory::default());
    // Sorted host parts 1, 4, 11: p50 = 4, p90 = 4 + 0.8·7 = 9.6, p99 = 4 + 0.98·7 = 10.86.
    assert_eq!(m.step_host_p50_ms, Some(4.0));
    assert!((m.step_host_p90_ms.unwrap() - 9.6).abs() < 1e-9, "{:?}", m.step_host_p90_ms);
    assert!((m.step_host_p99_ms.unwrap() - 10.86).abs() < 1e-9, "{:?}", m.step_host_p99_ms);
    // Sorted waits 4, 4, 6: p50 = 4, p90 = 4 + 0.8·2 = 5.6.
    assert_eq!(m.step_wait_p50_ms, Some(4.0));
    assert!((m.step_wait_p90_ms.unwrap() - 5.6).abs() < 1e-9, "{:?}", m.step_wait_p90_ms);
    // Host 16 ms of 30 ms decode.
    assert!((m.step_host_share.unwrap() - 16.0 / 30.0).abs() < 1e-12, "{:?}", m.step_host_share);
    assert_eq!(m.step_queued_ms, vec![19.0, 24.0, 41.0, 46.0]);
    // Building (built_k − token_{k−1}): 2, 5, 0 of the host parts 4, 11, 1; sorted 0, 2, 5:
    // p50 = 2, p90 = 2 + 0.8·3 = 4.4.
    assert_eq!(timings.step_build(), Some(vec![ms(2), ms(5), ms(0)]));
    assert_eq!(m.step_build_p50_ms, Some(2.0));
    assert!((m.step_build_p90_ms.unwrap() - 4.4).abs() < 1e-9, "{:?}", m.step_build_p90_ms);
    let s = MetricSummaries::of(&[m.clone(), m]);
    assert_eq!(s.step_host_p50_ms.unwrap().median, 4.0);
    assert_eq!(s.step_wait_p50_ms.unwrap().median, 4.0);

    // An engine without the split (mlx-lm), or a single token: no host metrics.
    let without = TrialTimings { built_times: Vec::new(), queued_times: Vec::new(), ..timings.clone() };
    assert_eq!(without.step_host_and_wait(), None);
    let m = TrialMetrics::from_timings(&without, TrialMemory::default());
    assert_eq!((m.step_host_p50_ms, m.step_wait_p99_ms, m.step_host_share, m.step_build_p50_ms), (None, None, None, None));
    let one = TrialTimings { token_times: vec![ms(20)], queued_times: vec![ms(19)], ..timings };
    assert_eq!(TrialMetrics::from_timings(&one, TrialMemory::default()).step_host_share, None);
}

#[test]
fn host_metrics_travel_through_csv_and_json() {
    let timings = TrialTimings {
        batch: 1,
        n_context: 0,
        n_prompt: 10,
        n_prefill: 9,
        prefill_done: ms(5),
        token_times: [20, 30, 40].map(ms).to_vec(),
        built_times: [18, 27, 30].map(ms).to_vec(),
        queued_times: [19, 28, 31].map(ms).to_vec(),
    };
    let trial = TrialMetrics::from_timings(&timings, TrialMemory::default());
    assert_eq!((trial.step_host_p50_ms, trial.step_wait_p50_ms), (Some(4.5), Some(5.5)));
    let point = RunPoint { model: "/m/a".into(), kv_bits: None, batch: 1, depth: 0, n_prompt: 10, n_generate: 3, draft: None, engine: Engine::Mlxbench };
    let records = vec![RunRecord::new(point, run_context(1), Ok(vec![trial]), None, None)];
    let records = &records[..];
    let csv = records.render(Format::Csv).unwrap();
    let rows: Vec<CsvRow> = csv::Reader::from_reader(csv.as_bytes()).deserialize().collect::<Result<_, _>>().unwrap();
    assert_eq!((rows[0].step_host_p50_ms, rows[0].step_wait_p50_ms), (Some(4.5), Some(5.5)));
    // Host 9 ms of 20 ms.
    assert!((rows[0].step_host_share.unwrap() - 0.45).abs() < 1e-12, "{:?}", rows[0].step_host_share);
    let json = records.render(Format::Json).unwrap();
    let back: JsonReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.records[0].trials[0].step_queued_ms, vec![19.0, 28.0, 31.0]);
    let markdown = records.render(Format::Md).unwrap();
    // Building 7 and 0 ms: p50 3.5.
    assert_eq!(rows[0].step_build_p50_ms, Some(3.5));
    assert!(markdown.contains("4.50 (3.50) / 5.50 (45%)"), "{markdown}");
}

#[test]
fn memory_breakdown_splits_the_peak_into_weights_kv_and_transient() {
    use mlxbench::{bench::ModelSize, measure::MemoryBreakdown, models::Footprint};
    let b = MemoryBreakdown::of(10_000, 6_000, 1_500, 700);
    assert_eq!(b, MemoryBreakdown { weights_bytes: 6_000, kv_cache_bytes: 1_500, transient_bytes: 2_500, buffer_cache_bytes: 700 });
    assert_eq!(MemoryBreakdown::of(7_000, 6_000, 1_500, 0).transient_bytes, 0, "a peak below weights + KV has no transient");
    // A record's breakdown is of the medians: peak 11_000, KV 1_100, buffer cache 6.
    let trials: Vec<TrialMetrics> = [(10_000, 1_000, 5), (12_000, 1_200, 7), (11_000, 1_100, 6)]
        .iter()
        .map(|&(peak, kv, cache)| {
            let memory = TrialMemory { peak_memory_bytes: peak, kv_cache_bytes: kv, cache_memory_bytes: cache, active_memory_bytes: 0 };
            TrialMetrics::from_timings(&timings(1, 129, 33, 100, 120, 1120), memory)
        })
        .collect();
    let point = RunPoint { model: "m".into(), kv_bits: Some(8), batch: 1, depth: 0, n_prompt: 129, n_generate: 33, draft: None, engine: Engine::Mlxbench };
    let size = ModelSize { file_bytes: None, footprint: Footprint { weight_bytes: 6_000, ..Footprint::default() } };
    let record = RunRecord::new(point, run_context(3), Ok(trials), Some(size), None);
    let expected = MemoryBreakdown { weights_bytes: 6_000, kv_cache_bytes: 1_100, transient_bytes: 3_900, buffer_cache_bytes: 6 };
    assert_eq!(record.memory_breakdown, Some(expected));
    // CSV: each trial's transient (10_000 − 6_000 − 1_000 = 3_000, ...), and read back the same.
    let records = vec![record];
    let csv = records.render(Format::Csv).unwrap();
    let rows: Vec<CsvRow> = csv::Reader::from_reader(csv.as_bytes()).deserialize().map(|r| r.unwrap()).collect();
    let transient: Vec<Option<u64>> = rows.iter().map(|r| r.transient_memory_bytes).collect();
    assert_eq!(transient, [Some(3_000), Some(4_800), Some(3_900)]);
    assert!(rows.iter().all(|r| r.weights_memory_bytes == Some(6_000)));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    std::fs::write(&path, &csv).unwrap();
    let back = mlxbench::report::read::read_records(&path).unwrap();
    assert_eq!(back[0].memory_breakdown, Some(expected));
    // JSON keeps the record's breakdown as one object.
    let json: serde_json::Value = serde_json::from_str(&records.render(Format::Json).unwrap()).unwrap();
    assert_eq!(json["records"][0]["memory_breakdown"]["transient_bytes"], 3_900);
}
