//! CSV results: one row per measured trial (one for a configuration without trials), MLXBench's
//! columns first, written and appended to through the csv crate; `read` groups rows back into
//! records.
use serde::{Deserialize, Serialize};

use super::{invalid, Append, Printer};
use crate::{
    bench::record::{unknown_mlx_build, RunRecord},
    config::bits_or_none,
    measure::{MemoryBreakdown, TrialMetrics},
    error::Result,
    units::gigabytes,
};

/// A CSV row: one measured trial (or one row for a configuration without trials).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CsvRow {
    pub run: usize,
    pub prompt_tokens: usize,
    pub prompt_tps: Option<f64>,
    pub generation_tokens: usize,
    pub generation_tps: Option<f64>,
    pub peak_memory_gb: Option<f64>,
    pub model: String,
    pub kv_bits: String,
    pub batch: usize,
    pub depth: usize,
    pub ttft_ms: Option<f64>,
    pub device: String,
    pub backend: String,
    pub mlx_version: String,
    /// Absent in files written before builds were recorded: `unknown`.
    #[serde(default = "unknown_mlx_build")]
    pub mlx_build: String,
    pub hardware: String,
    pub git_commit: String,
    pub timestamp: String,
    pub generation_tps_per_sequence: Option<f64>,
    pub peak_memory_bytes: Option<u64>,
    pub active_memory_bytes: Option<u64>,
    pub cache_memory_bytes: Option<u64>,
    pub kv_cache_bytes: Option<u64>,
    pub prompt_kind: String,
    pub prefill_step_size: usize,
    pub kv_group_size: i32,
    pub max_kv_size: Option<i32>,
    /// The model's parameters, those one token uses, and the weight bytes a decode step reads.
    pub parameters: Option<u64>,
    pub active_parameters: Option<u64>,
    pub decode_weight_bytes: Option<u64>,
    /// The configuration's decode memory traffic (median trial), GB/s, and its share of the
    /// device's peak bandwidth, when known.
    pub decode_gbps: Option<f64>,
    pub bandwidth_utilisation: Option<f64>,
    pub status: String,
    pub error: Option<String>,
    /// `batch / median inter-token latency` of the trial, and its inter-token latency percentiles.
    pub generation_tps_robust: Option<f64>,
    pub itl_p50_ms: Option<f64>,
    pub itl_p90_ms: Option<f64>,
    pub itl_p99_ms: Option<f64>,
    pub itl_max_ms: Option<f64>,
    /// The trial's decode rate per window of generated tokens: `context:tps` pairs, `;`-separated
    /// (context = tokens the window's first step attended to).
    pub decode_windows: String,
    pub engine: String,
    /// The configuration's 95% interval of the median robust decode rate.
    pub generation_tps_robust_ci_low: Option<f64>,
    pub generation_tps_robust_ci_high: Option<f64>,
    /// Loading the model (cold start) and, with `--cold`, the first trial after it.
    pub load_ms: Option<f64>,
    pub load_peak_memory_bytes: Option<u64>,
    pub cold_ttft_ms: Option<f64>,
    pub cold_generation_tps: Option<f64>,
    /// The configuration's trend of active memory across its trials, bytes per trial.
    pub memory_drift_bytes_per_trial: Option<f64>,
    /// The trial's GPU telemetry (NVIDIA) and energy per generated token.
    pub gpu_energy_j: Option<f64>,
    pub gpu_mean_power_w: Option<f64>,
    pub gpu_sm_clock_mhz: Option<u32>,
    pub gpu_memory_clock_mhz: Option<u32>,
    pub gpu_temperature_c: Option<u32>,
    pub gpu_utilisation_pct: Option<u32>,
    pub gpu_throttle_reasons: String,
    pub joules_per_token: Option<f64>,
    /// The Mac's thermal state during the trial (macOS only; empty elsewhere).
    #[serde(default)]
    pub thermal_state: String,
    /// The trial's memory breakdown (`measure::MemoryBreakdown`): the model's weights on the
    /// device, and the peak beyond the weights and `kv_cache_bytes`; `cache_memory_bytes` is MLX's
    /// buffer cache beside it.
    #[serde(default)]
    pub weights_memory_bytes: Option<u64>,
    #[serde(default)]
    pub transient_memory_bytes: Option<u64>,
    /// The trial's host part and wait of each decode step (percentiles, ms) and the host's share
    /// of the decode time (`measure::metrics`); empty for an engine without the split.
    #[serde(default)]
    pub step_host_p50_ms: Option<f64>,
    #[serde(default)]
    pub step_host_p90_ms: Option<f64>,
    #[serde(default)]
    pub step_host_p99_ms: Option<f64>,
    #[serde(default)]
    pub step_wait_p50_ms: Option<f64>,
    #[serde(default)]
    pub step_wait_p90_ms: Option<f64>,
    #[serde(default)]
    pub step_wait_p99_ms: Option<f64>,
    #[serde(default)]
    pub step_host_share: Option<f64>,
    #[serde(default)]
    pub step_build_p50_ms: Option<f64>,
    #[serde(default)]
    pub step_build_p90_ms: Option<f64>,
    /// `--compile`: the decode step's sampler ran compiled.
    #[serde(default)]
    pub compile: bool,
    /// Speculative decoding (empty without a draft): the draft model, its tokens per step, and the
    /// configuration's measures (`measure::speculative::SpeculativeSummary`); lists are
    /// `;`-separated (acceptance by draft position 1…k, verify cost for T = 1…k+1 tokens, ms).
    #[serde(default)]
    pub draft_model: String,
    #[serde(default)]
    pub num_draft_tokens: Option<usize>,
    #[serde(default)]
    pub acceptance_rate: Option<f64>,
    #[serde(default)]
    pub mean_accepted_length: Option<f64>,
    #[serde(default)]
    pub acceptance_by_position: String,
    #[serde(default)]
    pub draft_time_share: Option<f64>,
    #[serde(default)]
    pub draft_ms_per_token: Option<f64>,
    #[serde(default)]
    pub speculative_speedup: Option<f64>,
    #[serde(default)]
    pub speculative_speedup_ci_low: Option<f64>,
    #[serde(default)]
    pub speculative_speedup_ci_high: Option<f64>,
    #[serde(default)]
    pub verify_cost_ms: String,
    #[serde(default)]
    pub predicted_speedup: Option<f64>,
}

