//! `mlxbench run`: a sweep of models × KV settings × batch × depth × prompt/generation lengths,
//! with warmup, repeats and statistics, printed as a table and saved under `results/`. The
//! measuring is `mlxbench::bench`'s; this file turns flags into a plan and settings, draws the
//! progress bar and writes the results file after every point.
use std::{io::IsTerminal, path::PathBuf};

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mlxbench::{
    bench::{
        session::{request_stop, stop_requested},
        Axes, Engine, Observer, Repeats, RunContext, RunPoint, RunRecord, Session, Settings, Status, TrialKind,
    },
    config::{bits_or_none, ModelConfig},
    hub, speculative,
    tokenizer::Tokenizer,
    device::{self, Backend, DeviceKind},
    hwinfo::{self, telemetry::GpuMonitor},
    measure::TrialMetrics,
    prompt::PromptKind,
    report::{Format, Printable, ResultsFile},
};

use super::{
    bits_choice, choice, choice_of, is_leader, point_label, record_line, results_file_arg, BitsArg, DistributedArgs,
    KvCacheArgs,
};

/// The formats `run` prints and writes.
const FORMATS: &[Format] = &[Format::Md, Format::Csv, Format::Json, Format::Jsonl];

#[derive(Debug, Args)]
#[command(after_long_help = "Lists (comma-separated) are accepted by --model, --n-prompt, --n-generate, --kv-bits, \
--batch, --depth and --num-draft-tokens; the sweep runs every combination, each model loaded once.\n\n\
Speculative decoding: --draft-model D --num-draft-tokens 2,4,8 adds, beside each setting, one \
configuration per k with D proposing k tokens per verify step (trials interleaved with the setting \
without a draft): acceptance rate, accepted length, draft share, speed-up [95%], verify-cost curve \
and predicted speed-up (README: Speculative decoding).\n\n\
Metrics (see README): TTFT = prompt on the device -> first token on the host; prompt t/s = prefill \
tokens / prefill time (the first token excluded); generation t/s = (tokens - 1) / (first -> last \
token); peak memory = MLX's peak allocation, reset before each trial.\n\n\
Example: mlxbench run --model ./my-model --n-prompt 512,2048 --n-generate 128 --kv-bits none,8,4")]
pub struct RunArgs {
    /// Models: local MLX-format directories or Hugging Face repo ids (comma list).
    #[arg(help_heading = "Sweep (comma lists: every combination runs)", long, short, value_delimiter = ',', required = true, value_parser = model_arg)]
    model: Vec<String>,
    /// Prompt tokens per sequence (comma list).
    #[arg(help_heading = "Sweep (comma lists: every combination runs)", long, short = 'p', visible_alias = "prompt-tokens", value_delimiter = ',', default_value = "1000", value_parser = clap::value_parser!(u64).range(1..))]
    n_prompt: Vec<u64>,
    /// Tokens to generate per sequence (comma list).
    #[arg(help_heading = "Sweep (comma lists: every combination runs)", long, short = 'n', visible_alias = "max-tokens", value_delimiter = ',', default_value = "100", value_parser = clap::value_parser!(u64).range(1..))]
    n_generate: Vec<u64>,
    /// KV cache: none (full precision) or bits to quantize it to, e.g. none,8,4 (comma list).
    /// Gemma 2 and Gemma 3 cannot quantize their caches (nor can mlx-lm): their points are
    /// recorded as unsupported.
    #[arg(help_heading = "Sweep (comma lists: every combination runs)", long, value_delimiter = ',', default_value = "none", value_parser = bits_choice())]
    kv_bits: Vec<BitsArg>,
    /// Sequences run together (comma list); tokens/s is reported in total and per sequence.
    #[arg(help_heading = "Sweep (comma lists: every combination runs)", long, short, value_delimiter = ',', default_value = "1", value_parser = clap::value_parser!(u64).range(1..))]
    batch: Vec<u64>,
    /// Tokens already in the cache before the measured prompt (comma list), as llama-bench -d.
    #[arg(help_heading = "Sweep (comma lists: every combination runs)", long, short, value_delimiter = ',', default_value = "0", value_parser = clap::value_parser!(u64))]
    depth: Vec<u64>,
    /// Engines to measure each configuration on (comma list); several take turns trial by trial,
    /// and the table shows mlxbench ÷ mlx-lm with its interval.
    #[arg(help_heading = "Sweep (comma lists: every combination runs)", long = "engine", value_delimiter = ',', default_value = "mlxbench", value_parser = choice::<Engine>())]
    engines: Vec<Engine>,
    /// Speculative decoding: a draft model (directory or repo id) proposes tokens that each model
    /// verifies, as mlx-lm's --draft-model. Every setting runs without it too, interleaved, for
    /// the speed-up. Its tokenizer must be the target's (checked before anything runs).
    #[arg(help_heading = "Speculative decoding", long, value_parser = model_arg)]
    draft_model: Option<String>,
    /// Tokens the draft proposes per verify step (comma list, a sweep axis), as mlx-lm's
    /// --num-draft-tokens.
    #[arg(help_heading = "Speculative decoding", long, value_delimiter = ',', requires = "draft_model", default_value = "2", value_parser = clap::value_parser!(u64).range(1..))]
    num_draft_tokens: Vec<u64>,

