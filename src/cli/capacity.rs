//! `mlxbench capacity`: the longest context each KV-cache setting (and batch) fits in a memory
//! budget, found by running lengths (`mlxbench::bench::capacity`), with a progress bar, a table on
//! stdout and a JSON results file. With the hidden `--probe N` it is the probe process itself:
//! it loads the model, runs one length and prints one JSON line.
use std::{io::IsTerminal, path::PathBuf, time::Instant};

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mlxbench::{
    bench::{
        capacity::{search, Budget, CapacityRecord, CapacityReport, ChildProber, Probe, ProbeReport, SearchSpec},
        ids::model_label,
        PreparedModel, RunContext, Settings, Repeats,
    },
    cache::KvCacheOptions,
    config::bits_or_none,
    device::{self, DeviceKind},
    generate::GenerateOptions,
    hwinfo,
    prompt::PromptKind,
    report::{table::md_cell, write_atomically},
    units::{human_bytes, parse_bytes},
};

use super::{bits_choice, choice, BitsArg};

#[derive(Debug, Args)]
#[command(after_long_help = "Each length runs in a child process (this binary with --probe): a fresh \
cache, the prompt prefilled in --prefill-step-size chunks, then --n-generate decode steps; it fits when \
MLX's peak (weights included) is within the budget. Lengths double from --start until one does not \
fit, then the gap is halved down to --step. A length whose peak the measured ones (of at least \
--prefill-step-size tokens, where the peak grows about linearly) predict to be more than 10% over the \
budget is not run. An out-of-memory in a probe is that length's failure, not the \
command's.\n\n\
Example: mlxbench capacity --model ./my-model --kv-bits none,8,4 --memory-limit 12GB --max-time 300")]
pub struct CapacityArgs {
    /// The model: a local MLX-format directory or a Hugging Face repo id.
    #[arg(long, short)]
    model: String,
    /// KV cache settings to search (comma list): none, or bits to quantize the cache to.
    #[arg(long, value_delimiter = ',', default_value = "none,8,4", value_parser = bits_choice())]
    kv_bits: Vec<BitsArg>,
    /// Sequences per probe (comma list): the longest context per sequence at each batch.
    #[arg(long, short, value_delimiter = ',', default_value = "1", value_parser = clap::value_parser!(u64).range(1..))]
    batch: Vec<u64>,
    /// The memory budget for MLX's peak, weights included, e.g. 2GB, 512MiB (decimal GB). Default:
    /// what the device allows: Metal's recommended working set, a CUDA GPU's free memory, or the
    /// system's available memory on the CPU.
    #[arg(long, value_parser = parse_bytes)]
    memory_limit: Option<u64>,
    /// Seconds each setting's search may take (so the command takes at most settings × this);
    /// a probe still running then is stopped and the answer so far reported as incomplete.
    #[arg(long, default_value_t = 300.0)]
    max_time: f64,
    /// The first length tried, tokens per sequence.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    start: u64,
    /// The answer's resolution: every length tried is a multiple of it.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    step: u64,
    /// The longest length tried.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    max_n_prompt: u64,
    /// Decode steps after each probe's prefill.
    #[arg(long, short = 'n', default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    n_generate: u64,
    /// Prompt tokens per prefill forward pass.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..))]
    prefill_step_size: u64,
    /// Group size of the KV-cache quantization.
    #[arg(long, default_value_t = 64)]
    kv_group_size: i32,
    /// Device to run on (default: gpu when this MLX has one, else cpu).
    #[arg(long, value_parser = choice::<DeviceKind>())]
    device: Option<DeviceKind>,
    /// JSON file to write the records to (default results/capacity-<UTC time>.json).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Do not write a results file.
    #[arg(long, conflicts_with = "output")]
    no_save: bool,
    /// Print the records as JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Run one probe of this many tokens in this process and print its JSON report (used by the
    /// search itself).
    #[arg(long, hide = true)]
    probe: Option<u64>,
}

impl CapacityArgs {
    fn kv(&self, kv_bits: Option<i32>) -> KvCacheOptions {
        KvCacheOptions { kv_bits, kv_group_size: self.kv_group_size, quantized_kv_start: 0, max_kv_size: None }
    }

    /// The flags a probe process of `kv_bits` and `batch` gets.
    fn probe_args(&self, kv_bits: Option<i32>, batch: u64, device: DeviceKind, budget: u64) -> Vec<String> {
        let mut args = vec![
            "capacity".to_string(),
            "--model".into(),
            self.model.clone(),
            "--kv-bits".into(),
            bits_or_none(kv_bits),
            "--batch".into(),
            batch.to_string(),
            "--n-generate".into(),
            self.n_generate.to_string(),
            "--prefill-step-size".into(),
            self.prefill_step_size.to_string(),
            "--kv-group-size".into(),
            self.kv_group_size.to_string(),
            "--memory-limit".into(),
            budget.to_string(),
            "--device".into(),
        ];
        args.push(match device {
            DeviceKind::Cpu => "cpu".into(),
            DeviceKind::Gpu => "gpu".into(),
        });
        args
    }
}

