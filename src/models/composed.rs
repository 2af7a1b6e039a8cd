//! Decoders composed per architecture from the shared layers (`layers/`): an architecture file
//! (Gemma 2, Gemma 3, Phi-3, Mixtral, Qwen3-MoE) writes a [`Blueprint`] — per layer, which
//! attention, which feed-forward network, which norms, which window, each with its modules'
//! mlx-lm paths and shapes — and that one description gives both the module list (`modules()`,
//! what the loader expects and `synth` writes) and the loaded [`ComposedDecoder`].
use mlx_rs::{ops::clip, Array, Dtype};

use super::{
    layers::{
        activations::softcap,
        attention::{Attention, Projections, Scores},
        experts::{Routing, SparseMoe, SwitchGlu, SwitchLinear},
        mlp::{FeedForward, GateActivation, GateUp, GatedMlp},
        rope::{RopeSpec, Rotary},
        RmsNorm, Weight,
    },
    transformer::{ModuleLoader, EMBED_TOKENS, LM_HEAD, NORM},
    LanguageModel, Module, ModuleKind,
};
use crate::{
    cache::{KvCache, KvCacheOptions, Mask, PlainCache, RotatingCache},
    config::{ModelConfig, QuantParams},
    device::{self, DeviceKind},
    error::{Error, Result},
    weights::WeightStore,
};

/// The shape of a layer's attention.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl AttentionShape {
    /// The config's heads (`num_key_value_heads`, else as many as query heads) of `head_dim`.
    pub fn of(c: &ModelConfig, head_dim: usize) -> Self {
        Self { hidden: c.hidden_size, heads: c.num_attention_heads, kv_heads: c.n_kv_heads(), head_dim }
    }

    /// `head_dim^-1/2`, computed in double precision as mlx-lm's Python does.
    pub fn default_scale(&self) -> f32 {
        (self.head_dim as f64).powf(-0.5) as f32
    }
}

/// One plan per layer of `c`, from each layer's index and names.
pub fn layer_plans(c: &ModelConfig, mut plan: impl FnMut(usize, &LayerNames) -> LayerPlan) -> Vec<LayerPlan> {
    (0..c.num_hidden_layers).map(|i| plan(i, &LayerNames::of(i))).collect()
}

#[derive(Debug, Clone)]
pub enum ProjectionModules {
    Separate { q_proj: Module, k_proj: Module, v_proj: Module },
    Fused { qkv_proj: Module },
}

#[derive(Debug, Clone)]
pub struct AttentionPlan {
    pub projections: ProjectionModules,
    pub o_proj: Module,
    /// Per-head RMS norms of queries and keys (Qwen3, Gemma 3).
    pub qk_norms: Option<(Module, Module)>,
    pub shape: AttentionShape,
    pub scale: f32,
    pub scores: Scores,
    pub rope: RopeSpec,
}

#[derive(Debug, Clone)]
pub enum GateUpModules {
    Separate { gate_proj: Module, up_proj: Module },
    Fused { gate_up_proj: Module },
}

#[derive(Debug, Clone)]
pub enum FeedForwardPlan {
    Dense { gate_up: GateUpModules, down_proj: Module, activation: GateActivation },
    /// `experts` modules are stacked `[experts, out, in]` tensors.
    Sparse { router: Module, gate_proj: Module, up_proj: Module, down_proj: Module, top_k: usize, routing: Routing },
}

/// Where a block normalizes.
#[derive(Debug, Clone)]
pub enum NormPlan {
    /// `h = x + attn(norm(x)); out = h + ffn(norm(h))` (Llama and most).
    PreNorm { input_layernorm: Module, post_attention_layernorm: Module },
    /// Gemma: the attention and feed-forward outputs are normalized too before each residual.
    Sandwich {
        input_layernorm: Module,
        post_attention_layernorm: Module,
        pre_feedforward_layernorm: Module,
        post_feedforward_layernorm: Module,
    },
}

