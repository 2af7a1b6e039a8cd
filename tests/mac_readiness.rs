//! What a Mac build depends on, checked from any machine: the wheel each backend and target gets
//! (and the ones refused), which of the Metal wheel's three builds a Mac's macOS gets (as pip
//! picks, and only one whose libmlx loads there), pip's pinned arguments, the per-user MLX home,
//! the layout check, and, through the very code `mlx-sys/build.rs` runs (`mlx-sys/wheel.rs`,
//! included here), the download of the `mlx-metal` wheels for macOS 14 and 26 on arm64 with the
//! layout and the Mach-O facts the macOS build relies on (`@rpath/libmlx.dylib`, built for macOS
//! 14.0 and 26.2; only the 26 build's kernels include MLX's M5 ones). Also checks that this test
//! binary loads `libmlx` from outside the target directory, first, then from beside itself.
//!
//! The download needs PyPI, as the build itself does.
#[path = "../mlx-sys/wheel.rs"]
mod wheel;

use std::{
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use wheel::{Backend, MacosBuild, Wheel, WheelError, DEFAULT_MLX_VERSION, MACOS_BUILDS, MLX_VERSIONS};

/// The oldest Metal build, macosx_14_0.
const MAC14: MacosBuild = MACOS_BUILDS[0];

#[test]
fn each_backend_gets_its_wheel_and_impossible_ones_are_refused() {
    assert_eq!(Backend::resolve(None, "macos"), Ok(Backend::Metal));
    assert_eq!(Backend::resolve(Some(" "), "linux"), Ok(Backend::Cpu));
    assert_eq!(Backend::resolve(Some("cuda"), "linux"), Ok(Backend::Cuda));
    for (value, os, needle) in [
        ("cpu", "macos", "PyPI has no mlx-cpu wheel for macOS"),
        ("cuda", "macos", "PyPI has no mlx-cuda-13 wheel for macOS"),
        ("metal", "linux", "MLXBENCH_BACKEND=metal needs macOS"),
        ("rocm", "linux", "\"rocm\" is not a backend: use cpu, cuda or metal"),
    ] {
        let err = Backend::resolve(Some(value), os).unwrap_err();
        assert!(err.contains(needle), "{value} on {os}: {err}");
    }

    for version in MLX_VERSIONS {
        for (backend, os, arch, platform) in [
            (Backend::Metal, "macos", "aarch64", "macosx_14_0_arm64"),
            (Backend::Cpu, "linux", "x86_64", "manylinux_2_35_x86_64"),
            (Backend::Cpu, "linux", "aarch64", "manylinux_2_35_aarch64"),
            (Backend::Cuda, "linux", "x86_64", "manylinux_2_35_x86_64"),
            (Backend::Cuda, "linux", "aarch64", "manylinux_2_35_aarch64"),
        ] {
            assert_eq!(Wheel::for_target(backend, version, os, arch, MAC14), Ok(Wheel { backend, version, platform }));
        }
        let m5 = Wheel::for_target(Backend::Metal, version, "macos", "aarch64", MACOS_BUILDS[2]).unwrap();
        assert_eq!(m5.file_name(), format!("mlx_metal-{version}-py3-none-macosx_26_0_arm64.whl"));
    }
    let intel_mac = Wheel::for_target(Backend::Metal, "0.32.4", "macos", "x86_64", MAC14).unwrap_err();
    assert!(intel_mac.contains("no Metal wheel for x86_64 Macs"), "{intel_mac}");
    let windows = Wheel::for_target(Backend::Cpu, "0.32.4", "windows", "x86_64", MAC14).unwrap_err();
    assert!(windows.contains("on windows/x86_64") && windows.contains("MLX_DIR"), "{windows}");
}

/// The Metal build a Mac gets, by its macOS version: the newest whose tag the OS allows (pip's
/// rule) and whose libmlx's minimum the OS meets; the deployment target is that minimum.
#[test]
fn each_macos_gets_the_metal_build_pip_installs_there() {
    let table = [
        ("14.0", "macosx_14_0_arm64", "14.0", false),
        ("14.7.1", "macosx_14_0_arm64", "14.0", false),
        ("15.0", "macosx_15_0_arm64", "15.0", false),
        ("15.6", "macosx_15_0_arm64", "15.0", false),
        // pip would take the 26_0 build, whose libmlx needs 26.2: 15_0, with a note.
        ("26.0", "macosx_15_0_arm64", "15.0", false),
        ("26.1", "macosx_15_0_arm64", "15.0", false),
        ("26.2", "macosx_26_0_arm64", "26.2", true),
        ("26.4.1", "macosx_26_0_arm64", "26.2", true),
        ("27.0", "macosx_26_0_arm64", "26.2", true),
    ];
    for (macos, platform, deployment_target, m5_kernels) in table {
        let host = wheel::parse_macos_version(macos).unwrap();
        let build = wheel::macos_build_for(host).unwrap();
        assert_eq!((build.platform, build.deployment_target().as_str(), build.m5_kernels), (platform, deployment_target, m5_kernels), "macOS {macos}");
        let note = wheel::macos_build_note(host, &build);
        assert_eq!(note.is_some(), macos.starts_with("26.0") || macos.starts_with("26.1"), "macOS {macos}: {note:?}");
    }
    let note = wheel::macos_build_note((26, 1), &wheel::macos_build_for((26, 1)).unwrap()).unwrap();
    assert!(note.contains("needs macOS 26.2") && note.contains("MLXBENCH_MLX_PLATFORM=macosx_26_0_arm64"), "{note}");
    let old = wheel::macos_build_for((13, 6)).unwrap_err();
    assert!(old.contains("need macOS 14.0 or newer") && old.contains("13.6"), "{old}");
    assert_eq!(wheel::parse_macos_version("26.2\n"), Some((26, 2)));
    assert_eq!(wheel::parse_macos_version("15"), Some((15, 0)));
    assert_eq!(wheel::parse_macos_version("Darwin"), None);

    // MLXBENCH_MLX_PLATFORM overrides the choice with any of the three, and nothing else.
    assert_eq!(wheel::macos_build_named("macosx_14_0_arm64"), Ok(MAC14));
    assert_eq!(wheel::macos_build_named(" macosx_26_0_arm64 ").map(|b| b.m5_kernels), Ok(true));
    let bad = wheel::macos_build_named("macosx_13_0_arm64").unwrap_err();
    assert!(bad.contains("macosx_14_0_arm64, macosx_15_0_arm64, macosx_26_0_arm64"), "{bad}");
}

#[test]
fn pip_is_pinned_to_one_file_whatever_python_runs_it() {
    let wheel = Wheel::for_target(Backend::Metal, "0.32.2", "macos", "aarch64", MAC14).unwrap();
    let dest = Path::new("/tmp/My Code/wheel");
    let args: Vec<OsString> = wheel.pip_args(dest);
    let expected: Vec<OsString> = [
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "--platform",
        "macosx_14_0_arm64",
        "--dest",
        "/tmp/My Code/wheel",
        "mlx-metal==0.32.2",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    assert_eq!(args, expected);
    assert_eq!(wheel.file_name(), "mlx_metal-0.32.2-py3-none-macosx_14_0_arm64.whl");
    assert_eq!(wheel.store_name(), "mlx-metal-0.32.2-macosx_14_0_arm64");
    let cuda = Wheel::for_target(Backend::Cuda, "0.32.4", "linux", "x86_64", MAC14).unwrap();
    assert_eq!(cuda.file_name(), "mlx_cuda_13-0.32.4-py3-none-manylinux_2_35_x86_64.whl");
    assert_eq!(cuda.store_name(), "mlx-cuda-13-0.32.4-manylinux_2_35_x86_64");

    assert_eq!(wheel::python_candidates(None), ["python3", "python"]);
    assert_eq!(wheel::python_candidates(Some("")), ["python3", "python"]);
    // A Python the user names is the only one tried: a silent fallback would hide their mistake.
    assert_eq!(wheel::python_candidates(Some("/opt/py/bin/python3.12")), ["/opt/py/bin/python3.12"]);
}

#[test]
fn the_mlx_home_is_a_per_user_data_folder() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
    };
    let home = |pairs, os| wheel::default_home(env(pairs), os);
    let p = PathBuf::from;
    assert_eq!(
        home(&[("HOME", "/Users/ada")], "macos"),
        Some(p("/Users/ada/Library/Application Support/mlxbench"))
    );
    assert_eq!(home(&[("HOME", "/home/ada")], "linux"), Some(p("/home/ada/.local/share/mlxbench")));
    assert_eq!(
        home(&[("HOME", "/home/ada"), ("XDG_DATA_HOME", "/data/ada")], "linux"),
        Some(p("/data/ada/mlxbench"))
    );
    // The XDG spec says to ignore a relative XDG_DATA_HOME.
    assert_eq!(
        home(&[("HOME", "/home/ada"), ("XDG_DATA_HOME", "rel")], "linux"),
        Some(p("/home/ada/.local/share/mlxbench"))
    );
    assert_eq!(
        home(&[("HOME", "/home/ada"), ("MLXBENCH_MLX_HOME", "/opt/mlx home")], "macos"),
        Some(p("/opt/mlx home"))
    );
    assert_eq!(home(&[("HOME", "/home/ada"), ("MLXBENCH_MLX_HOME", "")], "linux"), Some(p("/home/ada/.local/share/mlxbench")));
    assert_eq!(home(&[], "linux"), None);
}

