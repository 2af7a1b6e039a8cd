//! Synthetic models: an MLX-format model directory (`config.json`, safetensors with their index,
//! a small byte-level BPE tokenizer) holding seeded random weights of any supported architecture
//! and size, quantized as mlx-lm quantizes, so that a model can be benchmarked without downloading
//! its weights. The tensors to write come from the loader's own module list
//! ([`models::Architecture::modules`]), and the layout
//! (names, shapes, dtypes, shards, quantization block) is what mlx-lm's `save_model` writes.
mod presets;
mod safetensors;
mod tokenizer;

use std::{
    cell::RefCell,
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use mlx_rs::{ops, random, transforms::eval, with_stream, Array, Device, Dtype, Stream};
use serde::Serialize;
use serde_json::{json, Value};

pub use presets::{preset_config, PRESETS};
pub use tokenizer::EOS_TOKEN;

use crate::{
    choice::{choice, Choice},
    config::{ModelConfig, QuantParams},
    error::{Error, Result},
    models::{self, Architecture, Module, ModuleKind},
    rng,
};
use safetensors::{Entry, Writer};

/// Standard deviation of every random weight (matrices, embeddings, biases); norms are 1.
const INIT_STD: f32 = 0.02;

/// Largest shard by default, as mlx-lm's `make_shards` (5 GiB).
pub const SHARD_BYTES: u64 = 5 << 30;

/// Matrices are generated and quantized this many elements at a time (whole rows), which bounds
/// the memory a large embedding needs. Part of the seed schedule: changing it changes the weights.
const CHUNK_ELEMENTS: usize = 1 << 22;

/// Most MLX streams that generate chunks side by side (MLX runs each stream on its own thread;
/// on a CPU its random-number kernels use one core each).
const MAX_STREAMS: usize = 4;

/// The architectures a synthetic model can have (`model_type` in config.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
    Gemma2,
    Gemma3Text,
    Phi3,
    Mixtral,
    Qwen3Moe,
}

choice!(Arch {
    Llama => ("llama", "Llama 1-3.x"),
    Mistral => ("mistral", "Mistral (the Llama architecture)"),
    Qwen2 => ("qwen2", "Qwen2 and Qwen2.5 (q/k/v biases)"),
    Qwen3 => ("qwen3", "Qwen3 (q/k norms)"),
    Gemma2 => ("gemma2", "Gemma 2 (soft-capping, pre and post norms, tied embeddings)"),
    Gemma3Text => ("gemma3_text", "Gemma 3 text (sliding-window and global layers)"),
    Phi3 => ("phi3", "Phi-3 (fused qkv and gate/up projections)"),
    Mixtral => ("mixtral", "Mixtral (mixture of experts, top-2 of 8)"),
    Qwen3Moe => ("qwen3_moe", "Qwen3-MoE (mixture of experts, top-8 of 128)"),
});

impl Arch {
    pub fn model_type(self) -> &'static str {
        self.name()
    }
}

/// The floating-point type of the weights (and of quantization scales and biases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FloatDtype {
    Bfloat16,
    Float16,
    Float32,
}

// The names are config.json's `torch_dtype` values.
choice!(FloatDtype {
    Bfloat16 => ("bfloat16", "bfloat16 (what mlx-community models use)"),
    Float16 => ("float16", "float16"),
    Float32 => ("float32", "float32 (use this on a CPU: MLX's CPU kernels are slow in 16 bits)"),
});

impl FloatDtype {
    pub fn dtype(self) -> Dtype {
        match self {
            FloatDtype::Bfloat16 => Dtype::Bfloat16,
            FloatDtype::Float16 => Dtype::Float16,
            FloatDtype::Float32 => Dtype::Float32,
        }
    }
}

/// How to write a synthetic model.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Affine quantization bits for every Linear and Embedding (as mlx-lm's `quantize_model`),
    /// `None` for float weights.
    pub bits: Option<i32>,
    pub group_size: i32,
    pub dtype: FloatDtype,
    pub seed: u64,
    /// Write into a non-empty directory, replacing the model files there.
    pub force: bool,
    /// Tensor bytes per safetensors file; a parameter larger than this gets a file of its own.
    pub max_shard_bytes: u64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self {
            bits: Some(4),
            group_size: 64,
            dtype: FloatDtype::Bfloat16,
            seed: 0,
            force: false,
            max_shard_bytes: SHARD_BYTES,
        }
    }
}

