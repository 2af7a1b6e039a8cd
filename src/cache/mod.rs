//! KV caches, kept outside the model: a plain cache grown in steps, a quantized cache and a
//! rotating (bounded) cache, following mlx-lm's semantics so that results match it.
//! `update_and_fetch` returns [`Fetched`], dense or quantized, and attention matches on it.
mod plain;
mod quantized;
mod rotating;

use mlx_rs::{
    ops::{
        concatenate,
        indexing::TryIndexOp,
        logical_and,
    },
    Array,
};

pub use plain::PlainCache;
pub use quantized::{QuantizedCache, QuantizedTensor};
pub use rotating::RotatingCache;

use crate::{
    config::QuantParams,
    ops::{slice_update, Update},
    error::{Error, Result},
};

/// Growth step of the plain and quantized caches, in tokens (mlx-lm's).
pub const STEP: i32 = 256;
/// Tokens at the start that a rotating cache never evicts (mlx-lm's `keep=4`).
pub const ROTATING_KEEP: i32 = 4;

/// What the caches of one generation are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KvCacheOptions {
    /// Quantize keys and values to this many bits (`None`: keep them in the model's dtype).
    pub kv_bits: Option<i32>,
    pub kv_group_size: i32,
    /// The cache turns quantized once it holds at least this many tokens.
    pub quantized_kv_start: i32,
    /// Bound the cache to this many tokens with a rotating cache.
    pub max_kv_size: Option<i32>,
}

impl Default for KvCacheOptions {
    fn default() -> Self {
        Self { kv_bits: None, kv_group_size: 64, quantized_kv_start: 0, max_kv_size: None }
    }
}

impl KvCacheOptions {
    /// Rejects combinations that cannot work rather than silently falling back.
    pub fn validate(&self, head_dim: usize) -> Result<()> {
        if let Some(bits) = self.kv_bits {
            QuantParams { group_size: self.kv_group_size, bits }
                .check()
                .map_err(|detail| Error::InvalidOption(format!("KV cache: {detail}")))?;
            if head_dim as i32 % self.kv_group_size != 0 {
                return Err(Error::InvalidOption(format!(
                    "kv_group_size {} does not divide the model's head_dim {head_dim}",
                    self.kv_group_size
                )));
            }
            if self.max_kv_size.is_some() {
                return Err(Error::InvalidOption(
                    "a quantized KV cache (kv_bits) cannot also be rotating (max_kv_size); mlx-lm cannot do this either".into(),
                ));
            }
            if self.quantized_kv_start < 0 {
                return Err(Error::InvalidOption("quantized_kv_start must be >= 0".into()));
            }
        }
        if let Some(size) = self.max_kv_size {
            if size <= ROTATING_KEEP {
                return Err(Error::InvalidOption(format!("max_kv_size {size} must exceed the {ROTATING_KEEP} kept tokens")));
            }
        }
        Ok(())
    }

    /// One empty cache per layer.
    pub fn new_caches(&self, layers: usize) -> Vec<KvCache> {
        (0..layers)
            .map(|_| match self.max_kv_size {
                Some(max_size) => KvCache::Rotating(RotatingCache::new(max_size, ROTATING_KEEP)),
                None => KvCache::Plain(PlainCache::default()),
            })
            .collect()
    }
}

/// Keys and values as attention consumes them.
pub enum Fetched {
    Dense { keys: Array, values: Array },
    Quantized { keys: QuantizedTensor, values: QuantizedTensor, group_size: i32, bits: i32 },
}

/// The attention mask for a forward pass of `n` new tokens.
pub enum Mask {
    None,
    /// Causal, aligned to the end of the keys (MLX's "causal" mode).
    Causal,
    /// An explicit boolean mask `[n, keys]` (true = attend).
    Array(Array),
}

impl Mask {
    /// mlx-lm's rule for a full-history forward pass: a single new token sees every key,
    /// several need the causal mask.
    pub fn causal_unless_single(n: i32) -> Mask {
        if n == 1 {
            Mask::None
        } else {
            Mask::Causal
        }
    }

