//! Other processes as the tests see them, the same way on Linux and macOS: through `sysinfo`
//! (`/proc` on Linux, `proc_pidinfo` and `KERN_PROCARGS2` on macOS), never `/proc` directly.
use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind};

/// Whether `pid` still runs. A zombie (ended, not yet reaped by its parent) has ended: a rank
/// killed under a launcher that has not waited for it yet must not count as left running.
#[allow(dead_code)] // for the test crates that watch processes
pub fn alive(pid: u32) -> bool {
    let pid = Pid::from_u32(pid);
    let mut system = System::new();
    system.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, ProcessRefreshKind::nothing());
    system.process(pid).is_some_and(|p| p.status() != ProcessStatus::Zombie)
}

/// The running processes whose command line contains every one of `needles`, each as
/// `pid: command line` (arguments joined by spaces). Zombies have no command line left.
#[allow(dead_code)] // for the test crates that watch processes
pub fn command_lines_containing(needles: &[&str]) -> Vec<String> {
    let mut system = System::new();
    let what = ProcessRefreshKind::nothing().with_cmd(UpdateKind::Always);
    system.refresh_processes_specifics(ProcessesToUpdate::All, true, what);
    let mut found: Vec<(Pid, String)> = system
        .processes()
        .iter()
        .filter(|(_, p)| p.status() != ProcessStatus::Zombie)
        .map(|(&pid, p)| (pid, p.cmd().iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")))
        .filter(|(_, cmdline)| needles.iter().all(|n| cmdline.contains(n)))
        .collect();
    found.sort_by_key(|&(pid, _)| pid);
    found.into_iter().map(|(pid, cmdline)| format!("{pid}: {cmdline}")).collect()
}
