//! `mlxbench serve`: load tests of OpenAI-compatible servers (`mlxbench::serve`), given by URL or
//! launched (`--launch mlx-lm`), swept over server settings and load.
use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mlxbench::{
    choice::Choice,
    config::ModelConfig,
    hub, hwinfo,
    serve::{
        client::{base_url, Api, ClientOptions, RequestSpec},
        launch::{LaunchSpec, Launcher, LogDir, MemorySampler, ServerCommand, Servers},
        load::{run_conversations, run_point, Amount, Load, Target},
        markdown,
        metrics::{PointSummary, RequestRecord, Slo},
        progress_line,
        requests::{self, Lengths},
        search::{Probe, Search, SearchAxis},
        search_line,
        workload::{self, CacheBuster, CacheMode, Workload, WorkloadKind},
        ServeContext, ServeFile, ServeFormat, ServePoint, ServeRecord, ServeReport,
    },
    tokenizer::Tokenizer,
};

use super::{bits_arg, choice, BitsArg};

/// A request rate: requests/s, or `inf` (all at once).
fn rate_arg(s: &str) -> Result<f64, String> {
    match s.trim() {
        "inf" => Ok(f64::INFINITY),
        v => v.parse::<f64>().ok().filter(|r| r.is_finite() && *r > 0.0).ok_or_else(|| format!("{v:?} is not a positive rate or inf")),
    }
}

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:\n  \
mlxbench serve --url http://127.0.0.1:8080/v1 --tokenizer MODEL_DIR --concurrency 1,4,16\n  \
mlxbench serve --launch mlx-lm --model MODEL --instances 2 --concurrency 1,2,4,8 --num-requests 32\n  \
mlxbench serve --launch mlx-lm --model MODEL --decode-concurrency 8,32 --concurrency 1,8,32\n  \
mlxbench serve --url http://host:8000 --served-model NAME --tokenizer MODEL --request-rate 2,8,inf --max-concurrency 64\n  \
mlxbench serve --launch mlx-lm --model MODEL --workload shared-prefix --prefix-tokens 8192 -p 64 --cache-mode warm\n  \
mlxbench serve --launch mlx-lm --model MODEL --workload multi-turn --turns 5 --concurrency 1,8,32 --api chat\n  \
mlxbench serve --url URL --tokenizer MODEL --workload trace --trace trace.jsonl --max-concurrency 16\n  \
mlxbench serve --launch mlx-lm --model MODEL --search concurrency --slo 'ttft_p90<=1s,tpot_p90<=50ms'\n\n\
Every axis multiplies: instances x decode-concurrency x prompt-concurrency x kv-bits (servers \
restarted for each) x concurrency or request rate. Each point is written to the results file as \
soon as it ends. Metrics are defined in README (`mlxbench serve`). Exit code 1 when any request or \
point failed, 130 on Ctrl-C (servers mlxbench started are stopped; finished points are kept). \
Off a terminal (CI logs, | tee), one line per finished point replaces the progress bar.")]
pub struct ServeArgs {
    /// Base URLs of running OpenAI-compatible servers (comma list), with or without the `/v1`
    /// OpenAI SDKs show; requests go round-robin.
    #[arg(long, value_delimiter = ',', required_unless_present = "launch", conflicts_with = "launch")]
    url: Vec<String>,
    /// Start the servers: mlx-lm (needs --model; see --python).
    #[arg(long, value_parser = choice::<Launcher>())]
    launch: Option<Launcher>,
    /// The model: what launched servers load (a directory or a repo id); its tokenizer builds
    /// the prompts and its EOS ids are suppressed for exact output lengths.
    #[arg(long)]
    model: Option<String>,
    /// The tokenizer for prompts of exact length, when the model is not given (a model directory
    /// or repo id).
    #[arg(long)]
    tokenizer: Option<String>,
    /// The `model` field of each request (default: none, which mlx_lm.server takes as the model
    /// it loaded; vLLM and others need the served name).
    #[arg(long)]
    served_model: Option<String>,
    /// Endpoint: completions or chat.
    #[arg(long, value_parser = choice::<Api>(), default_value = "completions")]
    api: Api,

