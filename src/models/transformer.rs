//! The decoder-only transformer that Llama, Mistral, Qwen2 and Qwen3 share (mlx-lm's
//! `llama.py` shape): pre-norm blocks of grouped-query attention with RoPE and a SwiGLU MLP.
//! Architectures differ only in a [`DecoderSpec`]: biases, q/k norms, RoPE and tied embeddings.
use mlx_rs::{
    fast::{self, ScaledDotProductAttentionMask},
    ops::{arange, power, quantized_matmul, select, softmax_axis},
    Array, Dtype,
};

use super::layers::{activations::swiglu, Linear, RmsNorm, Rope, Weight};
use crate::{
    cache::{Fetched, KvCache, Mask, QuantizedTensor},
    config::{ModelConfig, QuantizationConfig, RopeScaling},
    error::{Error, Result},
    weights::WeightStore,
};

/// What distinguishes one architecture's decoder from another's.
#[derive(Debug, Clone)]
pub struct DecoderSpec {
    pub hidden_size: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub rms_norm_eps: f32,
    pub qkv_bias: bool,
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub qk_norm: bool,
    pub tie_word_embeddings: bool,
    pub rope_theta: f32,
    pub rope_traditional: bool,
    pub rope_scaling: Option<RopeScaling>,
    pub max_position_embeddings: Option<usize>,
}

impl DecoderSpec {
    /// The config's shapes with Llama's conventions (no q/k norm, biases as `attention_bias` /
    /// `mlp_bias` say, tied embeddings unless told otherwise, RoPE base `default_theta` unless
    /// given); architectures override what differs.
    pub fn from_config(c: &ModelConfig, default_theta: f32) -> Self {
        Self {
            hidden_size: c.hidden_size,
            layers: c.num_hidden_layers,
            heads: c.num_attention_heads,
            kv_heads: c.n_kv_heads(),
            head_dim: c.head_dim(),
            intermediate_size: c.intermediate_size,
            vocab_size: c.vocab_size,
            rms_norm_eps: c.rms_norm_eps,
            qkv_bias: c.attention_bias,
            o_bias: c.attention_bias,
            mlp_bias: c.mlp_bias,
            qk_norm: false,
            tie_word_embeddings: c.tie_word_embeddings.unwrap_or(true),
            rope_theta: c.rope_theta.unwrap_or(default_theta),
            rope_traditional: c.rope_traditional,
            rope_scaling: c.rope_scaling.clone(),
            max_position_embeddings: c.max_position_embeddings,
        }
    }

    /// Every module of the decoder with its path (mlx-lm's names) and logical shape, in mlx-lm's
    /// module order. The loader takes each module's shape from here and synthetic models write
    /// exactly these, so an architecture's tensors are described once.
    pub fn modules(&self) -> Vec<Module> {
        let (d, hd, ff) = (self.hidden_size, self.head_dim, self.intermediate_size);
        let linear = |path: &String, in_dim, out_dim, bias| Module {
            path: path.clone(),
            kind: ModuleKind::Linear { in_dim, out_dim, bias },
        };
        let norm = |path: &String, dim| Module { path: path.clone(), kind: ModuleKind::Norm { dim } };
        let mut list = vec![Module {
            path: EMBED_TOKENS.into(),
            kind: ModuleKind::Embedding { vocab: self.vocab_size, dim: d },
        }];
        for i in 0..self.layers {
            let p = LayerPaths::of(i);
            list.push(norm(&p.input_layernorm, d));
            list.push(linear(&p.q_proj, d, self.heads * hd, self.qkv_bias));
            list.push(linear(&p.k_proj, d, self.kv_heads * hd, self.qkv_bias));
            list.push(linear(&p.v_proj, d, self.kv_heads * hd, self.qkv_bias));
            list.push(linear(&p.o_proj, self.heads * hd, d, self.o_bias));
            if self.qk_norm {
                list.push(norm(&p.q_norm, hd));
                list.push(norm(&p.k_norm, hd));
            }
            list.push(linear(&p.gate_proj, d, ff, self.mlp_bias));
            list.push(linear(&p.up_proj, d, ff, self.mlp_bias));
            list.push(linear(&p.down_proj, ff, d, self.mlp_bias));
            list.push(norm(&p.post_attention_layernorm, d));
        }
        list.push(norm(&NORM.into(), d));
        if !self.tie_word_embeddings {
            list.push(linear(&LM_HEAD.into(), d, self.vocab_size, false));
        }
        list
    }

