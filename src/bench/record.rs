//! What a run produces, as plain serde data: one [`RunRecord`] per point of the plan, with the
//! [`RunContext`] it ran in, every measured trial's metrics and their statistics. Reports print
//! records; nothing here measures.
use serde::{Deserialize, Serialize};

use super::{
    engine::Engine,
    plan::RunPoint,
    settings::{Repeats, Settings},
};
use crate::{
    choice::Choice,
    device::DeviceInfo,
    distributed::GroupInfo,
    hwinfo::HardwareInfo,
    measure::{
        speculative::SpeculativeSummary,
        metrics::{bandwidth_utilisation, decode_bandwidth_gbps},
        stats::{linear_fit, median, ratio_of_medians_interval, seed_for, LinearFit},
        MemoryBreakdown, MetricSummaries, Summary, TrialMemory, TrialMetrics,
    },
    models::Footprint,
};

/// How big the model of a record is: its files, and its parameters and the bytes a decode step
/// reads (fewer than the files hold for a mixture of experts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelSize {
    /// Bytes of the model's safetensors files.
    pub file_bytes: Option<u64>,
    pub footprint: Footprint,
}

/// Where and with what a run was made; the same for every record of one invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunContext {
    pub device: String,
    pub backend: String,
    pub mlx_version: String,
    /// The platform tag of the MLX wheel the binary was built against (`macosx_26_0_arm64`,
    /// `manylinux_2_35_x86_64`), `local` for an MLX that is not a wheel; [`UNKNOWN_MLX_BUILD`] in
    /// files written before builds were recorded.
    #[serde(default = "unknown_mlx_build")]
    pub mlx_build: String,
    /// One-line hardware summary.
    pub hardware: String,
    /// The mlxbench commit the binary was built from (`-dirty` with local changes).
    pub git_commit: String,
    pub mlxbench_version: String,
    /// UTC, RFC 3339, when the invocation started.
    pub timestamp: String,
    pub prompt_kind: String,
    pub prefill_step_size: usize,
    pub kv_group_size: i32,
    pub max_kv_size: Option<i32>,
    pub warmup: usize,
    /// Measured trials per point (the most, with `--repeats auto`).
    pub repeats: usize,
    pub seed: u64,
    /// `--repeats auto`'s target: the median decode rate's 95% interval within ± this percent.
    #[serde(default)]
    pub target_ci_pct: Option<f64>,
    /// `--compile`: the decode step's sampler ran compiled (`generate::GenerateOptions::compile`).
    #[serde(default)]
    pub compile: bool,
}

/// The MLX build of a record or file written before builds were recorded.
pub const UNKNOWN_MLX_BUILD: &str = "unknown";

/// [`UNKNOWN_MLX_BUILD`], as serde's default for files that lack the build.
pub fn unknown_mlx_build() -> String {
    UNKNOWN_MLX_BUILD.to_string()
}

impl RunContext {
    /// The context of a run starting now with `settings` on `device`.
    pub fn new(settings: &Settings, device: &DeviceInfo, hardware: &HardwareInfo) -> Self {
        Self {
            device: device.device.to_string(),
            backend: device.backend.to_string(),
            mlx_version: device.mlx_version.clone(),
            mlx_build: device.mlx_build.clone(),
            hardware: hardware.summary(),
            git_commit: env!("MLXBENCH_GIT_COMMIT").into(),
            mlxbench_version: env!("CARGO_PKG_VERSION").into(),
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            prompt_kind: settings.prompt_kind.name().into(),
            prefill_step_size: settings.prefill_step_size,
            kv_group_size: settings.kv.kv_group_size,
            max_kv_size: settings.kv.max_kv_size,
            warmup: settings.warmup,
            repeats: settings.repeats.most(),
            seed: settings.seed,
            target_ci_pct: match settings.repeats {
                Repeats::Auto { target, .. } => Some(target * 100.0),
                Repeats::Fixed(_) => None,
            },
            compile: settings.compile,
        }
    }
}

#[cfg(test)]
impl RunContext {
    /// A context for unit tests of what reads records: MLX 0.32.4 on the CPU, default settings.
    pub(crate) fn for_tests() -> Self {
        Self {
            device: "cpu".into(),
            backend: "cpu".into(),
            mlx_version: "0.32.4".into(),
            mlx_build: "local".into(),
            hardware: String::new(),
            git_commit: String::new(),
            mlxbench_version: "0.1.0".into(),
            timestamp: String::new(),
            prompt_kind: "text".into(),
            prefill_step_size: 2048,
            kv_group_size: 64,
            max_kv_size: None,
            warmup: 1,
            repeats: 3,
            seed: 0,
            target_ci_pct: None,
            compile: false,
        }
    }
}

