//! The HTML report in a real headless Chromium, Chrome or Edge: `mlxbench run --report` and
//! `mlxbench report` over two results files, as a user makes them; the page loads with no console
//! message, asks for nothing over the network, and every chart plots as many points as it says
//! (each one `<circle>`). The screenshot is left in the target folder (`report-html/report.png`).
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

/// Browsers that print a page's DOM and screenshots headless, by the names they have on PATH.
const BROWSERS_ON_PATH: [&str; 7] =
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "chrome-headless-shell", "microsoft-edge"];

/// The same browsers as macOS apps (app, executable inside `Contents/MacOS`). `.ci/setup` checks
/// these bundles too, and installs Google Chrome with Homebrew when none is there.
const MAC_APPS: [(&str, &str); 4] = [
    ("Google Chrome", "Google Chrome"),
    ("Chromium", "Chromium"),
    ("Google Chrome for Testing", "Google Chrome for Testing"),
    ("Microsoft Edge", "Microsoft Edge"),
];

/// The executables of `MAC_APPS` in `/Applications`, then in `<home>/Applications`.
fn mac_bundles(home: Option<&Path>) -> Vec<PathBuf> {
    let roots = std::iter::once(PathBuf::from("/Applications")).chain(home.map(|h| h.join("Applications")));
    roots.flat_map(|root| MAC_APPS.map(|(app, exe)| root.join(format!("{app}.app")).join("Contents/MacOS").join(exe))).collect()
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The headless browser: `$MLXBENCH_BROWSER`, else the first of `BROWSERS_ON_PATH` on PATH, else
/// (on macOS) the first of `mac_bundles`. Fails saying where it looked and how to get one.
fn browser() -> PathBuf {
    if let Some(path) = std::env::var_os("MLXBENCH_BROWSER") {
        let path = PathBuf::from(path);
        assert!(executable(&path), "MLXBENCH_BROWSER={} is not an executable file", path.display());
        return path;
    }
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    let on_path = BROWSERS_ON_PATH.iter().flat_map(|name| path_dirs.iter().map(move |dir| dir.join(name)));
    let bundles = if cfg!(target_os = "macos") { mac_bundles(std::env::var_os("HOME").as_deref().map(Path::new)) } else { Vec::new() };
    if let Some(found) = on_path.chain(bundles.iter().cloned()).find(|p| executable(p)) {
        return found;
    }
    let bundles: Vec<String> = bundles.iter().map(|b| b.display().to_string()).collect();
    panic!(
        "no headless browser found: MLXBENCH_BROWSER is unset, none of {BROWSERS_ON_PATH:?} is on PATH{}. \
         Run .ci/setup (it installs Chromium on Debian, Google Chrome with Homebrew on a Mac), install \
         Chrome or Chromium yourself, or point MLXBENCH_BROWSER at one",
        if bundles.is_empty() { String::new() } else { format!(" and none of these apps is installed: {bundles:#?}") }
    );
}

/// Loads `page` headless; returns the DOM after loading and the page's console messages.
fn load(page: &Path, screenshot: Option<&Path>) -> (String, Vec<String>) {
    let url = format!("file://{}", page.display());
    let browser = browser();
    // A profile of its own: a Chrome the user has open keeps its profile locked, and a fresh one
    // has no first-run dialogs, sync, extensions or keychain prompts (macOS).
    let profile = tempfile::tempdir().unwrap();
    let mut command = Command::new(&browser);
    // chrome-headless-shell is headless only and knows no modes.
    let headless_shell = browser.file_name().is_some_and(|n| n.to_string_lossy().contains("headless-shell"));
    command.arg(if headless_shell { "--headless" } else { "--headless=new" });
    command.arg(format!("--user-data-dir={}", profile.path().display()));
    command.args(["--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync"]);
    command.args(["--disable-background-networking", "--password-store=basic", "--use-mock-keychain"]);
    command.args(["--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]);
    match screenshot {
        Some(path) => command.arg("--window-size=1100,2400").arg(format!("--screenshot={}", path.display())),
        None => command.arg("--dump-dom"),
    };
    let out = command.arg(&url).output().unwrap();
    assert!(out.status.success(), "{}: {}", browser.display(), String::from_utf8_lossy(&out.stderr));
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
    let table = |class: &str| dom.split(&format!("<table class=\"{class}\">")).nth(1).unwrap().split("</table>").next().unwrap().to_string();
    assert_eq!(table("context").matches("<tr>").count(), 1 + 2, "the context table: a header and a row per run (two files, two runs)");
    assert_eq!(table("summary").matches("<tr>").count(), 1 + 6, "the summary's header and 6 configurations");
    assert!(table("context").contains("unknown (CSV keeps no warmup or repeats)"), "{}", table("context"));
    assert!(dom.contains("Merged from 2 results files: "), "says what was merged");
    let charts = charts(&dom);
    let captions: Vec<&str> = charts.iter().map(|(c, _, _)| c.as_str()).collect();
    for expected in [
        "decode t/s against prompt length",
        "prompt t/s against prompt length",
        "TTFT ms against prompt length",
        "peak memory against kv-bits",
        "KV cache against kv-bits",
        "decode t/s per window of generated tokens, against context",
    ] {
        assert!(captions.contains(&expected), "{expected:?} missing from {captions:#?}");
    }
    for (caption, declared, circles) in &charts {
        assert!(*declared > 0 && circles == declared, "{caption}: declares {declared} points, draws {circles}");
    }
    // 2 prompt lengths x 3 kv-bits; each configuration has 2 decode windows.
    let points = |caption: &str| charts.iter().find(|(c, _, _)| c == caption).unwrap().1;
    assert_eq!(points("peak memory against kv-bits"), 6);
    assert_eq!(points("decode t/s per window of generated tokens, against context"), 12);
    assert!(!captions.iter().any(|c| c.ends_with("against depth") || c.ends_with("against batch")), "one depth and one batch: {captions:?}");

    let screenshot = dir.join("report.png");
    load(&page, Some(&screenshot));
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "a screenshot with something on it");
}

/// The app bundles a Mac is searched for, the list `.ci/setup` checks before it installs Chrome.
#[test]
fn a_mac_is_searched_for_chrome_chromium_chrome_for_testing_and_edge_apps() {
    let expected = [
        "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
        "/Applications/Chromium.app/Contents/MacOS/Chromium",
        "/Applications/Google Chrome for Testing.app/Contents/MacOS/Google Chrome for Testing",
        "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
        "/Users/ada/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
        "/Users/ada/Applications/Chromium.app/Contents/MacOS/Chromium",
        "/Users/ada/Applications/Google Chrome for Testing.app/Contents/MacOS/Google Chrome for Testing",
        "/Users/ada/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
    ];
    assert_eq!(mac_bundles(Some(Path::new("/Users/ada"))), expected.map(PathBuf::from));
    assert_eq!(mac_bundles(None), expected[..4].iter().map(PathBuf::from).collect::<Vec<_>>());
}

/// The cells of each Markdown table of `md` (header first), in order.
fn markdown_tables(md: &str) -> Vec<Vec<Vec<String>>> {
    let split = |line: &str| line.trim().trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect::<Vec<_>>();
    let mut tables = Vec::new();
    let mut lines = md.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("| model |") {
            let mut rows = vec![split(line)];
            lines.next(); // the rule
            while let Some(row) = lines.next_if(|l| l.starts_with('|')) {
                rows.push(split(row));
            }
            tables.push(rows);
        }
    }
    tables
}

/// The cells of the page's `<table class="{class}">` (header first).
fn html_table(dom: &str, class: &str) -> Vec<Vec<String>> {
    let Some(table) = dom.split(&format!("<table class=\"{class}\">")).nth(1) else { return Vec::new() };
    let table = table.split("</table>").next().unwrap();
    let text = |cell: &str| cell.split_once('>').unwrap().1.split("</t").next().unwrap().replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    table
        .split("<tr>")
        .skip(1)
        .map(|row| row.split("<t").skip(1).filter(|c| c.starts_with('d') || c.starts_with('h')).map(text).collect())
        .collect()
}

/// Per chart of a page: its caption and the legend labels of its series (the SVG's last texts).
fn legends(dom: &str) -> Vec<(String, Vec<String>)> {
    dom.split("<figure class=\"chart\"")
        .skip(1)
        .map(|figure| {
            let figure = &figure[..figure.find("</figure>").unwrap()];
            let caption = figure.split("<figcaption>").nth(1).unwrap().split('<').next().unwrap().to_string();
            let texts = figure.split("<text").skip(1).filter_map(|t| Some(t.split_once('>')?.1.split('<').next()?.trim().to_string())).collect();
            (caption, texts)
        })
        .collect()
}

/// Where the screenshots of the report are kept: `$MLXBENCH_SCREENSHOTS`, else the target folder.
fn screenshot_path(dir: &Path, name: &str) -> PathBuf {
    match std::env::var_os("MLXBENCH_SCREENSHOTS") {
        Some(folder) => {
            std::fs::create_dir_all(&folder).unwrap();
            Path::new(&folder).join(name)
        }
        None => dir.join(name),
    }
}

fn tiny_llama(dir: &Path) -> String {
    let model = dir.join("tiny-llama");
    let config = synth::preset_config("tiny", Some(Arch::Llama)).unwrap();
    synth::write_model(&config, &SynthOptions { bits: Some(4), dtype: FloatDtype::Float32, ..SynthOptions::default() }, &model).unwrap();
    model.to_str().unwrap().to_owned()
}

/// A run of both engines (mlx-lm through the reference Python when `.ci/setup` made it; else the
/// same results relabelled as mlx-lm's, a file with both engines as a user could have one): the
/// page shows the terminal's summary and ratio tables cell for cell, with ITL, parameters and load.
#[test]
fn the_report_of_a_two_engine_run_shows_what_the_terminal_shows() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html-engines");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let model = tiny_llama(&dir);
    let results = dir.join("engines.json");
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyref-0.32.4/bin/python");
    let mut args = vec!["run", "--model", &model, "-p", "16,32", "-n", "8", "--kv-bits", "none,8", "--repeats", "3", "--device", "cpu"];
    let python_arg = python.to_str().unwrap().to_owned();
    if python.is_file() {
        args.extend(["--engine", "mlxbench,mlx-lm", "--python", &python_arg]);
    }
    let results_arg = results.to_str().unwrap().to_owned();
    args.extend(["-o", &results_arg]);
    let mut terminal = String::from_utf8(mlxbench(&args).stdout).unwrap();
    if !python.is_file() {
        use mlxbench::{
            bench::Engine,
            report::{read::read_records, Format, Printable},
        };
        let ours = read_records(&results).unwrap();
        let theirs = ours.iter().cloned().map(|mut r| {
            r.point.engine = Engine::MlxLm;
            r
        });
        let both: Vec<_> = ours.iter().cloned().zip(theirs).flat_map(|(a, b)| [a, b]).collect();
        std::fs::write(&results, both.render(Format::Json).unwrap()).unwrap();
        terminal = both.render(Format::Md).unwrap();
    }
    let page = dir.join("engines.html");
    mlxbench(&["report", &results_arg, "-o", page.to_str().unwrap()]);
    let (dom, console) = load(&page, None);
    assert!(console.is_empty(), "console messages: {console:#?}");

    let tables = markdown_tables(&terminal);
    assert_eq!(tables.len(), 2, "the summary and the ratios: {terminal}");
    assert_eq!(html_table(&dom, "summary"), tables[0], "the summary, cell for cell");
    assert_eq!(html_table(&dom, "ratios"), tables[1], "mlxbench ÷ mlx-lm, cell for cell");
    let header = &tables[0][0];
    for column in ["engine", "kv", "prompt", "decode t/s", "mean decode t/s", "ITL p50/p99 ms", "peak memory"] {
        assert!(header.iter().any(|h| h == column), "{column} in {header:?}");
    }
    assert_eq!(tables[1][0][3..], ["decode t/s", "prompt t/s", "TTFT (inverted)", "peak memory (inverted)"]);
    assert!(terminal.contains("> 1 is better for the first, in every column"), "{terminal}");
    assert!(dom.contains("&gt; 1 is better for the first, in every column"), "the rule on the page too");
    assert!(dom.contains(" parameters | loaded in "), "the model's parameters and load time");
    assert!(dom.contains("<details><summary>Every statistic per configuration</summary>"));
    for (caption, labels) in legends(&dom) {
        assert!(labels.iter().all(|l| !l.contains("kvnone") && !l.contains("kv8")), "{caption}: one vocabulary, `kv none`: {labels:?}");
    }
    let screenshot = screenshot_path(&dir, "two-engines.png");
    load(&page, Some(&screenshot));
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
}

