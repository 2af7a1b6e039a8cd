//! Criterion glue shared by the `prefill`, `decode` and `ttft` bench targets: what to bench comes
//! from `mlxbench::benchkit` (environment, `mlxbench.toml`), the timing from
//! `mlxbench::measure::time_phase`; this file only hands them to Criterion and writes the
//! peak-memory sidecars and page.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use criterion::{Criterion, SamplingMode, Throughput};
use mlxbench::{
    benchkit::{self, BenchConfig, Phase},
    cache::KvCacheOptions,
    compare::{self, MemoryRecord},
    device::{self, DeviceKind},
    generate::GenerateOptions,
    hub,
    measure::{phase_prompt_len, time_phase},
    models,
    prompt::{build_prompts, PromptKind},
    synth::{self, Arch, SynthOptions},
    tokenizer::Tokenizer,
};

/// Writes the default synthetic models for `device` once (under `target/mlxbench-synth/`) and
/// returns their directories.
fn synthetic_models(device: DeviceKind) -> Result<Vec<String>, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let config = synth::preset_config("tiny", Some(Arch::Llama)).map_err(|e| e.to_string())?;
    benchkit::default_synthetic(device)
        .into_iter()
        .map(|(name, bits, dtype)| {
            let dir = target.join("mlxbench-synth").join(name);
            if !dir.join("config.json").exists() {
                let options = SynthOptions { bits, dtype, force: true, ..SynthOptions::default() };
                synth::write_model(&config, &options, &dir).map_err(|e| format!("writing {}: {e}", dir.display()))?;
            }
            Ok(dir.to_string_lossy().into_owned())
        })
        .collect()
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2);
}

/// Benches `phase` over the configured models × KV bits × lengths.
pub fn run(phase: Phase) {
    if cfg!(debug_assertions) {
        eprintln!("warning: benches built without optimizations; their timings are meaningless");
    }
    let config = BenchConfig::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| fail(e));
    let info = device::select(config.device.unwrap_or_else(device::default_kind)).unwrap_or_else(|e| fail(e));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (filter, exact) = benchkit::criterion_filter(&args);
    let models = if config.models.is_empty() { synthetic_models(info.device).unwrap_or_else(|e| fail(e)) } else { config.models.clone() };
    let mut criterion = Criterion::default().configure_from_args();
    let criterion_dir = compare::criterion_output_dir();

    let lengths: Vec<(usize, usize)> = config
        .prompt_tokens
        .iter()
        .flat_map(|&p| config.gen_tokens.iter().map(move |&g| (p, g)))
        .filter(|&(_, g)| phase == Phase::Decode || g == config.gen_tokens[0]) // g only names decode ids
        .collect();
    for spec in &models {
        let label = benchkit::model_label(spec);
        let ids: Vec<_> = config
            .kv_bits
            .iter()
            .flat_map(|&kv| lengths.iter().map(move |&(p, g)| (kv, p, g)))
            .filter(|&(kv, p, g)| filter_selects(&filter, exact, &benchkit::benchmark_id(phase, &label, kv, p, g)))
            .collect();
        if ids.is_empty() {
            continue;
        }
        if args.iter().any(|a| a == "--list") {
            // As Criterion lists, without loading (or downloading) the model.
            for &(kv, p, g) in &ids {
                println!("{}: benchmark", benchkit::benchmark_id(phase, &label, kv, p, g));
            }
            continue;
        }
        let dir = hub::resolve(spec).unwrap_or_else(|e| fail(e));
        let loaded = models::load(&dir).unwrap_or_else(|e| fail(format!("loading {}: {e}", dir.display())));
        let tokenizer = Tokenizer::from_dir(&dir).unwrap_or_else(|e| fail(e));

        let mut group = criterion.benchmark_group(phase.name());
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(config.sample_size)
            .measurement_time(Duration::from_secs_f64(config.measurement_time))
            .warm_up_time(Duration::from_secs_f64(config.warm_up_time));
        for (kv_bits, prompt_tokens, gen_tokens) in ids {
            let function_id = benchkit::function_id(phase, &label, kv_bits, prompt_tokens, gen_tokens);
            let full_id = benchkit::benchmark_id(phase, &label, kv_bits, prompt_tokens, gen_tokens);
            let prompt = build_prompts(&tokenizer, PromptKind::Text, phase_prompt_len(phase, prompt_tokens), 1, 0)
                .unwrap_or_else(|e| fail(e));
            let options = GenerateOptions {
                kv: KvCacheOptions { kv_bits, ..KvCacheOptions::default() },
                ..GenerateOptions::default()
            };
            let model = loaded.model.as_ref();
            // One untimed run first: it warms up, and a setting this MLX cannot run (e.g. KV
            // quantization on some CUDA shapes) is reported and skipped instead of aborting.
            if let Err(e) = time_phase(model, &prompt, phase, gen_tokens, &options) {
                eprintln!("skipping {full_id}: {}", mlxbench::error::describe([&e as &(dyn std::error::Error + 'static)]));
                continue;
            }
            let elements = match phase {
                Phase::Prefill | Phase::Ttft => prompt_tokens,
                Phase::Decode => gen_tokens,
            };
            group.throughput(Throughput::Elements(elements as u64));
            let mut peaks = Vec::new();
            let mut cache_bytes = 0;
            group.bench_function(&function_id, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut peak = 0;
                    for _ in 0..iters {
                        let sample = time_phase(model, &prompt, phase, gen_tokens, &options)
                            .unwrap_or_else(|e| fail(format!("{full_id}: {e}")));
                        total += sample.time;
                        peak = peak.max(sample.peak_memory_bytes);
                        cache_bytes = sample.kv_cache_bytes;
                    }
                    peaks.push(peak);
                    total
                })
            });
            if peaks.len() >= config.sample_size {
                let record = MemoryRecord {
                    full_id: full_id.clone(),
                    peak_memory_bytes: peaks[peaks.len() - config.sample_size..].to_vec(),
                    cache_bytes,
                    mlx_version: info.mlx_version.clone(),
                    backend: info.backend.to_string(),
                };
                let bench_dir = compare::find_benchmark_dir(&criterion_dir, &full_id)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| compare::criterion_dir_for(phase.name(), Some(&function_id), None));
                if let Err(e) = record.write_for_run(&criterion_dir, &bench_dir, &args) {
                    eprintln!("warning: peak memory of {full_id} not saved: {e}");
                }
            }
        }
        group.finish();
    }
    criterion.final_summary();
    if criterion_dir.join("report").is_dir() {
        if let Err(e) = benchkit::write_memory_page(&criterion_dir) {
            eprintln!("warning: peak-memory page not written: {e}");
        }
    }
}

fn filter_selects(filter: &Option<String>, exact: bool, id: &str) -> bool {
    benchkit::filter_selects(filter.as_deref(), exact, id)
}
