//! mlxbench: microbenchmarks for large language models on Apple's MLX, called from Rust through
//! `mlx-rs`. This library holds everything the `mlxbench` binary and the bench targets share.
pub mod device;
pub mod error;
pub mod selftest;

pub use error::{Error, Result};
