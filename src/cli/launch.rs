//! `mlxbench launch`: N local ranks of `mlxbench run` or `generate` joined by MLX's ring backend
//! on 127.0.0.1, as `mlx.launch --backend ring` would start them; every rank stopped on exit,
//! error or Ctrl-C.
use std::{
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use clap::Args;
use mlxbench::{
    bench::group_speedups,
    distributed::launch::{local_hostfile, local_nccl, read_hostfile, Outcome, Ranks, Rendezvous},
    process::signal_all,
    report::{ratio_table, read::read_records},
};

#[derive(Debug, Args)]
#[command(after_help = "Example: mlxbench launch -n 2 -- run --model ./my-model -p 512 -n 128\n\n\
Each rank loads its tensor-parallel share of the model; rank 0 alone prints and writes results. \
On several machines, start mlxbench with mlx.launch (--backend ring, nccl or jaccl) or mpirun \
instead: `run --distributed auto` joins the group they describe.")]
pub struct LaunchArgs {
    /// Ranks to start on this machine.
    #[arg(short = 'n', long = "ranks", value_parser = clap::value_parser!(u64).range(1..=64))]
    ranks: u64,
    /// How the ranks talk: MLX's ring over TCP on 127.0.0.1 (CPUs, Macs), or NCCL with one
    /// NVIDIA GPU per rank (CUDA_VISIBLE_DEVICES = the rank).
    #[arg(long, default_value = "ring", value_parser = ["ring", "nccl"])]
    backend: String,
    /// A ring hostfile (JSON: one list of "ip:port" per rank, as mlx.launch writes) instead of
    /// free ports on 127.0.0.1. The ranks still all start here.
    #[arg(long, conflicts_with = "backend")]
    hostfile: Option<PathBuf>,
    /// Seconds the other ranks get to end on their own after one fails, and again after SIGTERM.
    #[arg(long, default_value_t = 5.0)]
    grace: f64,
    /// First run the command once alone (one process, `--distributed none`), then the group, and
    /// print the group's speed-up over it per setting (ratios of medians: decode, prefill, TTFT,
    /// rank 0's peak memory). Needs `run` with `-o` naming a .json or .jsonl results file, which
    /// both append to.
    #[arg(long)]
    speedup: bool,
    /// Log the ring's connections (MLX_RING_VERBOSE=1) or NCCL's (NCCL_DEBUG=INFO), and every
    /// rank's stderr (prefixed).
    #[arg(long)]
    verbose: bool,
    /// The mlxbench subcommand each rank runs, after `--`: run or generate, with its options.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// The first Ctrl-C reaches every rank as their own (each stops after its trial under way); a
/// second one kills them.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The results file a `run` command writes (`-o`/`--output`), which `--speedup` reads back: it
/// must be JSON or JSON lines, whose records keep the group they were measured by.
fn speedup_results(command: &[String]) -> Result<PathBuf> {
    if command[0] != "run" {
        bail!("--speedup compares `run` results; the command is {:?}", command[0]);
    }
    if command.iter().any(|a| a == "--distributed" || a.starts_with("--distributed=")) {
        bail!("--speedup runs the command alone with --distributed none and then as a group: leave --distributed out");
    }
    let value = command.windows(2).find(|w| w[0] == "-o" || w[0] == "--output").map(|w| w[1].clone()).or_else(|| {
        command.iter().find_map(|a| a.strip_prefix("--output=").or_else(|| a.strip_prefix("-o").filter(|v| !v.is_empty())).map(String::from))
    });
    let Some(path) = value.map(PathBuf::from) else {
        bail!("--speedup reads the results back: give the run `-o results.json` (or .jsonl)");
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("json" | "jsonl") => Ok(path),
        _ => bail!("--speedup needs JSON or JSON lines results (they keep each record's group), not {}", path.display()),
    }
}

/// Starts the ranks and waits for them; `Ok(false)` when the command reported a failure.
pub fn run(args: &LaunchArgs) -> Result<bool> {
    let subcommand = args.command[0].as_str();
    if !["run", "generate"].contains(&subcommand) {
        bail!("launch starts `mlxbench run` or `mlxbench generate` on each rank, not {subcommand:?}");
    }
    if !(0.0..=3600.0).contains(&args.grace) {
        bail!("--grace must be between 0 and 3600 seconds, not {}", args.grace);
    }
    let ranks = args.ranks as usize;
    let rendezvous = match (&args.hostfile, args.backend.as_str()) {
        (Some(path), _) => Rendezvous::Ring(read_hostfile(path, ranks)?),
        (None, "nccl") => local_nccl(ranks)?,
        (None, _) => Rendezvous::Ring(local_hostfile(ranks)?),
    };
    let speedup_file = args.speedup.then(|| speedup_results(&args.command)).transpose()?;
    let program = std::env::current_exe().context("finding the mlxbench executable to start")?;
    let installed = ctrlc::set_handler(|| match INTERRUPTED.swap(true, Ordering::SeqCst) {
        false => signal_all(libc::SIGINT),
        true => signal_all(libc::SIGKILL),
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will not reach the ranks: {e}");
    }
    let records_in = |path: &std::path::Path| -> Result<usize> {
        Ok(if path.exists() { read_records(path)?.len() } else { 0 })
    };
    let mut alone_records = 0..0;
    if let Some(path) = &speedup_file {
        let before = records_in(path)?;
        eprintln!("launch: first one process alone (--speedup)");
        let status = std::process::Command::new(&program)
            .args(&args.command)
            .args(["--distributed", "none"])
            .status()
            .context("starting the run alone")?;
        if INTERRUPTED.load(Ordering::SeqCst) {
            eprintln!("stopped (Ctrl-C) during the run alone");
            std::process::exit(130);
        }
        if status.code().is_none_or(|c| c > 1) {
            bail!("the run alone failed ({status}); not starting the group");
        }
        alone_records = before..records_in(path)?;
    }
    let mut started = Ranks::start(&program, &args.command, &rendezvous, args.verbose)?;
    let pids: Vec<String> = started.pids().iter().map(u32::to_string).collect();
    eprintln!("launch: {ranks} ranks, {}; pids {}", rendezvous.describe(), pids.join(" "));
    let outcome = started.wait(Duration::from_secs_f64(args.grace))?;
    if INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("stopped (Ctrl-C): every rank has ended ({outcome:?})");
        std::process::exit(130);
    }
    if let (Some(path), Outcome::Succeeded | Outcome::Verdict(1)) = (&speedup_file, &outcome) {
        let records = read_records(path)?;
        let alone = &records[alone_records.clone()];
        let group = &records[alone_records.end.min(records.len())..];
        print!(
            "{}",
            ratio_table(
                &format!("{ranks} ranks ÷ one process (ratio of medians, 95% bootstrap interval; peak memory is rank 0's)"),
                &group_speedups(group, alone)
            )
        );
    }
    match outcome {
        Outcome::Succeeded => Ok(true),
        Outcome::Verdict(1) => Ok(false),
        Outcome::Verdict(code) => std::process::exit(code),
        Outcome::RankFailed { rank, status } => {
            let tail = started.stderr_tail(rank);
            let said = match tail.is_empty() {
                true => String::new(),
                false => format!("; its last words:\n  {}", tail.join("\n  ")),
            };
            bail!("rank {rank} of {ranks} failed ({status}); stopped the other ranks{said}")
        }
    }
}
