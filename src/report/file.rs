//! Files mlxbench writes: every one through [`write_atomically`]; results files of
//! `mlxbench run` through [`ResultsFile`], which adds a run's records to what the file held.
use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use super::{appender, Format};
use crate::{
    bench::record::RunRecord,
    error::{Error, Result},
};

/// Writes `contents` to `path` through a temporary file in the same folder, synced to disk, and a
/// rename: a reader, a crash or Ctrl-C sees the old file or the new one, never half of one. The
/// one way mlxbench writes a file it may later read back.
pub fn write_atomically(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = fs::File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(contents.as_ref())?;
            file.sync_all()
        })
        .map_err(io(&tmp))
        .and_then(|()| fs::rename(&tmp, path).map_err(io(path)));
    if written.is_err() {
        // Best effort: the error above is the one worth reporting.
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// A results file that a run adds its records to as they come, without ever losing what the
/// file held before.
pub struct ResultsFile {
    path: PathBuf,
    format: Format,
    existing: String,
    /// Set when `path` held something records cannot be added to; we write a new file instead.
    pub redirected_from: Option<PathBuf>,
}

impl ResultsFile {
    /// Opens `path` for appending in `format`. An existing file that is not of that format (a
    /// different CSV header, not our JSON) is left alone and a free name beside it is used.
    pub fn open(path: &Path, format: Format) -> Result<Self> {
        let read = |p: &Path| match fs::read_to_string(p) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(source) => Err(Error::Io { path: p.to_path_buf(), source }),
        };
        let existing = read(path)?;
        if appender(format)?.append(&existing, &[])?.is_some() {
            return Ok(Self { path: path.to_path_buf(), format, existing, redirected_from: None });
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
        let free = (2..)
            .map(|i| path.with_file_name(format!("{stem}-{i}{ext}")))
            .find(|p| !p.exists())
            .expect("an unbounded range has a free name");
        Ok(Self { path: free, format, existing: String::new(), redirected_from: Some(path.to_path_buf()) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rewrites the file as what it held before plus `records`.
    pub fn save(&self, records: &[RunRecord]) -> Result<()> {
        let text = appender(self.format)?
            .append(&self.existing, records)?
            .ok_or_else(|| Error::InvalidOption(format!("{} changed while mlxbench was writing it", self.path.display())))?;
        write_atomically(&self.path, &text)
    }
}
