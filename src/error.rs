//! The library's error type: each variant names what failed (a version, a device, a path).
use thiserror::Error;

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
}

/// Shorthand for results of this library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