#[test]
fn the_layout_check_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let metal = Wheel::for_target(Backend::Metal, "0.32.2", "macos", "aarch64", MAC14).unwrap();
    let cpu = Wheel::for_target(Backend::Cpu, "0.32.2", "linux", "x86_64", MAC14).unwrap();
    let put = |rel: &str, text: &str| {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    put("mlx/lib/libmlx.so", "");
    put("mlx/lib/libmlx.dylib", "");
    put("mlx/include/mlx/mlx.h", "");
    put("mlx/share/cmake/MLX/MLXConfig.cmake", "");
    put("mlx/share/cmake/MLX/MLXConfigVersion.cmake", "set(PACKAGE_VERSION \"0.32.2\")\n");
    assert_eq!(cpu.check_layout(root).unwrap().lib_dir(), root.join("mlx/lib"));
    let err = metal.check_layout(root).unwrap_err();
    assert!(err.ends_with(&format!("missing: {}", root.join("mlx/lib/mlx.metallib").display())), "{err}");
    put("mlx/lib/mlx.metallib", "");
    assert!(metal.check_layout(root).is_ok());

    put("mlx/share/cmake/MLX/MLXConfigVersion.cmake", "set(PACKAGE_VERSION \"0.32.4\")\n");
    let err = metal.check_layout(root).unwrap_err();
    assert!(err.ends_with("holds MLX 0.32.4, not 0.32.2"), "{err}");
    fs::remove_file(root.join("mlx/lib/libmlx.so")).unwrap();
    let err = cpu.check_layout(root).unwrap_err();
    assert!(err.contains("layout of the mlx-cpu==0.32.2 wheel") && err.contains("libmlx.so"), "{err}");
}

