//! What the Criterion bench targets bench and how they name it: configuration from environment
//! variables and `mlxbench.toml`, benchmark ids, Criterion's name filter, and the peak-memory
//! page linked from Criterion's HTML report. No Criterion types here (it is a dev-dependency);
//! `benches/common` holds the glue.
use std::path::Path;

use serde::Deserialize;

use crate::{
    compare,
    device::DeviceKind,
    error::{Error, Result},
    metrics::human_bytes,
    sweep::{kv_label, parse_kv_bits},
    synth::FloatDtype,
};

/// The phases the bench targets time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Prompt processing: `p<N>` prompt tokens into an empty cache, cache evaluated.
    Prefill,
    /// Generation: `g<N>` tokens after the first, with `d<D>` prompt tokens in the cache.
    Decode,
    /// Time to first token: a `p<N>`-token prompt on the device -> first token on the host.
    Ttft,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prefill => "prefill",
            Phase::Decode => "decode",
            Phase::Ttft => "ttft",
        }
    }
}

/// The part of a benchmark id after the group (`<model>/kv<bits>/p<N>` or `.../g<N>@d<D>`).
pub fn function_id(phase: Phase, model: &str, kv_bits: Option<i32>, prompt_tokens: usize, gen_tokens: usize) -> String {
    let kv = kv_label(kv_bits);
    match phase {
        Phase::Prefill | Phase::Ttft => format!("{model}/{kv}/p{prompt_tokens}"),
        Phase::Decode => format!("{model}/{kv}/g{gen_tokens}@d{prompt_tokens}"),
    }
}

/// The full id Criterion shows and filters on: `<phase>/<function id>`.
pub fn benchmark_id(phase: Phase, model: &str, kv_bits: Option<i32>, prompt_tokens: usize, gen_tokens: usize) -> String {
    format!("{}/{}", phase.name(), function_id(phase, model, kv_bits, prompt_tokens, gen_tokens))
}

/// A short name for a model spec: a directory's last component, a repo id's name.
pub fn model_label(spec: &str) -> String {
    let trimmed = spec.trim_end_matches(['/', '\\']);
    trimmed.rsplit(['/', '\\']).next().unwrap_or(trimmed).to_string()
}

/// The synthetic models benched when no model is configured, for a device: the `tiny` Llama
/// preset in 4-bit and unquantized (name, bits, dtype). On a GPU both are float16. On the CPU
/// they are float32: MLX's CPU kernels for float16 are slow (a 4-bit 128-token prefill took 3.3 s
/// with float16 scales against 0.08 s with float32) and erratic (the float16 model's prefill moved
/// by up to 30% between unchanged runs here, the float32-scaled 4-bit one by under 10%), which
/// would make `cargo bench` crawl and the regression gate cry wolf.
pub fn default_synthetic(device: DeviceKind) -> [(&'static str, Option<i32>, FloatDtype); 2] {
    match device {
        DeviceKind::Gpu => [("tiny-llama-q4-f16", Some(4), FloatDtype::Float16), ("tiny-llama-f16", None, FloatDtype::Float16)],
        DeviceKind::Cpu => [("tiny-llama-q4-f32", Some(4), FloatDtype::Float32), ("tiny-llama-f32", None, FloatDtype::Float32)],
    }
}

/// What to bench.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Model specs (directories or HF repo ids); empty means [`default_synthetic`].
    pub models: Vec<String>,
    pub kv_bits: Vec<Option<i32>>,
    pub prompt_tokens: Vec<usize>,
    pub gen_tokens: Vec<usize>,
    /// Criterion samples per benchmark (at least 10, Criterion's minimum).
    pub sample_size: usize,
    /// Seconds Criterion aims to spend measuring each benchmark.
    pub measurement_time: f64,
    /// Seconds of warm-up per benchmark.
    pub warm_up_time: f64,
    /// `None`: gpu when this MLX has one.
    pub device: Option<DeviceKind>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            models: Vec::new(),
            kv_bits: vec![None, Some(8), Some(4)],
            prompt_tokens: vec![128],
            gen_tokens: vec![32],
            sample_size: 10,
            measurement_time: 3.0,
            warm_up_time: 1.0,
            device: None,
        }
    }
}

