//! A benchmark session: runs the points of a plan with one set of [`Settings`], loading each
//! model once, measuring each point guarded (a failure or a panic becomes a `failed` or
//! `unsupported` record and the plan goes on) and telling an [`Observer`] as it goes, so the
//! command line can draw progress and save results after every point.
use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
};

use super::{
    plan::RunPoint,
    record::{ModelSize, RunContext, RunRecord},
    settings::Settings,
};
use crate::{
    error::{Error, Result},
    hub,
    measure::{run_trial, TrialMetrics},
    models::{self, LoadedModel},
    prompt::{build_prompts, PromptKind, Tokens},
    tokenizer::Tokenizer,
};

/// A model ready to run: weights on the device, its tokenizer, and the size of its weight files.
pub struct PreparedModel {
    pub dir: PathBuf,
    pub loaded: LoadedModel,
    pub tokenizer: Tokenizer,
    /// Bytes of the model directory's safetensors files.
    pub weight_bytes: Option<u64>,
}

impl PreparedModel {
    /// Resolves `spec` (a directory or a Hugging Face repo id) and loads it.
    pub fn load(spec: &str) -> Result<Self> {
        let dir = hub::resolve(spec)?;
        let loaded = models::load(&dir).map_err(|e| Error::Loading { path: dir.clone(), source: Box::new(e) })?;
        let tokenizer = Tokenizer::from_dir(&dir)?;
        let weight_bytes = weight_bytes(&dir);
        Ok(Self { dir, loaded, tokenizer, weight_bytes })
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
    /// A point's trials are about to run.
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

/// Runs points with one set of settings, in one context.
pub struct Session<'o> {
    settings: Settings,
    context: RunContext,
    /// The device's peak memory bandwidth (GB/s), when known.
    peak_gbps: Option<f64>,
    observer: &'o mut dyn Observer,
    trials_done: usize,
}

impl<'o> Session<'o> {
    pub fn new(settings: Settings, context: RunContext, peak_gbps: Option<f64>, observer: &'o mut dyn Observer) -> Self {
        Self { settings, context, peak_gbps, observer, trials_done: 0 }
    }

    /// Every point in order, each model loaded once for a run of consecutive points that use it
    /// (and freed before the next is loaded). Ends early only when the observer fails.
    pub fn run(&mut self, points: &[RunPoint]) -> Result<Vec<RunRecord>> {
        let mut records = Vec::with_capacity(points.len());
        let mut current: Option<(String, Result<PreparedModel, String>)> = None;
        for point in points {
            if current.as_ref().is_none_or(|(model, _)| model != &point.model) {
                drop(current.take()); // free the previous model before loading the next
                self.observer.loading(&point.model);
                current = Some((point.model.clone(), guarded(|| PreparedModel::load(&point.model))));
            }
            let (_, model) = current.as_ref().expect("set above");
            records.push(self.measure(model, point));
            self.observer.finished(&records)?;
        }
        Ok(records)
    }

    /// The record of one point on `model` (or on the message it failed to load with).
    pub fn measure(&mut self, model: &Result<PreparedModel, String>, point: &RunPoint) -> RunRecord {
        self.observer.measuring(point);
        let (outcome, size) = match model {
            Ok(model) => (
                guarded(|| self.trials(model, point)),
                Some(ModelSize { file_bytes: model.weight_bytes, footprint: model.loaded.footprint }),
            ),
            Err(message) => (Err(message.clone()), None),
        };
        RunRecord::new(point.clone(), self.context.clone(), outcome, size, self.peak_gbps)
    }

    /// The warmup trials, then the measured ones, of `point`.
    fn trials(&mut self, model: &PreparedModel, point: &RunPoint) -> Result<Vec<TrialMetrics>> {
        let s = &self.settings;
        let prompt = model.prompts(s.prompt_kind, point.depth + point.n_prompt, point.batch, s.seed)?;
        let options = s.generate_options(point);
        let kinds = std::iter::repeat_n(TrialKind::Warmup, s.warmup).chain(std::iter::repeat_n(TrialKind::Measured, s.repeats));
        let mut measured = Vec::with_capacity(s.repeats);
        for kind in kinds {
            if self.trials_done > 0 && !self.settings.delay.is_zero() {
                std::thread::sleep(self.settings.delay);
            }
            self.trials_done += 1;
            let metrics = run_trial(model.loaded.model.as_ref(), &prompt, point.depth, &options)?.metrics;
            self.observer.trial(point, kind, &metrics);
            if kind == TrialKind::Measured {
                measured.push(metrics);
            }
        }
        Ok(measured)
    }
}
