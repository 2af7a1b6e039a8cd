//! Builds mlx-c 0.7.0 (from the sources crates.io publishes in the upstream `mlx-sys` 0.7.0
//! package, fetched by cargo) against a prebuilt MLX 0.32.2 from PyPI, generates the same bindings
//! as upstream, and tells dependents where `libmlx` lives (`DEP_MLX_LIB_DIR`).
//!
//! Where MLX comes from, in order:
//! 1. `MLX_DIR`: an MLX install prefix holding `share/cmake/MLX` (or that cmake folder itself);
//! 2. the pinned wheel for `MLXBENCH_BACKEND` (`cpu` | `cuda` | `metal`; default `metal` on macOS,
//!    `cpu` elsewhere), downloaded with pip and unpacked under the cargo target directory.

use std::{
    env, fmt, fs,
    path::{Path, PathBuf},
    process::Command,
};

/// The MLX release mlx-c 0.7.0 is written against; 0.32.4's headers do not compile with it.
const MLX_VERSION: &str = "0.32.2";
/// The upstream crate whose published package carries the mlx-c sources.
const UPSTREAM_MLX_SYS: &str = "0.7.0";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Cpu,
    Cuda,
    Metal,
}

impl Backend {
    fn from_env() -> Backend {
        match env::var("MLXBENCH_BACKEND").ok().as_deref().map(str::trim) {
            None | Some("") => {
                if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos") {
                    Backend::Metal
                } else {
                    Backend::Cpu
                }
            }
            Some("cpu") => Backend::Cpu,
            Some("cuda") => Backend::Cuda,
            Some("metal") => Backend::Metal,
            Some(other) => fail(format!(
                "MLXBENCH_BACKEND={other:?} is not a backend: use cpu, cuda or metal"
            )),
        }
    }

    /// The PyPI package that ships a prebuilt `libmlx` for this backend.
    fn wheel(self) -> &'static str {
        match self {
            Backend::Cpu => "mlx-cpu",
            Backend::Cuda => "mlx-cuda-13",
            Backend::Metal => "mlx-metal",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
            Backend::Metal => "metal",
        })
    }
}

/// A prebuilt MLX: `prefix/lib/libmlx.*`, `prefix/include`, `prefix/share/cmake/MLX`.
struct MlxInstall {
    prefix: PathBuf,
}

impl MlxInstall {
    fn cmake_dir(&self) -> PathBuf {
        self.prefix.join("share/cmake/MLX")
    }
    fn lib_dir(&self) -> PathBuf {
        self.prefix.join("lib")
    }
}

fn fail(message: impl fmt::Display) -> ! {
    eprintln!("\nerror: mlx-sys (mlxbench): {message}\n");
    std::process::exit(1);
}

fn main() {
    for var in ["MLX_DIR", "MLXBENCH_BACKEND", "MLXBENCH_PYTHON"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=include/mlxbench_compat.h");

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let compat_header = manifest_dir.join("include/mlxbench_compat.h");
    let backend = Backend::from_env();
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();

    let runtime = match env::var_os("MLX_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => mlx_from_dir(Path::new(&dir)),
        None => mlx_from_wheel(backend, &out_dir),
    };
    // mlx-c only needs MLX's public headers, which are the same in every 0.32.2 wheel. The CUDA
    // wheel's CMake config also demands a CUDA toolkit at configure time, so on Linux we compile
    // against the CPU wheel's headers and link the backend's own libmlx.
    let headers = if backend == Backend::Cuda && env::var_os("MLX_DIR").is_none() {
        mlx_from_wheel(Backend::Cpu, &out_dir)
    } else {
        MlxInstall { prefix: runtime.prefix.clone() }
    };

    let mlx_c = upstream_mlx_c(&out_dir);
    let build_dir = build_mlx_c(&mlx_c, &headers, &compat_header);
    generate_bindings(&mlx_c, &compat_header, &out_dir);

    println!("cargo:rustc-link-search=native={}", build_dir.display());
    println!("cargo:rustc-link-lib=static=mlxc");
    println!("cargo:rustc-link-search=native={}", runtime.lib_dir().display());
    println!("cargo:rustc-link-lib=dylib=mlx");
    if target_os == "macos" {
        println!("cargo:rustc-link-lib=dylib=c++");
    } else {
        println!("cargo:rustc-link-lib=dylib=stdc++");
    }

    // Read by dependents' build scripts as DEP_MLX_*: the library folder goes into their
    // binaries' RUNPATH (see mlxbench's build.rs).
    println!("cargo:lib_dir={}", runtime.lib_dir().display());
    println!("cargo:version={MLX_VERSION}");
    println!("cargo:backend={backend}");
}

/// Accepts an install prefix (`$MLX_DIR/share/cmake/MLX` exists) or the cmake folder itself.
fn mlx_from_dir(dir: &Path) -> MlxInstall {
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
             after `python3 -m pip install mlx-cpu=={MLX_VERSION}`; or unset MLX_DIR to let \
             the build download the pinned wheel.",
            dir.display(),
            config.display()
        ))
    };
    match cmake_package_version(&text) {
        Some(v) if v == MLX_VERSION => install,
        found => fail(format!(
            "MLX_DIR={} holds MLX {}, but mlx-c 0.7.0 needs exactly MLX {MLX_VERSION}.",
            dir.display(),
            found.unwrap_or_else(|| "of unknown version".into())
        )),
    }
}

