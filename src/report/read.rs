//! Results files read back into records (for `mlxbench report` and `mlxbench export`): our JSON
//! document, JSON lines, or CSV, whose per-trial rows are grouped back into configurations.
//! CSV keeps every per-trial metric but not the token times, nor the mlxbench version and the
//! warmup/repeats/seed of the run's context: a record read from CSV has an empty
//! `mlxbench_version`, and the views say its trial protocol is unknown ([`protocol_known`]).
//! Results of `mlxbench serve` are recognised: [`read_serve_records`] reads them for their own
//! report page; [`read_records`] refuses them with a message that says so.
use std::path::Path;

use super::{csv_rows::split_numbers, CsvRow, Format, JsonReport};
use crate::serve::{ServeRecord, ServeReport};
use crate::{
    bench::{engine::Engine, plan::{DraftSetting, RunPoint}, record::{median_breakdown, LoadStats}, RunContext, RunRecord, Status},
    choice::Choice,
    config::parse_bits_or_none,
    error::{Error, Result},
    hwinfo::{telemetry::GpuTelemetry, thermal::ThermalState},
    measure::{metrics::DecodeWindow, speculative::SpeculativeSummary, TrialMemory, TrialMetrics},
};

/// Whether a record's context says how its trials ran (warmup, repeats, seed): not for records
/// read back from CSV, which does not keep them.
pub fn protocol_known(context: &RunContext) -> bool {
    !context.mlxbench_version.is_empty()
}

/// Whether `text` is a results file of `mlxbench serve` in `format`.
fn is_serve_results(text: &str, format: Option<Format>) -> bool {
    match format {
        Some(Format::Json) => serde_json::from_str::<ServeReport>(text).is_ok_and(|r| !r.records.is_empty()),
        Some(Format::Jsonl) => text.lines().find(|l| !l.trim().is_empty()).is_some_and(|l| serde_json::from_str::<ServeRecord>(l).is_ok()),
        Some(Format::Csv) => crate::serve::csv_header().is_ok_and(|header| text.starts_with(header.trim_end())),
        _ => false,
    }
}

/// The records of `mlxbench serve` in the results file at `path`, or `None` when it holds none
/// (results of `run`). Serve's CSV keeps no requests: it is named and refused.
pub fn read_serve_records(path: &Path) -> Result<Option<Vec<ServeRecord>>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let format = Format::from_path(path);
    if !is_serve_results(&text, format) {
        return Ok(None);
    }
    let invalid = |detail: String| Error::Results { path: path.to_path_buf(), detail };
    match format {
        Some(Format::Json) => serde_json::from_str::<ServeReport>(&text).map(|r| Some(r.records)).map_err(|e| invalid(e.to_string())),
        Some(Format::Jsonl) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| invalid(format!("line {}: not a serve record: {e}", i + 1))))
            .collect::<Result<Vec<_>>>()
            .map(Some),
        _ => Err(invalid("a serve report is drawn from serve's .json or .jsonl results (its CSV keeps no requests)".into())),
    }
}

/// Every record in the results file at `path` (format from its extension).
pub fn read_records(path: &Path) -> Result<Vec<RunRecord>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let invalid = |detail: String| Error::Results { path: path.to_path_buf(), detail };
    if is_serve_results(&text, Format::from_path(path)) {
        return Err(invalid(
            "these are results of `mlxbench serve`; `mlxbench report` and `mlxbench export` take results of \
             `mlxbench run` (serve prints its own table, and its CSV/JSON hold every percentile; `mlxbench report` \
             draws serve's .json or .jsonl results on a page of their own)"
                .into(),
        ));
    }
    match Format::from_path(path) {
        Some(Format::Json) => {
            serde_json::from_str::<JsonReport>(&text).map(|r| r.records).map_err(|e| invalid(format!("not mlxbench JSON results: {e}")))
        }
        Some(Format::Jsonl) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| invalid(format!("line {}: not an mlxbench record: {e}", i + 1))))
            .collect(),
        Some(Format::Csv) => {
            let rows: Vec<CsvRow> = csv::Reader::from_reader(text.as_bytes())
                .deserialize()
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| invalid(format!("not mlxbench CSV results: {e}")))?;
            Ok(records_of_rows(rows))
        }
        _ => Err(invalid("results are read from .csv, .json or .jsonl files".into())),
    }
}

/// Rows of one configuration are consecutive and share its point and context (a run numbered
/// from 1 for its trials, 0 for a configuration without any).
fn records_of_rows(rows: Vec<CsvRow>) -> Vec<RunRecord> {
    let point_of = |row: &CsvRow| RunPoint {
        model: row.model.clone(),
        kv_bits: parse_bits_or_none(&row.kv_bits).unwrap_or(None),
        batch: row.batch,
        depth: row.depth,
        n_prompt: row.prompt_tokens,
        n_generate: row.generation_tokens,
        engine: Engine::from_name(&row.engine).unwrap_or_default(),
        draft: Some(row.draft_model.clone()).filter(|m| !m.is_empty()).zip(row.num_draft_tokens).map(|(draft_model, num_draft_tokens)| DraftSetting { draft_model, num_draft_tokens }),
    };
    let mut groups: Vec<(RunPoint, Vec<CsvRow>)> = Vec::new();
    for row in rows {
        let point = point_of(&row);
        match groups.last_mut() {
            Some((last, group)) if *last == point && group[0].timestamp == row.timestamp && row.run > 1 => group.push(row),
            _ => groups.push((point, vec![row])),
        }
    }
    groups.into_iter().map(|(point, rows)| record_of(point, rows)).collect()
}

