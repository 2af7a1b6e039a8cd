//! MLX's peak-memory counter, which every benchmark trial resets. Its own test binary: the counter
//! is process-wide, so no other test may allocate meanwhile.
use mlx_rs::Array;
use mlxbench::device::{self, DeviceKind};

#[test]
fn peak_memory_rises_with_an_allocation_and_falls_after_reset() {
    device::select(DeviceKind::Cpu).unwrap();
    let bytes: u64 = 64 << 20;
    device::reset_peak_memory().unwrap();
    let before = device::memory_snapshot().unwrap();
    assert!(before.peak_bytes < bytes, "peak {} before any allocation", before.peak_bytes);

    let big = Array::ones::<f32>(&[(bytes / 4) as i32]).unwrap();
    big.eval().unwrap();
    let during = device::memory_snapshot().unwrap();
    assert!(during.peak_bytes >= bytes, "peak {} after a {bytes}-byte array", during.peak_bytes);
    assert!(during.active_bytes >= bytes, "active {} while it is alive", during.active_bytes);

    drop(big);
    device::reset_peak_memory().unwrap();
    let after = device::memory_snapshot().unwrap();
    assert!(after.peak_bytes < bytes, "peak {} after the array was freed and the peak reset", after.peak_bytes);
    assert!(after.active_bytes < bytes, "active {} after the array was freed", after.active_bytes);
}
