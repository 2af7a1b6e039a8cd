//! Servers mlxbench starts itself (`--launch mlx-lm`): `mlx_lm.server` instances on free
//! 127.0.0.1 ports, each in its own process group, waited for on `/health` with a deadline, and
//! stopped, with everything they started, when the [`Servers`] is dropped, on error, or on
//! Ctrl-C (`process::signal_all`). Also the memory sampler of a server's process tree.
use std::{
    collections::HashSet,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::{
    choice::choice,
    error::{Error, Result},
    process,
};

/// Servers mlxbench can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    MlxLm,
}

choice!(Launcher {
    MlxLm => ("mlx-lm", "Apple's mlx_lm.server (python -m mlx_lm.server)"),
});

/// How to start the servers of one setting.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub python: String,
    pub model: String,
    pub base_port: u16,
    pub decode_concurrency: Option<u32>,
    pub prompt_concurrency: Option<u32>,
    pub kv_bits: Option<i32>,
    pub extra_args: Vec<String>,
    /// How long a server may take to answer `/health` with 200.
    pub ready_timeout: Duration,
    /// Where each server's output goes (`server-<port>.log`, appended to).
    pub log_dir: PathBuf,
}

/// Running servers; dropping them stops them.
pub struct Servers {
    children: Vec<(Child, u16)>,
    pub urls: Vec<String>,
}

/// The first port from `from` that 127.0.0.1 can bind now, and is not in `taken`.
fn free_port(from: u16, taken: &HashSet<u16>) -> Result<u16> {
    (from..=u16::MAX)
        .find(|p| !taken.contains(p) && TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .ok_or_else(|| Error::InvalidOption(format!("no free port on 127.0.0.1 from {from} up")))
}

/// The last lines of a server's log, for an error.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(6)..].join("\n  ")
}

impl Servers {
    /// Starts `n` servers and waits until all answer `/health`.
    pub fn start(spec: &LaunchSpec, n: usize) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        std::fs::create_dir_all(&spec.log_dir).map_err(|source| Error::Io { path: spec.log_dir.clone(), source })?;
        let mut servers = Servers { children: Vec::new(), urls: Vec::new() };
        let mut taken = HashSet::new();
        let mut port = spec.base_port;
        for _ in 0..n {
            port = free_port(port, &taken)?;
            taken.insert(port);
            let log_path = spec.log_dir.join(format!("server-{port}.log"));
            // Appended to: each server setting of a sweep restarts the servers on the same ports.
            let mut log = std::fs::File::options()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|source| Error::Io { path: log_path.clone(), source })?;
            let banner = format!(
                "==== mlxbench: starting mlx_lm.server (decode concurrency {:?}, prompt concurrency {:?}, kv bits {:?}) ====\n",
                spec.decode_concurrency, spec.prompt_concurrency, spec.kv_bits
            );
            std::io::Write::write_all(&mut log, banner.as_bytes()).map_err(|source| Error::Io { path: log_path.clone(), source })?;
            let log_err = log.try_clone().map_err(|source| Error::Io { path: log_path.clone(), source })?;
            let mut command = Command::new(&spec.python);
            command.args(["-m", "mlx_lm.server", "--model", &spec.model, "--host", "127.0.0.1", "--port", &port.to_string()]);
            if let Some(d) = spec.decode_concurrency {
                command.args(["--decode-concurrency", &d.to_string()]);
            }
            if let Some(p) = spec.prompt_concurrency {
                command.args(["--prompt-concurrency", &p.to_string()]);
            }
            if let Some(bits) = spec.kv_bits {
                command.args(["--kv-bits", &bits.to_string()]);
            }
            command.args(&spec.extra_args).stdin(Stdio::null()).stdout(log).stderr(log_err).process_group(0);
            let child = command.spawn().map_err(|e| {
                Error::InvalidOption(format!("cannot start {} -m mlx_lm.server: {e} (set --python or MLXBENCH_PYTHON)", spec.python))
            })?;
            process::register(&child);
            servers.urls.push(format!("http://127.0.0.1:{port}"));
            servers.children.push((child, port));
            port += 1;
        }
        servers.wait_ready(spec)?;
        Ok(servers)
    }

    /// Waits for every server's `/health` to answer 200, at most `ready_timeout`.
    fn wait_ready(&mut self, spec: &LaunchSpec) -> Result<()> {
        let deadline = Instant::now() + spec.ready_timeout;
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
        for (child, port) in &mut self.children {
            let log = spec.log_dir.join(format!("server-{port}.log"));
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Error::InvalidOption(format!(
                        "mlx_lm.server on port {port} exited ({status}) before it was ready; its log ({}):\n  {}",
                        log.display(),
                        log_tail(&log)
                    )));
                }
                if matches!(agent.get(&format!("http://127.0.0.1:{port}/health")).call(), Ok(r) if r.status() == 200) {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(Error::InvalidOption(format!(
                        "mlx_lm.server on port {port} did not answer /health within {:?}; its log ({}):\n  {}",
                        spec.ready_timeout,
                        log.display(),
                        log_tail(&log)
                    )));
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        Ok(())
    }

    /// The servers' process ids (the roots of their process trees).
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(c, _)| c.id()).collect()
    }

    /// Stops every server: SIGTERM to its process group, SIGKILL after 5 s, then reaped.
    pub fn stop(&mut self) {
        let mut children: Vec<&mut Child> = self.children.iter_mut().map(|(child, _)| child).collect();
        process::stop(&mut children, Duration::from_secs(5));
        self.children.clear();
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Resident memory of process trees over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryTimeline {
    /// The largest sample, bytes.
    pub peak_bytes: u64,
    /// `(ms from the start, bytes)`, one every `SAMPLE_EVERY`.
    pub samples: Vec<(f64, u64)>,
}

/// How often server memory is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Samples the resident memory of `roots` and all their descendants until stopped.
pub struct MemorySampler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<MemoryTimeline>>,
}

/// The summed resident memory of `roots` and their descendants.
fn tree_rss(system: &System, roots: &[Pid]) -> u64 {
    let in_tree = |mut pid: Pid| {
        for _ in 0..64 {
            if roots.contains(&pid) {
                return true;
            }
            match system.process(pid).and_then(|p| p.parent()) {
                Some(parent) => pid = parent,
                None => return false,
            }
        }
        false
    };
    system.processes().iter().filter(|(pid, p)| p.thread_kind().is_none() && in_tree(**pid)).map(|(_, p)| p.memory()).sum()
}

impl MemorySampler {
    pub fn start(roots: Vec<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let roots: Vec<Pid> = roots.into_iter().map(Pid::from_u32).collect();
            let mut system = System::new();
            let start = Instant::now();
            let mut timeline = MemoryTimeline::default();
            while !flag.load(Ordering::SeqCst) {
                system.refresh_processes_specifics(ProcessesToUpdate::All, true, ProcessRefreshKind::nothing().with_memory().without_tasks());
                let bytes = tree_rss(&system, &roots);
                timeline.peak_bytes = timeline.peak_bytes.max(bytes);
                timeline.samples.push((start.elapsed().as_secs_f64() * 1000.0, bytes));
                std::thread::sleep(SAMPLE_EVERY);
            }
            timeline
        });
        MemorySampler { stop, thread: Some(thread) }
    }

    pub fn finish(mut self) -> MemoryTimeline {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}
