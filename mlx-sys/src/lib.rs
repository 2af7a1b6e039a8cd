//! Raw bindings to mlx-c 0.7.0, API-compatible with crates.io `mlx-sys` 0.7.0 so that `mlx-rs`
//! 0.33 builds unchanged. See `build.rs` for how mlx-c and MLX are found and built.
#![allow(non_upper_case_globals)]
#![allow(non_camel_case_types)]
#![allow(non_snake_case)]
#![allow(clippy::all)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// IEEE half-precision storage, as `mlx-rs` expects it from upstream's bindings
/// (a tuple struct whose `.0` is the raw bits). Only ever passed by pointer.
#[repr(transparent)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct float16_t(pub u16);

/// `mlx-rs` seeds its default random state from this macOS call; elsewhere we provide it.
/// It only seeds a PRNG, so the wall clock in nanoseconds serves.
#[cfg(not(target_vendor = "apple"))]
#[no_mangle]
pub extern "C" fn mach_approximate_time() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