/// How a point ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// The model did not load or a trial failed (out of memory, a bad file...).
    Failed,
    /// This MLX build has no kernel for the setting (e.g. KV quantization on some CUDA shapes).
    Unsupported,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Unsupported => "unsupported",
        }
    }

    /// How a point that failed with `message` ended: MLX's way of saying it has no kernel for a
    /// shape or type is `Unsupported`, anything else `Failed`.
    pub fn of_failure(message: &str) -> Status {
        const UNSUPPORTED: [&str; 4] = ["No implementation for", "not supported", "Not implemented", "not implemented"];
        if UNSUPPORTED.iter().any(|m| message.contains(m)) {
            Status::Unsupported
        } else {
            Status::Failed
        }
    }
}

/// One point of a plan and what was measured for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    #[serde(flatten)]
    pub point: RunPoint,
    #[serde(flatten)]
    pub context: RunContext,
    pub status: Status,
    pub error: Option<String>,
    /// Bytes of the model's weight files.
    pub weight_bytes: Option<u64>,
    /// Parameters of the model, and those one token uses (fewer for a mixture of experts).
    pub parameters: Option<u64>,
    pub active_parameters: Option<u64>,
    /// Bytes of weights one decode step reads: all but the experts a token is not routed to.
    pub decode_weight_bytes: Option<u64>,
    /// Measured trials (warmup excluded), in order.
    pub trials: Vec<TrialMetrics>,
    pub summary: Option<MetricSummaries>,
    /// Decode memory traffic of the median trial: (decode weight bytes + KV cache) ×
    /// per-sequence tokens/s, GB/s.
    pub decode_gbps: Option<f64>,
    /// `decode_gbps` over the device's known peak bandwidth.
    pub bandwidth_utilisation: Option<f64>,
    /// How loading the model went for this record's engine (cold start).
    #[serde(default)]
    pub load: Option<LoadStats>,
    /// With `--cold`: the first trial after the model loaded (kernels compiling, caches cold),
    /// timed apart from the warmup and the measured trials.
    #[serde(default)]
    pub cold_trial: Option<TrialMetrics>,
    /// The trend of MLX's active memory at the end of each measured trial: a least-squares
    /// slope in bytes per trial with its 95% interval (3 or more trials). A leak grows it.
    #[serde(default)]
    pub memory_drift: Option<LinearFit>,
    /// Measured by a tensor-parallel group: its backend, size and every rank's peak memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<GroupInfo>,
    /// With a draft model: acceptance, speed-up over the same setting without a draft, the
    /// verify-cost curve and the speed-up it predicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speculative: Option<SpeculativeSummary>,
    /// Where the peak went (weights, KV cache, transient) and MLX's buffer cache, of the medians
    /// over the measured trials ([`MemoryBreakdown`]); `None` without trials or a known model size.
    #[serde(default)]
    pub memory_breakdown: Option<MemoryBreakdown>,
}

/// Loading a model: from its files to its weights evaluated on the device.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoadStats {
    pub load_ms: f64,
    /// MLX's peak memory while loading (the counter reset before it), bytes.
    pub load_peak_memory_bytes: u64,
}

impl RunRecord {
    /// The record of `point`: its trials, or the message it failed with, and the decode
    /// bandwidth those trials imply for a model of `size` on a device of `peak_gbps`.
    pub fn new(
        point: RunPoint,
        context: RunContext,
        outcome: Result<Vec<TrialMetrics>, String>,
        size: Option<ModelSize>,
        peak_gbps: Option<f64>,
    ) -> Self {
        let (status, error, trials) = match outcome {
            Ok(trials) => (Status::Ok, None, trials),
            Err(message) => (Status::of_failure(&message), Some(message), Vec::new()),
        };
        let summary = (!trials.is_empty()).then(|| MetricSummaries::of(&trials));
        let memory_drift = linear_fit(&trials_active_memory(&trials));
        let speculative = SpeculativeSummary::of(&trials);
        let memory_breakdown = size.and_then(|size| median_breakdown(&trials, size.footprint.weight_bytes));
        let decode_gbps = summary.as_ref().and_then(|s| {
            let tps = s.generation_tps_per_sequence.as_ref()?.median;
            let kv = s.kv_cache_bytes.as_ref()?.median as u64;
            Some(decode_bandwidth_gbps(size?.footprint.decode_bytes, kv, tps))
        });
        RunRecord {
            point,
            context,
            status,
            error,
            weight_bytes: size.and_then(|s| s.file_bytes),
            parameters: size.map(|s| s.footprint.parameters),
            active_parameters: size.map(|s| s.footprint.active_parameters),
            decode_weight_bytes: size.map(|s| s.footprint.decode_bytes),
            trials,
            summary,
            decode_gbps,
            bandwidth_utilisation: decode_gbps.zip(peak_gbps).and_then(|(achieved, peak)| bandwidth_utilisation(achieved, peak)),
            load: None,
            cold_trial: None,
            memory_drift,
            distributed: None,
            speculative,
            memory_breakdown,
        }
    }
}

