//! The longest context that fits: per KV-cache setting (and batch), a search over the prompt
//! length under a memory budget, each length verified by running it — prefill, then a few decode
//! steps — and its MLX peak compared with the budget.
//!
//! Each probe runs in a child process ([`ChildProber`]: this binary again, `capacity --probe N`),
//! so an allocation that aborts MLX, or the OS killing the process, ends that probe and not the
//! search. Before a length runs, the peaks measured so far predict its own (a line through the two
//! longest measured lengths); a length predicted over the budget by more than
//! [`PREDICTION_MARGIN`] is not run, so a search against the device's own memory stops short of
//! it. The search ([`search`]) is pure over a probe function, so it is tested without a model.
use std::{
    io::Read,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use super::{record::Status, session::PreparedModel, RunContext};
use crate::{
    device::{self, Backend},
    error::Result,
    generate::GenerateOptions,
    hwinfo::telemetry::GpuMonitor,
    measure::{run_trial, MemoryBreakdown},
    prompt::PromptKind,
};

/// How far over the budget a prediction must be for a length not to be run: near the budget
/// lengths are run and measured, so the answer never rests on a prediction alone.
pub const PREDICTION_MARGIN: f64 = 0.10;

/// Where a memory budget came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetSource {
    /// `--memory-limit`.
    MemoryLimit,
    /// Metal's recommended working-set size of the GPU (MLX `device_info`).
    MetalWorkingSet,
    /// The CUDA device's free memory before the search (NVML, else MLX `device_info`).
    CudaFreeMemory,
    /// The system's available memory (the CPU backend).
    AvailableSystemMemory,
}

impl BudgetSource {
    pub fn describe(self) -> &'static str {
        match self {
            BudgetSource::MemoryLimit => "--memory-limit",
            BudgetSource::MetalWorkingSet => "Metal's recommended working set",
            BudgetSource::CudaFreeMemory => "the CUDA device's free memory",
            BudgetSource::AvailableSystemMemory => "available system memory",
        }
    }
}

/// The most MLX may hold at its peak (weights included) for a length to count as fitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub bytes: u64,
    pub source: BudgetSource,
}

impl Budget {
    /// `limit` when given, else what the device allows: on Metal MLX's recommended working set,
    /// on CUDA the free device memory, on the CPU the available system memory. Call after
    /// [`device::select`].
    pub fn resolve(limit: Option<u64>, backend: Backend) -> Option<Budget> {
        if let Some(bytes) = limit {
            return Some(Budget { bytes, source: BudgetSource::MemoryLimit });
        }
        let (bytes, source) = match backend {
            Backend::Metal => (device::device_info_size("max_recommended_working_set_size")?, BudgetSource::MetalWorkingSet),
            Backend::Cuda => (
                GpuMonitor::open().and_then(|g| g.free_memory_bytes()).or_else(|| device::device_info_size("free_memory"))?,
                BudgetSource::CudaFreeMemory,
            ),
            Backend::Cpu => {
                use sysinfo::{MemoryRefreshKind, RefreshKind, System};
                let system = System::new_with_specifics(RefreshKind::nothing().with_memory(MemoryRefreshKind::everything()));
                (Some(system.available_memory()).filter(|&b| b > 0)?, BudgetSource::AvailableSystemMemory)
            }
        };
        Some(Budget { bytes, source })
    }
}

/// How a probe of one length ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// It ran, its peak within the budget.
    Fits,
    /// It ran, its peak over the budget.
    OverBudget,
    /// Not run: the longer lengths measured predict a peak over the budget by more than
    /// [`PREDICTION_MARGIN`].
    PredictedOverBudget,
    /// It failed: an allocation, the probe process dying, a bad file.
    Failed,
    /// MLX has no kernel for the setting on this backend (every length would fail so).
    Unsupported,
    /// It was still running when the search's time ran out (stopped).
    TimedOut,
}

impl ProbeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeStatus::Fits => "fits",
            ProbeStatus::OverBudget => "over budget",
            ProbeStatus::PredictedOverBudget => "predicted over budget",
            ProbeStatus::Failed => "failed",
            ProbeStatus::Unsupported => "unsupported",
            ProbeStatus::TimedOut => "timed out",
        }
    }
}

/// What a probe that ran measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbeMeasure {
    /// MLX's peak over prefill and decode (weights included), bytes.
    pub peak_memory_bytes: u64,
    pub memory_breakdown: MemoryBreakdown,
    /// Prompt tokens/s and the robust decode rate of the probe (one trial, a few decode steps:
    /// rough; `mlxbench run` measures speed properly).
    pub prompt_tps: Option<f64>,
    pub generation_tps: Option<f64>,
}