#[derive(Debug, Clone)]
pub struct LayerPlan {
    pub norms: NormPlan,
    pub attention: AttentionPlan,
    pub feed_forward: FeedForwardPlan,
    /// The sliding window this layer attends within (`None`: the whole context).
    pub window: Option<usize>,
}

/// What the token embeddings are multiplied by before the first layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedScale {
    None,
    /// `sqrt(hidden_size)` in the activations' dtype (Gemma 2).
    SqrtHidden,
    /// `sqrt(hidden_size)` rounded to bfloat16 first (Gemma 3).
    SqrtHiddenBfloat16,
}

/// How a residual branch is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residual {
    Add,
    /// Gemma 3's `clip_residual`: in float16, added in float32 and clipped to float16's range.
    ClipFloat16,
}

/// Which caches the layers get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// mlx-lm's default: one kind for every layer, as the KV cache options say.
    Uniform,
    /// The architecture's own `make_cache`: a rotating cache of its window for each sliding
    /// layer, a plain cache elsewhere; `max_kv_size` does not apply.
    PerLayer,
}

/// Everything that makes up one architecture's decoder, with its modules' paths and shapes.
#[derive(Debug, Clone)]
pub struct Blueprint {
    /// `model_type`, for messages.
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub embed_scale: EmbedScale,
    pub layers: Vec<LayerPlan>,
    /// An `lm_head` of its own; `false`: the head is the embedding table (tied).
    pub lm_head: bool,
    /// Gemma's norms scale by `1 + weight`.
    pub norms_offset_by_one: bool,
    pub rms_norm_eps: f32,
    pub final_softcap: Option<f32>,
    pub residual: Residual,
    pub caches: CachePolicy,
    /// Modules mlx-lm's `quant_predicate` for this architecture quantizes differently from the
    /// rest (Qwen3-MoE's routers at 8 bits).
    pub quantization_overrides: Vec<(String, QuantParams)>,
}

/// `model.layers.{i}.…`: the paths of one layer's modules.
pub struct LayerNames(String);

impl LayerNames {
    pub fn of(i: usize) -> Self {
        Self(format!("model.layers.{i}"))
    }

    pub fn path(&self, name: &str) -> String {
        format!("{}.{name}", self.0)
    }

    fn linear(&self, name: &str, in_dim: usize, out_dim: usize) -> Module {
        Module { path: self.path(name), kind: ModuleKind::Linear { in_dim, out_dim, bias: false } }
    }

    fn norm(&self, name: &str, dim: usize) -> Module {
        Module { path: self.path(name), kind: ModuleKind::Norm { dim } }
    }

    /// mlx-lm's `input_layernorm` and `post_attention_layernorm`.
    pub fn pre_norms(&self, hidden: usize) -> NormPlan {
        NormPlan::PreNorm {
            input_layernorm: self.norm("input_layernorm", hidden),
            post_attention_layernorm: self.norm("post_attention_layernorm", hidden),
        }
    }

    /// Gemma's four norms.
    pub fn sandwich_norms(&self, hidden: usize) -> NormPlan {
        NormPlan::Sandwich {
            input_layernorm: self.norm("input_layernorm", hidden),
            post_attention_layernorm: self.norm("post_attention_layernorm", hidden),
            pre_feedforward_layernorm: self.norm("pre_feedforward_layernorm", hidden),
            post_feedforward_layernorm: self.norm("post_feedforward_layernorm", hidden),
        }
    }

