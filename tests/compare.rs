//! The regression gate on hand-made Criterion trees: files in criterion 0.5.1's exact shapes
//! (`benchmark.json`, `sample.json`, `estimates.json`, `tukey.json`) in the folders Criterion
//! would use, plus our memory sidecar written by the library itself.
use std::path::{Path, PathBuf};

use mlxbench::gate::{
    compare, criterion_dir_for, find_benchmark_dir, make_filename_safe, saved_baselines, Comparison, CompareError,
    MemoryRecord, Metric, Row, Verdict, MEMORY_FILE,
};
use mlxbench::{
    choice::Choice,
    report::{Format, Printable},
};
use serde_json::json;

/// A benchmark as a bench target declares it.
struct Bench {
    group: &'static str,
    function: Option<&'static str>,
    value: Option<&'static str>,
    tokens: Option<u64>,
}

const PREFILL: Bench =
    Bench { group: "prefill", function: Some("tiny-llama-q4/kvnone"), value: Some("p128"), tokens: Some(128) };
const DECODE: Bench =
    Bench { group: "decode", function: Some("tiny-llama-q4/kv8"), value: Some("g32@d128"), tokens: Some(32) };
const TTFT: Bench = Bench { group: "ttft", function: Some("tiny-llama-q4/kv4"), value: Some("p128"), tokens: None };

impl Bench {
    fn full_id(&self) -> String {
        [Some(self.group), self.function, self.value].into_iter().flatten().collect::<Vec<_>>().join("/")
    }

    fn dir(&self) -> PathBuf {
        criterion_dir_for(self.group, self.function, self.value)
    }

    /// Writes Criterion's four files for one baseline: Linear sampling (iteration counts
    /// `d, 2d, ...`), sample `i` taking `per_iteration_ns[i]` per iteration.
    fn write(&self, root: &Path, baseline: &str, per_iteration_ns: &[f64]) -> PathBuf {
        let folder = root.join(self.dir()).join(baseline);
        std::fs::create_dir_all(&folder).unwrap();
        let iters: Vec<f64> = (1..=per_iteration_ns.len()).map(|i| (3 * i) as f64).collect();
        let times: Vec<f64> = iters.iter().zip(per_iteration_ns).map(|(n, t)| n * t).collect();
        let mean = per_iteration_ns.iter().sum::<f64>() / per_iteration_ns.len() as f64;
        let estimate = |point: f64| {
            json!({
                "confidence_interval": {"confidence_level": 0.95, "lower_bound": point * 0.99, "upper_bound": point * 1.01},
                "point_estimate": point,
                "standard_error": point * 0.005,
            })
        };
        let throughput = self.tokens.map(|n| json!({ "Elements": n }));
        let files = [
            (
                "benchmark.json",
                json!({
                    "group_id": self.group,
                    "function_id": self.function,
                    "value_str": self.value,
                    "throughput": throughput,
                    "full_id": self.full_id(),
                    "directory_name": self.dir().to_str().unwrap(),
                    "title": self.full_id(),
                }),
            ),
            ("sample.json", json!({ "sampling_mode": "Linear", "iters": iters, "times": times })),
            (
                "estimates.json",
                json!({
                    "mean": estimate(mean),
                    "median": estimate(mean),
                    "median_abs_dev": estimate(mean * 0.01),
                    "slope": estimate(mean),
                    "std_dev": estimate(mean * 0.01),
                }),
            ),
            ("tukey.json", json!([mean * 0.9, mean * 0.95, mean * 1.05, mean * 1.1])),
        ];
        for (name, value) in files {
            // Criterion writes compact JSON (serde_json::to_string).
            std::fs::write(folder.join(name), serde_json::to_string(&value).unwrap()).unwrap();
        }
        folder
    }

    fn write_memory(&self, root: &Path, baseline: &str, peaks: &[u64]) {
        let record = MemoryRecord {
            full_id: self.full_id(),
            peak_memory_bytes: peaks.to_vec(),
            kv_cache_bytes: 4 << 20,
            mlx_version: "0.32.2".to_owned(),
            mlx_build: "manylinux_2_35_x86_64".to_owned(),
            backend: "cpu".to_owned(),
        };
        record.write(&root.join(self.dir()).join(baseline)).unwrap();
    }
}