    /// With --launch: server instances (comma list), each on its own port.
    #[arg(long, value_delimiter = ',', default_value = "1", value_parser = clap::value_parser!(u64).range(1..=64), requires = "launch")]
    instances: Vec<u64>,
    /// With --launch: mlx_lm.server's --decode-concurrency values (comma list).
    #[arg(long, value_delimiter = ',', requires = "launch", value_parser = clap::value_parser!(u32).range(1..))]
    decode_concurrency: Vec<u32>,
    /// With --launch: mlx_lm.server's --prompt-concurrency values (comma list).
    #[arg(long, value_delimiter = ',', requires = "launch", value_parser = clap::value_parser!(u32).range(1..))]
    prompt_concurrency: Vec<u32>,
    /// With --launch: mlx_lm.server's --kv-bits values (comma list; none for a plain cache).
    #[arg(long, value_delimiter = ',', value_parser = bits_arg, requires = "launch")]
    kv_bits: Vec<BitsArg>,
    /// With --launch: an extra flag for every server (repeat for several).
    #[arg(long, allow_hyphen_values = true, requires = "launch")]
    server_arg: Vec<String>,
    /// The Python with mlx-lm that runs launched servers (its `mlx_lm.server` beside it, else
    /// `python -m mlx_lm server`).
    #[arg(long, env = "MLXBENCH_PYTHON", default_value = "python3")]
    python: String,
    /// With --launch: the first port to try; servers take the next free ones.
    #[arg(long, default_value_t = 8080)]
    base_port: u16,
    /// With --launch: seconds a server may take to answer /health.
    #[arg(long, default_value_t = 300)]
    ready_timeout: u64,
    /// A server started elsewhere whose memory (its process tree's resident memory) to sample.
    #[arg(long, conflicts_with = "launch")]
    server_pid: Option<u32>,

    /// Closed loop: clients (comma list), each sending its next request when its last ended.
    #[arg(long, value_delimiter = ',', conflicts_with = "request_rate", value_parser = clap::value_parser!(u64).range(1..=4096))]
    concurrency: Vec<u64>,
    /// Open loop: Poisson arrivals at these rates, requests/s (comma list; inf: all at once).
    #[arg(long, value_delimiter = ',', value_parser = rate_arg)]
    request_rate: Vec<f64>,
    /// Open loop and trace replay: at most this many requests in flight (default: 1024); a request
    /// due while all are busy waits in our client, and that wait counts in its latency.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_concurrency: Option<u64>,
    /// Measured requests per point.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    num_requests: u64,
    /// Instead of --num-requests: send requests for this many seconds per point.
    #[arg(long)]
    duration: Option<f64>,
    /// Requests sent before each point and left out of it.
    #[arg(long, default_value_t = 1)]
    warmup: u64,

    /// Prompt length, in the model's tokens (as `run`'s).
    #[arg(long, short = 'p', visible_alias = "input-len", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    n_prompt: u64,
    /// Output tokens asked for, max_tokens (as `run`'s).
    #[arg(long, short = 'n', visible_alias = "output-len", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    n_generate: u64,
    /// Spread the lengths: a normal draw with this standard deviation as a share of each mean.
    #[arg(long, default_value_t = 0.0)]
    len_stddev: f64,
    /// Prompts from a file instead: JSON lines (prompt or text) or ShareGPT JSON.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// Let the model stop at its EOS (by default EOS ids get a -100 logit_bias and ignore_eos is
    /// set, so outputs are --n-generate long where the server honours them).
    #[arg(long)]
    allow_eos: bool,
    /// Seed of prompts and arrivals.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// What the requests are: independent, shared-prefix, multi-turn, trace.
    #[arg(long, value_parser = choice::<WorkloadKind>(), default_value = "independent")]
    workload: WorkloadKind,
    /// shared-prefix: tokens of each shared prefix (before each request's own -p tokens).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    prefix_tokens: u64,
    /// shared-prefix: distinct shared prefixes, taken round-robin.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    prefix_groups: u64,
    /// shared-prefix: the share of requests (0 to 1) that take a shared prefix; the others get a
    /// prefix of their own of the same length.
    #[arg(long, default_value_t = 1.0)]
    prefix_share: f64,
    /// multi-turn: turns of each conversation.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    turns: u64,
    /// multi-turn: seconds between a reply and the next turn (not in any latency).
    #[arg(long, default_value_t = 0.0)]
    think_time: f64,
    /// trace: the trace file (JSON lines: timestamp_ms, input_tokens, output_tokens, optional
    /// prefix_id and prefix_tokens; README, "Trace files").
    #[arg(long)]
    trace: Option<PathBuf>,
    /// The servers' prompt cache: as-is, bust (a unique marker starts every prompt), warm (every
    /// shared prefix sent once before the point).
    #[arg(long, value_parser = choice::<CacheMode>(), default_value = "as-is")]
    cache_mode: CacheMode,

