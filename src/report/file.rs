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
/// file held before or what another run adds to it at the same time: each save takes a lock
/// (`.<name>.lock` beside the file), reads the file afresh, adds the records not yet saved and
/// writes it atomically.
pub struct ResultsFile {
    path: PathBuf,
    format: Format,
    /// How many of the run's records are in the file already.
    saved: usize,
    /// Set when `path` held something records cannot be added to; we write a new file instead.
    pub redirected_from: Option<PathBuf>,
}

/// A results file's text, empty when there is none yet.
fn read_or_empty(path: &Path) -> Result<String> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(reason) => Err(Error::ResultsFile { path: path.to_path_buf(), reason }),
    }
}

impl ResultsFile {
    /// Opens `path` for appending in `format`: its folder is made and checked writable now, not
    /// after the first measurement. An existing file that is not of that format (a different CSV
    /// header, not our JSON) is left alone and a free name beside it is used.
    pub fn open(path: &Path, format: Format) -> Result<Self> {
        let existing = read_or_empty(path)?;
        if appender(format)?.append(&existing, &[])?.is_some() {
            let file = Self { path: path.to_path_buf(), format, saved: 0, redirected_from: None };
            file.lock()?;
            return Ok(file);
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
        let free = (2..)
            .map(|i| path.with_file_name(format!("{stem}-{i}{ext}")))
            .find(|p| !p.exists())
            .expect("an unbounded range has a free name");
        let file = Self { path: free, format, saved: 0, redirected_from: Some(path.to_path_buf()) };
        file.lock()?;
        Ok(file)
    }

    /// The format the file is written in.
    pub fn format(&self) -> Format {
        self.format
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds the records of `records` (all of the run's so far) that are not in the file yet.
    pub fn save(&mut self, records: &[RunRecord]) -> Result<()> {
        let new = records.get(self.saved..).unwrap_or_default();
        if new.is_empty() && self.saved > 0 {
            return Ok(());
        }
        let _lock = self.lock()?;
        let existing = read_or_empty(&self.path)?;
        let text = appender(self.format)?.append(&existing, new)?.ok_or_else(|| {
            Error::InvalidOption(format!("{} changed to another format while mlxbench was adding to it", self.path.display()))
        })?;
        write_atomically(&self.path, &text)?;
        self.saved = records.len();
        Ok(())
    }

    /// An exclusive lock on `.<name>.lock` beside the file, held until the returned file drops.
    fn lock(&self) -> Result<fs::File> {
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|reason| Error::ResultsFile { path: self.path.clone(), reason })?;
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let lock_path = dir.join(format!(".{name}.lock"));
        let io = |reason| Error::ResultsFile { path: self.path.clone(), reason };
        let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io)?;
        file.lock().map_err(io)?;
        Ok(file)
    }
}