    /// Measured trials per configuration, or `auto`: trials until the 95% interval of the median
    /// decode rate is within --target-ci (at least 6, at most --max-time).
    #[arg(help_heading = "Trials", long, short, default_value = "3", value_parser = repeats_arg)]
    repeats: RepeatsArg,
    /// With --repeats auto: the median decode rate's 95% interval must be within ± this percent.
    #[arg(help_heading = "Trials", long, default_value_t = 2.0)]
    target_ci: f64,
    /// With --repeats auto: seconds of measured trials per configuration at most (all engines).
    #[arg(help_heading = "Trials", long, default_value_t = 120.0)]
    max_time: f64,
    /// Unmeasured trials before the measured ones (kernels compile and caches warm on first use).
    #[arg(help_heading = "Trials", long, default_value_t = 1)]
    warmup: u64,
    /// Seconds to wait before each trial after the first (lets a Mac cool down).
    #[arg(help_heading = "Trials", long, default_value_t = 0.0)]
    delay: f64,
    /// Time the first trial after each model loads apart (cold: kernels compiling, caches empty)
    /// and keep it in the record, instead of only warming up with it.
    #[arg(help_heading = "Trials", long)]
    cold: bool,
    /// Look for a memory leak: run this many measured trials per configuration and exit 1 when
    /// MLX's active memory grows across them by more than --leak-threshold, with confidence.
    #[arg(help_heading = "Trials", long, value_name = "TRIALS", value_parser = clap::value_parser!(u64).range(3..=100_000), conflicts_with = "repeats")]
    leak_check: Option<u64>,
    /// With --leak-check: the growth over all the trials (bytes) that counts as a leak.
    #[arg(help_heading = "Trials", long, default_value_t = 1_000_000, requires = "leak_check")]
    leak_threshold: u64,

    /// Prompt content: repeated English text, or random token ids.
    #[arg(help_heading = "Prompts and the KV cache", long, value_parser = choice::<PromptKind>(), default_value_t = PromptKind::Text)]
    prompt_kind: PromptKind,
    /// Seed of random prompts.
    #[arg(help_heading = "Prompts and the KV cache", long, default_value_t = 0)]
    seed: u64,
    /// Prompt tokens per prefill forward pass.
    #[arg(help_heading = "Prompts and the KV cache", long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..))]
    prefill_step_size: u64,
    #[command(flatten, next_help_heading = "Prompts and the KV cache")]
    kv: KvCacheArgs,
    /// Compile the decode step's sampler (log-softmax and greedy choice) with MLX's `compile`,
    /// traced once and replayed. The forward pass is not compiled (README: "Compiled decode").
    /// Off by default; mlxbench's engine only.
    #[arg(help_heading = "Prompts and the KV cache", long)]
    compile: bool,

