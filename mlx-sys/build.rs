//! Builds mlx-c 0.7.0 (from the sources crates.io publishes in the upstream `mlx-sys` 0.7.0
//! package, fetched by cargo) against a prebuilt MLX from PyPI — 0.32.2, 0.32.3 or 0.32.4
//! (`MLXBENCH_MLX_VERSION`, default the newest) — generates the same bindings as upstream, and
//! tells dependents where `libmlx` lives (`DEP_MLX_LIB_DIR`), which MLX it is (`DEP_MLX_VERSION`,
//! `DEP_MLX_BUILD`: the wheel's platform tag) and which macOS version everything targets
//! (`DEP_MLX_MACOS_DEPLOYMENT_TARGET`).
//!
//! Where MLX comes from, in order:
//! 1. `MLX_DIR`: an MLX install prefix holding `share/cmake/MLX` (or that cmake folder itself), of
//!    any allowed version (e.g. the very venv that runs mlx-lm);
//! 2. the wheel of that version for `MLXBENCH_BACKEND` (`cpu` | `cuda` on Linux, `metal` on macOS;
//!    the default is `metal` on macOS, `cpu` elsewhere), downloaded once with pip into the per-user
//!    MLX home (`wheel.rs`), which installed binaries load `libmlx` from. On macOS the Metal
//!    wheel's build (platform tag) is the one pip installs on this Mac's macOS
//!    (`MLXBENCH_MLX_PLATFORM` overrides it).

#[path = "wheel.rs"]
mod wheel;

use std::{
    env, fmt, fs,
    path::{Path, PathBuf},
    process::Command,
};

use wheel::{Backend, MacosBuild, MlxInstall, Wheel, WheelError, MACOS_BUILDS, MLX_VERSIONS};

/// The upstream crate whose published package carries the mlx-c sources.
const UPSTREAM_MLX_SYS: &str = "0.7.0";

fn fail(message: impl fmt::Display) -> ! {
    eprintln!("\nerror: mlx-sys (mlxbench): {message}\n");
    std::process::exit(1);
}

/// A path for a `cargo:` instruction, which ends at a newline.
fn instruction_path(path: &Path) -> String {
    let text = path.display().to_string();
    if text.contains('\n') {
        fail(format!("the build cannot use a path with a line break: {text:?}"));
    }
    text
}

