//! The machine a benchmark ran on: CPU, memory and GPUs, a one-line summary for reports, and the
//! peak memory bandwidth that decode speed is measured against. The probes are small and
//! platform-specific (`macos.rs`, `linux.rs`, with `sysinfo` under both); everything they read is
//! parsed by pure functions (`parse.rs`) that the tests run on captured outputs.
mod bandwidth;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
mod parse;
pub mod telemetry;
pub mod thermal;

use serde::{Deserialize, Serialize};

pub use bandwidth::{apple_peak_gbps, nvidia_peak_gbps};
pub use parse::{
    parse_cpuinfo, parse_ioreg_gpu, parse_meminfo_total, parse_nvidia_smi, parse_sysctl, parse_vm_stat,
    CpuInfo,
};

use crate::{device::DeviceKind, units::gibibytes};

/// What [`detect`] found; every field a source could not tell is `None` (or empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HardwareInfo {
    /// Operating system and version, e.g. `macOS 14.5 (23F79)`.
    pub os: String,
    /// CPU architecture, e.g. `aarch64`.
    pub arch: String,
    pub cpu_model: Option<String>,
    /// Physical cores.
    pub cpu_cores: Option<u32>,
    /// Logical CPUs (hardware threads).
    pub cpu_threads: Option<u32>,
    pub performance_cores: Option<u32>,
    pub efficiency_cores: Option<u32>,
    /// Installed RAM; on Apple Silicon the unified memory the GPU shares.
    pub memory_bytes: Option<u64>,
    pub gpus: Vec<GpuInfo>,
    /// macOS memory pressure when [`detect`] ran.
    pub vm_stats: Option<VmStats>,
    /// Whether the OS runs in a virtual machine (macOS: `kern.hv_vmm_present`, a `VirtualMac`
    /// model or a `(Virtual)` chip, as on GitHub's M1 runners); `None` where not probed (Linux).
    /// A virtual machine gets no peak bandwidth: it shares the host's memory with other guests
    /// and its GPU is paravirtualized, so no published figure applies.
    #[serde(default)]
    pub virtual_machine: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    pub name: String,
    /// Memory of its own; `None` for Apple GPUs, which use the unified memory.
    pub memory_bytes: Option<u64>,
    pub driver: Option<String>,
    pub cores: Option<u32>,
}

/// Physical memory by page state (free, active, inactive, wired, held by the compressor), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmStats {
    pub page_size_bytes: u64,
    pub free_bytes: u64,
    pub active_bytes: u64,
    pub inactive_bytes: u64,
    pub wired_bytes: u64,
    pub compressed_bytes: u64,
}

/// Probes this machine. Never fails: what cannot be read stays unknown.
pub fn detect() -> HardwareInfo {
    #[cfg(target_os = "macos")]
    let probed = macos::probe();
    #[cfg(target_os = "linux")]
    let probed = linux::probe();
    #[cfg(not(any(target_os = "macos", target_os = "linux")))]
    let probed = HardwareInfo::default();
    probed.or(from_sysinfo())
}

impl HardwareInfo {
    /// From the outputs of `sysctl` (`name: value` lines, as `sysctl -a` prints) and
    /// `ioreg -rc AGXAccelerator -d 1`.
    pub fn from_macos(sysctl: &str, ioreg: &str) -> HardwareInfo {
        let values = parse_sysctl(sysctl);
        let get = |name: &str| values.get(name).filter(|v| !v.is_empty());
        let count = |name: &str| get(name).and_then(|v| v.parse::<u32>().ok());
        let os = match (get("kern.osproductversion"), get("kern.osversion")) {
            (Some(version), Some(build)) => format!("macOS {version} ({build})"),
            (Some(version), None) => format!("macOS {version}"),
            _ => String::new(),
        };
        // CPU_TYPE_ARM64 and CPU_TYPE_X86_64 of <mach/machine.h>.
        let arch = match get("hw.cputype").map(String::as_str) {
            Some("16777228") => "aarch64",
            Some("16777223") => "x86_64",
            _ => "",
        };
        let cpu_model = get("machdep.cpu.brand_string").cloned();
        let named_virtual = cpu_model.as_deref().is_some_and(|m| m.contains("(Virtual)"))
            || get("hw.model").is_some_and(|m| m.starts_with("VirtualMac"));
        let virtual_machine = match get("kern.hv_vmm_present").map(String::as_str) {
            _ if named_virtual => Some(true),
            Some("1") => Some(true),
            Some("0") => Some(false),
            _ => None,
        };
        HardwareInfo {
            os,
            arch: arch.into(),
            gpus: parse_ioreg_gpu(ioreg, cpu_model.as_deref()).into_iter().collect(),
            cpu_model,
            cpu_cores: count("hw.physicalcpu"),
            cpu_threads: count("hw.logicalcpu"),
            performance_cores: count("hw.perflevel0.physicalcpu"),
            efficiency_cores: count("hw.perflevel1.physicalcpu"),
            memory_bytes: get("hw.memsize").and_then(|v| v.parse().ok()),
            vm_stats: None,
            virtual_machine,
        }
    }

    /// From `/proc/cpuinfo`, `/proc/meminfo` and the `nvidia-smi` query of [`parse_nvidia_smi`].
    pub fn from_linux(cpuinfo: &str, meminfo: &str, nvidia_smi: &str) -> HardwareInfo {
        let cpu = parse_cpuinfo(cpuinfo);
        HardwareInfo {
            cpu_model: cpu.model,
            cpu_cores: cpu.cores,
            cpu_threads: cpu.threads,
            memory_bytes: parse_meminfo_total(meminfo),
            gpus: parse_nvidia_smi(nvidia_smi),
            ..HardwareInfo::default()
        }
    }

