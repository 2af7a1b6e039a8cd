//! The subcommands of the `mlxbench` binary, one file each, and the clap pieces they share. clap
//! types stay here: the library's enums list their names through [`Choice`], turned into clap's
//! possible values by [`choice`].
use std::{path::PathBuf, sync::OnceLock};

use clap::{
    builder::{PossibleValue, PossibleValuesParser, TypedValueParser},
    Args, ValueEnum,
};
use mlxbench::{
    bench::{ids::model_label, RunPoint, RunRecord, Status},
    cache::KvCacheOptions,
    choice::Choice,
    config::{bits_or_none, parse_bits_or_none, SUPPORTED_BITS},
    distributed::{self, Backend, Group},
    report::Format,
    units::human_bytes,
};

pub mod capacity;
pub mod compare;
pub mod export;
pub mod generate;
pub mod info;
pub mod launch;
pub mod quality;
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

/// `none` and the bits MLX quantizes to ([`SUPPORTED_BITS`]), as text once.
fn bits_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        std::iter::once("none").chain(SUPPORTED_BITS.iter().map(|b| &*Box::leak(b.to_string().into_boxed_str()))).collect()
    })
}

/// A number of bits MLX quantizes to, or `none`, checked by the parser (an empty list item
/// too): `--help` and the error list the values.
pub fn bits_choice() -> impl TypedValueParser<Value = BitsArg> {
    let possible = bits_names().iter().map(|&name| match name {
        "none" => PossibleValue::new(name).alias("None"),
        bits => PossibleValue::new(bits),
    });
    PossibleValuesParser::new(possible).map(|name| BitsArg(parse_bits_or_none(&name).expect("clap accepts only listed values")))
}

/// [`bits_choice`] as a function (for `value_parser = bits_arg`): the same values, checked.
pub fn bits_arg(s: &str) -> Result<BitsArg, String> {
    match s.trim() {
        name if bits_names().contains(&name) || name == "None" => parse_bits_or_none(name).map(BitsArg),
        name => Err(format!("{name:?} is not one of {}", bits_names().join(", "))),
    }
}

/// `run -o`: a results file whose extension names its format (.csv, .json, .jsonl, .md). A bare
/// format name (`-o json`, llama-bench's habit) or another extension is refused with the fix.
pub fn results_file_arg(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    if Format::from_path(&path).is_some() {
        return Ok(path);
    }
    let extensions = ".csv, .json, .jsonl or .md";
    let bare = s.trim().to_ascii_lowercase();
    if path.extension().is_none() && (Format::from_name(&bare).is_some() || bare == "html") {
        let format = Format::from_name(&bare).map_or("--report (the HTML page)".to_string(), |f| format!("--format {}", f.name()));
        return Err(format!("a format's name, not a file's: did you mean {format}? (-o names the results file: {extensions})"));
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => Err(format!("results files are {extensions}; the HTML page comes with --report")),
        Some(other) => Err(format!("unknown extension .{other}: results files end in {extensions}")),
        None => Err(format!("no extension to name the results' format: {extensions}")),
    }
}

/// `--format` of the commands that print text or JSON (`info`, `hwinfo`, `generate`); their
/// `--json` is the same as `--format json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    Text,
    Json,
}

impl TextOrJson {
    /// `--format`, or json when `--json` is given.
    pub fn or_json(self, json: bool) -> Self {
        if json {
            TextOrJson::Json
        } else {
            self
        }
    }
}

/// A configuration as warnings and progress lines name it: `model (engine, kv 4, p512 g128 b1 d0)`.
pub fn point_label(p: &RunPoint) -> String {
    format!(
        "{} ({}, kv {}, p{} g{} b{} d{}{})",
        p.model,
        p.engine,
        bits_or_none(p.kv_bits),
        p.n_prompt,
        p.n_generate,
        p.batch,
        p.depth,
        p.draft.as_ref().map_or_else(String::new, |d| format!(", draft {} k{}", d.draft_model, d.num_draft_tokens))
    )
}

/// One line for a finished configuration, as llama-bench prints a row: its label (the model's
/// short name) and the medians over its trials (the robust decode rate with its 95% interval when
/// it has one), or its status and error.
pub fn record_line(r: &RunRecord) -> String {
    let label = point_label(&RunPoint { model: model_label(&r.point.model), ..r.point.clone() });
    let Some(s) = r.summary.as_ref().filter(|_| r.status == Status::Ok) else {
        return format!("{label}: {}: {}", r.status.as_str(), r.error.as_deref().unwrap_or("no trials"));
    };
    let mut parts = Vec::new();
    if let Some(prompt) = &s.prompt_tps {
        parts.push(format!("prompt {:.1} t/s", prompt.median));
    }
    if let Some(generation) = &s.generation_tps_robust {
        let interval = generation.median_ci95.map_or(String::new(), |[low, high]| format!(" [{low:.1}, {high:.1}]"));
        parts.push(format!("decode {:.1} t/s{interval}", generation.median));
    }
    if let Some(ttft) = &s.ttft_ms {
        parts.push(format!("TTFT {:.2} ms", ttft.median));
    }
    if let Some(peak) = &s.peak_memory_bytes {
        parts.push(format!("peak {}", human_bytes(peak.median as u64)));
    }
    format!("{label}: {} (medians of {} trials)", parts.join(", "), r.trials.len())
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
