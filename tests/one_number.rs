//! One number under one name everywhere: a real sweep on a tiny synthetic model, and the headline
//! of every metric (decode t/s: the robust rate's median; prompt t/s, TTFT, peak memory: their
//! medians) for each configuration is the same number in the terminal's Markdown table, the JSON
//! results, the CSV results read back, the HTML report and both export formats.
use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Output},
};

use mlxbench::{
    bench::{ids::config_id, RunRecord},
    config::bits_or_none,
    report::{
        headline::{Headline, HEADLINES},
        read::read_records,
        Format, Printable,
    },
};
use serde_json::Value;

fn mlxbench(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_mlxbench")).args(args).env_remove("RUST_BACKTRACE").output().expect("running mlxbench");
    assert!(out.status.success(), "mlxbench {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A configuration as the tables tell rows apart here: (kv, prompt).
type Key = (String, String);

fn key(r: &RunRecord) -> Key {
    (bits_or_none(r.point.kv_bits), r.point.n_prompt.to_string())
}

/// The Markdown summary table's cells by configuration and column name.
fn markdown_cells(md: &str) -> BTreeMap<Key, BTreeMap<String, String>> {
    let split = |line: &str| line.trim().trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect::<Vec<_>>();
    let mut lines = md.lines().skip_while(|l| !l.starts_with("| model |"));
    let header = split(lines.next().expect("a summary table"));
    lines
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: BTreeMap<String, String> = header.iter().cloned().zip(split(row)).collect();
            ((cells["kv"].clone(), cells["prompt"].clone()), cells)
        })
        .collect()
}

/// The HTML summary table's cells (text and `data-value`) by configuration and column name.
fn html_cells(html: &str) -> BTreeMap<Key, BTreeMap<String, (String, Option<f64>)>> {
    let table = html.split("<table class=\"summary\">").nth(1).unwrap().split("</table>").next().unwrap();
    let mut rows = table.split("<tr>").skip(1);
    let inner = |tag: &str| tag.split_once('>').unwrap().1.split('<').next().unwrap().to_string();
    let header: Vec<String> = rows.next().unwrap().split("<th").skip(1).map(inner).collect();
    rows.map(|row| {
        let cells: BTreeMap<String, (String, Option<f64>)> = header
            .iter()
            .cloned()
            .zip(row.split("<td").skip(1).map(|td| {
                let value = td.split("data-value=\"").nth(1).map(|v| v.split('"').next().unwrap().parse().unwrap());
                (inner(td), value)
            }))
            .collect();
        ((cells["kv"].0.clone(), cells["prompt"].0.clone()), cells)
    })
    .collect()
}

/// The export measure of each headline.
fn measure(headline: Headline) -> &'static str {
    match headline {
        Headline::Decode => "generation-tps",
        Headline::Prompt => "prompt-tps",
        Headline::Ttft => "ttft",
        Headline::PeakMemory => "peak-memory",
    }
}

#[test]
fn every_output_shows_the_same_number_for_each_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let model = at("tiny");
    mlxbench(&["synth", "--preset", "tiny", "--arch", "llama", "--dtype", "float32", "--out", &model]);
    let json_path = at("x.json");
    let run = mlxbench(&["run", "--model", &model, "-p", "16,32", "-n", "8", "--kv-bits", "none,8", "--repeats", "3", "--device", "cpu", "-o", &json_path]);
    let markdown = markdown_cells(&String::from_utf8(run.stdout).unwrap());

    let records = read_records(Path::new(&json_path)).unwrap();
    assert_eq!(records.len(), 4);
    // The same records as CSV results, read back: the medians come again from the trials' rows.
    let csv_path = at("x.csv");
    std::fs::write(&csv_path, records.render(Format::Csv).unwrap()).unwrap();
    let from_csv = read_records(Path::new(&csv_path)).unwrap();

    let page = at("x.html");
    mlxbench(&["report", &json_path, "-o", &page]);
    let html = html_cells(&std::fs::read_to_string(&page).unwrap());
    let export = |format: &str| -> Value { serde_json::from_slice(&mlxbench(&["export", "--format", format, &json_path]).stdout).unwrap() };
    let bmf = export("bmf");
    let github: Vec<Value> = [export("github-bigger"), export("github-smaller")].iter().flat_map(|d| d.as_array().unwrap().clone()).collect();

    let mut table = vec![format!(
        "{:<26} {:<12} {:>20} {:>20} {:>10} {:>20} {:>20} {:>20}",
        "configuration", "metric", "JSON", "CSV (re-read)", "Markdown", "HTML data-value", "bmf", "github-*"
    )];
    for (r, csv) in records.iter().zip(&from_csv) {
        assert_eq!(r.point, csv.point);
        let id = config_id(&r.point);
        for headline in HEADLINES {
            let json = headline.value(r.summary.as_ref()).unwrap_or_else(|| panic!("{id}: no {}", headline.name()));
            let csv = headline.value(csv.summary.as_ref()).unwrap();
            let md = &markdown[&key(r)][headline.name()];
            let (html_text, html_value) = &html[&key(r)][headline.name()];
            let bmf_value = bmf[&id][measure(headline)]["value"].as_f64().unwrap();
            let name = format!("{id} {}", measure(headline));
            let github_value = github.iter().find(|e| e["name"] == name.as_str()).unwrap_or_else(|| panic!("{name}"))["value"].as_f64().unwrap();
            table.push(format!(
                "{:<26} {:<12} {:>20} {:>20} {:>10} {:>20} {:>20} {:>20}",
                format!("kv {} p{}", key(r).0, key(r).1),
                headline.name(),
                json,
                csv,
                md.split(" ±").next().unwrap(),
                html_value.unwrap(),
                bmf_value,
                github_value
            ));
            assert_eq!(csv, json, "{name}: CSV read back");
            assert_eq!(*html_value, Some(json), "{name}: HTML");
            assert_eq!(bmf_value, json, "{name}: bmf");
            assert_eq!(github_value, json, "{name}: github-action-benchmark");
            // What a reader sees: the same digits in the terminal and on the page.
            let shown = headline.show(json);
            assert!(md.starts_with(&shown), "{name}: Markdown shows {md:?}, the headline is {shown}");
            assert!(html_text.starts_with(&shown), "{name}: HTML shows {html_text:?}, the headline is {shown}");
        }
        // The mean-based rate is shown, under its own name, and is not the headline.
        let mean = r.summary.as_ref().unwrap().generation_tps.as_ref().unwrap().mean;
        assert!(markdown[&key(r)]["mean decode t/s"].starts_with(&format!("{mean:.1} ± ")), "{:?}", markdown[&key(r)]);
    }
    eprintln!("The headline of each configuration, per output:\n{}", table.join("\n"));
}