    /// mlx-lm's `initialize_rope`, for the scaling kinds our architectures use.
    fn rope(&self) -> Result<Rope> {
        let dims = self.head_dim as i32;
        let mut rope = Rope { dims, traditional: self.rope_traditional, base: self.rope_theta, scale: 1.0, freqs: None };
        let Some(scaling) = &self.rope_scaling else { return Ok(rope) };
        let kind = scaling.rope_type.as_deref().unwrap_or("default");
        let factor = || {
            scaling.factor.ok_or_else(|| Error::InvalidOption(format!("rope_scaling {kind:?} needs a factor")))
        };
        match kind {
            "default" => {}
            "linear" => rope.scale = 1.0 / factor()?,
            "llama3" => rope.freqs = Some(llama3_freqs(dims, self.rope_theta, factor()?, scaling)?),
            other => {
                return Err(Error::InvalidOption(format!(
                    "rope_scaling type {other:?} is not supported (default, linear, llama3)"
                )))
            }
        }
        Ok(rope)
    }
}

/// What a module of the decoder is, with its logical (unquantized) shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    /// `y = x·Wᵀ (+ b)` with `W: [out_dim, in_dim]`; the untied LM head is one too.
    Linear { in_dim: usize, out_dim: usize, bias: bool },
    /// The token embedding `[vocab, dim]` (also the LM head when tied).
    Embedding { vocab: usize, dim: usize },
    /// An RMS norm's scale `[dim]`.
    Norm { dim: usize },
    /// `experts` linear layers stacked in one tensor `[experts, out_dim, in_dim]` (mlx-lm's
    /// `SwitchLinear`), of which each token runs `active`.
    Experts { experts: usize, active: usize, in_dim: usize, out_dim: usize },
}

/// One module: its path (tensors are `<path>.weight`, `.bias`, `.scales`, `.biases`) and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub path: String,
    pub kind: ModuleKind,
}

pub(crate) const EMBED_TOKENS: &str = "model.embed_tokens";
pub(crate) const NORM: &str = "model.norm";
pub(crate) const LM_HEAD: &str = "lm_head";

/// mlx-lm's paths of the modules of decoder layer `i`: the one place they are spelled.
struct LayerPaths {
    input_layernorm: String,
    q_proj: String,
    k_proj: String,
    v_proj: String,
    o_proj: String,
    q_norm: String,
    k_norm: String,
    gate_proj: String,
    up_proj: String,
    down_proj: String,
    post_attention_layernorm: String,
    /// A tensor some checkpoints carry and nothing uses.
    rotary_inv_freq: String,
}

impl LayerPaths {
    fn of(i: usize) -> Self {
        let p = format!("model.layers.{i}");
        let attn = |name: &str| format!("{p}.self_attn.{name}");
        let mlp = |name: &str| format!("{p}.mlp.{name}");
        Self {
            input_layernorm: format!("{p}.input_layernorm"),
            q_proj: attn("q_proj"),
            k_proj: attn("k_proj"),
            v_proj: attn("v_proj"),
            o_proj: attn("o_proj"),
            q_norm: attn("q_norm"),
            k_norm: attn("k_norm"),
            gate_proj: mlp("gate_proj"),
            up_proj: mlp("up_proj"),
            down_proj: mlp("down_proj"),
            post_attention_layernorm: format!("{p}.post_attention_layernorm"),
            rotary_inv_freq: attn("rotary_emb.inv_freq"),
        }
    }
}

/// Loads modules by path, with the shapes [`DecoderSpec::modules`] gives them.
pub(crate) struct ModuleLoader<'a> {
    pub(crate) store: WeightStore,
    pub(crate) kinds: std::collections::HashMap<String, ModuleKind>,
    pub(crate) quantization: Option<&'a QuantizationConfig>,
}

