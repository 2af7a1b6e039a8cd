//! Units, in one place. Sizes are decimal (1 GB = 10^9 bytes) unless a name says GiB (2^30).
/// Bytes as decimal gigabytes, the unit reports use.
pub fn gigabytes(bytes: f64) -> f64 {
    bytes / 1e9
}

/// Bytes in decimal units a reader takes in at a glance: `1.139 GB`, `3.4 MB`, `81.9 kB`.
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.3} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.1} kB", b / 1e3)
    }
}

/// A count of parameters as model cards write it: `30.53 B`, `494.0 M`, `81.9 k`.
pub fn human_count(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} M", n / 1e6)
    } else {
        format!("{:.1} k", n / 1e3)
    }
}

/// Bytes to four significant digits in decimal units, for tables of changes: `3.347 MB`.
pub fn significant_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{} {}", significant(value), UNITS[unit])
}

/// Memory as hardware is sold by (2^30 bytes), labelled so: `192.0 GiB`.
pub fn gibibytes(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// A time in nanoseconds to four significant digits in ns, µs, ms or s, as Criterion prints:
/// `11.26 ms`.
pub fn significant_time(ns: f64) -> String {
    let (value, unit) = match ns {
        ns if ns < 1e3 => (ns, "ns"),
        ns if ns < 1e6 => (ns / 1e3, "µs"),
        ns if ns < 1e9 => (ns / 1e6, "ms"),
        ns => (ns / 1e9, "s"),
    };
    format!("{} {unit}", significant(value))
}

/// Four significant digits for values below 10,000, as Criterion prints.
pub fn significant(x: f64) -> String {
    let digits = match x.abs() {
        a if a < 10.0 => 3,
        a if a < 100.0 => 2,
        a if a < 1000.0 => 1,
        _ => 0,
    };
    format!("{x:.digits$}")
}

/// A size as a user writes it: bytes (`1500000`) or a number with a unit, decimal (`kB`, `MB`,
/// `GB`, `TB`) or binary (`KiB`, `MiB`, `GiB`, `TiB`), case-insensitive, e.g. `2GB`, `1.5 GiB`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a size such as 2GB, 512MiB or 1000000"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => (1u64 << 30) as f64,
        "tib" => (1u64 << 40) as f64,
        other => return Err(format!("unknown unit {other:?} in {text:?}: use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB")),
    };
    let bytes = value * scale;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{text:?} is not a size of at least one byte"));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        assert_eq!(parse_bytes("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("1.5 GiB"), Ok(1_610_612_736));
        assert_eq!(parse_bytes("512mib"), Ok(536_870_912));
        assert_eq!(parse_bytes("556MB"), Ok(556_000_000));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert!(parse_bytes("2 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("GB").is_err() && parse_bytes("0").is_err() && parse_bytes("").is_err());
    }
}