/// `n` samples spread evenly over `mean * (1 ± spread)`, in a scrambled order.
fn samples(mean: f64, spread: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| (i * 37) % n).map(|k| mean * (1.0 + spread * (2.0 * k as f64 / (n - 1) as f64 - 1.0))).collect()
}

fn row<'a>(comparison: &'a Comparison, bench: &Bench, metric: Metric) -> &'a Row {
    let id = bench.full_id();
    comparison
        .rows
        .iter()
        .find(|row| row.id == id && row.metric == metric)
        .unwrap_or_else(|| panic!("no {metric:?} row for {id} in {:#?}", comparison.rows))
}

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance
}

#[test]
fn twenty_percent_slower_with_tight_samples_regresses_and_fails() {
    let root = tempfile::tempdir().unwrap();
    PREFILL.write(root.path(), "main", &samples(1e6, 0.005, 100));
    PREFILL.write(root.path(), "new", &samples(1.2e6, 0.005, 100));

    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    let time = row(&comparison, &PREFILL, Metric::Time);
    assert_eq!(time.verdict, Verdict::Regressed);
    assert!(close(time.change_pct, 20.0, 1e-9), "change {}", time.change_pct);
    assert!(close(time.baseline, 1e6, 1e-6) && close(time.now, 1.2e6, 1e-6), "{time:?}");
    assert!(time.ci_low_pct > 19.0 && time.ci_low_pct < 20.0, "{time:?}");
    assert!(time.ci_high_pct > 20.0 && time.ci_high_pct < 21.0, "{time:?}");
    assert_eq!((time.baseline_samples, time.now_samples), (100, 100));

    // Tokens/s: 128 tokens per 1 ms = 128,000 tok/s, down by 1 - 1/1.2 = 16.67%.
    let tps = time.tokens_per_s.expect("prefill declares Throughput::Elements");
    assert!(close(tps.baseline_tps, 128_000.0, 1e-6) && close(tps.now_tps, 128_000.0 / 1.2, 1e-6), "{tps:?}");
    assert!(close(tps.change_pct, (1.0 / 1.2 - 1.0) * 100.0, 1e-9), "{tps:?}");
    assert!(tps.ci_low_pct < tps.change_pct && tps.change_pct < tps.ci_high_pct && tps.ci_high_pct < 0.0, "{tps:?}");

    assert!(comparison.failed());
    assert_eq!(comparison.count(Verdict::Regressed), 1, "tokens/s is the same event, not a second regression");
    assert!(comparison.problems.is_empty() && comparison.notes.is_empty(), "{comparison:#?}");
}

#[test]
fn twenty_percent_faster_improves_and_passes() {
    let root = tempfile::tempdir().unwrap();
    DECODE.write(root.path(), "main", &samples(1e6, 0.005, 100));
    DECODE.write(root.path(), "new", &samples(0.8e6, 0.005, 100));

    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    let time = row(&comparison, &DECODE, Metric::Time);
    assert_eq!(time.verdict, Verdict::Improved);
    assert!(close(time.change_pct, -20.0, 1e-9), "{time:?}");
    assert!(time.ci_high_pct < 0.0, "{time:?}");
    let tps = time.tokens_per_s.unwrap();
    assert!(close(tps.change_pct, 25.0, 1e-9), "{tps:?}");
    assert!(!comparison.failed());
}

#[test]
fn constant_samples_give_an_interval_of_exactly_the_change() {
    let root = tempfile::tempdir().unwrap();
    TTFT.write(root.path(), "main", &[1000.0; 10]);
    TTFT.write(root.path(), "new", &[1100.0; 10]);

    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    let time = row(&comparison, &TTFT, Metric::Time);
    for pct in [time.change_pct, time.ci_low_pct, time.ci_high_pct] {
        assert!(close(pct, 10.0, 1e-9), "{time:?}");
    }
    assert_eq!(time.verdict, Verdict::Regressed);
    assert!(time.tokens_per_s.is_none(), "ttft declares no throughput");
}

