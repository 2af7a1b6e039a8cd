//! Bench-target configuration (environment and mlxbench.toml), benchmark ids and Criterion's
//! name filter over them, and the peak-memory page.
use std::collections::HashMap;

use mlxbench::{
    benchkit::{benchmark_id, criterion_filter, filter_selects, memory_page, model_label, BenchConfig, Phase},
    compare::MemoryRecord,
};

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

#[test]
fn defaults_bench_the_synthetic_models_over_three_kv_settings() {
    let c = BenchConfig::resolve(env(&[]), None).unwrap();
    assert!(c.models.is_empty());
    assert_eq!(c.kv_bits, vec![None, Some(8), Some(4)]);
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
    assert_eq!(from_file.models, vec!["./a", "org/b"]);
    assert_eq!(from_file.kv_bits, vec![None, Some(4)]);
    assert_eq!(from_file.prompt_tokens, vec![256, 1024]);
    assert_eq!(from_file.gen_tokens, vec![64]);
    assert_eq!((from_file.sample_size, from_file.measurement_time), (20, 8.5));
    assert_eq!(from_file.device, Some(mlxbench::device::DeviceKind::Cpu));

    let both = BenchConfig::resolve(
        env(&[("MLXBENCH_MODELS", "/m/llama-3.2-1b, x/y"), ("MLXBENCH_KV_BITS", "8"), ("MLXBENCH_PROMPT_TOKENS", "512")]),
        Some(toml),
    )
    .unwrap();
    assert_eq!(both.models, vec!["/m/llama-3.2-1b", "x/y"]);
    assert_eq!(both.kv_bits, vec![Some(8)]);
    assert_eq!(both.prompt_tokens, vec![512]);
    assert_eq!(both.gen_tokens, vec![64]);
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
    assert_eq!(benchmark_id(Phase::Prefill, "llama-3.2-1b-q4", None, 512, 128), "prefill/llama-3.2-1b-q4/kvnone/p512");
    assert_eq!(benchmark_id(Phase::Decode, "llama-3.2-1b-q4", Some(4), 512, 128), "decode/llama-3.2-1b-q4/kv4/g128@d512");
    assert_eq!(benchmark_id(Phase::Ttft, "qwen3", Some(8), 64, 1), "ttft/qwen3/kv8/p64");
    assert_eq!(model_label("/models/Llama-3.2-1B-4bit/"), "Llama-3.2-1B-4bit");
    assert_eq!(model_label("mlx-community/Qwen3-0.6B-4bit"), "Qwen3-0.6B-4bit");
}

#[test]
fn criterion_filters_select_as_users_expect() {
    let ids: Vec<String> = [Phase::Prefill, Phase::Decode, Phase::Ttft]
        .into_iter()
        .flat_map(|phase| {
            ["llama-1b", "qwen3-0.6b"].into_iter().flat_map(move |model| {
                [None, Some(8), Some(4)].into_iter().map(move |kv| benchmark_id(phase, model, kv, 128, 32))
            })
        })
        .collect();
    let selected = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (filter, exact) = criterion_filter(&args);
        ids.iter().filter(|id| filter_selects(filter.as_deref(), exact, id)).count()
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
            cache_bytes: 1000,
            mlx_version: "0.32.2".into(),
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
