//! What Criterion 0.5 leaves on disk, read back: its JSON shapes, its directory naming, which
//! baseline folders a `cargo bench` invocation writes, and a walk over its output tree.
//!
//! Checked against criterion 0.5.1 (`report.rs`, `fs.rs`, `analysis/mod.rs`, `lib.rs`). For each
//! benchmark id Criterion keeps `<criterion dir>/<group>/<function>/<value>/` (the parts it has,
//! each made filename-safe) and in it one folder per baseline: `new` (the latest run), `base` and
//! named ones. Each baseline folder holds `benchmark.json`, `estimates.json`, `sample.json` and
//! `tukey.json`. Ids are read from `benchmark.json`, never derived from paths: the path loses
//! characters and Criterion appends `_2`, `_3` to names that collide.
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::CompareError;

/// File Criterion writes into each baseline folder to name the benchmark.
pub const BENCHMARK_FILE: &str = "benchmark.json";
/// File Criterion writes into each baseline folder with the raw samples.
pub const SAMPLE_FILE: &str = "sample.json";
/// The baseline folder Criterion writes on every measured run.
pub const NEW_BASELINE: &str = "new";
/// The baseline Criterion saves to when no `--save-baseline` is given.
pub const DEFAULT_SAVED_BASELINE: &str = "base";

/// Criterion's limit on each path component (bytes, cut at a character boundary).
const MAX_DIRECTORY_NAME_LEN: usize = 64;

/// `Throughput` as Criterion serializes it (externally tagged: `{"Elements": 128}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Throughput {
    Bytes(u64),
    BytesDecimal(u64),
    Elements(u64),
}

/// `benchmark.json`: Criterion's `BenchmarkId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchmarkRecord {
    pub group_id: String,
    pub function_id: Option<String>,
    pub value_str: Option<String>,
    pub throughput: Option<Throughput>,
    pub full_id: String,
    pub directory_name: String,
    pub title: String,
}

impl BenchmarkRecord {
    /// Elements (our tokens) processed per iteration, when the bench declared them.
    pub fn elements(&self) -> Option<u64> {
        match self.throughput {
            Some(Throughput::Elements(n)) => Some(n),
            _ => None,
        }
    }
}

/// `sample.json`: per sample, the iteration count and the total time of those iterations (ns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSample {
    /// `"Linear"` or `"Flat"` (Criterion resolves `Auto` before saving).
    pub sampling_mode: String,
    pub iters: Vec<f64>,
    pub times: Vec<f64>,
}

impl SavedSample {
    /// Nanoseconds per iteration of each sample (`times[i] / iters[i]`).
    pub fn per_iteration_ns(&self) -> Vec<f64> {
        self.iters.iter().zip(&self.times).map(|(iters, time)| time / iters).collect()
    }

    /// Checks what the statistics rely on: equal lengths, at least one sample, positive finite
    /// numbers. `path` names the file in the error.
    fn validate(&self, path: &Path) -> Result<(), CompareError> {
        let invalid = |detail: String| CompareError::InvalidData { path: path.to_owned(), detail };
        if self.iters.len() != self.times.len() {
            return Err(invalid(format!("{} iteration counts but {} times", self.iters.len(), self.times.len())));
        }
        if self.iters.is_empty() {
            return Err(invalid("no samples".to_owned()));
        }
        let bad = |x: &f64| !(x.is_finite() && *x > 0.0);
        if let Some(i) = self.iters.iter().position(bad) {
            return Err(invalid(format!("iteration count {} of sample {i} is not positive", self.iters[i])));
        }
        if let Some(i) = self.times.iter().position(bad) {
            return Err(invalid(format!("time {} of sample {i} is not positive", self.times[i])));
        }
        Ok(())
    }
}

/// Criterion 0.5's `make_filename_safe`: replaces `? " / \ * < > : | ^` with `_` and cuts the
/// name to 64 bytes (on Windows it also trims trailing spaces and lowercases).
pub fn make_filename_safe(name: &str) -> String {
    let mut safe = name.replace(['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'], "_");
    let mut end = safe.len().min(MAX_DIRECTORY_NAME_LEN);
    while !safe.is_char_boundary(end) {
        end -= 1;
    }
    safe.truncate(end);
    if cfg!(target_os = "windows") {
        safe = safe.trim_end().to_lowercase();
    }
    safe
}

