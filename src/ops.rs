//! MLX operations as mlx-lm builds them, where mlx-rs 0.33's wrappers build more: a slice
//! assignment (`x[..., a:b, :] = y`, `x.at[..., :d].multiply(s)`) is one MLX `slice_update`,
//! while mlx-rs's index assignment adds reshapes around it (extra graph nodes on every layer of
//! every decode step).
use mlx_rs::{Array, Stream};

use crate::error::{Error, Result};

/// How a slice update combines the update with what is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// `x[slice] = update`.
    Replace,
    /// `x[slice] *= update` (`x.at[slice].multiply(update)`).
    Multiply,
}

/// `x` with `x[starts..stops]` (unit strides, one range per axis) replaced by or multiplied with
/// `update`, which has the slice's shape.
pub fn slice_update(x: &Array, update: &Array, starts: &[i32], stops: &[i32], mode: Update) -> Result<Array> {
    let strides = vec![1; starts.len()];
    let stream = Stream::thread_local_or_default();
    let op = match mode {
        Update::Replace => mlx_sys::mlx_slice_update,
        Update::Multiply => mlx_sys::mlx_slice_update_prod,
    };
    // SAFETY: mlx-c's out-parameter convention: `result` is a fresh handle that the operation
    // fills; on success an `Array` takes it over (and frees it), on failure it is freed here.
    unsafe {
        let mut result = mlx_sys::mlx_array_new();
        let status = op(
            &mut result,
            x.as_ptr(),
            update.as_ptr(),
            starts.as_ptr(),
            starts.len(),
            stops.as_ptr(),
            stops.len(),
            strides.as_ptr(),
            strides.len(),
            stream.as_ptr(),
        );
        if status != 0 {
            mlx_sys::mlx_array_free(result);
            return Err(Error::InvalidOption(format!(
                "MLX could not update {:?} at {starts:?}..{stops:?} with {:?}",
                x.shape(),
                update.shape()
            )));
        }
        Ok(Array::from_ptr(result))
    }
}