impl SynthOptions {
    /// The quantization to apply, validated.
    fn quantization(&self) -> Result<Option<QuantParams>> {
        let Some(bits) = self.bits else { return Ok(None) };
        let params = QuantParams { group_size: self.group_size, bits };
        params.check().map_err(Error::InvalidOption)?;
        Ok(Some(params))
    }
}

/// What `write_model` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct SynthSummary {
    /// Parameters of the model before quantization (mlx-lm's `total_parameters`).
    pub parameters: u64,
    /// Parameters one token uses (all but the experts it is not routed to).
    pub active_parameters: u64,
    /// Bytes of tensor data (the index's `total_size`).
    pub weight_bytes: u64,
    /// Bytes of every file written, headers and JSON included.
    pub bytes_written: u64,
    pub files: Vec<PathBuf>,
}

/// How far `write_model_with_progress` has come, reported after each parameter.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub parameters_done: u64,
    pub parameters_total: u64,
}

/// Reads a Hugging Face `config.json` to synthesize; `arch`, when given, must agree with its
/// `model_type` (and supplies it when the file has none).
pub fn load_config_file(path: &Path, arch: Option<Arch>) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let mut config: Value =
        serde_json::from_str(&text).map_err(|e| Error::Config { path: path.to_path_buf(), detail: e.to_string() })?;
    let object = config
        .as_object_mut()
        .ok_or_else(|| Error::Config { path: path.to_path_buf(), detail: "not a JSON object".into() })?;
    match (object.get("model_type").and_then(Value::as_str), arch) {
        (Some(found), Some(arch)) if found != arch.model_type() => {
            return Err(Error::Config {
                path: path.to_path_buf(),
                detail: format!("model_type is {found:?} but the architecture asked for is {}", arch.model_type()),
            })
        }
        (None, Some(arch)) => {
            object.insert("model_type".into(), json!(arch.model_type()));
        }
        _ => {}
    }
    Ok(config)
}

/// Sets one key of a Hugging Face config from `KEY=VALUE` (the value read as JSON, else taken as a
/// string), e.g. `num_hidden_layers=8`. The model type cannot be changed this way, and a value of
/// the wrong type for a key the loader reads is refused, naming the key.
pub fn set_key(config: &mut Value, assignment: &str) -> Result<()> {
    let invalid = |detail: &str| Error::InvalidOption(format!("--set {assignment:?}: {detail}"));
    let (key, value) = assignment.split_once('=').ok_or_else(|| invalid("expected KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(invalid("the key is empty"));
    }
    if key == "model_type" {
        return Err(invalid("the architecture comes from --preset, --config or --arch"));
    }
    let value = serde_json::from_str(value.trim()).unwrap_or_else(|_| Value::String(value.to_string()));
    let reads = |config: &Value| serde_json::from_value::<ModelConfig>(config.clone());
    let read_before = reads(config).is_ok();
    let object = config.as_object_mut().ok_or_else(|| invalid("the config is not a JSON object"))?;
    let previous = object.insert(key.to_string(), value);
    // Only this key changed: if the config read before and does not now, its value is the cause.
    if let (true, Err(e)) = (read_before, reads(config)) {
        let object = config.as_object_mut().expect("checked above");
        match previous {
            Some(previous) => object.insert(key.to_string(), previous),
            None => object.remove(key),
        };
        return Err(invalid(&format!("{key}: {e}")));
    }
    Ok(())
}

/// Parameters (before quantization) of a model, and those one token uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParameterCount {
    pub total: u64,
    /// All but the experts a token is not routed to (the total for a dense model).
    pub active: u64,
}

/// The parameters of the model `config_json` describes, without writing it.
pub fn parameter_count(config_json: &Value) -> Result<ParameterCount> {
    let config = finished_config(config_json, &SynthOptions { bits: None, ..SynthOptions::default() }, 0)?;
    let modules = architecture(&config)?.modules();
    Ok(ParameterCount {
        total: modules.iter().map(|m| m.kind.parameters()).sum(),
        active: modules.iter().map(|m| m.kind.active_parameters()).sum(),
    })
}

