//! Tensors of an MLX-format model (`model.safetensors`, or shards listed in
//! `model.safetensors.index.json`), handed out by name so that loading can prove it used every
//! tensor in the files and found every tensor it expected.
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::{Path, PathBuf},
};

use mlx_rs::Array;
use serde::Deserialize;

use crate::{
    distributed::{
        shard::{Sharding, Split},
        Group,
    },
    error::{Error, Result},
};

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

/// Every tensor of a model, each remembered with the file it came from.
pub struct WeightStore {
    tensors: HashMap<String, (Array, PathBuf)>,
    files: Vec<PathBuf>,
    /// The tensors handed out, evaluated by [`WeightStore::finish`].
    taken: Vec<Array>,
    /// In a tensor-parallel group: how this rank takes its share of each tensor.
    sharding: Option<Sharding>,
    /// Tensors cut along their last (input) axis: their layers sum over the group.
    split_inputs: HashSet<String>,
}

impl WeightStore {
    /// Loads `model.safetensors`, or every shard named by `model.safetensors.index.json`.
    pub fn open(dir: &Path) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        let files = if index.is_file() {
            let text = std::fs::read_to_string(&index).map_err(|source| Error::Io { path: index.clone(), source })?;
            let parsed: ShardIndex =
                serde_json::from_str(&text).map_err(|e| Error::Config { path: index.clone(), detail: e.to_string() })?;
            let mut shards: Vec<PathBuf> = parsed.weight_map.values().map(|f| dir.join(f)).collect();
            shards.sort();
            shards.dedup();
            shards
        } else {
            vec![dir.join("model.safetensors")]
        };
        let mut tensors = HashMap::new();
        for file in &files {
            if !file.is_file() {
                return Err(Error::MissingFile { path: file.clone() });
            }
            let loaded = Array::load_safetensors(file)
                .map_err(|e| Error::Safetensors { path: file.clone(), detail: e.to_string() })?;
            for (name, array) in loaded {
                if let Some((_, first)) = tensors.insert(name.clone(), (array, file.clone())) {
                    return Err(Error::DuplicateTensor { name, first, second: file.clone() });
                }
            }
        }
        Ok(Self { tensors, files, taken: Vec::new(), sharding: None, split_inputs: HashSet::new() })
    }

    /// Hands out this rank's share of each tensor from now on (see `distributed::shard`).
    pub fn shard(&mut self, sharding: Sharding) {
        self.sharding = Some(sharding);
    }

    /// The group to sum `name`'s layer output over, when this rank holds a slice of its input
    /// features.
    pub fn reduce_group(&self, name: &str) -> Option<Group> {
        self.sharding.as_ref().filter(|_| self.split_inputs.contains(name)).map(|s| s.group.clone())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Bytes of a tensor still in the store.
    pub fn nbytes(&self, name: &str) -> Option<usize> {
        self.tensors.get(name).map(|(a, _)| a.nbytes())
    }

    /// Removes a tensor that must exist, with the file it came from.
    fn remove(&mut self, name: &str) -> Result<(Array, PathBuf)> {
        self.tensors.remove(name).ok_or_else(|| Error::MissingTensor { name: name.to_string(), files: self.files.clone() })
    }

    /// Takes a tensor that must exist.
    pub fn take(&mut self, name: &str) -> Result<Array> {
        let (array, _) = self.remove(name)?;
        self.taken.push(array.clone());
        Ok(array)
    }

    /// Takes a tensor that must exist with exactly this shape; in a tensor-parallel group, this
    /// rank's share of it when the stored tensor is the group size times `shape` along one axis.
    pub fn take_shaped(&mut self, name: &str, shape: &[i32]) -> Result<Array> {
        let (mut array, file) = self.remove(name)?;
        if let Some(sharding) = self.sharding.as_ref().filter(|_| array.shape() != shape) {
            let stored = array.shape().to_vec();
            let (share, split) = sharding.take(name, array, shape)?.ok_or_else(|| {
                Error::Distributed(format!(
                    "tensor {name} in {} has shape {stored:?}, which is not {} times this rank's {shape:?} along one axis",
                    file.display(),
                    sharding.group.size()
                ))
            })?;
            if split == Split::Axis(stored.len() - 1) {
                self.split_inputs.insert(name.to_string());
            }
            array = share;
        }
        if array.shape() != shape {
            return Err(Error::TensorShape { name: name.to_string(), file, expected: shape.to_vec(), found: array.shape().to_vec() });
        }
        self.taken.push(array.clone());
        Ok(array)
    }

    /// Drops tensors the architecture knowingly ignores (e.g. precomputed RoPE frequencies).
    pub fn discard(&mut self, name: &str) {
        self.tensors.remove(name);
    }

    /// Fails if any tensor in the files was not used; otherwise reads every tensor taken into
    /// memory, so that a loaded model is in memory (as mlx-lm's `load` leaves it) rather than
    /// read piecemeal by its first forward pass.
    pub fn finish(self) -> Result<()> {
        let mut left: Vec<(String, PathBuf)> = self.tensors.into_iter().map(|(n, (_, f))| (n, f)).collect();
        left.sort();
        if let Some((name, file)) = left.into_iter().next() {
            return Err(Error::UnusedTensor { name, file });
        }
        Ok(mlx_rs::transforms::eval(&self.taken)?)
    }
}