    /// Service-level objectives, e.g. 'ttft_p90<=1s,tpot_p90<=50ms' (a limit for a percentile
    /// of the requests) or ttft=500ms (every request); also e2e. Goodput counts the requests
    /// within every limit; a point meets them when each holds for its share of requests sent.
    #[arg(long, value_parser = Slo::parse)]
    slo: Option<Slo>,
    /// Find the highest concurrency or request rate that meets --slo: doubling from
    /// --search-start while points pass and throughput grows, then bisecting to one step.
    #[arg(long, value_parser = choice::<SearchAxis>(), requires = "slo", conflicts_with_all = ["concurrency", "request_rate"])]
    search: Option<SearchAxis>,
    /// The search's first load.
    #[arg(long, default_value_t = 1.0)]
    search_start: f64,
    /// The search's highest load.
    #[arg(long, default_value_t = 256.0)]
    search_max: f64,
    /// A rate search's step: it stops when the lowest failing rate is within this share above
    /// the highest passing one.
    #[arg(long, default_value_t = 0.1)]
    search_precision: f64,
    /// Seconds a request may take, from connecting to the stream's end.
    #[arg(long, default_value_t = 120.0)]
    request_timeout: f64,
    /// Seconds the whole run may take; no request starts or lasts beyond it.
    #[arg(long, default_value_t = 3600.0)]
    deadline: f64,

    /// Table format on stdout.
    #[arg(long, short, value_parser = choice::<ServeFormat>(), default_value = "md")]
    format: ServeFormat,
    /// Results file (.csv, .json or .jsonl; default results/serve-<UTC time>.csv); appended to.
    /// Launched servers' logs go to a folder of this run beside it (<stem>-logs/<UTC time>/).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Do not write a results file (launched servers' logs go to a private temporary folder,
    /// removed at the end unless a server failed).
    #[arg(long, conflicts_with = "output")]
    no_save: bool,
}

/// A point's requests: the warmup's, the measured ones, and (multi-turn) each conversation's turns.
type PointRequests = (Vec<RequestSpec>, Vec<RequestSpec>, Vec<Vec<RequestSpec>>);

/// Server settings of one launch: (instances, decode concurrency, prompt concurrency, kv bits).
type ServerSetting = (usize, Option<u32>, Option<u32>, Option<i32>);

impl ServeArgs {
    fn loads(&self) -> Vec<Load> {
        if self.workload == WorkloadKind::Trace {
            return vec![Load::Trace { max_concurrency: self.max_concurrency.map(|m| m as usize) }];
        }
        if !self.request_rate.is_empty() {
            let max_concurrency = self.max_concurrency.map(|m| m as usize);
            return self.request_rate.iter().map(|&rate| Load::Open { rate, max_concurrency }).collect();
        }
        let clients = if self.concurrency.is_empty() { vec![1] } else { self.concurrency.clone() };
        clients.into_iter().map(|c| Load::Closed { concurrency: c as usize }).collect()
    }

