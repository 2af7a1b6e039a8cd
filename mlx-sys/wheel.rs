//! The prebuilt MLX that mlx-sys links: which PyPI wheel a backend and target need, how it is
//! fetched (pip, pinned so that any Python 3 with pip gets the same file), where it is kept (a
//! per-user folder outside the cargo target directory, so that installed or copied binaries keep
//! loading it after `cargo clean`), and the layout the build relies on.
//!
//! Standard library only: `build.rs` includes this file as a module and so does
//! `tests/mac_readiness.rs`, which runs the very code the macOS build runs (download and layout
//! check of the `mlx-metal` wheel) from Linux.
// Each includer uses only part of this module.
#![allow(dead_code)]

use std::{
    ffi::OsString,
    fmt, fs, io,
    path::{Path, PathBuf},
    process::Command,
    time::{SystemTime, UNIX_EPOCH},
};

/// The MLX releases mlx-c 0.7.0 builds against with our compat header (`include/mlxbench_compat.h`
/// bridges 0.32.3's new `gather_qmm` parameter), each checked in CI by `.ci/check-libcxx`, which
/// compiles every mlx-c translation unit against each one's headers. README ("Adding an MLX
/// version") says how a release joins the list.
pub const MLX_VERSIONS: [&str; 3] = ["0.32.2", "0.32.3", "0.32.4"];

/// The version built when `MLXBENCH_MLX_VERSION` is not set: the newest, what `pip install mlx`
/// brings.
pub const DEFAULT_MLX_VERSION: &str = "0.32.4";

/// `MLXBENCH_MLX_VERSION`'s value (unset or empty: [`DEFAULT_MLX_VERSION`]), refused unless it
/// is one of [`MLX_VERSIONS`].
pub fn resolve_version(value: Option<&str>) -> Result<&'static str, String> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_MLX_VERSION),
        Some(v) => allowed_version(v).ok_or_else(|| {
            format!(
                "MLXBENCH_MLX_VERSION={v:?} is not an MLX version mlxbench builds against: mlx-c 0.7.0 \
                 with our compat header is checked with {} (default {DEFAULT_MLX_VERSION}). A newer MLX \
                 joins the list once every mlx-c translation unit compiles against its headers \
                 (README, \"Adding an MLX version\").",
                MLX_VERSIONS.join(", ")
            )
        }),
    }
}

/// `version` as the entry of [`MLX_VERSIONS`] it equals.
pub fn allowed_version(version: &str) -> Option<&'static str> {
    MLX_VERSIONS.iter().copied().find(|v| *v == version)
}

/// The version an `MLX_DIR` install may be built against: its own (`found`, from its CMake
/// package), when that is allowed and agrees with `MLXBENCH_MLX_VERSION` (`requested`) if set.
pub fn mlx_dir_version(dir: &Path, found: Option<&str>, requested: Option<&str>) -> Result<&'static str, String> {
    let found = found.unwrap_or("of unknown version");
    let version = allowed_version(found).ok_or_else(|| {
        format!(
            "MLX_DIR={} holds MLX {found}, but mlxbench builds only against MLX {} (mlx-c 0.7.0 \
             with our compat header is checked with those; README, \"Adding an MLX version\").",
            dir.display(),
            MLX_VERSIONS.join(", ")
        )
    })?;
    match requested.map(str::trim).filter(|r| !r.is_empty()) {
        Some(requested) if requested != version => Err(format!(
            "MLXBENCH_MLX_VERSION={requested} but MLX_DIR={} holds MLX {version}: unset one of them, \
             or make them agree.",
            dir.display()
        )),
        _ => Ok(version),
    }
}

/// A macOS version, `(major, minor)`.
pub type MacosVersion = (u32, u32);

/// `14.7.1` or `26.2` as `(14, 7)` / `(26, 2)` (as `sw_vers -productVersion` prints it).
pub fn parse_macos_version(text: &str) -> Option<MacosVersion> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.trim().parse().ok()?;
    let minor = match parts.next() {
        None => 0,
        Some(m) => m.trim().parse().ok()?,
    };
    Some((major, minor))
}

/// One of the Metal wheel's builds for a macOS generation. PyPI ships each MLX release (0.32.2
/// to 0.32.4 alike) for three platform tags; `min_macos` is its `libmlx.dylib`'s `LC_BUILD_VERSION`
/// minimum, which for the 26_0 build is 26.2, above its tag: MLX compiles the M5 Neural
/// Accelerator kernels (`_nax`) only for a deployment target of 26.2 or newer, so only that build
/// has them (its `mlx.metallib` is 214 MB against 147 MB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacosBuild {
    pub platform: &'static str,
    pub min_macos: MacosVersion,
    /// Whether its `mlx.metallib` has MLX's M5 (`_nax`) kernels.
    pub m5_kernels: bool,
}