#[test]
fn a_missing_python_or_an_unwritable_home_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = Wheel::for_target(Backend::Cpu, DEFAULT_MLX_VERSION, "linux", "x86_64", MAC14).unwrap();
    // Staging folders of other builds: one killed two hours ago, one downloading now.
    let abandoned = dir.path().join(format!(".{}.tmp-1-1", wheel.store_name()));
    let in_progress = dir.path().join(format!(".{}.tmp-2-2", wheel.store_name()));
    for staging in [&abandoned, &in_progress] {
        fs::create_dir(staging).unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    fs::File::open(&abandoned).unwrap().set_modified(two_hours_ago).unwrap();

    let pythons = ["/nonexistent/python3".to_string()];
    let Err(WheelError::Failed(err)) = wheel::install(&wheel, dir.path(), &pythons) else {
        panic!("install without a Python must fail");
    };
    assert!(err.contains("`/nonexistent/python3` could not be run"), "{err}");
    assert!(err.contains("MLXBENCH_PYTHON") && err.contains("MLX_DIR"), "{err}");
    // Nothing half-made of ours is left in the home, nor the abandoned folder; the other build's stays.
    let left: Vec<PathBuf> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(left, [in_progress]);

    // A home that cannot be made is told apart (the build then falls back to target/, with a
    // warning). A file in the way fails even for root, which ignores permissions.
    let file = dir.path().join("a file");
    fs::write(&file, "").unwrap();
    match wheel::install(&wheel, &file.join("mlx home"), &pythons) {
        Err(WheelError::Unwritable { dir, .. }) => assert_eq!(dir, file.join("mlx home")),
        other => panic!("expected Unwritable, got {other:?}"),
    }
}