/// `;`-joined numbers (an undefined one empty), and back.
pub(crate) fn join_numbers(values: impl Iterator<Item = Option<f64>>) -> String {
    values.map(|v| v.map_or_else(String::new, |v| v.to_string())).collect::<Vec<_>>().join(";")
}

pub(crate) fn split_numbers(text: &str) -> Vec<Option<f64>> {
    if text.is_empty() {
        return Vec::new();
    }
    text.split(';').map(|v| v.parse().ok()).collect()
}

impl CsvRow {
    fn rows_of(record: &RunRecord) -> Vec<CsvRow> {
        let robust_ci = record.summary.as_ref().and_then(|s| s.generation_tps_robust.as_ref()?.median_ci95);
        let weights = record.memory_breakdown.map(|b| b.weights_bytes);
        let spec = record.speculative.as_ref();
        let row = |run: usize, trial: Option<&TrialMetrics>| {
            let gpu = trial.and_then(|t| t.gpu.as_ref());
            CsvRow {
                run,
                prompt_tokens: record.point.n_prompt,
                prompt_tps: trial.and_then(|t| t.prompt_tps),
                generation_tokens: record.point.n_generate,
                generation_tps: trial.and_then(|t| t.generation_tps),
                peak_memory_gb: trial.map(|t| gigabytes(t.memory.peak_memory_bytes as f64)),
                model: record.point.model.clone(),
                kv_bits: bits_or_none(record.point.kv_bits),
                batch: record.point.batch,
                depth: record.point.depth,
                ttft_ms: trial.map(|t| t.ttft_ms),
                device: record.context.device.clone(),
                backend: record.context.backend.clone(),
                mlx_version: record.context.mlx_version.clone(),
                mlx_build: record.context.mlx_build.clone(),
                hardware: record.context.hardware.clone(),
                git_commit: record.context.git_commit.clone(),
                timestamp: record.context.timestamp.clone(),
                generation_tps_per_sequence: trial.and_then(|t| t.generation_tps_per_sequence),
                peak_memory_bytes: trial.map(|t| t.memory.peak_memory_bytes),
                active_memory_bytes: trial.map(|t| t.memory.active_memory_bytes),
                cache_memory_bytes: trial.map(|t| t.memory.cache_memory_bytes),
                kv_cache_bytes: trial.map(|t| t.memory.kv_cache_bytes),
                prompt_kind: record.context.prompt_kind.clone(),
                prefill_step_size: record.context.prefill_step_size,
                kv_group_size: record.context.kv_group_size,
                max_kv_size: record.context.max_kv_size,
                parameters: record.parameters,
                active_parameters: record.active_parameters,
                decode_weight_bytes: record.decode_weight_bytes,
                decode_gbps: record.decode_gbps,
                bandwidth_utilisation: record.bandwidth_utilisation,
                status: record.status.as_str().into(),
                error: record.error.clone(),
                generation_tps_robust: trial.and_then(|t| t.generation_tps_robust),
                itl_p50_ms: trial.and_then(|t| t.itl_p50_ms),
                itl_p90_ms: trial.and_then(|t| t.itl_p90_ms),
                itl_p99_ms: trial.and_then(|t| t.itl_p99_ms),
                itl_max_ms: trial.and_then(|t| t.itl_max_ms),
                decode_windows: trial.map_or_else(String::new, |t| {
                    t.decode_windows.iter().map(|w| format!("{}:{:.2}", w.context_tokens, w.tps)).collect::<Vec<_>>().join(";")
                }),
                engine: record.point.engine.to_string(),
                generation_tps_robust_ci_low: robust_ci.map(|[low, _]| low),
                generation_tps_robust_ci_high: robust_ci.map(|[_, high]| high),
                load_ms: record.load.map(|l| l.load_ms),
                load_peak_memory_bytes: record.load.map(|l| l.load_peak_memory_bytes),
                cold_ttft_ms: record.cold_trial.as_ref().map(|t| t.ttft_ms),
                cold_generation_tps: record.cold_trial.as_ref().and_then(|t| t.generation_tps),
                memory_drift_bytes_per_trial: record.memory_drift.map(|d| d.slope),
                gpu_energy_j: gpu.and_then(|g| g.energy_j),
                gpu_mean_power_w: gpu.and_then(|g| g.mean_power_w),
                gpu_sm_clock_mhz: gpu.and_then(|g| g.sm_clock_mhz),
                gpu_memory_clock_mhz: gpu.and_then(|g| g.memory_clock_mhz),
                gpu_temperature_c: gpu.and_then(|g| g.temperature_c),
                gpu_utilisation_pct: gpu.and_then(|g| g.utilisation_pct),
                gpu_throttle_reasons: gpu.map_or_else(String::new, |g| g.throttle_reasons.join(";")),
                joules_per_token: trial.and_then(|t| t.joules_per_token),
                thermal_state: trial.and_then(|t| t.thermal_state).map_or_else(String::new, |s| s.as_str().into()),
                weights_memory_bytes: weights,
                transient_memory_bytes: trial.zip(weights).map(|(t, w)| MemoryBreakdown::of_trial(&t.memory, w).transient_bytes),
                step_host_p50_ms: trial.and_then(|t| t.step_host_p50_ms),
                step_host_p90_ms: trial.and_then(|t| t.step_host_p90_ms),
                step_host_p99_ms: trial.and_then(|t| t.step_host_p99_ms),
                step_wait_p50_ms: trial.and_then(|t| t.step_wait_p50_ms),
                step_wait_p90_ms: trial.and_then(|t| t.step_wait_p90_ms),
                step_wait_p99_ms: trial.and_then(|t| t.step_wait_p99_ms),
                step_host_share: trial.and_then(|t| t.step_host_share),
                step_build_p50_ms: trial.and_then(|t| t.step_build_p50_ms),
                step_build_p90_ms: trial.and_then(|t| t.step_build_p90_ms),
                compile: record.context.compile,
                draft_model: record.point.draft.as_ref().map_or_else(String::new, |d| d.draft_model.clone()),
                num_draft_tokens: record.point.draft.as_ref().map(|d| d.num_draft_tokens),
                acceptance_rate: spec.and_then(|s| s.acceptance_rate),
                mean_accepted_length: spec.and_then(|s| s.mean_accepted_length),
                acceptance_by_position: spec.map_or_else(String::new, |s| join_numbers(s.acceptance_by_position.iter().copied())),
                draft_time_share: spec.and_then(|s| s.draft_time_share),
                draft_ms_per_token: spec.and_then(|s| s.draft_ms_per_token),
                speculative_speedup: spec.and_then(|s| s.speedup),
                speculative_speedup_ci_low: spec.and_then(|s| s.speedup_ci95).map(|[low, _]| low),
                speculative_speedup_ci_high: spec.and_then(|s| s.speedup_ci95).map(|[_, high]| high),
                verify_cost_ms: spec.map_or_else(String::new, |s| join_numbers(s.verify_cost_ms.iter().map(|&v| Some(v)))),
                predicted_speedup: spec.and_then(|s| s.predicted_speedup),
            }
        };
        if record.trials.is_empty() {
            vec![row(0, None)]
        } else {
            record.trials.iter().enumerate().map(|(i, t)| row(i + 1, Some(t))).collect()
        }
    }
}