impl MacosBuild {
    /// The deployment target mlx-c and our binaries are built for: its libmlx's minimum.
    pub fn deployment_target(&self) -> String {
        format!("{}.{}", self.min_macos.0, self.min_macos.1)
    }
}

/// The Metal wheel's builds, oldest first.
pub const MACOS_BUILDS: [MacosBuild; 3] = [
    MacosBuild { platform: "macosx_14_0_arm64", min_macos: (14, 0), m5_kernels: false },
    MacosBuild { platform: "macosx_15_0_arm64", min_macos: (15, 0), m5_kernels: false },
    MacosBuild { platform: "macosx_26_0_arm64", min_macos: (26, 2), m5_kernels: true },
];

/// The Metal build for a Mac running macOS `host`: as pip picks, the newest whose tag the OS
/// allows, and of those only one whose libmlx loads there (on 26.0 and 26.1 pip takes the 26_0
/// build although its libmlx needs 26.2; we take 15_0 and say why in [`macos_build_note`]).
pub fn macos_build_for(host: MacosVersion) -> Result<MacosBuild, String> {
    MACOS_BUILDS.iter().rev().find(|b| b.min_macos <= host).copied().ok_or_else(|| {
        format!(
            "MLX's Metal wheels need macOS 14.0 or newer; this Mac runs macOS {}.{}",
            host.0, host.1
        )
    })
}

/// What a user should know about the build chosen for `host`, if anything.
pub fn macos_build_note(host: MacosVersion, chosen: &MacosBuild) -> Option<String> {
    let tag_allows_26 = host >= (26, 0);
    (tag_allows_26 && !chosen.m5_kernels).then(|| {
        format!(
            "macOS {}.{}: using MLX's {} build. pip installs the macosx_26_0 build here, whose libmlx \
             needs macOS 26.2 (it has MLX's M5 kernels); update to macOS 26.2 or set \
             MLXBENCH_MLX_PLATFORM=macosx_26_0_arm64 to match it.",
            host.0, host.1, chosen.platform
        )
    })
}

/// `MLXBENCH_MLX_PLATFORM`'s value: one of [`MACOS_BUILDS`] by its platform tag.
pub fn macos_build_named(platform: &str) -> Result<MacosBuild, String> {
    MACOS_BUILDS.iter().find(|b| b.platform == platform.trim()).copied().ok_or_else(|| {
        format!(
            "MLXBENCH_MLX_PLATFORM={platform:?} is not a platform tag of MLX's Metal wheel: use one of {}",
            MACOS_BUILDS.iter().map(|b| b.platform).collect::<Vec<_>>().join(", ")
        )
    })
}

/// The wheels are `py3-none` (no Python ABI), so any interpreter may fetch them; pip is told one
/// fixed version so that its own version never changes which file it picks.
const PIP_PYTHON_VERSION: &str = "3.12";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cpu,
    Cuda,
    Metal,
}

impl Backend {
    /// `MLXBENCH_BACKEND`'s value (unset or empty: `metal` on macOS, `cpu` elsewhere), refused
    /// where PyPI has no such wheel.
    pub fn resolve(value: Option<&str>, target_os: &str) -> Result<Backend, String> {
        let backend = match value.map(str::trim) {
            None | Some("") if target_os == "macos" => Backend::Metal,
            None | Some("") => Backend::Cpu,
            Some("cpu") => Backend::Cpu,
            Some("cuda") => Backend::Cuda,
            Some("metal") => Backend::Metal,
            Some(other) => {
                return Err(format!("MLXBENCH_BACKEND={other:?} is not a backend: use cpu, cuda or metal"))
            }
        };
        match (backend, target_os == "macos") {
            (Backend::Cpu | Backend::Cuda, true) => Err(format!(
                "MLXBENCH_BACKEND={backend} is not available on macOS: PyPI has no {} wheel for \
                 macOS. Unset MLXBENCH_BACKEND (or set it to metal): the Metal build also runs on \
                 the CPU with `--device cpu`.",
                backend.package()
            )),
            (Backend::Metal, false) => Err(format!(
                "MLXBENCH_BACKEND=metal needs macOS; on {target_os} use cpu (the default) or cuda."
            )),
            _ => Ok(backend),
        }
    }

