//! The decoder-only transformer that Llama, Mistral, Qwen2 and Qwen3 share (mlx-lm's
//! `llama.py` shape): pre-norm blocks of grouped-query attention with RoPE and a SwiGLU MLP.
//! Architectures differ only in a [`DecoderSpec`]: biases, q/k norms, RoPE and tied embeddings.
use mlx_rs::{
    fast::{self, ScaledDotProductAttentionMask},
    nn::silu,
    ops::{arange, power, quantized_matmul, select, softmax_axis},
    Array, Dtype,
};

use super::layers::{Linear, RmsNorm, Rope, Weight};
use crate::{
    cache::{Fetched, KvCache, Mask, QuantizedTensor},
    config::{ModelConfig, RopeScaling},
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

/// Llama 3's frequency smoothing, computed with MLX ops in mlx-lm's order so values match.
fn llama3_freqs(dims: i32, base: f32, factor: f32, s: &RopeScaling) -> Result<Array> {
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
fn dtype_min(dtype: Dtype) -> f32 {
    match dtype {
        Dtype::Float16 => -65504.0,
        Dtype::Bfloat16 => -3.389_531_4e38,
        _ => f32::MIN,
    }
}

/// mlx-lm's `quantized_scaled_dot_product_attention`: attention straight on quantized keys/values.
fn quantized_attention(
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
    fn load(store: &mut WeightStore, p: &str, spec: &DecoderSpec, q: Option<&crate::config::QuantizationConfig>) -> Result<Self> {
        let (d, hd) = (spec.hidden_size, spec.head_dim);
        let norm = |store: &mut WeightStore, name: &str| -> Result<Option<RmsNorm>> {
            spec.qk_norm.then(|| RmsNorm::load(store, &format!("{p}.{name}"), hd, spec.rms_norm_eps)).transpose()
        };
        Ok(Self {
            q_proj: Linear::load(store, &format!("{p}.q_proj"), d, spec.heads * hd, spec.qkv_bias, q)?,
            k_proj: Linear::load(store, &format!("{p}.k_proj"), d, spec.kv_heads * hd, spec.qkv_bias, q)?,
            v_proj: Linear::load(store, &format!("{p}.v_proj"), d, spec.kv_heads * hd, spec.qkv_bias, q)?,
            o_proj: Linear::load(store, &format!("{p}.o_proj"), spec.heads * hd, d, spec.o_bias, q)?,
            q_norm: norm(store, "q_norm")?,
            k_norm: norm(store, "k_norm")?,
            heads: spec.heads as i32,
            kv_heads: spec.kv_heads as i32,
            scale: (hd as f32).powf(-0.5),
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
        let gate = silu(self.gate_proj.forward(x)?)?;
        self.down_proj.forward(&gate.multiply(self.up_proj.forward(x)?)?)
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
    pub fn load(spec: DecoderSpec, config: &ModelConfig, mut store: WeightStore) -> Result<Self> {
        let q = config.quantization.as_ref();
        let (d, ff, eps) = (spec.hidden_size, spec.intermediate_size, spec.rms_norm_eps);
        let embed_tokens = Weight::load(&mut store, "model.embed_tokens", spec.vocab_size, d, q)?;
        let mut blocks = Vec::with_capacity(spec.layers);
        for i in 0..spec.layers {
            let p = format!("model.layers.{i}");
            store.discard(&format!("{p}.self_attn.rotary_emb.inv_freq"));
            blocks.push(Block {
                attention: Attention::load(&mut store, &format!("{p}.self_attn"), &spec, q)?,
                mlp: Mlp {
                    gate_proj: Linear::load(&mut store, &format!("{p}.mlp.gate_proj"), d, ff, spec.mlp_bias, q)?,
                    up_proj: Linear::load(&mut store, &format!("{p}.mlp.up_proj"), d, ff, spec.mlp_bias, q)?,
                    down_proj: Linear::load(&mut store, &format!("{p}.mlp.down_proj"), ff, d, spec.mlp_bias, q)?,
                },
                input_layernorm: RmsNorm::load(&mut store, &format!("{p}.input_layernorm"), d, eps)?,
                post_attention_layernorm: RmsNorm::load(&mut store, &format!("{p}.post_attention_layernorm"), d, eps)?,
            });
        }
        let norm = RmsNorm::load(&mut store, "model.norm", d, eps)?;
        let lm_head = if spec.tie_word_embeddings {
            // Tied checkpoints sometimes still carry a copy; mlx-lm drops it too.
            store.discard("lm_head.weight");
            None
        } else {
            Some(Weight::load(&mut store, "lm_head", spec.vocab_size, d, q)?)
        };
        store.finish()?;
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