fn cmake_package_version(config_version: &str) -> Option<String> {
    config_version.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("set(PACKAGE_VERSION")?;
        Some(rest.trim().trim_end_matches(')').trim().trim_matches('"').to_string())
    })
}

/// Downloads and unpacks the pinned wheel once per target directory (shared by all profiles).
fn mlx_from_wheel(backend: Backend, out_dir: &Path) -> MlxInstall {
    let package = backend.wheel();
    // OUT_DIR is <target>/[<triple>/]<profile>/build/<pkg>-<hash>/out.
    let store = out_dir
        .ancestors()
        .nth(4)
        .unwrap_or(out_dir)
        .join("mlx-prebuilt")
        .join(format!("{package}-{MLX_VERSION}"));
    let install = MlxInstall { prefix: store.join("mlx") };
    if install.cmake_dir().join("MLXConfig.cmake").is_file() {
        return install;
    }

    let python = env::var("MLXBENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let staging = store.with_extension(format!("tmp{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let wheels = staging.join("wheel");
    let pip_cmd = format!(
        "{python} -m pip download --no-deps --only-binary=:all: -d {} {package}=={MLX_VERSION}",
        wheels.display()
    );
    let advice = format!(
        "Looked for a prebuilt MLX {MLX_VERSION} in MLX_DIR (unset) and in {}.\n  \
         To fix: make `{python} -m pip` work and PyPI reachable (the build runs `{pip_cmd}`), \
         or install it yourself (`python3 -m pip install {package}=={MLX_VERSION}`) and set \
         MLX_DIR=<site-packages>/mlx.",
        store.display()
    );
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps"])
        .args(["--only-binary=:all:", "-d"])
        .arg(&wheels)
        .arg(format!("{package}=={MLX_VERSION}"))
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => fail(format!("`{pip_cmd}` failed ({s}).\n  {advice}")),
        Err(e) => fail(format!("could not run `{python}`: {e}.\n  {advice}")),
    }
    let wheel = fs::read_dir(&wheels)
        .ok()
        .and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "whl"))
        })
        .unwrap_or_else(|| fail(format!("pip left no wheel in {}.\n  {advice}", wheels.display())));
    let unpacked = staging.join("unpacked");
    let status = Command::new(&python)
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&unpacked)
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        fail(format!("could not unpack {} with `{python} -m zipfile`.", wheel.display()));
    }
    // Another build (say, the release profile) may have finished first: theirs is as good.
    if fs::rename(&unpacked, &store).is_err() && !install.cmake_dir().is_dir() {
        fail(format!("could not move the unpacked wheel to {}", store.display()));
    }
    let _ = fs::remove_dir_all(&staging);
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
fn build_mlx_c(mlx_c: &Path, mlx: &MlxInstall, compat_header: &Path) -> PathBuf {
    if !mlx.cmake_dir().join("MLXConfig.cmake").is_file() {
        fail(format!("no MLXConfig.cmake in {}", mlx.cmake_dir().display()));
    }
    let dst = cmake::Config::new(mlx_c)
        .profile("Release")
        .define("MLX_C_USE_SYSTEM_MLX", "ON")
        .define("MLX_DIR", mlx.cmake_dir())
        .define("MLX_C_BUILD_EXAMPLES", "OFF")
        .define("BUILD_SHARED_LIBS", "OFF")
        .cxxflag(format!("-include {}", compat_header.display()))
        .build_target("mlxc")
        .build();
    dst.join("build")
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
