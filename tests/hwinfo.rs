//! Hardware information: each parser on captured (or format-faithful) outputs in
//! fixtures/hwinfo/, unknown fields instead of panics on bad input, the summary line, the
//! bandwidth table and utilisation, and a live `detect()` on this machine.
use mlxbench::{
    device::DeviceKind,
    hwinfo::{self, CpuInfo, GpuInfo, HardwareInfo, VmStats},
};

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/hwinfo/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn m2_ultra() -> HardwareInfo {
    HardwareInfo::from_macos(&fixture("sysctl-m2-ultra.txt"), &fixture("ioreg-m2-ultra.txt"))
}

fn linux(nvidia_smi: &str) -> HardwareInfo {
    HardwareInfo::from_linux(
        &fixture("cpuinfo-epyc-2vcpu.txt"),
        &fixture("meminfo-epyc-2vcpu.txt"),
        nvidia_smi,
    )
}

const MIB: u64 = 1024 * 1024;

fn nvidia(name: &str, memory_mib: u64) -> GpuInfo {
    GpuInfo {
        name: name.into(),
        memory_bytes: Some(memory_mib * MIB),
        driver: Some("580.159.04".into()),
        cores: None,
    }
}

#[test]
fn macos_sysctl_and_ioreg_give_the_chip_its_cores_and_memory() {
    let apple_gpu = |name: &str, cores| GpuInfo {
        name: name.into(),
        memory_bytes: None,
        driver: None,
        cores: Some(cores),
    };
    assert_eq!(
        m2_ultra(),
        HardwareInfo {
            os: "macOS 14.5 (23F79)".into(),
            arch: "aarch64".into(),
            cpu_model: Some("Apple M2 Ultra".into()),
            cpu_cores: Some(24),
            cpu_threads: Some(24),
            performance_cores: Some(16),
            efficiency_cores: Some(8),
            memory_bytes: Some(206_158_430_208),
            gpus: vec![apple_gpu("Apple M2 Ultra", 76)],
            vm_stats: None,
            virtual_machine: Some(false),
        }
    );
    let m1 = HardwareInfo::from_macos(&fixture("sysctl-m1.txt"), &fixture("ioreg-m1.txt"));
    assert_eq!(m1.os, "macOS 13.6.7 (22G720)");
    assert_eq!((m1.cpu_cores, m1.performance_cores, m1.efficiency_cores), (Some(8), Some(4), Some(4)));
    assert_eq!(m1.memory_bytes, Some(17_179_869_184));
    assert_eq!(m1.gpus, vec![apple_gpu("Apple M1", 8)]);
    assert_eq!(m1.virtual_machine, Some(false));

    let sysctl = hwinfo::parse_sysctl(&fixture("sysctl-m2-ultra.txt"));
    assert_eq!(sysctl["hw.osenvironment"], "");
    assert_eq!(sysctl["kern.boottime"], "{ sec = 1717400000, usec = 512345 } Mon Jun  3 09:33:20 2024");
}

#[test]
fn summary_lines() {
    assert_eq!(m2_ultra().summary(), "Apple M2 Ultra | 192.0 GiB | 24 CPU (16P+8E) | 76 GPU cores");
    let m1 = HardwareInfo::from_macos(&fixture("sysctl-m1.txt"), &fixture("ioreg-m1.txt"));
    assert_eq!(m1.summary(), "Apple M1 | 16.0 GiB | 8 CPU (4P+4E) | 8 GPU cores");
    assert_eq!(
        linux(&fixture("nvidia-smi-h100.csv")).summary(),
        "AMD EPYC | 23.5 GiB | 2 CPU | NVIDIA H100 80GB HBM3 (79.6 GiB, driver 580.159.04)"
    );
    assert_eq!(linux("").summary(), "AMD EPYC | 23.5 GiB | 2 CPU");
    let eight_h200 = fixture("nvidia-smi-h200.csv").repeat(8);
    assert_eq!(
        linux(&eight_h200).summary(),
        "AMD EPYC | 23.5 GiB | 2 CPU | 8x NVIDIA H200 (140.4 GiB, driver 580.159.04)"
    );
    let hyperthreaded = HardwareInfo { cpu_cores: Some(16), cpu_threads: Some(32), ..linux("") };
    assert_eq!(hyperthreaded.summary(), "AMD EPYC | 23.5 GiB | 16 CPU (32 threads)");
    assert_eq!(HardwareInfo::default().summary(), "unknown CPU | unknown memory | unknown cores");
}

