//! The Hub download path, end to end: a real HTTP server on 127.0.0.1 serves a synthetic model
//! laid out as the Hub's API and resolve URLs, `mlxbench run --model owner/name` downloads it into
//! an empty HF_HOME (found through HF_ENDPOINT), then runs offline from the cache. A 404, a
//! truncated file and a server that stops mid-file give clear errors and leave nothing in the
//! cache that a later run would load.
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::Duration,
};

use mlxbench::synth::{self, Arch, FloatDtype, SynthOptions};

const REPO: &str = "mlxbench-test/tiny";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// How the server sends the weights file.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Weights {
    Whole,
    /// Lists and announces the full size, then sends a body (with a matching Content-Length)
    /// 100 bytes short.
    Truncated,
    /// Announces the full Content-Length, sends half of it and closes the connection.
    StopsMidFile,
}

struct Hub {
    files: BTreeMap<String, Vec<u8>>,
    weights: Mutex<Weights>,
    requests: Mutex<Vec<String>>,
}

struct Server {
    url: String,
    hub: Arc<Hub>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(model: &Path) -> Server {
        let files = std::fs::read_dir(model)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
            .collect();
        let hub = Arc::new(Hub { files, weights: Mutex::new(Weights::Whole), requests: Mutex::default() });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (hub, stop) = (hub.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            let _ = serve(&hub, stream);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Server { url, hub, stop, thread: Some(thread) }
    }

    fn set_weights(&self, weights: Weights) {
        *self.hub.weights.lock().unwrap() = weights;
    }

    /// Stops listening: later requests are refused.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
    }
}

/// A stand-in for a content hash, for the ETag (hf-hub names the cached blob after it).
fn etag(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    format!("{hash:016x}{:016x}", bytes.len())
}

/// Answers one request (the connection closes after it).
fn serve(hub: &Hub, stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut range_start = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range_start = value.trim().strip_prefix("bytes=").and_then(|r| r.split('-').next()).and_then(|s| s.parse::<usize>().ok());
            }
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
    hub.requests.lock().unwrap().push(path.clone());
    let mut out = stream;
    let respond = |out: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8], length: usize| {
        let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {length}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        out.write_all(body)?;
        out.flush()
    };
    let not_found = |out: &mut TcpStream| respond(out, "404 Not Found", &[], b"Entry not found", 15);

    if let Some(rest) = path.strip_prefix(&format!("/api/models/{REPO}/revision/main")) {
        let _ = rest; // ?blobs=true
        let siblings: Vec<_> = hub.files.iter().map(|(name, bytes)| serde_json::json!({"rfilename": name, "size": bytes.len()})).collect();
        let body = serde_json::json!({"id": REPO, "sha": COMMIT, "siblings": siblings}).to_string();
        return respond(&mut out, "200 OK", &[("Content-Type", "application/json".into())], body.as_bytes(), body.len());
    }
    let Some(file) = path.strip_prefix(&format!("/{REPO}/resolve/main/")) else { return not_found(&mut out) };
    let Some(bytes) = hub.files.get(file) else { return not_found(&mut out) };
    let size = bytes.len();
    let start = range_start.unwrap_or(0).min(size);
    let headers = [("ETag", format!("\"{}\"", etag(bytes))), ("X-Repo-Commit", COMMIT.to_string()), ("Content-Range", format!("bytes {start}-{}/{size}", size - 1))];
    let weights = if file == "model.safetensors" { *hub.weights.lock().unwrap() } else { Weights::Whole };
    let body = &bytes[start..];
    if body.len() <= 1 {
        // hf-hub's metadata probe (bytes=0-0).
        return respond(&mut out, "206 Partial Content", &headers, &bytes[..1], 1);
    }
    match weights {
        Weights::Whole => respond(&mut out, "206 Partial Content", &headers, body, body.len()),
        Weights::Truncated => {
            let short = &body[..body.len().saturating_sub(100)];
            respond(&mut out, "206 Partial Content", &headers, short, short.len())
        }
        Weights::StopsMidFile => {
            let _ = respond(&mut out, "206 Partial Content", &headers, &body[..body.len() / 2], body.len());
            out.shutdown(std::net::Shutdown::Both)
        }
    }
}

