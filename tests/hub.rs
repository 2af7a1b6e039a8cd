//! Model resolution through the Hugging Face cache layout, offline. One test in its own binary:
//! it sets process-wide environment variables.
use std::path::Path;

use mlxbench::hub;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn repo_ids_resolve_from_the_hf_cache_and_misses_say_where_they_looked() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hf-home");
    let _ = std::fs::remove_dir_all(&root);
    let repo = root.join("hub/models--mlx-community--Tiny-4bit");
    write(&repo.join("refs/main"), "0123abcd");
    let snapshot = repo.join("snapshots/0123abcd");
    write(&snapshot.join("config.json"), "{}");
    write(&snapshot.join("model.safetensors"), "");

    std::env::remove_var("HF_HUB_CACHE");
    std::env::set_var("HF_HOME", &root);
    std::env::set_var("HF_HUB_OFFLINE", "1");
    assert_eq!(hub::resolve("mlx-community/Tiny-4bit").unwrap(), snapshot);

    // HF_HUB_CACHE wins over HF_HOME.
    std::env::set_var("HF_HUB_CACHE", root.join("elsewhere"));
    let err = hub::resolve("mlx-community/Tiny-4bit").unwrap_err().to_string();
    assert!(err.contains("elsewhere") && err.contains("HF_HUB_OFFLINE"), "{err}");

    // A local directory is taken as it is; a path that is neither is an error naming it.
    assert_eq!(hub::resolve(snapshot.to_str().unwrap()).unwrap(), snapshot);
    let err = hub::resolve("./no/such/model").unwrap_err().to_string();
    assert!(err.contains("./no/such/model"), "{err}");
}
