//! Results of two MLX builds side by side: merged from two results files they stay apart in every
//! view and each view says which is which (Markdown, HTML, exports, the interleaved gate), while
//! results of one build look as they always did; files from before builds were recorded read
//! back with an unknown build.
use std::{path::Path, process::Command};

mod common;

use common::{run_context, synthetic_trial};
use mlxbench::{
    bench::{Engine, RunContext, RunPoint, RunRecord},
    gate::interleave::compare_blocks,
    report::{export, file::ResultsFile, read::read_records, Format, Printable},
};


fn context(mlx_version: &str, mlx_build: &str) -> RunContext {
    RunContext { mlx_version: mlx_version.into(), mlx_build: mlx_build.into(), ..run_context(3) }
}

/// One sweep over two prompt lengths, on `context`'s MLX, decoding a token every `gap_us`.
fn sweep(context: &RunContext, gap_us: u64) -> Vec<RunRecord> {
    [64, 128]
        .into_iter()
        .map(|n_prompt| {
            let point = RunPoint { model: "/m/l1b".into(), kv_bits: None, batch: 1, depth: 0, n_prompt, n_generate: 33, engine: Engine::Mlxbench, draft: None };
            RunRecord::new(point, context.clone(), Ok([gap_us - 50, gap_us, gap_us + 50].map(|gap| synthetic_trial(gap, 1_000_000)).to_vec()), None, None)
        })
        .collect()
}

const LINUX: &str = "manylinux_2_35_x86_64";