/// Writes the model `config_json` describes (a Hugging Face config.json; see [`preset_config`])
/// into `out` with random weights from `options.seed`. `out` must be absent or empty unless
/// `options.force`.
pub fn write_model(config_json: &Value, options: &SynthOptions, out: &Path) -> Result<SynthSummary> {
    write_model_with_progress(config_json, options, out, |_| {})
}

/// [`write_model`], calling `progress` after each parameter is written.
pub fn write_model_with_progress(
    config_json: &Value,
    options: &SynthOptions,
    out: &Path,
    mut progress: impl FnMut(Progress),
) -> Result<SynthSummary> {
    let quantization = options.quantization()?;
    let tokenizer_path = out.join("tokenizer.json");
    let tokenizer = tokenizer::train().map_err(|detail| Error::Tokenizer { path: tokenizer_path.clone(), detail })?;
    let mut config = finished_config(config_json, options, tokenizer.eos_id)?;
    let architecture = architecture(&config)?;
    if architecture.vocab_size() < tokenizer.vocab_size {
        return Err(Error::InvalidOption(format!(
            "vocab_size {} is smaller than the synthetic tokenizer's {} tokens",
            architecture.vocab_size(),
            tokenizer.vocab_size
        )));
    }
    let parameters = parameters(&architecture, quantization);
    record_quantization_overrides(&mut config, &parameters, quantization);
    let active_parameters = architecture.modules().iter().map(|m| m.kind.active_parameters()).sum();
    prepare_dir(out, options.force)?;

    let dtype = options.dtype.dtype();
    let streams = generation_streams()?;
    let shards = shard(&parameters, dtype, options.max_shard_bytes);
    let shard_name = |i: usize| match shards.len() {
        1 => "model.safetensors".to_string(),
        n => format!("model-{:05}-of-{n:05}.safetensors", i + 1),
    };
    let parameters_total = parameters.iter().map(Parameter::count).sum();
    let (mut parameters_done, mut weight_bytes) = (0, 0);
    let mut weight_map = BTreeMap::new();
    let mut files = Vec::new();
    for (i, shard) in shards.iter().enumerate() {
        let name = shard_name(i);
        let path = out.join(&name);
        let entries: Vec<Entry> = shard.iter().flat_map(|p| p.entries(dtype)).collect();
        weight_bytes += entries.iter().map(Entry::nbytes).sum::<u64>();
        weight_map.extend(entries.iter().map(|e| (e.name.clone(), name.clone())));
        let mut writer = Writer::create(&path, &entries)?;
        for parameter in shard {
            parameter.write(&mut writer, dtype, options.seed, &streams)?;
            // Every chunk had its own size; keep MLX's buffer cache from collecting them.
            mlx_rs::memory::clear_cache()?;
            parameters_done += parameter.count();
            progress(Progress { parameters_done, parameters_total });
        }
        files.push(path);
    }

    let max_length = config.get("max_position_embeddings").and_then(Value::as_u64);
    let index = json!({
        "metadata": {"total_size": weight_bytes, "total_parameters": parameters_total},
        "weight_map": weight_map,
    });
    files.push(write_file(out, "model.safetensors.index.json", &to_json(&index))?);
    files.push(write_file(out, "tokenizer.json", &tokenizer.json)?);
    files.push(write_file(out, "tokenizer_config.json", &to_json(&tokenizer::tokenizer_config(max_length)))?);
    // Last, so that a directory with a config.json holds a whole model.
    files.push(write_file(out, "config.json", &to_json(&config))?);

    let mut bytes_written = 0;
    for file in &files {
        bytes_written += std::fs::metadata(file).map_err(|source| Error::Io { path: file.clone(), source })?.len();
    }
    Ok(SynthSummary { parameters: parameters_total, active_parameters, weight_bytes, bytes_written, files })
}

/// Streams by device (type, index).
type StreamsByDevice = Vec<((u32, i32), Vec<Stream>)>;