fn main() {
    for var in [
        "MLX_DIR",
        "MLXBENCH_MLX_VERSION",
        "MLXBENCH_MLX_PLATFORM",
        "MLXBENCH_BACKEND",
        "MLXBENCH_PYTHON",
        "MLXBENCH_MLX_HOME",
        "XDG_DATA_HOME",
        "HOME",
        "MACOSX_DEPLOYMENT_TARGET",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=wheel.rs");
    println!("cargo:rerun-if-changed=include/mlxbench_compat.h");
    println!("cargo:rerun-if-changed=cmake/mlxbench_compat.cmake");

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let backend = Backend::resolve(env::var("MLXBENCH_BACKEND").ok().as_deref(), &target_os)
        .unwrap_or_else(|e| fail(e));
    let requested = env::var("MLXBENCH_MLX_VERSION").ok().filter(|v| !v.trim().is_empty());
    let macos = macos_build();

    let mlx_dir = env::var_os("MLX_DIR").filter(|v| !v.is_empty());
    let (runtime, version, mlx_build) = match &mlx_dir {
        Some(dir) => {
            let (install, version) = mlx_from_dir(Path::new(dir), requested.as_deref());
            let build = wheel::installed_wheel_platform(&install.prefix, version).unwrap_or_else(|| "local".into());
            (install, version, build)
        }
        None => {
            let version = wheel::resolve_version(requested.as_deref()).unwrap_or_else(|e| fail(e));
            let wheel = Wheel::for_target(backend, version, &target_os, &target_arch, macos).unwrap_or_else(|e| fail(e));
            (mlx_from_wheel(&wheel, &target_os, &out_dir), version, wheel.platform.to_string())
        }
    };
    // The deployment target of what we link: the Metal build's libmlx minimum, or what an
    // MLX_DIR's libmlx was built for.
    let deployment_target = (target_os == "macos").then(|| {
        let build = MACOS_BUILDS.iter().find(|b| b.platform == mlx_build).copied().unwrap_or(macos);
        macos_deployment_target(&build)
    });
    // mlx-c only needs MLX's public headers, which are the same in every wheel of one version.
    // The CUDA wheel's CMake config also demands a CUDA toolkit at configure time, so on Linux we
    // compile against the CPU wheel's headers and link the backend's own libmlx.
    let headers = if backend == Backend::Cuda && mlx_dir.is_none() {
        let cpu = Wheel::for_target(Backend::Cpu, version, &target_os, &target_arch, macos).unwrap_or_else(|e| fail(e));
        mlx_from_wheel(&cpu, &target_os, &out_dir)
    } else {
        runtime.clone()
    };

    let mlx_c = upstream_mlx_c(&out_dir);
    let build_dir = build_mlx_c(&mlx_c, &headers, version, &manifest_dir, deployment_target.as_deref());
    generate_bindings(&mlx_c, &manifest_dir.join("include/mlxbench_compat.h"), &out_dir);

    println!("cargo:rustc-link-search=native={}", instruction_path(&build_dir));
    println!("cargo:rustc-link-lib=static=mlxc");
    println!("cargo:rustc-link-search=native={}", instruction_path(&runtime.lib_dir()));
    println!("cargo:rustc-link-lib=dylib=mlx");
    if target_os == "macos" {
        println!("cargo:rustc-link-lib=dylib=c++");
    } else {
        println!("cargo:rustc-link-lib=dylib=stdc++");
    }

    // Read by dependents' build scripts as DEP_MLX_*: the library folder goes into their
    // binaries' RUNPATH / LC_RPATH, the deployment target into their link, the version and build
    // into the runtime checks (see mlxbench's build.rs).
    println!("cargo:lib_dir={}", instruction_path(&runtime.lib_dir()));
    println!("cargo:version={version}");
    println!("cargo:build={mlx_build}");
    println!("cargo:backend={backend}");
    if let Some(target) = &deployment_target {
        println!("cargo:macos_deployment_target={target}");
    }
}

/// The Metal wheel's build to use: `MLXBENCH_MLX_PLATFORM` if set, else the one pip installs on
/// this Mac's macOS (`sw_vers`); where the build does not run on a Mac (a cross check from Linux)
/// the oldest, macosx_14_0.
fn macos_build() -> MacosBuild {
    if let Some(platform) = env::var("MLXBENCH_MLX_PLATFORM").ok().filter(|v| !v.trim().is_empty()) {
        return wheel::macos_build_named(&platform).unwrap_or_else(|e| fail(e));
    }
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os != "macos" || !cfg!(target_os = "macos") {
        return MACOS_BUILDS[0];
    }
    let host = Command::new("sw_vers")
        .arg("-productVersion")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| wheel::parse_macos_version(&String::from_utf8_lossy(&o.stdout)));
    let Some(host) = host else {
        println!("cargo:warning=could not read this Mac's version with `sw_vers`: using MLX's macosx_14_0 build");
        return MACOS_BUILDS[0];
    };
    let build = wheel::macos_build_for(host).unwrap_or_else(|e| fail(e));
    if let Some(note) = wheel::macos_build_note(host, &build) {
        println!("cargo:warning={note}");
    }
    build
}

/// `MACOSX_DEPLOYMENT_TARGET` if set (it may only raise the floor), else the floor: the minimum
/// macOS of the libmlx we link. Put in this process's environment so that the compiler flags
/// cc/cmake derive from it agree with it.
fn macos_deployment_target(build: &MacosBuild) -> String {
    let floor = build.min_macos;
    let target = match env::var("MACOSX_DEPLOYMENT_TARGET").ok().filter(|v| !v.trim().is_empty()) {
        None => build.deployment_target(),
        Some(v) => match wheel::parse_macos_version(&v) {
            Some(version) if version >= floor => v.trim().to_string(),
            _ => fail(format!(
                "MACOSX_DEPLOYMENT_TARGET={v:?}, but the libmlx.dylib of MLX's {} build needs macOS \
                 {} or newer: unset it or set {} or higher.",
                build.platform,
                build.deployment_target(),
                build.deployment_target()
            )),
        },
    };
    // cc, which the cmake crate asks for compiler flags, turns it into -mmacosx-version-min.
    env::set_var("MACOSX_DEPLOYMENT_TARGET", &target);
    target
}