/// The probe process: one length, one JSON line on stdout (its error too, when it fails).
fn probe(args: &CapacityArgs, n_prompt: u64) -> Result<bool> {
    let report = match probe_measure(args, n_prompt) {
        Ok(measured) => ProbeReport { measured: Some(measured), error: None },
        Err(e) => ProbeReport { measured: None, error: Some(mlxbench::error::describe(e.chain().map(|c| c as &(dyn std::error::Error + 'static)))) },
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(report.error.is_none())
}

fn probe_measure(args: &CapacityArgs, n_prompt: u64) -> Result<mlxbench::bench::capacity::ProbeMeasure> {
    let device_kind = args.device.unwrap_or_else(device::default_kind);
    device::select(device_kind)?;
    if let Some(limit) = args.memory_limit {
        // MLX frees its buffer cache and waits for running work before it passes the limit.
        device::set_memory_limit(limit)?;
    }
    let model = PreparedModel::load(&args.model)?;
    let kv_bits = args.kv_bits.first().map_or(None, |k| k.0);
    let options = GenerateOptions {
        n_generate: args.n_generate as usize,
        kv: args.kv(kv_bits),
        prefill_step_size: args.prefill_step_size as usize,
        ..GenerateOptions::default()
    };
    let batch = args.batch.first().copied().unwrap_or(1) as usize;
    Ok(mlxbench::bench::capacity::measure_probe(&model, n_prompt as usize, batch, &options, 0)?)
}

fn default_output() -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    PathBuf::from("results").join(format!("capacity-{stamp}.json"))
}

/// Runs the searches; `Ok(false)` when one of them ended without an exact answer.
pub fn run(args: CapacityArgs) -> Result<bool> {
    if let Some(n) = args.probe {
        return probe(&args, n);
    }
    super::warn_debug_build();
    if !(args.max_time >= 0.0 && args.max_time.is_finite()) {
        anyhow::bail!("--max-time {}: must be a number of seconds >= 0", args.max_time);
    }
    let device_kind = args.device.unwrap_or_else(device::default_kind);
    let info = device::select(device_kind)?;
    let budget = Budget::resolve(args.memory_limit, info.backend).with_context(|| {
        format!("could not tell how much memory the {} backend allows: give --memory-limit", info.backend)
    })?;
    let program = std::env::current_exe().context("could not find this program's path to start probes")?;
    let hardware = hwinfo::detect();
    let settings = Settings {
        warmup: 0,
        repeats: Repeats::Fixed(1),
        delay: std::time::Duration::ZERO,
        prompt_kind: PromptKind::Random,
        seed: 0,
        prefill_step_size: args.prefill_step_size as usize,
        kv: args.kv(None),
        cold: false,
        python: String::new(),
        device: device_kind,
        compile: false,
    };
    let context = RunContext::new(&settings, &info, &hardware);
    let setups: Vec<(Option<i32>, u64)> = args.kv_bits.iter().flat_map(|k| args.batch.iter().map(move |&b| (k.0, b))).collect();
    eprintln!("budget: {} ({}); each probe: prefill + {} decode steps", human_bytes(budget.bytes), budget.source.describe(), args.n_generate);
    let bar = ProgressBar::new(setups.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:20} {pos}/{len} settings {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let lines = !std::io::stderr().is_terminal();
    let mut records = Vec::new();
    for (i, &(kv_bits, batch)) in setups.iter().enumerate() {
        let label = format!("{} kv {} b{batch}", model_label(&args.model), bits_or_none(kv_bits));
        bar.set_message(format!("{label}: starting"));
        let prober = ChildProber { program: program.clone(), args: args.probe_args(kv_bits, batch, device_kind, budget.bytes), budget: budget.bytes };
        let spec = SearchSpec {
            start: args.start as usize,
            step: args.step as usize,
            max: args.max_n_prompt as usize,
            budget: budget.bytes,
            max_time: std::time::Duration::from_secs_f64(args.max_time),
            linear_from: args.prefill_step_size as usize,
        };
        let search_start = Instant::now();
        let outcome = search(
            &spec,
            &mut |n, time_left| {
                bar.set_message(format!("{label}: probing {n} tokens"));
                prober.probe(n, time_left)
            },
            &mut |p: &Probe, longest| {
                let line = format!(
                    "{label}: {} tokens {}{}{}",
                    p.n_prompt,
                    p.status.as_str(),
                    p.measured.map_or(String::new(), |m| format!(", peak {}", human_bytes(m.peak_memory_bytes))),
                    longest.map_or(String::new(), |l| format!(" (longest so far {l})"))
                );
                if lines {
                    eprintln!("{line}");
                } else {
                    bar.set_message(line);
                }
            },
        );
        let at_longest = outcome.longest_n_prompt.and_then(|l| outcome.probes.iter().find(|p| p.n_prompt == l)?.measured);
        let record = CapacityRecord {
            model: args.model.clone(),
            kv_bits,
            kv_group_size: args.kv_group_size,
            batch: batch as usize,
            n_generate: args.n_generate as usize,
            budget_bytes: budget.bytes,
            budget_source: budget.source,
            step_tokens: args.step as usize,
            max_n_prompt: args.max_n_prompt as usize,
            longest_n_prompt: outcome.longest_n_prompt,
            at_longest,
            first_failure: outcome.first_failure,
            complete: outcome.complete,
            stopped: outcome.stopped,
            elapsed_s: search_start.elapsed().as_secs_f64(),
            probes: outcome.probes,
            context: context.clone(),
        };
        if lines {
            eprintln!("[{}/{}] {}", i + 1, setups.len(), record_line(&record));
        }
        records.push(record);
        bar.inc(1);
        if !args.no_save {
            save(&args, &records)?;
        }
    }
    bar.finish_and_clear();
    let report = CapacityReport { capacity: records };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", capacity_table(&report.capacity, budget));
    }
    if !args.no_save {
        eprintln!("results: {}", args.output.clone().unwrap_or_else(default_output).display());
    }
    Ok(report.capacity.iter().all(|r| r.status() == "ok"))
}

fn save(args: &CapacityArgs, records: &[CapacityRecord]) -> Result<()> {
    static DEFAULT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let path = args.output.clone().unwrap_or_else(|| DEFAULT.get_or_init(default_output).clone());
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("could not create {}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(&CapacityReport { capacity: records.to_vec() })?;
    write_atomically(&path, text.as_bytes())?;
    Ok(())
}

/// One line per finished search, for logs.
fn record_line(r: &CapacityRecord) -> String {
    format!(
        "{} kv {} b{}: longest {} ({}), first failure {} [{} probes, {:.1} s, {}]",
        model_label(&r.model),
        bits_or_none(r.kv_bits),
        r.batch,
        r.longest_n_prompt.map_or("none".into(), |l| format!("{l} tokens")),
        r.at_longest.map_or("-".into(), |m| format!("peak {}", human_bytes(m.peak_memory_bytes))),
        r.first_failure.as_ref().map_or("none".into(), |f| format!("{} tokens: {}", f.n_prompt, f.reason.as_deref().unwrap_or(f.status.as_str()))),
        r.probes.len(),
        r.elapsed_s,
        r.status()
    )
}

/// The Markdown table of the searches.
pub fn capacity_table(records: &[CapacityRecord], budget: Budget) -> String {
    let mut out = format!(
        "budget {} ({}) | step {} tokens\n\n",
        human_bytes(budget.bytes),
        budget.source.describe(),
        records.first().map_or(0, |r| r.step_tokens)
    );
    out.push_str("| model | kv | batch | longest prompt | peak at it | weights / KV / transient / buffer cache | decode t/s at it | first failure | why | probes | s | status |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|\n");
    for r in records {
        let breakdown = r.at_longest.map_or("-".into(), |m| {
            let b = m.memory_breakdown;
            [b.weights_bytes, b.kv_cache_bytes, b.transient_bytes, b.buffer_cache_bytes].map(human_bytes).join(" / ")
        });
        let (failure, why) = match &r.first_failure {
            Some(f) => (f.n_prompt.to_string(), md_cell(&format!("{}: {}", f.status.as_str(), f.reason.as_deref().unwrap_or("")))),
            None => ("-".into(), "-".into()),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |\n",
            md_cell(&model_label(&r.model)),
            bits_or_none(r.kv_bits),
            r.batch,
            r.longest_n_prompt.map_or("none".into(), |l| l.to_string()),
            r.at_longest.map_or("-".into(), |m| human_bytes(m.peak_memory_bytes)),
            breakdown,
            r.at_longest.and_then(|m| m.generation_tps).map_or("-".into(), |t| format!("{t:.1}")),
            failure,
            why,
            r.probes.len(),
            r.elapsed_s,
            md_cell(&match &r.stopped {
                Some(s) => format!("{} ({s})", r.status()),
                None => r.status().into(),
            })
        ));
    }
    out.push_str("\nlongest prompt: tokens per sequence that ran (prefill + decode steps) with MLX's peak within the budget; ");
    out.push_str("first failure: the shortest length tried that did not fit (one step above the longest when the search completed).\n");
    out
}
