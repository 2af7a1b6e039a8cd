//! The mlx-lm engine of `quality`: runs `mlx_lm_quality.py` with a Python that has mlx-lm, which
//! scores and generates through mlx-lm's own caches and writes each scored step's log-probability
//! row to a file; the rows come back here and go through the same metrics as our engine's.
use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
};

use serde::Deserialize;
use serde_json::json;

use super::{QualityPlan, SettingRun};
use crate::{
    device::DeviceKind,
    error::{Error, Result},
};

const SCRIPT: &str = include_str!("mlx_lm_quality.py");

/// One reply line of the script.
#[derive(Deserialize)]
struct Reply {
    depth: Option<usize>,
    setting: Option<usize>,
    rows_file: Option<String>,
    greedy: Option<Vec<u32>>,
    error: Option<String>,
    loaded: Option<bool>,
}

/// Runs every (depth, setting) of `plan` over `tokens` through mlx-lm with `python`, calling
/// `done(depth, setting index, run or its error)` as each finishes. A failure of the whole
/// script (cannot start, cannot import mlx-lm, cannot load the model) is the error returned.
pub fn run(
    python: &str,
    device: DeviceKind,
    model_dir: &Path,
    tokens: &[u32],
    plan: &QualityPlan,
    vocab_size: usize,
    mut done: impl FnMut(usize, usize, std::result::Result<SettingRun, String>),
) -> Result<()> {
    let fail = |detail: String| Error::ReferenceEngine { python: python.to_string(), detail };
    let rows_dir = RowsDir::new().map_err(|e| fail(format!("a temporary directory: {e}")))?;
    let settings: Vec<_> = plan
        .settings
        .iter()
        .map(|s| {
            json!({"kv_bits": s.kv_bits, "kv_group_size": s.kv_group_size,
                   "quantized_kv_start": s.quantized_kv_start, "max_kv_size": s.max_kv_size})
        })
        .collect();
    let request = json!({
        "model": model_dir, "tokens": tokens, "depths": plan.depths, "n_score": plan.n_score,
        "n_generate": plan.n_generate, "prefill_step_size": plan.prefill_step_size,
        "out_dir": rows_dir.path(), "settings": settings, "device": device.to_string(),
    });
    let mut child = crate::bench::engine::python_script(python, SCRIPT)
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e} (set --python or MLXBENCH_PYTHON)")))?;
    let mut stdin = child.stdin.take().ok_or_else(|| fail("no stdin".into()))?;
    writeln!(stdin, "{request}").map_err(|e| fail(format!("stopped: {e}")))?;
    drop(stdin);
    let stdout = child.stdout.take().ok_or_else(|| fail("no stdout".into()))?;
    let mut loaded = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| fail(format!("reading its output: {e}")))?;
        let reply: Reply = serde_json::from_str(&line).map_err(|e| fail(format!("answered {line:?}: {e}")))?;
        match reply {
            Reply { loaded: Some(true), .. } => loaded = true,
            Reply { depth: Some(depth), setting: Some(i), error: Some(error), .. } => done(depth, i, Err(error)),
            Reply { depth: Some(depth), setting: Some(i), rows_file: Some(file), greedy: Some(greedy), .. } => {
                let rows = read_rows(Path::new(&file), plan.n_score, vocab_size).map_err(|e| fail(e.to_string()))?;
                done(depth, i, Ok(SettingRun { rows, greedy }));
            }
            Reply { error: Some(error), .. } => {
                let _ = child.wait();
                return Err(fail(error));
            }
            _ => return Err(fail(format!("answered {line:?}"))),
        }
    }
    let status = child.wait().map_err(|e| fail(e.to_string()))?;
    if !status.success() || !loaded {
        return Err(fail(format!("exited ({status}); its error is on stderr above")));
    }
    Ok(())
}

/// A private directory for the script's row files, removed when dropped.
struct RowsDir(std::path::PathBuf);

impl RowsDir {
    fn new() -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("mlxbench-quality-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RowsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `n_rows` rows of `vocab` little-endian float32 values.
fn read_rows(path: &Path, n_rows: usize, vocab: usize) -> Result<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    if bytes.len() != n_rows * vocab * 4 {
        return Err(Error::Results {
            path: path.to_path_buf(),
            detail: format!("{} bytes, expected {n_rows} rows of {vocab} float32", bytes.len()),
        });
    }
    let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok(values.chunks(vocab).map(<[f32]>::to_vec).collect())
}
