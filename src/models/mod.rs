//! Model architectures behind one small trait, and the registry that picks one by `model_type`.
//! Llama, Mistral, Qwen2 and Qwen3 run on the shared decoder (`transformer.rs`); Gemma 2, Gemma 3,
//! Phi-3, Mixtral and Qwen3-MoE compose their blocks from the shared layers (`composed.rs`,
//! `layers/`). Either way an architecture's modules are listed once ([`Architecture::modules`])
//! for the loader, `synth` and the parameter and byte counts ([`Footprint`]).
pub mod composed;
pub mod gemma2;
pub mod gemma3_text;
pub mod layers;
pub mod llama;
pub mod mixtral;
pub mod phi3;
pub mod qwen2;
pub mod qwen3;
pub mod qwen3_moe;
pub mod transformer;

use std::path::Path;

use mlx_rs::Array;
use serde::{Deserialize, Serialize};

use crate::{
    cache::{KvCache, KvCacheOptions},
    config::{ModelConfig, QuantParams},
    distributed::{self, shard},
    error::{Error, Result},
    weights::WeightStore,
};
pub use composed::{Blueprint, ComposedDecoder};
pub use transformer::{Decoder, DecoderSpec, Module, ModuleKind};

/// The `model_type`s we can run (aliases included).
pub const SUPPORTED_MODEL_TYPES: [&str; 9] =
    ["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3", "mixtral", "qwen3_moe"];

/// What generation and measurement need from a model.
pub trait LanguageModel {
    /// Logits `[B, L, vocab]` for token ids `[B, L]`, continuing `caches` when given.
    fn forward(&self, tokens: &Array, caches: Option<&mut [KvCache]>) -> Result<Array>;
    fn num_layers(&self) -> usize;
    fn head_dim(&self) -> usize;
    fn vocab_size(&self) -> usize;

    /// Empty caches, one per layer, as mlx-lm makes them for this architecture (its
    /// `make_cache`, else one kind for every layer); a setting the architecture cannot run is an
    /// error naming it.
    fn make_caches(&self, options: &KvCacheOptions) -> Result<Vec<KvCache>> {
        options.validate(self.head_dim())?;
        Ok(options.new_caches(self.num_layers()))
    }
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

/// One architecture's description: the shared decoder's spec or a composed blueprint.
#[derive(Debug, Clone)]
pub enum Architecture {
    Decoder(DecoderSpec),
    Composed(Blueprint),
}

/// The architecture for `config.model_type`. `has_tensor` says whether the checkpoint holds a
/// tensor (Gemma 3 ties its head unless `lm_head.weight` exists); without a checkpoint (`synth`)
/// it answers no.
pub fn architecture(config: &ModelConfig, has_tensor: &dyn Fn(&str) -> bool) -> Result<Architecture> {
    use Architecture::{Composed, Decoder};
    match config.model_type.as_str() {
        "llama" | "mistral" => llama::spec(config).map(Decoder),
        "qwen2" => qwen2::spec(config).map(Decoder),
        "qwen3" => qwen3::spec(config).map(Decoder),
        "gemma2" => gemma2::blueprint(config).map(Composed),
        "gemma3_text" => gemma3_text::blueprint(config, has_tensor("lm_head.weight")).map(Composed),
        "phi3" => phi3::blueprint(config).map(Composed),
        "mixtral" => mixtral::blueprint(config).map(Composed),
        "qwen3_moe" => qwen3_moe::blueprint(config).map(Composed),
        other => Err(Error::UnsupportedModelType { model_type: other.to_string(), supported: SUPPORTED_MODEL_TYPES.to_vec() }),
    }
}

/// A mixture of experts needs at least one expert per token and no more than there are.
fn check_experts(config: &ModelConfig, experts: usize, per_token: usize) -> Result<()> {
    if per_token == 0 || per_token > experts {
        return Err(Error::InvalidOption(format!(
            "{} config.json: num_experts_per_tok {per_token} must be between 1 and the {experts} experts",
            config.model_type
        )));
    }
    Ok(())
}

impl Architecture {
    /// Every module with its mlx-lm path and logical (unquantized) shape.
    pub fn modules(&self) -> Vec<Module> {
        match self {
            Architecture::Decoder(spec) => spec.modules(),
            Architecture::Composed(blueprint) => blueprint.modules(),
        }
    }

    pub fn head_dim(&self) -> usize {
        match self {
            Architecture::Decoder(spec) => spec.head_dim,
            Architecture::Composed(blueprint) => blueprint.head_dim(),
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Architecture::Decoder(spec) => spec.vocab_size,
            Architecture::Composed(blueprint) => blueprint.vocab_size,
        }
    }