#[test]
fn noise_within_the_threshold_is_unchanged() {
    let root = tempfile::tempdir().unwrap();
    PREFILL.write(root.path(), "main", &samples(1e6, 0.03, 100));
    PREFILL.write(root.path(), "new", &samples(1.03e6, 0.03, 100));

    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    let time = row(&comparison, &PREFILL, Metric::Time);
    assert!(close(time.change_pct, 3.0, 1e-9), "{time:?}");
    assert_eq!(time.verdict, Verdict::Unchanged);
    assert!(!comparison.failed());
}

#[test]
fn a_change_beyond_the_threshold_within_the_noise_is_unchanged() {
    // One slow outlier in ten samples makes the mean 10% slower, but a resample without it
    // (probability 0.9^10 = 35%) shows no change: the interval reaches 0.
    let root = tempfile::tempdir().unwrap();
    let mut now = vec![1000.0; 10];
    now[3] = 2000.0;
    TTFT.write(root.path(), "main", &[1000.0; 10]);
    TTFT.write(root.path(), "new", &now);

    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    let time = row(&comparison, &TTFT, Metric::Time);
    assert!(close(time.change_pct, 10.0, 1e-9), "{time:?}");
    assert!(close(time.ci_low_pct, 0.0, 1e-9), "{time:?}");
    assert_eq!(time.verdict, Verdict::Unchanged);
    assert!(!comparison.failed());
}

#[test]
fn the_bootstrap_is_deterministic() {
    let root = tempfile::tempdir().unwrap();
    DECODE.write(root.path(), "main", &samples(1e6, 0.04, 50));
    DECODE.write(root.path(), "new", &samples(1.06e6, 0.04, 60));
    let first = compare(root.path(), "main", "new", 5.0, false).unwrap();
    let second = compare(root.path(), "main", "new", 5.0, false).unwrap();
    assert_eq!(first, second);
}

#[test]
fn peak_memory_up_thirty_percent_regresses() {
    let root = tempfile::tempdir().unwrap();
    let gib = 1u64 << 30;
    for (baseline, peaks) in [("main", [gib, gib + 10, gib + 20]), ("new", [1_395_864_371, 1_395_864_381, 1_395_864_391])] {
        DECODE.write(root.path(), baseline, &samples(1e6, 0.01, 20));
        DECODE.write_memory(root.path(), baseline, &peaks);
    }

    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    assert_eq!(row(&comparison, &DECODE, Metric::Time).verdict, Verdict::Unchanged);
    let memory = row(&comparison, &DECODE, Metric::PeakMemory);
    assert_eq!(memory.verdict, Verdict::Regressed);
    assert_eq!((memory.baseline, memory.now), ((gib + 10) as f64, 1_395_864_381.0), "medians");
    assert!(close(memory.change_pct, 30.0, 0.01), "{memory:?}");
    // The range: lowest now over highest baseline, highest now over lowest baseline.
    assert!(close(memory.ci_low_pct, 100.0 * (1_395_864_371.0 / (gib + 20) as f64 - 1.0), 1e-9), "{memory:?}");
    assert!(close(memory.ci_high_pct, 100.0 * (1_395_864_391.0 / gib as f64 - 1.0), 1e-9), "{memory:?}");
    assert!(memory.tokens_per_s.is_none());
    assert!(comparison.failed());
}

#[test]
fn peak_memory_overlapping_the_baseline_is_unchanged_even_beyond_the_threshold() {
    let root = tempfile::tempdir().unwrap();
    DECODE.write(root.path(), "main", &samples(1e6, 0.01, 20));
    DECODE.write(root.path(), "new", &samples(1e6, 0.01, 20));
    DECODE.write_memory(root.path(), "main", &[1000, 1000, 1300]);
    DECODE.write_memory(root.path(), "new", &[1200, 1200, 1200]);

    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    let memory = row(&comparison, &DECODE, Metric::PeakMemory);
    assert!(close(memory.change_pct, 20.0, 1e-9), "{memory:?}");
    assert_eq!(memory.verdict, Verdict::Unchanged, "a baseline sample (1300) is above every new one");
    assert!(!comparison.failed());
}

