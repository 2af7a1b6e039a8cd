//! The bench layer: bench-target configuration (environment and mlxbench.toml), benchmark ids and
//! Criterion's name filter over them, the peak-memory page, and sessions measuring points
//! guarded (what `mlxbench run` drives) with their records.
use std::{collections::HashMap, time::Duration};

mod common;

use common::run_context;

use mlxbench::{
    bench::{
        guarded,
        ids::{benchmark_id, model_label},
        Axes, BenchConfig, Engine, ModelSize, Observer, Repeats, RunPoint, RunRecord, Session, Settings, Status, TrialKind,
    },
    device::{self, DeviceKind},
    gate::{memory_page, CriterionArgs, MemoryRecord},
    measure::{Phase, TrialMemory, TrialMetrics, TrialTimings},
    models::Footprint,
    synth::{self, Arch, FloatDtype, SynthOptions},
};

fn point(model: &str, kv_bits: Option<i32>, n_prompt: usize, n_generate: usize) -> RunPoint {
    RunPoint { model: model.into(), kv_bits, batch: 1, depth: 0, n_prompt, n_generate, engine: Engine::Mlxbench, draft: None }
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

#[test]
fn defaults_bench_the_synthetic_models_over_three_kv_settings() {
    let c = BenchConfig::resolve(env(&[]), None).unwrap();
    assert!(c.axes.models.is_empty());
    assert_eq!(c.axes.kv_bits, vec![None, Some(8), Some(4)]);
    assert_eq!(c.sample_size, 10);
}

#[test]
fn environment_overrides_the_file() {
    let toml = r#"
        models = ["./a", "org/b"]
        kv_bits = ["none", 4]
        prompt_tokens = [256, 1024]
        gen_tokens = "64"
        sample_size = 20
        measurement_time = 8.5
        device = "cpu"
    "#;
    let from_file = BenchConfig::resolve(env(&[]), Some(toml)).unwrap();
    assert_eq!(from_file.axes.models, vec!["./a", "org/b"]);
    assert_eq!(from_file.axes.kv_bits, vec![None, Some(4)]);
    assert_eq!(from_file.axes.n_prompt, vec![256, 1024]);
    assert_eq!(from_file.axes.n_generate, vec![64]);
    assert_eq!((from_file.sample_size, from_file.measurement_time), (20, 8.5));
    assert_eq!(from_file.device, Some(mlxbench::device::DeviceKind::Cpu));

    let both = BenchConfig::resolve(
        env(&[("MLXBENCH_MODELS", "/m/llama-3.2-1b, x/y"), ("MLXBENCH_KV_BITS", "8"), ("MLXBENCH_PROMPT_TOKENS", "512")]),
        Some(toml),
    )
    .unwrap();
    assert_eq!(both.axes.models, vec!["/m/llama-3.2-1b", "x/y"]);
    assert_eq!(both.axes.kv_bits, vec![Some(8)]);
    assert_eq!(both.axes.n_prompt, vec![512]);
    assert_eq!(both.axes.n_generate, vec![64]);
}

#[test]
fn bad_values_name_their_source() {
    let err = |vars: &[(&str, &str)], toml: Option<&str>| BenchConfig::resolve(env(vars), toml).unwrap_err().to_string();
    assert!(err(&[("MLXBENCH_KV_BITS", "4,six")], None).contains("MLXBENCH_KV_BITS"));
    assert!(err(&[("MLXBENCH_PROMPT_TOKENS", "0")], None).contains("MLXBENCH_PROMPT_TOKENS"));
    assert!(err(&[("MLXBENCH_SAMPLE_SIZE", "5")], None).contains("10"));
    assert!(err(&[("MLXBENCH_DEVICE", "tpu")], None).contains("cpu or gpu"));
    assert!(err(&[], Some("prompt_tokens = [\"many\"]")).contains("mlxbench.toml prompt_tokens"));
    assert!(err(&[], Some("modles = [\"typo\"]")).contains("unknown field"));
}

#[test]
fn ids_name_phase_model_kv_and_length() {
    assert_eq!(benchmark_id(Phase::Prefill, &point("llama-3.2-1b-q4", None, 512, 128)), "prefill/llama-3.2-1b-q4/kvnone/p512");
    assert_eq!(benchmark_id(Phase::Decode, &point("/m/llama-3.2-1b-q4/", Some(4), 512, 128)), "decode/llama-3.2-1b-q4/kv4/g128@d512");
    assert_eq!(benchmark_id(Phase::Ttft, &point("org/qwen3", Some(8), 64, 1)), "ttft/qwen3/kv8/p64");
    assert_eq!(model_label("/models/Llama-3.2-1B-4bit/"), "Llama-3.2-1B-4bit");
    assert_eq!(model_label("mlx-community/Qwen3-0.6B-4bit"), "Qwen3-0.6B-4bit");
}

#[test]
fn criterion_filters_select_as_users_expect() {
    let ids: Vec<String> = [Phase::Prefill, Phase::Decode, Phase::Ttft]
        .into_iter()
        .flat_map(|phase| {
            ["llama-1b", "qwen3-0.6b"].into_iter().flat_map(move |model| {
                [None, Some(8), Some(4)].into_iter().map(move |kv| benchmark_id(phase, &point(model, kv, 128, 32)))
            })
        })
        .collect();
    let selected = |args: &[&str]| {
        let args = CriterionArgs::parse(args);
        ids.iter().filter(|id| args.selects(id)).count()
    };
    assert_eq!(selected(&["--bench"]), 18);
    assert_eq!(selected(&["--bench", "prefill"]), 6);
    assert_eq!(selected(&["--bench", "kv4"]), 6);
    assert_eq!(selected(&["--bench", "decode/llama"]), 3);
    assert_eq!(selected(&["--bench", "--save-baseline", "main", "ttft"]), 6);
    assert_eq!(selected(&["--bench", "--baseline", "kv4"]), 18, "a flag's value is not the filter");
    assert_eq!(selected(&["--bench", "--exact", "ttft/qwen3-0.6b/kv8/p128"]), 1);
    assert_eq!(selected(&["--bench", "prefill|ttft"]), 12);
}

#[test]
fn memory_page_lists_each_benchmark_of_the_latest_run() {
    let dir = tempfile::tempdir().unwrap();
    let write = |baseline: &str, peak: u64| {
        let record = MemoryRecord {
            full_id: "prefill/m/kv4/p128".into(),
            peak_memory_bytes: vec![peak, peak + 2, peak + 1],
            kv_cache_bytes: 1000,
            mlx_version: "0.32.2".into(),
            mlx_build: "manylinux_2_35_x86_64".into(),
            backend: "cpu".into(),
        };
        let folder = dir.path().join("prefill/m_kv4_p128").join(baseline);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("benchmark.json"), "{}").unwrap();
        record.write(&folder).unwrap();
    };
    write("new", 1_500_000_000);
    write("main", 1_000_000_000);
    let page = memory_page(dir.path()).unwrap();
    assert!(page.contains("<td>prefill/m/kv4/p128</td><td>1.500 GB</td><td>1.500 GB – 1.500 GB</td><td>3</td><td>1.0 kB</td>"), "{page}");
    assert_eq!(page.matches("<tr><td>").count(), 1, "only the latest run: {page}");
}

