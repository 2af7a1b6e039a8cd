//! The plain KV cache: preallocated in steps of [`STEP`] tokens, written in place.
use mlx_rs::{
    ops::{concatenate, zeros_dtype},
    Array,
};

use super::{seq_slice, seq_write, Fetched, STEP};
use crate::error::Result;

#[derive(Default)]
pub struct PlainCache {
    pub(crate) keys: Option<Array>,
    pub(crate) values: Option<Array>,
    pub offset: i32,
}

/// Grows `buffer` (or creates it) so that `needed` more tokens fit after `used`.
pub(crate) fn grow(buffer: Option<&Array>, like: &Array, used: i32, needed: i32) -> Result<Array> {
    let shape = like.shape();
    let steps = (STEP + needed - 1) / STEP;
    let fresh = zeros_dtype(&[shape[0], shape[1], steps * STEP, shape[3]], like.dtype())?;
    Ok(match buffer {
        None => fresh,
        Some(old) => {
            // Drop the unused tail of a partly filled buffer before appending the new step.
            let old = if used % STEP != 0 { seq_slice(old, 0, used)? } else { old.clone() };
            concatenate(&[old, fresh], 2)?
        }
    })
}

impl PlainCache {
    fn capacity(&self) -> i32 {
        self.keys.as_ref().map_or(0, |k| k.dim(2))
    }

    pub fn update_and_fetch(&mut self, keys: &Array, values: &Array) -> Result<Fetched> {
        let prev = self.offset;
        let len = keys.dim(2);
        if self.keys.is_none() || prev + len > self.capacity() {
            self.keys = Some(grow(self.keys.as_ref(), keys, prev, len)?);
            self.values = Some(grow(self.values.as_ref(), values, prev, len)?);
        }
        self.offset += len;
        let (k, v) = (self.keys.as_mut().expect("allocated above"), self.values.as_mut().expect("allocated above"));
        seq_write(k, keys, prev)?;
        seq_write(v, values, prev)?;
        let (keys, values) = if self.offset < k.dim(2) {
            (seq_slice(k, 0, self.offset)?, seq_slice(v, 0, self.offset)?)
        } else {
            (k.clone(), v.clone())
        };
        Ok(Fetched::Dense { keys, values })
    }

    pub fn arrays(&self) -> Vec<&Array> {
        self.keys.iter().chain(self.values.iter()).collect()
    }
}
