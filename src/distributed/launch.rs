//! `mlxbench launch`'s process work: N local ranks of one command, joined by MLX's ring backend
//! over 127.0.0.1 (the environment `mlx.launch --backend ring` gives: `MLX_RANK` and
//! `MLX_HOSTFILE`, a JSON list of `["ip:port", ...]` per rank), each rank in its own process
//! group; when one rank fails every other is stopped, so that no rank waits forever in a
//! collective, and none is left behind on exit, error or Ctrl-C.
use std::{
    collections::VecDeque,
    io::BufRead,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    error::{Error, Result},
    process,
};

/// A ring hostfile: for each rank, the addresses it listens on.
pub type Hostfile = Vec<Vec<String>>;

/// `n` distinct ports free on 127.0.0.1 now (bound together, so that no two are the same;
/// released when this returns, just before the ranks start).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let no_port = |e: std::io::Error| Error::Distributed(format!("no free port on 127.0.0.1 for the ranks: {e}"));
    let listeners = (0..n).map(|_| TcpListener::bind(("127.0.0.1", 0))).collect::<std::io::Result<Vec<_>>>().map_err(no_port)?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect::<std::io::Result<_>>().map_err(no_port)
}

/// `ranks` entries of one free 127.0.0.1 port each.
pub fn local_hostfile(ranks: usize) -> Result<Hostfile> {
    Ok(free_ports(ranks)?.into_iter().map(|port| vec![format!("127.0.0.1:{port}")]).collect())
}

/// Reads a ring hostfile (as mlx.launch writes `MLX_HOSTFILE`) that must list `ranks` ranks.
pub fn read_hostfile(path: &Path, ranks: usize) -> Result<Hostfile> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let hosts: Hostfile = serde_json::from_str(&text).map_err(|e| {
        Error::Config { path: path.to_path_buf(), detail: format!("not a ring hostfile (a JSON list of [\"ip:port\", ...] per rank): {e}") }
    })?;
    if hosts.len() != ranks || hosts.iter().any(Vec::is_empty) {
        return Err(Error::Config {
            path: path.to_path_buf(),
            detail: format!("lists {} ranks (each with at least one \"ip:port\"), but -n asks for {ranks}", hosts.len()),
        });
    }
    Ok(hosts)
}

/// How the ranks find each other.
#[derive(Debug, Clone)]
pub enum Rendezvous {
    /// MLX's ring over TCP: `MLX_RANK` and `MLX_HOSTFILE`.
    Ring(Hostfile),
    /// NCCL, one GPU per rank (`CUDA_VISIBLE_DEVICES` = the rank, as `mlx.launch --backend
    /// nccl` sets it on one host): `MLX_RANK`, `MLX_WORLD_SIZE`, `NCCL_HOST_IP` and `NCCL_PORT`.
    Nccl { ranks: usize, port: u16 },
}

impl Rendezvous {
    pub fn ranks(&self) -> usize {
        match self {
            Rendezvous::Ring(hosts) => hosts.len(),
            Rendezvous::Nccl { ranks, .. } => *ranks,
        }
    }

    /// Where the ranks meet, for a message.
    pub fn describe(&self) -> String {
        match self {
            Rendezvous::Ring(hosts) => format!("ring on {}", hosts.iter().map(|h| h[0].as_str()).collect::<Vec<_>>().join(" ")),
            Rendezvous::Nccl { port, .. } => format!("nccl via 127.0.0.1:{port}, one GPU per rank"),
        }
    }
}

/// NCCL's rendezvous on a free 127.0.0.1 port.
pub fn local_nccl(ranks: usize) -> Result<Rendezvous> {
    Ok(Rendezvous::Nccl { ranks, port: free_ports(1)?[0] })
}

/// How a launch ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every rank exited with status 0.
    Succeeded,
    /// Every rank ended on its own and rank 0 (the one that reports) with this non-zero code:
    /// the command's own verdict (an error it printed, or `run`'s "a configuration failed").
    Verdict(i32),
    /// A rank failed (killed by a signal, or exited non-zero while rank 0 succeeded or had to be
    /// stopped): one killed by a signal if any (the cause: its peers then fail on the lost
    /// connection), else the first seen to fail.
    RankFailed { rank: usize, status: ExitStatus },
}