    /// The PyPI package that ships a prebuilt `libmlx` for this backend.
    pub fn package(self) -> &'static str {
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

/// One wheel file on PyPI: `<package>==<version>` for one platform tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wheel {
    pub backend: Backend,
    /// One of [`MLX_VERSIONS`].
    pub version: &'static str,
    /// The wheel's platform tag, e.g. `manylinux_2_35_x86_64` or `macosx_26_0_arm64`.
    pub platform: &'static str,
}

impl Wheel {
    /// The wheel of MLX `version` for `backend` on a target (`CARGO_CFG_TARGET_OS`/`_ARCH`
    /// spellings); on macOS `macos` is the Metal build to take (see [`macos_build_for`]).
    pub fn for_target(
        backend: Backend,
        version: &'static str,
        target_os: &str,
        target_arch: &str,
        macos: MacosBuild,
    ) -> Result<Wheel, String> {
        let platform = match (backend, target_os, target_arch) {
            (Backend::Metal, "macos", "aarch64") => macos.platform,
            (Backend::Metal, "macos", arch) => {
                return Err(format!(
                    "MLX {version} has no Metal wheel for {arch} Macs, only for Apple Silicon \
                     (aarch64); or build MLX yourself and set MLX_DIR."
                ))
            }
            (Backend::Cpu | Backend::Cuda, "linux", "x86_64") => "manylinux_2_35_x86_64",
            (Backend::Cpu | Backend::Cuda, "linux", "aarch64") => "manylinux_2_35_aarch64",
            _ => {
                return Err(format!(
                    "no prebuilt MLX {version} wheel for backend {backend} on {target_os}/{target_arch} \
                     (there are: cpu and cuda on Linux x86_64/aarch64, metal on macOS aarch64); \
                     build MLX {version} yourself and set MLX_DIR to its install prefix."
                ))
            }
        };
        Ok(Wheel { backend, version, platform })
    }

    /// `mlx-cpu==0.32.4`.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.backend.package(), self.version)
    }

    /// The arguments after the interpreter: one exact file, whatever Python runs pip.
    pub fn pip_args(&self, dest: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = [
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            PIP_PYTHON_VERSION,
            "--platform",
            self.platform,
            "--dest",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        args.push(dest.as_os_str().to_owned());
        args.push(self.requirement().into());
        args
    }

    /// The wheel file pip must produce: `mlx_cpu-0.32.4-py3-none-manylinux_2_35_x86_64.whl`.
    pub fn file_name(&self) -> String {
        format!("{}-{}-py3-none-{}.whl", self.backend.package().replace('-', "_"), self.version, self.platform)
    }

    /// The folder this wheel is unpacked to inside the MLX home (`mlx-cpu-0.32.4-manylinux_2_35_x86_64`).
    pub fn store_name(&self) -> String {
        format!("{}-{}-{}", self.backend.package(), self.version, self.platform)
    }

    fn is_macos(&self) -> bool {
        self.platform.starts_with("macosx")
    }

    /// What the build and the binaries need from an unpacked wheel whose root is `root` (the
    /// folder holding `mlx/`): the library, on macOS the Metal kernels MLX loads from beside it,
    /// the headers, and the CMake package of exactly this version.
    pub fn check_layout(&self, root: &Path) -> Result<MlxInstall, String> {
        let install = MlxInstall { prefix: root.join("mlx") };
        let mut needed = vec![
            install.lib_dir().join(if self.is_macos() { "libmlx.dylib" } else { "libmlx.so" }),
            install.prefix.join("include/mlx/mlx.h"),
            install.cmake_dir().join("MLXConfig.cmake"),
        ];
        if self.is_macos() {
            needed.push(install.lib_dir().join("mlx.metallib"));
        }
        let missing: Vec<String> =
            needed.iter().filter(|p| !p.is_file()).map(|p| p.display().to_string()).collect();
        if !missing.is_empty() {
            return Err(format!(
                "{} does not have the layout of the {} wheel; missing: {}",
                root.display(),
                self.requirement(),
                missing.join(", ")
            ));
        }
        match install.version() {
            Some(v) if v == self.version => Ok(install),
            found => Err(format!(
                "{} holds MLX {}, not {}",
                root.display(),
                found.unwrap_or_else(|| "of unknown version".into()),
                self.version
            )),
        }
    }
}

