//! Our sidecar to Criterion's files: the peak memory of each sample of a benchmark, written by the
//! bench targets into the same baseline folders as Criterion's `sample.json`.
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::criterion::{baseline_dir, load_json, saved_baselines};
use super::CompareError;

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
    /// Size of the KV cache at the end of the benchmark, in bytes.
    pub cache_bytes: u64,
    /// The MLX version that ran it (`mlx_rs` reports it at run time).
    pub mlx_version: String,
    /// `cpu`, `cuda` or `metal`.
    pub backend: String,
}

impl MemoryRecord {
    /// Writes the record as `baseline_dir/mlxbench-memory.json`, creating the folder if needed.
    /// The file is written under a temporary name and renamed, so a reader never sees half of it.
    pub fn write(&self, baseline_dir: &Path) -> Result<(), CompareError> {
        let path = baseline_dir.join(MEMORY_FILE);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CompareError::Io { path, source }
        };
        std::fs::create_dir_all(baseline_dir).map_err(io(baseline_dir))?;
        let tmp = baseline_dir.join(format!(".{MEMORY_FILE}.{}.tmp", std::process::id()));
        let json = serde_json::to_vec_pretty(self).map_err(|source| CompareError::Json { path: path.clone(), source })?;
        let written = std::fs::File::create(&tmp)
            .and_then(|mut file| {
                file.write_all(&json)?;
                file.sync_all()
            })
            .map_err(io(&tmp))
            .and_then(|()| std::fs::rename(&tmp, &path).map_err(io(&path)));
        if written.is_err() {
            // Best effort: the error above is the one worth reporting.
            let _ = std::fs::remove_file(&tmp);
        }
        written
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
    /// [`saved_baselines`](super::criterion::saved_baselines)), under `criterion_dir/benchmark_dir`.
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
        for baseline in saved_baselines(args) {
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
