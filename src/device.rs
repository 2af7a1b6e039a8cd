//! The device layer: which MLX is loaded (version, backend), which device computes, and MLX's
//! memory counters. Call [`select`] before any other MLX work: it refuses a `libmlx` of the wrong
//! version, which would otherwise fail later in obscure ways.
use std::fmt;

use mlx_rs::{memory, Device as MlxDevice};
use serde::Serialize;

use crate::{
    choice::choice,
    error::{Error, Result},
};

/// The MLX release this binary was built against (`MLXBENCH_MLX_VERSION` at build time, see
/// `mlx-sys/build.rs`); any other `libmlx` is refused: the C++ ABI changes in every patch release.
pub const BUILT_MLX_VERSION: &str = env!("MLXBENCH_BUILT_MLX_VERSION");

/// The platform tag of the MLX wheel this binary was built against (`macosx_26_0_arm64`,
/// `manylinux_2_35_x86_64`), or `local` for an `MLX_DIR` that is not an unpacked wheel. On a Mac
/// it tells MLX builds of one version apart: only the `macosx_26_0` wheel has the M5 kernels.
pub const BUILT_MLX_BUILD: &str = env!("MLXBENCH_BUILT_MLX_BUILD");

/// Where MLX computes, as chosen by `--device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Cpu,
    Gpu,
}

/// The MLX backend doing the work: the CPU, or the GPU through CUDA or Metal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
    Cuda,
    Metal,
}

choice!(DeviceKind {
    Cpu => ("cpu", "MLX's CPU backend"),
    Gpu => ("gpu", "MLX's GPU backend: CUDA on Linux, Metal on macOS"),
});

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
            Backend::Metal => "metal",
        })
    }
}

/// What [`select`] settled on; goes into every report.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    pub device: DeviceKind,
    pub backend: Backend,
    pub mlx_version: String,
    /// [`BUILT_MLX_BUILD`].
    pub mlx_build: String,
}

/// MLX's allocator counters, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemorySnapshot {
    pub active_bytes: u64,
    pub cache_bytes: u64,
    pub peak_bytes: u64,
}

/// The version of the `libmlx` actually loaded (not the one built against).
pub fn mlx_version() -> String {
    // SAFETY: mlx_string_new/mlx_version/mlx_string_data/mlx_string_free is mlx-c's documented
    // life cycle of an out-string; the data pointer is read before the string is freed.
    unsafe {
        let mut s = mlx_sys::mlx_string_new();
        let text = if mlx_sys::mlx_version(&mut s) == 0 {
            let ptr = mlx_sys::mlx_string_data(s);
            if ptr.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(ptr).to_string_lossy().into_owned()
            }
        } else {
            String::new()
        };
        mlx_sys::mlx_string_free(s);
        text
    }
}

/// Accepts exactly [`BUILT_MLX_VERSION`].
pub fn ensure_version(found: &str) -> Result<()> {
    if found == BUILT_MLX_VERSION {
        Ok(())
    } else {
        Err(Error::MlxVersion { found: found.to_string(), required: BUILT_MLX_VERSION })
    }
}

fn available(probe: unsafe extern "C" fn(*mut bool) -> std::os::raw::c_int) -> bool {
    let mut yes = false;
    // SAFETY: the probe writes one bool through the pointer we own.
    unsafe { probe(&mut yes) == 0 && yes }
}

/// The GPU backend compiled into the loaded `libmlx`, if any.
pub fn gpu_backend() -> Option<Backend> {
    if available(mlx_sys::mlx_metal_is_available) {
        Some(Backend::Metal)
    } else if available(mlx_sys::mlx_cuda_is_available) {
        Some(Backend::Cuda)
    } else {
        None
    }
}

/// Checks the loaded MLX and makes `kind` MLX's default device for this process.
pub fn select(kind: DeviceKind) -> Result<DeviceInfo> {
    let mlx_version = mlx_version();
    ensure_version(&mlx_version)?;
    let backend = match kind {
        DeviceKind::Cpu => Backend::Cpu,
        DeviceKind::Gpu => gpu_backend().ok_or_else(|| Error::NoGpu { mlx_version: mlx_version.clone() })?,
    };
    MlxDevice::set_default(&match kind {
        DeviceKind::Cpu => MlxDevice::cpu(),
        DeviceKind::Gpu => MlxDevice::gpu(),
    });
    Ok(DeviceInfo { device: kind, backend, mlx_version, mlx_build: BUILT_MLX_BUILD.to_string() })
}

/// The kind of MLX's default device now (what [`select`] last chose).
pub fn current_kind() -> Result<DeviceKind> {
    Ok(match MlxDevice::try_default()?.get_type()? {
        mlx_rs::DeviceType::Cpu => DeviceKind::Cpu,
        mlx_rs::DeviceType::Gpu => DeviceKind::Gpu,
    })
}

/// The device `--device` means when not given: the GPU where this MLX has one.
pub fn default_kind() -> DeviceKind {
    if gpu_backend().is_some() {
        DeviceKind::Gpu
    } else {
        DeviceKind::Cpu
    }
}

/// Reads MLX's active, cache and peak memory.
pub fn memory_snapshot() -> Result<MemorySnapshot> {
    Ok(MemorySnapshot {
        active_bytes: memory::active_memory()? as u64,
        cache_bytes: memory::cache_memory()? as u64,
        peak_bytes: memory::peak_memory()? as u64,
    })
}

/// Returns MLX's cached (freed but kept) buffers to the system, so a trial starts from the same
/// allocator state as the one before it.
pub fn clear_cache() -> Result<()> {
    Ok(memory::clear_cache()?)
}

/// A size from MLX's description of the default device (`device_info`), when it has `key`:
/// `max_recommended_working_set_size` and `memory_size` on Metal, `free_memory` and
/// `total_memory` on CUDA (the CPU has no memory keys).
pub fn device_info_size(key: &str) -> Option<u64> {
    let key = std::ffi::CString::new(key).ok()?;
    // SAFETY: mlx-c's documented life cycle: new objects are filled by the getters and freed
    // here whatever they returned; the key outlives the calls.
    unsafe {
        let mut dev = mlx_sys::mlx_device_new();
        let mut info = mlx_sys::mlx_device_info_new();
        let mut value = 0usize;
        let found = mlx_sys::mlx_get_default_device(&mut dev) == 0
            && mlx_sys::mlx_device_info_get(&mut info, dev) == 0
            && mlx_sys::mlx_device_info_get_size(&mut value, info, key.as_ptr()) == 0;
        mlx_sys::mlx_device_info_free(info);
        mlx_sys::mlx_device_free(dev);
        found.then_some(value as u64)
    }
}

/// Sets MLX's memory limit (bytes): above it the allocator frees its buffer cache and waits for
/// running work before it allocates more. Returns the previous limit.
pub fn set_memory_limit(bytes: u64) -> Result<u64> {
    Ok(memory::set_memory_limit(bytes as usize)? as u64)
}

/// Starts a new peak-memory window (MLX's peak is otherwise process-wide).
pub fn reset_peak_memory() -> Result<()> {
    Ok(memory::reset_peak_memory()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_check_names_both_versions() {
        assert!(ensure_version(BUILT_MLX_VERSION).is_ok());
        let other = if BUILT_MLX_VERSION == "0.32.2" { "0.32.4" } else { "0.32.2" };
        let err = ensure_version(other).unwrap_err().to_string();
        assert!(err.contains(other) && err.contains(BUILT_MLX_VERSION), "{err}");
    }
}
