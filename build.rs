//! Link settings for every binary, test and bench of this package:
//! - where to find `libmlx` at run time: first the folder mlx-sys linked against (the per-user MLX
//!   home, or `MLX_DIR`), which outlives the target directory, so `cargo install`ed and copied
//!   binaries keep working after `cargo clean`; then the binary's own folder and `../lib` beside
//!   it, so a binary shipped together with `libmlx` runs on a machine without that folder. On
//!   Linux this is a RUNPATH, which `LD_LIBRARY_PATH` overrides (how the GPU machine swaps in the
//!   CUDA `libmlx.so`); on macOS LC_RPATH entries for the wheel's `@rpath/libmlx.dylib`, which
//!   `DYLD_LIBRARY_PATH` overrides;
//! - on macOS, the deployment target that mlx-c and `libmlx.dylib` were built for, so that rustc
//!   links for the same macOS version.
fn main() {
    let lib_dir = std::env::var("DEP_MLX_LIB_DIR").expect("mlx-sys publishes lib_dir");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let (origin, origin_lib) = if target_os == "macos" {
        ("@executable_path", "@executable_path/../lib")
    } else {
        ("$ORIGIN", "$ORIGIN/../lib")
    };
    for dir in [lib_dir.as_str(), origin, origin_lib] {
        // -Xlinker passes each word as is; -Wl,... would split a path at its commas.
        for arg in ["-Xlinker", "-rpath", "-Xlinker", dir] {
            println!("cargo:rustc-link-arg={arg}");
        }
    }
    if target_os == "macos" {
        if let Ok(target) = std::env::var("DEP_MLX_MACOS_DEPLOYMENT_TARGET") {
            // rustc reads it when it compiles and links this package's targets.
            println!("cargo:rustc-env=MACOSX_DEPLOYMENT_TARGET={target}");
        }
    } else {
        // RUNPATH, not the old RPATH that would win over LD_LIBRARY_PATH.
        println!("cargo:rustc-link-arg=-Wl,--enable-new-dtags");
    }
    println!("cargo:rustc-env=MLXBENCH_MLX_LIB_DIR={lib_dir}");
    // The MLX version and wheel mlx-sys built against: the runtime checks compare with these.
    for (dep, ours) in [("DEP_MLX_VERSION", "MLXBENCH_BUILT_MLX_VERSION"), ("DEP_MLX_BUILD", "MLXBENCH_BUILT_MLX_BUILD")] {
        let value = std::env::var(dep).unwrap_or_else(|_| panic!("mlx-sys publishes {dep}"));
        println!("cargo:rustc-env={ours}={value}");
        println!("cargo:rerun-if-env-changed={dep}");
    }
    println!("cargo:rerun-if-env-changed=DEP_MLX_LIB_DIR");
    println!("cargo:rerun-if-env-changed=DEP_MLX_MACOS_DEPLOYMENT_TARGET");
    println!("cargo:rustc-env=MLXBENCH_GIT_COMMIT={}", git_commit());
    // The sources too: an edit after the last commit makes the build `-dirty`.
    for path in [".git/HEAD", ".git/index", "src", "benches", "Cargo.toml"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

/// The commit being built, `-dirty` when tracked files differ from it, `unknown` outside a git
/// checkout.
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
