//! What the GPU did during a trial, where the platform tells: on NVIDIA, NVML (through
//! `nvml-wrapper`, which loads the driver's library at run time, so a machine without one simply
//! has no telemetry) gives the energy counter, clocks, temperature, utilisation, clock-event
//! (throttle) reasons and the time held back by power or thermal limits. The trial's energy per
//! generated token follows. Elsewhere every field stays empty: is a slow trial the machine or our
//! measurement? This says what the GPU was doing.
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One trial's GPU telemetry (NVIDIA only); each field `None` where NVML does not tell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuTelemetry {
    /// Energy the GPU used from the trial's start to its end (NVML's total-energy counter), J.
    pub energy_j: Option<f64>,
    /// `energy_j` over the trial's wall time, W.
    pub mean_power_w: Option<f64>,
    /// SM and memory clocks at the end of the trial, MHz.
    pub sm_clock_mhz: Option<u32>,
    pub memory_clock_mhz: Option<u32>,
    /// GPU temperature at the end of the trial, °C.
    pub temperature_c: Option<u32>,
    /// NVML's GPU utilisation (share of its last sample period with a kernel running), %.
    pub utilisation_pct: Option<u32>,
    /// Clock-event (throttle) reasons active at the end of the trial, idle left out.
    pub throttle_reasons: Vec<String>,
    /// Time during the trial the GPU was held back by its power limit and by its thermal limit
    /// (NVML's violation counters), ms.
    pub power_limited_ms: Option<f64>,
    pub thermal_limited_ms: Option<f64>,
}

/// The names of NVML's clock-event reason bits (`nvmlClocksEventReason*`), idle left out: it is
/// not a throttle.
pub fn throttle_reason_names(bits: u64) -> Vec<String> {
    const REASONS: [(u64, &str); 8] = [
        (0x2, "applications_clocks_setting"),
        (0x4, "sw_power_cap"),
        (0x8, "hw_slowdown"),
        (0x10, "sync_boost"),
        (0x20, "sw_thermal_slowdown"),
        (0x40, "hw_thermal_slowdown"),
        (0x80, "hw_power_brake_slowdown"),
        (0x100, "display_clock_setting"),
    ];
    REASONS.iter().filter(|(bit, _)| bits & bit != 0).map(|(_, name)| name.to_string()).collect()
}

/// Joules per generated token: a trial's GPU energy over the tokens it generated (all sequences).
/// Prefill's energy is in it: it is the energy of producing those tokens from the prompt.
pub fn joules_per_token(energy_j: f64, tokens: usize) -> Option<f64> {
    (tokens > 0 && energy_j.is_finite()).then(|| energy_j / tokens as f64)
}

/// Counters at the start of a trial.
pub struct Mark {
    start: Instant,
    energy_mj: Option<u64>,
    power_ns: Option<u64>,
    thermal_ns: Option<u64>,
}

/// The GPU MLX computes on, watched through NVML.
pub struct GpuMonitor {
    #[cfg(target_os = "linux")]
    nvml: nvml_wrapper::Nvml,
    #[cfg(target_os = "linux")]
    index: u32,
}

#[cfg(target_os = "linux")]
impl GpuMonitor {
    /// NVML and the GPU CUDA calls device 0 (the first of `CUDA_VISIBLE_DEVICES`), or `None`
    /// when there is no NVIDIA driver or GPU.
    pub fn open() -> Option<Self> {
        let nvml = nvml_wrapper::Nvml::init().ok()?;
        let index = std::env::var("CUDA_VISIBLE_DEVICES")
            .ok()
            .and_then(|v| v.split(',').next()?.trim().parse().ok())
            .unwrap_or(0);
        nvml.device_by_index(index).ok()?;
        Some(Self { nvml, index })
    }

    fn device(&self) -> Option<nvml_wrapper::Device<'_>> {
        self.nvml.device_by_index(self.index).ok()
    }

    /// The GPU's free memory now, bytes (what a new process can still allocate there).
    pub fn free_memory_bytes(&self) -> Option<u64> {
        self.device()?.memory_info().ok().map(|m| m.free)
    }

    /// Reads the counters at the start of a trial.
    pub fn begin(&self) -> Mark {
        use nvml_wrapper::enum_wrappers::device::PerformancePolicy;
        let device = self.device();
        let violation = |policy| device.as_ref()?.violation_status(policy).ok().map(|v| v.violation_time);
        Mark {
            start: Instant::now(),
            energy_mj: device.as_ref().and_then(|d| d.total_energy_consumption().ok()),
            power_ns: violation(PerformancePolicy::Power),
            thermal_ns: violation(PerformancePolicy::Thermal),
        }
    }

    /// The telemetry of the trial that began at `mark`.
    pub fn end(&self, mark: Mark) -> GpuTelemetry {
        use nvml_wrapper::enum_wrappers::device::{Clock, PerformancePolicy, TemperatureSensor};
        let seconds = mark.start.elapsed().as_secs_f64();
        let Some(device) = self.device() else { return GpuTelemetry::default() };
        let energy_j = mark
            .energy_mj
            .zip(device.total_energy_consumption().ok())
            .map(|(start, end)| end.saturating_sub(start) as f64 / 1e3);
        let limited_ms = |start: Option<u64>, policy| {
            let end = device.violation_status(policy).ok()?.violation_time;
            Some(end.saturating_sub(start?) as f64 / 1e6)
        };
        GpuTelemetry {
            energy_j,
            mean_power_w: energy_j.filter(|_| seconds > 0.0).map(|j| j / seconds),
            sm_clock_mhz: device.clock_info(Clock::SM).ok(),
            memory_clock_mhz: device.clock_info(Clock::Memory).ok(),
            temperature_c: device.temperature(TemperatureSensor::Gpu).ok(),
            utilisation_pct: device.utilization_rates().ok().map(|u| u.gpu),
            throttle_reasons: device.current_throttle_reasons().map(|r| throttle_reason_names(r.bits())).unwrap_or_default(),
            power_limited_ms: limited_ms(mark.power_ns, PerformancePolicy::Power),
            thermal_limited_ms: limited_ms(mark.thermal_ns, PerformancePolicy::Thermal),
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl GpuMonitor {
    /// NVML is only looked for on Linux.
    pub fn open() -> Option<Self> {
        None
    }

    pub fn begin(&self) -> Mark {
        Mark { start: Instant::now(), energy_mj: None, power_ns: None, thermal_ns: None }
    }

    pub fn end(&self, _mark: Mark) -> GpuTelemetry {
        GpuTelemetry::default()
    }

    pub fn free_memory_bytes(&self) -> Option<u64> {
        None
    }
}
