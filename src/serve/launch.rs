//! Servers mlxbench starts itself (`--launch mlx-lm`): `mlx_lm.server` instances on free
//! 127.0.0.1 ports, each in its own process group, waited for on `/health` with a deadline, and
//! stopped, with everything they started, when the [`Servers`] is dropped, on error, or on
//! Ctrl-C (`process::signal_all`). Also how the server is started from a Python
//! ([`ServerCommand`]), where a run's server logs go ([`LogDir`]), and the memory sampler of a
//! server's process tree.
use std::{
    collections::HashSet,
    ffi::OsStr,
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
    MlxLm => ("mlx-lm", "Apple's mlx_lm.server (the console script beside --python)"),
});

/// How `mlx_lm.server` is started from a Python, the way mlx-lm asks: its console script
/// `mlx_lm.server`, installed beside the interpreter, else `python -m mlx_lm server`
/// (`python -m mlx_lm.server` prints that it is deprecated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCommand {
    pub program: PathBuf,
    /// The arguments before the server's own.
    pub args: Vec<String>,
}

/// The hint every "no mlx-lm here" error ends with.
const PYTHON_HINT: &str = "give the Python that has mlx-lm with --python (or $MLXBENCH_PYTHON)";

/// Where `program` is run from: itself when it names a path, else the first match on `$PATH`.
fn on_path(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|p| p.is_file())
}

impl ServerCommand {
    /// The command for `python`, without running anything: the `mlx_lm.server` beside the
    /// interpreter (as given, not resolved through links: a virtual environment's `bin/python`
    /// links to the system's), else the module through `python -m mlx_lm server`.
    pub fn for_python(python: &str) -> Self {
        let script = on_path(python).and_then(|p| p.parent().map(|dir| dir.join("mlx_lm.server"))).filter(|s| s.is_file());
        match script {
            Some(program) => ServerCommand { program, args: Vec::new() },
            None => ServerCommand { program: PathBuf::from(python), args: vec!["-m".into(), "mlx_lm".into(), "server".into()] },
        }
    }

    /// [`ServerCommand::for_python`], checked: without the console script, `python` must run and
    /// import `mlx_lm`; each failure says what to give `--python`.
    pub fn find(python: &str) -> Result<Self> {
        let command = Self::for_python(python);
        if command.args.is_empty() {
            return Ok(command);
        }
        let check = "import importlib.util, sys; sys.exit(importlib.util.find_spec('mlx_lm') is None)";
        match Command::new(python).args(["-c", check]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status() {
            Ok(status) if status.success() => Ok(command),
            Ok(_) => Err(Error::InvalidOption(format!(
                "{python} has no mlx-lm (neither mlx_lm.server beside it nor an importable mlx_lm): install it ({python} -m pip install mlx-lm) or {PYTHON_HINT}"
            ))),
            Err(e) => Err(Error::InvalidOption(format!("cannot run {python}: {e}; {PYTHON_HINT}"))),
        }
    }

    /// The command line, for logs and errors.
    pub fn display(&self) -> String {
        std::iter::once(self.program.display().to_string()).chain(self.args.iter().cloned()).collect::<Vec<_>>().join(" ")
    }
}

/// The folder of one run's server logs, made fresh for the run: beside the results
/// ([`LogDir::beside`]), or private and temporary for a run that saves nothing
/// ([`LogDir::temporary`]), removed when dropped unless [`LogDir::keep`] was called.
#[derive(Debug)]
pub struct LogDir {
    path: PathBuf,
    remove_on_drop: bool,
}

/// A folder `name` under `parent` that did not exist (else `name-2`, `name-3`, ...), created
/// only for the caller (0700).
fn fresh_dir(parent: &Path, name: &str) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::create_dir_all(parent).map_err(|source| Error::Io { path: parent.to_path_buf(), source })?;
    let mut last = None;
    for i in 1..10_000 {
        let path = if i == 1 { parent.join(name) } else { parent.join(format!("{name}-{i}")) };
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((path, e)),
            Err(source) => return Err(Error::Io { path, source }),
        }
    }
    let (path, source) = last.unwrap_or_else(|| (parent.join(name), std::io::Error::from(std::io::ErrorKind::AlreadyExists)));
    Err(Error::Io { path, source })
}