/// The folder (relative to the criterion directory) where Criterion 0.5 keeps the baselines of
/// the benchmark with these group, function and value ids: `BenchmarkGroup::bench_function(f)`
/// has `function = Some(f)`, `value = None`; `BenchmarkId::new(f, v)` has both;
/// `BenchmarkId::from_parameter(v)` has only `value`.
///
/// This is Criterion's own rule, except that when two ids of one run map to the same folder
/// Criterion appends `_2`, `_3`, ... to the later one; [`find_benchmark_dir`] finds the folder
/// from the id instead and is exact.
pub fn criterion_dir_for(group: &str, function: Option<&str>, value: Option<&str>) -> PathBuf {
    let mut dir = PathBuf::from(make_filename_safe(group));
    for part in [function, value].into_iter().flatten() {
        dir.push(make_filename_safe(part));
    }
    dir
}

/// A baseline folder of one benchmark: `criterion_dir/benchmark_dir/baseline`, where
/// `benchmark_dir` is relative to `criterion_dir` (as [`criterion_dir_for`] returns it) or
/// absolute (as [`find_benchmark_dir`] returns it).
pub fn baseline_dir(criterion_dir: &Path, benchmark_dir: &Path, baseline: &str) -> PathBuf {
    criterion_dir.join(benchmark_dir).join(baseline)
}

/// The directory Criterion 0.5 writes to, found as Criterion finds it: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else (when run by cargo, which sets `$CARGO`) the target
/// directory from `cargo metadata` plus `criterion`, else `target/criterion`.
pub fn criterion_output_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    cargo_metadata_target_dir()
        .map(|target| target.join("criterion"))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

fn cargo_metadata_target_dir() -> Option<PathBuf> {
    #[derive(Deserialize)]
    struct Metadata {
        target_directory: PathBuf,
    }
    let cargo = std::env::var_os("CARGO")?;
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()?;
    let metadata: Metadata = serde_json::from_slice(&output.stdout).ok()?;
    Some(metadata.target_directory)
}

/// Criterion 0.5's options that take a value (so the value is not taken for the filter).
const TAKES_VALUE: &[&str] = &[
    "--save-baseline",
    "-s",
    "--baseline",
    "-b",
    "--baseline-lenient",
    "--load-baseline",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--profile-time",
    "--output-format",
    "--color",
    "-c",
    "--format",
    "--plotting-backend",
    "--logfile",
];

/// A Criterion 0.5 bench binary's command line (without the program name), read with
/// Criterion's own rules: which benchmarks it selects and which baseline folders it writes. The
/// one reader of those arguments for the bench targets and the gate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CriterionArgs {
    args: Vec<String>,
    /// The benchmark filter (the first free argument), a regular expression.
    pub filter: Option<String>,
    /// `--exact`: the filter must equal the whole id.
    pub exact: bool,
    /// `--list`: print the ids instead of running them.
    pub list: bool,
}

impl CriterionArgs {
    pub fn parse<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let mut filter = None;
        let (mut exact, mut list) = (false, false);
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if arg == "--exact" {
                exact = true;
            } else if arg == "--list" {
                list = true;
            } else if TAKES_VALUE.contains(&arg.as_str()) {
                iter.next();
            } else if !arg.starts_with('-') && filter.is_none() {
                filter = Some(arg.clone());
            }
        }
        Self { args, filter, exact, list }
    }

    /// Whether Criterion will run `id` (the filter as a regex, else as text; `--exact`: the
    /// whole id).
    pub fn selects(&self, id: &str) -> bool {
        match self.filter.as_deref() {
            None => true,
            Some(f) if self.exact => f == id,
            Some(f) => match regex::Regex::new(f) {
                Ok(re) => re.is_match(id),
                Err(_) => id.contains(f),
            },
        }
    }

    /// The baseline folders this run writes:
    ///
    /// - `cargo bench` (arguments contain `--bench`): `new` and `base`;
    /// - `--save-baseline NAME` (`-s NAME`): `new` and `NAME`;
    /// - `--baseline NAME` or `--baseline-lenient NAME`: only `new` (NAME is read, not written);
    /// - `--discard-baseline`, `--load-baseline`, `--list`, `--test`, `--profile-time`, or no
    ///   `--bench` (as under `cargo test --benches`): nothing.
    ///
    /// Under cargo-criterion (`$CARGO_CRITERION_PORT` set) Criterion writes nothing either; the
    /// caller checks that, this only reads arguments.
    pub fn saved_baselines(&self) -> Vec<String> {
        let args = &self.args;
        let has = |flag: &str| args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        let measures = has("--bench") && !["--test", "--list", "--profile-time", "--load-baseline"].iter().any(|f| has(f));
        if !measures || has("--discard-baseline") {
            return Vec::new();
        }
        if has("--baseline") || has("--baseline-lenient") || option_value(args, "--baseline", 'b').is_some() {
            return vec![NEW_BASELINE.to_owned()];
        }
        let saved = option_value(args, "--save-baseline", 's').unwrap_or_else(|| DEFAULT_SAVED_BASELINE.to_owned());
        vec![NEW_BASELINE.to_owned(), saved]
    }
}

