//! Published peak memory bandwidth of the chips we benchmark on, in GB/s (10^9 bytes per second),
//! looked up by the name the system reports (`Apple M2 Ultra`, `NVIDIA H100 80GB HBM3`).

/// Peak bandwidth of an Apple Silicon chip, by `machdep.cpu.brand_string`. The M3 Max and M4 Max
/// come in two memory configurations told apart by the GPU core count; without it they are `None`,
/// since a wrong peak would make a wrong utilisation.
pub fn apple_peak_gbps(chip: &str, gpu_cores: Option<u32>) -> Option<f64> {
    let gbps = match chip.trim().strip_prefix("Apple ")? {
        "M1" => 68.25,
        "M1 Pro" | "M2 Pro" => 200.0,
        "M1 Max" | "M2 Max" => 400.0,
        "M1 Ultra" | "M2 Ultra" => 800.0,
        "M2" | "M3" => 100.0,
        "M3 Pro" => 150.0,
        "M3 Max" => match gpu_cores? {
            30 => 300.0,
            40 => 400.0,
            _ => return None,
        },
        "M3 Ultra" => 819.0,
        "M4" => 120.0,
        "M4 Pro" => 273.0,
        "M4 Max" => match gpu_cores? {
            32 => 410.0,
            40 => 546.0,
            _ => return None,
        },
        "M5" => 153.0,
        _ => return None,
    };
    Some(gbps)
}

/// Peak bandwidth of an NVIDIA GPU, by the name `nvidia-smi` reports. Matched on whole words so
/// that a `GH200` is not taken for an `H200`.
pub fn nvidia_peak_gbps(name: &str) -> Option<f64> {
    let words: Vec<String> = name.split_whitespace().map(str::to_ascii_uppercase).collect();
    let has = |word: &str| words.iter().any(|w| w == word);
    if has("H200") {
        Some(4800.0)
    } else if has("H100") {
        // The SXM part reports itself as "NVIDIA H100 80GB HBM3"; other variants stay unknown.
        if has("PCIE") {
            Some(2000.0)
        } else if has("NVL") {
            Some(3900.0)
        } else if has("HBM3") || words.iter().any(|w| w.starts_with("SXM")) {
            Some(3350.0)
        } else {
            None
        }
    } else {
        None
    }
}