/// Running ranks; dropping them stops any still running.
pub struct Ranks {
    children: Vec<Child>,
    hostfile_path: PathBuf,
    /// The last lines each rank after 0 wrote to stderr (rank 0's go straight to ours).
    stderr_tails: Vec<Arc<Mutex<VecDeque<String>>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Lines of a rank's stderr kept for the message when it fails.
const TAIL_LINES: usize = 20;

impl Ranks {
    /// Starts `program args` once per rank of `hosts` with the ring environment. Rank 0's
    /// output is this process's; the other ranks' stdout is dropped and their stderr kept (its
    /// last lines, shown by [`Ranks::stderr_tail`]; all of it, prefixed, when `verbose`): they
    /// run the same command, and would print rank 0's errors again.
    pub fn start(program: &Path, args: &[String], rendezvous: &Rendezvous, verbose: bool) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        let hostfile_path = std::env::temp_dir().join(format!("mlxbench-ring-{}.json", std::process::id()));
        if let Rendezvous::Ring(hosts) = rendezvous {
            let json = serde_json::to_string(hosts).expect("strings serialize");
            std::fs::write(&hostfile_path, json).map_err(|source| Error::Io { path: hostfile_path.clone(), source })?;
        }
        let n = rendezvous.ranks();
        let mut ranks = Ranks { children: Vec::new(), hostfile_path, stderr_tails: Vec::new(), readers: Vec::new() };
        for rank in 0..n {
            let mut command = Command::new(program);
            command.args(args).env("MLX_RANK", rank.to_string()).env("MLX_WORLD_SIZE", n.to_string()).stdin(Stdio::null()).process_group(0);
            match rendezvous {
                Rendezvous::Ring(_) => {
                    command.env("MLX_HOSTFILE", &ranks.hostfile_path).env_remove("NCCL_HOST_IP");
                    if verbose {
                        command.env("MLX_RING_VERBOSE", "1");
                    }
                }
                Rendezvous::Nccl { port, .. } => {
                    command
                        .env("NCCL_HOST_IP", "127.0.0.1")
                        .env("NCCL_PORT", port.to_string())
                        .env("CUDA_VISIBLE_DEVICES", rank.to_string())
                        .env_remove("MLX_HOSTFILE");
                    if verbose {
                        command.env("NCCL_DEBUG", "INFO");
                    }
                }
            }
            if rank > 0 {
                command.stdout(Stdio::null()).stderr(Stdio::piped());
            }
            let mut child = command
                .spawn()
                .map_err(|e| Error::Distributed(format!("cannot start rank {rank} ({}): {e}", program.display())))?;
            process::register(&child);
            let tail = Arc::new(Mutex::new(VecDeque::new()));
            if let Some(stderr) = child.stderr.take() {
                let tail = Arc::clone(&tail);
                ranks.readers.push(std::thread::spawn(move || {
                    for line in std::io::BufReader::new(stderr).lines().map_while(std::io::Result::ok) {
                        if verbose {
                            eprintln!("[rank {rank}] {line}");
                        }
                        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                        if tail.len() == TAIL_LINES {
                            tail.pop_front();
                        }
                        tail.push_back(line);
                    }
                }));
            }
            ranks.stderr_tails.push(tail);
            ranks.children.push(child);
        }
        Ok(ranks)
    }

