//! A benchmark session: runs the points of a plan with one set of [`Settings`], loading each
//! model once per engine, measuring each point guarded (a failure or a panic becomes a `failed`
//! or `unsupported` record and the plan goes on), interleaving the engines of a setting trial by
//! trial so they see the same machine, and telling an [`Observer`] as it goes, so the command line
//! can draw progress and save results after every point.
use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
    time::Instant,
};

use super::{
    engine::{Engine, MlxLmProcess},
    plan::RunPoint,
    record::{LoadStats, ModelSize, RunContext, RunRecord},
    settings::Settings,
};
use crate::{
    device,
    distributed::{self, Group, GroupInfo},
    error::{Error, Result},
    hub,
    hwinfo::{telemetry::GpuMonitor, thermal},
    measure::{
        run_trial,
        speculative::{run_speculative_trial, steps_from_flags, verify_cost_curve, SpeculativeTrial, TimedStep},
        stats::seed_for,
        MetricSummaries, TrialMetrics,
    },
    models::{self, LoadedModel},
    prompt::{build_prompts, PromptKind, Tokens},
    tokenizer::Tokenizer,
};

/// Timed passes per token count of the verify-cost curve (after one untimed pass each).
const VERIFY_COST_REPEATS: usize = 5;

/// A model ready to run: weights on the device, its tokenizer, and the size of its weight files.
pub struct PreparedModel {
    pub dir: PathBuf,
    pub loaded: LoadedModel,
    pub tokenizer: Tokenizer,
    /// Bytes of the model directory's safetensors files.
    pub weight_bytes: Option<u64>,
    /// How long loading took (files to weights evaluated on the device) and its peak memory.
    pub load_stats: LoadStats,
}

impl PreparedModel {
    /// Resolves `spec` (a directory or a Hugging Face repo id) and loads it.
    pub fn load(spec: &str) -> Result<Self> {
        let dir = hub::resolve(spec)?;
        device::clear_cache()?;
        device::reset_peak_memory()?;
        let start = Instant::now();
        let loaded = models::load(&dir).map_err(|e| Error::Loading { path: dir.clone(), source: Box::new(e) })?;
        let load_stats = LoadStats {
            load_ms: start.elapsed().as_secs_f64() * 1e3,
            load_peak_memory_bytes: device::memory_snapshot()?.peak_bytes,
        };
        let tokenizer = Tokenizer::from_dir(&dir)?;
        let weight_bytes = weight_bytes(&dir);
        Ok(Self { dir, loaded, tokenizer, weight_bytes, load_stats })
    }

    /// Its files' size and its footprint (parameters, bytes a decode step reads).
    pub fn size(&self) -> ModelSize {
        ModelSize { file_bytes: self.weight_bytes, footprint: self.loaded.footprint }
    }

    /// `batch` prompts of exactly `n` tokens (see [`build_prompts`]).
    pub fn prompts(&self, kind: PromptKind, n: usize, batch: usize, seed: u64) -> Result<Tokens> {
        build_prompts(&self.tokenizer, kind, n, batch, seed)
    }
}

/// Bytes of a model directory's safetensors files.
fn weight_bytes(dir: &Path) -> Option<u64> {
    let entries = std::fs::read_dir(dir).ok()?;
    let total = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    Some(total)
}

/// Runs `f`, turning an error or a panic into a one-line message.
pub fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.describe()),
        Err(panic) => Err(format!(
            "panicked: {}",
            panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
        )),
    }
}

/// Whether a trial is a warmup or a measured one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialKind {
    Warmup,
    Measured,
}

/// What a session tells as it goes; every method has a default that does nothing.
pub trait Observer {
    /// A model is about to be loaded.
    fn loading(&mut self, _model: &str) {}
    /// A point's trials are about to run (once per engine of an interleaved setting).
    fn measuring(&mut self, _point: &RunPoint) {}
    /// A trial ended.
    fn trial(&mut self, _point: &RunPoint, _kind: TrialKind, _metrics: &TrialMetrics) {}
    /// A point ended; `records` holds every record so far, the new one last. An error stops the
    /// session (e.g. the results file could not be written).
    fn finished(&mut self, _records: &[RunRecord]) -> Result<()> {
        Ok(())
    }
}

/// An observer that does nothing.
pub struct Silent;

impl Observer for Silent {}

