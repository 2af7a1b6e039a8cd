//! mlxbench: microbenchmarks for large language models on Apple's MLX, called from Rust through
//! `mlx-rs`. This library holds everything the `mlxbench` binary and the bench targets share.
pub mod cache;
pub mod config;
pub mod device;
pub mod error;
pub mod models;
pub mod selftest;
pub mod weights;

pub use error::{Error, Result};
pub mod generate;
pub mod hub;
pub mod prompt;
pub mod tokenizer;
pub mod compare;
pub mod hwinfo;
pub mod synth;
pub mod measure;
pub mod metrics;
pub mod report;
pub mod rng;
pub mod sweep;
pub mod benchkit;