thread_local! {
    /// Generation streams: MLX keeps a stream, and on a CPU its thread, until the process exits,
    /// so each is made once.
    static STREAMS: RefCell<StreamsByDevice> = const { RefCell::new(Vec::new()) };
}

/// The streams that generate chunks side by side on the default device.
fn generation_streams() -> Result<Vec<Stream>> {
    let device = Device::try_default()?;
    let id = (u32::from(device.get_type()?), device.get_index()?);
    STREAMS.with_borrow_mut(|cache| {
        if let Some((_, streams)) = cache.iter().find(|(key, _)| *key == id) {
            return Ok(streams.clone());
        }
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_STREAMS);
        let streams: Vec<Stream> = (0..parallelism).map(|_| Stream::new_with_device(&device)).collect();
        cache.push((id, streams.clone()));
        Ok(streams)
    })
}

/// The config.json to write: the given keys (sorted), with the tokenizer's EOS id, the weights'
/// dtype and, when quantized, mlx-lm's quantization block under both of its names.
fn finished_config(input: &Value, options: &SynthOptions, eos_id: u32) -> Result<BTreeMap<String, Value>> {
    let object =
        input.as_object().ok_or_else(|| Error::InvalidOption("a model config must be a JSON object".into()))?;
    let mut config: BTreeMap<String, Value> = object.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    // The real model's token ids mean nothing to the synthetic tokenizer.
    config.remove("bos_token_id");
    config.remove("quantization");
    config.remove("quantization_config");
    config.insert("eos_token_id".into(), json!(eos_id));
    config.insert("torch_dtype".into(), json!(options.dtype.name()));
    if let Some(q) = options.quantization()? {
        let block = json!({"group_size": q.group_size, "bits": q.bits, "mode": "affine"});
        config.insert("quantization".into(), block.clone());
        config.insert("quantization_config".into(), block);
    }
    Ok(config)
}

/// The loader's view of `config`: the architecture's tensor shapes.
fn architecture(config: &BTreeMap<String, Value>) -> Result<Architecture> {
    let invalid = |detail: String| Error::InvalidOption(format!("model config: {detail}"));
    let value = serde_json::to_value(config).map_err(|e| invalid(e.to_string()))?;
    let parsed: ModelConfig = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    parsed.validate().map_err(invalid)?;
    let architecture = models::architecture(&parsed, &|_| false)?;
    let head_dim = architecture.head_dim();
    if head_dim == 0 || head_dim > i32::MAX as usize {
        return Err(invalid(format!("head_dim is {head_dim}, not between 1 and 2^31 - 1")));
    }
    Ok(architecture)
}

/// Adds the modules the architecture quantizes with parameters of their own to the config's
/// quantization block, as mlx-lm's `quantize_model` records a `quant_predicate`'s choices.
fn record_quantization_overrides(config: &mut BTreeMap<String, Value>, parameters: &[Parameter], default: Option<QuantParams>) {
    let Some(default) = default else { return };
    for parameter in parameters {
        if let Kind::Matrix { quantization: Some(q), .. } = parameter.kind {
            if q != default {
                let entry = json!({"group_size": q.group_size, "bits": q.bits});
                for key in ["quantization", "quantization_config"] {
                    if let Some(Value::Object(block)) = config.get_mut(key) {
                        block.insert(parameter.path.clone(), entry.clone());
                    }
                }
            }
        }
    }
}

/// One parameter of the model before quantization, named by its module path.
#[derive(Debug, Clone)]
struct Parameter {
    path: String,
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A Linear or Embedding weight `[rows, cols]` (stacked experts: `[stack, rows, cols]`),
    /// quantized when `quantization` is set.
    Matrix { stack: Option<usize>, rows: usize, cols: usize, quantization: Option<QuantParams> },
    /// An RMS norm's scale (all ones).
    Norm { dim: usize },
    /// A Linear bias.
    Bias { dim: usize },
}

impl Parameter {
    fn count(&self) -> u64 {
        match self.kind {
            Kind::Matrix { stack, rows, cols, .. } => (stack.unwrap_or(1) * rows * cols) as u64,
            Kind::Norm { dim } | Kind::Bias { dim } => dim as u64,
        }
    }