/// The record of one configuration's rows.
fn record_of(point: RunPoint, rows: Vec<CsvRow>) -> RunRecord {
    let first = &rows[0];
    let context = RunContext {
        device: first.device.clone(),
        backend: first.backend.clone(),
        mlx_version: first.mlx_version.clone(),
        mlx_build: first.mlx_build.clone(),
        hardware: first.hardware.clone(),
        git_commit: first.git_commit.clone(),
        // CSV keeps neither: `protocol_known` reads the empty version as "unknown".
        mlxbench_version: String::new(),
        timestamp: first.timestamp.clone(),
        prompt_kind: first.prompt_kind.clone(),
        prefill_step_size: first.prefill_step_size,
        kv_group_size: first.kv_group_size,
        max_kv_size: first.max_kv_size,
        warmup: 0,
        repeats: rows.len(),
        seed: 0,
        target_ci_pct: None,
        compile: first.compile,
    };
    let outcome = match first.status.as_str() {
        "ok" => Ok(rows.iter().filter(|r| r.run > 0).map(trial_of).collect()),
        _ => Err(first.error.clone().unwrap_or_default()),
    };
    let mut record = RunRecord::new(point, context, outcome, None, None);
    record.status = match first.status.as_str() {
        "ok" => Status::Ok,
        "unsupported" => Status::Unsupported,
        _ => Status::Failed,
    };
    record.decode_gbps = first.decode_gbps;
    record.bandwidth_utilisation = first.bandwidth_utilisation;
    record.load = first.load_ms.zip(first.load_peak_memory_bytes).map(|(load_ms, load_peak_memory_bytes)| LoadStats { load_ms, load_peak_memory_bytes });
    record.speculative = first.num_draft_tokens.map(|num_draft_tokens| SpeculativeSummary {
        num_draft_tokens,
        acceptance_rate: first.acceptance_rate,
        mean_accepted_length: first.mean_accepted_length,
        acceptance_by_position: split_numbers(&first.acceptance_by_position),
        draft_time_share: first.draft_time_share,
        target_time_share: first.draft_time_share.map(|d| 1.0 - d),
        draft_ms_per_token: first.draft_ms_per_token,
        speedup: first.speculative_speedup,
        speedup_ci95: first.speculative_speedup_ci_low.zip(first.speculative_speedup_ci_high).map(|(low, high)| [low, high]),
        verify_cost_ms: split_numbers(&first.verify_cost_ms).into_iter().flatten().collect(),
        predicted_speedup: first.predicted_speedup,
    });
    record.memory_breakdown = first.weights_memory_bytes.and_then(|weights| median_breakdown(&record.trials, weights));
    record
}

/// The trial a CSV row holds.
fn trial_of(row: &CsvRow) -> TrialMetrics {
    let decode_windows = row
        .decode_windows
        .split(';')
        .filter_map(|pair| {
            let (context, tps) = pair.split_once(':')?;
            Some(DecodeWindow { context_tokens: context.parse().ok()?, n_tokens: 0, tps: tps.parse().ok()? })
        })
        .collect();
    let gpu = row.gpu_energy_j.is_some() || row.gpu_sm_clock_mhz.is_some();
    TrialMetrics {
        ttft_ms: row.ttft_ms.unwrap_or(f64::NAN),
        prompt_tps: row.prompt_tps,
        generation_tps: row.generation_tps,
        generation_tps_per_sequence: row.generation_tps_per_sequence,
        memory: TrialMemory {
            peak_memory_bytes: row.peak_memory_bytes.unwrap_or(0),
            active_memory_bytes: row.active_memory_bytes.unwrap_or(0),
            cache_memory_bytes: row.cache_memory_bytes.unwrap_or(0),
            kv_cache_bytes: row.kv_cache_bytes.unwrap_or(0),
        },
        generation_tps_robust: row.generation_tps_robust,
        itl_p50_ms: row.itl_p50_ms,
        itl_p90_ms: row.itl_p90_ms,
        itl_p99_ms: row.itl_p99_ms,
        itl_max_ms: row.itl_max_ms,
        decode_windows,
        token_ms: Vec::new(),
        gpu: gpu.then(|| GpuTelemetry {
            energy_j: row.gpu_energy_j,
            mean_power_w: row.gpu_mean_power_w,
            sm_clock_mhz: row.gpu_sm_clock_mhz,
            memory_clock_mhz: row.gpu_memory_clock_mhz,
            temperature_c: row.gpu_temperature_c,
            utilisation_pct: row.gpu_utilisation_pct,
            throttle_reasons: row.gpu_throttle_reasons.split(';').filter(|s| !s.is_empty()).map(String::from).collect(),
            power_limited_ms: None,
            thermal_limited_ms: None,
        }),
        joules_per_token: row.joules_per_token,
        thermal_state: ThermalState::from_name(&row.thermal_state),
        speculative: None,
        step_host_p50_ms: row.step_host_p50_ms,
        step_host_p90_ms: row.step_host_p90_ms,
        step_host_p99_ms: row.step_host_p99_ms,
        step_wait_p50_ms: row.step_wait_p50_ms,
        step_wait_p90_ms: row.step_wait_p90_ms,
        step_wait_p99_ms: row.step_wait_p99_ms,
        step_host_share: row.step_host_share,
        step_queued_ms: Vec::new(),
        step_build_p50_ms: row.step_build_p50_ms,
        step_build_p90_ms: row.step_build_p90_ms,
        step_built_ms: Vec::new(),
    }
}