/// A model as the engines of a session have it.
struct LoadedForEngines {
    spec: String,
    /// Its directory and, when mlxbench's engine loaded it, its size (prompts are built once, for
    /// every engine, with the tokenizer).
    prompter: Result<(PathBuf, Option<ModelSize>), String>,
    tokenizer: Option<Tokenizer>,
    /// mlxbench's own, when a point of this model runs on it.
    ours: Option<Result<PreparedModel, String>>,
    /// How the mlx-lm engine loaded it, when a point of this model runs there.
    mlx_lm: Option<Result<LoadStats, String>>,
    /// The draft model of this model's speculative points: mlxbench's, and the mlx-lm engine's.
    draft: Option<Result<PreparedModel, String>>,
    draft_mlx_lm: Option<Result<LoadStats, String>>,
}

impl LoadedForEngines {
    /// How `engine` loaded the model.
    fn load_stats(&self, engine: Engine) -> Option<LoadStats> {
        match engine {
            Engine::Mlxbench => self.ours.as_ref()?.as_ref().ok().map(|m| m.load_stats),
            Engine::MlxLm => self.mlx_lm.as_ref()?.as_ref().ok().copied(),
        }
    }
}

/// What the trials of one point gave.
#[derive(Default)]
struct Measured {
    trials: Vec<TrialMetrics>,
    /// The first trial after the model loaded, with `--cold`.
    cold: Option<TrialMetrics>,
}

/// Set when the user asked the session to stop (Ctrl-C): it ends after the trial under way, and
/// the point that trial belonged to is not recorded.
static STOP: AtomicBool = AtomicBool::new(false);

/// Asks every session to stop after the trial under way.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Runs points with one set of settings, in one context.
pub struct Session<'o> {
    settings: Settings,
    context: RunContext,
    /// The device's peak memory bandwidth (GB/s), when known.
    peak_gbps: Option<f64>,
    observer: &'o mut dyn Observer,
    trials_done: usize,
    /// The mlx-lm engine, started on first use.
    mlx_lm: Option<Result<MlxLmProcess, String>>,
    /// The GPU's telemetry source, when there is one.
    gpu: Option<GpuMonitor>,
    /// The next setting is the first after a model loaded (its first trial is `--cold`'s).
    cold_pending: bool,
}

impl<'o> Session<'o> {
    pub fn new(settings: Settings, context: RunContext, peak_gbps: Option<f64>, observer: &'o mut dyn Observer) -> Self {
        Self { settings, context, peak_gbps, observer, trials_done: 0, mlx_lm: None, gpu: None, cold_pending: false }
    }

    /// Records each trial's GPU telemetry (and energy per token) from `gpu`.
    pub fn with_gpu_monitor(mut self, gpu: Option<GpuMonitor>) -> Self {
        self.gpu = gpu;
        self
    }

    /// Every point in order. Consecutive points of one model share its loads (freed before the
    /// next model loads); consecutive points that differ only in their engine are measured
    /// together, trial by trial. Ends early when the observer fails, or after the trial under way
    /// when a stop is requested ([`request_stop`]; the records so far are returned).
    pub fn run(&mut self, points: &[RunPoint]) -> Result<Vec<RunRecord>> {
        let mut records = Vec::with_capacity(points.len());
        let mut model: Option<LoadedForEngines> = None;
        let mut start = 0;
        while start < points.len() && !stop_requested() {
            let first = &points[start];
            let end = start + points[start..].iter().take_while(|p| p.same_group(first)).count();
            if model.as_ref().is_none_or(|m| m.spec != first.model) {
                drop(model.take()); // free the previous model before loading the next
                let of_model: Vec<&RunPoint> = points[start..].iter().take_while(|p| p.model == first.model).collect();
                let engines: Vec<Engine> = of_model.iter().map(|p| p.engine).collect();
                let draft = of_model.iter().find_map(|p| p.draft.as_ref()).map(|d| d.draft_model.clone());
                model = Some(self.load(&first.model, &engines, draft.as_deref()));
            }
            let loaded = model.as_ref().expect("loaded above");
            let Some(measured) = self.measure_setting(loaded, &points[start..end]) else { break };
            for mut record in measured {
                if let Some(group) = distributed::current() {
                    record.distributed = Some(group_info(group, &record)?);
                }
                records.push(record);
                self.observer.finished(&records)?;
            }
            start = end;
        }
        Ok(records)
    }