    fn server_settings(&self) -> Vec<ServerSetting> {
        if self.launch.is_none() {
            return vec![(self.url.len(), None, None, None)];
        }
        let or_none = |v: &[u32]| if v.is_empty() { vec![None] } else { v.iter().map(|&x| Some(x)).collect() };
        let bits: Vec<Option<i32>> = if self.kv_bits.is_empty() { vec![None] } else { self.kv_bits.iter().map(|b| b.0).collect() };
        let mut out = Vec::new();
        for &n in &self.instances {
            for d in or_none(&self.decode_concurrency) {
                for p in or_none(&self.prompt_concurrency) {
                    for &b in &bits {
                        out.push((n as usize, d, p, b));
                    }
                }
            }
        }
        out
    }
}

/// The load a search probes at `value`: that many clients, or that rate (capped by
/// --max-concurrency).
fn search_load(args: &ServeArgs, value: f64) -> Load {
    match args.search {
        Some(SearchAxis::Rate) => Load::Open { rate: value, max_concurrency: args.max_concurrency.map(|m| m as usize) },
        _ => Load::Closed { concurrency: value.max(1.0) as usize },
    }
}

fn default_output(stamp: &str) -> PathBuf {
    PathBuf::from("results").join(format!("serve-{stamp}.csv"))
}

/// The folder of this run's server logs: `<results stem>-logs/<stamp>/` beside the results, or a
/// private temporary one when nothing is saved.
fn log_dir(results: Option<&Path>, stamp: &str) -> mlxbench::Result<LogDir> {
    match results {
        Some(path) => {
            let parent = path.parent().unwrap_or(Path::new(""));
            let stem = path.file_stem().map_or_else(|| "serve".into(), |s| s.to_string_lossy().into_owned());
            LogDir::beside(&parent.join(format!("{stem}-logs")), stamp)
        }
        None => LogDir::temporary(stamp),
    }
}

/// A `--no-save` run's temporary log folder while it is to go, for Ctrl-C to remove (exiting
/// skips its `Drop`).
static TEMPORARY_LOGS: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

fn set_temporary_logs(dir: Option<PathBuf>) {
    *TEMPORARY_LOGS.lock().unwrap_or_else(|e| e.into_inner()) = dir;
}

/// Ctrl-C: stop every server mlxbench started, and quit (finished points are already saved).
fn stop_servers_on_ctrl_c() {
    let installed = ctrlc::set_handler(|| {
        mlxbench::process::signal_all(libc::SIGKILL);
        if let Some(dir) = TEMPORARY_LOGS.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = std::fs::remove_dir_all(dir);
        }
        eprintln!("\nstopped (Ctrl-C): launched servers killed; finished points are in the results file");
        std::process::exit(130);
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C may leave launched servers running: {e}");
    }
}

