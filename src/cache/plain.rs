//! The plain KV cache: preallocated in steps of [`super::STEP`] tokens, written in place.
use mlx_rs::{ops::zeros_dtype, Array};

use super::{grow, room_for, seq_slice, seq_write, Fetched};
use crate::error::Result;

#[derive(Default, Clone)]
pub struct PlainCache {
    pub(crate) keys: Option<Array>,
    pub(crate) values: Option<Array>,
    pub offset: i32,
}

impl PlainCache {
    fn capacity(&self) -> i32 {
        self.keys.as_ref().map_or(0, |k| k.dim(2))
    }

    pub fn update_and_fetch(&mut self, keys: &Array, values: &Array) -> Result<Fetched> {
        let prev = self.offset;
        let len = keys.dim(2);
        if self.keys.is_none() || prev + len > self.capacity() {
            let room = |like: &Array| -> Result<Array> {
                let s = like.shape();
                Ok(zeros_dtype(&[s[0], s[1], room_for(len), s[3]], like.dtype())?)
            };
            self.keys = Some(grow(self.keys.as_ref(), prev, room(keys)?)?);
            self.values = Some(grow(self.values.as_ref(), prev, room(values)?)?);
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
