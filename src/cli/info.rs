//! `mlxbench info`, `hwinfo` and `selftest`: what MLX is loaded, what the machine is, and whether
//! MLX computes correctly on the device.
use anyhow::Result;
use mlxbench::device::{self, DeviceKind};

use super::TextOrJson;

/// `mlxbench info`: the loaded MLX, the selected device and MLX's memory counters.
pub fn info(device: Option<DeviceKind>, format: TextOrJson) -> Result<()> {
    let info = device::select(device.unwrap_or_else(device::default_kind))?;
    let memory = device::memory_snapshot()?;
    if format == TextOrJson::Json {
        let value = serde_json::json!({ "device": info, "memory": memory });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "mlx_version={} mlx_build={} backend={} device={} gpu_backend={} active_bytes={} cache_bytes={} peak_bytes={}",
            info.mlx_version,
            info.mlx_build,
            info.backend,
            info.device,
            device::gpu_backend().map_or("none".to_string(), |b| b.to_string()),
            memory.active_bytes,
            memory.cache_bytes,
            memory.peak_bytes
        );
    }
    Ok(())
}

/// `mlxbench hwinfo`: the machine in one line, or every field as JSON.
pub fn hwinfo(format: TextOrJson) -> Result<()> {
    let info = mlxbench::hwinfo::detect();
    if format == TextOrJson::Json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("{}", info.summary());
    }
    Ok(())
}

/// `mlxbench selftest`: a bf16 and a 4-bit matmul against float32 references; fails when a
/// result is outside its tolerance.
pub fn selftest(device: Option<DeviceKind>, size: Option<i32>, repeats: u64) -> Result<()> {
    super::warn_debug_build();
    let info = device::select(device.unwrap_or_else(device::default_kind))?;
    let size = size.unwrap_or(match info.device {
        DeviceKind::Gpu => 4096,
        DeviceKind::Cpu => 256,
    });
    println!("mlx_version={} backend={} device={}", info.mlx_version, info.backend, info.device);
    let checks = mlxbench::selftest::run(size, repeats as usize)?;
    let mut failed = false;
    for c in &checks {
        failed |= !c.passed();
        println!(
            "{:<12} {}x{}x{}  rel_err={:.2e} (tol {:.0e}) {}  median={:.3} ms  {:.2} TFLOP/s",
            c.name,
            c.m,
            c.n,
            c.k,
            c.relative_error,
            c.tolerance,
            if c.passed() { "ok" } else { "FAILED" },
            c.median_seconds * 1e3,
            c.tflops
        );
    }
    let peak = device::memory_snapshot()?.peak_bytes;
    println!("peak_memory_bytes={peak}");
    if failed {
        anyhow::bail!("a kernel's result is outside its tolerance");
    }
    Ok(())
}
