//! Adapter branches the decoder graph computes beside the weights: adapters
//! that cannot be merged into them (TopLoRA's token-wise gates; BREP's and
//! LoReFT's position-dependent interventions). Transforms fill them
//! (`crate::transform`); the graph builder (`runtime::decoder`) emits them.

use super::Matrix;

/// Everything the graph adds to the plain decoder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Adapters {
    /// TopLoRA branches, at most one per (layer, projection).
    pub gated: Vec<GatedLora>,
    /// BREP's scale and bias on each layer's `up_proj` output.
    pub up_scale_bias: Option<UpScaleBias>,
    /// LoReFT interventions on block outputs at prompt positions.
    pub reft: Option<Reft>,
}

/// pyreft's LoReFT: `h + Rᵀ(W h + b − R h)` on a layer's output (the
/// residual stream after the block), at the first `first` and the last
/// `last` prompt positions (each at most half the prompt, as pyreft's
/// `get_intervention_locations` clamps them); generated tokens see it only
/// through the cache.
#[derive(Clone, Debug, PartialEq)]
pub struct Reft {
    pub first: usize,
    pub last: usize,
    /// In pyvene's order (applied in this order within a layer).
    pub units: Vec<ReftUnit>,
}

/// Which prompt positions one LoReFT intervention acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReftPositions {
    First,
    Last,
    /// Both groups (pyreft's `share_weights`).
    Both,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReftUnit {
    pub layer: usize,
    pub positions: ReftPositions,
    /// `R`, `[hidden, r]` (orthonormal columns in pyreft).
    pub rotate: Matrix,
    /// `W`, `[r, hidden]`.
    pub weight: Matrix,
    /// `b`, `[r]`.
    pub bias: Vec<f32>,
}

/// TopLoRA on one projection: `y += B((A x) ⊙ exp(RMSNorm_g(x Θ)))`, with
/// the LoRA scale already folded into `b`.
#[derive(Clone, Debug, PartialEq)]
pub struct GatedLora {
    pub layer: usize,
    /// The projection's short name: q, k, v, o, gate, up or down.
    pub proj: String,
    /// `[r, in]`.
    pub a: Matrix,
    /// `[out, r]`, times the LoRA scale.
    pub b: Matrix,
    /// `[in, r]` (applied as `x Θ`).
    pub theta: Matrix,
    /// RMS-norm gain `[r]`.
    pub gain: Vec<f32>,
    pub eps: f32,
}

/// One layer's `(scale, bias)`, each `[intermediate]`.
pub type ScaleBias = (Vec<f32>, Vec<f32>);

/// BREP (RED-style): `up(x) ⊙ scale_l + bias_l` in every layer, on the prompt
/// and the first `n_prefix` generated tokens (all when negative).
#[derive(Clone, Debug, PartialEq)]
pub struct UpScaleBias {
    /// Per layer: `(scale, bias)`, each `[intermediate]` (`None`: layer untouched).
    pub layers: Vec<Option<ScaleBias>>,
    pub n_prefix: i64,
}

impl Adapters {
    pub fn is_empty(&self) -> bool {
        self.gated.is_empty() && self.up_scale_bias.is_none() && self.reft.is_none()
    }

    /// Whether the graph needs each token's position and its row's prompt
    /// length (interventions that act on some positions only).
    pub fn needs_positions(&self) -> bool {
        self.up_scale_bias.as_ref().is_some_and(|u| u.n_prefix >= 0) || self.reft.is_some()
    }

    pub fn params(&self) -> usize {
        let gated: usize = self
            .gated
            .iter()
            .map(|g| g.a.data.len() + g.b.data.len() + g.theta.data.len() + g.gain.len())
            .sum();
        let brep: usize = self.up_scale_bias.as_ref().map_or(0, |u| {
            u.layers
                .iter()
                .flatten()
                .map(|(s, b)| s.len() + b.len())
                .sum()
        });
        let reft: usize = self.reft.as_ref().map_or(0, |r| {
            r.units
                .iter()
                .map(|u| u.rotate.data.len() + u.weight.data.len() + u.bias.len())
                .sum()
        });
        gated + brep + reft
    }

    /// Multiply-accumulates per token.
    pub fn flops_per_token(&self) -> usize {
        self.gated
            .iter()
            .map(|g| 2 * (g.a.data.len() + g.b.data.len() + g.theta.data.len()))
            .sum()
    }

    /// The TopLoRA branch on `proj` of `layer`, if any.
    pub fn gated_for(&self, layer: usize, proj: &str) -> Option<&GatedLora> {
        self.gated
            .iter()
            .find(|g| g.layer == layer && g.proj == proj)
    }
}