    /// Table format on stdout.
    #[arg(help_heading = "Output", long, short, value_parser = choice_of(FORMATS), default_value_t = Format::Md)]
    format: Format,
    /// File to add the results to, its format named by its extension: .csv .json .jsonl .md
    /// (default results/run-<UTC time>.csv). An existing file is appended to, never overwritten.
    #[arg(help_heading = "Output", long, short, value_parser = results_file_arg)]
    output: Option<PathBuf>,
    /// Do not write a results file.
    #[arg(help_heading = "Output", long, conflicts_with = "output")]
    no_save: bool,
    /// Also write the HTML report of the results file beside it (same name, .html), as
    /// `mlxbench report` does.
    #[arg(help_heading = "Output", long, conflicts_with = "no_save")]
    report: bool,
    /// Print every trial's numbers to stderr.
    #[arg(help_heading = "Output", long, short)]
    verbose: bool,

    /// Device to run on (default: gpu when this MLX has one, else cpu).
    #[arg(help_heading = "Machine", long, value_parser = choice::<DeviceKind>())]
    device: Option<DeviceKind>,
    /// The Python with mlx-lm (and MLX 0.32.2) that runs the mlx-lm engine.
    #[arg(help_heading = "Machine", long, env = "MLXBENCH_PYTHON", default_value = "python3")]
    python: String,
    #[command(flatten, next_help_heading = "Machine")]
    distributed: DistributedArgs,
}

/// A model of `--model`: not empty (`--model a,` is a typo, not a second model).
fn model_arg(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => Err("an empty model name (a stray comma?)".into()),
        name => Ok(name.to_string()),
    }
}

impl RunArgs {
    fn axes(&self) -> Axes {
        let to_usize = |v: &[u64]| v.iter().map(|&x| x as usize).collect();
        Axes {
            models: self.model.clone(),
            kv_bits: self.kv_bits.iter().map(|k| k.0).collect(),
            batch: to_usize(&self.batch),
            depth: to_usize(&self.depth),
            n_prompt: to_usize(&self.n_prompt),
            n_generate: to_usize(&self.n_generate),
            engines: self.engines.clone(),
            draft_model: self.draft_model.clone(),
            num_draft_tokens: match self.draft_model {
                Some(_) => self.num_draft_tokens.iter().map(|&k| k as usize).collect(),
                None => Vec::new(),
            },
        }
    }

    fn settings(&self, device: DeviceKind) -> Result<Settings> {
        Ok(Settings {
            warmup: self.warmup as usize,
            repeats: match (self.leak_check, self.repeats) {
                (Some(trials), _) => Repeats::Fixed(trials as usize),
                (None, RepeatsArg::Fixed(n)) => Repeats::Fixed(n),
                (None, RepeatsArg::Auto) => Repeats::auto(self.target_ci, self.max_time)?,
            },
            delay: Settings::delay_from_secs(self.delay)?,
            prompt_kind: self.prompt_kind,
            seed: self.seed,
            prefill_step_size: self.prefill_step_size as usize,
            kv: self.kv.options(None),
            cold: self.cold,
            python: self.python.clone(),
            device,
            compile: self.compile,
        })
    }
}

/// `--repeats`: a number of trials or `auto`.
#[derive(Debug, Clone, Copy)]
enum RepeatsArg {
    Fixed(usize),
    Auto,
}

fn repeats_arg(s: &str) -> Result<RepeatsArg, String> {
    match s.trim() {
        "auto" => Ok(RepeatsArg::Auto),
        n => match n.parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(RepeatsArg::Fixed(n)),
            _ => Err(format!("{n:?} is not a number of trials from 1 to 10000, or auto")),
        },
    }
}