/// The platform tag of the wheel an MLX prefix (`<site-packages>/mlx`) was installed from: the
/// `Tag:` line of a backend package's `<site-packages>/mlx_<backend>-<version>.dist-info/WHEEL`
/// beside it (`py3-none-macosx_26_0_arm64` gives `macosx_26_0_arm64`). `None` for an MLX built
/// from source, or installed some other way.
pub fn installed_wheel_platform(prefix: &Path, version: &str) -> Option<String> {
    let site = prefix.parent()?;
    ["mlx_metal", "mlx_cuda_13", "mlx_cuda_12", "mlx_cpu"].iter().find_map(|package| {
        let text = fs::read_to_string(site.join(format!("{package}-{version}.dist-info/WHEEL"))).ok()?;
        wheel_platform_tag(&text)
    })
}

/// The platform part of the first `Tag:` line of a wheel's `WHEEL` metadata.
pub fn wheel_platform_tag(wheel_metadata: &str) -> Option<String> {
    wheel_metadata.lines().find_map(|line| {
        let tag = line.strip_prefix("Tag:")?.trim();
        Some(tag.splitn(3, '-').nth(2)?.to_string())
    })
}

/// A prebuilt MLX: `prefix/lib/libmlx.*`, `prefix/include`, `prefix/share/cmake/MLX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlxInstall {
    pub prefix: PathBuf,
}

impl MlxInstall {
    pub fn cmake_dir(&self) -> PathBuf {
        self.prefix.join("share/cmake/MLX")
    }

    pub fn lib_dir(&self) -> PathBuf {
        self.prefix.join("lib")
    }

    /// `PACKAGE_VERSION` of its `MLXConfigVersion.cmake`.
    pub fn version(&self) -> Option<String> {
        let text = fs::read_to_string(self.cmake_dir().join("MLXConfigVersion.cmake")).ok()?;
        cmake_package_version(&text)
    }
}

/// `set(PACKAGE_VERSION "0.32.2")` in a CMake package version file.
pub fn cmake_package_version(config_version: &str) -> Option<String> {
    config_version.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("set(PACKAGE_VERSION")?;
        Some(rest.trim().trim_end_matches(')').trim().trim_matches('"').to_string())
    })
}

/// The per-user folder that keeps the pinned MLX: `$MLXBENCH_MLX_HOME`, else the user's data
/// folder: `~/Library/Application Support/mlxbench` on macOS, `$XDG_DATA_HOME/mlxbench` or
/// `~/.local/share/mlxbench` elsewhere. A data folder rather than a cache, because installed
/// binaries load `libmlx` from it: cache cleaners must not take it. `None` without a home.
pub fn default_home(env: impl Fn(&str) -> Option<OsString>, target_os: &str) -> Option<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = set("MLXBENCH_MLX_HOME") {
        return Some(home);
    }
    if target_os == "macos" {
        return set("HOME").map(|home| home.join("Library/Application Support/mlxbench"));
    }
    // The XDG spec ignores relative values.
    match set("XDG_DATA_HOME").filter(|dir| dir.is_absolute()) {
        Some(data) => Some(data.join("mlxbench")),
        None => set("HOME").map(|home| home.join(".local/share/mlxbench")),
    }
}

/// The interpreters to try for pip, in order: only `$MLXBENCH_PYTHON` when it is set (a choice
/// the user made), else `python3`, then `python`.
pub fn python_candidates(mlxbench_python: Option<&str>) -> Vec<String> {
    match mlxbench_python.map(str::trim).filter(|p| !p.is_empty()) {
        Some(python) => vec![python.to_string()],
        None => vec!["python3".into(), "python".into()],
    }
}

/// Why [`install`] failed.
#[derive(Debug)]
pub enum WheelError {
    /// The MLX home cannot be created or written (the build may fall back to another folder).
    Unwritable { dir: PathBuf, error: io::Error },
    /// Anything else, with what to do about it.
    Failed(String),
}

impl fmt::Display for WheelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WheelError::Unwritable { dir, error } => write!(f, "cannot write to {}: {error}", dir.display()),
            WheelError::Failed(message) => f.write_str(message),
        }
    }
}