/// GitHub's `macos-14` runners are virtual M1s: the chip reads "Apple M1 (Virtual)" and ioreg
/// has no AGXAccelerator (its GPU is paravirtualized). hwinfo says so and rates no bandwidth.
#[test]
fn a_virtual_mac_says_so_and_gets_no_peak_bandwidth() {
    let sysctl = fixture("sysctl-m1-virtual.txt");
    let vm = HardwareInfo::from_macos(&sysctl, "");
    assert_eq!(vm.virtual_machine, Some(true));
    assert_eq!(vm.cpu_model.as_deref(), Some("Apple M1 (Virtual)"));
    assert_eq!(vm.os, "macOS 14.7.5 (23H527)");
    assert_eq!((vm.cpu_cores, vm.performance_cores, vm.efficiency_cores), (Some(3), Some(3), None));
    assert_eq!(vm.memory_bytes, Some(7_516_192_768));
    assert!(vm.gpus.is_empty());
    assert_eq!(vm.summary(), "Apple M1 (Virtual) | 7.0 GiB | 3 CPU | virtual machine");
    assert_eq!(vm.peak_bandwidth_gbps(DeviceKind::Gpu), None);
    assert_eq!(vm.peak_bandwidth_gbps(DeviceKind::Cpu), None);
    let json = serde_json::to_value(&vm).unwrap();
    assert_eq!(json["virtual_machine"], serde_json::Value::Bool(true));

    // Any one sign is enough: the hypervisor flag under a host-like chip name and model (a VM
    // that passes the host's name through), or the name alone when sysctl lacks the flag.
    let host_named = sysctl.replace("Apple M1 (Virtual)", "Apple M1").replace("VirtualMac2,1", "MacBookPro17,1");
    let vm = HardwareInfo::from_macos(&host_named, &fixture("ioreg-m1.txt"));
    assert_eq!((vm.virtual_machine, vm.peak_bandwidth_gbps(DeviceKind::Gpu)), (Some(true), None));
    let bare = HardwareInfo::from_macos(&host_named.replace("kern.hv_vmm_present: 1", "kern.hv_vmm_present: 0"), "");
    assert_eq!((bare.virtual_machine, bare.peak_bandwidth_gbps(DeviceKind::Gpu)), (Some(false), Some(68.25)));
    let no_flag = HardwareInfo::from_macos(&sysctl.replace("kern.hv_vmm_present: 1\n", ""), "");
    assert_eq!(no_flag.virtual_machine, Some(true));
    let only_model = sysctl.replace("kern.hv_vmm_present: 1\n", "").replace("Apple M1 (Virtual)", "Apple M1");
    assert_eq!(HardwareInfo::from_macos(&only_model, "").virtual_machine, Some(true));

    // Records written before the field existed still read, as unknown.
    let mut old = serde_json::to_value(m2_ultra()).unwrap();
    old.as_object_mut().unwrap().remove("virtual_machine");
    let read: HardwareInfo = serde_json::from_value(old).unwrap();
    assert_eq!(read.virtual_machine, None);
    assert_eq!(linux("").virtual_machine, None, "not probed on Linux");
}

#[test]
fn vm_stat_pages_become_bytes() {
    let page = 16_384;
    assert_eq!(
        hwinfo::parse_vm_stat(&fixture("vm_stat-m2-ultra.txt")),
        Some(VmStats {
            page_size_bytes: page,
            free_bytes: 5_812_345 * page,
            active_bytes: 3_021_456 * page,
            inactive_bytes: 2_987_654 * page,
            wired_bytes: 512_345 * page,
            compressed_bytes: 123_456 * page,
        })
    );
}

#[test]
fn linux_cpuinfo_meminfo_and_nvidia_smi() {
    let cpu = |model: &str, n| CpuInfo { model: Some(model.into()), cores: Some(n), threads: Some(n) };
    assert_eq!(hwinfo::parse_cpuinfo(&fixture("cpuinfo-epyc-2vcpu.txt")), cpu("AMD EPYC", 2));
    assert_eq!(
        hwinfo::parse_cpuinfo(&fixture("cpuinfo-xeon-16core.txt")),
        cpu("Intel(R) Xeon(R) Processor", 16)
    );
    // Two hyperthreads on each of two cores.
    let smt = (0..4)
        .map(|i| format!("processor\t: {i}\nmodel name\t: X\nphysical id\t: 0\ncore id\t\t: {}\n\n", i / 2));
    let smt: String = smt.collect();
    assert_eq!(
        hwinfo::parse_cpuinfo(&smt),
        CpuInfo { model: Some("X".into()), cores: Some(2), threads: Some(4) }
    );
    assert_eq!(hwinfo::parse_meminfo_total(&fixture("meminfo-epyc-2vcpu.txt")), Some(24_684_096 * 1024));

    assert_eq!(
        hwinfo::parse_nvidia_smi(&fixture("nvidia-smi-h100.csv")),
        vec![nvidia("NVIDIA H100 80GB HBM3", 81_559)]
    );
    let both = fixture("nvidia-smi-h100.csv") + &fixture("nvidia-smi-h200.csv");
    assert_eq!(
        hwinfo::parse_nvidia_smi(&both),
        vec![nvidia("NVIDIA H100 80GB HBM3", 81_559), nvidia("NVIDIA H200", 143_771)]
    );
}

