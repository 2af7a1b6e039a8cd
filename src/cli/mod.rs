//! Subcommands of the `mlxbench` binary that are more than a few lines.
use clap::Args;
use mlxbench::cache::KvCacheOptions;

pub mod run;
pub mod synth;

/// A benchmark from a debug build is meaningless; say so on every run (as llama-bench does).
pub fn warn_debug_build() {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build of mlxbench; its timings are meaningless. \
             Build with --release."
        );
    }
}

/// The KV-cache settings `run` and `generate` share (`--kv-bits` differs: a list for `run`).
#[derive(Debug, Args)]
pub struct KvCacheArgs {
    /// Group size of the KV-cache quantization.
    #[arg(long, default_value_t = 64)]
    pub kv_group_size: i32,
    /// Keep the KV cache in full precision until it holds this many tokens.
    #[arg(long, default_value_t = 0)]
    pub quantized_kv_start: i32,
    /// Bound the KV cache to this many tokens (a rotating cache keeping the first 4).
    #[arg(long)]
    pub max_kv_size: Option<i32>,
}

impl KvCacheArgs {
    pub fn options(&self, kv_bits: Option<i32>) -> KvCacheOptions {
        KvCacheOptions {
            kv_bits,
            kv_group_size: self.kv_group_size,
            quantized_kv_start: self.quantized_kv_start,
            max_kv_size: self.max_kv_size,
        }
    }
}
