//! Puts the folder of the `libmlx` we linked against into the RUNPATH of every binary, test and
//! bench of this package, so they run without setting anything, while `LD_LIBRARY_PATH` can still
//! swap in another build of the same MLX version (the CUDA one on the GPU machine).
fn main() {
    let lib_dir = std::env::var("DEP_MLX_LIB_DIR").expect("mlx-sys publishes lib_dir");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    if target_os != "macos" {
        // RUNPATH, not the old RPATH that would win over LD_LIBRARY_PATH.
        println!("cargo:rustc-link-arg=-Wl,--enable-new-dtags");
    }
    println!("cargo:rustc-env=MLXBENCH_MLX_LIB_DIR={lib_dir}");
    println!("cargo:rerun-if-env-changed=DEP_MLX_LIB_DIR");
    println!("cargo:rustc-env=MLXBENCH_GIT_COMMIT={}", git_commit());
    for path in [".git/HEAD", ".git/index"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

/// The commit being built, `-dirty` when tracked files differ from it (as of the last build
/// script run), `unknown` outside a git checkout.
fn git_commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{commit}-dirty") } else { commit }
        }
        None => "unknown".into(),
    }
}
