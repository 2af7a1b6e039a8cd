//! The subcommands of the `mlxbench` binary, one file each, and the clap pieces they share. clap
//! types stay here: the library's enums list their names through [`Choice`], turned into clap's
//! possible values by [`choice`].
use clap::{
    builder::{PossibleValue, PossibleValuesParser, TypedValueParser},
    Args,
};
use mlxbench::{
    cache::KvCacheOptions,
    choice::Choice,
    config::parse_bits_or_none,
    distributed::{self, Backend, Group},
};

pub mod compare;
pub mod export;
pub mod generate;
pub mod info;
pub mod launch;
pub mod report;
pub mod run;
pub mod serve;
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

/// A clap value parser for one of `values` of a library enum, listing each with its help.
pub fn choice_of<T: Choice + Send + Sync>(values: &'static [T]) -> impl TypedValueParser<Value = T> {
    let possible = values.iter().map(|v| {
        let value = PossibleValue::new(v.name()).aliases(v.aliases().iter().copied());
        match v.help() {
            "" => value,
            help => value.help(help),
        }
    });
    PossibleValuesParser::new(possible).map(|name| T::from_name(&name).expect("clap accepts only listed names"))
}

/// A clap value parser for every value of a library enum.
pub fn choice<T: Choice + Send + Sync>() -> impl TypedValueParser<Value = T> {
    choice_of(T::ALL)
}

/// A number of bits or `none` (`--kv-bits`, `synth --bits`).
#[derive(Debug, Clone, Copy)]
pub struct BitsArg(pub Option<i32>);

pub fn bits_arg(s: &str) -> Result<BitsArg, String> {
    parse_bits_or_none(s).map(BitsArg)
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
    /// Bound the KV cache to this many tokens (a rotating cache keeping the first 4). Gemma 3
    /// refuses it: its sliding-window layers size their own caches (mlx-lm ignores it there).
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

/// How `run` and `generate` join a tensor-parallel group.
#[derive(Debug, Args)]
pub struct DistributedArgs {
    /// Run tensor-parallel over MLX's distributed backend: each rank loads its share of the
    /// model and rank 0 alone prints and writes results. `auto` joins the group the launcher's
    /// environment describes (mlx.launch, mpirun, mlxbench launch) and runs alone otherwise.
    #[arg(long, value_parser = choice::<Backend>(), default_value = "auto")]
    pub distributed: Backend,
}

impl DistributedArgs {
    /// Joins the group (`None`: one process).
    pub fn join(&self) -> anyhow::Result<Option<&'static Group>> {
        Ok(distributed::join(self.distributed)?)
    }
}

/// Whether this process prints and writes: rank 0 of a group, or a process on its own.
pub fn is_leader(group: Option<&Group>) -> bool {
    group.is_none_or(|g| g.rank() == 0)
}