#[test]
fn a_sidecar_missing_on_one_side_is_a_note_and_time_is_still_compared() {
    let root = tempfile::tempdir().unwrap();
    PREFILL.write(root.path(), "main", &samples(1e6, 0.01, 20));
    PREFILL.write(root.path(), "new", &samples(1e6, 0.01, 20));
    PREFILL.write_memory(root.path(), "main", &[1000, 1001]);

    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    assert_eq!(comparison.rows.len(), 1);
    assert_eq!(comparison.rows[0].metric, Metric::Time);
    assert_eq!(comparison.notes.len(), 1, "{:?}", comparison.notes);
    assert!(comparison.notes[0].contains(MEMORY_FILE) && comparison.notes[0].contains("in new"), "{:?}", comparison.notes);
    assert!(!comparison.failed());
}

#[test]
fn a_different_mlx_build_is_noted() {
    let root = tempfile::tempdir().unwrap();
    for baseline in ["main", "new"] {
        TTFT.write(root.path(), baseline, &[1000.0; 5]);
        TTFT.write_memory(root.path(), baseline, &[1000]);
    }
    let folder = root.path().join(TTFT.dir()).join("new");
    let mut record = MemoryRecord::read(&folder).unwrap().unwrap();
    record.backend = "cuda".to_owned();
    record.write(&folder).unwrap();

    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    assert_eq!(
        comparison.notes,
        ["different MLX builds: main ran MLX 0.32.2 (manylinux_2_35_x86_64) on cpu, new MLX 0.32.2 (manylinux_2_35_x86_64) on cuda"]
    );

    // One version, another wheel (all say 0.32.2; only the macOS 26 one has the M5 kernels).
    record.backend = "cpu".to_owned();
    record.mlx_build = "macosx_26_0_arm64".to_owned();
    record.write(&folder).unwrap();
    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    assert_eq!(
        comparison.notes,
        ["different MLX builds: main ran MLX 0.32.2 (manylinux_2_35_x86_64) on cpu, new MLX 0.32.2 (macosx_26_0_arm64) on cpu"]
    );

    // A sidecar written before builds were recorded reads as an unknown build.
    let old = json!({"full_id": TTFT.full_id(), "peak_memory_bytes": [1000], "kv_cache_bytes": 0, "mlx_version": "0.32.2", "backend": "cpu"});
    std::fs::write(folder.join(MEMORY_FILE), old.to_string()).unwrap();
    assert_eq!(MemoryRecord::read(&folder).unwrap().unwrap().mlx_build, "unknown");
    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    assert_eq!(
        comparison.notes,
        ["different MLX builds: main ran MLX 0.32.2 (manylinux_2_35_x86_64) on cpu, new MLX 0.32.2 (unknown) on cpu"]
    );
    assert_eq!(comparison.different_mlx, None, "a note for the Criterion gate, not a header");
}

#[test]
fn an_unknown_baseline_lists_those_that_exist() {
    let root = tempfile::tempdir().unwrap();
    for baseline in ["main", "new", "base"] {
        PREFILL.write(root.path(), baseline, &[1000.0; 5]);
    }
    DECODE.write(root.path(), "new", &[1000.0; 5]);

    let error = compare(root.path(), "release-1.0", "new", 5.0, false).unwrap_err();
    assert!(matches!(error, CompareError::UnknownBaseline { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("\"release-1.0\""), "{message}");
    assert!(message.contains("base (1 benchmarks), main (1 benchmarks), new (2 benchmarks)"), "{message}");
    assert!(message.contains("cargo bench -- --save-baseline release-1.0"), "{message}");

    let error = compare(root.path(), "main", "nwe", 5.0, false).unwrap_err();
    assert!(error.to_string().contains("baseline \"nwe\" not found"), "{error}");
}

#[test]
fn a_missing_criterion_dir_says_to_run_the_benches() {
    let root = tempfile::tempdir().unwrap();
    let error = compare(&root.path().join("criterion"), "main", "new", 5.0, false).unwrap_err();
    assert!(matches!(error, CompareError::NoCriterionDir { .. }), "{error:?}");
    assert!(error.to_string().contains("cargo bench -- --save-baseline NAME"), "{error}");

    let error = compare(root.path(), "main", "new", 5.0, false).unwrap_err();
    assert!(matches!(error, CompareError::NoResults { .. }), "{error:?}");
}

#[test]
fn bad_arguments_are_errors() {
    let root = tempfile::tempdir().unwrap();
    PREFILL.write(root.path(), "new", &[1000.0; 5]);
    assert!(matches!(compare(root.path(), "new", "new", 5.0, false), Err(CompareError::SameBaseline(_))));
    for threshold in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(compare(root.path(), "main", "new", threshold, false), Err(CompareError::InvalidThreshold(_))));
    }
}