/// Writes `records` as a results file `name` under `dir`.
fn save(dir: &Path, name: &str, records: &[RunRecord]) -> String {
    let path = dir.join(name);
    let format = Format::from_path(&path).unwrap();
    ResultsFile::open(&path, format).unwrap().save(records).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The report page of results files, made as a user makes it.
fn report(files: &[&str], page: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mlxbench")).arg("report").args(files).arg("-o").arg(page).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(page).unwrap()
}

/// Per chart: its caption and the legend labels of its series.
fn chart_series(html: &str) -> Vec<(String, Vec<String>)> {
    html.split("<figure class=\"chart\"")
        .skip(1)
        .map(|figure| {
            let figure = &figure[..figure.find("</figure>").unwrap()];
            let caption = figure.split("<figcaption>").nth(1).unwrap().split('<').next().unwrap().to_string();
            // The legend is the last texts of the SVG: one per series, after the axes' ticks.
            let texts: Vec<String> = figure
                .split("<text")
                .skip(1)
                .filter_map(|t| Some(t.split_once('>')?.1.split('<').next()?.trim().to_string()))
                .collect();
            (caption, texts)
        })
        .collect()
}

#[test]
fn two_mlx_versions_merged_stay_apart_and_are_labelled_in_markdown_and_html() {
    let (old, new) = (context("0.32.2", LINUX), context("0.32.4", LINUX));
    let records: Vec<RunRecord> = [sweep(&old, 2000), sweep(&new, 1800)].concat();

    let md = records.render(Format::Md).unwrap();
    let lines: Vec<&str> = md.lines().collect();
    assert!(lines[0].contains("| MLX 0.32.2 (manylinux_2_35_x86_64) cuda (gpu) |"), "{md}");
    assert!(lines[1].contains("| MLX 0.32.4 (manylinux_2_35_x86_64) cuda (gpu) |"), "a context line per MLX build: {md}");
    let header = lines.iter().find(|l| l.starts_with("| model |")).unwrap();
    assert!(header.starts_with("| model | MLX | prompt | decode t/s |"), "the settings that vary, the MLX build among them: {header}");
    assert!(md.contains("every row: engine mlxbench | kv none | batch 1 | depth 0 | gen 33"), "{md}");
    let rows: Vec<&&str> = lines.iter().filter(|l| l.starts_with("| l1b |")).collect();
    assert_eq!(rows.len(), 4, "four configurations: {md}");
    for version in ["0.32.2", "0.32.4"] {
        assert_eq!(rows.iter().filter(|r| r.starts_with(&format!("| l1b | {version} | "))).count(), 2, "{md}");
    }

    // Merged from two results files (CSV and JSON), as `mlxbench report` reads them.
    let dir = tempfile::tempdir().unwrap();
    let a = save(dir.path(), "old.csv", &records[..2]);
    let b = save(dir.path(), "new.json", &records[2..]);
    let html = report(&[&a, &b], &dir.path().join("report.html"));
    assert!(html.contains("<td class=\"text\">MLX 0.32.2 (manylinux_2_35_x86_64) cuda (gpu)</td>"), "{html}");
    assert!(html.contains("<td class=\"text\">MLX 0.32.4 (manylinux_2_35_x86_64) cuda (gpu)</td>"), "{html}");
    let summary = html.split("<table class=\"summary\">").nth(1).unwrap().split("</table>").next().unwrap();
    assert!(summary.starts_with("<tr><th class=\"text\">model</th><th class=\"text\">MLX</th><th>prompt</th>"), "{summary}");
    for version in ["0.32.2", "0.32.4"] {
        let cell = format!("<td class=\"text\">l1b</td><td class=\"text\">{version}</td>");
        assert_eq!(summary.matches(&cell).count(), 2, "{version}: {summary}");
    }
    let charts = chart_series(&html);
    let (_, decode) = charts.iter().find(|(c, _)| c == "decode t/s against prompt length").unwrap();
    assert_eq!(&decode[decode.len() - 2..], ["MLX 0.32.2", "MLX 0.32.4"], "one series per MLX version: {decode:?}");
    assert!(html.contains("data-points=\"4\"><figcaption>decode t/s against prompt length"), "{html}");
}

#[test]
fn one_version_with_two_builds_is_told_apart_by_its_build() {
    // All macOS wheels say 0.32.2; only the macOS 26 one has the M5 kernels.
    let records = [sweep(&context("0.32.2", "macosx_14_0_arm64"), 2000), sweep(&context("0.32.2", "macosx_26_0_arm64"), 1500)].concat();
    let md = records.render(Format::Md).unwrap();
    assert_eq!(md.matches("| 0.32.2 (macosx_26_0_arm64) |").count(), 2, "{md}");
    let dir = tempfile::tempdir().unwrap();
    let html = report(&[&save(dir.path(), "run.jsonl", &records)], &dir.path().join("report.html"));
    let charts = chart_series(&html);
    let (_, decode) = charts.iter().find(|(c, _)| c == "decode t/s against prompt length").unwrap();
    assert_eq!(&decode[decode.len() - 2..], ["MLX 0.32.2 (macosx_14_0_arm64)", "MLX 0.32.2 (macosx_26_0_arm64)"], "{decode:?}");
    let names: Vec<String> = export::from_records(&records).into_iter().map(|m| m.benchmark).collect();
    assert!(names.contains(&"l1b/mlxbench/kvnone/p64/g33/b1/d0/mlx0.32.2-macosx_26_0_arm64".to_owned()), "{names:?}");
}

#[test]
fn one_mlx_version_changes_no_label() {
    // One sweep twice on one build: the runs are told apart, the build is not.
    let records = [sweep(&context("0.32.4", LINUX), 2000), sweep(&context("0.32.4", LINUX), 2100)].concat();
    let md = records.render(Format::Md).unwrap();
    assert_eq!(md.matches("MLX 0.32.4 (manylinux_2_35_x86_64)").count(), 1, "one context line: {md}");
    assert!(md.contains("| model | run | prompt |") && !md.contains("| MLX |"), "{md}");
    let dir = tempfile::tempdir().unwrap();
    let html = report(&[&save(dir.path(), "run.json", &records)], &dir.path().join("report.html"));
    let summary = html.split("<table class=\"summary\">").nth(1).unwrap().split("</table>").next().unwrap();
    assert!(summary.starts_with("<tr><th class=\"text\">model</th><th>run</th><th>prompt</th>"), "no MLX column in the summary: {summary}");
    let charts = chart_series(&html);
    let (_, decode) = charts.iter().find(|(c, _)| c == "decode t/s against prompt length").unwrap();
    assert_eq!(&decode[decode.len() - 2..], ["run 1", "run 2"], "{decode:?}");
    assert!(!html.contains(">MLX 0.32.4</text>"), "{html}");
}

#[test]
fn exports_name_each_version_only_when_there_are_two() {
    let (old, new) = (context("0.32.2", LINUX), context("0.32.4", LINUX));
    let both = [sweep(&old, 2000), sweep(&new, 1000)].concat();
    let measurements = export::from_records(&both);
    let generation = |name: &str| {
        measurements.iter().find(|m| m.benchmark == name && m.measure == "generation-tps").unwrap_or_else(|| panic!("{name}: {measurements:#?}"))
    };
    // 2 ms and 1 ms per token.
    let (a, b) = (generation("l1b/mlxbench/kvnone/p64/g33/b1/d0/mlx0.32.2"), generation("l1b/mlxbench/kvnone/p64/g33/b1/d0/mlx0.32.4"));
    assert!((a.value - 500.0).abs() < 1.0 && (b.value - 1000.0).abs() < 1.0, "{a:?} {b:?}");
    assert!(a.extra.contains("MLX 0.32.2 (manylinux_2_35_x86_64) cuda"), "{}", a.extra);
    assert!(export::duplicate_benchmarks(&measurements).is_empty());
    let bmf: serde_json::Value = serde_json::from_str(&export::render(&measurements, export::ExportFormat::Bmf).unwrap()).unwrap();
    assert_eq!(bmf.as_object().unwrap().len(), 4, "two versions of two configurations: {bmf:#}");

    let one = export::from_records(&both[2..]);
    assert!(one.iter().all(|m| m.benchmark.starts_with("l1b/mlxbench/kvnone/p") && m.benchmark.ends_with("/g33/b1/d0")), "{one:#?}");
    // A failed record of another version is not exported, so it renames nothing.
    let mut with_failure = both[2..].to_vec();
    with_failure.push(RunRecord::new(both[0].point.clone(), old.clone(), Err("out of memory".into()), None, None));
    assert_eq!(export::from_records(&with_failure), one);
}

#[test]
fn files_from_before_builds_were_recorded_read_back_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let records = sweep(&context("0.32.2", LINUX), 2000);
    // A CSV without the mlx_build column, as mlxbench wrote them before.
    let csv = save(dir.path(), "new.csv", &records);
    let mut reader = csv::Reader::from_path(&csv).unwrap();
    let header = reader.headers().unwrap().clone();
    let column = header.iter().position(|h| h == "mlx_build").unwrap();
    assert_eq!(header.get(column - 1), Some("mlx_version"), "mlx_build follows mlx_version");
    let mut writer = csv::Writer::from_writer(Vec::new());
    let drop_column = |row: &csv::StringRecord| row.iter().enumerate().filter(|(i, _)| *i != column).map(|(_, v)| v.to_string()).collect::<Vec<_>>();
    writer.write_record(drop_column(&header)).unwrap();
    for row in reader.records() {
        writer.write_record(drop_column(&row.unwrap())).unwrap();
    }
    let old_csv = dir.path().join("old.csv");
    std::fs::write(&old_csv, writer.into_inner().unwrap()).unwrap();
    let back = read_records(&old_csv).unwrap();
    assert_eq!(back.len(), 2);
    for (old, new) in back.iter().zip(read_records(Path::new(&csv)).unwrap()) {
        assert_eq!(old.context.mlx_build, "unknown");
        assert_eq!(new.context.mlx_build, LINUX);
        assert_eq!((&old.point, &old.context.mlx_version, old.trials.len()), (&new.point, &new.context.mlx_version, 3));
        assert_eq!(old.summary, new.summary, "every other column reads as before");
    }

    // JSON lines without the key.
    let jsonl = save(dir.path(), "run.jsonl", &records);
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let without = text.replace(&format!(",\"mlx_build\":\"{LINUX}\""), "");
    assert_ne!(without, text);
    std::fs::write(&jsonl, without).unwrap();
    assert!(read_records(Path::new(&jsonl)).unwrap().iter().all(|r| r.context.mlx_build == "unknown"));
}

