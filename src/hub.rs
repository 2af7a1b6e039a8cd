//! Where a model comes from: a local directory, or a Hugging Face repo id found in the local HF
//! cache (honouring `HF_HOME`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE`) or downloaded when online.
use std::path::{Path, PathBuf};

use hf_hub::{
    api::sync::{ApiBuilder, ApiError},
    Cache, Repo,
};

use crate::error::{Error, Result};

/// The HF hub cache folder: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn hub_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(home) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join("hub");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".cache/huggingface/hub")
}

/// `HF_HUB_OFFLINE` set to a true value.
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
        .unwrap_or(false)
}

/// `owner/name` with no path-like parts.
fn looks_like_repo_id(spec: &str) -> bool {
    let parts: Vec<&str> = spec.split('/').collect();
    parts.len() == 2
        && parts.iter().all(|p| !p.is_empty() && *p != "." && *p != "..")
        && !spec.starts_with('.')
        && !spec.starts_with('~')
}

/// A complete model directory: a config and its weights (every shard an index names).
fn has_model_files(dir: &Path) -> bool {
    if !dir.join("config.json").is_file() {
        return false;
    }
    if dir.join("model.safetensors").is_file() {
        return true;
    }
    let Ok(text) = std::fs::read_to_string(dir.join("model.safetensors.index.json")) else { return false };
    let Ok(index) = serde_json::from_str::<serde_json::Value>(&text) else { return false };
    let Some(map) = index.get("weight_map").and_then(|m| m.as_object()) else { return false };
    map.values().filter_map(|v| v.as_str()).all(|shard| dir.join(shard).is_file())
}

/// What `dir` lacks of an MLX model's files: `config.json`, the weights (`model.safetensors` or
/// an index), `tokenizer.json`.
pub fn missing_model_files(dir: &Path) -> Vec<&'static str> {
    let weights = dir.join("model.safetensors").is_file() || dir.join("model.safetensors.index.json").is_file();
    [
        (dir.join("config.json").is_file(), "config.json"),
        (weights, "model.safetensors (or its index)"),
        (dir.join("tokenizer.json").is_file(), "tokenizer.json"),
    ]
    .into_iter()
    .filter_map(|(present, name)| (!present).then_some(name))
    .collect()
}

/// Resolves `spec` (a directory or a repo id) to a directory holding the model's files. A
/// directory with a config and weights is taken as it is; one without them is not a model (a
/// spec that could also be a repo id is looked for in the HF cache first).
pub fn resolve(spec: &str) -> Result<PathBuf> {
    let local = PathBuf::from(spec);
    let mut searched = vec![format!("local directory {}", local.display())];
    if local.is_dir() {
        let missing = missing_model_files(&local);
        // The tokenizer alone may be missing: commands that need it say so when they load it.
        if missing.iter().all(|m| *m == "tokenizer.json") {
            return Ok(local);
        }
        if !looks_like_repo_id(spec) {
            return Err(Error::NotModelDirectory { path: local, missing });
        }
        searched[0] = format!("local directory {} (has no {})", local.display(), missing.join(", no "));
    }
    if !looks_like_repo_id(spec) {
        return Err(Error::ModelNotFound { spec: spec.to_string(), searched });
    }
    let cache_dir = hub_cache_dir();
    let cache = Cache::new(cache_dir.clone());
    let cached = cache.model(spec.to_string()).get("config.json").and_then(|p| p.parent().map(Path::to_path_buf));
    searched.push(format!("HF cache {} (models--{})", cache_dir.display(), spec.replace('/', "--")));
    if let Some(dir) = cached.filter(|d| has_model_files(d)) {
        return Ok(dir);
    }
    if offline() {
        searched.push("no download: HF_HUB_OFFLINE is set".into());
        return Err(Error::ModelNotFound { spec: spec.to_string(), searched });
    }
    download(spec, cache).map_err(|detail| Error::Download { spec: spec.to_string(), detail })
}

/// The Hub's endpoint: `$HF_ENDPOINT` (a mirror, or a local server in tests), else huggingface.co.
pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .map(|e| e.trim().trim_end_matches('/').to_string())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "https://huggingface.co".to_string())
}

