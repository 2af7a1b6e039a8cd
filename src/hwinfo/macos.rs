//! Probes of a Mac: `sysctl` and `ioreg` name the chip, its cores and memory and tell a virtual
//! Mac (parsed by `parse.rs` and `HardwareInfo::from_macos`); the mach host statistics give
//! memory pressure, as `vm_stat` does.
use mach2::{
    host_info::HOST_VM_INFO64_COUNT,
    kern_return::{kern_return_t, KERN_SUCCESS},
    mach_init::mach_host_self,
    mach_port::mach_port_deallocate,
    mach_types::host_t,
    message::mach_msg_type_number_t,
    traps::mach_task_self,
    vm_page_size::vm_page_size,
    vm_statistics::vm_statistics64,
    vm_types::integer_t,
};

use super::{command_stdout, HardwareInfo, VmStats};

const SYSCTL_NAMES: [&str; 11] = [
    "machdep.cpu.brand_string",
    "hw.model",
    "kern.hv_vmm_present",
    "hw.memsize",
    "hw.physicalcpu",
    "hw.logicalcpu",
    "hw.perflevel0.physicalcpu",
    "hw.perflevel1.physicalcpu",
    "hw.cputype",
    "kern.osproductversion",
    "kern.osversion",
];

/// `HOST_VM_INFO64` of `<mach/host_info.h>`, which mach2 does not declare.
const HOST_VM_INFO64: i32 = 4;

unsafe extern "C" {
    fn host_statistics64(
        host: host_t,
        flavor: i32,
        info: *mut integer_t,
        count: *mut mach_msg_type_number_t,
    ) -> kern_return_t;
}

pub(super) fn probe() -> HardwareInfo {
    // Intel Macs lack the perflevel names: sysctl then fails but still prints the others.
    let sysctl = command_stdout("/usr/sbin/sysctl", &SYSCTL_NAMES).unwrap_or_default();
    let ioreg = command_stdout("/usr/sbin/ioreg", &["-rc", "AGXAccelerator", "-d", "1"]).unwrap_or_default();
    HardwareInfo { vm_stats: vm_stats(), ..HardwareInfo::from_macos(&sysctl, &ioreg) }
}

fn vm_stats() -> Option<VmStats> {
    let mut stats = vm_statistics64::default();
    let mut count = HOST_VM_INFO64_COUNT;
    // SAFETY: `stats` is a writable vm_statistics64 and `count` its size in integer_t units, as
    // host_statistics64 requires; the host port from mach_host_self is released after use.
    let (status, page_size) = unsafe {
        let host = mach_host_self();
        let status = host_statistics64(host, HOST_VM_INFO64, (&raw mut stats).cast(), &mut count);
        mach_port_deallocate(mach_task_self(), host);
        (status, vm_page_size as u64)
    };
    if status != KERN_SUCCESS {
        return None;
    }
    let bytes = |pages: u32| u64::from(pages) * page_size;
    Some(VmStats {
        page_size_bytes: page_size,
        free_bytes: bytes(stats.free_count),
        active_bytes: bytes(stats.active_count),
        inactive_bytes: bytes(stats.inactive_count),
        wired_bytes: bytes(stats.wire_count),
        compressed_bytes: bytes(stats.compressor_page_count),
    })
}
