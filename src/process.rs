//! Child processes mlxbench starts in process groups of their own (`serve --launch`'s servers,
//! `launch`'s ranks): a registry of their groups for a Ctrl-C handler, and stopping them with a
//! grace period, everything they started included.
use std::{
    process::Child,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Process groups started and not yet stopped.
static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Sends `signal` to process group `group` (a child started with `process_group(0)`: its id).
pub fn signal_group(group: u32, signal: i32) {
    // SAFETY: kill(2) on a process group this process created; no memory is shared.
    unsafe {
        libc::kill(-(group as i32), signal);
    }
}

/// Remembers `child`'s process group for [`signal_all`].
pub fn register(child: &Child) {
    GROUPS.lock().unwrap_or_else(|e| e.into_inner()).push(child.id());
}

/// Sends `signal` to every group registered and not stopped (from a signal handler: no
/// allocation, no waiting).
pub fn signal_all(signal: i32) {
    if let Ok(groups) = GROUPS.try_lock() {
        for &group in groups.iter() {
            signal_group(group, signal);
        }
    }
}

/// Stops `children`' process groups: SIGTERM, SIGKILL to those still running after `grace`
/// (and to whatever their groups still hold), then reaps them and forgets their groups.
pub fn stop(children: &mut [&mut Child], grace: Duration) {
    for child in children.iter() {
        signal_group(child.id(), libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && children.iter_mut().any(|c| matches!(c.try_wait(), Ok(None))) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for child in children.iter_mut() {
        signal_group(child.id(), libc::SIGKILL);
        let _ = child.wait();
    }
    let stopped: Vec<u32> = children.iter().map(|c| c.id()).collect();
    GROUPS.lock().unwrap_or_else(|e| e.into_inner()).retain(|g| !stopped.contains(g));
}
