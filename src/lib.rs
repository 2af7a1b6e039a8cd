//! mlxbench: microbenchmarks for large language models on Apple's MLX, called from Rust through
//! `mlx-rs`. This library holds everything the `mlxbench` binary and the bench targets share.
//!
//! Layers, each depending only on those below it:
//! - `bench` (plans, settings, sessions, records, the Criterion benches' configuration), with
//!   `report` (formats, printers, results files) and `gate` (the Criterion regression gate) above
//!   it reading what it produces;
//! - `measure` (trials, metrics, statistics);
//! - `generate` (prefill and decode, knowing nothing of time), `speculative` (a draft model's
//!   proposals verified by the target);
//! - `models`, `cache`;
//! - `distributed` (MLX's groups and collectives, and how a model is split over them);
//! - `device`, `weights`, `config`, `hub`, `tokenizer`, `prompt`, and leaf helpers (`choice`,
//!   `error`, `rng`, `units`).
//!
//! Beside them: `quality` (a KV-cache setting's output quality against the plain cache, over
//! `generate` and `measure`'s statistics), `synth` (synthetic models), `hwinfo` (the machine), `selftest` (MLX kernels),
//! `graph` (compute graphs as DOT), `process` (the process groups mlxbench starts).
pub mod bench;
pub mod cache;
pub mod choice;
pub mod config;
pub mod device;
pub mod distributed;
pub mod error;
pub mod gate;
pub mod generate;
pub mod graph;
pub mod hub;
pub mod hwinfo;
pub mod measure;
pub mod models;
pub mod ops;
pub mod process;
pub mod prompt;
pub mod quality;
pub mod report;
pub mod rng;
pub mod selftest;
pub mod serve;
pub mod speculative;
pub mod synth;
pub mod tokenizer;
pub mod units;
pub mod weights;

pub use error::{Error, Result};
