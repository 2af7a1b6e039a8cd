//! `mlxbench report`: one self-contained HTML page of charts and tables from results files
//! (`mlxbench::report::html`).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use mlxbench::report::{
    file::write_atomically,
    html::render_html,
    read::{read_records, read_serve_records},
    serve_html::render_serve_html,
};

#[derive(Debug, Args)]
#[command(after_long_help = "Example: mlxbench report results/run-a.csv results/run-b.json -o report.html\n\n\
The page needs nothing else to be viewed (charts are inline SVG): open it in a browser, attach it \
to an issue, or keep it as a CI artifact. `mlxbench run --report` writes one beside its results file. \
It shows what `run`'s table shows (decode t/s: the robust rate's median with its interval), every \
statistic on demand, and charts; a configuration measured in two runs (a sweep appended twice) is \
shown once per run. Results of `mlxbench serve` (.json or .jsonl) get a page of their own: every \
point, the SLO search's answer, and throughput against TTFT p90 with the Pareto front.")]
pub struct ReportArgs {
    /// Results files of `mlxbench run` (.csv, .json or .jsonl), or of `mlxbench serve` (.json,
    /// .jsonl), merged in the order given.
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// The page to write (default: the first results file with the extension .html).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// The report's path beside a results file.
pub fn beside(results: &Path) -> PathBuf {
    results.with_extension("html")
}

/// Writes the report of `results` to `output`.
pub fn write_report(results: &[PathBuf], output: &Path) -> Result<()> {
    // Serve results: a page of their own (all files must be serve's).
    let mut serve = Vec::new();
    let mut sources = Vec::new();
    for path in results {
        if let Some(read) = read_serve_records(path)? {
            sources.push((path.display().to_string(), read.len()));
            serve.extend(read);
        }
    }
    if !serve.is_empty() {
        if sources.len() != results.len() {
            anyhow::bail!("results of `mlxbench serve` and of `mlxbench run` cannot share one report: give one kind");
        }
        let page = render_serve_html(&serve, &sources)?;
        write_atomically(output, page).with_context(|| format!("cannot write the report to {}", output.display()))?;
        eprintln!("report: {}", output.display());
        return Ok(());
    }
    let mut records = Vec::new();
    let mut sources = Vec::new();
    for path in results {
        let read = read_records(path)?;
        sources.push((path.display().to_string(), read.len()));
        records.extend(read);
    }
    let page = render_html(&records, &sources)?;
    write_atomically(output, page).with_context(|| format!("cannot write the report to {}", output.display()))?;
    eprintln!("report: {}", output.display());
    Ok(())
}

pub fn run(args: &ReportArgs) -> Result<bool> {
    let output = args.output.clone().unwrap_or_else(|| beside(&args.results[0]));
    write_report(&args.results, &output)?;
    Ok(true)
}