    /// Loads `spec` for each engine in `engines`, and `draft` beside it when given.
    fn load(&mut self, spec: &str, engines: &[Engine], draft: Option<&str>) -> LoadedForEngines {
        self.observer.loading(spec);
        self.cold_pending = true;
        let ours = engines.contains(&Engine::Mlxbench).then(|| guarded(|| PreparedModel::load(spec)));
        let (prompter, tokenizer) = match &ours {
            Some(Ok(model)) => (Ok((model.dir.clone(), Some(model.size()))), None),
            _ => match guarded(|| {
                let dir = hub::resolve(spec)?;
                let tokenizer = Tokenizer::from_dir(&dir)?;
                Ok((dir, tokenizer))
            }) {
                Ok((dir, tokenizer)) => (Ok((dir, None)), Some(tokenizer)),
                Err(message) => (Err(message), None),
            },
        };
        let mlx_lm = engines.contains(&Engine::MlxLm).then(|| {
            let dir = prompter.as_ref().map_err(Clone::clone)?.0.clone();
            self.mlx_lm_process()?.load(&dir)
        });
        let own_draft = draft.filter(|_| engines.contains(&Engine::Mlxbench)).map(|d| guarded(|| PreparedModel::load(d)));
        let draft_mlx_lm = draft.filter(|_| engines.contains(&Engine::MlxLm)).map(|d| {
            let dir = guarded(|| hub::resolve(d))?;
            self.mlx_lm_process()?.load_draft(&dir)
        });
        LoadedForEngines { spec: spec.to_string(), prompter, tokenizer, ours, mlx_lm, draft: own_draft, draft_mlx_lm }
    }

    /// The mlx-lm engine, started on first use; its start-up error, once, for every later use.
    fn mlx_lm_process(&mut self) -> Result<&mut MlxLmProcess, String> {
        let (python, device) = (&self.settings.python, self.settings.device);
        self.mlx_lm.get_or_insert_with(|| MlxLmProcess::start(python, device)).as_mut().map_err(|e| e.clone())
    }

    /// The record of one point on `model` (or on the message it failed to load with), with
    /// mlxbench's engine.
    pub fn measure(&mut self, model: &Result<PreparedModel, String>, point: &RunPoint) -> RunRecord {
        self.observer.measuring(point);
        let (outcome, size) = match model {
            Ok(model) => (guarded(|| self.own_trials(model, point)), Some(model.size())),
            Err(message) => (Err(message.clone()), None),
        };
        RunRecord::new(point.clone(), self.context.clone(), outcome, size, self.peak_gbps)
    }

    /// The warmup trials, then the measured ones, of `point` on mlxbench's engine alone.
    fn own_trials(&mut self, model: &PreparedModel, point: &RunPoint) -> Result<Vec<TrialMetrics>> {
        let prompt = model.prompts(self.settings.prompt_kind, point.depth + point.n_prompt, point.batch, self.settings.seed)?;
        let outcomes = self.interleaved(&[point.clone()], &prompt, &mut |_, session, point, prompt| {
            session.own_trial(model, point, prompt)
        });
        match outcomes.and_then(|mut o| o.pop()) {
            Some(outcome) => outcome.map(|m| m.trials).map_err(Error::InvalidOption),
            None => Err(Error::InvalidOption("stopped".into())),
        }
    }

    /// One setting on each of its engines (`points` differ only in their engine); `None` when
    /// a stop was requested before it ended.
    fn measure_setting(&mut self, model: &LoadedForEngines, points: &[RunPoint]) -> Option<Vec<RunRecord>> {
        for point in points {
            self.observer.measuring(point);
        }
        let first = &points[0];
        let prompt = match &model.prompter {
            Err(message) => Err(message.clone()),
            Ok(_) => {
                let tokenizer = match (&model.ours, &model.tokenizer) {
                    (Some(Ok(ours)), _) => &ours.tokenizer,
                    (_, Some(tokenizer)) => tokenizer,
                    _ => unreachable!("a prompter comes with a tokenizer"),
                };
                let s = &self.settings;
                guarded(|| build_prompts(tokenizer, s.prompt_kind, first.depth + first.n_prompt, first.batch, s.seed))
            }
        };
        let outcomes = match &prompt {
            Err(message) => points.iter().map(|_| Err(message.clone())).collect(),
            Ok(prompt) => self.interleaved(points, prompt, &mut |engine, session, point, prompt| match engine {
                Engine::Mlxbench => match (&model.ours, point.draft.as_ref().map(|_| &model.draft)) {
                    (Some(Ok(ours)), None) => session.own_trial(ours, point, prompt),
                    (Some(Ok(ours)), Some(Some(Ok(draft)))) => session.own_speculative_trial(ours, draft, point, prompt),
                    (Some(Err(message)), _) | (_, Some(Some(Err(message)))) => Err(message.clone()),
                    _ => unreachable!("loaded for every engine its points use"),
                },
                Engine::MlxLm => match (&model.mlx_lm, point.draft.as_ref().map(|_| &model.draft_mlx_lm)) {
                    (Some(Ok(_)), None | Some(Some(Ok(_)))) => session.mlx_lm_trial(point, prompt),
                    (Some(Err(message)), _) | (_, Some(Some(Err(message)))) => Err(message.clone()),
                    _ => unreachable!("loaded for every engine its points use"),
                },
            })?,
        };
        let size = model.prompter.as_ref().ok().and_then(|(_, size)| *size);
        let records = points
            .iter()
            .zip(outcomes)
            .map(|(point, outcome)| {
                let (outcome, cold) = match outcome {
                    Ok(measured) => (Ok(measured.trials), measured.cold),
                    Err(message) => (Err(message), None),
                };
                let mut record = RunRecord::new(point.clone(), self.context.clone(), outcome, size, self.peak_gbps);
                record.load = model.load_stats(point.engine);
                record.cold_trial = cold;
                record
            })
            .collect();
        Some(self.with_speculative_measures(model, records, prompt.as_ref().ok()))
    }