    /// mlx-lm's `create_attention_mask` without a cache, for layers that attend within a sliding
    /// `window` (or to everything, `None`): an explicit mask once the sequence is longer than it.
    pub fn sequence(n: i32, window: Option<i32>) -> Result<Mask> {
        match window {
            Some(window) if n > 1 && n > window => Ok(Mask::Array(causal_mask(n, 0, Some(window))?)),
            _ => Ok(Mask::causal_unless_single(n)),
        }
    }

    /// The mask as a boolean array `[q_len, k_len]` (causal: aligned to the end of the keys), for
    /// attention computed without MLX's fused kernel; `None` when nothing is masked.
    pub fn to_array(&self, q_len: i32, k_len: i32) -> Result<Option<Array>> {
        Ok(match self {
            Mask::None => None,
            Mask::Array(m) => Some(m.clone()),
            Mask::Causal => {
                let q_idx = Array::arange::<_, i32>(k_len - q_len, k_len, None)?.reshape(&[-1, 1])?;
                let k_idx = Array::arange::<_, i32>(None, k_len, None)?.reshape(&[1, -1])?;
                Some(q_idx.ge(&k_idx)?)
            }
        })
    }
}

/// One layer's cache. A clone shares the arrays (MLX arrays are immutable): a snapshot.
#[derive(Clone)]
pub enum KvCache {
    Plain(PlainCache),
    Quantized(QuantizedCache),
    Rotating(RotatingCache),
}

impl KvCache {
    /// Tokens seen so far (the position of the next token).
    pub fn offset(&self) -> i32 {
        match self {
            KvCache::Plain(c) => c.offset,
            KvCache::Quantized(c) => c.offset,
            KvCache::Rotating(c) => c.offset,
        }
    }

    /// Appends `keys`/`values` (`[B, kv_heads, L, head_dim]`) and returns everything to attend to.
    pub fn update_and_fetch(&mut self, keys: &Array, values: &Array) -> Result<Fetched> {
        match self {
            KvCache::Plain(c) => c.update_and_fetch(keys, values),
            KvCache::Quantized(c) => c.update_and_fetch(keys, values),
            KvCache::Rotating(c) => c.update_and_fetch(keys, values),
        }
    }

    /// The mask for `n` new tokens, given what the cache holds now.
    pub fn make_mask(&self, n: i32) -> Result<Mask> {
        match self {
            KvCache::Rotating(c) => c.make_mask(n),
            _ => Ok(Mask::causal_unless_single(n)),
        }
    }

    /// Bytes held by the cache's arrays (allocated capacity, as mlx-lm counts it).
    pub fn nbytes(&self) -> usize {
        self.arrays().iter().map(|a| a.nbytes()).sum()
    }

    /// The arrays to evaluate so the cache is materialized.
    pub fn arrays(&self) -> Vec<&Array> {
        match self {
            KvCache::Plain(c) => c.arrays(),
            KvCache::Quantized(c) => c.arrays(),
            KvCache::Rotating(c) => c.arrays(),
        }
    }

    /// Whether [`Self::trim`] can drop tokens from the end (mlx-lm's `is_trimmable`): the plain
    /// and quantized caches always, a rotating cache only while it has not wrapped (its offset
    /// below `max_size`), since after that the oldest tokens are overwritten.
    pub fn is_trimmable(&self) -> bool {
        match self {
            KvCache::Plain(_) | KvCache::Quantized(_) => true,
            KvCache::Rotating(c) => c.offset < c.max_size,
        }
    }

    /// Forgets the last `n` tokens (at most all of them) and returns how many were dropped, as
    /// mlx-lm's `trim`: only the offset moves back; the buffers keep their contents and the next
    /// update overwrites them.
    pub fn trim(&mut self, n: i32) -> i32 {
        match self {
            KvCache::Plain(c) => {
                let n = n.min(c.offset);
                c.offset -= n;
                n
            }
            KvCache::Quantized(c) => {
                let n = n.min(c.offset);
                c.offset -= n;
                n
            }
            KvCache::Rotating(c) => c.trim_last(n),
        }
    }

