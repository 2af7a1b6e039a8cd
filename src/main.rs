//! The `mlxbench` command line: parses and dispatches; each subcommand lives in `cli/`.
mod cli;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use cli::{choice, TextOrJson};
use mlxbench::{device::DeviceKind, error::describe};

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
        #[arg(long, value_parser = choice::<DeviceKind>())]
        device: Option<DeviceKind>,
        /// Print key=value lines (text) or JSON.
        #[arg(long, short, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
        /// Same as --format json.
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
    /// Generate text from a prompt with a model (a local MLX-format directory or a Hugging Face
    /// repo id). Prints the text, or with --format json the prompt and generated token ids.
    Generate(Box<cli::generate::GenerateArgs>),
    /// Benchmark models: prompt (prefill) tokens/s, generation tokens/s, time to first token and
    /// peak memory, over a sweep of settings, with warmup, repeats and statistics. Prints a table
    /// and appends every trial to a results file.
    Run(Box<cli::run::RunArgs>),
    /// Find the longest context each KV-cache setting (and batch) fits in a memory budget (the
    /// device's, or --memory-limit): lengths run one by one in child processes, prefill plus a few
    /// decode steps, with the peak and its breakdown at the longest and the first failure.
    Capacity(Box<cli::capacity::CapacityArgs>),
    /// What a KV-cache setting (--kv-bits, --max-kv-size) costs in output quality against the
    /// plain cache: teacher-forced KL divergence, top-1 agreement and Δ perplexity at stated
    /// context depths, and repetition of greedy text, for mlxbench and/or mlx-lm.
    Quality(Box<cli::quality::QualityArgs>),
    /// Write a synthetic model: an MLX-format directory of a real shape (or any config.json)
    /// with seeded random weights, quantized or not, and a small tokenizer.
    Synth(cli::synth::SynthArgs),
    /// Show the machine: CPU, memory, GPUs (and on Macs the chip and its GPU cores).
    Hwinfo {
        /// Print one line (text) or JSON with every field.
        #[arg(long, short, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
        /// Same as --format json.
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
    /// Compare two Criterion baselines of the bench targets (time, with tokens/s, and peak
    /// memory). Exits non-zero when something got worse beyond the threshold with confidence.
    Compare(cli::compare::CompareArgs),
    /// Load-test OpenAI-compatible servers (mlx_lm.server, LM Studio, vLLM, llama-server, ...),
    /// given by URL or launched: closed-loop concurrency or open-loop request-rate sweeps, with
    /// TTFT, TPOT, ITL and E2E percentiles, throughput, goodput, errors and server memory.
    Serve(Box<cli::serve::ServeArgs>),
    /// Write one self-contained HTML page from results files: the context, a summary table and
    /// charts of tokens/s, TTFT and memory against the swept settings.
    Report(cli::report::ReportArgs),
    /// Export `run` results or a Criterion baseline for benchmark-tracking services: Bencher
    /// Metric Format, or github-action-benchmark's custom JSON.
    Export(cli::export::ExportArgs),
    /// Start N ranks of `run` or `generate` on this machine, tensor-parallel over MLX's ring
    /// backend on 127.0.0.1 (as mlx.launch does), and stop them all on exit, error or Ctrl-C.
    Launch(cli::launch::LaunchArgs),
    /// Check MLX on the device: a bf16 matmul and a 4-bit quantized matmul against float32
    /// references, with their speed. Exits non-zero when a result is off.
    Selftest {
        /// Device to run on (default: gpu when this MLX has one, else cpu).
        #[arg(long, value_parser = choice::<DeviceKind>())]
        device: Option<DeviceKind>,
        /// Side of the square matrices (default: 4096 on a GPU, 256 on the CPU).
        #[arg(long, value_parser = clap::value_parser!(i32).range(64..=32768))]
        size: Option<i32>,
        /// Timed repeats per kernel (the median is reported).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
        repeats: u64,
    },
}

/// Runs the command; `Ok(false)` when it ran and its verdict is a failure (a configuration that
/// failed, a regression).
fn dispatch(command: Command) -> Result<bool> {
    Ok(match command {
        Command::Run(args) => cli::run::run(*args)?,
        Command::Capacity(args) => cli::capacity::run(*args)?,
        Command::Quality(args) => cli::quality::run(*args)?,
        Command::Compare(args) => cli::compare::run(&args)?,
        Command::Export(args) => cli::export::run(&args)?,
        Command::Launch(args) => cli::launch::run(&args)?,
        Command::Report(args) => cli::report::run(&args)?,
        Command::Serve(args) => cli::serve::run(*args)?,
        Command::Synth(args) => cli::synth::run(args).map(|()| true)?,
        Command::Hwinfo { format, json } => cli::info::hwinfo(format.or_json(json)).map(|()| true)?,
        Command::Generate(args) => cli::generate::run(*args).map(|()| true)?,
        Command::Info { device, format, json } => cli::info::info(device, format.or_json(json)).map(|()| true)?,
        Command::Selftest { device, size, repeats } => cli::info::selftest(device, size, repeats).map(|()| true)?,
    })
}

/// Errors are printed here, one line with each cause once, and never with anyhow's backtrace
/// (which `RUST_BACKTRACE=1` would add): what failed is the user's to fix, not a bug's stack.
/// A bug panics, and a panic keeps its backtrace.
fn main() -> ExitCode {
    match dispatch(Cli::parse().command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {}", describe(e.chain().map(|cause| cause as &(dyn std::error::Error + 'static))));
            ExitCode::FAILURE
        }
    }
}
