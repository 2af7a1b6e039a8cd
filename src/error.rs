//! The library's error type: each variant names what failed (a version, a device, a path).
use std::path::PathBuf;

use thiserror::Error;

fn list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Everything the mlxbench library can fail with.
#[derive(Debug, Error)]
pub enum Error {
    /// An MLX operation failed (MLX's own message).
    #[error("MLX error: {0}")]
    Mlx(#[from] mlx_rs::error::Exception),

    /// The `libmlx` loaded at run time is not the version mlx-c 0.7.0 was compiled against.
    #[error(
        "libmlx at run time is MLX {found}, but mlxbench was built for MLX {required}; \
         point LD_LIBRARY_PATH (DYLD_LIBRARY_PATH on macOS) at an MLX {required} build, \
         or unset it to use the one found at build time"
    )]
    MlxVersion { found: String, required: &'static str },

    /// `--device gpu` on an MLX build without a GPU backend.
    #[error(
        "no GPU backend in this libmlx (MLX {mlx_version}, CPU only): use --device cpu, or load a \
         CUDA (Linux) or Metal (macOS) build of MLX {mlx_version}"
    )]
    NoGpu { mlx_version: String },

    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// The results file cannot be written (its folder cannot be made, or written in).
    #[error("cannot write results to {}: {reason}", path.display())]
    ResultsFile { path: PathBuf, reason: std::io::Error },

    #[error("{path}: invalid config: {detail}")]
    Config { path: PathBuf, detail: String },

    /// A results file that does not read back (`report`, `export`).
    #[error("{}: {detail}", path.display())]
    Results { path: PathBuf, detail: String },

    #[error("{path}: file not found")]
    MissingFile { path: PathBuf },

    #[error("{path}: not a readable safetensors file: {detail}")]
    Safetensors { path: PathBuf, detail: String },

    #[error("tensor {name} is in both {first} and {second}")]
    DuplicateTensor { name: String, first: PathBuf, second: PathBuf },

    #[error("tensor {name} not found in {}", list(files))]
    MissingTensor { name: String, files: Vec<PathBuf> },

    #[error("tensor {name} in {file} has shape {found:?}, expected {expected:?}")]
    TensorShape { name: String, file: PathBuf, expected: Vec<i32>, found: Vec<i32> },

    #[error("tensor {name} in {file} is not used by the model (unexpected or misnamed)")]
    UnusedTensor { name: String, file: PathBuf },

    #[error("unsupported quantization for {module}: {detail}")]
    UnsupportedQuantization { module: String, detail: String },

    #[error("unsupported model_type {model_type:?}; supported: {}", supported.join(", "))]
    UnsupportedModelType { model_type: String, supported: Vec<&'static str> },

    #[error("model {spec:?} not found; looked in: {}", searched.join("; "))]
    ModelNotFound { spec: String, searched: Vec<String> },

    /// A directory given as a model that lacks a model's files (`missing`: what it lacks).
    #[error("{} is not an MLX model directory: it has no {}", path.display(), missing.join(", no "))]
    NotModelDirectory { path: PathBuf, missing: Vec<&'static str> },

    #[error("downloading {spec:?}: {detail}")]
    Download { spec: String, detail: String },

    #[error("{path}: tokenizer: {detail}")]
    Tokenizer { path: PathBuf, detail: String },

    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// A distributed group that cannot start or run, or a model it cannot split.
    #[error("distributed: {0}")]
    Distributed(String),

    /// A generation setting this architecture cannot run (and mlx-lm does not run either).
    #[error("{setting} is not supported for {model_type}: {reason}")]
    UnsupportedSetting { model_type: String, setting: &'static str, reason: String },

    /// The mlx-lm side of `mlxbench quality` (its Python) failed; the detail says how.
    #[error("mlx-lm quality engine ({python}): {detail}")]
    ReferenceEngine { python: String, detail: String },

    /// Writing text into memory failed (a `Display` implementation reported an error).
    #[error("formatting text: {0}")]
    Format(#[from] std::fmt::Error),

    /// A model directory that did not load; the source says why.
    #[error("loading {}", path.display())]
    Loading {
        path: PathBuf,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The error and its causes in one line (see [`describe`]).
    pub fn describe(&self) -> String {
        describe(std::iter::successors(Some(self as &(dyn std::error::Error + 'static)), |e| e.source()))
    }
}

/// Shorthand for results of this library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One line for an error and its causes, for reports: each cause's text once (MLX's message is
/// both the error and its source), without the C++/Rust source locations MLX and mlx-rs append.
pub fn describe<'a>(chain: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    static LOCATION: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let location = LOCATION.get_or_init(|| {
        regex::Regex::new(r#"\s+at\s+[^\s"]+\.(?:cpp|cc|h|hpp|rs):\d+(?::\d+)?"#).expect("a valid pattern")
    });
    let mut text = String::new();
    for cause in chain {
        let part = location.replace_all(&cause.to_string(), "").into_owned();
        let bare = part.trim_matches('"');
        if !text.contains(bare) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}
