//! The Python reference (Apple's mlx-lm) and the one device both sides of a comparison run on.
//!
//! - **The device**: `MLXBENCH_TEST_DEVICE` = `cpu` (the default) or `gpu`, read once per process.
//!   Ours makes it MLX's default with `device::select`; the reference script gets `--device` on
//!   every call and reports the device it ran on (`mx.default_device()`), which must be ours. Two
//!   devices would mean two computations: in a Metal build RMSNorm, RoPE and attention are fused
//!   kernels on the GPU and basic ops on the CPU.
//! - **The interpreter**: `$MLXBENCH_REFERENCE_PYTHON`, else the venv `.ci/setup` makes for the MLX
//!   this build links, `target/pyref-<BUILT_MLX_VERSION>/bin/python`. Its `mx.__version__` must be
//!   [`BUILT_MLX_VERSION`] (checked once per process): ours and theirs run one MLX.
#![allow(dead_code)] // every test crate compiles this module; each uses part of it

use std::{
    env::VarError,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use mlxbench::device::{self, DeviceKind, BUILT_MLX_VERSION};
use serde_json::Value;

pub const DEVICE_VARIABLE: &str = "MLXBENCH_TEST_DEVICE";
pub const PYTHON_VARIABLE: &str = "MLXBENCH_REFERENCE_PYTHON";

/// The device a value of [`DEVICE_VARIABLE`] names (`None`: unset). Anything but `cpu` or `gpu`
/// panics: a typo must not silently test the CPU.
pub fn parse_device(value: Option<&str>) -> DeviceKind {
    match value {
        None | Some("cpu") => DeviceKind::Cpu,
        Some("gpu") => DeviceKind::Gpu,
        Some(other) => panic!("{DEVICE_VARIABLE}={other:?}: the allowed values are cpu (the default) and gpu"),
    }
}

/// The test device, from [`DEVICE_VARIABLE`].
pub fn device() -> DeviceKind {
    static DEVICE: OnceLock<DeviceKind> = OnceLock::new();
    *DEVICE.get_or_init(|| match std::env::var(DEVICE_VARIABLE) {
        Ok(value) => parse_device(Some(&value)),
        Err(VarError::NotPresent) => parse_device(None),
        Err(VarError::NotUnicode(value)) => parse_device(Some(&value.to_string_lossy())),
    })
}

/// Makes the test device MLX's default for this process (our side) and returns the device MLX
/// reports as its default afterwards, checked to be the test device.
pub fn select_device() -> DeviceKind {
    let wanted = device();
    device::select(wanted).unwrap_or_else(|e| panic!("{DEVICE_VARIABLE}={wanted}: {e}"));
    let now = device::current_kind().unwrap();
    assert_eq!(now, wanted, "MLX's default device after selecting {wanted}");
    now
}

/// Where the reference interpreter is looked for: [`PYTHON_VARIABLE`], else the venv for the
/// built MLX version.
pub fn python_path() -> PathBuf {
    match std::env::var_os(PYTHON_VARIABLE) {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/pyref-{BUILT_MLX_VERSION}/bin/python")),
    }
}

/// The reference interpreter, checked (once per process) to exist and to import the MLX release
/// this build links.
pub fn python() -> PathBuf {
    static CHECKED: OnceLock<PathBuf> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let python = python_path();
            assert!(
                python.is_file(),
                "no Python reference at {}: run .ci/setup (it makes the venv with mlx-lm and MLX {BUILT_MLX_VERSION} there), \
                 or set {PYTHON_VARIABLE}",
                python.display()
            );
            let out = Command::new(&python)
                .args(["-c", "import mlx.core as mx; print(mx.__version__)"])
                .output()
                .unwrap_or_else(|e| panic!("cannot run the Python reference {}: {e}", python.display()));
            assert!(out.status.success(), "{} cannot import mlx:\n{}", python.display(), String::from_utf8_lossy(&out.stderr));
            let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(
                theirs == BUILT_MLX_VERSION,
                "the Python reference {} has MLX {theirs}, this build links MLX {BUILT_MLX_VERSION}: run .ci/setup, \
                 or set {PYTHON_VARIABLE} to a Python with mlx {BUILT_MLX_VERSION}",
                python.display()
            );
            python
        })
        .clone()
}

/// The interpreter as a string, for commands that take `--python`.
pub fn python_arg() -> String {
    python().to_string_lossy().into_owned()
}

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/mlx_lm_reference.py")
}

/// Runs `tests/reference/mlx_lm_reference.py --device KIND ARGS`, whatever its outcome.
pub fn run_script_on(kind: DeviceKind, args: &[&str]) -> Output {
    Command::new(python())
        .arg(script())
        .args(["--device", kind.to_string().as_str()])
        .args(args)
        .output()
        .expect("running the Python reference")
}

/// Runs the reference script on the test device and returns the JSON object it prints, after
/// checking that it ran there.
pub fn run_script(args: &[&str]) -> Value {
    let out = run_script_on(device(), args);
    assert!(out.status.success(), "reference {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let reported: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("reference {args:?} printed no JSON object ({e}):\n{}", String::from_utf8_lossy(&out.stdout)));
    assert_ran_on_test_device(&reported, &format!("reference {args:?}"));
    reported
}

/// Checks the `"device"` a reference reported (its `mx.default_device()`) against ours.
pub fn assert_ran_on_test_device(reported: &Value, what: &str) {
    let theirs = reported.get("device").and_then(Value::as_str);
    let ours = device().to_string();
    assert_eq!(theirs, Some(ours.as_str()), "{what}: the reference ran on {theirs:?}, ours on {ours}");
}

/// MLX releases whose `gather_qmm` has no `global_scale` argument. mlx-lm 0.32.1 and later pass
/// it in their quantized mixtures of experts, so there mlx-lm cannot run a quantized Mixtral or
/// Qwen3-MoE (a `TypeError` naming `global_scale`); MLX 0.32.3 added it.
const MLX_WITHOUT_GLOBAL_SCALE: [&str; 1] = ["0.32.2"];

/// What mlx-lm's error holds where it cannot run a quantized mixture of experts.
pub const GLOBAL_SCALE_ERROR: &str = "global_scale";

/// Why the reference cannot run a `model_type` model (`quantized` or not) with the MLX this build
/// links, if it cannot.
pub fn reference_cannot_run(model_type: &str, quantized: bool) -> Option<String> {
    let moe = matches!(model_type, "mixtral" | "qwen3_moe");
    (moe && quantized && MLX_WITHOUT_GLOBAL_SCALE.contains(&BUILT_MLX_VERSION)).then(|| {
        format!(
            "mlx-lm's quantized mixtures of experts pass `global_scale` to `mx.gather_qmm`, which MLX \
             {BUILT_MLX_VERSION} lacks (MLX >= 0.32.3 has it)"
        )
    })
}