    /// `self_attn.{q,k,v,o}_proj` (or `qkv_proj` when `fused`), without biases, and with
    /// `self_attn.{q,k}_norm` when `qk_norms`.
    pub fn attention(&self, shape: AttentionShape, fused: bool, qk_norms: bool, scale: f32, scores: Scores, rope: RopeSpec) -> AttentionPlan {
        let AttentionShape { hidden, heads, kv_heads, head_dim } = shape;
        let projections = if fused {
            ProjectionModules::Fused {
                qkv_proj: self.linear("self_attn.qkv_proj", hidden, (heads + 2 * kv_heads) * head_dim),
            }
        } else {
            ProjectionModules::Separate {
                q_proj: self.linear("self_attn.q_proj", hidden, heads * head_dim),
                k_proj: self.linear("self_attn.k_proj", hidden, kv_heads * head_dim),
                v_proj: self.linear("self_attn.v_proj", hidden, kv_heads * head_dim),
            }
        };
        AttentionPlan {
            projections,
            o_proj: self.linear("self_attn.o_proj", heads * head_dim, hidden),
            qk_norms: qk_norms.then(|| (self.norm("self_attn.q_norm", head_dim), self.norm("self_attn.k_norm", head_dim))),
            shape,
            scale,
            scores,
            rope,
        }
    }

    /// A gated MLP under `mlp.` (`gate_proj`, `up_proj`, `down_proj`, or `gate_up_proj`).
    pub fn gated_mlp(&self, hidden: usize, intermediate: usize, fused: bool, activation: GateActivation) -> FeedForwardPlan {
        let gate_up = if fused {
            GateUpModules::Fused { gate_up_proj: self.linear("mlp.gate_up_proj", hidden, 2 * intermediate) }
        } else {
            GateUpModules::Separate {
                gate_proj: self.linear("mlp.gate_proj", hidden, intermediate),
                up_proj: self.linear("mlp.up_proj", hidden, intermediate),
            }
        };
        FeedForwardPlan::Dense { gate_up, down_proj: self.linear("mlp.down_proj", intermediate, hidden), activation }
    }

    /// A sparse MoE block under `block` (`block_sparse_moe` in Mixtral, `mlp` in Qwen3-MoE):
    /// the router `gate` and the stacked experts `switch_mlp.{gate,up,down}_proj`.
    pub fn sparse_moe(&self, block: &str, hidden: usize, intermediate: usize, experts: usize, top_k: usize, routing: Routing) -> FeedForwardPlan {
        let stacked = |name: &str, in_dim, out_dim| Module {
            path: self.path(&format!("{block}.switch_mlp.{name}")),
            kind: ModuleKind::Experts { experts, active: top_k, in_dim, out_dim },
        };
        FeedForwardPlan::Sparse {
            router: self.linear(&format!("{block}.gate"), hidden, experts),
            gate_proj: stacked("gate_proj", hidden, intermediate),
            up_proj: stacked("up_proj", hidden, intermediate),
            down_proj: stacked("down_proj", intermediate, hidden),
            top_k,
            routing,
        }
    }
}

impl NormPlan {
    fn modules(&self) -> Vec<&Module> {
        match self {
            NormPlan::PreNorm { input_layernorm, post_attention_layernorm } => vec![input_layernorm, post_attention_layernorm],
            NormPlan::Sandwich { input_layernorm, post_attention_layernorm, pre_feedforward_layernorm, post_feedforward_layernorm } => {
                vec![input_layernorm, post_attention_layernorm, pre_feedforward_layernorm, post_feedforward_layernorm]
            }
        }
    }
}

impl AttentionPlan {
    fn modules(&self) -> Vec<&Module> {
        let mut list = match &self.projections {
            ProjectionModules::Separate { q_proj, k_proj, v_proj } => vec![q_proj, k_proj, v_proj],
            ProjectionModules::Fused { qkv_proj } => vec![qkv_proj],
        };
        list.push(&self.o_proj);
        if let Some((q_norm, k_norm)) = &self.qk_norms {
            list.extend([q_norm, k_norm]);
        }
        list
    }
}

