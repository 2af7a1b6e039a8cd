//! `config.json` of an MLX-format model, in two stages: a serde mirror of the Hugging Face keys
//! (unknown keys ignored, derivable fields optional) and methods that resolve what the code needs.
use std::{collections::BTreeMap, path::Path};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The keys every supported architecture reads; each architecture picks its own defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelConfig {
    pub model_type: String,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub intermediate_size: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    pub vocab_size: usize,
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f32,
    #[serde(default)]
    pub rope_theta: Option<f32>,
    #[serde(default)]
    pub rope_traditional: bool,
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// transformers >= 5 nests `rope_theta` and the scaling here.
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    #[serde(default)]
    pub max_position_embeddings: Option<usize>,
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default)]
    pub eos_token_id: Option<EosTokenId>,
    #[serde(default)]
    pub quantization: Option<QuantizationConfig>,
    /// Every other key, for the architecture that reads it (see [`ModelConfig::keys`]).
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
    /// In one rank's share of a tensor-parallel model: the whole model's `hidden / heads`
    /// ([`ModelConfig::hidden_per_head`]), since the share's heads are fewer.
    #[serde(skip)]
    pub split_head_dim: Option<usize>,
}

fn default_rms_norm_eps() -> f32 {
    1e-6
}

/// `rope_scaling`: `type` or `rope_type` names the kind; the rest are its parameters.
#[derive(Debug, Clone, Deserialize)]
pub struct RopeScaling {
    #[serde(default, alias = "type")]
    pub rope_type: Option<String>,
    #[serde(default)]
    pub factor: Option<f32>,
    #[serde(default)]
    pub low_freq_factor: Option<f32>,
    #[serde(default)]
    pub high_freq_factor: Option<f32>,
    #[serde(default)]
    pub original_max_position_embeddings: Option<usize>,
    /// LongRoPE (`longrope` / `su`): per-frequency factors beyond the original context.
    #[serde(default)]
    pub long_factor: Option<RopeFactors>,
    #[serde(default)]
    pub short_factor: Option<RopeFactors>,
}

/// LongRoPE factors: one per rotated frequency, or one for all.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RopeFactors {
    One(f32),
    Each(Vec<f32>),
}

/// `rope_parameters` (transformers >= 5).
#[derive(Debug, Clone, Deserialize)]
pub struct RopeParameters {
    #[serde(default)]
    pub rope_theta: Option<f32>,
    #[serde(flatten)]
    pub scaling: RopeScaling,
}

/// `eos_token_id` is an id or a list of ids.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EosTokenId {
    One(u32),
    Many(Vec<u32>),
}

/// MLX's `quantization` block: defaults plus per-layer entries keyed by module path, each either
/// `false` (left in floating point) or its own `{group_size, bits}`.
#[derive(Debug, Clone, Deserialize)]
pub struct QuantizationConfig {
    pub group_size: i32,
    pub bits: i32,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(flatten)]
    pub layers: BTreeMap<String, serde_json::Value>,
}

/// How one layer is quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantParams {
    pub group_size: i32,
    pub bits: i32,
}

/// The bit widths MLX's affine quantization implements.
pub const SUPPORTED_BITS: [i32; 6] = [2, 3, 4, 5, 6, 8];
/// The group sizes MLX's affine quantization implements.
pub const SUPPORTED_GROUP_SIZES: [i32; 3] = [32, 64, 128];

impl QuantParams {
    /// Whether MLX's affine quantization can use these parameters; the error says which is off.
    /// The one check for weights (config.json), KV caches and synthetic models.
    pub fn check(self) -> std::result::Result<(), String> {
        if !SUPPORTED_BITS.contains(&self.bits) {
            return Err(format!("bits {} (supported: {SUPPORTED_BITS:?})", self.bits));
        }
        if !SUPPORTED_GROUP_SIZES.contains(&self.group_size) {
            return Err(format!("group size {} (supported: {SUPPORTED_GROUP_SIZES:?})", self.group_size));
        }
        Ok(())
    }
}

/// A number of bits as flags and reports write it: the number, or `none` (what
/// [`parse_bits_or_none`] reads back).
pub fn bits_or_none(bits: Option<i32>) -> String {
    bits.map_or_else(|| "none".into(), |b| b.to_string())
}

/// Parses a number of bits or `none` (`--kv-bits`, `synth --bits`, `MLXBENCH_KV_BITS`).
pub fn parse_bits_or_none(s: &str) -> std::result::Result<Option<i32>, String> {
    match s.trim() {
        "none" | "None" | "" => Ok(None),
        bits => bits.parse().map(Some).map_err(|_| format!("{bits:?} is not a number of bits or 'none'")),
    }
}

