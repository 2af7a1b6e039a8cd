//! `mlxbench report`: one self-contained HTML page of charts and tables from results files
//! (`mlxbench::report::html`).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use mlxbench::report::{
    file::write_atomically,
    html::render_html,
    kv_choice::{kv_choices, kv_markdown, read_kv_file, with_kv_section, KvInputs},
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
point, the SLO search's answer, and throughput against TTFT p90 with the Pareto front.\n\n\
JSON results of `mlxbench quality` and `mlxbench capacity` may be given too: the page then gets, per \
model, a table and a figure of each KV setting's decode and prompt speed and peak memory at each \
context, KL divergence and top-1 agreement against the plain cache, and the longest context that fit \
(--kv-table prints that table as Markdown instead).")]
pub struct ReportArgs {
    /// Results files of `mlxbench run` (.csv, .json or .jsonl), merged in the order given, of
    /// `mlxbench quality` / `mlxbench capacity` (.json), or of `mlxbench serve` (.json, .jsonl).
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// The page to write (default: the first results file with the extension .html).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Print the KV-cache table of each model (speed, memory, quality, longest context) as
    /// Markdown on stdout instead of writing the page.
    #[arg(long)]
    kv_table: bool,
}

/// The report's path beside a results file.
pub fn beside(results: &Path) -> PathBuf {
    results.with_extension("html")
}

/// Writes the report of `results` to `output`.
pub fn write_report(results: &[PathBuf], output: &Path) -> Result<()> {
    // Serve results: a page of their own (all files must be serve's).
    let mut serve = Vec::new();
    let mut serve_sources = Vec::new();
    for path in results {
        if let Some(read) = read_serve_records(path)? {
            serve_sources.push((path.display().to_string(), read.len()));
            serve.extend(read);
        }
    }
    if !serve.is_empty() {
        if serve_sources.len() != results.len() {
            anyhow::bail!("results of `mlxbench serve` and of `mlxbench run` cannot share one report: give one kind");
        }
        let page = render_serve_html(&serve, &serve_sources)?;
        write_atomically(output, page).with_context(|| format!("cannot write the report to {}", output.display()))?;
        eprintln!("report: {}", output.display());
        return Ok(());
    }
    let (inputs, sources) = read_inputs(results)?;
    let page = match inputs.runs.is_empty() {
        true => None,
        false => Some(render_html(&inputs.runs, &sources)?),
    };
    let page = with_kv_section(page, &kv_choices(&inputs));
    if page.is_empty() {
        anyhow::bail!("no results to report");
    }
    write_atomically(output, page).with_context(|| format!("cannot write the report to {}", output.display()))?;
    eprintln!("report: {}", output.display());
    Ok(())
}

/// The records of every file: `run`'s, `quality`'s and `capacity`'s, and each `run` file's name
/// and record count.
fn read_inputs(results: &[PathBuf]) -> Result<(KvInputs, Vec<(String, usize)>)> {
    let mut inputs = KvInputs::default();
    let mut sources = Vec::new();
    for path in results {
        if let Some((quality, capacity)) = read_kv_file(path)? {
            inputs.quality.extend(quality);
            inputs.capacity.extend(capacity);
            continue;
        }
        let read = read_records(path)?;
        sources.push((path.display().to_string(), read.len()));
        inputs.runs.extend(read);
    }
    Ok((inputs, sources))
}

pub fn run(args: &ReportArgs) -> Result<bool> {
    if args.kv_table {
        let (inputs, _) = read_inputs(&args.results)?;
        print!("{}", kv_markdown(&kv_choices(&inputs)));
        return Ok(true);
    }
    let output = args.output.clone().unwrap_or_else(|| beside(&args.results[0]));
    write_report(&args.results, &output)?;
    Ok(true)
}