/// `mlxbench.toml`: every key optional; lists may also be given as comma-separated strings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    models: Option<ListOrString>,
    kv_bits: Option<ListOrString>,
    prompt_tokens: Option<ListOrString>,
    gen_tokens: Option<ListOrString>,
    sample_size: Option<usize>,
    measurement_time: Option<f64>,
    warm_up_time: Option<f64>,
    device: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ListOrString {
    List(Vec<toml::Value>),
    One(toml::Value),
}

impl ListOrString {
    /// The items as strings (`none`, `4`, `./model`), splitting comma-separated strings.
    fn items(&self) -> Vec<String> {
        let text = |v: &toml::Value| match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let values: Vec<&toml::Value> = match self {
            ListOrString::List(list) => list.iter().collect(),
            ListOrString::One(one) => vec![one],
        };
        values.into_iter().flat_map(|v| split_list(&text(v))).collect()
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

fn parse_counts(source: &str, items: &[String]) -> Result<Vec<usize>> {
    let counts = items
        .iter()
        .map(|s| s.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| invalid(source, s, "a token count >= 1")))
        .collect::<Result<Vec<_>>>()?;
    if counts.is_empty() {
        return Err(Error::InvalidOption(format!("{source}: the list is empty")));
    }
    Ok(counts)
}

fn invalid(source: &str, value: &str, expected: &str) -> Error {
    Error::InvalidOption(format!("{source}: {value:?} is not {expected}"))
}

/// Environment variables read by [`BenchConfig::resolve`].
pub const ENV_VARS: &[&str] = &[
    "MLXBENCH_MODELS",
    "MLXBENCH_KV_BITS",
    "MLXBENCH_PROMPT_TOKENS",
    "MLXBENCH_GEN_TOKENS",
    "MLXBENCH_SAMPLE_SIZE",
    "MLXBENCH_MEASUREMENT_TIME",
    "MLXBENCH_WARM_UP_TIME",
    "MLXBENCH_DEVICE",
];

impl BenchConfig {
    /// Defaults, overridden by `toml` (the text of `mlxbench.toml`, if any), overridden by the
    /// environment (`env` looks a variable up).
    pub fn resolve(env: impl Fn(&str) -> Option<String>, toml_text: Option<&str>) -> Result<Self> {
        let file: FileConfig = match toml_text {
            Some(text) => toml::from_str(text).map_err(|e| Error::InvalidOption(format!("mlxbench.toml: {e}")))?,
            None => FileConfig::default(),
        };
        let mut config = Self::default();
        let list = |var: &str, from_file: &Option<ListOrString>| -> Option<(String, Vec<String>)> {
            match env(var).filter(|v| !v.trim().is_empty()) {
                Some(value) => Some((var.to_string(), split_list(&value))),
                None => from_file.as_ref().map(|l| (format!("mlxbench.toml {}", var.trim_start_matches("MLXBENCH_").to_lowercase()), l.items())),
            }
        };
        if let Some((_, models)) = list("MLXBENCH_MODELS", &file.models) {
            config.models = models;
        }
        if let Some((source, items)) = list("MLXBENCH_KV_BITS", &file.kv_bits) {
            config.kv_bits = items
                .iter()
                .map(|s| parse_kv_bits(s).map_err(|_| invalid(&source, s, "none or a number of bits")))
                .collect::<Result<_>>()?;
            if config.kv_bits.is_empty() {
                return Err(Error::InvalidOption(format!("{source}: the list is empty")));
            }
        }
        if let Some((source, items)) = list("MLXBENCH_PROMPT_TOKENS", &file.prompt_tokens) {
            config.prompt_tokens = parse_counts(&source, &items)?;
        }
        if let Some((source, items)) = list("MLXBENCH_GEN_TOKENS", &file.gen_tokens) {
            config.gen_tokens = parse_counts(&source, &items)?;
        }
        let number = |var: &str, from_file: Option<f64>| -> Result<Option<f64>> {
            match env(var) {
                Some(v) => v.trim().parse::<f64>().ok().filter(|x| *x > 0.0 && x.is_finite()).map(Some).ok_or_else(|| invalid(var, &v, "a positive number")),
                None => Ok(from_file),
            }
        };
        if let Some(n) = number("MLXBENCH_SAMPLE_SIZE", file.sample_size.map(|n| n as f64))? {
            if n < 10.0 || n.fract() != 0.0 {
                return Err(invalid("sample size", &n.to_string(), "a whole number >= 10 (Criterion's minimum)"));
            }
            config.sample_size = n as usize;
        }
        if let Some(t) = number("MLXBENCH_MEASUREMENT_TIME", file.measurement_time)? {
            config.measurement_time = t;
        }
        if let Some(t) = number("MLXBENCH_WARM_UP_TIME", file.warm_up_time)? {
            config.warm_up_time = t;
        }
        config.device = match env("MLXBENCH_DEVICE").or(file.device).as_deref() {
            None => None,
            Some("cpu") => Some(DeviceKind::Cpu),
            Some("gpu") => Some(DeviceKind::Gpu),
            Some(other) => return Err(invalid("device", other, "cpu or gpu")),
        };
        Ok(config)
    }

