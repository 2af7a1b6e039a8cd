//! `mlxbench export`: the numbers of `run` results or of a Criterion baseline, in the JSON that
//! benchmark-tracking services ingest (`mlxbench::report::export`).
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mlxbench::{
    gate,
    report::{
        export::{self, ExportFormat},
        read::read_records,
    },
};

use super::choice;

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:\n  \
mlxbench export --format bmf results/run.json -o bmf.json        # then `bencher run --file bmf.json ...`\n  \
mlxbench export --format github-bigger results/run.csv -o bigger.json\n  \
mlxbench export --format github-smaller --baseline main -o smaller.json\n\n\
Values are medians, the numbers `run`'s table and `report` show (generation-tps: the robust decode \
rate); Bencher's lower/upper values and the action's range are the median's 95% interval where the \
run has 6 trials or more, else the trials' range. Benchmarks of `run` results are named \
<model>/<engine>/kv<bits>/p<N>/g<N>/b<B>/d<D>, as in `mlxbench compare --interleave`; when the \
results ran on more than one MLX build, each name ends in the MLX version (/mlx0.32.4; \
/mlx0.32.2-macosx_26_0_arm64 where one version has two builds). A configuration measured again by \
a later run of the results (a sweep appended twice) is exported under its name plus /run<N>, \
with a note on stderr: nothing is dropped or listed twice.")]
pub struct ExportArgs {
    /// The format: bmf (Bencher), github-bigger or github-smaller (github-action-benchmark's
    /// customBiggerIsBetter / customSmallerIsBetter).
    #[arg(long, value_parser = choice::<ExportFormat>())]
    format: ExportFormat,
    /// Results files of `mlxbench run` (.json, .jsonl or .csv), merged.
    #[arg(required_unless_present = "baseline", conflicts_with = "baseline")]
    results: Vec<PathBuf>,
    /// Instead of results files: a saved Criterion baseline (`cargo bench -- --save-baseline NAME`).
    #[arg(long)]
    baseline: Option<String>,
    /// Criterion's output directory, with --baseline (default: as Criterion finds it).
    #[arg(long, requires = "baseline")]
    criterion_dir: Option<PathBuf>,
    /// Write the export here instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(args: &ExportArgs) -> Result<bool> {
    let measurements = match &args.baseline {
        Some(name) => {
            let dir = args.criterion_dir.clone().unwrap_or_else(gate::criterion_output_dir);
            export::from_baseline(&gate::baseline_entries(&dir, name)?)
        }
        None => {
            let mut records = Vec::new();
            for path in &args.results {
                records.extend(read_records(path)?);
            }
            export::from_records(&records)
        }
    };
    let renamed = export::renamed_runs(&measurements);
    if !renamed.is_empty() {
        eprintln!(
            "note: {} configurations were measured again by a later run of these results; each later run is \
             exported apart, as {}",
            renamed.len(),
            renamed.join(", ")
        );
    }
    if let Some((benchmark, n)) = export::duplicate_benchmarks(&measurements).into_iter().next() {
        anyhow::bail!("{n} configurations would export as benchmark {benchmark}; refusing to drop or repeat one");
    }
    let text = export::render(&measurements, args.format)?;
    match &args.output {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write the export to {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(true)
}
