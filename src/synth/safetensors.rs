//! A safetensors file written tensor by tensor: the header (every name, dtype, shape and byte
//! range) is known before any data exists, so each tensor is generated, written at its place and
//! dropped, and a file of many gigabytes never sits in memory. Keys are sorted, so the same
//! tensors give the same bytes.
use std::{
    collections::BTreeMap,
    fs::File,
    io::{Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use mlx_rs::{Array, Dtype};
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// One tensor of the file: its name, dtype and shape.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
}

impl Entry {
    pub fn nbytes(&self) -> u64 {
        self.shape.iter().product::<usize>() as u64 * dtype_size(self.dtype)
    }
}

fn dtype_size(dtype: Dtype) -> u64 {
    match dtype {
        Dtype::Float32 | Dtype::Uint32 => 4,
        Dtype::Bfloat16 | Dtype::Float16 => 2,
        other => unreachable!("synthetic models hold no {other:?} tensors"),
    }
}

fn dtype_name(dtype: Dtype) -> &'static str {
    match dtype {
        Dtype::Float32 => "F32",
        Dtype::Float16 => "F16",
        Dtype::Bfloat16 => "BF16",
        Dtype::Uint32 => "U32",
        other => unreachable!("synthetic models hold no {other:?} tensors"),
    }
}

/// An open safetensors file whose header is written; tensors go in by name, in any order.
pub struct Writer {
    file: File,
    path: PathBuf,
    /// Absolute file offset of each tensor's data.
    offsets: BTreeMap<String, u64>,
}

impl Writer {
    /// Creates `path` with the header for `entries` (laid out in the given order) and metadata
    /// `{"format": "mlx"}` as mlx-lm writes it; the data area is allocated, to be filled.
    pub fn create(path: &Path, entries: &[Entry]) -> Result<Self> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let mut header: BTreeMap<String, Value> = BTreeMap::new();
        header.insert("__metadata__".into(), json!({"format": "mlx"}));
        let mut relative = Vec::with_capacity(entries.len());
        let mut end = 0u64;
        for entry in entries {
            let begin = end;
            end += entry.nbytes();
            header.insert(
                entry.name.clone(),
                json!({"dtype": dtype_name(entry.dtype), "shape": entry.shape, "data_offsets": [begin, end]}),
            );
            relative.push((entry.name.clone(), begin));
        }
        let mut text = serde_json::to_string(&header).expect("JSON of strings and numbers");
        // The data starts 8-byte aligned, as the format recommends.
        while (8 + text.len()) % 8 != 0 {
            text.push(' ');
        }
        let data_start = 8 + text.len() as u64;
        let mut file = File::create(path).map_err(io)?;
        file.write_all(&(text.len() as u64).to_le_bytes()).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.set_len(data_start + end).map_err(io)?;
        let offsets = relative.into_iter().map(|(name, begin)| (name, data_start + begin)).collect();
        Ok(Self { file, path: path.to_path_buf(), offsets })
    }

    /// Writes `array` (evaluated, row-contiguous) at `byte_offset` within tensor `name`.
    pub fn write(&mut self, name: &str, byte_offset: u64, array: &Array) -> Result<()> {
        let start = self.offsets.get(name).copied().unwrap_or_else(|| unreachable!("{name} is in the header"));
        let bytes = array.view::<u8>()?;
        let data = bytes
            .try_as_slice::<u8>()
            .map_err(|e| Error::Safetensors { path: self.path.clone(), detail: format!("{name}: {e}") })?;
        let io = |source| Error::Io { path: self.path.clone(), source };
        self.file.seek(SeekFrom::Start(start + byte_offset)).map_err(io)?;
        self.file.write_all(data).map_err(io)
    }
}
