//! The rotating KV cache for `max_kv_size`: holds at most `max_size` tokens, always keeping the
//! first `keep` (attention sinks) and overwriting the oldest of the rest, exactly as mlx-lm's
//! `RotatingKVCache` does (multi-token updates concatenate in temporal order, single-token updates
//! write in place in a ring).
use mlx_rs::{
    ops::{concatenate, zeros_dtype},
    Array,
};

use super::{causal_mask, seq_slice, seq_write, Fetched, Mask, STEP};
use crate::error::Result;

#[derive(Clone)]
pub struct RotatingCache {
    keys: Option<Array>,
    values: Option<Array>,
    pub offset: i32,
    pub max_size: i32,
    pub keep: i32,
    /// Where the next single-token write goes in the ring buffer.
    idx: i32,
}

impl RotatingCache {
    pub fn new(max_size: i32, keep: i32) -> Self {
        Self { keys: None, values: None, offset: 0, max_size, keep, idx: 0 }
    }

    /// Drops `trim` tokens after the kept ones, then appends `append`.
    fn trim(&self, trim: i32, v: &Array, append: Option<&Array>) -> Result<Array> {
        let mut parts = if trim > 0 {
            vec![seq_slice(v, 0, self.keep)?, seq_slice(v, trim + self.keep, v.dim(2))?]
        } else {
            vec![v.clone()]
        };
        parts.extend(append.cloned());
        Ok(concatenate(&parts, 2)?)
    }

    /// The buffer rearranged oldest-first, its unused tail cut off.
    fn temporal_order(&self, v: &Array) -> Result<Array> {
        let len = v.dim(2);
        if self.idx == len {
            Ok(v.clone())
        } else if self.idx < self.offset {
            Ok(concatenate(
                &[seq_slice(v, 0, self.keep)?, seq_slice(v, self.idx, len)?, seq_slice(v, self.keep, self.idx)?],
                2,
            )?)
        } else {
            seq_slice(v, 0, self.idx)
        }
    }

    fn update_concat(&mut self, keys: &Array, values: &Array) -> Result<Fetched> {
        match (self.keys.take(), self.values.take()) {
            (Some(k), Some(v)) => {
                let k = self.temporal_order(&k)?;
                let v = self.temporal_order(&v)?;
                self.idx = k.dim(2);
                let trim = self.idx - self.max_size + 1;
                self.keys = Some(self.trim(trim, &k, Some(keys))?);
                self.values = Some(self.trim(trim, &v, Some(values))?);
            }
            _ => {
                self.keys = Some(keys.clone());
                self.values = Some(values.clone());
            }
        }
        self.offset += keys.dim(2);
        let (k, v) = (self.keys.clone().expect("set above"), self.values.clone().expect("set above"));
        self.idx = k.dim(2);
        Ok(Fetched::Dense { keys: k, values: v })
    }

    fn update_in_place(&mut self, keys: &Array, values: &Array) -> Result<Fetched> {
        let prev = self.offset;
        let len = keys.dim(2);
        let capacity = self.keys.as_ref().map_or(0, |k| k.dim(2));
        if self.keys.is_none() || (prev >= capacity && capacity < self.max_size) {
            let new_size = STEP.min(self.max_size - prev);
            let grow = |old: Option<Array>, like: &Array| -> Result<Array> {
                let s = like.shape();
                let fresh = zeros_dtype(&[s[0], s[1], new_size, s[3]], like.dtype())?;
                Ok(match old {
                    Some(old) => concatenate(&[old, fresh], 2)?,
                    None => fresh,
                })
            };
            self.keys = Some(grow(self.keys.take(), keys)?);
            self.values = Some(grow(self.values.take(), values)?);
            self.idx = prev;
        }
        let (mut k, mut v) = (self.keys.take().expect("allocated"), self.values.take().expect("allocated"));
        let trim = k.dim(2) - self.max_size;
        if trim > 0 {
            k = self.trim(trim, &k, None)?;
            v = self.trim(trim, &v, None)?;
            self.idx = self.max_size;
        }
        if self.idx == self.max_size {
            self.idx = self.keep;
        }
        seq_write(&mut k, keys, self.idx)?;
        seq_write(&mut v, values, self.idx)?;
        self.offset += len;
        self.idx += len;
        let fetched = if self.offset < k.dim(2) {
            Fetched::Dense { keys: seq_slice(&k, 0, self.offset)?, values: seq_slice(&v, 0, self.offset)? }
        } else {
            Fetched::Dense { keys: k.clone(), values: v.clone() }
        };
        self.keys = Some(k);
        self.values = Some(v);
        Ok(fetched)
    }

    pub fn update_and_fetch(&mut self, keys: &Array, values: &Array) -> Result<Fetched> {
        if keys.dim(2) == 1 {
            self.update_in_place(keys, values)
        } else {
            self.update_concat(keys, values)
        }
    }

    /// Forgets the last `n` tokens (at most all): the offset and the ring position move back, as
    /// mlx-lm's `RotatingKVCache.trim`. Only meaningful while not wrapped (see
    /// `KvCache::is_trimmable`).
    pub fn trim_last(&mut self, n: i32) -> i32 {
        let n = n.min(self.offset);
        self.offset -= n;
        self.idx -= n;
        n
    }

    pub fn make_mask(&self, n: i32) -> Result<Mask> {
        if n == 1 {
            return Ok(Mask::None);
        }
        let offset = (self.max_size - 1).min(self.offset);
        if offset + n > self.max_size {
            Ok(Mask::Array(causal_mask(n, offset, Some(self.max_size))?))
        } else {
            Ok(Mask::Causal)
        }
    }

    pub fn arrays(&self) -> Vec<&Array> {
        self.keys.iter().chain(self.values.iter()).collect()
    }
}