/// One length tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Prompt tokens per sequence.
    pub n_prompt: usize,
    pub status: ProbeStatus,
    /// Why it did not fit: MLX's error, the budget it exceeded, the prediction.
    pub reason: Option<String>,
    pub measured: Option<ProbeMeasure>,
    /// The peak the measured lengths predicted for it (a line through the two longest).
    pub predicted_peak_bytes: Option<u64>,
    /// Wall time of the probe (its process: load, prefill, decode), ms.
    pub wall_ms: f64,
}

impl Probe {
    /// A probe that ran and measured `measured`: it fits when its peak is within `budget`.
    pub fn ran(n_prompt: usize, measured: ProbeMeasure, budget: u64, wall_ms: f64) -> Self {
        let fits = measured.peak_memory_bytes <= budget;
        Probe {
            n_prompt,
            status: if fits { ProbeStatus::Fits } else { ProbeStatus::OverBudget },
            reason: (!fits).then(|| format!("peak {} B > budget {budget} B", measured.peak_memory_bytes)),
            measured: Some(measured),
            predicted_peak_bytes: None,
            wall_ms,
        }
    }

    /// A probe that ended without a measurement.
    pub fn without_measure(n_prompt: usize, status: ProbeStatus, reason: String, wall_ms: f64) -> Self {
        Probe { n_prompt, status, reason: Some(reason), measured: None, predicted_peak_bytes: None, wall_ms }
    }
}

/// The lengths a search may try and the time it has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchSpec {
    /// The first length tried (rounded down to a multiple of `step`, at least `step`).
    pub start: usize,
    /// Every length tried is a multiple of it: the answer's resolution.
    pub step: usize,
    /// The longest length tried.
    pub max: usize,
    pub budget: u64,
    /// No probe starts after this much time; a running one is stopped at it.
    pub max_time: Duration,
    /// Predictions use only lengths of at least this many tokens: the prefill's chunk size,
    /// beyond which the peak grows about linearly (a chunk's attention scores and the cache); below
    /// it the scores of one chunk grow with the square of the length and a line through two short
    /// lengths overshoots.
    pub linear_from: usize,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchOutcome {
    /// The longest length that ran within the budget.
    pub longest_n_prompt: Option<usize>,
    /// The shortest length tried that did not fit (measured, predicted, or failed).
    pub first_failure: Option<Probe>,
    /// The answer is exact to `step`: the longest fitting length and a failure one step above it
    /// (or at the search's ceiling, `max`), or a failure at the first step.
    pub complete: bool,
    /// Why the search ended before it was complete (time, an unsupported setting).
    pub stopped: Option<String>,
    /// Every probe, in the order tried.
    pub probes: Vec<Probe>,
}

/// The peak the measured probes of `linear_from` tokens or more predict for `n`: the line through
/// the two longest distinct measured lengths (`None` with fewer than two, or a line that falls).
pub fn predict_peak(probes: &[Probe], n: usize, linear_from: usize) -> Option<u64> {
    let mut measured: Vec<(usize, u64)> = probes
        .iter()
        .filter(|p| p.n_prompt >= linear_from)
        .filter_map(|p| Some((p.n_prompt, p.measured?.peak_memory_bytes)))
        .collect();
    measured.sort_by_key(|&(len, _)| len);
    measured.dedup_by_key(|&mut (len, _)| len);
    let &[.., (n1, p1), (n2, p2)] = &measured[..] else { return None };
    let slope = (p2 as f64 - p1 as f64) / (n2 as f64 - n1 as f64);
    (slope >= 0.0).then(|| (p2 as f64 + slope * (n as f64 - n2 as f64)).max(0.0) as u64)
}

