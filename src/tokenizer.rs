//! The model's `tokenizer.json`, through the `tokenizers` crate.
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl Tokenizer {
    /// Loads `dir/tokenizer.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(Error::MissingFile { path });
        }
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| Error::Tokenizer { path: path.clone(), detail: e.to_string() })?;
        Ok(Self { inner, path })
    }

    /// Ids of `text`, without special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer { path: self.path.clone(), detail: e.to_string() })?;
        Ok(encoding.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| Error::Tokenizer { path: self.path.clone(), detail: e.to_string() })
    }

    /// Every id of the vocabulary that is not a special or added token, ascending.
    pub fn ordinary_ids(&self) -> Vec<u32> {
        let added: std::collections::HashSet<u32> = self.inner.get_added_tokens_decoder().keys().copied().collect();
        let mut ids: Vec<u32> =
            self.inner.get_vocab(false).into_values().filter(|id| !added.contains(id)).collect();
        ids.sort_unstable();
        ids
    }

    /// Tokens in the vocabulary, added tokens excluded (what mlx-lm's tokenizer `vocab_size`
    /// counts).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(false)
    }

    /// Whether `other` maps every token, added ones included, to the same id.
    pub fn same_vocabulary(&self, other: &Tokenizer) -> bool {
        self.inner.get_vocab(true) == other.inner.get_vocab(true)
    }

    /// The id of a token given by its text (e.g. the eos token in tokenizer_config.json).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}