#[test]
fn a_partial_run_reports_the_missing_id_and_fails_only_when_strict() {
    let root = tempfile::tempdir().unwrap();
    for bench in [&PREFILL, &DECODE] {
        bench.write(root.path(), "main", &samples(1e6, 0.01, 20));
    }
    PREFILL.write(root.path(), "new", &samples(1e6, 0.01, 20));
    TTFT.write(root.path(), "new", &samples(1e6, 0.01, 20));

    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    assert_eq!(
        comparison.problems,
        ["missing in new: decode/tiny-llama-q4/kv8/g32@d128 — renamed or not run (partial run?)"]
    );
    assert_eq!(comparison.notes, ["new in new, no main to compare with: ttft/tiny-llama-q4/kv4/p128"]);
    assert_eq!(comparison.rows.len(), 1);
    assert!(!comparison.failed());

    let strict = compare(root.path(), "main", "new", 5.0, true).unwrap();
    assert!(strict.failed());
}

#[test]
fn corrupt_json_names_the_file() {
    let root = tempfile::tempdir().unwrap();
    PREFILL.write(root.path(), "main", &[1000.0; 5]);
    let folder = PREFILL.write(root.path(), "new", &[1000.0; 5]);
    let sample = folder.join("sample.json");
    std::fs::write(&sample, r#"{"sampling_mode":"Linear","iters":[1.0,2.0],"tim"#).unwrap();
    let error = compare(root.path(), "main", "new", 5.0, false).unwrap_err();
    assert!(matches!(error, CompareError::Json { .. }), "{error:?}");
    assert!(error.to_string().contains(&sample.display().to_string()), "{error}");

    std::fs::write(&sample, r#"{"sampling_mode":"Linear","iters":[1.0,2.0],"times":[5.0]}"#).unwrap();
    let error = compare(root.path(), "main", "new", 5.0, false).unwrap_err();
    assert!(error.to_string().contains(&sample.display().to_string()), "{error}");
    assert!(error.to_string().contains("2 iteration counts but 1 times"), "{error}");

    PREFILL.write(root.path(), "new", &[1000.0; 5]);
    let sidecar = folder.join(MEMORY_FILE);
    std::fs::write(&sidecar, "{\"full_id\": 3}").unwrap();
    let error = compare(root.path(), "main", "new", 5.0, false).unwrap_err();
    assert!(error.to_string().contains(&sidecar.display().to_string()), "{error}");

    std::fs::remove_file(&sidecar).unwrap();
    let benchmark = folder.join("benchmark.json");
    std::fs::write(&benchmark, "not json").unwrap();
    let error = compare(root.path(), "main", "new", 5.0, false).unwrap_err();
    assert!(error.to_string().contains(&benchmark.display().to_string()), "{error}");
}

#[test]
fn json_output_parses_back() {
    let root = tempfile::tempdir().unwrap();
    for (baseline, mean, peak) in [("main", 1e6, 1000), ("new", 1.2e6, 1400)] {
        PREFILL.write(root.path(), baseline, &samples(mean, 0.005, 30));
        PREFILL.write_memory(root.path(), baseline, &[peak, peak + 1]);
    }
    DECODE.write(root.path(), "main", &samples(1e6, 0.005, 30));
    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();

    let json = comparison.render(Format::Json).unwrap();
    let parsed: Comparison = serde_json::from_str(&json).unwrap();
    // serde_json's default parser may land one ulp off a printed float: compare numbers closely.
    assert_eq!((&parsed.baseline, &parsed.against, parsed.strict), (&comparison.baseline, &comparison.against, false));
    assert_eq!((&parsed.problems, &parsed.notes), (&comparison.problems, &comparison.notes));
    assert_eq!(parsed.rows.len(), comparison.rows.len());
    for (back, row) in parsed.rows.iter().zip(&comparison.rows) {
        assert_eq!((&back.id, back.metric, back.verdict), (&row.id, row.metric, row.verdict));
        for (a, b) in [(back.baseline, row.baseline), (back.now, row.now), (back.ci_low_pct, row.ci_low_pct)] {
            assert!(close(a, b, 1e-9 * b.abs()), "{back:?} vs {row:?}");
        }
        assert_eq!(back.tokens_per_s.is_some(), row.tokens_per_s.is_some());
    }
    assert_eq!(parsed.failed(), comparison.failed());
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["failed"], true);
    assert_eq!(value["regressed"], 2);
    assert_eq!(value["rows"][0]["metric"], "time");
    assert_eq!(value["rows"][0]["verdict"], "regressed");
    assert_eq!(value["rows"][1]["metric"], "peak_memory");
    assert_eq!(value["rows"][0]["tokens_per_s"]["baseline_tokens"], 128);
}

#[test]
fn table_and_markdown_show_time_tokens_memory_and_the_outcome() {
    let root = tempfile::tempdir().unwrap();
    for (baseline, mean, peak) in [("main", 1e6, 1 << 30), ("new", 1.2e6, 1 << 30)] {
        PREFILL.write(root.path(), baseline, &samples(mean, 0.005, 30));
        PREFILL.write_memory(root.path(), baseline, &[peak]);
    }
    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();

    let table = comparison.render(Format::Table).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("benchmark") && lines[0].contains("main") && lines[0].contains("new"), "{table}");
    assert!(lines[1].contains("prefill/tiny-llama-q4/kvnone/p128") && lines[1].contains("1.000 ms"), "{table}");
    assert!(lines[1].contains("1.200 ms") && lines[1].contains("+20.0%") && lines[1].ends_with("REGRESSED"), "{table}");
    assert!(lines[2].contains("tokens/s") && lines[2].contains("128000 tok/s") && lines[2].contains("-16.7%"), "{table}");
    assert!(lines[3].contains("peak memory") && lines[3].contains("1.074 GB") && lines[3].contains("unchanged"), "{table}");
    assert!(table.trim_end().ends_with("FAILED: 1 regressed, 0 improved, 1 unchanged (new vs main, threshold 5%)"), "{table}");

    let markdown = comparison.render(Format::Md).unwrap();
    assert!(markdown.starts_with("**Regression gate FAILED: 1 regressed"), "{markdown}");
    assert!(markdown.contains("| `prefill/tiny-llama-q4/kvnone/p128` | time | 1.000 ms | 1.200 ms | +20.0% |"), "{markdown}");
    assert!(markdown.contains("|  | tokens/s |"), "{markdown}");
}