/// Accepts an install prefix (`$MLX_DIR/share/cmake/MLX` exists) or the cmake folder itself, of
/// an allowed version (and of `requested`, when MLXBENCH_MLX_VERSION is set too).
fn mlx_from_dir(dir: &Path, requested: Option<&str>) -> (MlxInstall, &'static str) {
    let prefix = if dir.join("MLXConfig.cmake").is_file() {
        dir.join("../../..")
    } else {
        dir.to_path_buf()
    };
    let install = MlxInstall { prefix: prefix.canonicalize().unwrap_or(prefix) };
    let config = install.cmake_dir().join("MLXConfigVersion.cmake");
    let Ok(text) = fs::read_to_string(&config) else {
        fail(format!(
            "MLX_DIR={} does not hold an MLX install: {} is missing.\n  \
             MLX_DIR must be an MLX prefix with share/cmake/MLX, e.g. <site-packages>/mlx \
             after `python3 -m pip install mlx`; or unset MLX_DIR to let the build download \
             the wheel.",
            dir.display(),
            config.display()
        ))
    };
    let found = wheel::cmake_package_version(&text);
    let version = wheel::mlx_dir_version(dir, found.as_deref(), requested).unwrap_or_else(|e| fail(e));
    (install, version)
}

/// `wheel`, unpacked in the per-user MLX home (downloaded on first use). When the default home
/// cannot be written, the target directory serves, with a warning: binaries then depend on it.
fn mlx_from_wheel(wheel: &Wheel, target_os: &str, out_dir: &Path) -> MlxInstall {
    let pythons = wheel::python_candidates(env::var("MLXBENCH_PYTHON").ok().as_deref());
    // OUT_DIR is <target>/[<triple>/]<profile>/build/<pkg>-<hash>/out.
    let target_store = out_dir.ancestors().nth(4).unwrap_or(out_dir).join("mlx-prebuilt");
    let explicit_home = env::var_os("MLXBENCH_MLX_HOME").filter(|v| !v.is_empty()).is_some();
    let home = wheel::default_home(|name| env::var_os(name), target_os);
    let installed = match &home {
        Some(home) => match wheel::install(wheel, home, &pythons) {
            Err(WheelError::Unwritable { dir, error }) if !explicit_home => {
                println!(
                    "cargo:warning=cannot write the MLX home {} ({error}); keeping MLX under {} \
                     instead, so binaries built now load libmlx from this target directory: they \
                     break after `cargo clean`, and `cargo install` (which builds in a temporary \
                     one) gives a broken binary. Set MLXBENCH_MLX_HOME to a writable folder.",
                    dir.display(),
                    target_store.display()
                );
                wheel::install(wheel, &target_store, &pythons)
            }
            other => other,
        },
        None => {
            println!(
                "cargo:warning=no HOME (nor MLXBENCH_MLX_HOME) to keep MLX in; keeping it under {}, \
                 so binaries built now stop working after `cargo clean`.",
                target_store.display()
            );
            wheel::install(wheel, &target_store, &pythons)
        }
    };
    let install = installed.unwrap_or_else(|e| {
        let hint = match &e {
            WheelError::Unwritable { .. } => "\n  To fix: set MLXBENCH_MLX_HOME to a writable folder.",
            WheelError::Failed(_) => "",
        };
        fail(format!("could not provide MLX {} ({}): {e}{hint}", wheel.version, wheel.requirement()))
    });
    // Deleting the MLX home makes the next build fetch it again.
    let library = install.lib_dir().join(if target_os == "macos" { "libmlx.dylib" } else { "libmlx.so" });
    println!("cargo:rerun-if-changed={}", instruction_path(&library));
    install
}