    /// The last lines rank `rank` (after 0) wrote to stderr.
    pub fn stderr_tail(&self, rank: usize) -> Vec<String> {
        match self.stderr_tails.get(rank) {
            Some(tail) if rank > 0 => tail.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The process ids, in rank order.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Waits for every rank. Once one fails (killed, or a non-zero exit), the others get `grace`
    /// to end on their own (they may be reporting the same failure), then SIGTERM, and SIGKILL
    /// after `grace` again: no rank waits forever in a collective whose peer is gone.
    pub fn wait(&mut self, grace: Duration) -> Result<Outcome> {
        let n = self.children.len();
        let mut statuses: Vec<Option<ExitStatus>> = vec![None; n];
        let mut first_failure: Option<usize> = None;
        let mut failed_at: Option<Instant> = None;
        loop {
            for (rank, child) in self.children.iter_mut().enumerate() {
                if statuses[rank].is_none() {
                    statuses[rank] = child.try_wait().map_err(|e| Error::Distributed(format!("waiting for rank {rank}: {e}")))?;
                    if statuses[rank].is_some_and(|s| !s.success()) && first_failure.is_none() {
                        first_failure = Some(rank);
                        failed_at = Some(Instant::now());
                    }
                }
            }
            let all_ended = statuses.iter().all(Option::is_some);
            if all_ended || failed_at.is_some_and(|t| t.elapsed() >= grace) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // A rank killed by a signal is the cause; its peers exit with errors about the lost
        // connection, possibly seen in the same poll.
        let signalled = statuses.iter().position(|s| s.is_some_and(|s| s.code().is_none()));
        let first_failure = signalled.or(first_failure);
        let stopped = statuses.iter().any(Option::is_none);
        self.stop(grace);
        // Every rank has ended: its stderr reaches its end, and the tails are complete.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let killed = statuses.iter().flatten().any(|s| s.code().is_none());
        Ok(match first_failure {
            None => Outcome::Succeeded,
            Some(rank) => match statuses[0].and_then(|s| s.code()).filter(|&c| c != 0) {
                // Every rank ended on its own with a code: rank 0's is the command's verdict.
                Some(code) if !stopped && !killed => Outcome::Verdict(code),
                _ => Outcome::RankFailed { rank, status: statuses[rank].expect("a failed rank has ended") },
            },
        })
    }

    /// SIGTERM to every rank, SIGKILL to those left after `grace`; reaps all.
    fn stop(&mut self, grace: Duration) {
        process::stop(&mut self.children.iter_mut().collect::<Vec<_>>(), grace);
    }
}

impl Drop for Ranks {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
        let _ = std::fs::remove_file(&self.hostfile_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_hostfile_has_one_distinct_port_per_rank() {
        let hosts = local_hostfile(4).unwrap();
        assert_eq!(hosts.len(), 4);
        let mut ports: Vec<&String> = hosts.iter().map(|h| &h[0]).collect();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), 4);
        assert!(hosts.iter().all(|h| h[0].starts_with("127.0.0.1:")));
    }

    /// The outcome of `script` run by `sh` on every rank of a 2-rank ring (`$MLX_RANK` tells
    /// them apart).
    fn outcome_of(script: &str) -> Outcome {
        let hosts = local_hostfile(2).unwrap();
        let args = ["-c".to_string(), script.to_string()];
        let mut ranks = Ranks::start(Path::new("/bin/sh"), &args, &Rendezvous::Ring(hosts), false).unwrap();
        ranks.wait(Duration::from_secs(2)).unwrap()
    }

    #[test]
    fn the_outcome_names_the_rank_that_caused_it() {
        assert!(matches!(outcome_of("exit 0"), Outcome::Succeeded));
        // Every rank reports the same failure, and rank 0's code is the command's verdict.
        assert!(matches!(outcome_of("exit 1"), Outcome::Verdict(1)));
        // Rank 1 is killed; rank 0 then fails on the lost peer, often within the same poll.
        for _ in 0..5 {
            let outcome = outcome_of(r#"if [ "$MLX_RANK" = 1 ]; then kill -9 $$; else sleep 0.005; exit 1; fi"#);
            assert!(matches!(outcome, Outcome::RankFailed { rank: 1, status } if status.code().is_none()), "{outcome:?}");
        }
        // Rank 1 fails while rank 0 would go on: rank 1, and rank 0 is stopped after the grace.
        let started = Instant::now();
        let outcome = outcome_of(r#"if [ "$MLX_RANK" = 1 ]; then exit 3; else sleep 30; fi"#);
        assert!(matches!(outcome, Outcome::RankFailed { rank: 1, status } if status.code() == Some(3)), "{outcome:?}");
        assert!(started.elapsed() < Duration::from_secs(20), "rank 0 was not stopped");
    }

    #[test]
    fn a_hostfile_must_list_the_ranks_asked_for() {
        let dir = std::env::temp_dir().join(format!("mlxbench-hostfile-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts.json");
        std::fs::write(&path, r#"[["10.0.0.1:5000"], ["10.0.0.2:5000"]]"#).unwrap();
        assert_eq!(read_hostfile(&path, 2).unwrap()[1], vec!["10.0.0.2:5000".to_string()]);
        let err = read_hostfile(&path, 3).unwrap_err().to_string();
        assert!(err.contains("lists 2 ranks") && err.contains("-n asks for 3"), "{err}");
        std::fs::write(&path, r#"{"hosts": 2}"#).unwrap();
        assert!(read_hostfile(&path, 2).unwrap_err().to_string().contains("not a ring hostfile"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
