//! `mlxbench compare`: the regression gate over two Criterion baselines, or over two builds run
//! in alternating blocks (`--interleave`; `mlxbench::gate`).
use std::{io::IsTerminal, path::PathBuf};

use anyhow::Result;
use clap::{ArgGroup, Args};
use indicatif::{ProgressBar, ProgressStyle};
use mlxbench::{
    gate::{
        self,
        interleave::{block_order, compare_blocks, run_block, BlockFailure, Build, DEFAULT_BLOCKS},
        Comparison,
    },
    report::{Format, Printable},
};

use super::{choice_of, record_line};

/// The formats the gate prints.
const FORMATS: &[Format] = &[Format::Table, Format::Json, Format::Md];

#[derive(Debug, Args)]
#[command(after_long_help = "Typical CI use: on main, `cargo bench -- --save-baseline main`; on a pull request, \
`cargo bench` then `mlxbench compare --baseline main`.\n\n\
A metric regresses when the whole 95% bootstrap interval of its change (time; tokens/s is the \
same event) or the whole range of its change (peak memory) lies above +threshold: worse by more \
than the threshold, with confidence.\n\n\
On a machine whose speed drifts between runs (a shared GPU host), compare two builds in one job \
instead: `mlxbench compare --interleave OLD_BIN NEW_BIN -- --model M -p 512 -n 128` runs \
`OLD_BIN run ...` and `NEW_BIN run ...` in alternating blocks (old, new, new, old, ...) and judges \
each configuration's decode, prefill and TTFT times and peak memory on the blocks' medians.\n\n\
To ask whether an MLX release changed speed, pass two builds of mlxbench made against each \
(MLXBENCH_MLX_VERSION at build time, each in its own target or install root): configurations are \
matched by their settings, and the output says above its table which MLX each side ran.")]
#[command(group(ArgGroup::new("runs").required(true).args(["baseline", "interleave"])))]
pub struct CompareArgs {
    /// The saved baseline to compare against (`cargo bench -- --save-baseline NAME`).
    #[arg(long)]
    baseline: Option<String>,
    /// Instead of Criterion baselines: the old and the new mlxbench binary, run in alternating
    /// blocks with the `run` arguments given after `--`.
    #[arg(long, num_args = 2, value_names = ["OLD_BIN", "NEW_BIN"], conflicts_with_all = ["baseline", "against", "criterion_dir"])]
    interleave: Option<Vec<PathBuf>>,
    /// With --interleave: blocks per build.
    #[arg(long, default_value_t = DEFAULT_BLOCKS as u64, value_parser = clap::value_parser!(u64).range(2..=1000), requires = "interleave")]
    blocks: u64,
    /// With --interleave: the arguments of `mlxbench run` (after `--`).
    #[arg(last = true, requires = "interleave")]
    run_args: Vec<String>,
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
    #[arg(long, short, value_parser = choice_of(FORMATS), default_value_t = Format::Table)]
    format: Format,
    /// Also fail when a benchmark of the baseline is missing from the compared run.
    #[arg(long)]
    strict: bool,
}

/// Runs the gate; `Ok(false)` when it fails.
pub fn run(args: &CompareArgs) -> Result<bool> {
    let comparison = match (&args.interleave, &args.baseline) {
        (Some(bins), _) => match interleaved(&bins[0], &bins[1], args)? {
            Interleaved::Compared(comparison) => comparison,
            Interleaved::Stopped(failure) => {
                print_failure(&failure, args.format)?;
                return Ok(false);
            }
        },
        (None, Some(baseline)) => {
            let dir = args.criterion_dir.clone().unwrap_or_else(gate::criterion_output_dir);
            gate::compare(&dir, baseline, &args.against, args.threshold, args.strict)?
        }
        (None, None) => unreachable!("clap requires --baseline or --interleave"),
    };
    print!("{}", comparison.render(args.format)?);
    Ok(!comparison.failed())
}

/// The verdict of an interleaved run that stopped at a failed configuration: JSON
/// (`{"failed": ...}`) or a line of text.
fn print_failure(failure: &BlockFailure, format: Format) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "failed": failure }))?),
        _ => println!(
            "FAILED: {failure}\nstopped after that block: a configuration that does not run has no speed to compare \
             (fix it, or leave it out of the run's arguments)"
        ),
    }
    Ok(())
}

/// How an interleaved run ended: every block ran and the builds are compared, or a block had a
/// configuration that did not run.
enum Interleaved {
    Compared(Comparison),
    Stopped(BlockFailure),
}

/// Runs `old` and `new` in alternating blocks and compares them; stops at the first block with a
/// configuration that did not run, and returns it. On a terminal a bar shows the block under way;
/// elsewhere (CI logs) each block's configurations are printed as it ends, one line each.
fn interleaved(old: &PathBuf, new: &PathBuf, args: &CompareArgs) -> Result<Interleaved> {
    if args.run_args.is_empty() {
        anyhow::bail!("--interleave needs the arguments of `mlxbench run` after `--`, e.g. -- --model M -p 512 -n 128");
    }
    let order = block_order(args.blocks as usize);
    let lines = !std::io::stderr().is_terminal();
    let bar = ProgressBar::new(order.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} blocks {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut old_blocks, mut new_blocks) = (Vec::new(), Vec::new());
    for (index, &build) in order.iter().enumerate() {
        let (bin, blocks, name) = match build {
            Build::Old => (old, &mut old_blocks, "old"),
            Build::New => (new, &mut new_blocks, "new"),
        };
        bar.set_message(format!("{name}: {}", bin.display()));
        let records = run_block(bin, &args.run_args)?;
        if lines {
            for r in &records {
                eprintln!("block {}/{} ({name}) {}", index + 1, order.len(), record_line(r));
            }
        }
        if let Some(failure) = BlockFailure::of(&records, (name, bin), index + 1, order.len()) {
            bar.finish_and_clear();
            return Ok(Interleaved::Stopped(failure));
        }
        blocks.push(records);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut comparison = compare_blocks(&old_blocks, &new_blocks, ("old", "new"), args.threshold)?;
    comparison.notes.insert(0, format!("old = {}, new = {}", old.display(), new.display()));
    Ok(Interleaved::Compared(comparison))
}