    /// One line: `Apple M2 Ultra | 192.0 GiB | 24 CPU (16P+8E) | 76 GPU cores`, with a
    /// `virtual machine` part when it is one. Sizes are in GiB (2^30 bytes): the number Apple and
    /// NVIDIA sell the memory by.
    pub fn summary(&self) -> String {
        let mut parts = vec![
            self.cpu_model.clone().unwrap_or_else(|| "unknown CPU".into()),
            self.memory_bytes.map_or_else(|| "unknown memory".into(), gibibytes),
            self.cpu_summary(),
        ];
        if self.virtual_machine == Some(true) {
            parts.push("virtual machine".into());
        }
        let mut gpus = self.gpus.iter().peekable();
        while let Some(gpu) = gpus.next() {
            let mut same = 1;
            while gpus.next_if_eq(&gpu).is_some() {
                same += 1;
            }
            parts.push(self.gpu_summary(gpu, same));
        }
        parts.join(" | ")
    }

    /// Peak memory bandwidth in GB/s for a run on `device`. Apple Silicon's CPU and GPU share one
    /// unified memory; elsewhere a GPU run is rated by the first GPU and a CPU run is `None`.
    /// `None` in a virtual Mac, whatever chip it names (see [`HardwareInfo::virtual_machine`]).
    pub fn peak_bandwidth_gbps(&self, device: DeviceKind) -> Option<f64> {
        if self.virtual_machine == Some(true) {
            return None;
        }
        let gpu = self.gpus.first();
        match self.cpu_model.as_deref() {
            Some(chip) if chip.starts_with("Apple M") => apple_peak_gbps(chip, gpu.and_then(|g| g.cores)),
            _ if device == DeviceKind::Gpu => nvidia_peak_gbps(&gpu?.name),
            _ => None,
        }
    }

    fn cpu_summary(&self) -> String {
        let Some(cores) = self.cpu_cores.or(self.cpu_threads) else { return "unknown cores".into() };
        let mut details = Vec::new();
        if let (Some(p), Some(e)) = (self.performance_cores, self.efficiency_cores) {
            details.push(format!("{p}P+{e}E"));
        }
        if let Some(threads) = self.cpu_threads.filter(|&t| t != cores) {
            details.push(format!("{threads} threads"));
        }
        if details.is_empty() {
            format!("{cores} CPU")
        } else {
            format!("{cores} CPU ({})", details.join(", "))
        }
    }

    /// `76 GPU cores` for the GPU of an Apple chip (named like the chip), else
    /// `8x NVIDIA H200 (140.4 GiB, driver 580.159.04)`.
    fn gpu_summary(&self, gpu: &GpuInfo, count: usize) -> String {
        let prefix = if count > 1 { format!("{count}x ") } else { String::new() };
        let details: Vec<String> = [
            gpu.cores.map(|c| format!("{c} GPU cores")),
            gpu.memory_bytes.map(gibibytes),
            gpu.driver.as_ref().map(|d| format!("driver {d}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if self.cpu_model.as_ref() == Some(&gpu.name) {
            let details = if details.is_empty() { "GPU".into() } else { details.join(", ") };
            return format!("{prefix}{details}");
        }
        if details.is_empty() {
            format!("{prefix}{}", gpu.name)
        } else {
            format!("{prefix}{} ({})", gpu.name, details.join(", "))
        }
    }

    /// Each unknown field taken from `fallback`.
    fn or(self, fallback: HardwareInfo) -> HardwareInfo {
        let text = |s: String, f: String| if s.is_empty() { f } else { s };
        HardwareInfo {
            os: text(self.os, fallback.os),
            arch: text(self.arch, fallback.arch),
            cpu_model: self.cpu_model.or(fallback.cpu_model),
            cpu_cores: self.cpu_cores.or(fallback.cpu_cores),
            cpu_threads: self.cpu_threads.or(fallback.cpu_threads),
            performance_cores: self.performance_cores.or(fallback.performance_cores),
            efficiency_cores: self.efficiency_cores.or(fallback.efficiency_cores),
            memory_bytes: self.memory_bytes.or(fallback.memory_bytes),
            gpus: if self.gpus.is_empty() { fallback.gpus } else { self.gpus },
            vm_stats: self.vm_stats.or(fallback.vm_stats),
            virtual_machine: self.virtual_machine.or(fallback.virtual_machine),
        }
    }
}

/// What `sysinfo` knows on any platform: the fallback for each field the probes leave unknown.
fn from_sysinfo() -> HardwareInfo {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
    let system = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    );
    let os = [System::long_os_version(), System::kernel_version().map(|k| format!("kernel {k}"))];
    HardwareInfo {
        os: os.into_iter().flatten().collect::<Vec<_>>().join(", "),
        arch: std::env::consts::ARCH.into(),
        cpu_model: system.cpus().first().map(|cpu| cpu.brand().trim().to_string()).filter(|b| !b.is_empty()),
        cpu_cores: System::physical_core_count().and_then(|n| u32::try_from(n).ok()),
        cpu_threads: u32::try_from(system.cpus().len()).ok().filter(|&n| n > 0),
        memory_bytes: Some(system.total_memory()).filter(|&b| b > 0),
        ..HardwareInfo::default()
    }
}

/// Stdout of a probe command, whatever its exit status (the parsers skip what they cannot read);
/// `None` when it cannot be run.
#[cfg(any(target_os = "macos", target_os = "linux"))]
fn command_stdout(program: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program).args(args).output().ok()?;
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}
