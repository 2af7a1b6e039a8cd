//! The HTML report in a real headless Chromium: `mlxbench run --report` and `mlxbench report`
//! over two results files, as a user makes them; the page loads with no console message, asks
//! for nothing over the network, and every chart plots as many points as it says (each one
//! `<circle>`). The screenshot is left in the target folder (`report-html/report.png`).
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use mlxbench::synth::{self, Arch, FloatDtype, SynthOptions};

fn mlxbench(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_mlxbench")).args(args).env_remove("RUST_BACKTRACE").output().unwrap();
    assert!(out.status.success(), "mlxbench {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The headless browser: `$MLXBENCH_CHROMIUM`, else the first Chromium on PATH.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("MLXBENCH_CHROMIUM") {
        return path.into();
    }
    for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
        if let Ok(out) = Command::new("which").arg(name).output() {
            if out.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            }
        }
    }
    panic!("no Chromium found: install it (.ci/setup does on Debian) or set MLXBENCH_CHROMIUM");
}

/// Loads `page` headless; returns the DOM after loading and the page's console messages.
fn load(page: &Path, screenshot: Option<&Path>) -> (String, Vec<String>) {
    let url = format!("file://{}", page.display());
    let mut command = Command::new(chromium());
    command.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]);
    match screenshot {
        Some(path) => command.arg("--window-size=1100,2400").arg(format!("--screenshot={}", path.display())),
        None => command.arg("--dump-dom"),
    };
    let out = command.arg(&url).output().unwrap();
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    let console = String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.contains(":CONSOLE")).map(String::from).collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

/// Per chart of a dumped page: its caption, the points it declares, the circles it draws.
fn charts(dom: &str) -> Vec<(String, usize, usize)> {
    dom.split("<figure class=\"chart\"")
        .skip(1)
        .map(|figure| {
            let figure = &figure[..figure.find("</figure>").expect("a closed figure")];
            let declared = figure.split('"').nth(1).unwrap().parse().unwrap();
            let caption = figure.split("<figcaption>").nth(1).unwrap().split('<').next().unwrap().to_string();
            (caption, declared, figure.matches("<circle").count())
        })
        .collect()
}

#[test]
fn the_report_of_a_sweep_loads_cleanly_in_chromium_with_every_chart_plotted() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The console check itself: a page that logs is caught.
    let noisy = dir.join("noisy.html");
    std::fs::write(&noisy, "<html><body><script>console.error('broken chart')</script></body></html>").unwrap();
    let (_, console) = load(&noisy, None);
    assert!(console.iter().any(|l| l.contains("broken chart")), "console messages are not seen: {console:?}");

    let model = dir.join("tiny");
    let config = synth::preset_config("tiny", Some(Arch::Llama)).unwrap();
    synth::write_model(&config, &SynthOptions { bits: Some(4), dtype: FloatDtype::Float32, ..SynthOptions::default() }, &model).unwrap();
    let model = model.to_str().unwrap();
    // 130 generated tokens: two windows of the per-token decode rate.
    let sweep = ["run", "--model", model, "-n", "130", "--repeats", "2", "--warmup", "0", "--device", "cpu", "-f", "csv"];
    let csv = dir.join("sweep.csv");
    let mut first = sweep.to_vec();
    first.extend(["-p", "8,16", "--kv-bits", "none,8", "--report", "-o", csv.to_str().unwrap()]);
    mlxbench(&first);
    let beside = dir.join("sweep.html");
    assert!(beside.is_file(), "run --report writes the page beside the results");
    let json = dir.join("more.json");
    let mut second = sweep.to_vec();
    second.extend(["-p", "8,16", "--kv-bits", "4", "-o", json.to_str().unwrap()]);
    mlxbench(&second);
    let page = dir.join("report.html");
    mlxbench(&["report", csv.to_str().unwrap(), json.to_str().unwrap(), "-o", page.to_str().unwrap()]);

    let html = std::fs::read_to_string(&page).unwrap();
    for fetch in ["src=", "<link", "<script", "url(", "@import"] {
        assert!(!html.contains(fetch), "the page must not fetch anything ({fetch})");
    }
    let (dom, console) = load(&page, None);
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert_eq!(dom.matches("<tr>").count(), 2 + 1 + 6, "the context table (a header and a row), the summary's header and 6 configurations");
    let charts = charts(&dom);
    let captions: Vec<&str> = charts.iter().map(|(c, _, _)| c.as_str()).collect();
    for expected in [
        "Decode (generation) tokens/s against prompt length",
        "Prefill (prompt) tokens/s against prompt length",
        "Time to first token against prompt length",
        "Peak memory against kv-bits",
        "KV cache memory against kv-bits",
        "Decode tokens/s per window of generated tokens, against context",
    ] {
        assert!(captions.contains(&expected), "{expected:?} missing from {captions:#?}");
    }
    for (caption, declared, circles) in &charts {
        assert!(*declared > 0 && circles == declared, "{caption}: declares {declared} points, draws {circles}");
    }
    // 2 prompt lengths x 3 kv-bits; each configuration has 2 decode windows.
    let points = |caption: &str| charts.iter().find(|(c, _, _)| c == caption).unwrap().1;
    assert_eq!(points("Peak memory against kv-bits"), 6);
    assert_eq!(points("Decode tokens/s per window of generated tokens, against context"), 12);

    let screenshot = dir.join("report.png");
    load(&page, Some(&screenshot));
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "a screenshot with something on it");
}
