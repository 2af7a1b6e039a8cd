//! `mlxbench quality`: what a KV-cache setting costs in output quality, against the plain cache
//! of the same model and engine (the library's `quality` module does the work).
use std::{io::IsTerminal, path::PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mlxbench::{
    bench::{Engine, PreparedModel, Status},
    cache::KvCacheOptions,
    choice::Choice,
    device::{self, DeviceKind},
    error::Error,
    measure::stats::seed_for,
    quality::{
        self, mlx_lm,
        record::QualityPoint,
        text::TextSource,
        DepthSession, QualityPlan, QualityRecord, QualityRecords, SettingRun,
    },
    report::{write_atomically, Format, Printable},
};

use super::{bits_arg, choice, BitsArg};

const AFTER_HELP: &str = "\
Each depth D: the text's first D tokens go into the cache through chunked prefill (as a prompt \
would), then the next --n-score tokens are fed one at a time as decode steps, teacher-forced, so \
the quantized or rotating cache is what every scored step attends to. Each step's next-token \
distribution is compared with the plain cache's: mean and p99 KL(plain || setting), top-1 \
agreement, the change in log-likelihood and perplexity of the text's own tokens, with 95% \
bootstrap intervals over the scored tokens. From the same depth, a greedy run of --n-generate \
tokens gives the share of repeated 4-grams and the first token where it leaves the plain cache's \
text. The plain row compares a second plain run with the first (0 and 100% unless decoding is not \
deterministic). Metrics are defined in README's metrics table. Results: quality.json, .csv and \
.md under --output-dir.";

/// `mlxbench quality`'s arguments.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct QualityArgs {
    /// Model: a local MLX-format directory or a Hugging Face repo id.
    #[arg(short, long)]
    model: String,
    /// Engines to measure, comma-separated: mlxbench and/or mlx-lm (each against its own plain
    /// cache).
    #[arg(long, value_delimiter = ',', value_parser = choice::<Engine>(), default_value = "mlxbench")]
    engine: Vec<Engine>,
    /// KV-cache bits to measure against the plain cache, comma-separated (`none` adds nothing:
    /// the plain row is always there).
    #[arg(long, value_delimiter = ',', value_parser = bits_arg, default_value = "8,4")]
    kv_bits: Vec<BitsArg>,
    /// Rotating-cache sizes to measure (a cache keeping the first 4 and the last N-4 tokens),
    /// comma-separated.
    #[arg(long, value_delimiter = ',')]
    max_kv_size: Vec<i32>,
    /// Group size of the KV-cache quantization.
    #[arg(long, default_value_t = 64)]
    kv_group_size: i32,
    /// Keep the KV cache in full precision until it holds this many tokens.
    #[arg(long, default_value_t = 0)]
    quantized_kv_start: i32,
    /// Context depths (tokens already in the cache) to score at, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "512,2048")]
    depth: Vec<usize>,
    /// Tokens scored after each depth, teacher-forced one decode step each.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    n_score: u32,
    /// Greedy tokens generated from each depth (repetition, first divergence).
    #[arg(long, default_value_t = 64)]
    n_generate: usize,
    /// Prompt tokens per prefill forward pass (mlx-lm's default 2048).
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..))]
    prefill_step_size: u32,
    /// A UTF-8 text file to score instead of the default (fixtures/quality/kjv-ruth-jonah.txt).
    #[arg(long, conflicts_with = "dataset")]
    text: Option<PathBuf>,
    /// A JSONL dataset to score: each line an object with a "text" field, joined in order.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// Device to run on (default: gpu when this MLX has one, else cpu).
    #[arg(long, value_parser = choice::<DeviceKind>())]
    device: Option<DeviceKind>,
    /// The Python with mlx-lm that runs the mlx-lm engine.
    #[arg(long, env = "MLXBENCH_PYTHON", default_value = "python3")]
    python: String,
    /// Directory for quality.json, quality.csv and quality.md (default
    /// results/quality-<UTC time>/); files there are replaced.
    #[arg(short, long)]
    output_dir: Option<PathBuf>,
    /// Write no results files.
    #[arg(long, conflicts_with = "output_dir")]
    no_save: bool,
    /// What to print on stdout: the table (md), or every record as json or csv.
    #[arg(long, short, value_parser = choice::<Format>(), default_value = "md")]
    format: Format,
}