    /// Each speculative record with its speed-up over the record of the same setting and engine
    /// without a draft (measured interleaved with it) and, on mlxbench's engine, the target's
    /// verify-cost curve for T = 1…k+1 at the setting's context.
    fn with_speculative_measures(&self, model: &LoadedForEngines, mut records: Vec<RunRecord>, prompt: Option<&Tokens>) -> Vec<RunRecord> {
        let most_k = records.iter().filter_map(|r| r.point.draft.as_ref()).map(|d| d.num_draft_tokens).max();
        let curve = match (most_k, &model.ours, prompt, records.first()) {
            (Some(k), Some(Ok(ours)), Some(prompt), Some(first)) if records.iter().any(|r| r.point.engine == Engine::Mlxbench) => {
                let options = self.settings.generate_options(&first.point);
                guarded(|| verify_cost_curve(ours.loaded.model.as_ref(), prompt, &options, k + 1, VERIFY_COST_REPEATS)).ok()
            }
            _ => None,
        };
        let baselines: Vec<(RunPoint, Vec<TrialMetrics>)> =
            records.iter().filter(|r| r.point.draft.is_none()).map(|r| (r.point.clone(), r.trials.clone())).collect();
        for record in &mut records {
            let (Some(summary), Some(draft)) = (record.speculative.take(), record.point.draft.as_ref()) else { continue };
            let baseline = baselines.iter().find(|(p, _)| p.engine == record.point.engine);
            let mut summary = match baseline {
                Some((_, trials)) => summary.with_baseline(&record.trials, trials, seed_for(&format!("{:?}", record.point))),
                None => summary,
            };
            if let (Engine::Mlxbench, Some(curve)) = (record.point.engine, &curve) {
                summary = summary.with_verify_cost(curve[..(draft.num_draft_tokens + 1).min(curve.len())].to_vec());
            }
            record.speculative = Some(summary);
        }
        records
    }

    /// With `--cold` right after a load, one cold trial of each point; then the warmup trials and
    /// the measured ones, engines taking turns trial by trial. An engine that fails is dropped
    /// and the others go on; `None` when a stop was requested.
    fn interleaved(
        &mut self,
        points: &[RunPoint],
        prompt: &Tokens,
        trial: &mut dyn FnMut(Engine, &mut Self, &RunPoint, &Tokens) -> Result<TrialMetrics, String>,
    ) -> Option<Vec<Result<Measured, String>>> {
        let mut outcomes: Vec<Result<Measured, String>> = points.iter().map(|_| Ok(Measured::default())).collect();
        if std::mem::take(&mut self.cold_pending) && self.settings.cold {
            for (point, outcome) in points.iter().zip(&mut outcomes) {
                let Ok(measured) = outcome else { continue };
                match self.one_trial(point, prompt, trial)? {
                    Ok(metrics) => {
                        self.observer.trial(point, TrialKind::Warmup, &metrics);
                        measured.cold = Some(metrics);
                    }
                    Err(message) => *outcome = Err(message),
                }
            }
        }
        for _ in 0..self.settings.warmup {
            for (point, outcome) in points.iter().zip(&mut outcomes) {
                if outcome.is_ok() {
                    match self.one_trial(point, prompt, trial)? {
                        Ok(metrics) => self.observer.trial(point, TrialKind::Warmup, &metrics),
                        Err(message) => *outcome = Err(message),
                    }
                }
            }
        }
        let start = Instant::now();
        loop {
            let mut ran = false;
            for (point, outcome) in points.iter().zip(&mut outcomes) {
                let Ok(measured) = outcome else { continue };
                let summaries = MetricSummaries::of(&measured.trials);
                if self.settings.repeats.done(measured.trials.len(), summaries.precision_metric(), start.elapsed()) {
                    continue;
                }
                ran = true;
                match self.one_trial(point, prompt, trial)? {
                    Ok(metrics) => {
                        self.observer.trial(point, TrialKind::Measured, &metrics);
                        measured.trials.push(metrics);
                    }
                    Err(message) => *outcome = Err(message),
                }
            }
            if !ran {
                return Some(outcomes);
            }
        }
    }