/// Searches for the longest multiple of `spec.step` up to `spec.max` that fits: doubling from
/// `spec.start` until a length does not fit, then halving the gap between the longest that fit
/// and the shortest that did not until it is one step. `probe(n, time_left)` runs a length; it is
/// not called for a length predicted over the budget by more than [`PREDICTION_MARGIN`].
/// `progress` hears of each probe as it ends.
pub fn search(
    spec: &SearchSpec,
    probe: &mut dyn FnMut(usize, Duration) -> Probe,
    progress: &mut dyn FnMut(&Probe, Option<usize>),
) -> SearchOutcome {
    let step = spec.step.max(1);
    let max = (spec.max / step).max(1) * step;
    let started = Instant::now();
    let mut probes: Vec<Probe> = Vec::new();
    let mut lo: Option<usize> = None;
    let mut hi: Option<usize> = None;
    let mut stopped = None;
    let mut attempt = |n: usize, probes: &mut Vec<Probe>, lo: Option<usize>| -> Option<ProbeStatus> {
        let elapsed = started.elapsed();
        if elapsed >= spec.max_time {
            return None;
        }
        let predicted = predict_peak(probes, n, spec.linear_from);
        let result = match predicted {
            Some(peak) if peak as f64 > spec.budget as f64 * (1.0 + PREDICTION_MARGIN) => Probe {
                predicted_peak_bytes: Some(peak),
                ..Probe::without_measure(
                    n,
                    ProbeStatus::PredictedOverBudget,
                    format!("predicted peak {peak} B > budget {} B by more than {:.0}%", spec.budget, PREDICTION_MARGIN * 100.0),
                    0.0,
                )
            },
            _ => Probe { predicted_peak_bytes: predicted, ..probe(n, spec.max_time - elapsed) },
        };
        let status = result.status;
        progress(&result, if status == ProbeStatus::Fits { Some(n) } else { lo });
        probes.push(result);
        Some(status)
    };
    let mut n = ((spec.start / step).max(1) * step).min(max);
    // Grow: double until a length does not fit or the ceiling fits.
    while hi.is_none() {
        match attempt(n, &mut probes, lo) {
            None => {
                stopped = Some("time (--max-time)".to_string());
                break;
            }
            Some(ProbeStatus::Fits) => {
                lo = Some(n);
                if n >= max {
                    break;
                }
                n = (n * 2).min(max);
            }
            Some(ProbeStatus::Unsupported) => {
                stopped = Some("unsupported".to_string());
                hi = Some(n);
            }
            Some(ProbeStatus::TimedOut) => {
                stopped = Some("time (--max-time)".to_string());
                break;
            }
            Some(_) => hi = Some(n),
        }
    }
    // Narrow: bisect between the longest fit (or nothing) and the shortest failure.
    while stopped.is_none() {
        let (Some(high), low) = (hi, lo.unwrap_or(0)) else { break };
        if high - low <= step {
            break;
        }
        let mid = low + (high - low) / step / 2 * step;
        match attempt(mid, &mut probes, lo) {
            None | Some(ProbeStatus::TimedOut) => stopped = Some("time (--max-time)".to_string()),
            Some(ProbeStatus::Fits) => lo = Some(mid),
            Some(ProbeStatus::Unsupported) => {
                stopped = Some("unsupported".to_string());
                hi = Some(mid);
            }
            Some(_) => hi = Some(mid),
        }
    }
    let first_failure = hi.and_then(|h| probes.iter().find(|p| p.n_prompt == h && p.status != ProbeStatus::Fits).cloned());
    let complete = stopped.is_none()
        && match (lo, hi) {
            (Some(l), Some(h)) => h - l <= step,
            (Some(l), None) => l >= max,
            (None, Some(h)) => h <= step,
            (None, None) => false,
        };
    SearchOutcome { longest_n_prompt: lo, first_failure, complete, stopped, probes }
}

/// One capacity search's setting and answer, as `mlxbench capacity` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityRecord {
    pub model: String,
    pub kv_bits: Option<i32>,
    pub kv_group_size: i32,
    pub batch: usize,
    /// Decode steps each probe runs after its prefill.
    pub n_generate: usize,
    pub budget_bytes: u64,
    pub budget_source: BudgetSource,
    /// The answer's resolution and the search's ceiling, tokens.
    pub step_tokens: usize,
    pub max_n_prompt: usize,
    /// The longest prompt (tokens per sequence) that ran within the budget.
    pub longest_n_prompt: Option<usize>,
    /// What that longest probe measured: peak, breakdown and (rough) speeds.
    pub at_longest: Option<ProbeMeasure>,
    /// The shortest length that did not fit, and why.
    pub first_failure: Option<Probe>,
    pub complete: bool,
    pub stopped: Option<String>,
    /// Seconds the search took.
    pub elapsed_s: f64,
    pub probes: Vec<Probe>,
    pub context: RunContext,
}

impl CapacityRecord {
    /// `ok` (an exact answer), `incomplete` (stopped by time), `unsupported`, or `failed`
    /// (nothing ran, and not for memory: a model that does not load, a crash).
    pub fn status(&self) -> &'static str {
        let failed = self.first_failure.as_ref().is_some_and(|f| f.status == ProbeStatus::Failed);
        match (self.stopped.as_deref(), self.complete) {
            (Some("unsupported"), _) => "unsupported",
            (_, true) if failed && self.longest_n_prompt.is_none() => "failed",
            (_, true) => "ok",
            _ => "incomplete",
        }
    }
}