    /// From the process environment and `<root>/mlxbench.toml` when it exists.
    pub fn load(root: &Path) -> Result<Self> {
        let path = root.join("mlxbench.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(Error::Io { path, source }),
        };
        Self::resolve(|var| std::env::var(var).ok(), text.as_deref())
    }
}

/// Criterion's benchmark filter from the bench's command line (its first free argument), as a
/// regular expression, and whether `--exact` was given.
pub fn criterion_filter(args: &[String]) -> (Option<String>, bool) {
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
    let mut filter = None;
    let mut exact = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--exact" {
            exact = true;
        } else if TAKES_VALUE.contains(&arg.as_str()) {
            iter.next();
        } else if !arg.starts_with('-') && filter.is_none() {
            filter = Some(arg.clone());
        }
    }
    (filter, exact)
}

/// Whether Criterion will run `id` under `filter` (a regex; `--exact`: the whole id).
pub fn filter_selects(filter: Option<&str>, exact: bool, id: &str) -> bool {
    match filter {
        None => true,
        Some(f) if exact => f == id,
        Some(f) => match regex::Regex::new(f) {
            Ok(re) => re.is_match(id),
            Err(_) => id.contains(f),
        },
    }
}

/// An HTML page of the peak memory of every benchmark of Criterion's latest run (`new`). Changes
/// against a saved baseline are `mlxbench compare`'s job: after a plain `cargo bench` Criterion's
/// `base` already holds this same run.
pub fn memory_page(criterion_dir: &Path) -> Result<String> {
    let records = compare::memory_records(criterion_dir, compare::NEW_BASELINE).map_err(|e| Error::InvalidOption(e.to_string()))?;
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut rows = String::new();
    for record in &records {
        let mut peaks = record.peak_memory_bytes.clone();
        peaks.sort_unstable();
        let (Some(&min), Some(&max)) = (peaks.first(), peaks.last()) else { continue };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{} – {}</td><td>{}</td><td>{}</td><td>{} {}</td></tr>\n",
            escape(&record.full_id),
            human_bytes(peaks[peaks.len() / 2]),
            human_bytes(min),
            human_bytes(max),
            peaks.len(),
            human_bytes(record.cache_bytes),
            escape(&record.backend),
            escape(&record.mlx_version),
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

/// Where the memory page goes, and the link added to Criterion's report index.
pub const MEMORY_PAGE: &str = "mlxbench/memory.html";
const MEMORY_LINK: &str = "<p><a href=\"../mlxbench/memory.html\">Peak memory of every benchmark (mlxbench)</a></p>";

/// Writes the memory page and links it from `report/index.html` (once).
pub fn write_memory_page(criterion_dir: &Path) -> Result<()> {
    let page = memory_page(criterion_dir)?;
    crate::report::write_atomically(&criterion_dir.join(MEMORY_PAGE), &page)?;
    let index = criterion_dir.join("report/index.html");
    if let Ok(html) = std::fs::read_to_string(&index) {
        if !html.contains(MEMORY_LINK) {
            if let Some(at) = html.find("<body>").map(|i| i + "<body>".len()) {
                let linked = format!("{}\n{MEMORY_LINK}{}", &html[..at], &html[at..]);
                crate::report::write_atomically(&index, &linked)?;
            }
        }
    }
    Ok(())
}