    /// The tensors it is stored as: `.weight`, plus `.scales` and `.biases` when quantized.
    fn entries(&self, dtype: Dtype) -> Vec<Entry> {
        let entry = |suffix: &str, dtype, shape| Entry { name: format!("{}.{suffix}", self.path), dtype, shape };
        match self.kind {
            Kind::Matrix { stack, rows, cols, quantization } => {
                let shape = |last: usize| stack.into_iter().chain([rows, last]).collect::<Vec<_>>();
                match quantization {
                    None => vec![entry("weight", dtype, shape(cols))],
                    Some(q) => {
                        let (packed, groups) = (cols * q.bits as usize / 32, cols / q.group_size as usize);
                        vec![
                            entry("weight", Dtype::Uint32, shape(packed)),
                            entry("scales", dtype, shape(groups)),
                            entry("biases", dtype, shape(groups)),
                        ]
                    }
                }
            }
            Kind::Norm { dim } => vec![entry("weight", dtype, vec![dim])],
            Kind::Bias { dim } => vec![entry("bias", dtype, vec![dim])],
        }
    }

    /// Generates the parameter and writes its tensors. A matrix goes in chunks of whole rows,
    /// one per stream at a time; quantization groups lie within rows, so chunks quantize alone.
    fn write(&self, writer: &mut Writer, dtype: Dtype, seed: u64, streams: &[Stream]) -> Result<()> {
        let entries = self.entries(dtype);
        let normal = |shape: &[i32], chunk: usize| -> Result<Array> {
            let key = random::key(tensor_seed(seed, &self.path, chunk as u64))?;
            Ok(random::normal::<f32>(shape, 0.0, INIT_STD, &key)?.as_dtype(dtype)?)
        };
        let Kind::Matrix { stack, rows, cols, quantization } = self.kind else {
            let vector = match self.kind {
                Kind::Norm { dim } => ops::ones_dtype(&[dim as i32], dtype)?,
                _ => normal(&[self.count() as i32], 0)?,
            };
            return writer.write(&entries[0].name, 0, &vector);
        };
        // Stacked experts are written as one matrix of all their rows: quantization groups lie
        // within rows, so the result is each expert quantized on its own.
        let rows = stack.unwrap_or(1) * rows;
        let rows_per_chunk = (CHUNK_ELEMENTS / cols).max(1);
        let chunks: Vec<(usize, usize)> = (0..rows).step_by(rows_per_chunk).enumerate().collect();
        for batch in chunks.chunks(streams.len()) {
            let mut generated = Vec::with_capacity(batch.len());
            for (&(chunk, first_row), stream) in batch.iter().zip(streams) {
                let n = rows_per_chunk.min(rows - first_row);
                let pieces = with_stream(stream, || -> Result<Vec<Array>> {
                    let w = normal(&[n as i32, cols as i32], chunk)?;
                    Ok(match quantization {
                        None => vec![w],
                        Some(q) => {
                            let (packed, scales, biases) = ops::quantize(&w, q.group_size, q.bits)?;
                            vec![packed, scales, biases]
                        }
                    })
                })?;
                generated.push((first_row, pieces));
            }
            eval(generated.iter().flat_map(|(_, pieces)| pieces))?;
            for (first_row, pieces) in &generated {
                for (entry, piece) in entries.iter().zip(pieces) {
                    let row_bytes = entry.nbytes() / rows as u64;
                    writer.write(&entry.name, *first_row as u64 * row_bytes, piece)?;
                }
            }
        }
        Ok(())
    }
}