/// The macOS build's own path: pip (pinned) fetches `mlx-metal` for macOS 14 arm64, it is unpacked
/// beside a stale, incomplete copy and replaces it, and passes the layout check; its libmlx is
/// the `@rpath` library for macOS 14.0 that our LC_RPATH and deployment target assume, and its
/// kernels have none of MLX's M5 (`_nax`) ones.
#[test]
fn the_metal_wheel_downloads_from_linux_with_the_layout_the_mac_build_needs() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("mlx home");
    let wheel = Wheel::for_target(Backend::Metal, DEFAULT_MLX_VERSION, "macos", "aarch64", MAC14).unwrap();
    let store = home.join(wheel.store_name());
    fs::create_dir_all(store.join("mlx/lib")).unwrap();
    fs::write(store.join("mlx/lib/libmlx.dylib"), "stale").unwrap();

    let install = check_metal_build(&wheel, &home, MAC14);
    let entries: Vec<String> =
        fs::read_dir(&home).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(entries, [wheel.store_name()], "the staging folder is cleaned up");

    // Present and complete: used as is, without pip.
    let start = Instant::now();
    let again = wheel::install(&wheel, &home, &["/nonexistent/python3".to_string()]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, install);
    assert!(start.elapsed().as_secs() < 5);
}

/// The build a Mac on macOS 26.2 or newer gets: tagged macosx_26_0 but its libmlx needs 26.2 (the
/// deployment target we build for there), and only its kernels include MLX's M5 ones.
#[test]
fn the_macos_26_metal_wheel_has_the_m5_kernels_and_needs_26_2() {
    let dir = tempfile::tempdir().unwrap();
    let build = wheel::macos_build_for((26, 2)).unwrap();
    let wheel = Wheel::for_target(Backend::Metal, DEFAULT_MLX_VERSION, "macos", "aarch64", build).unwrap();
    assert_eq!(wheel.platform, "macosx_26_0_arm64");
    check_metal_build(&wheel, dir.path(), build);
}

/// Installs `wheel` into `home` and checks what the macOS build assumes of it: the version, the
/// Metal kernels (with MLX's M5 ones exactly when `build` says so), an arm64 `@rpath` libmlx whose
/// minimum macOS is `build`'s deployment target.
fn check_metal_build(wheel: &Wheel, home: &Path, build: MacosBuild) -> wheel::MlxInstall {
    let pythons = wheel::python_candidates(std::env::var("MLXBENCH_PYTHON").ok().as_deref());
    let install = wheel::install(wheel, home, &pythons).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(install.prefix, home.join(wheel.store_name()).join("mlx"));
    assert_eq!(install.version().as_deref(), Some(wheel.version));
    let lib = install.lib_dir();
    let metallib = fs::read(lib.join("mlx.metallib")).unwrap();
    assert!(metallib.len() > 10_000_000, "Metal kernels");
    let nax = metallib.windows(4).filter(|w| *w == b"_nax").count();
    assert_eq!(nax > 0, build.m5_kernels, "{}: {nax} `_nax` names in mlx.metallib", wheel.platform);

    let dylib = MachO::read(&lib.join("libmlx.dylib"));
    assert_eq!(dylib.cpu_type, 0x0100_000c, "arm64");
    assert_eq!(dylib.install_name.as_deref(), Some("@rpath/libmlx.dylib"));
    assert_eq!(dylib.min_macos, Some(build.deployment_target()), "{}", wheel.platform);
    install
}

