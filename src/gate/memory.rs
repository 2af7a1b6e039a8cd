//! Our sidecar to Criterion's files: the peak memory of each sample of a benchmark, written by the
//! bench targets into the same baseline folders as Criterion's `sample.json`, and the page that
//! shows it beside Criterion's HTML report.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::criterion::{baseline_dir, load_json, CriterionArgs, NEW_BASELINE};
use super::CompareError;
use crate::{report::write_atomically, units::human_bytes};

/// Name of the sidecar file in a baseline folder.
pub const MEMORY_FILE: &str = "mlxbench-memory.json";

/// `mlxbench-memory.json`: what MLX's memory counters said during one benchmark's samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryRecord {
    /// Criterion's id of the benchmark (its `benchmark.json` `full_id`), checked when comparing.
    pub full_id: String,
    /// MLX's peak memory of each sample, in bytes, with the peak reset before each sample. With
    /// `iter_custom`, Criterion calls the closure once per sample, in order, after its warm-up
    /// calls: the last `sample_size` calls are the samples (not in `--quick` mode).
    pub peak_memory_bytes: Vec<u64>,
    /// Size of the KV cache at the end of the benchmark, in bytes (`cache_bytes` in files
    /// written before this name said what it is).
    #[serde(alias = "cache_bytes")]
    pub kv_cache_bytes: u64,
    /// The MLX version that ran it (`mlx_rs` reports it at run time).
    pub mlx_version: String,
    /// The MLX wheel's platform tag the bench was built against (`device::BUILT_MLX_BUILD`);
    /// `unknown` in files written before builds were recorded.
    #[serde(default = "crate::bench::record::unknown_mlx_build")]
    pub mlx_build: String,
    /// `cpu`, `cuda` or `metal`.
    pub backend: String,
}

impl MemoryRecord {
    /// Writes the record as `baseline_dir/mlxbench-memory.json`, creating the folder if needed.
    /// The file is written under a temporary name and renamed, so a reader never sees half of it.
    pub fn write(&self, baseline_dir: &Path) -> Result<(), CompareError> {
        let path = baseline_dir.join(MEMORY_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|source| CompareError::Json { path: path.clone(), source })?;
        Ok(write_atomically(&path, json)?)
    }

    /// Reads `baseline_dir/mlxbench-memory.json`: `Ok(None)` when there is no such file, an error
    /// naming the file when it is unreadable, not this JSON shape, or has no samples.
    pub fn read(baseline_dir: &Path) -> Result<Option<Self>, CompareError> {
        let path = baseline_dir.join(MEMORY_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let record: Self = load_json(&path)?;
        if record.peak_memory_bytes.is_empty() {
            return Err(CompareError::InvalidData { path, detail: "no peak_memory_bytes samples".to_owned() });
        }
        Ok(Some(record))
    }

    /// Writes the record into every baseline folder that Criterion writes for a bench binary run
    /// with `args` (its command line without the program name; see
    /// [`CriterionArgs::saved_baselines`]), under `criterion_dir/benchmark_dir`.
    /// Returns the folders written, none under `cargo test --benches`, `--discard-baseline`, etc.
    ///
    /// Call it after `bench_function` has returned: Criterion has then written and copied its own
    /// files, and only copies those four, never ours, from `new` to the saved baseline.
    pub fn write_for_run<I, S>(&self, criterion_dir: &Path, benchmark_dir: &Path, args: I) -> Result<Vec<PathBuf>, CompareError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if std::env::var_os("CARGO_CRITERION_PORT").is_some() {
            return Ok(Vec::new());
        }
        let mut written = Vec::new();
        for baseline in CriterionArgs::parse(args).saved_baselines() {
            let dir = baseline_dir(criterion_dir, benchmark_dir, &baseline);
            self.write(&dir)?;
            written.push(dir);
        }
        Ok(written)
    }
}

/// Every memory record of `baseline` under `criterion_dir`, ordered by benchmark folder.
pub fn memory_records(criterion_dir: &Path, baseline: &str) -> Result<Vec<MemoryRecord>, CompareError> {
    let mut records = Vec::new();
    for folder in super::criterion::baseline_folders(criterion_dir)? {
        if folder.name == baseline {
            records.extend(MemoryRecord::read(&folder.path)?);
        }
    }
    Ok(records)
}

/// An HTML page of the peak memory of every benchmark of Criterion's latest run (`new`). Changes
/// against a saved baseline are `mlxbench compare`'s job: after a plain `cargo bench` Criterion's
/// `base` already holds this same run.
pub fn memory_page(criterion_dir: &Path) -> Result<String, CompareError> {
    let records = memory_records(criterion_dir, NEW_BASELINE)?;
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut rows = String::new();
    for record in &records {
        let mut peaks = record.peak_memory_bytes.clone();
        peaks.sort_unstable();
        let (Some(&min), Some(&max)) = (peaks.first(), peaks.last()) else { continue };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{} – {}</td><td>{}</td><td>{}</td><td>{} {} ({})</td></tr>\n",
            escape(&record.full_id),
            human_bytes(peaks[peaks.len() / 2]),
            human_bytes(min),
            human_bytes(max),
            peaks.len(),
            human_bytes(record.kv_cache_bytes),
            escape(&record.backend),
            escape(&record.mlx_version),
            escape(&record.mlx_build),
        ));
    }
    Ok(format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>mlxbench: peak memory</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}</style>\n\
         </head><body><h1>Peak memory per benchmark</h1>\n\
         <p>MLX's peak allocated memory during each sample of the latest run (the counter reset before \
         each), in decimal units. Compare with a saved baseline: <code>mlxbench compare --baseline NAME</code>. \
         <a href=\"../report/index.html\">Back to Criterion's report</a>.</p>\n\
         <table><tr><th>benchmark</th><th>peak (median)</th><th>range</th><th>samples</th><th>KV cache</th><th>MLX</th></tr>\n{rows}</table>\n\
         </body></html>\n"
    ))
}

/// Where the memory page goes, relative to the criterion directory.
pub const MEMORY_PAGE: &str = "mlxbench/memory.html";
/// The link added to Criterion's report index.
const MEMORY_LINK: &str = "<p><a href=\"../mlxbench/memory.html\">Peak memory of every benchmark (mlxbench)</a></p>";

/// Writes the memory page and links it from `report/index.html` (once).
pub fn write_memory_page(criterion_dir: &Path) -> Result<(), CompareError> {
    let page = memory_page(criterion_dir)?;
    write_atomically(&criterion_dir.join(MEMORY_PAGE), &page)?;
    let index = criterion_dir.join("report/index.html");
    if let Ok(html) = std::fs::read_to_string(&index) {
        if !html.contains(MEMORY_LINK) {
            if let Some(at) = html.find("<body>").map(|i| i + "<body>".len()) {
                let linked = format!("{}\n{MEMORY_LINK}{}", &html[..at], &html[at..]);
                write_atomically(&index, &linked)?;
            }
        }
    }
    Ok(())
}