/// The breakdown of the median peak, KV cache and buffer cache over `trials` of a model of
/// `weights_bytes` (`None` without trials).
pub fn median_breakdown(trials: &[TrialMetrics], weights_bytes: u64) -> Option<MemoryBreakdown> {
    if trials.is_empty() {
        return None;
    }
    let of = |f: fn(&TrialMemory) -> u64| median(&trials.iter().map(|t| f(&t.memory) as f64).collect::<Vec<_>>()) as u64;
    Some(MemoryBreakdown::of(of(|m| m.peak_memory_bytes), weights_bytes, of(|m| m.kv_cache_bytes), of(|m| m.cache_memory_bytes)))
}

impl RunRecord {
    /// Measured trials during which macOS reported a thermal state that slows the machine down
    /// (serious or critical).
    pub fn throttled_trials(&self) -> usize {
        self.trials.iter().filter(|t| t.thermal_state.is_some_and(|s| s.throttles())).count()
    }

    /// Whether this configuration leaks: its active memory grew across its trials by more than
    /// `threshold` bytes (slope × (trials − 1)), even at the low end of the slope's 95% interval.
    /// `None` without a trend (fewer than 3 trials).
    pub fn leaks(&self, threshold: u64) -> Option<bool> {
        let fit = self.memory_drift?;
        let steps = self.trials.len().saturating_sub(1) as f64;
        Some(fit.slope_ci95[0] * steps > threshold as f64)
    }
}

/// MLX's active memory at the end of each trial, bytes.
fn trials_active_memory(trials: &[TrialMetrics]) -> Vec<f64> {
    trials.iter().map(|t| t.memory.active_memory_bytes as f64).collect()
}

/// `engine`'s median over `against`'s on one setting, with a 95% bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub value: f64,
    pub ci95: [f64; 2],
}

impl Ratio {
    /// `median(a) / median(b)` and its interval; `None` when either side has no samples.
    fn of(a: Option<&Summary>, b: Option<&Summary>, seed: u64) -> Option<Ratio> {
        let (a, b) = (a?, b?);
        let (low, high) = ratio_of_medians_interval(&a.samples, &b.samples, seed);
        Some(Ratio { value: a.median / b.median, ci95: [low, high] })
    }
}

/// Two measurements of one setting: ratios of their medians, the first over the second (two
/// engines, or a tensor-parallel group over one process).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineRatio {
    /// The setting, with the first engine.
    pub point: RunPoint,
    pub against: Engine,
    /// Robust decode rate (higher is better).
    pub generation_tps_robust: Option<Ratio>,
    pub prompt_tps: Option<Ratio>,
    pub ttft_ms: Option<Ratio>,
    pub peak_memory_bytes: Option<Ratio>,
}

impl EngineRatio {
    /// `ours` over `theirs`, when both measured successfully.
    fn between(ours: &RunRecord, theirs: &RunRecord) -> Option<Self> {
        let ok = |r: &RunRecord| r.status == Status::Ok;
        let (a, b) = (ours.summary.as_ref().filter(|_| ok(ours))?, theirs.summary.as_ref().filter(|_| ok(theirs))?);
        let seed = seed_for(&format!("{:?}", ours.point));
        Some(EngineRatio {
            point: ours.point.clone(),
            against: theirs.point.engine,
            generation_tps_robust: Ratio::of(a.generation_tps_robust.as_ref(), b.generation_tps_robust.as_ref(), seed),
            prompt_tps: Ratio::of(a.prompt_tps.as_ref(), b.prompt_tps.as_ref(), seed),
            ttft_ms: Ratio::of(a.ttft_ms.as_ref(), b.ttft_ms.as_ref(), seed),
            peak_memory_bytes: Ratio::of(a.peak_memory_bytes.as_ref(), b.peak_memory_bytes.as_ref(), seed),
        })
    }
}

/// mlxbench's engine against mlx-lm's on every setting both measured successfully, in record
/// order.
pub fn engine_ratios(records: &[RunRecord]) -> Vec<EngineRatio> {
    records
        .iter()
        .filter(|r| r.point.engine == Engine::Mlxbench)
        .filter_map(|ours| {
            let theirs = records
                .iter()
                .filter(|r| r.status == Status::Ok)
                .find(|r| r.point.engine == Engine::MlxLm && r.point.same_setting(&ours.point) && r.context == ours.context)?;
            EngineRatio::between(ours, theirs)
        })
        .collect()
}

/// A tensor-parallel group's records over one process's records of the same points (the decode
/// speed-up of `mlxbench launch --speedup`), in the group's record order.
pub fn group_speedups(group: &[RunRecord], alone: &[RunRecord]) -> Vec<EngineRatio> {
    group
        .iter()
        .filter_map(|many| EngineRatio::between(many, alone.iter().find(|one| one.point == many.point)?))
        .collect()
}