#[test]
fn ids_are_read_from_benchmark_json_not_from_paths() {
    // A group-only id and an id whose parts lose characters to the file system.
    let root = tempfile::tempdir().unwrap();
    let plain = Bench { group: "load", function: None, value: None, tokens: None };
    let odd = Bench { group: "decode", function: Some("q4|kv:8"), value: Some("g32?"), tokens: Some(32) };
    for bench in [&plain, &odd] {
        bench.write(root.path(), "main", &[1000.0; 5]);
        bench.write(root.path(), "new", &[1000.0; 5]);
    }
    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    let ids: Vec<&str> = comparison.rows.iter().map(|row| row.id.as_str()).collect();
    assert_eq!(ids, ["decode/q4|kv:8/g32?", "load"]);
    assert!(comparison.render(Format::Md).unwrap().contains("`decode/q4\\|kv:8/g32?`"));
}

#[test]
fn criterion_directory_names() {
    assert_eq!(
        criterion_dir_for("decode", Some("tiny-llama-q4/kv8"), Some("g32@d128")),
        Path::new("decode").join("tiny-llama-q4_kv8").join("g32@d128")
    );
    assert_eq!(criterion_dir_for("ttft", None, Some("p128")), Path::new("ttft").join("p128"));
    assert_eq!(criterion_dir_for("load", None, None), Path::new("load"));
    assert_eq!(make_filename_safe(r#"a?b"c/d\e*f<g>h:i|j^k"#), "a_b_c_d_e_f_g_h_i_j_k");
    // Cut to 64 bytes, at a character boundary: 63 ASCII bytes and a 2-byte 'é' leave 63.
    let long = format!("{}é", "x".repeat(63));
    assert_eq!(make_filename_safe(&long), "x".repeat(63));
    assert_eq!(make_filename_safe(&"y".repeat(80)).len(), 64);
}

#[test]
fn a_bench_finds_its_folder_by_id() {
    let root = tempfile::tempdir().unwrap();
    DECODE.write(root.path(), "new", &[1000.0; 5]);
    PREFILL.write(root.path(), "new", &[1000.0; 5]);
    let found = find_benchmark_dir(root.path(), &DECODE.full_id()).unwrap();
    assert_eq!(found, Some(root.path().join(DECODE.dir())));
    assert_eq!(find_benchmark_dir(root.path(), "decode/other").unwrap(), None);
}

#[test]
fn baselines_criterion_writes_for_a_command_line() {
    let cases: [(&[&str], &[&str]); 12] = [
        (&["--bench"], &["new", "base"]),
        (&["--bench", "--save-baseline", "main"], &["new", "main"]),
        (&["--bench", "--save-baseline=main", "decode"], &["new", "main"]),
        (&["decode", "--bench", "-s", "pr"], &["new", "pr"]),
        (&["--bench", "-spr"], &["new", "pr"]),
        (&["--bench", "--baseline", "main"], &["new"]),
        (&["--bench", "-b", "main"], &["new"]),
        (&["--bench", "--baseline-lenient=main"], &["new"]),
        (&["--bench", "--discard-baseline"], &[]),
        (&["--bench", "--baseline", "main", "--load-baseline", "old"], &[]),
        (&["--bench", "--profile-time", "5"], &[]),
        (&[], &[]),
    ];
    for (args, expected) in cases {
        assert_eq!(saved_baselines(args), expected, "args {args:?}");
    }
    assert!(saved_baselines(["--bench", "--test"]).is_empty());
    assert!(saved_baselines(["--bench", "--list"]).is_empty());
}

#[test]
fn memory_records_round_trip_through_their_file() {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("decode").join("x").join("main");
    assert_eq!(MemoryRecord::read(&folder).unwrap(), None);
    let record = MemoryRecord {
        full_id: "decode/x".to_owned(),
        peak_memory_bytes: vec![1 << 30, (1 << 30) + 4096],
        kv_cache_bytes: 1 << 20,
        mlx_version: "0.32.2".to_owned(),
        mlx_build: "manylinux_2_35_x86_64".to_owned(),
        backend: "cpu".to_owned(),
    };
    record.write(&folder).unwrap();
    assert_eq!(MemoryRecord::read(&folder).unwrap(), Some(record.clone()));
    let names: Vec<String> =
        std::fs::read_dir(&folder).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, [MEMORY_FILE], "no temporary file left behind");

    let written = record.write_for_run(root.path(), Path::new("decode/x"), ["--bench", "--save-baseline", "pr"]).unwrap();
    assert_eq!(written, [root.path().join("decode/x/new"), root.path().join("decode/x/pr")]);
    assert_eq!(MemoryRecord::read(&written[1]).unwrap(), Some(record.clone()));

    let empty = MemoryRecord { peak_memory_bytes: Vec::new(), ..record };
    empty.write(&folder).unwrap();
    let error = MemoryRecord::read(&folder).unwrap_err();
    assert!(error.to_string().contains(MEMORY_FILE) && error.to_string().contains("no peak_memory_bytes"), "{error}");
}

/// Copies a directory tree (the checked-in fixture) so a test can add files to it.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_real_criterion_tree_is_read_by_id() {
    // fixtures/criterion/README.md says how this tree was made: prefill 50% slower in `new`.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/criterion");
    let root = tempfile::tempdir().unwrap();
    copy_tree(&fixture, root.path());
    for (id, bench_dir) in [
        ("prefill/tiny-llama-q4/kvnone/p128", PREFILL.dir()),
        ("decode/tiny-llama-q4/kv8/g32@d128", criterion_dir_for("decode", Some("tiny-llama-q4/kv8/g32@d128"), None)),
        ("ttft/tiny-llama-q4/kv4/p128", criterion_dir_for("ttft/tiny-llama-q4/kv4/p128", None, None)),
    ] {
        // criterion_dir_for predicts each of Criterion's three nestings, and the id finds it too.
        assert_eq!(find_benchmark_dir(root.path(), id).unwrap(), Some(root.path().join(&bench_dir)), "{id}");
        for (baseline, peak) in [("main", 1_000_000), ("new", 1_500_000)] {
            let record = MemoryRecord {
                full_id: id.to_owned(),
                peak_memory_bytes: vec![peak; 10],
                kv_cache_bytes: 0,
                mlx_version: "0.32.2".to_owned(),
                mlx_build: "manylinux_2_35_x86_64".to_owned(),
                backend: "cpu".to_owned(),
            };
            record.write(&root.path().join(&bench_dir).join(baseline)).unwrap();
        }
    }

    let comparison = compare(root.path(), "main", "new", 5.0, false).unwrap();
    assert!(comparison.problems.is_empty() && comparison.notes.is_empty(), "{comparison:#?}");
    let time = |id: &str| comparison.rows.iter().find(|row| row.id == id && row.metric == Metric::Time).unwrap();
    let prefill = time("prefill/tiny-llama-q4/kvnone/p128");
    assert_eq!(prefill.verdict, Verdict::Regressed);
    assert!(prefill.change_pct > 45.0 && prefill.change_pct < 55.0, "{prefill:?}");
    assert!(prefill.ci_low_pct > 40.0, "{prefill:?}");
    let tps = prefill.tokens_per_s.unwrap();
    assert_eq!((tps.baseline_tokens, tps.now_tokens), (128, 128));
    assert!(tps.baseline_tps > 3.0e6 && tps.baseline_tps < 3.3e6, "128 tokens per ~40 µs: {tps:?}");
    for id in ["decode/tiny-llama-q4/kv8/g32@d128", "ttft/tiny-llama-q4/kv4/p128"] {
        let row = time(id);
        assert_eq!(row.verdict, Verdict::Unchanged, "{row:?}");
        assert!(row.change_pct.abs() < 2.0, "{row:?}");
        assert_eq!((row.baseline_samples, row.now_samples), (10, 10));
    }
    assert_eq!(time("decode/tiny-llama-q4/kv8/g32@d128").tokens_per_s.unwrap().now_tokens, 32);
    assert!(time("ttft/tiny-llama-q4/kv4/p128").tokens_per_s.is_none());
    assert_eq!(comparison.count(Verdict::Regressed), 4, "prefill time and three peak memories");
    assert!(comparison.failed());

    // After a plain `cargo bench`, Criterion has copied `new` into `base`: nothing to see there.
    let copy = compare(root.path(), "base", "new", 5.0, false).unwrap();
    assert!(copy.rows.iter().filter(|row| row.metric == Metric::Time).all(|row| row.change_pct == 0.0), "{copy:#?}");
    assert_eq!(copy.notes.len(), 3, "base has no sidecars: {:?}", copy.notes);
}

#[test]
fn format_names_on_the_command_line() {
    for (name, format) in [("table", Format::Table), ("json", Format::Json), ("md", Format::Md), ("markdown", Format::Md)] {
        assert_eq!(Format::from_name(name), Some(format), "{name}");
    }
    assert_eq!(Format::from_name("xml"), None);
}