/// A capacity results file: its records under a key that tells it from `run`'s results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    pub capacity: Vec<CapacityRecord>,
}

/// One probe in this process: a fresh cache, `n_prompt` random prompt tokens per sequence
/// prefilled and `options.n_generate` tokens decoded, and the peak over it.
pub fn measure_probe(model: &PreparedModel, n_prompt: usize, batch: usize, options: &GenerateOptions, seed: u64) -> Result<ProbeMeasure> {
    let prompt = model.prompts(PromptKind::Random, n_prompt, batch, seed)?;
    let trial = run_trial(model.loaded.model.as_ref(), &prompt, 0, options)?;
    let m = trial.metrics;
    Ok(ProbeMeasure {
        peak_memory_bytes: m.memory.peak_memory_bytes,
        memory_breakdown: MemoryBreakdown::of_trial(&m.memory, model.loaded.footprint.weight_bytes),
        prompt_tps: m.prompt_tps,
        generation_tps: m.generation_tps_robust,
    })
}

/// What a probe process prints as its last line of standard output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub measured: Option<ProbeMeasure>,
    pub error: Option<String>,
}

/// Runs each probe as `program args... --probe N` and reads its [`ProbeReport`].
pub struct ChildProber {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub budget: u64,
}

impl ChildProber {
    /// Probes `n_prompt` tokens, stopping the process after `time_left`.
    pub fn probe(&self, n_prompt: usize, time_left: Duration) -> Probe {
        let start = Instant::now();
        let ms = |start: Instant| start.elapsed().as_secs_f64() * 1e3;
        let spawned = Command::new(&self.program)
            .args(&self.args)
            .arg("--probe")
            .arg(n_prompt.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let reason = format!("could not start {}: {e}", self.program.display());
                return Probe::without_measure(n_prompt, ProbeStatus::Failed, reason, ms(start));
            }
        };
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_string(&mut text);
                }
                text
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if start.elapsed() >= time_left => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break None,
            }
        };
        let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
        let Some(status) = status else {
            let reason = format!("still running after {:.0} s, the time left of --max-time", time_left.as_secs_f64());
            return Probe::without_measure(n_prompt, ProbeStatus::TimedOut, reason, ms(start));
        };
        let report = stdout.lines().rev().find_map(|line| serde_json::from_str::<ProbeReport>(line).ok());
        match report {
            Some(ProbeReport { measured: Some(measured), .. }) => Probe::ran(n_prompt, measured, self.budget, ms(start)),
            Some(ProbeReport { error: Some(error), .. }) => {
                let status = match Status::of_failure(&error) {
                    Status::Unsupported => ProbeStatus::Unsupported,
                    _ => ProbeStatus::Failed,
                };
                Probe::without_measure(n_prompt, status, error, ms(start))
            }
            _ => {
                let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
                let reason = format!("the probe process ended with {} without a report{}", describe_exit(&status), match last.as_str() {
                    "" => String::new(),
                    line => format!(": {line}"),
                });
                let status = match Status::of_failure(&reason) {
                    Status::Unsupported => ProbeStatus::Unsupported,
                    _ => ProbeStatus::Failed,
                };
                Probe::without_measure(n_prompt, status, reason, ms(start))
            }
        }
    }
}