/// The header line our CSV files start with.
pub fn csv_header() -> Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.serialize(CsvRow::default()).map_err(invalid)?;
    let text = String::from_utf8(writer.into_inner().map_err(invalid)?).map_err(invalid)?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

pub(super) struct Csv;

impl Csv {
    fn rows(records: &[RunRecord], with_header: bool) -> Result<String> {
        let mut writer = csv::WriterBuilder::new().has_headers(with_header).from_writer(Vec::new());
        for record in records {
            for row in CsvRow::rows_of(record) {
                writer.serialize(row).map_err(invalid)?;
            }
        }
        if with_header && records.is_empty() {
            return Ok(format!("{}\n", csv_header()?));
        }
        String::from_utf8(writer.into_inner().map_err(invalid)?).map_err(invalid)
    }
}

impl Printer<[RunRecord]> for Csv {
    fn render(&self, records: &[RunRecord]) -> Result<String> {
        Csv::rows(records, true)
    }
}

impl Append for Csv {
    fn append(&self, existing: &str, records: &[RunRecord]) -> Result<Option<String>> {
        if existing.trim().is_empty() {
            return self.render(records).map(Some);
        }
        if existing.lines().next() != Some(csv_header()?.as_str()) {
            return Ok(None);
        }
        let mut text = existing.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&Csv::rows(records, false)?);
        Ok(Some(text))
    }
}

