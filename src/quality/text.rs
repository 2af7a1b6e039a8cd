//! The text `quality` scores: the default shipped in `fixtures/quality/` (built into the binary),
//! a plain text file, or a JSONL dataset whose lines each carry a `"text"` field (joined by a
//! blank line, in file order).
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The default evaluation text: the books of Ruth and Jonah, King James Version (public domain;
/// fixtures/README.md says where it comes from).
pub const DEFAULT_TEXT: &str = include_str!("../../fixtures/quality/kjv-ruth-jonah.txt");
/// How records name the default text.
pub const DEFAULT_TEXT_NAME: &str = "fixtures/quality/kjv-ruth-jonah.txt";

/// Where the text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextSource {
    Default,
    /// A UTF-8 text file, scored as it is.
    File(PathBuf),
    /// JSON lines, each an object with a string `"text"`; blank lines are skipped.
    Dataset(PathBuf),
}

impl TextSource {
    /// The name records carry.
    pub fn name(&self) -> String {
        match self {
            TextSource::Default => DEFAULT_TEXT_NAME.to_string(),
            TextSource::File(path) | TextSource::Dataset(path) => path.display().to_string(),
        }
    }

    /// The text.
    pub fn read(&self) -> Result<String> {
        match self {
            TextSource::Default => Ok(DEFAULT_TEXT.to_string()),
            TextSource::File(path) => read(path),
            TextSource::Dataset(path) => dataset_text(path, &read(path)?),
        }
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// The `"text"` of each JSON line of `contents`, joined by a blank line; an error names the file
/// and the line.
pub fn dataset_text(path: &Path, contents: &str) -> Result<String> {
    let bad = |line: usize, detail: String| Error::Config { path: path.to_path_buf(), detail: format!("line {line}: {detail}") };
    let mut texts = Vec::new();
    for (i, line) in contents.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(i + 1, e.to_string()))?;
        let text = value.get("text").and_then(|t| t.as_str()).ok_or_else(|| bad(i + 1, "no string \"text\" field".into()))?;
        texts.push(text.to_string());
    }
    if texts.is_empty() {
        return Err(bad(0, "no records".into()));
    }
    Ok(texts.join("\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_lines_are_joined_in_order() {
        let path = Path::new("d.jsonl");
        let text = dataset_text(path, "{\"text\": \"one\"}\n\n{\"text\": \"two\", \"id\": 2}\n").unwrap();
        assert_eq!(text, "one\n\ntwo");
        let err = dataset_text(path, "{\"text\": \"one\"}\n{\"body\": 1}\n").unwrap_err().to_string();
        assert!(err.contains("d.jsonl") && err.contains("line 2"), "{err}");
        assert!(dataset_text(path, "not json").is_err());
        assert!(dataset_text(path, "").is_err());
    }

    #[test]
    fn the_default_text_is_long_enough() {
        // About 4,950 SmolLM2 tokens; a byte-level tokenizer never gives fewer tokens than
        // words, and depth 2048 plus scoring needs about 2,200.
        assert!(DEFAULT_TEXT.split_whitespace().count() > 2_500);
    }
}
