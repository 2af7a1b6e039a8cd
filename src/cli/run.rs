//! `mlxbench run`: a sweep of models × KV settings × batch × depth × prompt/generation lengths,
//! with warmup, repeats and statistics, printed as a table and saved under `results/`.
use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mlxbench::{
    device::{self, DeviceInfo, DeviceKind},
    generate::{GenerateOptions, Sampling},
    hub, hwinfo,
    measure::run_trial,
    metrics::{bandwidth_utilisation, decode_bandwidth_gbps, MetricSummaries, TrialMetrics},
    models::{self, LoadedModel},
    prompt::{build_prompts, PromptKind},
    report::{Format, ResultsFile, RunContext, RunRecord, Status},
    sweep::{parse_kv_bits, RunPoint, SweepSpec},
    tokenizer::Tokenizer,
};

/// One `--kv-bits` value (`none`, 4, 8).
#[derive(Debug, Clone, Copy)]
pub struct KvBitsArg(pub Option<i32>);

pub fn kv_bits_arg(s: &str) -> Result<KvBitsArg, String> {
    parse_kv_bits(s).map(KvBitsArg)
}

#[derive(Debug, Args)]
#[command(after_long_help = "Lists (comma-separated) are accepted by --model, --n-prompt, --n-generate, --kv-bits, \
--batch and --depth; the sweep runs every combination, each model loaded once.\n\n\
Metrics (see README): TTFT = prompt on the device -> first token on the host; prompt t/s = prefill \
tokens / prefill time (the first token excluded); generation t/s = (tokens - 1) / (first -> last \
token); peak memory = MLX's peak allocation, reset before each trial.\n\n\
Example: mlxbench run --model ./my-model --n-prompt 512,2048 --n-generate 128 --kv-bits none,8,4")]
pub struct RunArgs {
    /// Models: local MLX-format directories or Hugging Face repo ids (comma list).
    #[arg(long, short, value_delimiter = ',', required = true)]
    model: Vec<String>,
    /// Prompt tokens per sequence (comma list).
    #[arg(long, short = 'p', value_delimiter = ',', default_value = "1000", value_parser = clap::value_parser!(u64).range(1..))]
    n_prompt: Vec<u64>,
    /// Tokens to generate per sequence (comma list).
    #[arg(long, short = 'n', value_delimiter = ',', default_value = "100", value_parser = clap::value_parser!(u64).range(1..))]
    n_generate: Vec<u64>,
    /// Measured trials per configuration.
    #[arg(long, short, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    repeats: u64,
    /// Unmeasured trials before the measured ones (kernels compile and caches warm on first use).
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// KV cache: none (full precision) or bits to quantize it to, e.g. none,8,4 (comma list).
    #[arg(long, value_delimiter = ',', default_value = "none", value_parser = kv_bits_arg)]
    kv_bits: Vec<KvBitsArg>,
    #[command(flatten)]
    kv: super::KvCacheArgs,
    /// Sequences run together (comma list); tokens/s is reported in total and per sequence.
    #[arg(long, short, value_delimiter = ',', default_value = "1", value_parser = clap::value_parser!(u64).range(1..))]
    batch: Vec<u64>,
    /// Tokens already in the cache before the measured prompt (comma list), as llama-bench -d.
    #[arg(long, short, value_delimiter = ',', default_value = "0")]
    depth: Vec<u64>,
    /// Prompt tokens per prefill forward pass.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..))]
    prefill_step_size: u64,
    /// Prompt content: repeated English text, or random token ids.
    #[arg(long, value_enum, default_value_t = PromptKind::Text)]
    prompt_kind: PromptKind,
    /// Seconds to wait before each trial after the first (lets a Mac cool down).
    #[arg(long, default_value_t = 0.0)]
    delay: f64,
    /// Device to run on (default: gpu when this MLX has one, else cpu).
    #[arg(long, value_enum)]
    device: Option<DeviceKind>,
    /// Seed of random prompts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Table format on stdout.
    #[arg(long, short, value_enum, default_value_t = Format::Md)]
    format: Format,
    /// File to add the results to (format from its extension: .csv .json .jsonl .md; default
    /// results/run-<UTC time>.csv). An existing file is appended to, never overwritten.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Do not write a results file.
    #[arg(long, conflicts_with = "output")]
    no_save: bool,
    /// Print every trial's numbers to stderr.
    #[arg(long, short)]
    verbose: bool,
}