/// The baseline folders a Criterion 0.5 bench binary run with `args` writes (see
/// [`CriterionArgs::saved_baselines`]).
pub fn saved_baselines<I, S>(args: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    CriterionArgs::parse(args).saved_baselines()
}

/// The value of `--long VALUE`, `--long=VALUE`, `-s VALUE`, `-s=VALUE` or `-sVALUE` (clap's forms).
fn option_value(args: &[String], long: &str, short: char) -> Option<String> {
    let short = format!("-{short}");
    let mut value = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            break;
        }
        if *arg == long || *arg == short {
            value = args.get(i + 1).cloned();
            i += 1;
        } else if let Some(v) = arg.strip_prefix(long).and_then(|rest| rest.strip_prefix('=')) {
            value = Some(v.to_owned());
        } else if let Some(v) = arg.strip_prefix(&short).filter(|_| !arg.starts_with("--")) {
            value = Some(v.strip_prefix('=').unwrap_or(v).to_owned());
        }
        i += 1;
    }
    value
}

/// One baseline folder found in the tree.
#[derive(Debug, Clone)]
pub(crate) struct BaselineFolder {
    /// The folder's name: `new`, `base`, or a saved baseline's name.
    pub name: String,
    pub path: PathBuf,
}

/// Every folder under `root` that holds a `benchmark.json`, sorted by path.
pub(crate) fn baseline_folders(root: &Path) -> Result<Vec<BaselineFolder>, CompareError> {
    let mut found = Vec::new();
    visit(root, &mut found)?;
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

fn visit(dir: &Path, found: &mut Vec<BaselineFolder>) -> Result<(), CompareError> {
    let io = |source| CompareError::Io { path: dir.to_owned(), source };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        // Symbolic links are not followed: Criterion makes none, and a link could loop.
        if !entry.file_type().map_err(io)?.is_dir() {
            continue;
        }
        let path = entry.path();
        if path.join(BENCHMARK_FILE).is_file() {
            let name = path.file_name().unwrap_or(OsStr::new("")).to_string_lossy().into_owned();
            found.push(BaselineFolder { name, path: path.clone() });
        }
        visit(&path, found)?;
    }
    Ok(())
}

/// Number of benchmarks per baseline name, for error messages.
pub(crate) fn baseline_counts(folders: &[BaselineFolder]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for folder in folders {
        *counts.entry(folder.name.clone()).or_insert(0) += 1;
    }
    counts
}

/// The benchmark folder (absolute, the parent of its baseline folders) whose `new/benchmark.json`
/// has this `full_id`, or `None`. Meant for a bench target that has just run `full_id` and wants
/// to put its sidecar next to Criterion's files; exact where [`criterion_dir_for`] predicts.
pub fn find_benchmark_dir(criterion_dir: &Path, full_id: &str) -> Result<Option<PathBuf>, CompareError> {
    for folder in baseline_folders(criterion_dir)? {
        if folder.name != NEW_BASELINE {
            continue;
        }
        let record: BenchmarkRecord = load_json(&folder.path.join(BENCHMARK_FILE))?;
        if record.full_id == full_id {
            return Ok(folder.path.parent().map(Path::to_owned));
        }
    }
    Ok(None)
}

/// Reads and parses a JSON file; errors name the file.
pub(crate) fn load_json<T: DeserializeOwned>(path: &Path) -> Result<T, CompareError> {
    let text = std::fs::read_to_string(path).map_err(|source| CompareError::Io { path: path.to_owned(), source })?;
    serde_json::from_str(&text).map_err(|source| CompareError::Json { path: path.to_owned(), source })
}

/// Reads `sample.json` from a baseline folder and checks it.
pub(crate) fn load_sample(folder: &Path) -> Result<SavedSample, CompareError> {
    let path = folder.join(SAMPLE_FILE);
    let sample: SavedSample = load_json(&path)?;
    sample.validate(&path)?;
    Ok(sample)
}
