//! Criterion glue shared by the `prefill`, `decode` and `ttft` bench targets: configuration
//! (`mlxbench::bench::BenchConfig`) → the points of the phase → each model loaded once
//! (`PreparedModel`) → `iter_custom` over `mlxbench::measure::time_phase`, with the peak-memory
//! sidecars and page of `mlxbench::gate`.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use criterion::{Criterion, SamplingMode, Throughput};
use mlxbench::{
    bench::{
        ids::{benchmark_id, function_id, phase_tokens},
        BenchConfig, PreparedModel, Settings,
    },
    device,
    gate::{self, CriterionArgs, MemoryRecord},
    measure::{phase_prompt_len, time_phase, Phase},
};

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2);
}

/// The value, or the error with its causes on stderr and exit code 2.
fn or_fail<T>(result: mlxbench::Result<T>) -> T {
    result.unwrap_or_else(|e| fail(e.describe()))
}

/// Benches `phase` over the configured models × KV bits × lengths.
pub fn run(phase: Phase) {
    if cfg!(debug_assertions) {
        eprintln!("warning: benches built without optimizations; their timings are meaningless");
    }
    let config = or_fail(BenchConfig::load(Path::new(env!("CARGO_MANIFEST_DIR"))));
    let info = or_fail(device::select(config.device.unwrap_or_else(device::default_kind)));
    let args = CriterionArgs::parse(std::env::args().skip(1));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let models = or_fail(config.models(info.device, &target));
    let mut criterion = Criterion::default().configure_from_args();
    let criterion_dir = gate::criterion_output_dir();
    let settings = Settings::default();

    for spec in &models {
        let points: Vec<_> = or_fail(config.points(phase, std::slice::from_ref(spec)))
            .into_iter()
            .filter(|point| args.selects(&benchmark_id(phase, point)))
            .collect();
        if points.is_empty() {
            continue;
        }
        if args.list {
            // As Criterion lists, without loading (or downloading) the model.
            for point in &points {
                println!("{}: benchmark", benchmark_id(phase, point));
            }
            continue;
        }
        let model = or_fail(PreparedModel::load(spec));

        let mut group = criterion.benchmark_group(phase.name());
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(config.sample_size)
            .measurement_time(Duration::from_secs_f64(config.measurement_time))
            .warm_up_time(Duration::from_secs_f64(config.warm_up_time));
        for point in &points {
            let full_id = benchmark_id(phase, point);
            let function_id = function_id(phase, point);
            let prompt = or_fail(model.prompts(settings.prompt_kind, phase_prompt_len(phase, point.n_prompt), 1, settings.seed));
            let options = settings.generate_options(point);
            let lm = model.loaded.model.as_ref();
            // One untimed run first: it warms up, and a setting this MLX cannot run (e.g. KV
            // quantization on some CUDA shapes) is reported and skipped instead of aborting.
            if let Err(e) = time_phase(lm, &prompt, phase, point.n_generate, &options) {
                eprintln!("skipping {full_id}: {}", e.describe());
                continue;
            }
            group.throughput(Throughput::Elements(phase_tokens(phase, point) as u64));
            let mut peaks = Vec::new();
            let mut kv_cache_bytes = 0;
            group.bench_function(&function_id, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut peak = 0;
                    for _ in 0..iters {
                        let sample = time_phase(lm, &prompt, phase, point.n_generate, &options)
                            .unwrap_or_else(|e| fail(format!("{full_id}: {}", e.describe())));
                        total += sample.time;
                        peak = peak.max(sample.peak_memory_bytes);
                        kv_cache_bytes = sample.kv_cache_bytes;
                    }
                    peaks.push(peak);
                    total
                })
            });
            if peaks.len() >= config.sample_size {
                let record = MemoryRecord {
                    full_id: full_id.clone(),
                    peak_memory_bytes: peaks[peaks.len() - config.sample_size..].to_vec(),
                    kv_cache_bytes,
                    mlx_version: info.mlx_version.clone(),
                    mlx_build: info.mlx_build.clone(),
                    backend: info.backend.to_string(),
                };
                let bench_dir = gate::find_benchmark_dir(&criterion_dir, &full_id)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| gate::criterion_dir_for(phase.name(), Some(&function_id), None));
                if let Err(e) = record.write_for_run(&criterion_dir, &bench_dir, std::env::args().skip(1)) {
                    eprintln!("warning: peak memory of {full_id} not saved: {e}");
                }
            }
        }
        group.finish();
    }
    criterion.final_summary();
    if criterion_dir.join("report").is_dir() {
        if let Err(e) = gate::write_memory_page(&criterion_dir) {
            eprintln!("warning: peak-memory page not written: {e}");
        }
    }
}
