//! Pure parsers for the text the hardware probes read: `sysctl`, `ioreg` and `vm_stat` on macOS,
//! `/proc/cpuinfo`, `/proc/meminfo` and `nvidia-smi` on Linux. Compiled on every platform so the
//! tests can run all of them on captured outputs; anything unreadable becomes `None`, never a panic.
use std::collections::{BTreeMap, BTreeSet};

use super::{GpuInfo, VmStats};

/// `name: value` lines, as `sysctl -a` or `sysctl NAME...` print them; other lines are skipped.
pub fn parse_sysctl(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect()
}

/// The Apple GPU of `ioreg -rc AGXAccelerator -d 1`: its `model` (else the `chip` it is part of)
/// and `gpu-core-count`. `None` when the output holds neither.
pub fn parse_ioreg_gpu(text: &str, chip: Option<&str>) -> Option<GpuInfo> {
    let property = |key: &str| {
        text.lines()
            .filter_map(|line| line.trim().strip_prefix(key)?.trim_start().strip_prefix('='))
            .map(|value| value.trim().trim_matches('"').to_string())
            .next()
    };
    let name = property("\"model\"").filter(|name| !name.is_empty());
    let cores = property("\"gpu-core-count\"").and_then(|n| n.parse().ok());
    if name.is_none() && cores.is_none() {
        return None;
    }
    Some(GpuInfo {
        name: name.or(chip.map(String::from)).unwrap_or_else(|| "Apple GPU".into()),
        memory_bytes: None,
        driver: None,
        cores,
    })
}

/// `vm_stat` output: page size from its header, then the page counts of each state.
pub fn parse_vm_stat(text: &str) -> Option<VmStats> {
    let page_size_bytes: u64 = text.split("page size of ").nth(1)?.split_whitespace().next()?.parse().ok()?;
    let pages = |label: &str| -> Option<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(label)?.strip_prefix(':'))
            .and_then(|value| value.trim().trim_end_matches('.').parse().ok())
    };
    let bytes = |label| pages(label).map(|n| n * page_size_bytes);
    Some(VmStats {
        page_size_bytes,
        free_bytes: bytes("Pages free")?,
        active_bytes: bytes("Pages active")?,
        inactive_bytes: bytes("Pages inactive")?,
        wired_bytes: bytes("Pages wired down")?,
        compressed_bytes: bytes("Pages occupied by compressor")?,
    })
}

/// What `/proc/cpuinfo` says about the CPU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuInfo {
    /// `model name` of the first processor; Arm kernels print none.
    pub model: Option<String>,
    /// Distinct (`physical id`, `core id`) pairs, when the kernel prints them.
    pub cores: Option<u32>,
    /// `processor` entries: the logical CPUs.
    pub threads: Option<u32>,
}

pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    let (mut threads, mut cores) = (0u32, BTreeSet::new());
    let mut physical_id = String::new();
    for (key, value) in text.lines().filter_map(|line| line.split_once(':')) {
        let value = value.trim();
        match key.trim() {
            "processor" => threads += 1,
            "model name" if info.model.is_none() && !value.is_empty() => info.model = Some(value.into()),
            "physical id" => physical_id = value.into(),
            "core id" => {
                cores.insert((physical_id.clone(), value.to_string()));
            }
            _ => {}
        }
    }
    info.threads = (threads > 0).then_some(threads);
    info.cores = u32::try_from(cores.len()).ok().filter(|&n| n > 0);
    info
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|line| line.strip_prefix("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// `nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits`: one
/// GPU per line, memory in MiB. Lines without three fields (errors, "No devices were found") are
/// skipped; `[N/A]` fields are unknown.
pub fn parse_nvidia_smi(text: &str) -> Vec<GpuInfo> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [name, memory_mib, driver] = fields[..] else { return None };
            let known = |field: &str| !field.is_empty() && !field.starts_with('[');
            (known(name)).then(|| GpuInfo {
                name: name.to_string(),
                memory_bytes: memory_mib.parse::<u64>().ok().map(|mib| mib * 1024 * 1024),
                driver: known(driver).then(|| driver.to_string()),
                cores: None,
            })
        })
        .collect()
}