impl FeedForwardPlan {
    fn modules(&self) -> Vec<&Module> {
        match self {
            FeedForwardPlan::Dense { gate_up: GateUpModules::Separate { gate_proj, up_proj }, down_proj, .. } => {
                vec![gate_proj, up_proj, down_proj]
            }
            FeedForwardPlan::Dense { gate_up: GateUpModules::Fused { gate_up_proj }, down_proj, .. } => vec![gate_up_proj, down_proj],
            FeedForwardPlan::Sparse { router, gate_proj, up_proj, down_proj, .. } => vec![router, gate_proj, up_proj, down_proj],
        }
    }
}

impl Blueprint {
    /// `layers` with Llama's conventions around them: embeddings as they are, a head of its own
    /// unless `tied`, plain RMS norms with the config's epsilon, plain residuals, one cache kind
    /// for every layer, mlx-lm's default quantization; architectures override what differs.
    pub fn new(c: &ModelConfig, layers: Vec<LayerPlan>, tied: bool) -> Self {
        Self {
            model_type: c.model_type.clone(),
            vocab_size: c.vocab_size,
            hidden_size: c.hidden_size,
            embed_scale: EmbedScale::None,
            layers,
            lm_head: !tied,
            norms_offset_by_one: false,
            rms_norm_eps: c.rms_norm_eps,
            final_softcap: None,
            residual: Residual::Add,
            caches: CachePolicy::Uniform,
            quantization_overrides: Vec::new(),
        }
    }

    fn embed_tokens(&self) -> Module {
        Module { path: EMBED_TOKENS.into(), kind: ModuleKind::Embedding { vocab: self.vocab_size, dim: self.hidden_size } }
    }

    fn norm(&self) -> Module {
        Module { path: NORM.into(), kind: ModuleKind::Norm { dim: self.hidden_size } }
    }

    fn head(&self) -> Option<Module> {
        self.lm_head.then(|| Module {
            path: LM_HEAD.into(),
            kind: ModuleKind::Linear { in_dim: self.hidden_size, out_dim: self.vocab_size, bias: false },
        })
    }

    /// Every module with its mlx-lm path and logical shape, layer by layer.
    pub fn modules(&self) -> Vec<Module> {
        let mut list = vec![self.embed_tokens()];
        for layer in &self.layers {
            let norms = layer.norms.modules();
            list.push(norms[0].clone());
            list.extend(layer.attention.modules().into_iter().cloned());
            list.extend(norms[1..].iter().map(|m| (*m).clone()));
            list.extend(layer.feed_forward.modules().into_iter().cloned());
        }
        list.push(self.norm());
        list.extend(self.head());
        list
    }

    /// The head dimension of the attention layers (the KV cache's last axis).
    pub fn head_dim(&self) -> usize {
        self.layers.first().map_or(0, |l| l.attention.shape.head_dim)
    }

