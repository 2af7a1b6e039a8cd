//! KV caches on their own: offsets, growth in steps, sizes in bytes, and a quantized round trip.
mod common;

use common::host_f32 as host;
use mlx_rs::{ops::dequantize, random, Array};
use mlxbench::{
    cache::{Fetched, KvCache, KvCacheOptions, PlainCache, STEP},
    device::{self, DeviceKind},
};

fn kv(len: i32, seed: u64) -> Array {
    let key = random::key(seed).unwrap();
    random::normal::<f32>(&[1, 2, len, 64], None, None, &key).unwrap()
}


#[test]
fn plain_cache_grows_in_steps_and_returns_what_was_written() {
    device::select(DeviceKind::Cpu).unwrap();
    let mut cache = KvCache::Plain(PlainCache::default());
    let (k1, k2) = (kv(10, 1), kv(1, 2));
    cache.update_and_fetch(&k1, &k1).unwrap();
    let Fetched::Dense { keys, .. } = cache.update_and_fetch(&k2, &k2).unwrap() else { panic!("dense") };
    assert_eq!((cache.offset(), keys.dim(2)), (11, 11));
    let want: Vec<f32> = (0..2).flat_map(|h| {
        let (a, b) = (host(&k1), host(&k2));
        a[h * 640..(h + 1) * 640].iter().chain(&b[h * 64..(h + 1) * 64]).copied().collect::<Vec<_>>()
    }).collect();
    assert_eq!(host(&keys), want);
    // One step of capacity, keys and values, 2 heads × 64 dims of float32.
    assert_eq!(cache.nbytes(), 2 * (STEP as usize) * 2 * 64 * 4);
}

#[test]
fn quantized_cache_round_trip_is_close_and_smaller() {
    device::select(DeviceKind::Cpu).unwrap();
    let options = KvCacheOptions { kv_bits: Some(8), ..KvCacheOptions::default() };
    let mut cache = options.new_caches(1).pop().unwrap();
    let k = kv(20, 3);
    cache.update_and_fetch(&k, &k).unwrap();
    let plain_bytes = cache.nbytes();
    cache.maybe_quantize(&options).unwrap();
    assert!(matches!(cache, KvCache::Quantized(_)));
    let extra = kv(1, 4);
    let Fetched::Quantized { keys, group_size, bits, .. } = cache.update_and_fetch(&extra, &extra).unwrap() else {
        panic!("quantized")
    };
    assert_eq!((cache.offset(), group_size, bits), (21, 64, 8));
    let back = host(&dequantize(&keys.data, &keys.scales, &keys.biases, group_size, bits).unwrap());
    let orig: Vec<f32> = (0..2).flat_map(|h| {
        let (a, b) = (host(&k), host(&extra));
        a[h * 1280..(h + 1) * 1280].iter().chain(&b[h * 64..(h + 1) * 64]).copied().collect::<Vec<_>>()
    }).collect();
    let worst = back.iter().zip(&orig).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst < 0.05, "8-bit round trip error {worst}");
    assert!(cache.nbytes() * 3 < plain_bytes, "{} bytes quantized vs {plain_bytes} plain", cache.nbytes());
}

#[test]
fn rotating_cache_never_holds_more_than_its_window() {
    device::select(DeviceKind::Cpu).unwrap();
    let options = KvCacheOptions { max_kv_size: Some(16), ..KvCacheOptions::default() };
    let mut cache = options.new_caches(1).pop().unwrap();
    cache.update_and_fetch(&kv(10, 5), &kv(10, 5)).unwrap();
    for i in 0..30 {
        let Fetched::Dense { keys, .. } = cache.update_and_fetch(&kv(1, 10 + i), &kv(1, 10 + i)).unwrap() else { panic!() };
        assert!(keys.dim(2) <= 16, "step {i}: {} keys", keys.dim(2));
    }
    assert_eq!(cache.offset(), 40);
}

/// Every bit width MLX quantizes to, with 128-wide heads (bits × 128 ÷ 32 words a row: 5 and 6
/// bits do not divide 32) and past the first growth step: the cache holds every token, and its
/// round trip is within half a quantization step of a group's range.
#[test]
fn quantized_cache_holds_every_bit_width_across_growth() {
    device::select(DeviceKind::Cpu).unwrap();
    let wide = |len: i32, seed: u64| {
        let key = random::key(seed).unwrap();
        random::normal::<f32>(&[1, 2, len, 128], None, None, &key).unwrap()
    };
    for bits in [2, 3, 4, 5, 6, 8] {
        let options = KvCacheOptions { kv_bits: Some(bits), ..KvCacheOptions::default() };
        let mut cache = options.new_caches(1).pop().unwrap();
        let first = wide(STEP - 2, 5);
        cache.update_and_fetch(&first, &first).unwrap();
        cache.maybe_quantize(&options).unwrap();
        let mut last = None;
        for i in 0..4 {
            let one = wide(1, 6 + i);
            last = Some(cache.update_and_fetch(&one, &one).unwrap());
        }
        let Some(Fetched::Quantized { keys, group_size, bits: got, .. }) = last else { panic!("{bits} bits: quantized") };
        assert_eq!((cache.offset(), got), (STEP + 2, bits), "{bits} bits");
        let back = dequantize(&keys.data, &keys.scales, &keys.biases, group_size, bits).unwrap();
        assert_eq!(back.shape(), [1, 2, STEP + 2, 128], "{bits} bits");
        let (back, orig) = (host(&back), host(&first));
        // The first token of head 0: a group's range of normal samples stays below 8.
        let worst = back[..128].iter().zip(&orig[..128]).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst < 4.0 / ((1 << bits) - 1) as f32, "{bits}-bit round trip error {worst}");
    }
}
