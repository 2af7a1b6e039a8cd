//! `mlxbench generate`: text (or token ids) from a prompt, greedy or sampled, with the run's
//! metrics on request (`-v`, measured by the same trial as `mlxbench run`).
use anyhow::{Context, Result};
use clap::Args;
use mlx_rs::ops::indexing::TryIndexOp;
use mlxbench::{
    bench::session::PreparedModel,
    device::{self, DeviceKind},
    generate::{GenerateOptions, Sampling},
    measure::run_trial,
    models,
    prompt::{build_prompts, PromptKind, Tokens},
    units::gigabytes,
};

use super::{bits_choice, choice, is_leader, BitsArg, DistributedArgs, KvCacheArgs, TextOrJson};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Model: a local directory with config.json, tokenizer.json and safetensors, or a Hugging
    /// Face repo id (looked up in the HF cache; downloaded unless HF_HUB_OFFLINE=1).
    #[arg(long)]
    model: String,
    /// The prompt text (tokenized without special tokens).
    #[arg(long, required_unless_present = "n_prompt", conflicts_with = "n_prompt")]
    prompt: Option<String>,
    /// Instead of --prompt: a prompt of exactly this many tokens (the base text repeated), as
    /// `run -p`.
    #[arg(long, short = 'p', visible_alias = "prompt-tokens", value_parser = clap::value_parser!(u64).range(1..))]
    n_prompt: Option<u64>,
    /// Tokens to generate (fewer with --stop-at-eos), as `run -n`; --max-tokens is mlx-lm's name.
    #[arg(long, short = 'n', visible_alias = "max-tokens", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    n_generate: u64,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temp: f32,
    /// Nucleus sampling: keep the most likely tokens up to this total probability (with --temp > 0).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Seed for sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Quantize the KV cache to this many bits (4 or 8), or `none` (Gemma 2 and 3 refuse it,
    /// as mlx-lm cannot run it).
    #[arg(long, value_parser = bits_choice(), default_value = "none")]
    kv_bits: BitsArg,
    #[command(flatten)]
    kv: KvCacheArgs,
    /// Prompt tokens per prefill forward pass.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..))]
    prefill_step_size: u64,
    /// Stop at the model's end-of-sequence token (default: always generate --n-generate).
    #[arg(long)]
    stop_at_eos: bool,
    /// Compile the greedy sampler with MLX's `compile` (as `run --compile`; random sampling
    /// runs uncompiled).
    #[arg(long)]
    compile: bool,
    /// Device to run on (default: gpu when this MLX has one, else cpu).
    #[arg(long, value_parser = choice::<DeviceKind>())]
    device: Option<DeviceKind>,
    /// Print the generated text, or JSON: {"prompt_ids": [...], "generated_ids": [...]}.
    #[arg(long, short, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// With --format json: also "last_logits", the float32 logits at the prompt's last position
    /// (from one forward pass of the whole prompt without a cache).
    #[arg(long)]
    logits: bool,
    #[command(flatten)]
    distributed: DistributedArgs,
    /// Print timings to stderr: time to first token, generation tokens/s, peak memory.
    #[arg(long, short)]
    verbose: bool,
    /// Untimed full generations before the reported one (GPU kernels compile on first use).
    #[arg(long, default_value_t = 0)]
    warmup: u32,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let json = args.format.or_json(args.json) == TextOrJson::Json;
    if args.logits && !json {
        anyhow::bail!("--logits adds the logits to the JSON output: add --format json");
    }
    device::select(args.device.unwrap_or_else(device::default_kind))?;
    let group = args.distributed.join()?;
    let PreparedModel { loaded, tokenizer, .. } = PreparedModel::load(&args.model)?;
    let prompt = match (&args.prompt, args.n_prompt) {
        (_, Some(n)) => build_prompts(&tokenizer, PromptKind::Text, n as usize, 1, args.seed)?,
        (Some(text), None) => Tokens::single(tokenizer.encode(text)?).context("the prompt has no tokens")?,
        (None, None) => unreachable!("clap requires one of them"),
    };
    let prompt_ids = prompt.row(0).to_vec();
    let sampling = if args.temp == 0.0 {
        Sampling::Greedy
    } else {
        Sampling::Random { temperature: args.temp, top_p: args.top_p, seed: args.seed }
    };
    let options = GenerateOptions {
        n_generate: args.n_generate as usize,
        sampling,
        kv: args.kv.options(args.kv_bits.0),
        prefill_step_size: args.prefill_step_size as usize,
        stop_tokens: if args.stop_at_eos { loaded.config.eos_token_ids() } else { Vec::new() },
        compile: args.compile,
    };
    if args.verbose {
        super::warn_debug_build();
    }
    for _ in 0..args.warmup {
        run_trial(loaded.model.as_ref(), &prompt, 0, &options)?;
    }
    let trial = run_trial(loaded.model.as_ref(), &prompt, 0, &options)?;
    // Every rank runs the forward pass: its all-sums need the whole group.
    let last_logits = args.logits.then(|| last_position_logits(loaded.model.as_ref(), &prompt)).transpose()?;
    let generated: Vec<u32> = trial.generated.iter().map(|step| step[0]).collect();
    if !is_leader(group) {
        return Ok(());
    }
    if args.verbose {
        let m = &trial.metrics;
        eprintln!(
            "prompt: {} tokens, time to first token {:.2} ms\ngeneration: {} tokens, {:.2} tokens/s (after the first)\npeak memory: {:.3} GB",
            prompt_ids.len(),
            m.ttft_ms,
            generated.len(),
            m.generation_tps.unwrap_or(f64::NAN),
            gigabytes(m.memory.peak_memory_bytes as f64)
        );
    }
    if json {
        let mut out = serde_json::json!({ "prompt_ids": prompt_ids, "generated_ids": generated });
        if let Some(logits) = last_logits {
            out["last_logits"] = logits.into();
        }
        println!("{out}");
    } else {
        println!("{}", tokenizer.decode(&generated)?);
    }
    Ok(())
}


/// The float32 logits at the last position of `prompt`'s first row.
fn last_position_logits(model: &dyn models::LanguageModel, prompt: &Tokens) -> Result<Vec<f32>> {
    let logits = model.forward(&prompt.to_array()?, None)?;
    let last = logits.try_index((0, -1))?.as_dtype(mlx_rs::Dtype::Float32)?;
    last.eval()?;
    Ok(last.as_slice::<f32>().to_vec())
}