pub fn run(args: ServeArgs) -> Result<bool> {
    if args.launch.is_some() && args.model.is_none() {
        bail!("--launch mlx-lm needs --model (the model the servers load)");
    }
    if args.duration.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
        bail!("--duration must be a positive number of seconds");
    }
    if !(args.len_stddev.is_finite() && (0.0..=1.0).contains(&args.len_stddev)) {
        bail!("--len-stddev is a share of the mean between 0 and 1, not {}", args.len_stddev);
    }
    for url in &args.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--url {url:?}: give a base URL such as http://127.0.0.1:8080 or http://127.0.0.1:8080/v1");
        }
    }
    let workload = match args.workload {
        WorkloadKind::Independent => Workload::Independent,
        WorkloadKind::SharedPrefix => {
            if !(args.prefix_share.is_finite() && (0.0..=1.0).contains(&args.prefix_share)) {
                bail!("--prefix-share is a share of the requests between 0 and 1, not {}", args.prefix_share);
            }
            Workload::SharedPrefix { prefix_tokens: args.prefix_tokens as usize, groups: args.prefix_groups as usize, share: args.prefix_share }
        }
        WorkloadKind::MultiTurn => {
            if !(args.think_time.is_finite() && args.think_time >= 0.0) {
                bail!("--think-time is seconds ≥ 0, not {}", args.think_time);
            }
            if !args.request_rate.is_empty() || args.search == Some(SearchAxis::Rate) {
                bail!("--workload multi-turn runs conversations in a closed loop: --concurrency is how many at once (no --request-rate)");
            }
            Workload::MultiTurn { turns: args.turns as usize, think_ms: args.think_time * 1000.0 }
        }
        WorkloadKind::Trace => {
            let Some(path) = args.trace.clone() else { bail!("--workload trace needs --trace FILE (JSON lines; README, \"Trace files\")") };
            if !args.request_rate.is_empty() || !args.concurrency.is_empty() || args.search.is_some() {
                bail!("--workload trace sends each request at the trace's time: no --concurrency, --request-rate or --search (--max-concurrency caps it)");
            }
            Workload::Trace { path }
        }
    };
    if args.duration.is_some() && matches!(workload, Workload::MultiTurn { .. } | Workload::Trace { .. }) {
        bail!("--duration applies to independent and shared-prefix requests; a trace runs once, conversations run their turns");
    }
    if args.trace.is_some() && args.workload != WorkloadKind::Trace {
        bail!("--trace is the file of --workload trace");
    }
    if args.dataset.is_some() && workload != Workload::Independent {
        bail!("--dataset gives independent prompts; --workload {} builds its own", args.workload.name());
    }
    let trace = match &workload {
        Workload::Trace { path } => Some(workload::read_trace(path)?),
        _ => None,
    };
    // One spelling of each server, as records and the table name it: `/v1` is the API's.
    let urls: Vec<String> = args.url.iter().map(|u| base_url(u).to_string()).collect();
    // How servers start, checked before anything loads.
    let server_command = args.launch.map(|_| ServerCommand::find(&args.python)).transpose()?;
    // The model's tokenizer and EOS ids, from --model or --tokenizer.
    let model_dir = match args.model.as_deref().or(args.tokenizer.as_deref()) {
        Some(spec) => Some(hub::resolve(spec).with_context(|| format!("finding the tokenizer of {spec}"))?),
        None => None,
    };
    let tokenizer = model_dir.as_deref().map(Tokenizer::from_dir).transpose()?;
    let eos_ids = model_dir.as_deref().and_then(|d| ModelConfig::from_dir(d).ok()).map(|c| c.eos_token_ids()).unwrap_or_default();
    let lengths = Lengths { input: args.n_prompt as usize, output: args.n_generate as usize, stddev: args.len_stddev };
    let per_point = args.num_requests as usize;
    let count = per_point + args.warmup as usize;
    // Every point gets prompts of its own (a server's prompt cache must not serve a later point
    // what an earlier one sent): the seed mixed with the point's number.
    let prompts = args.dataset.as_deref().map(requests::dataset_prompts).transpose()?;
    let request_set = match (&args.dataset, &tokenizer) {
        (_, _) if trace.is_some() => format!("{} requests of the trace", trace.as_ref().map_or(0, Vec::len)),
        (Some(path), _) => format!("dataset {}", path.display()),
        (None, Some(_)) => format!("input {} / output {} tokens (stddev {}%)", lengths.input, lengths.output, lengths.stddev * 100.0),
        (None, None) => bail!("prompts of an exact length need the model's tokenizer: give --model or --tokenizer (or --dataset)"),
    };
    let specs_of_point = |point: usize| -> Result<Vec<RequestSpec>> {
        let seed = mlxbench::rng::mix(args.seed ^ (point as u64).wrapping_mul(0x9E37_79B9));
        Ok(match (&prompts, &tokenizer) {
            (Some(prompts), tokenizer) => {
                // Dataset prompts rotate from a different start each point.
                let mut rotated = prompts.clone();
                rotated.rotate_left((point * count) % prompts.len());
                requests::from_dataset(&rotated, tokenizer.as_ref(), lengths, count, seed)?
            }
            (None, Some(tokenizer)) => requests::synthetic(tokenizer, lengths, count, seed)?,
            (None, None) => unreachable!("checked above"),
        })
    };
    // A nonce for cache-bust markers: this run's own, so no earlier run's prompts match.
    let nonce = mlxbench::rng::mix(args.seed ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    let buster = (args.cache_mode == CacheMode::Bust).then(|| CacheBuster::new(tokenizer.as_ref(), nonce)).transpose()?;
    // The point's requests: the warmup's, the measured ones (or the conversations' turns).
    let point_requests = |point: usize, clients: usize| -> Result<PointRequests> {
        let seed = mlxbench::rng::mix(args.seed ^ (point as u64).wrapping_mul(0x9E37_79B9));
        let warmup = args.warmup as usize;
        let tokenizer = || tokenizer.as_ref().context("this workload builds prompts with the model's tokenizer: give --model or --tokenizer");
        let (warm, mut measured, conversations) = match &workload {
            Workload::Independent => {
                let mut specs = specs_of_point(point)?;
                let measured = specs.split_off(warmup.min(specs.len()));
                (specs, measured, Vec::new())
            }
            Workload::SharedPrefix { prefix_tokens, groups, share } => {
                // The warmup's prefixes are their own (another seed): they must not warm the point's.
                let warm = workload::shared_prefix(tokenizer()?, lengths, *prefix_tokens, *groups, *share, warmup, seed ^ 1)?;
                (warm, workload::shared_prefix(tokenizer()?, lengths, *prefix_tokens, *groups, *share, per_point, seed)?, Vec::new())
            }
            Workload::MultiTurn { turns, .. } => {
                let warm = requests::synthetic(tokenizer()?, lengths, warmup, seed ^ 1)?;
                // Enough conversations for --num-requests requests, and one per client at least.
                let n = per_point.div_ceil(*turns).max(clients);
                (warm, Vec::new(), workload::conversations(tokenizer()?, lengths, *turns, n, seed)?)
            }
            Workload::Trace { .. } => {
                let entries = trace.as_deref().unwrap_or_default();
                let mut warm = workload::trace_requests(tokenizer()?, &entries[..warmup.min(entries.len())], seed ^ 1)?;
                for spec in &mut warm {
                    spec.due_ms = None;
                }
                (warm, workload::trace_requests(tokenizer()?, entries, seed)?, Vec::new())
            }
        };
        let mut warm = warm;
        if let Some(buster) = &buster {
            // The warmup too: nothing it leaves in the cache starts as a measured request does.
            let buster = buster.for_point(point, 0);
            buster.bust(&mut warm, 0);
            buster.bust(&mut measured, warm.len());
        }
        Ok((warm, measured, conversations))
    };
    let client = ClientOptions { api: args.api, served_model: args.served_model.clone(), exact_output: !args.allow_eos, eos_ids };
    let amount = match args.duration {
        Some(seconds) => Amount::Duration(Duration::from_secs_f64(seconds)),
        None => Amount::Requests,
    };
    let started = chrono::Utc::now();
    let stamp = started.format("%Y%m%d-%H%M%S").to_string();
    let context = ServeContext {
        timestamp: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        git_commit: env!("MLXBENCH_GIT_COMMIT").into(),
        mlxbench_version: env!("CARGO_PKG_VERSION").into(),
        hardware: hwinfo::detect().summary(),
        model: args.model.clone().or_else(|| args.served_model.clone()).unwrap_or_else(|| "-".into()),
        api: args.api.name().into(),
        requests: request_set,
        seed: args.seed,
        workload: workload.label(),
        cache_mode: args.cache_mode.name().into(),
        slo: args.slo.filter(Slo::is_set).map(|s| s.label()),
    };
    let file = match (&args.output, args.no_save) {
        (_, true) => None,
        (Some(path), false) => Some(ServeFile::open(path)?),
        (None, false) => Some(ServeFile::open(&default_output(&stamp))?),
    };
    if let Some(wanted) = file.as_ref().and_then(|f| f.redirected_from.as_ref()) {
        eprintln!("warning: {} holds other results; writing {} instead", wanted.display(), file.as_ref().map_or_else(String::new, |f| f.path().display().to_string()));
    }
    let mut logs = match &server_command {
        Some(command) => {
            let logs = log_dir(file.as_ref().map(ServeFile::path), &stamp)?;
            let temporary = if logs.is_temporary() { " (temporary: removed at the end unless a server fails)" } else { "" };
            if logs.is_temporary() {
                set_temporary_logs(Some(logs.path().to_path_buf()));
            }
            eprintln!("servers: {}; their logs: {}{temporary}", command.display(), logs.path().display());
            Some(logs)
        }
        None => None,
    };
    stop_servers_on_ctrl_c();

    let settings = args.server_settings();
    let loads = args.loads();
    let deadline = Instant::now() + Duration::from_secs_f64(args.deadline.max(1.0));
    let timeout = Duration::from_secs_f64(args.request_timeout.max(0.001));
    // Off a terminal a bar is noise: one line per finished point instead.
    let on_terminal = std::io::stderr().is_terminal();
    // A search's points are not known ahead: its total reads `?`.
    let total_points = if args.search.is_some() { 0 } else { settings.len() * loads.len() };
    let total_label = if total_points == 0 { "?".to_string() } else { total_points.to_string() };
    let bar = match (on_terminal, amount, total_points) {
        (false, _, _) => ProgressBar::hidden(),
        (true, Amount::Requests, n) if n > 0 => ProgressBar::new((n * count) as u64),
        (true, _, _) => ProgressBar::new_spinner(),
    };
    let finished = |record: &ServeRecord, number: usize| {
        if !on_terminal {
            eprintln!("{}", progress_line(record, number, total_points));
        }
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} requests {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let on_request = |_: &RequestRecord| bar.inc(1);
    let slo = args.slo.unwrap_or_default();
    let think = Duration::from_secs_f64(args.think_time.max(0.0));
    let mut records: Vec<ServeRecord> = Vec::new();
    for (setting, (instances, decode_concurrency, prompt_concurrency, kv_bits)) in settings.into_iter().enumerate() {
        let point_of = |load| ServePoint { instances, decode_concurrency, prompt_concurrency, kv_bits, load };
        // Servers for this setting: launched, or the given URLs.
        let mut servers = None;
        if let (Some(server), Some(logs)) = (&server_command, &mut logs) {
            let spec = LaunchSpec {
                server: server.clone(),
                model: model_dir.as_ref().map_or_else(String::new, |d| d.display().to_string()),
                base_port: args.base_port,
                decode_concurrency,
                prompt_concurrency,
                kv_bits,
                extra_args: args.server_arg.clone(),
                ready_timeout: Duration::from_secs(args.ready_timeout),
                log_dir: logs.path().to_path_buf(),
                setting: setting + 1,
            };
            bar.set_message(format!("point {}/{total_label}: starting {instances} server(s)", records.len() + 1));
            match Servers::start(&spec, instances) {
                Ok(started) => servers = Some(started),
                Err(e) => {
                    logs.keep();
                    set_temporary_logs(None);
                    let failed_loads = if args.search.is_some() { vec![search_load(&args, args.search_start)] } else { loads.clone() };
                    for load in failed_loads {
                        records.push(ServeRecord {
                            point: point_of(load),
                            context: context.clone(),
                            urls: Vec::new(),
                            error: Some(e.describe()),
                            summary: None,
                            server_memory: None,
                            requests: Vec::new(),
                            search: None,
                        });
                        finished(&records[records.len() - 1], records.len());
                    }
                    if let Some(f) = &file {
                        f.save(&records)?;
                    }
                    continue;
                }
            }
        }
        let urls = servers.as_ref().map_or_else(|| urls.clone(), |s| s.urls.clone());
        let pids = servers.as_ref().map(Servers::pids).or_else(|| args.server_pid.map(|p| vec![p]));
        let target = Target { urls: &urls, client: &client, timeout, deadline, on_request: &on_request };
        // One point: warmup, the cache mode's priming, then the measured requests.
        let measure = |load: Load, point: usize| -> Result<ServeRecord> {
            let clients = match load {
                Load::Closed { concurrency } => concurrency,
                _ => 1,
            };
            let warm_load = match load {
                Load::Closed { concurrency } => Load::Closed { concurrency: concurrency.min((args.warmup as usize).max(1)) },
                Load::Trace { max_concurrency } => Load::Open { rate: f64::INFINITY, max_concurrency },
                open => open,
            };
            let (warmup, measured, conversations) = point_requests(point, clients)?;
            run_point(&target, warm_load, &warmup, Amount::Requests, args.seed);
            if args.cache_mode == CacheMode::Warm {
                let turns: Vec<_> = conversations.iter().filter_map(|c| c.first().cloned()).collect();
                let primed = workload::priming(if turns.is_empty() { &measured } else { &turns });
                run_point(&target, Load::Closed { concurrency: 1 }, &primed, Amount::Requests, args.seed);
            }
            let sampler = pids.clone().map(MemorySampler::start);
            let requests = if conversations.is_empty() {
                run_point(&target, load, &measured, amount, args.seed)
            } else {
                // Conversation markers are numbered after the warmup's.
                let buster = buster.as_ref().map(|b| b.for_point(point, warmup.len()));
                run_conversations(&target, &conversations, clients, think, buster.as_ref())
            };
            let server_memory = sampler.map(MemorySampler::finish);
            let summary = PointSummary::of(&requests, &slo);
            Ok(ServeRecord { point: point_of(load), context: context.clone(), urls: urls.clone(), error: None, summary: Some(summary), server_memory, requests, search: None })
        };
        match args.search {
            None => {
                for load in &loads {
                    bar.set_message(format!("point {}/{total_label}: {}", records.len() + 1, point_of(*load).label()));
                    records.push(measure(*load, records.len())?);
                    finished(&records[records.len() - 1], records.len());
                    if let Some(f) = &file {
                        f.save(&records)?;
                    }
                }
            }
            Some(axis) => {
                let mut search = Search::new(axis, args.search_start, args.search_max, args.search_precision);
                while let Some(value) = search.next() {
                    let load = search_load(&args, value);
                    bar.set_message(format!("search probe {}: {}", search.probes.len() + 1, point_of(load).label()));
                    let mut record = measure(load, records.len())?;
                    let summary = record.summary.as_ref();
                    search.record(Probe { value, met: summary.and_then(|s| s.slo_met).unwrap_or(false), output_tps: summary.map_or(0.0, |s| s.output_tps) });
                    record.search = search.step();
                    records.push(record);
                    finished(&records[records.len() - 1], records.len());
                    if let Some(f) = &file {
                        f.save(&records)?;
                    }
                }
                if let Some(line) = search_line(&records) {
                    eprintln!("{line}");
                }
            }
        }
        drop(servers);
    }
    bar.finish_and_clear();
    match args.format {
        ServeFormat::Md => print!("{}", markdown(&records)),
        ServeFormat::Csv => print!("{}", mlxbench::serve::csv_text(&records, true)?),
        ServeFormat::Json => println!("{}", serde_json::to_string_pretty(&ServeReport { records: records.clone() })?),
    }
    if let Some(f) = &file {
        eprintln!("results: {}", f.path().display());
    }
    // A temporary folder is gone by now unless a server failed, which kept it.
    if let Some(logs) = logs.as_ref().filter(|l| !l.is_temporary()) {
        eprintln!("server logs: {}", logs.path().display());
    }
    for r in records.iter().filter(|r| r.failed()) {
        let what = match (&r.error, &r.summary) {
            (Some(e), _) => e.clone(),
            (None, Some(s)) => {
                let first = r.requests.iter().find_map(|q| q.error.as_ref().map(|(_, d)| d.clone())).unwrap_or_default();
                format!("{} of {} requests failed; first: {first}", s.failed(), s.requests)
            }
            _ => String::new(),
        };
        eprintln!("{}: {what}", r.point.label());
    }
    Ok(!records.iter().any(ServeRecord::failed))
}