/// The load commands of a 64-bit Mach-O file this test needs.
struct MachO {
    cpu_type: u32,
    install_name: Option<String>,
    /// `LC_BUILD_VERSION`'s minimum OS, as `14.0` (patch level dropped when zero).
    min_macos: Option<String>,
}

impl MachO {
    fn read(path: &Path) -> MachO {
        const LC_ID_DYLIB: u32 = 0xd;
        const LC_BUILD_VERSION: u32 = 0x32;
        let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let u32_at = |offset: usize| u32::from_le_bytes(data[offset..offset + 4].try_into().unwrap());
        assert_eq!(u32_at(0), 0xfeed_facf, "{} is not a 64-bit little-endian Mach-O file", path.display());
        let mut macho = MachO { cpu_type: u32_at(4), install_name: None, min_macos: None };
        let mut offset = 32;
        for _ in 0..u32_at(16) {
            let (cmd, size) = (u32_at(offset), u32_at(offset + 4) as usize);
            match cmd {
                LC_ID_DYLIB => {
                    let name = &data[offset + u32_at(offset + 8) as usize..offset + size];
                    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                    macho.install_name = Some(String::from_utf8_lossy(&name[..end]).into_owned());
                }
                LC_BUILD_VERSION => {
                    let v = u32_at(offset + 12);
                    let (major, minor, patch) = (v >> 16, (v >> 8) & 0xff, v & 0xff);
                    macho.min_macos =
                        Some(if patch == 0 { format!("{major}.{minor}") } else { format!("{major}.{minor}.{patch}") });
                }
                _ => {}
            }
            offset += size;
        }
        macho
    }
}

/// The run-time search path of this very test binary (linked by the same build script as
/// `mlxbench`): the MLX home first, outside the target directory, so `cargo clean` or
/// `cargo install` cannot take libmlx away; then the binary's folder and `../lib` beside it.
#[test]
fn binaries_load_libmlx_from_outside_the_target_directory() {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/<test binary>
    let target_dir = exe.ancestors().nth(3).unwrap().to_path_buf();
    let search_path = run_search_path(&exe);
    let (origin, origin_lib) = if cfg!(target_os = "macos") {
        ("@executable_path", "@executable_path/../lib")
    } else {
        ("$ORIGIN", "$ORIGIN/../lib")
    };
    assert_eq!(search_path.len(), 3, "{search_path:?}");
    assert_eq!(search_path[1..], [origin, origin_lib]);
    let lib_dir = PathBuf::from(&search_path[0]);
    let library = if cfg!(target_os = "macos") { "libmlx.dylib" } else { "libmlx.so" };
    assert!(lib_dir.join(library).is_file(), "{}", lib_dir.display());
    assert!(
        !lib_dir.starts_with(&target_dir),
        "libmlx is loaded from inside the target directory ({}), so `cargo clean` breaks binaries: \
         was the MLX home not writable (see the build's warning)?",
        lib_dir.display()
    );
}

/// RUNPATH (Linux, and not the old RPATH, which LD_LIBRARY_PATH could not override) or the
/// LC_RPATH entries (macOS) of `exe`, in order.
fn run_search_path(exe: &Path) -> Vec<String> {
    use std::process::Command;
    if cfg!(target_os = "macos") {
        let out = Command::new("otool").arg("-l").arg(exe).output().expect("otool (Xcode tools)");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let mut paths = Vec::new();
        while let Some(line) = lines.next() {
            if line.trim() == "cmd LC_RPATH" {
                let path_line = lines.nth(1).unwrap_or_default().trim();
                let path = path_line.strip_prefix("path ").unwrap_or(path_line);
                paths.push(path.rsplit_once(" (offset").map_or(path, |(p, _)| p).to_string());
            }
        }
        paths
    } else {
        let out = Command::new("readelf").arg("-d").arg(exe).output().expect("readelf (binutils)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("(RPATH)"), "DT_RPATH would take precedence over LD_LIBRARY_PATH:\n{text}");
        let line = text.lines().find(|l| l.contains("(RUNPATH)")).expect("a RUNPATH");
        let value = line.split_once("Library runpath: [").and_then(|(_, rest)| rest.strip_suffix(']'));
        value.expect("readelf's RUNPATH line").split(':').map(String::from).collect()
    }
}