    /// Turns a plain cache into a quantized one once it holds `quantized_kv_start` tokens
    /// (mlx-lm's `maybe_quantize_kv_cache`, called after each forward pass).
    pub fn maybe_quantize(&mut self, options: &KvCacheOptions) -> Result<()> {
        if let (Some(bits), KvCache::Plain(plain)) = (options.kv_bits, &*self) {
            if plain.offset >= options.quantized_kv_start {
                *self = KvCache::Quantized(QuantizedCache::from_plain(plain, options.kv_group_size, bits)?);
            }
        }
        Ok(())
    }
}

/// Whether every layer's cache can be trimmed (mlx-lm's `can_trim_prompt_cache`).
pub fn can_trim(caches: &[KvCache]) -> bool {
    caches.iter().all(KvCache::is_trimmable)
}

/// Trims every layer's cache by `n` tokens and returns how many the first layer dropped; nothing
/// (0) when some layer cannot be trimmed or there are no layers (mlx-lm's `trim_prompt_cache`).
pub fn trim_caches(caches: &mut [KvCache], n: i32) -> i32 {
    if !can_trim(caches) || caches.is_empty() {
        return 0;
    }
    let trimmed: Vec<i32> = caches.iter_mut().map(|c| c.trim(n)).collect();
    trimmed[0]
}

/// The name of a cache kind, as errors name it.
pub fn kind_name(cache: &KvCache) -> &'static str {
    match cache {
        KvCache::Plain(_) => "PlainCache",
        KvCache::Quantized(_) => "QuantizedCache",
        KvCache::Rotating(_) => "RotatingCache",
    }
}

/// Room for `needed` more tokens, in whole steps of [`STEP`] (mlx-lm's growth rule).
pub(crate) fn room_for(needed: i32) -> i32 {
    (STEP + needed - 1) / STEP * STEP
}

/// A cache buffer (`[B, H, L, D]`) grown by the empty `room`: the old buffer's first `used`
/// tokens, then `room`. A partly used last step is dropped first, as mlx-lm does. The plain and
/// quantized caches grow each of their arrays this way.
pub(crate) fn grow(old: Option<&Array>, used: i32, room: Array) -> Result<Array> {
    Ok(match old {
        None => room,
        Some(old) => {
            let old = if used % STEP != 0 { seq_slice(old, 0, used)? } else { old.clone() };
            concatenate(&[old, room], 2)?
        }
    })
}

/// `x[..., start:stop, :]` along the sequence axis of a `[B, H, L, D]` array.
pub(crate) fn seq_slice(x: &Array, start: i32, stop: i32) -> Result<Array> {
    Ok(x.try_index((.., .., start..stop))?)
}

/// `dst[..., start:start+len, :] = src` along the sequence axis of `[B, H, L, D]` arrays: one
/// MLX `slice_update`, as mlx-lm's `keys[..., a:b, :] = k` builds it.
pub(crate) fn seq_write(dst: &mut Array, src: &Array, start: i32) -> Result<()> {
    let shape = dst.shape();
    let stops = [shape[0], shape[1], start + src.dim(2), shape[3]];
    *dst = slice_update(dst, src, &[0, 0, start, 0], &stops, Update::Replace)?;
    Ok(())
}

/// mlx-lm's `create_causal_mask(n, offset, window)`: query `offset + i` sees key `j` when
/// `j <= offset + i` and, with a window, `j > offset + i - window`.
pub fn causal_mask(n: i32, offset: i32, window: Option<i32>) -> Result<Array> {
    let keys = Array::arange::<_, i32>(None, offset + n, None)?.reshape(&[1, -1])?;
    let queries = Array::arange::<_, i32>(offset, offset + n, None)?.reshape(&[-1, 1])?;
    let mut mask = queries.ge(&keys)?;
    if let Some(window) = window {
        mask = logical_and(&mask, queries.lt(keys.add(Array::from_int(window))?)?)?;
    }
    Ok(mask)
}