#[test]
fn the_interleaved_gate_says_when_the_builds_run_different_mlx() {
    let blocks = |context: &RunContext, gaps: &[u64]| gaps.iter().map(|&g| sweep(context, g)).collect::<Vec<_>>();
    let (old, new) = (context("0.32.2", LINUX), context("0.32.4", LINUX));
    let c = compare_blocks(&blocks(&old, &[2000, 2020]), &blocks(&new, &[2010, 2000]), ("old", "new"), 5.0).unwrap();
    let said = "different MLX builds: old ran MLX 0.32.2 (manylinux_2_35_x86_64) on cuda, new MLX 0.32.4 (manylinux_2_35_x86_64) on cuda";
    assert_eq!(c.different_mlx.as_deref(), Some(said));
    assert!(c.rows.iter().any(|r| r.id == "decode/l1b/mlxbench/kvnone/p64/g33/b1/d0"), "configurations match by their settings: {:#?}", c.rows);
    assert_eq!(c.render(Format::Table).unwrap().lines().next(), Some(said), "first, above the table");
    assert_eq!(c.render(Format::Md).unwrap().lines().nth(2), Some(said), "under the title");
    let json: serde_json::Value = serde_json::from_str(&c.render(Format::Json).unwrap()).unwrap();
    assert_eq!(json["different_mlx"], said);

    let c = compare_blocks(&blocks(&new, &[2000, 2020]), &blocks(&new, &[2010, 2000]), ("old", "new"), 5.0).unwrap();
    assert_eq!(c.different_mlx, None);
    assert!(!c.render(Format::Table).unwrap().contains("different MLX"));
    assert!(serde_json::from_str::<serde_json::Value>(&c.render(Format::Json).unwrap()).unwrap().get("different_mlx").is_none());
}
