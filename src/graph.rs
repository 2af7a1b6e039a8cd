//! The compute graph behind arrays, as MLX writes it (DOT, `mlx_export_to_dot`; Python's
//! `mx.export_to_dot` writes the same format): how we check that one decode step of ours builds
//! the same primitives as mlx-lm's.
use std::{collections::BTreeMap, ffi::CString, path::Path};

use mlx_rs::Array;

use crate::error::{Error, Result};

/// Writes the graph that computes `outputs` (not evaluated) to `path` as DOT.
pub fn export_dot(outputs: &[&Array], path: &Path) -> Result<()> {
    let failed = |detail: &str| Error::InvalidOption(format!("writing the graph to {}: {detail}", path.display()));
    let c_path = CString::new(path.to_string_lossy().as_bytes()).map_err(|_| failed("a NUL byte in the path"))?;
    // SAFETY: mlx-c's documented life cycles: a FILE opened and closed here, a node namer and a
    // vector of arrays created, filled with live arrays (mlx-c copies the handles) and freed.
    unsafe {
        let file = mlx_sys::fopen(c_path.as_ptr(), c"w".as_ptr());
        if file.is_null() {
            return Err(Error::Io { path: path.to_path_buf(), source: std::io::Error::last_os_error() });
        }
        let namer = mlx_sys::mlx_node_namer_new();
        let vector = mlx_sys::mlx_vector_array_new();
        for array in outputs {
            mlx_sys::mlx_vector_array_append_value(vector, array.as_ptr());
        }
        let status = mlx_sys::mlx_export_to_dot(file, namer, vector);
        mlx_sys::mlx_vector_array_free(vector);
        mlx_sys::mlx_node_namer_free(namer);
        let closed = mlx_sys::fclose(file);
        if status != 0 || closed != 0 {
            return Err(failed("MLX could not export it"));
        }
    }
    Ok(())
}

/// How many nodes of each primitive a DOT graph written by MLX has (`label ="Name"`).
pub fn primitive_counts(dot: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in dot.lines() {
        if let Some(rest) = line.split("[label =\"").nth(1) {
            if let Some(name) = rest.split('"').next() {
                *counts.entry(name.to_string()).or_insert(0) += 1;
            }
        }
    }
    counts
}