/// One sweep appended twice to one CSV file: the report keeps the runs apart (a run column, a
/// context row and series per run), says what was merged, charts only the swept axes, and draws
/// series that measured the same (the KV cache's size) once.
#[test]
fn a_sweep_appended_twice_keeps_its_two_runs_apart() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html-twice");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let model = tiny_llama(&dir);
    let csv = dir.join("twice.csv");
    let sweep = ["run", "--model", &model, "-p", "16,32", "-n", "8", "--kv-bits", "none,8", "--repeats", "2", "--device", "cpu", "-o", csv.to_str().unwrap()];
    mlxbench(&sweep);
    // Runs are told apart by their start, to the second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = String::from_utf8(mlxbench(&sweep).stdout).unwrap();
    assert!(!second.contains("| run |"), "one run's own table has no run column: {second}");
    let page = dir.join("twice.html");
    let out = mlxbench(&["report", csv.to_str().unwrap(), "-o", page.to_str().unwrap()]);
    assert!(out.status.success());
    let (dom, console) = load(&page, None);
    assert!(console.is_empty(), "console messages: {console:#?}");

    let summary = html_table(&dom, "summary");
    let run = summary[0].iter().position(|h| h == "run").unwrap_or_else(|| panic!("a run column: {:?}", summary[0]));
    let runs: Vec<&str> = summary[1..].iter().map(|row| row[run].as_str()).collect();
    assert_eq!(runs, ["1", "1", "1", "1", "2", "2", "2", "2"]);
    let context = html_table(&dom, "context");
    assert_eq!(context.len(), 1 + 2, "a context row per run: {context:?}");
    assert_eq!((context[0][0].as_str(), context[1][0].as_str(), context[2][0].as_str()), ("run", "1", "2"));
    assert!(dom.contains("2 runs measured the same configurations; tables and charts keep them apart: run 1 started "), "says what was merged");

    let charts = legends(&dom);
    let captions: Vec<&str> = charts.iter().map(|(c, _)| c.as_str()).collect();
    assert!(captions.contains(&"decode t/s against prompt length") && captions.contains(&"KV cache against kv-bits"), "{captions:?}");
    assert!(!captions.iter().any(|c| c.contains("depth") || c.contains("batch")), "no chart of an axis with one value: {captions:?}");
    let (_, decode) = charts.iter().find(|(c, _)| c == "decode t/s against prompt length").unwrap();
    for label in ["kv none, run 1", "kv none, run 2", "kv 8, run 1", "kv 8, run 2"] {
        assert!(decode.iter().any(|l| l == label), "{label} in {decode:?}");
    }
    let (_, kv) = charts.iter().find(|(c, _)| c == "KV cache against kv-bits").unwrap();
    // The cache grows in steps of 256 tokens: 16 and 32 prompt tokens, in either run, hold as much.
    assert_eq!(kv.last().map(String::as_str), Some("prompt 16, run 1 = prompt 16, run 2 = prompt 32, run 1 = prompt 32, run 2"), "identical series draw once: {kv:?}");
    let screenshot = screenshot_path(&dir, "appended-twice.png");
    load(&page, Some(&screenshot));
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
}