impl LogDir {
    /// `<parent>/<name>` (or `<name>-2`, ...), kept.
    pub fn beside(parent: &Path, name: &str) -> Result<Self> {
        Ok(LogDir { path: fresh_dir(parent, name)?, remove_on_drop: false })
    }

    /// A private folder `mlxbench-serve-<pid>-<name>` in the system's temporary folder, removed
    /// when dropped unless kept.
    pub fn temporary(name: &str) -> Result<Self> {
        let name = format!("mlxbench-serve-{}-{name}", std::process::id());
        Ok(LogDir { path: fresh_dir(&std::env::temp_dir(), &name)?, remove_on_drop: true })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the folder goes when dropped.
    pub fn is_temporary(&self) -> bool {
        self.remove_on_drop
    }

    /// Keeps a temporary folder (a server failed: its log is what the user reads next).
    pub fn keep(&mut self) {
        self.remove_on_drop = false;
    }
}

impl Drop for LogDir {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// How to start the servers of one setting.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub server: ServerCommand,
    pub model: String,
    pub base_port: u16,
    pub decode_concurrency: Option<u32>,
    pub prompt_concurrency: Option<u32>,
    pub kv_bits: Option<i32>,
    pub extra_args: Vec<String>,
    /// How long a server may take to answer `/health` with 200.
    pub ready_timeout: Duration,
    /// The run's log folder ([`LogDir`]).
    pub log_dir: PathBuf,
    /// The setting's number in the sweep (from 1), in its logs' names.
    pub setting: usize,
}

impl LaunchSpec {
    /// The log of this setting's server on `port`: `setting-<k>-port-<port>.log`.
    pub fn log_path(&self, port: u16) -> PathBuf {
        self.log_dir.join(format!("setting-{}-port-{port}.log", self.setting))
    }
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
            let log_path = spec.log_path(port);
            // A file of this start alone: an error quotes its tail, which must be this server's.
            let mut log = std::fs::File::options()
                .create_new(true)
                .write(true)
                .open(&log_path)
                .map_err(|source| Error::Io { path: log_path.clone(), source })?;
            let mut command = Command::new(&spec.server.program);
            command.args(&spec.server.args).args(["--model", &spec.model, "--host", "127.0.0.1", "--port", &port.to_string()]);
            if let Some(d) = spec.decode_concurrency {
                command.args(["--decode-concurrency", &d.to_string()]);
            }
            if let Some(p) = spec.prompt_concurrency {
                command.args(["--prompt-concurrency", &p.to_string()]);
            }
            if let Some(bits) = spec.kv_bits {
                command.args(["--kv-bits", &bits.to_string()]);
            }
            command.args(&spec.extra_args);
            let shown: Vec<String> =
                std::iter::once(command.get_program()).chain(command.get_args()).map(OsStr::to_string_lossy).map(|a| a.into_owned()).collect();
            let banner = format!("==== mlxbench: {} ====\n", shown.join(" "));
            std::io::Write::write_all(&mut log, banner.as_bytes()).map_err(|source| Error::Io { path: log_path.clone(), source })?;
            let log_err = log.try_clone().map_err(|source| Error::Io { path: log_path.clone(), source })?;
            command.stdin(Stdio::null()).stdout(log).stderr(log_err).process_group(0);
            let child = command
                .spawn()
                .map_err(|e| Error::InvalidOption(format!("cannot start {}: {e}; {PYTHON_HINT}", spec.server.display())))?;
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
            let log = spec.log_path(*port);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let tail = log_tail(&log);
                    let hint = if tail.contains("No module named") { format!("\n{PYTHON_HINT}") } else { String::new() };
                    return Err(Error::InvalidOption(format!(
                        "mlx_lm.server on port {port} exited ({status}) before it was ready; its log ({}):\n  {tail}{hint}",
                        log.display(),
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