/// Locates the mlx-c sources inside crates.io's `mlx-sys` 0.7.0 package, letting cargo download it.
fn upstream_mlx_c(out_dir: &Path) -> PathBuf {
    let probe = out_dir.join("upstream-mlx-sys");
    fs::create_dir_all(probe.join("src")).unwrap_or_else(|e| fail(e));
    fs::write(probe.join("src/lib.rs"), "").unwrap_or_else(|e| fail(e));
    // `[workspace]` makes the probe its own workspace root, so our `[patch]` does not apply to it.
    fs::write(
        probe.join("Cargo.toml"),
        format!(
            "[package]\nname = \"mlxbench-upstream-probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nmlx-sys = {{ version = \"={UPSTREAM_MLX_SYS}\", \
             default-features = false }}\n\n[workspace]\n"
        ),
    )
    .unwrap_or_else(|e| fail(e));
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let metadata = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(probe.join("Cargo.toml"));
        if offline {
            cmd.arg("--offline");
        }
        cmd.output().ok().filter(|o| o.status.success())
    };
    let output = metadata(true).or_else(|| metadata(false)).unwrap_or_else(|| {
        fail(format!(
            "`cargo metadata` could not fetch crates.io's mlx-sys {UPSTREAM_MLX_SYS} (whose \
             package carries the mlx-c sources). Is crates.io reachable? Probe manifest: {}",
            probe.join("Cargo.toml").display()
        ))
    });
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| fail(format!("unreadable `cargo metadata` output: {e}")));
    let manifest = json["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "mlx-sys" && p["version"] == UPSTREAM_MLX_SYS)
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| fail(format!("`cargo metadata` did not list mlx-sys {UPSTREAM_MLX_SYS}")));
    let mlx_c = Path::new(manifest)
        .parent()
        .map(|dir| dir.join("src/mlx-c"))
        .filter(|dir| dir.join("CMakeLists.txt").is_file())
        .unwrap_or_else(|| fail(format!("no src/mlx-c/CMakeLists.txt beside {manifest}")));
    println!("cargo:rerun-if-changed={}", mlx_c.join("CMakeLists.txt").display());
    mlx_c
}

/// Configures and builds the static `mlxc` target; returns the folder holding the archive.
fn build_mlx_c(mlx_c: &Path, mlx: &MlxInstall, version: &str, manifest_dir: &Path, macos_target: Option<&str>) -> PathBuf {
    if !mlx.cmake_dir().join("MLXConfig.cmake").is_file() {
        fail(format!("no MLXConfig.cmake in {}", mlx.cmake_dir().display()));
    }
    let mut config = cmake::Config::new(mlx_c);
    config
        .profile("Release")
        .define("MLX_C_USE_SYSTEM_MLX", "ON")
        .define("MLX_DIR", mlx.cmake_dir())
        .define("MLX_C_BUILD_EXAMPLES", "OFF")
        .define("BUILD_SHARED_LIBS", "OFF")
        // Force-includes our header through CMake, which quotes the path for the compiler; inside
        // CMAKE_CXX_FLAGS a path with a space would be split in two.
        .define("CMAKE_PROJECT_INCLUDE", manifest_dir.join("cmake/mlxbench_compat.cmake"))
        .define("MLXBENCH_COMPAT_HEADER", manifest_dir.join("include/mlxbench_compat.h"))
        .build_target("mlxc");
    if let Some(target) = macos_target {
        config.define("CMAKE_OSX_DEPLOYMENT_TARGET", target);
    }
    // The cmake crate panics when the build fails, after printing the compiler's output.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.build())) {
        Ok(dir) => dir.join("build"),
        Err(_) => fail(format!(
            "mlx-c 0.7.0 did not compile against MLX {version}'s headers (the compiler's errors are \
             above). mlxbench builds against MLX {} (MLXBENCH_MLX_VERSION; every mlx-c translation \
             unit is checked against each in CI); see README, \"Adding an MLX version\".",
            MLX_VERSIONS.join(", ")
        )),
    }
}

/// The same bindings as upstream's build script, plus our compat header and our own `float16_t`.
fn generate_bindings(mlx_c: &Path, compat_header: &Path, out_dir: &Path) {
    let mut headers: Vec<PathBuf> = fs::read_dir(mlx_c.join("mlx/c"))
        .unwrap_or_else(|e| fail(format!("reading {}: {e}", mlx_c.join("mlx/c").display())))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "h"))
        .collect();
    headers.sort();
    let builder = headers.iter().fold(
        bindgen::Builder::default()
            .rust_target("1.73.0".parse().expect("a valid rust target"))
            .clang_arg(format!("-I{}", mlx_c.display()))
            .clang_arg("-include")
            .clang_arg(compat_header.display().to_string())
            .blocklist_function("malloc")
            .blocklist_function("realloc")
            // Defined in lib.rs as the tuple struct over u16 that mlx-rs reads with `.0`.
            .blocklist_type("float16_t"),
        |builder, header| builder.header(header.display().to_string()),
    );
    builder
        .generate()
        .unwrap_or_else(|e| fail(format!("bindgen failed on mlx-c's headers: {e}")))
        .write_to_file(out_dir.join("bindings.rs"))
        .unwrap_or_else(|e| fail(format!("writing bindings: {e}")));
}
