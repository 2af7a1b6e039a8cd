//! Helpers shared by the integration tests.
use mlx_rs::{Array, Dtype};

/// An array's values as float32 on the host. `+ 0` materializes sliced (non-contiguous) views
/// so they can be read back as a slice.
pub fn host_f32(a: &Array) -> Vec<f32> {
    let a = a.as_dtype(Dtype::Float32).unwrap().add(Array::from_f32(0.0)).unwrap();
    a.eval().unwrap();
    a.as_slice::<f32>().to_vec()
}