#[test]
fn missing_or_garbled_inputs_leave_fields_unknown() {
    let garbled = "garbage\nhw.memsize: lots\n\u{fffd}: \nmachdep.cpu.brand_string: \n";
    let info = HardwareInfo::from_macos(garbled, "+-o AGXAcceleratorG13G\n  \"gpu-core-count\" = many\n");
    assert_eq!(info, HardwareInfo::default());
    assert_eq!(HardwareInfo::from_linux("", "", ""), HardwareInfo::default());
    assert_eq!(hwinfo::parse_ioreg_gpu("no accelerator here", Some("Apple M1")), None);
    // Without a model, the GPU is named after the chip, and the summary names it once.
    let cores_only = "+-o AGXAcceleratorG13G\n    {\n      \"gpu-core-count\" = 8\n    }\n";
    let m1 = HardwareInfo::from_macos(&fixture("sysctl-m1.txt"), cores_only);
    assert_eq!(m1.summary(), "Apple M1 | 16.0 GiB | 8 CPU (4P+4E) | 8 GPU cores");

    // A truncated vm_stat, or one without its page size, is no reading at all.
    let vm_stat = fixture("vm_stat-m2-ultra.txt");
    assert_eq!(hwinfo::parse_vm_stat(&vm_stat.replace("Pages occupied by compressor", "Pages gone")), None);
    assert_eq!(hwinfo::parse_vm_stat(&vm_stat.replace("page size of 16384", "page size of ?")), None);

    // Arm kernels print no model name and no core ids.
    let arm = "processor\t: 0\nBogoMIPS\t: 2000.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd4f\n\n\
               processor\t: 1\nBogoMIPS\t: 2000.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd4f\n";
    assert_eq!(hwinfo::parse_cpuinfo(arm), CpuInfo { model: None, cores: None, threads: Some(2) });
    assert_eq!(hwinfo::parse_meminfo_total("MemTotal:  lots kB\n"), None);

    assert!(hwinfo::parse_nvidia_smi("No devices were found\n").is_empty());
    let failed = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. \
                  Make sure that the latest NVIDIA driver is installed and running.\n";
    assert!(hwinfo::parse_nvidia_smi(failed).is_empty());
    assert_eq!(
        hwinfo::parse_nvidia_smi("NVIDIA H100 PCIe, [N/A], [N/A]\n"),
        vec![GpuInfo { name: "NVIDIA H100 PCIe".into(), memory_bytes: None, driver: None, cores: None }]
    );
}

#[test]
fn peak_bandwidth_by_chip_and_gpu_name() {
    let m2 = m2_ultra();
    assert_eq!(m2.peak_bandwidth_gbps(DeviceKind::Gpu), Some(800.0));
    assert_eq!(m2.peak_bandwidth_gbps(DeviceKind::Cpu), Some(800.0), "unified memory");
    let h100 = linux(&fixture("nvidia-smi-h100.csv"));
    assert_eq!(h100.peak_bandwidth_gbps(DeviceKind::Gpu), Some(3350.0));
    assert_eq!(h100.peak_bandwidth_gbps(DeviceKind::Cpu), None);
    assert_eq!(linux(&fixture("nvidia-smi-h200.csv")).peak_bandwidth_gbps(DeviceKind::Gpu), Some(4800.0));
    assert_eq!(linux("").peak_bandwidth_gbps(DeviceKind::Gpu), None);

    for (name, gbps) in [
        ("NVIDIA H100 80GB HBM3", Some(3350.0)),
        ("NVIDIA H100 PCIe", Some(2000.0)),
        ("NVIDIA H100 NVL", Some(3900.0)),
        ("NVIDIA H200", Some(4800.0)),
        ("NVIDIA H200 NVL", Some(4800.0)),
        ("NVIDIA GH200 480GB", None),
        ("NVIDIA A100-SXM4-80GB", None),
    ] {
        assert_eq!(hwinfo::nvidia_peak_gbps(name), gbps, "{name}");
    }
    for (chip, gpu_cores, gbps) in [
        ("Apple M1", None, Some(68.25)),
        ("Apple M1 Pro", None, Some(200.0)),
        ("Apple M2 Ultra", Some(60), Some(800.0)),
        ("Apple M3 Max", Some(30), Some(300.0)),
        ("Apple M3 Max", Some(40), Some(400.0)),
        ("Apple M3 Max", None, None),
        ("Apple M3 Ultra", None, Some(819.0)),
        ("Apple M4 Pro", None, Some(273.0)),
        ("Apple M4 Max", Some(32), Some(410.0)),
        ("Apple M4 Max", Some(40), Some(546.0)),
        ("Apple M5", None, Some(153.0)),
        ("Apple M9", None, None),
        ("Apple M1 (Virtual)", Some(8), None),
        ("AMD EPYC", None, None),
    ] {
        assert_eq!(hwinfo::apple_peak_gbps(chip, gpu_cores), gbps, "{chip} {gpu_cores:?}");
    }
}

#[test]
fn detect_reads_this_machine() {
    let info = hwinfo::detect();
    assert!(info.cpu_model.as_deref().is_some_and(|m| !m.is_empty()), "{info:?}");
    assert!(info.memory_bytes.is_some_and(|b| b > 0), "{info:?}");
    assert!(!info.os.is_empty() && !info.arch.is_empty(), "{info:?}");
    let json = serde_json::to_string(&info).unwrap();
    assert_eq!(serde_json::from_str::<HardwareInfo>(&json).unwrap(), info);
    println!("{}\n{json}", info.summary());
}
