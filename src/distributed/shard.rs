//! Tensor parallelism as mlx-lm's `shard_linear` does it: the query, key, value, gate and up
//! projections split by output features ("all-to-sharded"), the output and down projections by
//! input features and followed by an all-sum ("sharded-to-all"), quantized weights, scales and
//! biases along the same axes, experts each split the same way (the sum after the experts are
//! combined), norms, routers, embeddings and the head replicated.
//!
//! Two pieces do it for every architecture at once: [`split_config`] gives each rank the config
//! of its share (heads, KV heads and feed-forward widths divided by the group size), so every
//! architecture builds the per-rank shapes it already knows how to run; and a [`Sharding`] in the
//! weight store cuts each tensor whose stored shape is the group size times the requested one
//! along that axis (fused projections segment by segment), remembering which were cut along
//! their input axis so that those layers add the all-sum.
use mlx_rs::Array;

use super::Group;
use crate::{
    config::ModelConfig,
    error::{Error, Result},
};

/// How one rank takes its share of a model's tensors.
#[derive(Debug, Clone)]
pub struct Sharding {
    pub group: Group,
    /// Fused projections (`path suffix`, the output rows of each part in the whole model): each
    /// part is split on its own, as mlx-lm's `shard_linear(..., segments=...)` does.
    pub fused: Vec<(String, Vec<usize>)>,
}

/// Where a stored tensor splits for the requested per-rank shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Every rank holds all of it.
    Replicated,
    /// Rank `r` of `n` holds slice `r` of `n` along this axis.
    Axis(usize),
}

/// The axis along which `stored` is `ranks` times `wanted`, if the shapes say so; `None` when
/// they disagree any other way.
pub fn split_of(stored: &[i32], wanted: &[i32], ranks: usize) -> Option<Split> {
    if stored == wanted {
        return Some(Split::Replicated);
    }
    if stored.len() != wanted.len() {
        return None;
    }
    let differing: Vec<usize> = (0..stored.len()).filter(|&a| stored[a] != wanted[a]).collect();
    match differing[..] {
        [axis] if i64::from(wanted[axis]) * ranks as i64 == i64::from(stored[axis]) => Some(Split::Axis(axis)),
        _ => None,
    }
}

/// The indices along the split axis that `rank` of `ranks` keeps: one contiguous run, or one run
/// per fused part (`parts` sizes summing to `len`, each divisible by `ranks`).
pub fn shard_indices(len: usize, parts: Option<&[usize]>, rank: usize, ranks: usize) -> Result<Vec<i32>> {
    let whole = [len];
    let parts = parts.unwrap_or(&whole);
    let total: usize = parts.iter().sum();
    if total != len {
        return Err(Error::Distributed(format!("fused parts {parts:?} do not add up to the tensor's {len} rows")));
    }
    let mut indices = Vec::with_capacity(len / ranks);
    let mut offset = 0;
    for &part in parts {
        if part % ranks != 0 {
            return Err(Error::Distributed(format!("a part of {part} rows does not split over {ranks} ranks")));
        }
        let share = part / ranks;
        indices.extend((offset + rank * share..offset + (rank + 1) * share).map(|i| i as i32));
        offset += part;
    }
    Ok(indices)
}

impl Sharding {
    /// Rank's share of `array` (stored as `name`) for the per-rank shape `wanted`, and where it
    /// was split; `None` when the shapes do not match as a split.
    pub fn take(&self, name: &str, array: Array, wanted: &[i32]) -> Result<Option<(Array, Split)>> {
        let Some(split) = split_of(array.shape(), wanted, self.group.size()) else { return Ok(None) };
        let Split::Axis(axis) = split else { return Ok(Some((array, split))) };
        let len = array.shape()[axis] as usize;
        let module = name.rsplit_once('.').map_or(name, |(module, _)| module);
        // Fused parts are along the output rows: axis 0 of a matrix.
        let parts = self.fused.iter().find(|(suffix, _)| axis == 0 && module.ends_with(suffix.as_str())).map(|(_, p)| p.as_slice());
        let indices = shard_indices(len, parts, self.group.rank(), self.group.size())
            .map_err(|e| Error::Distributed(format!("{name}: {e}")))?;
        // A row-contiguous copy: `take` along an inner axis leaves a transposed view, which
        // MLX's CUDA quantized matmul refuses ("no implementation for problem shape").
        let share = array.take_axis(Array::from_slice(&indices, &[indices.len() as i32]), axis as i32)?.contiguous()?;
        // Evaluated now, so that only one whole tensor is in memory at a time while loading.
        share.eval()?;
        Ok(Some((share, split)))
    }
}

