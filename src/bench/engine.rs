//! The engines a point can run on: mlxbench's own (in this process) and Apple's mlx-lm (its
//! `load` and `generate_step` in a Python subprocess, `mlx_lm_engine.py`), both timed with the
//! same trial protocol and metric definitions, on the same prompt ids.
use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::record::LoadStats;
use crate::{
    choice::choice,
    device::{DeviceKind, BUILT_MLX_BUILD, BUILT_MLX_VERSION},
    generate::GenerateOptions,
    measure::{TrialMemory, TrialTimings},
    prompt::Tokens,
};

/// Which implementation runs a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Engine {
    /// mlxbench's own model code, in this process.
    #[default]
    #[serde(rename = "mlxbench")]
    Mlxbench,
    /// Apple's Python mlx-lm (`generate_step`), in a subprocess.
    #[serde(rename = "mlx-lm")]
    MlxLm,
}

choice!(Engine {
    Mlxbench => ("mlxbench", "mlxbench's own model code, in this process"),
    MlxLm => ("mlx-lm", "Apple's Python mlx-lm (load + generate_step) in a subprocess (--python)"),
});

/// The script the mlx-lm engine runs (`python -c`).
const SCRIPT: &str = include_str!("mlx_lm_engine.py");

/// How long one request may take before the engine is declared hung.
const REPLY_DEADLINE: Duration = Duration::from_secs(600);

/// A running mlx-lm engine: a Python process answering one JSON line per request.
pub struct MlxLmProcess {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
    python: String,
}

/// One mlx-lm trial's timestamps and memory, in mlxbench's terms.
pub struct MlxLmTrial {
    pub timings: TrialTimings,
    pub memory: TrialMemory,
    /// The generated ids (one sequence).
    pub tokens: Vec<u32>,
    /// With a draft model: mlx-lm's `from_draft` flag of each token.
    pub from_draft: Vec<bool>,
}

#[derive(Deserialize)]
struct TrialReply {
    n_prompt: usize,
    prefill_done: f64,
    token_times: Vec<f64>,
    tokens: Vec<u32>,
    peak_memory_bytes: u64,
    active_memory_bytes: u64,
    cache_memory_bytes: u64,
    kv_cache_bytes: u64,
    #[serde(default)]
    from_draft: Vec<bool>,
}

/// `python -u -c script`, reading requests on stdin and answering on stdout (its stderr goes to
/// ours), with transformers' config warnings quieted: how the mlx-lm engine and the quality
/// measurement's mlx-lm side run their scripts.
pub(crate) fn python_script(python: &str, script: &str) -> Command {
    let mut command = Command::new(python);
    if std::env::var_os("TRANSFORMERS_VERBOSITY").is_none() {
        // mlx-lm's load reads the tokenizer through transformers, which warns about configs.
        command.env("TRANSFORMERS_VERBOSITY", "error");
    }
    command.args(["-u", "-c", script]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    command
}

impl MlxLmProcess {
    /// Starts `python` on the engine script, selects `device` and checks that its MLX is ours.
    /// Errors are one line naming the interpreter and what is missing.
    pub fn start(python: &str, device: DeviceKind) -> Result<Self, String> {
        let mut child = python_script(python, SCRIPT)
            .spawn()
            .map_err(|e| format!("mlx-lm engine: cannot run {python:?}: {e} (set --python or MLXBENCH_PYTHON)"))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = Self { child, stdin, replies, python: python.to_string() };
        let hello = process.request(&json!({"op": "hello", "device": device.to_string()}))?;
        same_mlx(
            python,
            (BUILT_MLX_VERSION, BUILT_MLX_BUILD),
            (hello["mlx_version"].as_str().unwrap_or("unknown"), hello["mlx_build"].as_str()),
        )?;
        Ok(process)
    }

    /// Sends one request and waits for its reply.
    fn request(&mut self, request: &Value) -> Result<Value, String> {
        let python = &self.python;
        writeln!(self.stdin, "{request}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("mlx-lm engine ({python}) stopped: {e}"))?;
        let line = match self.replies.recv_timeout(REPLY_DEADLINE) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!("mlx-lm engine ({python}) did not answer within {} s", REPLY_DEADLINE.as_secs()))
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(format!("mlx-lm engine ({python}) exited ({status}); its error is on stderr above"));
            }
        };
        let reply: Value =
            serde_json::from_str(&line).map_err(|e| format!("mlx-lm engine ({python}) answered {line:?}: {e}"))?;
        match (reply.get("ok"), reply.get("error")) {
            (Some(ok), _) => Ok(ok.clone()),
            (None, Some(error)) => Err(format!("mlx-lm engine ({python}): {}", error.as_str().unwrap_or("unknown error"))),
            (None, None) => Err(format!("mlx-lm engine ({python}) answered {line:?}")),
        }
    }

    /// Loads the model in `dir` (mlx-lm's `load`, which evaluates the weights), replacing the
    /// previous one; how long it took and its peak memory.
    pub fn load(&mut self, dir: &Path) -> Result<LoadStats, String> {
        let reply = self.request(&json!({"op": "load", "model": dir}))?;
        serde_json::from_value(reply).map_err(|e| format!("mlx-lm engine: a load reply: {e}"))
    }

    /// Loads the draft model in `dir` for speculative trials, replacing the previous one.
    pub fn load_draft(&mut self, dir: &Path) -> Result<LoadStats, String> {
        let reply = self.request(&json!({"op": "load_draft", "model": dir}))?;
        serde_json::from_value(reply).map_err(|e| format!("mlx-lm engine: a load reply: {e}"))
    }

    /// One trial of `prompt` (batch 1) with `depth` tokens of untimed context; with
    /// `num_draft_tokens`, through mlx-lm's speculative path with the loaded draft.
    pub fn trial(
        &mut self,
        prompt: &Tokens,
        depth: usize,
        options: &GenerateOptions,
        num_draft_tokens: Option<usize>,
    ) -> Result<MlxLmTrial, String> {
        if prompt.batch() != 1 {
            return Err(format!(
                "batch {} is not supported by the mlx-lm engine (generate_step runs one sequence)",
                prompt.batch()
            ));
        }
        let kv = &options.kv;
        let reply = self.request(&json!({
            "op": "trial",
            "prompt": prompt.row(0),
            "depth": depth,
            "n_generate": options.n_generate,
            "prefill_step_size": options.prefill_step_size,
            "kv_bits": kv.kv_bits,
            "kv_group_size": kv.kv_group_size,
            "quantized_kv_start": kv.quantized_kv_start,
            "max_kv_size": kv.max_kv_size,
            "num_draft_tokens": num_draft_tokens,
        }))?;
        let r: TrialReply = serde_json::from_value(reply).map_err(|e| format!("mlx-lm engine: a trial reply: {e}"))?;
        let seconds = |s: f64| Duration::from_secs_f64(s.max(0.0));
        Ok(MlxLmTrial {
            timings: TrialTimings {
                batch: 1,
                n_context: depth,
                n_prompt: r.n_prompt,
                n_prefill: r.n_prompt.saturating_sub(1),
                prefill_done: seconds(r.prefill_done),
                token_times: r.token_times.into_iter().map(seconds).collect(),
                built_times: Vec::new(),
                queued_times: Vec::new(),
            },
            memory: TrialMemory {
                peak_memory_bytes: r.peak_memory_bytes,
                active_memory_bytes: r.active_memory_bytes,
                cache_memory_bytes: r.cache_memory_bytes,
                kv_cache_bytes: r.kv_cache_bytes,
            },
            tokens: r.tokens,
            from_draft: r.from_draft,
        })
    }
}