/// Every parameter of `architecture`, in its module order (a Linear's bias before its weight).
/// Matrices are quantized where mlx-lm's `quantize_model` would: when their input size is a
/// multiple of the group size, with the parameters the architecture's `quant_predicate` picks.
fn parameters(architecture: &Architecture, quantization: Option<QuantParams>) -> Vec<Parameter> {
    let mut list = Vec::new();
    for Module { path, kind } in architecture.modules() {
        let matrix = |stack: Option<usize>, rows: usize, cols: usize| Kind::Matrix {
            stack,
            rows,
            cols,
            quantization: quantization
                .filter(|q| cols % q.group_size as usize == 0)
                .map(|q| architecture.quantization_for(&path, q)),
        };
        let kind = match kind {
            ModuleKind::Linear { in_dim, out_dim, bias } => {
                if bias {
                    list.push(Parameter { path: path.clone(), kind: Kind::Bias { dim: out_dim } });
                }
                matrix(None, out_dim, in_dim)
            }
            ModuleKind::Embedding { vocab, dim } => matrix(None, vocab, dim),
            ModuleKind::Experts { experts, in_dim, out_dim, .. } => matrix(Some(experts), out_dim, in_dim),
            ModuleKind::Norm { dim } => Kind::Norm { dim },
        };
        list.push(Parameter { path, kind });
    }
    list
}

/// Splits parameters in order into shards of at most `max_bytes`, as mlx-lm's `make_shards`
/// (a parameter's tensors stay together).
fn shard(parameters: &[Parameter], dtype: Dtype, max_bytes: u64) -> Vec<Vec<Parameter>> {
    let mut shards: Vec<Vec<Parameter>> = Vec::new();
    let mut size = 0;
    for parameter in parameters {
        let bytes: u64 = parameter.entries(dtype).iter().map(Entry::nbytes).sum();
        match shards.last_mut() {
            Some(last) if size + bytes <= max_bytes => last.push(parameter.clone()),
            _ => {
                shards.push(vec![parameter.clone()]);
                size = 0;
            }
        }
        size += bytes;
    }
    shards
}

/// The PRNG seed of one chunk of one tensor: independent of every other tensor, so shard layout
/// and write order do not change the weights.
fn tensor_seed(seed: u64, path: &str, chunk: u64) -> u64 {
    rng::mix(rng::mix(seed ^ rng::fnv1a(path.as_bytes())) ^ chunk)
}

fn to_json(value: &impl Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON of strings and numbers");
    text.push('\n');
    text
}

fn write_file(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|source| Error::Io { path: path.clone(), source })?;
    Ok(path)
}

/// Files a synthetic model consists of; `--force` replaces these and leaves anything else.
fn is_model_file(name: &str) -> bool {
    matches!(name, "config.json" | "tokenizer.json" | "tokenizer_config.json" | "model.safetensors.index.json")
        || (name.starts_with("model") && name.ends_with(".safetensors"))
}

/// Creates `out`, or checks that it is empty; with `force`, removes the model files in it.
fn prepare_dir(out: &Path, force: bool) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::InvalidOption(format!("--out {} is a file, not a folder to write the model into", out.display())));
    }
    let io = |source| Error::Io { path: out.to_path_buf(), source };
    let entries = match std::fs::read_dir(out) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return std::fs::create_dir_all(out).map_err(io),
        Err(e) => return Err(io(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !force {
            return Err(Error::InvalidOption(format!(
                "{} exists and is not empty (--force replaces the model files in it)",
                out.display()
            )));
        }
        if is_model_file(&name) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|source| Error::Io { path, source })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_at_the_limit_in_order() {
        let big = |i: usize| Parameter {
            path: format!("p{i}"),
            kind: Kind::Matrix { stack: None, rows: 1 << 20, cols: 1 << 10, quantization: None },
        };
        // 2 GiB each in float16: two fit in a 5 GiB shard, the third starts a new one.
        let shards = shard(&(0..5).map(big).collect::<Vec<_>>(), Dtype::Float16, SHARD_BYTES);
        let names: Vec<Vec<&str>> = shards.iter().map(|s| s.iter().map(|p| p.path.as_str()).collect()).collect();
        assert_eq!(names, vec![vec!["p0", "p1"], vec!["p2", "p3"], vec!["p4"]]);
    }

    #[test]
    fn seeds_differ_by_seed_tensor_and_chunk() {
        let a = tensor_seed(0, "model.norm", 0);
        assert_ne!(a, tensor_seed(1, "model.norm", 0));
        assert_ne!(a, tensor_seed(0, "lm_head", 0));
        assert_ne!(a, tensor_seed(0, "model.norm", 1));
        assert_eq!(a, tensor_seed(0, "model.norm", 0));
    }
}