    /// How mlx-lm's `quantize_model` quantizes the module at `path` when asked for `default`:
    /// the architecture's `quant_predicate` may pick other parameters.
    pub fn quantization_for(&self, path: &str, default: QuantParams) -> QuantParams {
        match self {
            Architecture::Composed(blueprint) => {
                blueprint.quantization_overrides.iter().find(|(p, _)| p == path).map_or(default, |(_, q)| *q)
            }
            Architecture::Decoder(_) => default,
        }
    }

    fn load(self, config: &ModelConfig, store: WeightStore) -> Result<Box<dyn LanguageModel>> {
        Ok(match self {
            Architecture::Decoder(spec) => Box::new(Decoder::load(spec, config, store)?),
            Architecture::Composed(blueprint) => Box::new(blueprint.load(config, store)?),
        })
    }
}

/// How big a model is and how much of it one decode step uses. Every module counts whole except
/// stacked experts, of which a token runs `active` of `experts` (the router, attention, shared
/// layers, embeddings and head count whole).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footprint {
    /// Parameters before quantization.
    pub parameters: u64,
    /// Parameters a token's decode step uses.
    pub active_parameters: u64,
    /// Bytes of the weight tensors as stored (quantized or not).
    pub weight_bytes: u64,
    /// Bytes of the weights one decode step reads (one sequence; a batch may route its
    /// sequences to more experts).
    pub decode_bytes: u64,
}

impl ModuleKind {
    /// Parameters of the module before quantization.
    pub fn parameters(self) -> u64 {
        let n = match self {
            ModuleKind::Linear { in_dim, out_dim, bias } => in_dim * out_dim + if bias { out_dim } else { 0 },
            ModuleKind::Embedding { vocab, dim } => vocab * dim,
            ModuleKind::Norm { dim } => dim,
            ModuleKind::Experts { experts, in_dim, out_dim, .. } => experts * in_dim * out_dim,
        };
        n as u64
    }

    /// Parameters of the module one token uses.
    pub fn active_parameters(self) -> u64 {
        let (used, of) = self.share();
        self.parameters() * used / of
    }

    /// The share of the module one token uses: `(used, of)`.
    fn share(self) -> (u64, u64) {
        match self {
            ModuleKind::Experts { experts, active, .. } => (active as u64, experts as u64),
            _ => (1, 1),
        }
    }
}

impl Footprint {
    /// The footprint of `modules` as stored in `store` (each module's `.weight`, `.bias`,
    /// `.scales` and `.biases` tensors).
    pub fn of(modules: &[Module], store: &WeightStore) -> Self {
        let mut footprint = Footprint::default();
        for module in modules {
            let (used, of) = module.kind.share();
            let bytes: u64 = ["weight", "bias", "scales", "biases"]
                .iter()
                .filter_map(|suffix| store.nbytes(&format!("{}.{suffix}", module.path)))
                .map(|b| b as u64)
                .sum();
            footprint.parameters += module.kind.parameters();
            footprint.active_parameters += module.kind.active_parameters();
            footprint.weight_bytes += bytes;
            footprint.decode_bytes += bytes * used / of;
        }
        footprint
    }
}

/// A model ready to run, with the config it was built from and its footprint.
pub struct LoadedModel {
    pub config: ModelConfig,
    pub model: Box<dyn LanguageModel>,
    pub footprint: Footprint,
}

/// Loads the MLX-format model in `dir` (config.json + safetensors). In a distributed group
/// ([`distributed::current`]) each rank loads its tensor-parallel share (`distributed::shard`);
/// the footprint is the whole model's either way.
pub fn load(dir: &Path) -> Result<LoadedModel> {
    let config = ModelConfig::from_dir(dir)?;
    let mut store = WeightStore::open(dir)?;
    let architecture = architecture_of(&config, &store)?;
    let footprint = Footprint::of(&architecture.modules(), &store);
    let model = match distributed::current() {
        None => architecture.load(&config, store)?,
        Some(group) => {
            let share = shard::split_config(&config, group.size())?;
            store.shard(shard::Sharding { group: group.clone(), fused: shard::fused_parts(&config) });
            architecture_of(&share, &store)?.load(&share, store)?
        }
    };
    Ok(LoadedModel { config, model, footprint })
}

/// The architecture of `config`, asking `store` which tensors the checkpoint holds.
fn architecture_of(config: &ModelConfig, store: &WeightStore) -> Result<Architecture> {
    architecture(config, &|name| store.contains(name))
}
