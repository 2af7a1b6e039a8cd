//! What the Criterion bench targets bench: the same [`Axes`] as `mlxbench run`, from environment
//! variables (`MLXBENCH_*`), else `mlxbench.toml` at the repo root, else defaults, plus
//! Criterion's sampling settings. No Criterion types here (it is a dev-dependency);
//! `benches/common` hands this to Criterion.
use std::path::Path;

use serde::Deserialize;

use super::{
    engine::Engine,
    plan::{Axes, RunPoint},
};
use crate::{
    choice::Choice,
    config::parse_bits_or_none,
    device::DeviceKind,
    error::{Error, Result},
    measure::Phase,
    synth::{self, Arch, FloatDtype, SynthOptions},
};

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

/// What to bench, and how long Criterion samples each benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Models (empty means [`default_synthetic`]), KV bits and lengths; batch 1, depth 0.
    pub axes: Axes,
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
            axes: Axes {
                models: Vec::new(),
                kv_bits: vec![None, Some(8), Some(4)],
                batch: vec![1],
                depth: vec![0],
                n_prompt: vec![128],
                n_generate: vec![32],
                engines: vec![Engine::Mlxbench],
                draft_model: None,
                num_draft_tokens: Vec::new(),
            },
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
            config.axes.models = models;
        }
        if let Some((source, items)) = list("MLXBENCH_KV_BITS", &file.kv_bits) {
            config.axes.kv_bits = items
                .iter()
                .map(|s| parse_bits_or_none(s).map_err(|_| invalid(&source, s, "none or a number of bits")))
                .collect::<Result<_>>()?;
            if config.axes.kv_bits.is_empty() {
                return Err(Error::InvalidOption(format!("{source}: the list is empty")));
            }
        }
        if let Some((source, items)) = list("MLXBENCH_PROMPT_TOKENS", &file.prompt_tokens) {
            config.axes.n_prompt = parse_counts(&source, &items)?;
        }
        if let Some((source, items)) = list("MLXBENCH_GEN_TOKENS", &file.gen_tokens) {
            config.axes.n_generate = parse_counts(&source, &items)?;
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
            Some(name) => Some(DeviceKind::from_name(name).ok_or_else(|| invalid("device", name, "cpu or gpu"))?),
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

    /// The points `phase` benches for `models`, in plan order. Prefill and TTFT ids do not name
    /// a generation length, so they take the first `n_generate` only.
    pub fn points(&self, phase: Phase, models: &[String]) -> Result<Vec<RunPoint>> {
        let mut axes = Axes { models: models.to_vec(), ..self.axes.clone() };
        if phase != Phase::Decode {
            axes.n_generate.truncate(1);
        }
        axes.expand()
    }

    /// The configured models, or the default synthetic ones for `device`, written under
    /// `target_dir/mlxbench-synth/` on first use.
    pub fn models(&self, device: DeviceKind, target_dir: &Path) -> Result<Vec<String>> {
        if !self.axes.models.is_empty() {
            return Ok(self.axes.models.clone());
        }
        let config = synth::preset_config("tiny", Some(Arch::Llama))?;
        default_synthetic(device)
            .into_iter()
            .map(|(name, bits, dtype)| {
                let dir = target_dir.join("mlxbench-synth").join(name);
                if !dir.join("config.json").exists() {
                    let options = SynthOptions { bits, dtype, force: true, ..SynthOptions::default() };
                    synth::write_model(&config, &options, &dir)?;
                }
                Ok(dir.to_string_lossy().into_owned())
            })
            .collect()
    }
}