/// A trial with `n_generated` tokens, the first at 100 ms and the last at `last_ms`.
fn trial(n_generated: usize, last_ms: u64, kv_cache_bytes: u64) -> TrialMetrics {
    let timings = TrialTimings {
        batch: 1,
        n_context: 0,
        n_prompt: 65,
        n_prefill: 64,
        prefill_done: Duration::from_millis(80),
        // Evenly spaced from 100 ms to `last_ms`.
        token_times: (0..n_generated as u64)
            .map(|i| Duration::from_millis(100) + Duration::from_millis(last_ms - 100) * i as u32 / (n_generated as u32 - 1))
            .collect(),
        built_times: Vec::new(),
        queued_times: Vec::new(),
    };
    TrialMetrics::from_timings(&timings, TrialMemory { kv_cache_bytes, ..TrialMemory::default() })
}

/// A dense model of `bytes` bytes and `bytes` parameters.
fn dense(bytes: u64) -> ModelSize {
    let footprint = Footprint { parameters: bytes, active_parameters: bytes, weight_bytes: bytes, decode_bytes: bytes };
    ModelSize { file_bytes: Some(bytes + 1000), footprint }
}

#[test]
fn a_record_carries_the_decode_bandwidth_of_its_median_trial() {
    // 101 tokens in 1, 2 and 4 s after the first: 100, 50 and 25 t/s; the median is 50 t/s.
    let trials = vec![trial(101, 1100, 1_000_000), trial(101, 2100, 3_000_000), trial(101, 4100, 2_000_000)];
    let record = RunRecord::new(point("m", None, 65, 101), run_context(3), Ok(trials.clone()), Some(dense(698_000_000)), Some(400.0));
    assert_eq!(record.status, Status::Ok);
    // (weights 698 MB + median KV 2 MB) × 50 t/s = 35 GB/s, 8.75% of 400 GB/s.
    assert_eq!(record.decode_gbps, Some(35.0));
    assert_eq!(record.bandwidth_utilisation, Some(35.0 / 400.0));
    assert_eq!(record.weight_bytes, Some(698_001_000), "the files, headers included");
    // A mixture of experts: 2.1 GB of weights of which a token reads 698 MB; 3 B parameters,
    // 1 B active. The bandwidth counts only what a token reads.
    let moe = Footprint { parameters: 3_000_000_000, active_parameters: 1_000_000_000, weight_bytes: 2_100_000_000, decode_bytes: 698_000_000 };
    let size = ModelSize { file_bytes: Some(2_100_001_000), footprint: moe };
    let record = RunRecord::new(point("m", None, 65, 101), run_context(3), Ok(trials), Some(size), Some(400.0));
    assert_eq!(record.decode_gbps, Some(35.0));
    assert_eq!(
        (record.parameters, record.active_parameters, record.decode_weight_bytes, record.weight_bytes),
        (Some(3_000_000_000), Some(1_000_000_000), Some(698_000_000), Some(2_100_001_000))
    );
    // Unknown weights or peak: no estimate rather than a wrong one.
    let trials = vec![trial(101, 1100, 0)];
    assert_eq!(RunRecord::new(point("m", None, 65, 101), run_context(1), Ok(trials.clone()), None, Some(400.0)).decode_gbps, None);
    let no_peak = RunRecord::new(point("m", None, 65, 101), run_context(1), Ok(trials), Some(dense(1_000_000_000)), None);
    assert_eq!((no_peak.decode_gbps, no_peak.bandwidth_utilisation), (Some(100.0), None));
}