/// `export` takes `run` results and says so plainly when it is given `serve` results; `report`
/// draws serve results from their JSON, and says so when given serve's CSV.
#[test]
fn serve_results_are_refused_with_a_plain_message() {
    let dir = tempfile::tempdir().unwrap();
    let serve = dir.path().join("serve.csv");
    std::fs::write(&serve, mlxbench::serve::csv_header().unwrap()).unwrap();
    for command in ["report", "export"] {
        let mut args = vec![command, serve.to_str().unwrap()];
        if command == "export" {
            args.extend(["--format", "bmf"]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_mlxbench")).args(&args).env_remove("RUST_BACKTRACE").output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let says = match command {
            "report" => "a serve report is drawn from serve's .json or .jsonl results (its CSV keeps no requests)",
            _ => "these are results of `mlxbench serve`; `mlxbench report` and `mlxbench export` take results of `mlxbench run`",
        };
        assert!(stderr.contains(says), "{command}: {stderr}");
    }
}

/// A serve record at `concurrency` clients: 10 requests of 4 tokens, TTFT `ttft` ms and 20 ms a
/// token after it, one after another over the point.
fn serve_point(concurrency: usize, ttft: f64, search: Option<mlxbench::serve::search::SearchStep>) -> mlxbench::serve::ServeRecord {
    use mlxbench::serve::{
        load::Load,
        metrics::{PointSummary, RequestRecord, Slo, TokenSource},
        ServeContext, ServePoint, ServeRecord,
    };
    let requests: Vec<RequestRecord> = (0..10)
        .map(|k| RequestRecord {
            chunk_ms: vec![ttft, ttft + 20.0, ttft + 40.0, ttft + 60.0],
            end_ms: ttft + 60.0,
            output_tokens: 4,
            token_source: TokenSource::Usage,
            cached_tokens: Some(if k == 0 { 0 } else { 50 }),
            ..RequestRecord::sent("http://127.0.0.1:1", k as f64 * 100.0 / concurrency as f64, Some(100))
        })
        .collect();
    let slo = Slo::parse("ttft_p90<=300ms").unwrap();
    ServeRecord {
        point: ServePoint { instances: 1, decode_concurrency: None, prompt_concurrency: None, kv_bits: None, load: Load::Closed { concurrency } },
        context: ServeContext {
            timestamp: "2026-12-08T00:00:00Z".into(),
            git_commit: "abc".into(),
            mlxbench_version: "0.1.0".into(),
            hardware: "test".into(),
            model: "tiny".into(),
            api: "completions".into(),
            requests: "input 16 / output 4 tokens (stddev 0%)".into(),
            seed: 0,
            workload: "shared-prefix 64 tokens, 1 group, share 100%".into(),
            cache_mode: "as-is".into(),
            slo: Some(slo.label()),
        },
        urls: vec!["http://127.0.0.1:1".into()],
        error: None,
        summary: Some(PointSummary::of(&requests, &slo)),
        server_memory: None,
        requests,
        search,
    }
}

#[test]
fn the_serve_report_draws_throughput_against_latency_with_its_pareto_front() {
    use mlxbench::serve::search::{SearchAxis, SearchStep};
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-serve");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let step = |probe: usize, met: bool, best: Option<f64>, last: bool| Some(SearchStep { axis: SearchAxis::Concurrency, probe, met_slo: met, saturated: false, best, last });
    // A search: 1, 2, 4 pass, 8 fails its TTFT objective, 6 passes, 7 does not.
    let records = vec![
        serve_point(1, 50.0, step(1, true, Some(1.0), false)),
        serve_point(2, 80.0, step(2, true, Some(2.0), false)),
        serve_point(4, 150.0, step(3, true, Some(4.0), false)),
        serve_point(8, 900.0, step(4, false, Some(4.0), false)),
        serve_point(6, 250.0, step(5, true, Some(6.0), false)),
        serve_point(7, 400.0, step(6, false, Some(6.0), true)),
    ];
    let json = dir.join("serve.json");
    std::fs::write(&json, serde_json::to_string(&mlxbench::serve::ServeReport { records }).unwrap()).unwrap();
    let page = dir.join("serve.html");
    mlxbench(&["report", json.to_str().unwrap(), "-o", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).unwrap();
    for fetch in ["src=", "<link", "<script", "url(", "@import"] {
        assert!(!html.contains(fetch), "the page must not fetch anything ({fetch})");
    }
    let (dom, console) = load(&page, None);
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert_eq!(html_table(&dom, "points").len(), 1 + 6, "a header and a row per point");
    assert!(dom.contains("SLO search over concurrency: 6 is the highest load that met ttft_p90&lt;=300ms unsaturated (probed 1, 2, 4, 8, 6, 7)"), "{dom}");
    let charts = charts(&dom);
    assert_eq!(charts.len(), 1, "{charts:?}");
    let (caption, declared, circles) = &charts[0];
    assert_eq!((caption.as_str(), *declared, *circles), ("Throughput vs TTFT p90", 6, 6));
    // Output t/s = 40 tokens ÷ (the last request sent, 900 ms ÷ c, + its E2E): c=1 39.6 at TTFT 50,
    // c=2 67.8 at 80, c=4 92.0 at 150 make the front; c=6 (87.0 at 250), c=7 (67.9 at 400) and
    // c=8 (37.4 at 900) are slower and give less than c=4.
    assert!(dom.contains("data-front=\"3\""), "{dom}");
    let screenshot = screenshot_path(&dir, "serve-pareto.png");
    load(&page, Some(&screenshot));
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
}

/// The KV-cache section (`report` given `run`, `quality` and `capacity` results): per model one
/// table, the same cells as `--kv-table` prints, and one figure drawing every bar it declares,
/// in a page that loads without a console message.
#[test]
fn the_kv_section_shows_speed_quality_and_capacity_per_kv_setting() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html-kv");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let model = tiny_llama(&dir);
    let runs = dir.join("runs.json");
    let cpu = ["--device", "cpu"];
    let mut run = vec!["run", "--model", &model, "-p", "16,32", "-n", "8", "--kv-bits", "none,4", "--repeats", "1", "--warmup", "0"];
    run.extend(cpu);
    run.extend(["-o", runs.to_str().unwrap()]);
    mlxbench(&run);
    // A budget everything fits in: the answer is the ceiling, 512.
    let capacity = dir.join("capacity.json");
    let mut search = vec!["capacity", "--model", &model, "--kv-bits", "none,4", "--memory-limit", "1TB", "--start", "256"];
    search.extend(["--max-n-prompt", "512", "-n", "2", "--device", "cpu", "-o", capacity.to_str().unwrap()]);
    mlxbench(&search);
    // Quality records as `mlxbench quality` writes them (made by hand: real quality needs a real model).
    let quality = dir.join("quality.json");
    let entry = |kv: &str, kl: f64, top1: f64| {
        format!(
            "{{\"engine\":\"mlxbench\",\"model\":{model:?},\"text\":\"t\",\"kv_bits\":{kv},\"kv_group_size\":64,\"max_kv_size\":null,\
             \"depth\":512,\"n_score\":64,\"n_generate\":16,\"status\":\"ok\",\"error\":null,\"kl_mean\":{kl},\"top1_agreement\":{top1}}}"
        )
    };
    std::fs::write(&quality, format!("[{},{}]", entry("null", 0.0, 1.0), entry("4", 0.25, 0.75))).unwrap();
    let files = [runs.to_str().unwrap(), quality.to_str().unwrap(), capacity.to_str().unwrap()];
    let page = dir.join("kv.html");
    let mut report = vec!["report"];
    report.extend(files);
    report.extend(["-o", page.to_str().unwrap()]);
    mlxbench(&report);
    let (dom, console) = load(&page, None);
    assert!(console.is_empty(), "console messages: {console:#?}");
    let table = html_table(&dom, "kv-choice");
    let header = &table[0];
    for column in ["kv", "decode t/s @16", "peak memory @32", "KL mean @512", "top-1 @512", "longest context"] {
        assert!(header.iter().any(|h| h == column), "{column:?} missing from {header:?}");
    }
    assert_eq!(table.len(), 1 + 2, "a header and a row per kv setting");
    let cell = |row: usize, name: &str| table[row][header.iter().position(|h| h == name).unwrap()].clone();
    assert_eq!((cell(1, "kv"), cell(2, "kv")), ("none".to_string(), "4".to_string()));
    assert_eq!((cell(1, "top-1 @512"), cell(2, "top-1 @512")), ("100.0%".to_string(), "75.0%".to_string()));
    assert_eq!((cell(1, "longest context"), cell(2, "longest context")), ("512".to_string(), "512".to_string()));
    // --kv-table prints the same cells.
    let mut md = vec!["report", "--kv-table"];
    md.extend(files);
    let md = String::from_utf8(mlxbench(&md).stdout).unwrap();
    let rows: Vec<Vec<String>> = md
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .map(|l| l.trim().trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
        .collect();
    assert_eq!(rows, table, "{md}");
    // The figure: two longest-context bars and a decode bar per kv setting and context.
    let figure = dom.split("<figure class=\"kv-choice\"").nth(1).expect("the KV figure").split("</figure>").next().unwrap();
    let declared: usize = figure.split('"').nth(1).unwrap().parse().unwrap();
    assert_eq!(declared, 2 + 2 * 2);
    assert_eq!(figure.matches("<rect class=\"bar\"").count(), declared);
    let screenshot = screenshot_path(&dir, "kv.png");
    load(&page, Some(&screenshot));
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "a screenshot with something on it");
}
