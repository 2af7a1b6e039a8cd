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
    // SAFETY: `op` writes its result to the handle it is given.
    let filled = unsafe {
        filled_by(|result| {
            op(
                result,
                x.as_ptr(),
                update.as_ptr(),
                starts.as_ptr(),
                starts.len(),
                stops.as_ptr(),
                stops.len(),
                strides.as_ptr(),
                strides.len(),
                stream.as_ptr(),
            )
        })
    };
    filled.ok_or_else(|| {
        Error::InvalidOption(format!("MLX could not update {:?} at {starts:?}..{stops:?} with {:?}", x.shape(), update.shape()))
    })
}

/// Runs an mlx-c operation under its out-parameter convention: `call` gets a fresh array handle
/// to fill and returns mlx-c's status. The filled array on success (an `Array` takes the handle
/// over and frees it); `None` on failure, the handle freed here.
///
/// # Safety
/// `call` must be an mlx-c operation that writes its result to the handle it is given.
pub(crate) unsafe fn filled_by(call: impl FnOnce(*mut mlx_sys::mlx_array) -> i32) -> Option<Array> {
    let mut result = mlx_sys::mlx_array_new();
    if call(&mut result) != 0 {
        mlx_sys::mlx_array_free(result);
        return None;
    }
    Some(Array::from_ptr(result))
}