    /// Loads every tensor the blueprint calls for from `store` (which must then be empty).
    pub fn load(self, config: &ModelConfig, store: WeightStore) -> Result<ComposedDecoder> {
        let kinds = self.modules().into_iter().map(|m| (m.path, m.kind)).collect();
        let mut loader = ModuleLoader { store, kinds, quantization: config.quantization.as_ref() };
        let norm = |loader: &mut ModuleLoader, m: &Module| -> Result<RmsNorm> {
            let norm = loader.norm(&m.path, self.rms_norm_eps)?;
            if self.norms_offset_by_one {
                norm.offset_by_one()
            } else {
                Ok(norm)
            }
        };
        let embed_tokens = loader.embedding(EMBED_TOKENS)?;
        let mut layers = Vec::with_capacity(self.layers.len());
        for plan in &self.layers {
            let norms = match &plan.norms {
                NormPlan::PreNorm { input_layernorm, post_attention_layernorm } => Norms::PreNorm {
                    input_layernorm: norm(&mut loader, input_layernorm)?,
                    post_attention_layernorm: norm(&mut loader, post_attention_layernorm)?,
                },
                NormPlan::Sandwich { input_layernorm, post_attention_layernorm, pre_feedforward_layernorm, post_feedforward_layernorm } => {
                    Norms::Sandwich {
                        input_layernorm: norm(&mut loader, input_layernorm)?,
                        post_attention_layernorm: norm(&mut loader, post_attention_layernorm)?,
                        pre_feedforward_layernorm: norm(&mut loader, pre_feedforward_layernorm)?,
                        post_feedforward_layernorm: norm(&mut loader, post_feedforward_layernorm)?,
                    }
                }
            };
            let a = &plan.attention;
            let projections = match &a.projections {
                ProjectionModules::Separate { q_proj, k_proj, v_proj } => Projections::Separate {
                    q_proj: loader.linear(&q_proj.path)?,
                    k_proj: loader.linear(&k_proj.path)?,
                    v_proj: loader.linear(&v_proj.path)?,
                },
                ProjectionModules::Fused { qkv_proj } => Projections::Fused { qkv_proj: loader.linear(&qkv_proj.path)? },
            };
            let (q_norm, k_norm) = match &a.qk_norms {
                Some((q, k)) => (Some(norm(&mut loader, q)?), Some(norm(&mut loader, k)?)),
                None => (None, None),
            };
            let attention = Attention {
                projections,
                o_proj: loader.linear(&a.o_proj.path)?,
                q_norm,
                k_norm,
                heads: a.shape.heads as i32,
                kv_heads: a.shape.kv_heads as i32,
                head_dim: a.shape.head_dim as i32,
                scale: a.scale,
                scores: a.scores,
            };
            let feed_forward = match &plan.feed_forward {
                FeedForwardPlan::Dense { gate_up, down_proj, activation } => FeedForward::Dense(GatedMlp {
                    gate_up: match gate_up {
                        GateUpModules::Separate { gate_proj, up_proj } => {
                            GateUp::Separate { gate_proj: loader.linear(&gate_proj.path)?, up_proj: loader.linear(&up_proj.path)? }
                        }
                        GateUpModules::Fused { gate_up_proj } => GateUp::Fused { gate_up_proj: loader.linear(&gate_up_proj.path)? },
                    },
                    down_proj: loader.linear(&down_proj.path)?,
                    activation: *activation,
                }),
                FeedForwardPlan::Sparse { router, gate_proj, up_proj, down_proj, top_k, routing } => FeedForward::Sparse(SparseMoe {
                    router: loader.linear(&router.path)?,
                    experts: SwitchGlu {
                        gate_proj: load_experts(&mut loader, gate_proj)?,
                        up_proj: load_experts(&mut loader, up_proj)?,
                        down_proj: load_experts(&mut loader, down_proj)?,
                    },
                    top_k: *top_k as i32,
                    routing: *routing,
                    reduce: loader.store.reduce_group(&format!("{}.weight", down_proj.path)),
                }),
            };
            let window = plan.window.map(|w| w as i32);
            layers.push(Layer { norms, attention, rope: a.rope.build()?, feed_forward, window });
        }
        let final_norm = norm(&mut loader, &self.norm())?;
        let lm_head = match self.head() {
            Some(head) => Some(loader.linear(&head.path)?.weight),
            None => {
                // Tied checkpoints sometimes still carry a copy; mlx-lm drops it too.
                loader.store.discard(&format!("{LM_HEAD}.weight"));
                None
            }
        };
        loader.store.finish()?;
        let embed_scale = match self.embed_scale {
            EmbedScale::None => None,
            EmbedScale::SqrtHidden => Some(Array::from_f32((self.hidden_size as f64).sqrt() as f32)),
            EmbedScale::SqrtHiddenBfloat16 => {
                Some(Array::from_f32((self.hidden_size as f64).sqrt() as f32).as_dtype(Dtype::Bfloat16)?)
            }
        };
        Ok(ComposedDecoder {
            head_dim: self.head_dim(),
            blueprint: self,
            embed_tokens,
            embed_scale,
            layers,
            norm: final_norm,
            lm_head,
        })
    }
}

