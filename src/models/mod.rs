//! Model architectures behind one small trait, and the registry that picks one by `model_type`.
pub mod layers;
pub mod llama;
pub mod qwen2;
pub mod qwen3;
pub mod transformer;

use std::path::Path;

use mlx_rs::Array;

use crate::{
    cache::KvCache,
    config::ModelConfig,
    error::{Error, Result},
    weights::WeightStore,
};
pub use transformer::{Decoder, DecoderSpec, Module, ModuleKind};

/// The `model_type`s we can run (aliases included).
pub const SUPPORTED_MODEL_TYPES: [&str; 4] = ["llama", "mistral", "qwen2", "qwen3"];

/// What generation and measurement need from a model.
pub trait LanguageModel {
    /// Logits `[B, L, vocab]` for token ids `[B, L]`, continuing `caches` when given.
    fn forward(&self, tokens: &Array, caches: Option<&mut [KvCache]>) -> Result<Array>;
    fn num_layers(&self) -> usize;
    fn head_dim(&self) -> usize;
    fn vocab_size(&self) -> usize;
}

impl LanguageModel for Decoder {
    fn forward(&self, tokens: &Array, caches: Option<&mut [KvCache]>) -> Result<Array> {
        Decoder::forward(self, tokens, caches)
    }
    fn num_layers(&self) -> usize {
        self.spec().layers
    }
    fn head_dim(&self) -> usize {
        self.spec().head_dim
    }
    fn vocab_size(&self) -> usize {
        self.spec().vocab_size
    }
}

/// The architecture for `config.model_type`, as a decoder spec.
pub fn spec_for(config: &ModelConfig) -> Result<DecoderSpec> {
    match config.model_type.as_str() {
        "llama" | "mistral" => llama::spec(config),
        "qwen2" => qwen2::spec(config),
        "qwen3" => qwen3::spec(config),
        other => Err(Error::UnsupportedModelType {
            model_type: other.to_string(),
            supported: SUPPORTED_MODEL_TYPES.to_vec(),
        }),
    }
}

/// A model ready to run, with the config it was built from.
pub struct LoadedModel {
    pub config: ModelConfig,
    pub model: Box<dyn LanguageModel>,
}

/// Loads the MLX-format model in `dir` (config.json + safetensors).
pub fn load(dir: &Path) -> Result<LoadedModel> {
    let config = ModelConfig::from_dir(dir)?;
    let spec = spec_for(&config)?;
    let store = WeightStore::open(dir)?;
    let decoder = Decoder::load(spec, &config, store)?;
    Ok(LoadedModel { config, model: Box::new(decoder) })
}