/// Both engines must run one MLX: the same version, and where both know it the same wheel build
/// (on a Mac the macosx_26_0 build has MLX's M5 kernels and the others do not, all of one version).
/// `ours` is (version, platform tag or `local`), `theirs` what the Python reported.
pub fn same_mlx(python: &str, ours: (&str, &str), theirs: (&str, Option<&str>)) -> Result<(), String> {
    let (version, build) = ours;
    if theirs.0 != version {
        return Err(format!(
            "mlx-lm engine: {python} has MLX {}, but mlxbench was built against MLX {version}; \
             install mlx=={version} there, or build mlxbench for MLX {} (MLXBENCH_MLX_VERSION={}), \
             so both engines run the same MLX",
            theirs.0, theirs.0, theirs.0
        ));
    }
    match theirs.1 {
        Some(their_build) if build != "local" && their_build != build => Err(format!(
            "mlx-lm engine: {python} has MLX {version}'s {their_build} build, but mlxbench was built \
             against its {build} build (they run different kernels); rebuild mlxbench with \
             MLXBENCH_MLX_PLATFORM={their_build}, or install that build there"
        )),
        _ => Ok(()),
    }
}

impl Drop for MlxLmProcess {
    fn drop(&mut self) {
        // Ask politely; a process that does not leave within a second is killed.
        let _ = writeln!(self.stdin, "{}", json!({"op": "quit"})).and_then(|()| self.stdin.flush());
        for _ in 0..20 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::same_mlx;

    #[test]
    fn the_engines_must_run_one_mlx_version_and_build() {
        let ours = ("0.32.4", "macosx_15_0_arm64");
        assert_eq!(same_mlx("py", ours, ("0.32.4", Some("macosx_15_0_arm64"))), Ok(()));
        // A Python whose MLX did not come from a wheel we know, and an MLX_DIR build of ours.
        assert_eq!(same_mlx("py", ours, ("0.32.4", None)), Ok(()));
        assert_eq!(same_mlx("py", ("0.32.4", "local"), ("0.32.4", Some("macosx_26_0_arm64"))), Ok(()));

        let version = same_mlx("venv/bin/python", ours, ("0.32.2", Some("macosx_15_0_arm64"))).unwrap_err();
        assert!(version.contains("venv/bin/python has MLX 0.32.2") && version.contains("built against MLX 0.32.4"), "{version}");
        assert!(version.contains("MLXBENCH_MLX_VERSION=0.32.2"), "{version}");
        let build = same_mlx("py", ours, ("0.32.4", Some("macosx_26_0_arm64"))).unwrap_err();
        assert!(build.contains("macosx_26_0_arm64 build") && build.contains("its macosx_15_0_arm64 build"), "{build}");
        assert!(build.contains("MLXBENCH_MLX_PLATFORM=macosx_26_0_arm64"), "{build}");
    }
}