impl QuantizationConfig {
    /// The parameters for the module at `path`: its own entry, else the defaults. `None` when the
    /// config says the module stays unquantized.
    pub fn params_for(&self, path: &str) -> Result<Option<QuantParams>> {
        let params = match self.layers.get(path) {
            Some(serde_json::Value::Bool(false)) => return Ok(None),
            Some(serde_json::Value::Object(entry)) => QuantParams {
                group_size: entry.get("group_size").and_then(|v| v.as_i64()).map_or(self.group_size, |v| v as i32),
                bits: entry.get("bits").and_then(|v| v.as_i64()).map_or(self.bits, |v| v as i32),
            },
            _ => QuantParams { group_size: self.group_size, bits: self.bits },
        };
        params.check().map_err(|detail| Error::UnsupportedQuantization { module: path.to_string(), detail })?;
        Ok(Some(params))
    }
}

impl ModelConfig {
    /// Reads and parses `dir/config.json`, checking the values shapes are made of.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        let config: Self = serde_json::from_str(&text).map_err(|e| Error::Config { path: path.clone(), detail: e.to_string() })?;
        config.validate().map_err(|detail| Error::Config { path, detail })?;
        Ok(config)
    }

    /// Whether the values every architecture divides by or makes shapes of are usable: sizes
    /// between 1 and 2^31 − 1 (MLX's shapes are 32-bit), heads a multiple of the KV heads. The
    /// error names the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let sizes = [
            ("hidden_size", Some(self.hidden_size)),
            ("num_hidden_layers", Some(self.num_hidden_layers)),
            ("intermediate_size", Some(self.intermediate_size)),
            ("num_attention_heads", Some(self.num_attention_heads)),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
            ("vocab_size", Some(self.vocab_size)),
        ];
        for (key, size) in sizes {
            if let Some(size) = size.filter(|&n| n == 0 || n > i32::MAX as usize) {
                return Err(format!("{key} is {size}, not between 1 and 2^31 - 1"));
            }
        }
        if self.num_attention_heads % self.n_kv_heads() != 0 {
            return Err(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads,
                self.n_kv_heads()
            ));
        }
        if self.head_dim() == 0 {
            return Err(format!(
                "hidden_size {} over num_attention_heads {} gives a head_dim of 0; set head_dim",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }

    pub fn n_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_per_head())
    }

    /// `hidden_size / num_attention_heads`, the head size of architectures that ignore
    /// `head_dim` (Qwen2, Mixtral, Phi-3), of the whole model also in one rank's share.
    pub fn hidden_per_head(&self) -> usize {
        self.split_head_dim.unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// The keys one architecture reads beyond the common ones (`T` mirrors them with serde's
    /// defaults); a key of the wrong type is an error naming the architecture and the key.
    pub fn keys<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(serde_json::Value::Object(self.other.clone()))
            .map_err(|e| Error::InvalidOption(format!("{} config.json: {e}", self.model_type)))
    }

    pub fn eos_token_ids(&self) -> Vec<u32> {
        match &self.eos_token_id {
            Some(EosTokenId::One(id)) => vec![*id],
            Some(EosTokenId::Many(ids)) => ids.clone(),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantization_block_resolves_overrides() {
        let q: QuantizationConfig = serde_json::from_str(
            r#"{"group_size": 64, "bits": 4, "lm_head": false,
                "model.layers.0.mlp.down_proj": {"group_size": 32, "bits": 8}}"#,
        )
        .unwrap();
        assert_eq!(q.params_for("model.layers.1.mlp.up_proj").unwrap(), Some(QuantParams { group_size: 64, bits: 4 }));
        assert_eq!(q.params_for("model.layers.0.mlp.down_proj").unwrap(), Some(QuantParams { group_size: 32, bits: 8 }));
        assert_eq!(q.params_for("lm_head").unwrap(), None);
        let bad: QuantizationConfig = serde_json::from_str(r#"{"group_size": 64, "bits": 7}"#).unwrap();
        let err = bad.params_for("model.embed_tokens").unwrap_err().to_string();
        assert!(err.contains("model.embed_tokens") && err.contains("bits 7"), "{err}");
    }

    #[test]
    fn derived_fields_resolve() {
        let c: ModelConfig = serde_json::from_str(
            r#"{"model_type": "llama", "hidden_size": 256, "num_hidden_layers": 2,
                "intermediate_size": 512, "num_attention_heads": 4, "vocab_size": 100,
                "eos_token_id": [1, 2], "some_unknown_key": {"x": 1}}"#,
        )
        .unwrap();
        assert_eq!((c.n_kv_heads(), c.head_dim(), c.eos_token_ids()), (4, 64, vec![1, 2]));
    }
}