impl QualityArgs {
    fn plan(&self) -> QualityPlan {
        let base = KvCacheOptions {
            kv_bits: None,
            kv_group_size: self.kv_group_size,
            quantized_kv_start: self.quantized_kv_start,
            max_kv_size: None,
        };
        let mut settings = vec![base];
        for BitsArg(bits) in &self.kv_bits {
            let kv = KvCacheOptions { kv_bits: *bits, ..base };
            if !settings.contains(&kv) {
                settings.push(kv);
            }
        }
        for &size in &self.max_kv_size {
            settings.push(KvCacheOptions { max_kv_size: Some(size), ..base });
        }
        QualityPlan {
            depths: self.depth.clone(),
            n_score: self.n_score as usize,
            n_generate: self.n_generate,
            prefill_step_size: self.prefill_step_size as usize,
            settings,
        }
    }

    fn text(&self) -> TextSource {
        match (&self.text, &self.dataset) {
            (Some(path), _) => TextSource::File(path.clone()),
            (None, Some(path)) => TextSource::Dataset(path.clone()),
            (None, None) => TextSource::Default,
        }
    }
}

/// Runs the measurement; `Ok(false)` when some setting failed or is unsupported.
pub fn run(args: QualityArgs) -> Result<bool> {
    super::warn_debug_build();
    let device_kind = args.device.unwrap_or_else(device::default_kind);
    device::select(device_kind)?;
    let plan = args.plan();
    let source = args.text();
    let text = source.read()?;
    let model = PreparedModel::load(&args.model).with_context(|| format!("loading {}", args.model))?;
    let mut tokens = model.tokenizer.encode(&text)?;
    plan.validate(tokens.len())?;
    tokens.truncate(plan.tokens_needed());
    let per_depth = plan.settings.len() as u64;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(plan.depths.len() as u64 * per_depth * args.engine.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} settings {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let point = |engine: Engine, kv: &KvCacheOptions, depth: usize| QualityPoint {
        engine: engine.name().to_string(),
        model: model.dir.display().to_string(),
        text: source.name(),
        kv: *kv,
        depth,
        n_score: plan.n_score,
        n_generate: plan.n_generate,
    };
    let out_dir = (!args.no_save).then(|| args.output_dir.clone().unwrap_or_else(default_output_dir));
    if let Some(dir) = &out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // The files are rewritten after every record, so a long measurement stopped early keeps
    // what it measured.
    let save_now = |records: &[QualityRecord]| {
        if let Some(dir) = &out_dir {
            if let Err(e) = save(dir, records) {
                eprintln!("warning: saving quality results: {e:#}");
            }
        }
    };
    let mut records = Vec::new();
    for &engine in &args.engine {
        match engine {
            Engine::Mlxbench => {
                for &depth in &plan.depths {
                    bar.set_message(format!("mlxbench, depth {depth}: plain prefill"));
                    let session = match DepthSession::new(&*model.loaded.model, &tokens, &plan, depth) {
                        Ok(session) => session,
                        Err(e) => {
                            let error = e.describe();
                            for kv in &plan.settings {
                                records.push(QualityRecord::not_run(&point(engine, kv, depth), Status::of_failure(&error), error.clone()));
                                bar.inc(1);
                            }
                            continue;
                        }
                    };
                    let baseline = session.run(&plan.plain());
                    for kv in &plan.settings {
                        bar.set_message(format!("mlxbench, depth {depth}, kv {}", label(kv)));
                        let run = match &baseline {
                            Ok(_) => session.run(kv),
                            Err(e) => Err(Error::InvalidOption(format!("the plain run failed: {}", e.describe()))),
                        };
                        let record = finish(&point(engine, kv, depth), baseline.as_ref().ok(), run.map_err(|e| e.describe()), session.targets());
                        records.push(record);
                        save_now(&records);
                        bar.inc(1);
                    }
                }
            }
            Engine::MlxLm => {
                // The script's first setting is the baseline; plan.settings follow it.
                let mut reference = plan.clone();
                reference.settings.insert(0, plan.plain());
                let mut baselines: Vec<(usize, SettingRun)> = Vec::new();
                let vocab = model.loaded.model.vocab_size();
                let result = mlx_lm::run(&args.python, device_kind, &model.dir, &tokens, &reference, vocab, |depth, i, run| {
                    let targets = &tokens[depth + 1..=depth + plan.n_score];
                    if i == 0 {
                        if let Ok(run) = run {
                            baselines.push((depth, run));
                        }
                        return;
                    }
                    let kv = &plan.settings[i - 1];
                    let baseline = baselines.iter().find(|(d, _)| *d == depth).map(|(_, r)| r);
                    bar.set_message(format!("mlx-lm, depth {depth}, kv {}", label(kv)));
                    records.push(finish(&point(engine, kv, depth), baseline, run, targets));
                    save_now(&records);
                    bar.inc(1);
                });
                if let Err(e) = result {
                    let error = e.describe();
                    for &depth in &plan.depths {
                        for kv in &plan.settings {
                            let p = point(engine, kv, depth);
                            if !records.iter().any(|r: &QualityRecord| r.engine == p.engine && r.depth == depth && r.kv_bits == kv.kv_bits && r.max_kv_size == kv.max_kv_size) {
                                records.push(QualityRecord::not_run(&p, Status::Failed, error.clone()));
                            }
                        }
                    }
                }
            }
        }
    }
    bar.finish_and_clear();
    if let Some(dir) = &out_dir {
        save(dir, &records)?;
        eprintln!("quality: results in {}", dir.display());
    }
    let doc = QualityRecords(records);
    print!("{}", doc.render(args.format)?);
    Ok(doc.0.iter().all(|r| r.status == Status::Ok))
}

/// Writes quality.json, quality.csv and quality.md in `dir`, each replaced whole.
fn save(dir: &std::path::Path, records: &[QualityRecord]) -> Result<()> {
    let doc = QualityRecords(records.to_vec());
    for (format, name) in [(Format::Json, "quality.json"), (Format::Csv, "quality.csv"), (Format::Md, "quality.md")] {
        write_atomically(&dir.join(name), doc.render(format)?)?;
    }
    Ok(())
}

/// The record of one setting's run against the baseline.
fn finish(
    point: &QualityPoint,
    baseline: Option<&SettingRun>,
    run: std::result::Result<SettingRun, String>,
    targets: &[u32],
) -> QualityRecord {
    let seed = seed_for(&format!("{}/{}/{:?}/{:?}", point.engine, point.depth, point.kv.kv_bits, point.kv.max_kv_size));
    match (baseline, run) {
        (_, Err(error)) => QualityRecord::not_run(point, Status::of_failure(&error), error),
        (None, Ok(_)) => QualityRecord::not_run(point, Status::Failed, "the plain cache's run failed".into()),
        (Some(baseline), Ok(run)) => match quality::compare(baseline, &run, targets, seed) {
            Ok(comparison) => QualityRecord::ok(point, &comparison),
            Err(e) => QualityRecord::not_run(point, Status::Failed, e.describe()),
        },
    }
}

fn label(kv: &KvCacheOptions) -> String {
    match kv.max_kv_size {
        Some(max) => format!("none, max {max}"),
        None => mlxbench::config::bits_or_none(kv.kv_bits),
    }
}

fn default_output_dir() -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    PathBuf::from("results").join(format!("quality-{stamp}"))
}
