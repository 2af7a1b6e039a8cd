//! The feed-forward half of a block: a gated MLP (`down(act(gate(x)) * up(x))`, the gate and up
//! projections separate or fused in one `gate_up_proj`) or a sparse mixture of experts.
use mlx_rs::Array;

use super::{
    activations::{gelu_approx, swiglu},
    experts::SparseMoe,
    Linear,
};
use crate::error::Result;

/// The activation of the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateActivation {
    /// SwiGLU: `silu(gate) * up`, compiled as one function (Llama, Phi-3, Mixtral, Qwen).
    Silu,
    /// GeGLU with the tanh approximation: `gelu_approx(gate) * up` (Gemma).
    GeluApprox,
}

pub enum GateUp {
    Separate { gate_proj: Linear, up_proj: Linear },
    /// One matrix whose output is the gate then the up projection (Phi-3).
    Fused { gate_up_proj: Linear },
}

pub struct GatedMlp {
    pub gate_up: GateUp,
    pub down_proj: Linear,
    pub activation: GateActivation,
}

impl GatedMlp {
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let (gate, up) = match &self.gate_up {
            GateUp::Separate { gate_proj, up_proj } => (gate_proj.forward(x)?, up_proj.forward(x)?),
            GateUp::Fused { gate_up_proj } => {
                let mut halves = gate_up_proj.forward(x)?.split_equal(2, -1)?.into_iter();
                let mut next = || halves.next().expect("an even split gives two halves");
                (next(), next())
            }
        };
        let hidden = match self.activation {
            GateActivation::Silu => swiglu(&gate, &up)?,
            GateActivation::GeluApprox => gelu_approx(&gate)?.multiply(&up)?,
        };
        self.down_proj.forward(&hidden)
    }
}

/// A block's feed-forward network.
pub enum FeedForward {
    Dense(GatedMlp),
    Sparse(SparseMoe),
}

impl FeedForward {
    pub fn forward(&self, x: &Array) -> Result<Array> {
        match self {
            FeedForward::Dense(mlp) => mlp.forward(x),
            FeedForward::Sparse(moe) => moe.forward(x),
        }
    }
}
