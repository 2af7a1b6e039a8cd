//! The benchmark layer, shared by `mlxbench run` and the Criterion benches:
//! - [`plan`]: the axes (models, KV bits, batch, depth, prompt and generation lengths) and the
//!   points of their product;
//! - [`settings`]: the trial protocol and generation options every point runs with;
//! - [`session`]: loads each model once and measures points guarded, engines interleaved,
//!   telling an observer;
//! - [`engine`]: mlxbench's own engine and Apple's mlx-lm in a subprocess;
//! - [`record`]: what a point produced (plain data that reports print);
//! - [`capacity`]: the longest context that fits a memory budget, per KV setting;
//! - [`config`] and [`ids`]: what the Criterion benches bench and how they name it.
pub mod capacity;
pub mod config;
pub mod engine;
pub mod ids;
pub mod plan;
pub mod record;
pub mod session;
pub mod settings;

pub use config::BenchConfig;
pub use plan::{kv_label, Axes, DraftSetting, RunPoint};
pub use record::{group_speedups, ModelSize, RunContext, RunRecord, Status};
pub use session::{guarded, Observer, PreparedModel, Session, Silent, TrialKind};
pub use engine::Engine;
pub use settings::{Repeats, Settings};
