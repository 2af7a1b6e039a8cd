//! The `mlxbench` command line.
mod cli;

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use cli::warn_debug_build;
use clap::{Args, Parser, Subcommand};
use mlxbench::{
    compare,
    device::{self, DeviceKind},
    generate::{GenerateOptions, Sampling},
    measure::run_trial,
    metrics::gigabytes,
    hub, models,
    prompt::{build_prompts, PromptKind, Tokens},
    tokenizer::Tokenizer,
};

/// Microbenchmarks for large language models on Apple's MLX.
#[derive(Debug, Parser)]
#[command(name = "mlxbench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the loaded MLX (version, backend), the selected device and MLX's memory counters.
    Info {
        /// Device to select: gpu (CUDA or Metal, when this MLX has one) or cpu.
        #[arg(long, value_enum)]
        device: Option<DeviceKind>,
        /// Print JSON instead of key=value lines.
        #[arg(long)]
        json: bool,
    },
    /// Generate text from a prompt with a model (a local MLX-format directory or a Hugging Face
    /// repo id). Prints the text, or with --json the prompt and generated token ids.
    Generate(GenerateArgs),
    /// Benchmark models: prompt (prefill) tokens/s, generation tokens/s, time to first token and
    /// peak memory, over a sweep of settings, with warmup, repeats and statistics. Prints a table
    /// and appends every trial to a results file.
    Run(Box<cli::run::RunArgs>),
    /// Write a synthetic model: an MLX-format directory of a real shape (or any config.json)
    /// with seeded random weights, quantized or not, and a small tokenizer.
    Synth(cli::synth::SynthArgs),
    /// Show the machine: CPU, memory, GPUs (and on Macs the chip and its GPU cores).
    Hwinfo {
        /// Print JSON with every field instead of one line.
        #[arg(long)]
        json: bool,
    },
    /// Compare two Criterion baselines of the bench targets (time, with tokens/s, and peak
    /// memory). Exits non-zero when something got worse beyond the threshold with confidence.
    Compare(CompareArgs),
    /// Check MLX on the device: a bf16 matmul and a 4-bit quantized matmul against float32
    /// references, with their speed. Exits non-zero when a result is off.
    Selftest {
        /// Device to run on (default: gpu when this MLX has one, else cpu).
        #[arg(long, value_enum)]
        device: Option<DeviceKind>,
        /// Side of the square matrices (default: 4096 on a GPU, 256 on the CPU).
        #[arg(long, value_parser = clap::value_parser!(i32).range(64..=32768))]
        size: Option<i32>,
        /// Timed repeats per kernel (the median is reported).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
        repeats: u64,
    },
}


#[derive(Debug, Args)]
struct GenerateArgs {
    /// Model: a local directory with config.json, tokenizer.json and safetensors, or a Hugging
    /// Face repo id (looked up in the HF cache; downloaded unless HF_HUB_OFFLINE=1).
    #[arg(long)]
    model: String,
    /// The prompt text (tokenized without special tokens).
    #[arg(long, required_unless_present = "prompt_tokens", conflicts_with = "prompt_tokens")]
    prompt: Option<String>,
    /// Instead of --prompt: a prompt of exactly this many tokens (the base text repeated).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    prompt_tokens: Option<u64>,
    /// Tokens to generate.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    max_tokens: u64,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temp: f32,
    /// Nucleus sampling: keep the most likely tokens up to this total probability (with --temp > 0).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Seed for sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Quantize the KV cache to this many bits (4 or 8), or `none`.
    #[arg(long, value_parser = cli::run::kv_bits_arg, default_value = "none")]
    kv_bits: cli::run::KvBitsArg,
    #[command(flatten)]
    kv: cli::KvCacheArgs,
    /// Prompt tokens per prefill forward pass.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..))]
    prefill_step_size: u64,
    /// Stop at the model's end-of-sequence token (default: always generate --max-tokens).
    #[arg(long)]
    stop_at_eos: bool,
    /// Device to run on (default: gpu when this MLX has one, else cpu).
    #[arg(long, value_enum)]
    device: Option<DeviceKind>,
    /// Print {"prompt_ids": [...], "generated_ids": [...]} instead of text.
    #[arg(long)]
    json: bool,
    /// Print timings to stderr: time to first token, generation tokens/s, peak memory.
    #[arg(long, short)]
    verbose: bool,
    /// Untimed full generations before the reported one (GPU kernels compile on first use).
    #[arg(long, default_value_t = 0)]
    warmup: u32,
}

#[derive(Debug, Args)]
#[command(after_long_help = "Typical CI use: on main, `cargo bench -- --save-baseline main`; on a pull request, \
`cargo bench` then `mlxbench compare --baseline main`.\n\n\
A metric regresses when the whole 95% bootstrap interval of its change (time; tokens/s is the \
same event) or the whole range of its change (peak memory) lies above +threshold: worse by more \
than the threshold, with confidence.")]
struct CompareArgs {
    /// The saved baseline to compare against (`cargo bench -- --save-baseline NAME`).
    #[arg(long)]
    baseline: String,
    /// The run to check: Criterion's latest (`new`) or another saved baseline.
    #[arg(long, default_value = compare::DEFAULT_AGAINST)]
    against: String,
    /// Regression threshold in percent.
    #[arg(long, default_value_t = compare::DEFAULT_THRESHOLD_PCT)]
    threshold: f64,
    /// Criterion's output directory (default: as Criterion finds it, e.g. target/criterion).
    #[arg(long)]
    criterion_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = compare::Format::Table)]
    format: compare::Format,
    /// Also fail when a benchmark of the baseline is missing from the compared run.
    #[arg(long)]
    strict: bool,
}

