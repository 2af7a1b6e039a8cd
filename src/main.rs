//! The `mlxbench` command line.
use anyhow::Result;
use clap::{Parser, Subcommand};
use mlxbench::device::{self, DeviceKind};

/// Microbenchmarks for large language models on Apple's MLX.
#[derive(Debug, Parser)]
#[command(name = "mlxbench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the loaded MLX (version, backend), the selected device and MLX's memory counters.
    Info {
        /// Device to select: gpu (CUDA or Metal, when this MLX has one) or cpu.
        #[arg(long, value_enum)]
        device: Option<DeviceKind>,
        /// Print JSON instead of key=value lines.
        #[arg(long)]
        json: bool,
    },
    /// Check MLX on the device: a bf16 matmul and a 4-bit quantized matmul against float32
    /// references, with their speed. Exits non-zero when a result is off.
    Selftest {
        /// Device to run on (default: gpu when this MLX has one, else cpu).
        #[arg(long, value_enum)]
        device: Option<DeviceKind>,
        /// Side of the square matrices (default: 4096 on a GPU, 256 on the CPU).
        #[arg(long, value_parser = clap::value_parser!(i32).range(64..=32768))]
        size: Option<i32>,
        /// Timed repeats per kernel (the median is reported).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
        repeats: u64,
    },
}

fn warn_debug_build() {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build of mlxbench; its timings are meaningless. \
             Build with --release."
        );
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Info { device, json } => {
            let info = device::select(device.unwrap_or_else(device::default_kind))?;
            let memory = device::memory_snapshot()?;
            if json {
                let value = serde_json::json!({ "device": info, "memory": memory });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!(
                    "mlx_version={} backend={} device={} gpu_backend={} active_bytes={} cache_bytes={} peak_bytes={}",
                    info.mlx_version,
                    info.backend,
                    info.device,
                    device::gpu_backend().map_or("none".to_string(), |b| b.to_string()),
                    memory.active_bytes,
                    memory.cache_bytes,
                    memory.peak_bytes
                );
            }
        }
        Command::Selftest { device, size, repeats } => {
            warn_debug_build();
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
        }
    }
    Ok(())
}