/// An exit status in words: the code, or the signal that ended the process (an out-of-memory
/// kill is SIGKILL, an MLX abort SIGABRT).
fn describe_exit(status: &std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                6 => " (SIGABRT: MLX aborted, e.g. an allocation failed)",
                9 => " (SIGKILL: killed, e.g. out of memory)",
                11 => " (SIGSEGV)",
                _ => "",
            };
            return format!("signal {signal}{name}");
        }
    }
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => "an unknown status".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(peak: u64) -> ProbeMeasure {
        ProbeMeasure { peak_memory_bytes: peak, memory_breakdown: MemoryBreakdown::default(), prompt_tps: None, generation_tps: None }
    }

    /// A model whose peak is `base + per_token × n` bytes.
    fn linear(base: u64, per_token: u64, budget: u64, calls: &mut Vec<usize>) -> impl FnMut(usize, Duration) -> Probe + '_ {
        move |n, _| {
            calls.push(n);
            Probe::ran(n, measure(base + per_token * n as u64), budget, 1.0)
        }
    }

    fn spec(budget: u64) -> SearchSpec {
        SearchSpec { start: 256, step: 256, max: 1 << 20, budget, max_time: Duration::from_secs(3600), linear_from: 0 }
    }

    #[test]
    fn finds_the_longest_multiple_of_the_step_within_the_budget() {
        // 1000 + 10 n <= 50_000 holds up to n = 4900: the longest multiple of 256 is 4864.
        let mut calls = Vec::new();
        let outcome = search(&spec(50_000), &mut linear(1000, 10, 50_000, &mut calls), &mut |_, _| {});
        assert_eq!(outcome.longest_n_prompt, Some(4864));
        let failure = outcome.first_failure.unwrap();
        assert_eq!(failure.n_prompt, 4864 + 256);
        assert_eq!(failure.status, ProbeStatus::OverBudget, "one step up is measured, not predicted");
        assert!(outcome.complete && outcome.stopped.is_none());
        // 8192 is predicted (82_920 B) from 2048 and 4096, far over: never run.
        assert_eq!(calls, [256, 512, 1024, 2048, 4096, 5120, 4608, 4864]);
        assert_eq!(outcome.probes[5].status, ProbeStatus::PredictedOverBudget);
        assert_eq!(outcome.probes[5].predicted_peak_bytes, Some(82_920));
    }

    #[test]
    fn far_over_the_budget_is_predicted_not_run() {
        let mut calls = Vec::new();
        let mut spec = spec(1_000_000);
        spec.start = 65_536;
        // 1000 + 10 n: 65_536 fits; 131_072 is run (one measured length predicts nothing) and
        // does not; 98_304 fits; 114_688 is then predicted at 1_147_880 B, over 1.1 × budget.
        let outcome = search(&spec, &mut linear(1000, 10, 1_000_000, &mut calls), &mut |_, _| {});
        assert_eq!(outcome.longest_n_prompt, Some(99_840));
        assert!(outcome.complete);
        assert_eq!(&calls[..3], &[65_536, 131_072, 98_304]);
        assert!(!calls.contains(&114_688));
        let predicted: Vec<_> = outcome.probes.iter().filter(|p| p.status == ProbeStatus::PredictedOverBudget).collect();
        assert_eq!(predicted.len(), 1);
        assert_eq!((predicted[0].n_prompt, predicted[0].predicted_peak_bytes), (114_688, Some(1_147_880)));
        assert_eq!(outcome.first_failure.unwrap().n_prompt, 100_096);
        assert_eq!(predict_peak(&outcome.probes, 200_000, 0), Some(2_001_000));
        assert_eq!(predict_peak(&outcome.probes, 200_000, 1 << 20), None, "no measured length is long enough");
    }

    #[test]
    fn a_first_length_that_does_not_fit_searches_down_and_reports_it() {
        let mut calls = Vec::new();
        let mut spec = spec(5_000);
        spec.start = 4096;
        let outcome = search(&spec, &mut linear(1000, 10, 5_000, &mut calls), &mut |_, _| {});
        // 1000 + 10 n <= 5000: n <= 400, so 256.
        assert_eq!(outcome.longest_n_prompt, Some(256));
        assert_eq!(outcome.first_failure.unwrap().n_prompt, 512);
        assert!(outcome.complete);
    }

    #[test]
    fn nothing_fits_and_unsupported_stops_at_once() {
        let outcome = search(&spec(10), &mut |n, _| Probe::ran(n, measure(100), 10, 1.0), &mut |_, _| {});
        assert_eq!(outcome.longest_n_prompt, None);
        assert_eq!(outcome.first_failure.unwrap().n_prompt, 256);
        assert!(outcome.complete);
        let mut calls = 0;
        let outcome = search(
            &spec(10),
            &mut |n, _| {
                calls += 1;
                Probe::without_measure(n, ProbeStatus::Unsupported, "No implementation for".into(), 1.0)
            },
            &mut |_, _| {},
        );
        assert_eq!(calls, 1);
        assert_eq!(outcome.stopped.as_deref(), Some("unsupported"));
        assert!(!outcome.complete);
    }

    #[test]
    fn the_ceiling_that_fits_is_the_answer() {
        let mut calls = Vec::new();
        let mut spec = spec(u64::MAX / 2);
        spec.max = 3000;
        let outcome = search(&spec, &mut linear(1, 1, u64::MAX / 2, &mut calls), &mut |_, _| {});
        assert_eq!(outcome.longest_n_prompt, Some(2816));
        assert!(outcome.first_failure.is_none() && outcome.complete);
    }

    #[test]
    fn no_time_no_probe() {
        let mut spec = spec(100);
        spec.max_time = Duration::ZERO;
        let outcome = search(&spec, &mut |_, _| unreachable!("no time to probe"), &mut |_, _| {});
        assert_eq!(outcome.stopped.as_deref(), Some("time (--max-time)"));
        assert!(outcome.probes.is_empty() && !outcome.complete);
    }
}
