//! `mlxbench compare`: the regression gate over two Criterion baselines (`mlxbench::gate`).
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use mlxbench::{
    gate,
    report::{Format, Printable},
};

use super::choice_of;

/// The formats the gate prints.
const FORMATS: &[Format] = &[Format::Table, Format::Json, Format::Md];

#[derive(Debug, Args)]
#[command(after_long_help = "Typical CI use: on main, `cargo bench -- --save-baseline main`; on a pull request, \
`cargo bench` then `mlxbench compare --baseline main`.\n\n\
A metric regresses when the whole 95% bootstrap interval of its change (time; tokens/s is the \
same event) or the whole range of its change (peak memory) lies above +threshold: worse by more \
than the threshold, with confidence.")]
pub struct CompareArgs {
    /// The saved baseline to compare against (`cargo bench -- --save-baseline NAME`).
    #[arg(long)]
    baseline: String,
    /// The run to check: Criterion's latest (`new`) or another saved baseline.
    #[arg(long, default_value = gate::DEFAULT_AGAINST)]
    against: String,
    /// Regression threshold in percent.
    #[arg(long, default_value_t = gate::DEFAULT_THRESHOLD_PCT)]
    threshold: f64,
    /// Criterion's output directory (default: as Criterion finds it, e.g. target/criterion).
    #[arg(long)]
    criterion_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_parser = choice_of(FORMATS), default_value_t = Format::Table)]
    format: Format,
    /// Also fail when a benchmark of the baseline is missing from the compared run.
    #[arg(long)]
    strict: bool,
}

/// Runs the gate; `Ok(false)` when it fails.
pub fn run(args: &CompareArgs) -> Result<bool> {
    let dir = args.criterion_dir.clone().unwrap_or_else(gate::criterion_output_dir);
    let comparison = gate::compare(&dir, &args.baseline, &args.against, args.threshold, args.strict)?;
    print!("{}", comparison.render(args.format)?);
    Ok(!comparison.failed())
}