impl ModuleLoader<'_> {
    pub(crate) fn kind(&self, path: &str) -> ModuleKind {
        *self.kinds.get(path).unwrap_or_else(|| panic!("{path} is not a module of DecoderSpec::modules"))
    }

    pub(crate) fn linear(&mut self, path: &str) -> Result<Linear> {
        match self.kind(path) {
            ModuleKind::Linear { in_dim, out_dim, bias } => {
                Linear::load(&mut self.store, path, in_dim, out_dim, bias, self.quantization)
            }
            other => unreachable!("{path} is {other:?}, not a linear layer"),
        }
    }

    pub(crate) fn embedding(&mut self, path: &str) -> Result<Weight> {
        match self.kind(path) {
            ModuleKind::Embedding { vocab, dim } => Weight::load(&mut self.store, path, dim, vocab, self.quantization),
            other => unreachable!("{path} is {other:?}, not an embedding"),
        }
    }

    pub(crate) fn norm(&mut self, path: &str, eps: f32) -> Result<RmsNorm> {
        match self.kind(path) {
            ModuleKind::Norm { dim } => RmsNorm::load(&mut self.store, path, dim, eps),
            other => unreachable!("{path} is {other:?}, not a norm"),
        }
    }

    /// Norms that exist only when `present`.
    fn optional_norm(&mut self, present: bool, path: &str, eps: f32) -> Result<Option<RmsNorm>> {
        present.then(|| self.norm(path, eps)).transpose()
    }
}

/// Llama 3's frequency smoothing, computed with MLX ops in mlx-lm's order so values match.
pub(crate) fn llama3_freqs(dims: i32, base: f32, factor: f32, s: &RopeScaling) -> Result<Array> {
    let low = s.low_freq_factor.unwrap_or(1.0);
    let high = s.high_freq_factor.unwrap_or(4.0);
    let old_context = s.original_max_position_embeddings.unwrap_or(8192) as f32;
    let (low_wavelen, high_wavelen) = (old_context / low, old_context / high);
    let scalar = Array::from_f32;
    let exponents = arange::<_, f32>(0, dims, 2)?.divide(scalar(dims as f32))?;
    let freqs = power(scalar(base), &exponents)?;
    let wavelens = freqs.multiply(scalar(2.0 * std::f32::consts::PI))?;
    let freqs = select(&wavelens.gt(scalar(low_wavelen))?, freqs.multiply(scalar(factor))?, &freqs)?;
    let medium = wavelens.gt(scalar(high_wavelen))?.logical_and(wavelens.lt(scalar(low_wavelen))?)?;
    let smooth = scalar(old_context).divide(&wavelens)?.subtract(scalar(low))?.divide(scalar(high - low))?;
    let smooth_freqs = freqs.divide(
        scalar(1.0).subtract(&smooth)?.divide(scalar(factor))?.add(&smooth)?,
    )?;
    Ok(select(&medium, smooth_freqs, &freqs)?)
}

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    heads: i32,
    kv_heads: i32,
    scale: f32,
}

/// The most negative finite value of `dtype` (masked scores), as mlx-lm's `finfo(dtype).min`.
pub(crate) fn dtype_min(dtype: Dtype) -> f32 {
    match dtype {
        Dtype::Float16 => -65504.0,
        Dtype::Bfloat16 => -3.389_531_4e38,
        _ => f32::MIN,
    }
}