#[test]
fn guarded_points_fail_or_are_unsupported_and_the_session_goes_on() {
    device::select(DeviceKind::Cpu).unwrap();
    let mut observer = Counting::default();
    let mut session = Session::new(Settings { warmup: 0, repeats: Repeats::Fixed(1), ..Settings::default() }, run_context(1), None, &mut observer);
    // MLX's "no kernel for this shape" is unsupported; any other failure is failed.
    let unsupported = session.measure(
        &Err("MLX error: [quantized_matmul] No implementation for problem shape: 1x512x64x32".into()),
        &point("m", Some(8), 8, 2),
    );
    assert_eq!(unsupported.status, Status::Unsupported);
    assert!(unsupported.trials.is_empty() && unsupported.summary.is_none() && unsupported.decode_gbps.is_none());
    let failed = session.measure(&Err("out of memory".into()), &point("m", None, 8, 2));
    assert_eq!((failed.status, failed.error.as_deref()), (Status::Failed, Some("out of memory")));
    // A panic inside a guarded step is a message, not a crash.
    assert_eq!(guarded::<()>(|| panic!("boom")), Err("panicked: boom".to_string()));
    assert_eq!(guarded(|| Ok(3)), Ok(3));
}

/// Counts what a session tells its observer.
#[derive(Default)]
struct Counting {
    loading: Vec<String>,
    trials: usize,
    finished: Vec<usize>,
}

impl Observer for Counting {
    fn loading(&mut self, model: &str) {
        self.loading.push(model.to_string());
    }
    fn trial(&mut self, _point: &RunPoint, _kind: TrialKind, _metrics: &TrialMetrics) {
        self.trials += 1;
    }
    fn finished(&mut self, records: &[RunRecord]) -> mlxbench::Result<()> {
        self.finished.push(records.len());
        Ok(())
    }
}

#[test]
fn a_session_loads_each_model_once_and_records_every_point() {
    device::select(DeviceKind::Cpu).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    let config = synth::preset_config("tiny", Some(Arch::Llama)).unwrap();
    synth::write_model(&config, &SynthOptions { dtype: FloatDtype::Float32, ..SynthOptions::default() }, &model).unwrap();
    let model = model.to_string_lossy().into_owned();
    let missing = tmp.path().join("missing").to_string_lossy().into_owned();
    let axes = Axes {
        models: vec![missing.clone(), model.clone()],
        kv_bits: vec![None, Some(4)],
        batch: vec![1],
        depth: vec![0],
        n_prompt: vec![8],
        n_generate: vec![3],
        engines: vec![Engine::Mlxbench],
        draft_model: None,
        num_draft_tokens: Vec::new(),
    };
    let mut observer = Counting::default();
    let settings = Settings { warmup: 1, repeats: Repeats::Fixed(2), ..Settings::default() };
    let records = Session::new(settings, run_context(2), None, &mut observer).run(&axes.expand().unwrap()).unwrap();
    assert_eq!(observer.loading, vec![missing.clone(), model.clone()], "each model loads once");
    assert_eq!(observer.finished, vec![1, 2, 3, 4], "told after every point");
    assert_eq!(observer.trials, 2 * 3, "two points of the good model, 1 warmup + 2 trials each");
    let statuses: Vec<Status> = records.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Status::Failed, Status::Failed, Status::Ok, Status::Ok]);
    assert!(records[0].error.as_ref().unwrap().contains("missing"), "{:?}", records[0].error);
    for record in &records[2..] {
        assert_eq!(record.trials.len(), 2);
        assert!(record.weight_bytes.unwrap() > 0);
        assert!(record.decode_gbps.unwrap() > 0.0);
        assert!(record.trials.iter().all(|t| t.generation_tps.unwrap() > 0.0));
    }
}
