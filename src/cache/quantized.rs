//! The quantized KV cache: keys and values stored MLX-quantized (`kv_bits`, `kv_group_size`),
//! grown in steps like the plain cache; attention runs on the quantized tensors directly.
use mlx_rs::{
    ops::{quantize, zeros_dtype},
    Array, Dtype,
};

use super::{grow, plain::PlainCache, room_for, seq_slice, seq_write, Fetched};
use crate::error::Result;

/// One quantized tensor: packed values with per-group scales and biases.
#[derive(Clone)]
pub struct QuantizedTensor {
    pub data: Array,
    pub scales: Array,
    pub biases: Array,
}

impl QuantizedTensor {
    fn quantize(x: &Array, group_size: i32, bits: i32) -> Result<Self> {
        let (data, scales, biases) = quantize(x, group_size, bits)?;
        Ok(Self { data, scales, biases })
    }

    fn parts_mut(&mut self) -> [&mut Array; 3] {
        [&mut self.data, &mut self.scales, &mut self.biases]
    }

    fn map(&self, f: impl Fn(&Array) -> Result<Array>) -> Result<Self> {
        Ok(Self { data: f(&self.data)?, scales: f(&self.scales)?, biases: f(&self.biases)? })
    }

    fn arrays(&self) -> [&Array; 3] {
        [&self.data, &self.scales, &self.biases]
    }
}

#[derive(Clone)]
pub struct QuantizedCache {
    keys: Option<QuantizedTensor>,
    values: Option<QuantizedTensor>,
    pub offset: i32,
    pub group_size: i32,
    pub bits: i32,
}

impl QuantizedCache {
    pub fn new(group_size: i32, bits: i32) -> Self {
        Self { keys: None, values: None, offset: 0, group_size, bits }
    }

    /// Quantizes a plain cache's whole buffer (mlx-lm's `KVCache.to_quantized`).
    pub fn from_plain(plain: &PlainCache, group_size: i32, bits: i32) -> Result<Self> {
        let q = |a: &Option<Array>| a.as_ref().map(|a| QuantizedTensor::quantize(a, group_size, bits)).transpose();
        Ok(Self { keys: q(&plain.keys)?, values: q(&plain.values)?, offset: plain.offset, group_size, bits })
    }

    fn capacity(&self) -> i32 {
        self.keys.as_ref().map_or(0, |k| k.data.dim(2))
    }

    /// Empty storage for `steps` tokens shaped like `x` (`[B, H, L, D]`) once quantized.
    fn empty(&self, x: &Array, tokens: i32) -> Result<QuantizedTensor> {
        let s = x.shape();
        // Packed words per row: bits × D ÷ 32 (5 and 6 bits do not divide 32, so not D ÷ (32 ÷ bits)).
        Ok(QuantizedTensor {
            data: zeros_dtype(&[s[0], s[1], tokens, s[3] * self.bits / 32], Dtype::Uint32)?,
            scales: zeros_dtype(&[s[0], s[1], tokens, s[3] / self.group_size], x.dtype())?,
            biases: zeros_dtype(&[s[0], s[1], tokens, s[3] / self.group_size], x.dtype())?,
        })
    }

    fn grow(&self, old: Option<&QuantizedTensor>, like: &Array, len: i32) -> Result<QuantizedTensor> {
        let fresh = self.empty(like, room_for(len))?;
        let part = |old: Option<&Array>, fresh: Array| grow(old, self.offset, fresh);
        Ok(QuantizedTensor {
            data: part(old.map(|t| &t.data), fresh.data)?,
            scales: part(old.map(|t| &t.scales), fresh.scales)?,
            biases: part(old.map(|t| &t.biases), fresh.biases)?,
        })
    }

    pub fn update_and_fetch(&mut self, keys: &Array, values: &Array) -> Result<Fetched> {
        let prev = self.offset;
        let len = keys.dim(2);
        if self.keys.is_none() || prev + len > self.capacity() {
            self.keys = Some(self.grow(self.keys.as_ref(), keys, len)?);
            self.values = Some(self.grow(self.values.as_ref(), values, len)?);
        }
        self.offset += len;
        let new_keys = QuantizedTensor::quantize(keys, self.group_size, self.bits)?;
        let new_values = QuantizedTensor::quantize(values, self.group_size, self.bits)?;
        for (store, new) in [(self.keys.as_mut(), &new_keys), (self.values.as_mut(), &new_values)] {
            let store = store.expect("allocated above");
            for (dst, src) in store.parts_mut().into_iter().zip(new.arrays()) {
                seq_write(dst, src, prev)?;
            }
        }
        let (k, v) = (self.keys.as_ref().expect("allocated"), self.values.as_ref().expect("allocated"));
        let (keys, values) = if self.offset == k.data.dim(2) {
            (k.clone(), v.clone())
        } else {
            let end = self.offset;
            (k.map(|a| seq_slice(a, 0, end))?, v.map(|a| seq_slice(a, 0, end))?)
        };
        Ok(Fetched::Quantized { keys, values, group_size: self.group_size, bits: self.bits })
    }

    pub fn arrays(&self) -> Vec<&Array> {
        self.keys.iter().chain(self.values.iter()).flat_map(|t| t.arrays()).collect()
    }
}