/// The config of one rank's share of `c` over `ranks` ranks: attention heads, KV heads and the
/// feed-forward widths (dense and expert) divided, `head_dim` kept. What cannot be divided is an
/// error naming the key.
pub fn split_config(c: &ModelConfig, ranks: usize) -> Result<ModelConfig> {
    let mut split = c.clone();
    if ranks <= 1 {
        return Ok(split);
    }
    let divide = |key: &str, value: usize| -> Result<usize> {
        if !value.is_multiple_of(ranks) || value < ranks {
            return Err(Error::Distributed(format!(
                "{} config.json: {key} {value} does not split over {ranks} ranks (tensor parallelism divides it evenly)",
                c.model_type
            )));
        }
        Ok(value / ranks)
    };
    split.split_head_dim = Some(c.hidden_per_head());
    split.head_dim = Some(c.head_dim());
    split.num_attention_heads = divide("num_attention_heads", c.num_attention_heads)?;
    split.num_key_value_heads = Some(divide("num_key_value_heads", c.n_kv_heads())?);
    split.intermediate_size = divide("intermediate_size", c.intermediate_size)?;
    if let Some(width) = c.other.get("moe_intermediate_size").and_then(|v| v.as_u64()) {
        split.other.insert("moe_intermediate_size".into(), divide("moe_intermediate_size", width as usize)?.into());
    }
    if let Some(width) = c.other.get("shared_expert_intermediate_size").and_then(|v| v.as_u64()) {
        split.other.insert("shared_expert_intermediate_size".into(), divide("shared_expert_intermediate_size", width as usize)?.into());
    }
    Ok(split)
}

/// The fused projections of `c`'s architecture, with their parts' rows in the whole model.
pub fn fused_parts(c: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    match c.model_type.as_str() {
        "phi3" => {
            let hd = c.hidden_per_head();
            let (q, kv) = (c.num_attention_heads * hd, c.n_kv_heads() * hd);
            vec![("self_attn.qkv_proj".into(), vec![q, kv, kv]), ("mlp.gate_up_proj".into(), vec![c.intermediate_size; 2])]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_found_on_one_axis_only() {
        assert_eq!(split_of(&[8, 4], &[8, 4], 2), Some(Split::Replicated));
        assert_eq!(split_of(&[8, 4], &[4, 4], 2), Some(Split::Axis(0)));
        assert_eq!(split_of(&[3, 8, 4], &[3, 8, 1], 4), Some(Split::Axis(2)));
        assert_eq!(split_of(&[8, 4], &[4, 2], 2), None);
        assert_eq!(split_of(&[8, 4], &[3, 4], 2), None);
        assert_eq!(split_of(&[8], &[8, 1], 2), None);
    }

    #[test]
    fn fused_parts_split_part_by_part() {
        // q 4 rows, k 2, v 2 over two ranks: rank 1 keeps q[2..4], k[1..2], v[1..2].
        assert_eq!(shard_indices(8, Some(&[4, 2, 2]), 1, 2).unwrap(), vec![2, 3, 5, 7]);
        assert_eq!(shard_indices(8, None, 1, 2).unwrap(), vec![4, 5, 6, 7]);
        assert!(shard_indices(8, Some(&[5, 3]), 0, 2).is_err());
        assert!(shard_indices(8, Some(&[4, 2]), 0, 2).is_err());
    }
}