/// The terminal side of a run: on a terminal the progress bar (naming the configuration under
/// way and counting its trials); elsewhere (CI logs, `| tee`) one line per finished
/// configuration. Also `--verbose` lines, and the results file rewritten after every point.
struct Progress {
    bar: ProgressBar,
    trials_per_point: u64,
    verbose: bool,
    file: Option<ResultsFile>,
    /// One line per finished configuration instead of the bar (stderr is not a terminal).
    lines: bool,
    /// Configurations in the sweep.
    points: usize,
    /// The configuration under way, and its trials so far (warmup, measured).
    current: String,
    warmups: usize,
    measured: usize,
    /// Warmup and measured trials per configuration (`None`: `--repeats auto` decides).
    warmup: usize,
    repeats: Option<usize>,
}

impl Progress {
    /// A line on stderr that does not tear the progress bar.
    fn say(&self, line: String) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// The bar's message: the configuration under way and how far its trials are.
    fn show_trials(&self) {
        let trials = match (self.measured, self.repeats) {
            (0, _) if self.warmups < self.warmup => format!("warmup {}/{}", self.warmups + 1, self.warmup),
            (n, Some(of)) => format!("measured {n}/{of}"),
            (n, None) => format!("measured {n} (auto)"),
        };
        self.bar.set_message(format!("{}: {trials}", self.current));
    }
}

impl Observer for Progress {
    fn loading(&mut self, model: &str) {
        self.bar.set_message(format!("loading {model}"));
    }

    fn measuring(&mut self, point: &RunPoint) {
        (self.current, self.warmups, self.measured) = (point_label(point), 0, 0);
        self.show_trials();
    }

    fn trial(&mut self, point: &RunPoint, kind: TrialKind, metrics: &TrialMetrics) {
        if self.verbose {
            self.say(format!(
                "{} {} kv={} b={} d={} p={} g={}: ttft {:.2} ms, prompt {:.1} t/s, generation {:.1} t/s, peak {:.3} GB",
                if kind == TrialKind::Measured { "trial " } else { "warmup" },
                point.model,
                bits_or_none(point.kv_bits),
                point.batch,
                point.depth,
                point.n_prompt,
                point.n_generate,
                metrics.ttft_ms,
                metrics.prompt_tps.unwrap_or(f64::NAN),
                metrics.generation_tps.unwrap_or(f64::NAN),
                metrics.memory.peak_memory_bytes as f64 / 1e9
            ));
        }
        match kind {
            TrialKind::Measured => self.measured += 1,
            TrialKind::Warmup => self.warmups += 1,
        }
        self.show_trials();
        // `--repeats auto` may run more trials than the bar expected.
        if self.bar.length().is_some_and(|len| self.bar.position() >= len) {
            self.bar.inc_length(1);
        }
        self.bar.inc(1);
    }

    fn finished(&mut self, records: &[RunRecord]) -> mlxbench::Result<()> {
        if let Some(record) = records.last() {
            if self.lines {
                eprintln!("[{}/{}] {}", records.len(), self.points, record_line(record));
            } else if let Some(e) = &record.error {
                self.say(format!("{} ({}): {}", record.point.model, record.status.as_str(), e));
            }
        }
        self.bar.set_position(self.bar.position().max(records.len() as u64 * self.trials_per_point));
        match &mut self.file {
            Some(file) => file.save(records),
            None => Ok(()),
        }
    }
}

