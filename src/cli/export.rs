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
Values are medians; Bencher's lower/upper values and the action's range are the median's 95% \
bootstrap interval where the run has one, else the samples' range. Benchmarks of `run` results \
are named <model>/<engine>/kv<bits>/p<N>/g<N>/b<B>/d<D>, as in `mlxbench compare --interleave`.")]
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
    let text = export::render(&measurements, args.format)?;
    match &args.output {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write the export to {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(true)
}