impl RunArgs {
    fn spec(&self) -> SweepSpec {
        let to_usize = |v: &[u64]| v.iter().map(|&x| x as usize).collect();
        SweepSpec {
            models: self.model.clone(),
            kv_bits: self.kv_bits.iter().map(|k| k.0).collect(),
            batch: to_usize(&self.batch),
            depth: to_usize(&self.depth),
            n_prompt: to_usize(&self.n_prompt),
            n_generate: to_usize(&self.n_generate),
        }
    }

    fn options(&self, point: &RunPoint) -> GenerateOptions {
        GenerateOptions {
            max_tokens: point.n_generate,
            sampling: Sampling::Greedy,
            kv: self.kv.options(point.kv_bits),
            prefill_step_size: self.prefill_step_size as usize,
            stop_tokens: Vec::new(),
        }
    }
}

/// Bytes of a model directory's safetensors files.
fn weight_bytes(dir: &Path) -> Option<u64> {
    let entries = std::fs::read_dir(dir).ok()?;
    let total = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    Some(total)
}

/// A model ready to run, or why it is not.
struct Prepared {
    loaded: LoadedModel,
    tokenizer: Tokenizer,
    weight_bytes: Option<u64>,
}

fn prepare_model(spec: &str) -> Result<Prepared> {
    let dir = hub::resolve(spec)?;
    let loaded = models::load(&dir).with_context(|| format!("loading {}", dir.display()))?;
    let tokenizer = Tokenizer::from_dir(&dir)?;
    Ok(Prepared { loaded, tokenizer, weight_bytes: weight_bytes(&dir) })
}

/// MLX's way of saying it has no kernel for a shape or type, as opposed to a failure.
fn is_unsupported(message: &str) -> bool {
    ["No implementation for", "not supported", "Not implemented", "not implemented"]
        .iter()
        .any(|m| message.contains(m))
}

/// Runs `f`, turning an error or a panic into a message.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(mlxbench::error::describe(e.chain())),
        Err(panic) => Err(format!(
            "panicked: {}",
            panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
        )),
    }
}

/// A line on stderr that does not tear the progress bar.
fn say(progress: &ProgressBar, line: String) {
    progress.suspend(|| eprintln!("{line}"));
}

struct Runner<'a> {
    args: &'a RunArgs,
    context: RunContext,
    peak_gbps: Option<f64>,
    progress: ProgressBar,
    trials_done: usize,
}

impl Runner<'_> {
    fn trial(
        &mut self,
        prepared: &Prepared,
        point: &RunPoint,
        prompt: &mlxbench::prompt::Tokens,
        options: &GenerateOptions,
        measured: bool,
    ) -> Result<TrialMetrics> {
        if self.trials_done > 0 && self.args.delay > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(self.args.delay));
        }
        self.trials_done += 1;
        let metrics = run_trial(prepared.loaded.model.as_ref(), prompt, point.depth, options)?.metrics;
        if self.args.verbose {
            say(&self.progress, format!(
                "{} {} kv={} b={} d={} p={} g={}: ttft {:.2} ms, prompt {:.1} t/s, generation {:.1} t/s, peak {:.3} GB",
                if measured { "trial " } else { "warmup" },
                point.model,
                point.kv_bits.map_or("none".into(), |b| b.to_string()),
                point.batch,
                point.depth,
                point.n_prompt,
                point.n_generate,
                metrics.ttft_ms,
                metrics.prompt_tps.unwrap_or(f64::NAN),
                metrics.generation_tps.unwrap_or(f64::NAN),
                metrics.memory.peak_memory_bytes as f64 / 1e9
            ));
        }
        self.progress.inc(1);
        Ok(metrics)
    }

    fn measure(&mut self, prepared: &Prepared, point: &RunPoint) -> Result<Vec<TrialMetrics>> {
        let prompt = build_prompts(
            &prepared.tokenizer,
            self.args.prompt_kind,
            point.depth + point.n_prompt,
            point.batch,
            self.args.seed,
        )?;
        let options = self.args.options(point);
        for _ in 0..self.args.warmup {
            self.trial(prepared, point, &prompt, &options, false)?;
        }
        (0..self.args.repeats).map(|_| self.trial(prepared, point, &prompt, &options, true)).collect()
    }

    fn record(&self, point: &RunPoint, weight_bytes: Option<u64>, outcome: Result<Vec<TrialMetrics>, String>) -> RunRecord {
        let (status, error, trials) = match outcome {
            Ok(trials) => (Status::Ok, None, trials),
            Err(message) if is_unsupported(&message) => (Status::Unsupported, Some(message), Vec::new()),
            Err(message) => (Status::Failed, Some(message), Vec::new()),
        };
        let summary = (!trials.is_empty()).then(|| MetricSummaries::of(&trials));
        let decode_gbps = summary.as_ref().and_then(|s| {
            let tps = s.generation_tps_per_sequence.as_ref()?.median;
            let kv = s.kv_cache_bytes.as_ref()?.median as u64;
            Some(decode_bandwidth_gbps(weight_bytes?, kv, tps))
        });
        RunRecord {
            point: point.clone(),
            context: self.context.clone(),
            status,
            error,
            weight_bytes,
            trials,
            summary,
            decode_gbps,
            bandwidth_utilisation: decode_gbps.zip(self.peak_gbps).and_then(|(achieved, peak)| bandwidth_utilisation(achieved, peak)),
        }
    }
}

