//! `mlxbench synth`: writes a random-weight MLX-format model of a real shape.
use std::path::PathBuf;

use anyhow::Result;
use clap::{builder::PossibleValuesParser, Args};
use indicatif::{ProgressBar, ProgressStyle};
use mlxbench::{
    config::ModelConfig,
    synth::{self, Arch, FloatDtype, SynthOptions, PRESETS},
};

use super::{bits_choice, choice, BitsArg};

#[derive(Debug, Args)]
#[command(after_long_help = "Speed and memory depend on shapes, not on weight values: a synthetic model of a real \
shape benchmarks like the real one without downloading it.\n\n\
Example: mlxbench synth --preset llama-3.2-1b --bits 4 --out models/llama-3.2-1b-4bit\n\
A quarter of Mixtral's depth at its real widths: mlxbench synth --preset mixtral-8x7b --set num_hidden_layers=8 --out m")]
pub struct SynthArgs {
    /// A real model's shape (tiny: a few MB for tests and CPU benches, any architecture).
    #[arg(long, value_parser = PossibleValuesParser::new(PRESETS), required_unless_present = "config", conflicts_with = "config")]
    preset: Option<String>,
    /// Instead of --preset: a Hugging Face config.json to take the shape from.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Architecture: for --preset tiny (default llama) or a config without model_type; a named
    /// preset implies its own, and a different one is an error.
    #[arg(long, value_parser = choice::<Arch>())]
    arch: Option<Arch>,
    /// Quantization bits of every linear layer and embedding (as mlx-lm's convert -q), or none.
    #[arg(long, default_value = "4", value_parser = bits_choice())]
    bits: BitsArg,
    /// Quantization group size.
    #[arg(long, default_value_t = 64)]
    group_size: i32,
    /// Float type of the weights (and of quantization scales and biases).
    #[arg(long, value_parser = choice::<FloatDtype>(), default_value_t = FloatDtype::Bfloat16)]
    dtype: FloatDtype,
    /// Seed of the random weights (same seed, same bytes).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (must be absent or empty unless --force).
    #[arg(long, short = 'o', visible_alias = "output")]
    out: PathBuf,
    /// Write into a non-empty directory, replacing the model files there.
    #[arg(long)]
    force: bool,
    /// Change one key of the preset's or file's config (repeatable; the value is JSON, else a
    /// string), e.g. --set num_hidden_layers=8 for a shallower model of the real widths.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

pub fn run(args: SynthArgs) -> Result<()> {
    let mut config = match (&args.preset, &args.config) {
        (Some(preset), _) => synth::preset_config(preset, args.arch)?,
        (None, Some(path)) => synth::load_config_file(path, args.arch)?,
        (None, None) => unreachable!("clap requires one of them"),
    };
    for assignment in &args.set {
        let key = assignment.split_once('=').map_or("", |(key, _)| key.trim());
        let new_key = config.get(key).is_none();
        synth::set_key(&mut config, assignment)?;
        // A key none of the loader's named fields reads and the config did not have: a typo, or
        // a key only some architectures read.
        let unread = serde_json::from_value::<ModelConfig>(config.clone()).is_ok_and(|c| c.other.contains_key(key));
        if new_key && unread {
            eprintln!("warning: --set {key}: not a key of this config; added (a misspelt key changes nothing)");
        }
    }
    let options = SynthOptions {
        bits: args.bits.0,
        group_size: args.group_size,
        dtype: args.dtype,
        seed: args.seed,
        force: args.force,
        ..SynthOptions::default()
    };
    let progress = ProgressBar::new(synth::parameter_count(&config)?.total);
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {percent}% of parameters")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = synth::write_model_with_progress(&config, &options, &args.out, |p| progress.set_position(p.parameters_done))?;
    progress.finish_and_clear();
    let active = match summary.active_parameters {
        active if active < summary.parameters => format!(" ({:.3} B active)", active as f64 / 1e9),
        _ => String::new(),
    };
    println!(
        "wrote {}: {:.3} B parameters{active}, {:.3} GB of weights, {} files ({:.3} GB)",
        args.out.display(),
        summary.parameters as f64 / 1e9,
        summary.weight_bytes as f64 / 1e9,
        summary.files.len(),
        summary.bytes_written as f64 / 1e9
    );
    Ok(())
}