fn load_experts(loader: &mut ModuleLoader, module: &Module) -> Result<SwitchLinear> {
    match loader.kind(&module.path) {
        ModuleKind::Experts { experts, in_dim, out_dim, .. } => {
            SwitchLinear::load(&mut loader.store, &module.path, experts, in_dim, out_dim, loader.quantization)
        }
        other => unreachable!("{} is {other:?}, not stacked experts", module.path),
    }
}

enum Norms {
    PreNorm { input_layernorm: RmsNorm, post_attention_layernorm: RmsNorm },
    Sandwich { input_layernorm: RmsNorm, post_attention_layernorm: RmsNorm, pre_feedforward_layernorm: RmsNorm, post_feedforward_layernorm: RmsNorm },
}

struct Layer {
    norms: Norms,
    attention: Attention,
    rope: Rotary,
    feed_forward: FeedForward,
    window: Option<i32>,
}

impl Residual {
    fn add(self, x: &Array, y: &Array) -> Result<Array> {
        if self == Residual::ClipFloat16 && x.dtype() == Dtype::Float16 {
            let bound = 65504.0f32;
            let sum = x.as_dtype(Dtype::Float32)?.add(y.as_dtype(Dtype::Float32)?)?;
            return Ok(clip(&sum, (Array::from_f32(-bound), Array::from_f32(bound)))?.as_dtype(Dtype::Float16)?);
        }
        Ok(x.add(y)?)
    }
}

impl Layer {
    fn forward(&self, x: &Array, mask: &Mask, cache: Option<&mut KvCache>, residual: Residual) -> Result<Array> {
        match &self.norms {
            Norms::PreNorm { input_layernorm, post_attention_layernorm } => {
                let r = self.attention.forward(&input_layernorm.forward(x)?, mask, &self.rope, cache)?;
                let h = x.add(&r)?;
                Ok(h.add(self.feed_forward.forward(&post_attention_layernorm.forward(&h)?)?)?)
            }
            Norms::Sandwich { input_layernorm, post_attention_layernorm, pre_feedforward_layernorm, post_feedforward_layernorm } => {
                let r = self.attention.forward(&input_layernorm.forward(x)?, mask, &self.rope, cache)?;
                let h = residual.add(x, &post_attention_layernorm.forward(&r)?)?;
                let r = self.feed_forward.forward(&pre_feedforward_layernorm.forward(&h)?)?;
                residual.add(&h, &post_feedforward_layernorm.forward(&r)?)
            }
        }
    }
}

/// A loaded composed decoder.
pub struct ComposedDecoder {
    blueprint: Blueprint,
    head_dim: usize,
    embed_tokens: Weight,
    embed_scale: Option<Array>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    /// `None` when tied to the embeddings.
    lm_head: Option<Weight>,
}

impl ComposedDecoder {
    pub fn blueprint(&self) -> &Blueprint {
        &self.blueprint
    }

    /// One mask per distinct window, each from the cache of the first layer with that window
    /// (mlx-lm's `cache[0]` / `cache[sliding_window_pattern - 1]`).
    fn masks(&self, n: i32, caches: Option<&[KvCache]>) -> Result<Vec<(Option<i32>, Mask)>> {
        let mut masks: Vec<(Option<i32>, Mask)> = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            if masks.iter().any(|(window, _)| *window == layer.window) {
                continue;
            }
            let mask = match caches {
                Some(caches) => caches[i].make_mask(n)?,
                None => Mask::sequence(n, layer.window)?,
            };
            masks.push((layer.window, mask));
        }
        Ok(masks)
    }

    /// The dtype of the first float (unquantized) stacked experts, if any.
    fn float_experts_dtype(&self) -> Option<Dtype> {
        self.layers.iter().find_map(|layer| match &layer.feed_forward {
            FeedForward::Sparse(SparseMoe { experts: SwitchGlu { gate_proj: SwitchLinear::Float(w), .. }, .. }) => Some(w.dtype()),
            _ => None,
        })
    }

    fn unsupported(&self, setting: &'static str, reason: String) -> Error {
        Error::UnsupportedSetting { model_type: self.blueprint.model_type.clone(), setting, reason }
    }
}

