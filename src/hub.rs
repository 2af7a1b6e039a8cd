//! Where a model comes from: a local directory, or a Hugging Face repo id found in the local HF
//! cache (honouring `HF_HOME`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE`) or downloaded when online.
use std::path::{Path, PathBuf};

use hf_hub::{api::sync::ApiBuilder, Cache, Repo};

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

fn has_model_files(dir: &Path) -> bool {
    dir.join("config.json").is_file()
        && (dir.join("model.safetensors").is_file() || dir.join("model.safetensors.index.json").is_file())
}

/// Resolves `spec` (a directory or a repo id) to a directory holding the model's files.
pub fn resolve(spec: &str) -> Result<PathBuf> {
    let local = PathBuf::from(spec);
    let mut searched = vec![format!("local directory {}", local.display())];
    if local.is_dir() {
        if local.join("config.json").is_file() {
            return Ok(local);
        }
        searched[0] = format!("local directory {} (has no config.json)", local.display());
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

/// Downloads config, tokenizer and weights of `repo_id` into the HF cache.
fn download(repo_id: &str, cache: Cache) -> std::result::Result<PathBuf, String> {
    let api = ApiBuilder::from_cache(cache).with_progress(false).build().map_err(|e| e.to_string())?;
    let repo = api.repo(Repo::model(repo_id.to_string()));
    let info = repo.info().map_err(|e| e.to_string())?;
    let wanted = |name: &str| {
        name.ends_with(".safetensors")
            || matches!(name, "config.json" | "model.safetensors.index.json" | "tokenizer.json" | "tokenizer_config.json")
    };
    let mut config = None;
    for file in info.siblings.iter().map(|s| s.rfilename.as_str()).filter(|n| wanted(n)) {
        let path = repo.get(file).map_err(|e| format!("{file}: {e}"))?;
        if file == "config.json" {
            config = Some(path);
        }
    }
    config
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .ok_or_else(|| format!("{repo_id} has no config.json"))
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