fn run_compare(args: &CompareArgs) -> Result<bool> {
    let dir = args.criterion_dir.clone().unwrap_or_else(compare::criterion_output_dir);
    let comparison = compare::compare(&dir, &args.baseline, &args.against, args.threshold, args.strict)?;
    print!("{}", comparison.render(args.format));
    Ok(!comparison.failed())
}

fn generate(args: GenerateArgs) -> Result<()> {
    device::select(args.device.unwrap_or_else(device::default_kind))?;
    let dir = hub::resolve(&args.model)?;
    let loaded = models::load(&dir).with_context(|| format!("loading {}", dir.display()))?;
    let tokenizer = Tokenizer::from_dir(&dir)?;
    let prompt = match (&args.prompt, args.prompt_tokens) {
        (_, Some(n)) => build_prompts(&tokenizer, PromptKind::Text, n as usize, 1, args.seed)?,
        (Some(text), None) => Tokens::single(tokenizer.encode(text)?).context("the prompt has no tokens")?,
        (None, None) => unreachable!("clap requires one of them"),
    };
    let prompt_ids = prompt.row(0).to_vec();
    let sampling = if args.temp == 0.0 {
        Sampling::Greedy
    } else {
        Sampling::Random { temperature: args.temp, top_p: args.top_p, seed: args.seed }
    };
    let options = GenerateOptions {
        max_tokens: args.max_tokens as usize,
        sampling,
        kv: args.kv.options(args.kv_bits.0),
        prefill_step_size: args.prefill_step_size as usize,
        stop_tokens: if args.stop_at_eos { loaded.config.eos_token_ids() } else { Vec::new() },
    };
    if args.verbose {
        warn_debug_build();
    }
    for _ in 0..args.warmup {
        run_trial(loaded.model.as_ref(), &prompt, 0, &options)?;
    }
    let trial = run_trial(loaded.model.as_ref(), &prompt, 0, &options)?;
    let generated: Vec<u32> = trial.generated.iter().map(|step| step[0]).collect();
    if args.verbose {
        let m = &trial.metrics;
        eprintln!(
            "prompt: {} tokens, time to first token {:.2} ms\ngeneration: {} tokens, {:.2} tokens/s (after the first)\npeak memory: {:.3} GB",
            prompt_ids.len(),
            m.ttft_ms,
            generated.len(),
            m.generation_tps.unwrap_or(f64::NAN),
            gigabytes(m.memory.peak_memory_bytes as f64)
        );
    }
    if args.json {
        let out = serde_json::json!({ "prompt_ids": prompt_ids, "generated_ids": generated });
        println!("{out}");
    } else {
        println!("{}", tokenizer.decode(&generated)?);
    }
    Ok(())
}

fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            if !cli::run::run(*args)? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Compare(args) => {
            if !run_compare(&args)? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Synth(args) => cli::synth::run(args)?,
        Command::Hwinfo { json } => {
            let info = mlxbench::hwinfo::detect();
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("{}", info.summary());
            }
        }
        Command::Generate(args) => generate(args)?,
        Command::Info { device, json } => {
            let info = device::select(device.unwrap_or_else(device::default_kind))?;
            let memory = device::memory_snapshot()?;
            if json {
                let value = serde_json::json!({ "device": info, "memory": memory });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!(
                    "mlx_version={} backend={} device={} gpu_backend={} active_bytes={} cache_bytes={} peak_bytes={}",
                    info.mlx_version,
                    info.backend,
                    info.device,
                    device::gpu_backend().map_or("none".to_string(), |b| b.to_string()),
                    memory.active_bytes,
                    memory.cache_bytes,
                    memory.peak_bytes
                );
            }
        }
        Command::Selftest { device, size, repeats } => {
            warn_debug_build();
            let info = device::select(device.unwrap_or_else(device::default_kind))?;
            let size = size.unwrap_or(match info.device {
                DeviceKind::Gpu => 4096,
                DeviceKind::Cpu => 256,
            });
            println!("mlx_version={} backend={} device={}", info.mlx_version, info.backend, info.device);
            let checks = mlxbench::selftest::run(size, repeats as usize)?;
            let mut failed = false;
            for c in &checks {
                failed |= !c.passed();
                println!(
                    "{:<12} {}x{}x{}  rel_err={:.2e} (tol {:.0e}) {}  median={:.3} ms  {:.2} TFLOP/s",
                    c.name,
                    c.m,
                    c.n,
                    c.k,
                    c.relative_error,
                    c.tolerance,
                    if c.passed() { "ok" } else { "FAILED" },
                    c.median_seconds * 1e3,
                    c.tflops
                );
            }
            let peak = device::memory_snapshot()?.peak_bytes;
            println!("peak_memory_bytes={peak}");
            if failed {
                anyhow::bail!("a kernel's result is outside its tolerance");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