    /// One guarded trial of `point` after the delay between trials, with the GPU's telemetry;
    /// `None` when a stop was requested instead.
    fn one_trial(
        &mut self,
        point: &RunPoint,
        prompt: &Tokens,
        trial: &mut dyn FnMut(Engine, &mut Self, &RunPoint, &Tokens) -> Result<TrialMetrics, String>,
    ) -> Option<Result<TrialMetrics, String>> {
        if self.trials_done > 0 && !self.settings.delay.is_zero() {
            std::thread::sleep(self.settings.delay);
        }
        if stop_requested() {
            return None;
        }
        self.trials_done += 1;
        let mark = self.gpu.as_ref().map(GpuMonitor::begin);
        let thermal_at_start = thermal::current();
        let outcome = match catch_unwind(AssertUnwindSafe(|| trial(point.engine, self, point, prompt))) {
            Ok(outcome) => outcome,
            Err(panic) => Err(guarded::<()>(|| std::panic::resume_unwind(panic)).unwrap_err()),
        };
        let outcome = outcome.map(|mut metrics| {
            metrics.thermal_state = thermal::hottest(thermal_at_start, thermal::current());
            metrics
        });
        Some(match (outcome, self.gpu.as_ref().zip(mark)) {
            (Ok(metrics), Some((gpu, mark))) => Ok(metrics.with_gpu(gpu.end(mark), point.batch)),
            (outcome, _) => outcome,
        })
    }

    /// One trial on mlxbench's engine.
    fn own_trial(&mut self, model: &PreparedModel, point: &RunPoint, prompt: &Tokens) -> Result<TrialMetrics, String> {
        let options = self.settings.generate_options(point);
        guarded(|| Ok(run_trial(model.loaded.model.as_ref(), prompt, point.depth, &options)?.metrics))
    }

    /// One speculative trial on mlxbench's engine: `model` verifies what `draft` proposes.
    fn own_speculative_trial(
        &mut self,
        model: &PreparedModel,
        draft: &PreparedModel,
        point: &RunPoint,
        prompt: &Tokens,
    ) -> Result<TrialMetrics, String> {
        let options = self.settings.generate_options(point);
        let k = point.draft.as_ref().map_or(1, |d| d.num_draft_tokens);
        guarded(|| {
            let run = run_speculative_trial(model.loaded.model.as_ref(), draft.loaded.model.as_ref(), prompt, point.depth, &options, k)?;
            Ok(run.metrics)
        })
    }

    /// One trial on the mlx-lm engine (through its speculative path for a point with a draft).
    fn mlx_lm_trial(&mut self, point: &RunPoint, prompt: &Tokens) -> Result<TrialMetrics, String> {
        let options = self.settings.generate_options(point);
        let k = point.draft.as_ref().map(|d| d.num_draft_tokens);
        let trial = self.mlx_lm_process()?.trial(prompt, point.depth, &options, k)?;
        let mut metrics = TrialMetrics::from_timings(&trial.timings, trial.memory);
        if let Some(k) = k {
            let steps: Vec<TimedStep> = steps_from_flags(&trial.from_draft, k, options.n_generate)
                .into_iter()
                .map(|outcome| TimedStep { outcome, draft: None, verify: None })
                .collect();
            let first_step = steps.first().map_or(0, |s| s.outcome.emitted);
            metrics.speculative = Some(SpeculativeTrial::of(k, &steps).with_decode_rate(&metrics.token_ms, first_step));
        }
        Ok(metrics)
    }
}

/// What `record` says of the group that measured it: every rank's peak memory over its trials,
/// gathered from all ranks (a collective: every rank calls it for every record, in order).
fn group_info(group: &Group, record: &RunRecord) -> Result<GroupInfo> {
    let peak = record.trials.iter().map(|t| t.memory.peak_memory_bytes).max().unwrap_or(0);
    Ok(GroupInfo { backend: group.backend(), size: group.size(), peak_memory_bytes: group.gather_u64(peak)? })
}