/// The wheel unpacked in `home/<store_name>`, fetched with the first of `pythons` that has pip
/// when it is not there yet (or is incomplete). The download is unpacked into a private folder
/// and renamed into place only once its layout checks out, so a build interrupted half-way, or
/// two builds at once, never leave a broken MLX behind.
pub fn install(wheel: &Wheel, home: &Path, pythons: &[String]) -> Result<MlxInstall, WheelError> {
    let store = home.join(wheel.store_name());
    if let Ok(install) = wheel.check_layout(&store) {
        return Ok(install);
    }
    let unwritable = |error| WheelError::Unwritable { dir: home.to_path_buf(), error };
    fs::create_dir_all(home).map_err(unwritable)?;
    let staging_prefix = format!(".{}.tmp-", wheel.store_name());
    remove_abandoned_staging(home, &staging_prefix);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let staging = home.join(format!("{staging_prefix}{}-{nanos}", std::process::id()));
    fs::create_dir(&staging).map_err(unwritable)?;
    let result = download_and_unpack(wheel, &staging, pythons).and_then(|unpacked| {
        if store.exists() && wheel.check_layout(&store).is_err() {
            // An incomplete copy (files deleted by hand, an old layout): ours replaces it.
            fs::remove_dir_all(&store).map_err(|e| {
                WheelError::Failed(format!(
                    "{} is incomplete and cannot be removed ({e}); delete it and build again",
                    store.display()
                ))
            })?;
        }
        // Losing the race to another build is fine: its copy passed the same check.
        match fs::rename(&unpacked, &store) {
            Ok(()) => wheel.check_layout(&store).map_err(WheelError::Failed),
            Err(e) => wheel.check_layout(&store).map_err(|_| {
                WheelError::Failed(format!("could not move {} to {}: {e}", unpacked.display(), store.display()))
            }),
        }
    });
    let _ = fs::remove_dir_all(&staging);
    result
}

/// Staging folders of builds that were killed mid-download (over an hour old: a download in
/// progress is younger) would otherwise stay forever.
fn remove_abandoned_staging(home: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(home) else { return };
    for entry in entries.filter_map(Result::ok) {
        let abandoned = entry.file_name().to_string_lossy().starts_with(prefix)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 3600));
        if abandoned {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Fetches the wheel into `staging/wheel` and unpacks it into `staging/unpacked`, checked.
fn download_and_unpack(wheel: &Wheel, staging: &Path, pythons: &[String]) -> Result<PathBuf, WheelError> {
    let failed = WheelError::Failed;
    let python = python_with_pip(pythons).map_err(failed)?;
    let wheels = staging.join("wheel");
    let args = wheel.pip_args(&wheels);
    let shown = format!(
        "{python} {}",
        args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    );
    let advice = format!(
        "To fix: make PyPI reachable for `{python} -m pip` (proxy settings go in pip's config), or \
         install MLX yourself (`python3 -m pip install {}`) and set MLX_DIR=<site-packages>/mlx.",
        wheel.requirement()
    );
    let output = Command::new(&python)
        .args(&args)
        .output()
        .map_err(|e| failed(format!("could not run `{shown}`: {e}.\n  {advice}")))?;
    if !output.status.success() {
        return Err(failed(format!(
            "`{shown}` failed ({}):\n{}\n  {advice}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )));
    }
    let file = wheels.join(wheel.file_name());
    if !file.is_file() {
        let found: Vec<String> = fs::read_dir(&wheels)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        return Err(failed(format!(
            "`{shown}` did not produce {} (found: {}).\n  {advice}",
            wheel.file_name(),
            if found.is_empty() { "nothing".to_string() } else { found.join(", ") }
        )));
    }
    let unpacked = staging.join("unpacked");
    // A wheel is a zip archive; Python's zipfile module is there wherever pip is.
    let status = Command::new(&python).args(["-m", "zipfile", "-e"]).arg(&file).arg(&unpacked).status();
    if !matches!(status, Ok(s) if s.success()) {
        return Err(failed(format!("could not unpack {} with `{python} -m zipfile -e`", file.display())));
    }
    wheel.check_layout(&unpacked).map_err(failed)?;
    Ok(unpacked)
}

/// The first interpreter that runs and has pip; the error lists what each attempt gave.
fn python_with_pip(pythons: &[String]) -> Result<String, String> {
    let mut tried = Vec::new();
    for python in pythons {
        match Command::new(python).args(["-m", "pip", "--version"]).output() {
            Ok(out) if out.status.success() => return Ok(python.clone()),
            Ok(out) => tried.push(format!(
                "`{python} -m pip` failed: {}",
                String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("no output").trim()
            )),
            Err(e) => tried.push(format!("`{python}` could not be run: {e}")),
        }
    }
    Err(format!(
        "no Python with pip to fetch MLX from PyPI ({}).\n  To fix: install Python 3 \
         with pip (Debian: apt-get install python3-pip; macOS: the Xcode command-line tools' python3 \
         works) or name one in MLXBENCH_PYTHON; or set MLX_DIR to an MLX install.",
        tried.join("; ")
    ))
}