/// One warning line per configuration whose decode rate stayed less precise than `target`.
fn warn_imprecise(records: &[RunRecord], target: f64) {
    for r in records {
        let Some(summary) = r.summary.as_ref().and_then(|s| s.precision_metric()) else { continue };
        let width = summary.relative_ci_half_width();
        if width.is_none_or(|w| w > target) {
            eprintln!(
                "warning: {}: the median rate's 95% interval is {} after {} trials, \
                 wider than ±{:.1}%: this machine is noisy (more --max-time, or fewer other loads)",
                point_label(&r.point),
                width.map_or("undefined".into(), |w| format!("±{:.1}%", w * 100.0)),
                summary.samples.len(),
                target * 100.0
            );
        }
    }
}

/// One warning line per configuration with trials that ran while macOS slowed the Mac down to
/// cool it (thermal state serious or critical).
fn warn_throttled(records: &[RunRecord]) {
    for r in records {
        let throttled = r.throttled_trials();
        if throttled > 0 {
            let hottest = r.trials.iter().filter_map(|t| t.thermal_state).max().map_or("", |s| s.as_str());
            eprintln!(
                "warning: {}: {throttled} of {} trials ran throttled (macOS thermal state up to {hottest}): \
                 their rates are lower than a cool Mac's; let it cool (or use --delay) and run again",
                point_label(&r.point),
                r.trials.len()
            );
        }
    }
}

/// Each target's family and tokenizer against the draft's (`speculative::check_draft_family`,
/// `speculative::check_draft`), before anything loads or runs.
fn check_drafts(models: &[String], draft: &str) -> Result<()> {
    let draft_dir = hub::resolve(draft)?;
    let draft_type = ModelConfig::from_dir(&draft_dir)?.model_type;
    let draft_tokenizer = Tokenizer::from_dir(&draft_dir)?;
    for model in models {
        let dir = hub::resolve(model)?;
        speculative::check_draft_family(model, &ModelConfig::from_dir(&dir)?.model_type, draft, &draft_type)?;
        let tokenizer = Tokenizer::from_dir(&dir)?;
        speculative::check_draft(model, &tokenizer, draft, &draft_tokenizer)?;
    }
    Ok(())
}

fn default_output() -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    PathBuf::from("results").join(format!("run-{stamp}.csv"))
}