/// The files of a repo, as the Hub's model API lists them with `blobs=true`.
#[derive(Debug, serde::Deserialize)]
struct RepoFiles {
    siblings: Vec<RepoFile>,
}

#[derive(Debug, serde::Deserialize)]
struct RepoFile {
    rfilename: String,
    /// Bytes; the Hub lists it with `blobs=true`.
    size: Option<u64>,
}

/// The files a benchmark needs: config, tokenizer and weights.
fn wanted(name: &str) -> bool {
    name.ends_with(".safetensors")
        || matches!(name, "config.json" | "model.safetensors.index.json" | "tokenizer.json" | "tokenizer_config.json")
}

/// One line for a failed Hub request: the URL and the status or the transport's error.
fn describe_api_error(error: &ApiError) -> String {
    match error {
        ApiError::RequestError(e) => match e.as_ref() {
            ureq::Error::Status(404, r) => format!("{} not found (HTTP 404)", r.get_url()),
            ureq::Error::Status(code, r) => format!("{} answered HTTP {code} {}", r.get_url(), r.status_text()),
            ureq::Error::Transport(t) => format!("cannot reach the Hub: {t}"),
        },
        ApiError::TooManyRetries(e) => format!("{} (gave up after retrying)", describe_api_error(e)),
        ApiError::IoError(e) => format!("the download broke off: {e}"),
        other => other.to_string(),
    }
}

/// Retries of a download that broke off, each resuming where the last stopped.
const DOWNLOAD_RETRIES: usize = 2;

/// Downloads config, tokenizer and weights of `repo_id` into the HF cache. Each file lands in
/// the cache only whole: hf-hub writes a `.part` file and renames it when the transfer ends, and a
/// file shorter than the Hub lists it (a server that closed the connection early without saying
/// so) is removed again, so a later run cannot load it.
fn download(repo_id: &str, cache: Cache) -> std::result::Result<PathBuf, String> {
    use std::io::IsTerminal;
    let api = ApiBuilder::from_cache(cache)
        .with_endpoint(endpoint())
        .with_progress(std::io::stderr().is_terminal())
        .with_retries(DOWNLOAD_RETRIES)
        .build()
        .map_err(|e| describe_api_error(&e))?;
    let repo = api.repo(Repo::model(repo_id.to_string()));
    let info: RepoFiles = repo
        .info_request()
        .query("blobs", "true")
        .call()
        .map_err(|e| describe_api_error(&ApiError::RequestError(Box::new(e))))?
        .into_json()
        .map_err(|e| format!("the Hub's file list of {repo_id} is not the expected JSON: {e}"))?;
    let mut config = None;
    for file in info.siblings.iter().filter(|f| wanted(&f.rfilename)) {
        let name = file.rfilename.as_str();
        // A file cached whole before is kept; one of the wrong size (a truncated download, or
        // one left by an older hf-hub) is removed and fetched once more.
        let mut path = repo.get(name).map_err(|e| format!("{name}: {}", describe_api_error(&e)))?;
        if let Some(expected) = file.size {
            let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).map_err(|e| format!("{name}: {e}"));
            if size(&path)? != expected {
                remove_from_cache(&path);
                path = repo.download(name).map_err(|e| format!("{name}: {}", describe_api_error(&e)))?;
                let got = size(&path)?;
                if got != expected {
                    remove_from_cache(&path);
                    return Err(format!(
                        "{name}: got {got} of its {expected} bytes (the server sent a truncated file); \
                         removed it from the cache"
                    ));
                }
            }
        }
        if name == "config.json" {
            config = Some(path);
        }
    }
    config
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .ok_or_else(|| format!("{repo_id} has no config.json"))
}

/// Removes a cached file: its snapshot entry and the blob it points to.
fn remove_from_cache(pointer: &Path) {
    if let Ok(blob) = std::fs::canonicalize(pointer) {
        let _ = std::fs::remove_file(blob);
    }
    let _ = std::fs::remove_file(pointer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_and_paths_are_told_apart() {
        assert!(looks_like_repo_id("mlx-community/Llama-3.2-1B-Instruct-4bit"));
        for spec in ["./models/x", "/abs/path", "a/b/c", "~/m", "single", "../x"] {
            assert!(!looks_like_repo_id(spec), "{spec}");
        }
    }
}