impl LanguageModel for ComposedDecoder {
    fn forward(&self, tokens: &Array, mut caches: Option<&mut [KvCache]>) -> Result<Array> {
        let n = tokens.dim(1);
        let mut h = self.embed_tokens.rows(tokens)?;
        if let Some(scale) = &self.embed_scale {
            h = h.multiply(scale.as_dtype(h.dtype())?)?;
        }
        let masks = self.masks(n, caches.as_deref())?;
        for (i, layer) in self.layers.iter().enumerate() {
            let cache = caches.as_deref_mut().map(|c| &mut c[i]);
            let (_, mask) = masks.iter().find(|(window, _)| *window == layer.window).expect("a mask per window");
            h = layer.forward(&h, mask, cache, self.blueprint.residual)?;
        }
        let h = self.norm.forward(&h)?;
        let logits = match &self.lm_head {
            Some(head) => head.matmul_t(&h)?,
            None => self.embed_tokens.matmul_t(&h)?,
        };
        match self.blueprint.final_softcap {
            Some(cap) => softcap(&logits, cap),
            None => Ok(logits),
        }
    }

    fn num_layers(&self) -> usize {
        self.layers.len()
    }

    fn head_dim(&self) -> usize {
        self.head_dim
    }

    fn vocab_size(&self) -> usize {
        self.blueprint.vocab_size
    }

    /// mlx-lm's caches for this architecture, refusing what mlx-lm cannot run on it.
    fn make_caches(&self, options: &KvCacheOptions) -> Result<Vec<KvCache>> {
        options.validate(self.head_dim)?;
        if let Some(dtype) = self.float_experts_dtype().filter(|d| *d != Dtype::Float32) {
            if device::current_kind()? == DeviceKind::Cpu {
                return Err(self.unsupported(
                    "running float experts on the CPU",
                    format!(
                        "they are {dtype:?} and MLX 0.32.2's CPU gather_mm runs only float32 (mlx-lm fails the same way); \
                         use float32 weights (synth --dtype float32) or a quantized model"
                    ),
                ));
            }
        }
        let windows: Vec<Option<i32>> = self.layers.iter().map(|l| l.window).collect();
        if options.kv_bits.is_some() {
            if self.layers.iter().any(|l| matches!(l.attention.scores, Scores::SoftCapped { .. })) {
                return Err(self.unsupported(
                    "kv_bits",
                    "its soft-capped attention needs dense keys and values (mlx-lm 0.32.2 fails on a quantized cache too)".into(),
                ));
            }
            if windows.iter().any(Option::is_some) {
                return Err(self.unsupported(
                    "kv_bits",
                    "its sliding-window layers keep rotating caches, which mlx-lm cannot quantize either (RotatingKVCache Quantization NYI)".into(),
                ));
            }
        }
        match self.blueprint.caches {
            CachePolicy::Uniform => Ok(options.new_caches(self.layers.len())),
            CachePolicy::PerLayer => {
                if options.max_kv_size.is_some() {
                    let sliding = windows.iter().filter(|w| w.is_some()).count();
                    return Err(self.unsupported(
                        "max_kv_size",
                        format!(
                            "it sizes its own caches as mlx-lm's make_cache does ({sliding} of {} layers slide over a window, the rest keep everything), and mlx-lm ignores max_kv_size for it",
                            windows.len()
                        ),
                    ));
                }
                Ok(windows
                    .iter()
                    .map(|window| match window {
                        Some(size) => KvCache::Rotating(RotatingCache::new(*size, 0)),
                        None => KvCache::Plain(PlainCache::default()),
                    })
                    .collect())
            }
        }
    }
}