/// Runs the sweep; `Ok(false)` when some configuration failed or is unsupported.
pub fn run(args: RunArgs) -> Result<bool> {
    super::warn_debug_build();
    let device_kind = args.device.unwrap_or_else(device::default_kind);
    let settings = args.settings(device_kind)?;
    let points = args.axes().expand()?;
    if let Some(draft) = &args.draft_model {
        check_drafts(&args.model, draft)?;
        if points.iter().any(|p| p.batch != 1) {
            anyhow::bail!("--draft-model runs one sequence (batch 1), as mlx-lm's speculative decoding: drop --batch");
        }
        if args.compile {
            // The baselines without the draft would run compiled and the speculative ones not,
            // and the speed-up would compare the two.
            anyhow::bail!("--compile applies to plain decoding only, so it cannot be combined with --draft-model: drop one");
        }
    }
    let info = device::select(device_kind)?;
    let group = args.distributed.join()?;
    if group.is_some() && points.iter().any(|p| p.engine != Engine::Mlxbench) {
        anyhow::bail!("--engine mlx-lm does not run tensor-parallel here: run mlx_lm.benchmark under mlx.launch for it");
    }
    let leader = is_leader(group);
    let hardware = hwinfo::detect();
    let file = match (&args.output, args.no_save || !leader) {
        (_, true) => None,
        (Some(path), false) => Some(ResultsFile::open(path, Format::from_path(path).unwrap_or(Format::Csv))?),
        (None, false) => Some(ResultsFile::open(&default_output(), Format::Csv)?),
    };
    if let Some(file) = &file {
        if args.report && file.format() == Format::Md {
            anyhow::bail!(
                "--report reads the results file back, and {} is Markdown: write .csv, .json or .jsonl results",
                file.path().display()
            );
        }
        if let Some(wanted) = &file.redirected_from {
            eprintln!(
                "warning: {} holds results of another format or columns; writing {} instead",
                wanted.display(),
                file.path().display()
            );
        }
    }
    let trials_per_point = settings.trials_per_point() as u64;
    let target = match settings.repeats {
        Repeats::Auto { target, .. } => Some(target),
        Repeats::Fixed(_) => None,
    };
    let bar = match leader {
        true => ProgressBar::new(points.len() as u64 * trials_per_point),
        false => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} trials {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut progress = Progress {
        bar,
        trials_per_point,
        verbose: args.verbose,
        file,
        lines: leader && !std::io::stderr().is_terminal(),
        points: points.len(),
        current: String::new(),
        warmups: 0,
        measured: 0,
        warmup: settings.warmup,
        repeats: match settings.repeats {
            Repeats::Fixed(n) => Some(n),
            Repeats::Auto { .. } => None,
        },
    };
    let context = RunContext::new(&settings, &info, &hardware);
    let peak_gbps = hardware.peak_bandwidth_gbps(info.device);
    let gpu = (info.backend == Backend::Cuda).then(GpuMonitor::open).flatten();
    stop_on_ctrl_c();
    let records = Session::new(settings, context, peak_gbps, &mut progress).with_gpu_monitor(gpu).run(&points)?;
    progress.bar.finish_and_clear();
    if !leader {
        return Ok(records.iter().all(|r| r.status == Status::Ok));
    }
    if let Some(group) = group {
        eprintln!("tensor-parallel over {} ranks ({} backend); per-rank peak memory is in JSON results", group.size(), group.backend());
    }
    print!("{}", records.render(args.format)?);
    if let Some(file) = &progress.file {
        eprintln!("results: {}", file.path().display());
        if args.report {
            let results = file.path().to_path_buf();
            super::report::write_report(std::slice::from_ref(&results), &super::report::beside(&results))?;
        }
    }
    if let Some(target) = target {
        warn_imprecise(&records, target);
    }
    warn_throttled(&records);
    let leaking = args.leak_check.is_some() && !leak_verdicts(&records, args.leak_threshold);
    if stop_requested() {
        eprintln!("stopped (Ctrl-C): {} of {} configurations finished and saved", records.len(), points.len());
        std::process::exit(130);
    }
    let bad = records.iter().filter(|r| r.status != Status::Ok).count();
    if bad > 0 {
        eprintln!("{bad} of {} configurations did not complete", records.len());
    }
    Ok(bad == 0 && !leaking)
}

/// The first Ctrl-C stops the run after the trial under way, keeping every finished
/// configuration; a second one quits at once.
fn stop_on_ctrl_c() {
    let installed = ctrlc::set_handler(|| {
        if stop_requested() {
            std::process::exit(130);
        }
        eprintln!("\nstopping after the trial under way (Ctrl-C again to quit now)");
        request_stop();
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will stop mlxbench at once: {e}");
    }
}

/// One line per configuration on how MLX's active memory moved across its trials; `false` when
/// one of them leaks: its growth over the run (slope × (trials − 1)) exceeds `threshold` bytes
/// even at the low end of the slope's 95% interval.
fn leak_verdicts(records: &[RunRecord], threshold: u64) -> bool {
    let mut clean = true;
    for r in records {
        let (Some(fit), Some(leaks), n) = (r.memory_drift, r.leaks(threshold), r.trials.len()) else { continue };
        let steps = n.saturating_sub(1) as f64;
        clean &= !leaks;
        eprintln!(
            "{} {}: active memory {:+.0} B per trial [{:+.0}, {:+.0}] over {n} trials, {:+.0} B in all: {}",
            if leaks { "LEAK" } else { "ok  " },
            point_label(&r.point),
            fit.slope,
            fit.slope_ci95[0],
            fit.slope_ci95[1],
            fit.slope * steps,
            if leaks { format!("grows by more than {threshold} B") } else { format!("within {threshold} B") }
        );
    }
    clean
}