fn mlxbench(hf_home: &Path, endpoint: &str, model: &str, offline: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mlxbench"));
    command
        .args(["run", "--model", model, "-p", "8", "-n", "2", "--repeats", "1", "--warmup", "0", "--device", "cpu", "--format", "json"])
        .arg("--output")
        .arg(hf_home.parent().unwrap().join("results.json"))
        .env("HF_HOME", hf_home)
        .env("HF_ENDPOINT", endpoint)
        .env_remove("HF_HUB_CACHE")
        .env_remove("RUST_BACKTRACE");
    if offline {
        command.env("HF_HUB_OFFLINE", "1");
    } else {
        command.env_remove("HF_HUB_OFFLINE");
    }
    command.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The cached weights a later run would load: the snapshot's model.safetensors, if any.
fn cached_weights(hf_home: &Path) -> Option<PathBuf> {
    let snapshot = hf_home.join(format!("hub/models--{}/snapshots/{COMMIT}/model.safetensors", REPO.replace('/', "--")));
    snapshot.exists().then_some(snapshot)
}

#[test]
fn a_model_downloads_from_hf_endpoint_then_runs_offline_and_bad_transfers_leave_nothing_loadable() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    let config = synth::preset_config("tiny", Some(Arch::Qwen3)).unwrap();
    synth::write_model(&config, &SynthOptions { bits: Some(4), dtype: FloatDtype::Float32, ..SynthOptions::default() }, &model).unwrap();
    let mut server = Server::start(&model);
    let hf_home = tmp.path().join("hf-home");
    std::fs::create_dir_all(&hf_home).unwrap();

    // A repo the Hub does not have.
    let out = mlxbench(&hf_home, &server.url, "mlxbench-test/missing", false);
    assert!(!out.status.success());
    let said = text(&out);
    println!("--- 404:\n{said}");
    assert!(said.contains("mlxbench-test/missing") && said.contains("not found (HTTP 404)"), "{said}");

    // Weights shorter than the Hub lists them: an error, and no weights in the cache.
    server.set_weights(Weights::Truncated);
    let out = mlxbench(&hf_home, &server.url, REPO, false);
    assert!(!out.status.success());
    let said = text(&out);
    println!("--- truncated:\n{said}");
    assert!(said.contains("model.safetensors") && said.contains("truncated"), "{said}");
    assert_eq!(cached_weights(&hf_home), None, "{:#?}", files_under(&hf_home));

    // The connection closes halfway, on every retry: an error, and only hf-hub's .part file.
    server.set_weights(Weights::StopsMidFile);
    let out = mlxbench(&hf_home, &server.url, REPO, false);
    assert!(!out.status.success());
    let said = text(&out);
    println!("--- stops mid-file:\n{said}");
    assert!(said.contains("model.safetensors") && said.contains("broke off"), "{said}");
    assert_eq!(cached_weights(&hf_home), None, "{:#?}", files_under(&hf_home));
    let parts: Vec<_> = files_under(&hf_home).into_iter().filter(|p| p.extension().is_some_and(|e| e == "part")).collect();
    assert_eq!(parts.len(), 1, "the partial download, kept to resume: {:#?}", files_under(&hf_home));

    // A good server: the download resumes and completes, and the run measures.
    server.set_weights(Weights::Whole);
    let out = mlxbench(&hf_home, &server.url, REPO, false);
    let said = text(&out);
    println!("--- download:\n{said}");
    assert!(out.status.success(), "{said}");
    let weights = cached_weights(&hf_home).expect("the weights are cached");
    assert_eq!(std::fs::read(weights).unwrap(), std::fs::read(model.join("model.safetensors")).unwrap(), "byte for byte");
    let requests = server.hub.requests.lock().unwrap().clone();
    assert!(requests.iter().any(|r| r.contains("blobs=true")), "{requests:#?}");

    // No server and HF_HUB_OFFLINE=1: the run is served from the cache.
    server.stop();
    let out = mlxbench(&hf_home, &server.url, REPO, true);
    let said = text(&out);
    println!("--- offline:\n{said}");
    assert!(out.status.success(), "{said}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records"][0]["status"], "ok", "{report:#}");
    assert!(!files_under(&hf_home).iter().any(|p| p.extension().is_some_and(|e| e == "part")), "the .part became the blob");
}