/// mlx-lm's `quantized_scaled_dot_product_attention`: attention straight on quantized keys/values.
pub(crate) fn quantized_attention(
    queries: &Array,
    keys: &QuantizedTensor,
    values: &QuantizedTensor,
    scale: f32,
    mask: &Mask,
    group_size: i32,
    bits: i32,
) -> Result<Array> {
    let &[b, heads, len, dim] = queries.shape() else { unreachable!("queries are [B, H, L, D]") };
    let kv_heads = keys.data.dim(-3);
    let repeats = heads / kv_heads;
    let mut queries = queries.multiply(Array::from_f32(scale).as_dtype(queries.dtype())?)?;
    let expand = |t: &QuantizedTensor| -> Result<QuantizedTensor> {
        Ok(QuantizedTensor {
            data: t.data.expand_dims(-3)?,
            scales: t.scales.expand_dims(-3)?,
            biases: t.biases.expand_dims(-3)?,
        })
    };
    let (keys, values) = if repeats > 1 {
        queries = queries.reshape(&[b, kv_heads, repeats, len, dim])?;
        (expand(keys)?, expand(values)?)
    } else {
        (keys.clone(), values.clone())
    };
    let mut scores =
        quantized_matmul(&queries, &keys.data, &keys.scales, &keys.biases, true, group_size, bits)?;
    let mask = match mask {
        Mask::None => None,
        Mask::Array(m) => Some(m.clone()),
        Mask::Causal => {
            let (q_len, k_len) = (scores.dim(-2), scores.dim(-1));
            let q_idx = arange::<_, i32>(k_len - q_len, k_len, None)?.reshape(&[-1, 1])?;
            let k_idx = arange::<_, i32>(None, k_len, None)?.reshape(&[1, -1])?;
            Some(q_idx.ge(&k_idx)?)
        }
    };
    if let Some(mask) = mask {
        let floor = Array::from_f32(dtype_min(scores.dtype())).as_dtype(scores.dtype())?;
        scores = select(&mask, &scores, &floor)?;
    }
    let scores = softmax_axis(&scores, -1, true)?;
    let out = quantized_matmul(&scores, &values.data, &values.scales, &values.biases, false, group_size, bits)?;
    Ok(if repeats > 1 { out.reshape(&[b, heads, len, dim])? } else { out })
}

impl Attention {
    fn load(loader: &mut ModuleLoader, p: &LayerPaths, spec: &DecoderSpec) -> Result<Self> {
        let eps = spec.rms_norm_eps;
        Ok(Self {
            q_proj: loader.linear(&p.q_proj)?,
            k_proj: loader.linear(&p.k_proj)?,
            v_proj: loader.linear(&p.v_proj)?,
            o_proj: loader.linear(&p.o_proj)?,
            q_norm: loader.optional_norm(spec.qk_norm, &p.q_norm, eps)?,
            k_norm: loader.optional_norm(spec.qk_norm, &p.k_norm, eps)?,
            heads: spec.heads as i32,
            kv_heads: spec.kv_heads as i32,
            scale: (spec.head_dim as f32).powf(-0.5),
        })
    }

    /// `[B, L, heads·head_dim]` → `[B, heads, L, head_dim]`, with the optional per-head norm.
    fn split_heads(x: Array, heads: i32, norm: Option<&RmsNorm>) -> Result<Array> {
        let (b, l) = (x.dim(0), x.dim(1));
        let x = x.reshape(&[b, l, heads, -1])?;
        let x = match norm {
            Some(norm) => norm.forward(&x)?,
            None => x,
        };
        Ok(x.transpose_axes(&[0, 2, 1, 3])?)
    }

    fn forward(&self, x: &Array, mask: &Mask, rope: &Rope, cache: Option<&mut KvCache>) -> Result<Array> {
        let (b, l) = (x.dim(0), x.dim(1));
        let queries = Self::split_heads(self.q_proj.forward(x)?, self.heads, self.q_norm.as_ref())?;
        let keys = Self::split_heads(self.k_proj.forward(x)?, self.kv_heads, self.k_norm.as_ref())?;
        let values = Self::split_heads(self.v_proj.forward(x)?, self.kv_heads, None)?;
        let offset = cache.as_ref().map_or(0, |c| c.offset());
        let queries = rope.forward(&queries, offset)?;
        let keys = rope.forward(&keys, offset)?;
        let fetched = match cache {
            Some(cache) => cache.update_and_fetch(&keys, &values)?,
            None => Fetched::Dense { keys, values },
        };
        let out = match fetched {
            Fetched::Dense { keys, values } => {
                let mask = match mask {
                    Mask::None => None,
                    Mask::Causal => Some(ScaledDotProductAttentionMask::Causal),
                    Mask::Array(m) => Some(ScaledDotProductAttentionMask::Array(m)),
                };
                fast::scaled_dot_product_attention(&queries, &keys, &values, self.scale, mask, None)?
            }
            Fetched::Quantized { keys, values, group_size, bits } => {
                quantized_attention(&queries, &keys, &values, self.scale, mask, group_size, bits)?
            }
        };
        self.o_proj.forward(&out.transpose_axes(&[0, 2, 1, 3])?.reshape(&[b, l, -1])?)
    }
}

struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn forward(&self, x: &Array) -> Result<Array> {
        self.down_proj.forward(&swiglu(&self.gate_proj.forward(x)?, &self.up_proj.forward(x)?)?)
    }
}

struct Block {
    attention: Attention,
    mlp: Mlp,
    input_layernorm: RmsNorm,
    post_attention_layernorm: RmsNorm,
}

/// A loaded decoder: embeddings, blocks, final norm and LM head.
pub struct Decoder {
    spec: DecoderSpec,
    embed_tokens: Weight,
    blocks: Vec<Block>,
    norm: RmsNorm,
    /// `None` when tied to the embeddings.
    lm_head: Option<Weight>,
    rope: Rope,
}

impl Decoder {
    /// Loads every tensor the spec calls for from `store` (which must then be empty).
    pub fn load(spec: DecoderSpec, config: &ModelConfig, store: WeightStore) -> Result<Self> {
        let eps = spec.rms_norm_eps;
        let kinds = spec.modules().into_iter().map(|m| (m.path, m.kind)).collect();
        let mut loader = ModuleLoader { store, kinds, quantization: config.quantization.as_ref() };
        let embed_tokens = loader.embedding(EMBED_TOKENS)?;
        let mut blocks = Vec::with_capacity(spec.layers);
        for i in 0..spec.layers {
            let p = LayerPaths::of(i);
            loader.store.discard(&p.rotary_inv_freq);
            blocks.push(Block {
                attention: Attention::load(&mut loader, &p, &spec)?,
                mlp: Mlp {
                    gate_proj: loader.linear(&p.gate_proj)?,
                    up_proj: loader.linear(&p.up_proj)?,
                    down_proj: loader.linear(&p.down_proj)?,
                },
                input_layernorm: loader.norm(&p.input_layernorm, eps)?,
                post_attention_layernorm: loader.norm(&p.post_attention_layernorm, eps)?,
            });
        }
        let norm = loader.norm(NORM, eps)?;
        let lm_head = if spec.tie_word_embeddings {
            // Tied checkpoints sometimes still carry a copy; mlx-lm drops it too.
            loader.store.discard(&format!("{LM_HEAD}.weight"));
            None
        } else {
            Some(loader.linear(LM_HEAD)?.weight)
        };
        loader.store.finish()?;
        let rope = spec.rope()?;
        Ok(Self { spec, embed_tokens, blocks, norm, lm_head, rope })
    }

    pub fn spec(&self) -> &DecoderSpec {
        &self.spec
    }

    /// Logits `[B, L, vocab]` for token ids `[B, L]`. With caches (one per layer) the tokens
    /// continue what the caches hold; without, they are a whole sequence.
    pub fn forward(&self, tokens: &Array, mut caches: Option<&mut [KvCache]>) -> Result<Array> {
        let len = tokens.dim(1);
        let mut h = self.embed_tokens.rows(tokens)?;
        let mask = match caches.as_deref() {
            Some([first, ..]) => first.make_mask(len)?,
            _ => Mask::causal_unless_single(len),
        };
        for (i, block) in self.blocks.iter().enumerate() {
            let cache = caches.as_deref_mut().map(|c| &mut c[i]);
            let r = block.attention.forward(&block.input_layernorm.forward(&h)?, &mask, &self.rope, cache)?;
            let hr = h.add(&r)?;
            h = hr.add(block.mlp.forward(&block.post_attention_layernorm.forward(&hr)?)?)?;
        }
        let h = self.norm.forward(&h)?;
        match &self.lm_head {
            Some(head) => head.matmul_t(&h),
            None => self.embed_tokens.matmul_t(&h),
        }
    }
}