fn default_output() -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    PathBuf::from("results").join(format!("run-{stamp}.csv"))
}

fn context(args: &RunArgs, info: &DeviceInfo, hardware: &hwinfo::HardwareInfo) -> RunContext {
    RunContext {
        device: info.device.to_string(),
        backend: info.backend.to_string(),
        mlx_version: info.mlx_version.clone(),
        hardware: hardware.summary(),
        git_commit: env!("MLXBENCH_GIT_COMMIT").into(),
        mlxbench_version: env!("CARGO_PKG_VERSION").into(),
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        prompt_kind: format!("{:?}", args.prompt_kind).to_lowercase(),
        prefill_step_size: args.prefill_step_size as usize,
        kv_group_size: args.kv.kv_group_size,
        max_kv_size: args.kv.max_kv_size,
        warmup: args.warmup as usize,
        repeats: args.repeats as usize,
        seed: args.seed,
    }
}

/// Runs the sweep; `Ok(false)` when some configuration failed or is unsupported.
pub fn run(args: RunArgs) -> Result<bool> {
    super::warn_debug_build();
    if !(args.delay >= 0.0 && args.delay.is_finite()) {
        anyhow::bail!("--delay must be a number of seconds >= 0");
    }
    let points = args.spec().expand()?;
    let info = device::select(args.device.unwrap_or_else(device::default_kind))?;
    let hardware = hwinfo::detect();
    let file = match (&args.output, args.no_save) {
        (_, true) => None,
        (Some(path), false) => Some(ResultsFile::open(path, Format::from_path(path).unwrap_or(Format::Csv))?),
        (None, false) => Some(ResultsFile::open(&default_output(), Format::Csv)?),
    };
    if let Some(file) = &file {
        if let Some(wanted) = &file.redirected_from {
            eprintln!(
                "warning: {} holds results of another format or columns; writing {} instead",
                wanted.display(),
                file.path().display()
            );
        }
    }
    let progress = ProgressBar::new((points.len() as u64) * (args.warmup + args.repeats));
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} trials {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut runner = Runner {
        args: &args,
        context: context(&args, &info, &hardware),
        peak_gbps: hardware.peak_bandwidth_gbps(info.device),
        progress,
        trials_done: 0,
    };
    let mut records: Vec<RunRecord> = Vec::new();
    let mut current: Option<(String, Result<Prepared, String>)> = None;
    for point in &points {
        if current.as_ref().is_none_or(|(model, _)| model != &point.model) {
            drop(current.take()); // free the previous model before loading the next
            runner.progress.set_message(format!("loading {}", point.model));
            current = Some((point.model.clone(), guarded(|| prepare_model(&point.model))));
        }
        let (_, prepared) = current.as_ref().expect("set above");
        runner.progress.set_message(point.model.clone());
        let (outcome, weight_bytes) = match prepared {
            Ok(p) => (guarded(|| runner.measure(p, point)), p.weight_bytes),
            Err(message) => (Err(message.clone()), None),
        };
        let record = runner.record(point, weight_bytes, outcome);
        if let Some(e) = &record.error {
            say(&runner.progress, format!("{} ({}): {}", point.model, record.status.as_str(), e));
        }
        records.push(record);
        runner.progress.set_position(records.len() as u64 * (args.warmup + args.repeats));
        if let Some(file) = &file {
            file.save(&records)?;
        }
    }
    runner.progress.finish_and_clear();
    print!("{}", args.format.printer().render(&records)?);
    if let Some(file) = &file {
        eprintln!("results: {}", file.path().display());
    }
    let bad = records.iter().filter(|r| r.status != Status::Ok).count();
    if bad > 0 {
        eprintln!("{bad} of {} configurations did not complete", records.len());
    }
    Ok(bad == 0)
}
