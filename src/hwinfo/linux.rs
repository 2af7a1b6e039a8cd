//! Probes of a Linux machine: `/proc/cpuinfo`, `/proc/meminfo`, and `nvidia-smi` for NVIDIA GPUs
//! (absent on machines without one). Each source that is missing leaves its fields unknown.
use super::{command_stdout, HardwareInfo};

pub(super) fn probe() -> HardwareInfo {
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    let nvidia_smi = command_stdout(
        "nvidia-smi",
        &["--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"],
    );
    HardwareInfo::from_linux(&read("/proc/cpuinfo"), &read("/proc/meminfo"), &nvidia_smi.unwrap_or_default())
}
