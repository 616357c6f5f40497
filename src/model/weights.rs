//! The in-memory model: an architecture config plus f32 weights addressable by
//! layer, projection and attention head. Importers fill it; transforms (head
//! pruning, low-rank factorisation, adapters) edit it; the ONNX builder emits a
//! graph from it.

use serde::{Deserialize, Serialize};

/// Decoder architectures the builder knows. Llama and Qwen2 share one graph:
/// Qwen2 adds biases on the Q/K/V projections; Qwen3 drops them and
/// RMS-normalises each query and key head before the rotary embedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
}

impl Arch {
    pub fn name(&self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }
}

/// Llama 3.x style rope frequency scaling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    pub factor: f32,
    pub low_freq_factor: f32,
    pub high_freq_factor: f32,
    pub original_max_position: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub n_layers: usize,
    /// Query heads per layer in the original model (layers may hold fewer after pruning).
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f32,
    pub rope_scaling: Option<RopeScaling>,
    pub rms_eps: f32,
    pub max_position: usize,
    pub tie_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: Option<u32>,
}

/// A 2-D f32 matrix, row-major, `rows × cols`. Linear weights are stored as
/// `[out, in]` (the PyTorch / GGUF layout).
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            rows * cols,
            data.len(),
            "matrix shape does not match its data"
        );
        Matrix { rows, cols, data }
    }

    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    pub fn row_mut(&mut self, r: usize) -> &mut [f32] {
        &mut self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Rows `[start, end)` as a new matrix.
    pub fn rows_slice(&self, start: usize, end: usize) -> Matrix {
        Matrix::new(
            end - start,
            self.cols,
            self.data[start * self.cols..end * self.cols].to_vec(),
        )
    }

    /// Keeps the listed rows, in order.
    pub fn select_rows(&self, rows: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(rows.len() * self.cols);
        for &r in rows {
            data.extend_from_slice(self.row(r));
        }
        Matrix::new(rows.len(), self.cols, data)
    }

    /// Keeps the listed columns, in order.
    pub fn select_cols(&self, cols: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(self.rows * cols.len());
        for r in 0..self.rows {
            let row = self.row(r);
            data.extend(cols.iter().map(|&c| row[c]));
        }
        Matrix::new(self.rows, cols.len(), data)
    }

    pub fn transpose(&self) -> Matrix {
        let mut data = vec![0.0; self.data.len()];
        for r in 0..self.rows {
            for c in 0..self.cols {
                data[c * self.rows + r] = self.data[r * self.cols + c];
            }
        }
        Matrix::new(self.cols, self.rows, data)
    }
}

/// A linear projection `y = W x (+ b)` with `W` of shape `[out, in]`, either
/// dense or factorised as `W ≈ U V` (`U: [out, r]`, `V: [r, in]`).
#[derive(Clone, Debug, PartialEq)]
pub enum Linear {
    Dense {
        w: Matrix,
        bias: Option<Vec<f32>>,
    },
    LowRank {
        u: Matrix,
        v: Matrix,
        bias: Option<Vec<f32>>,
    },
}

impl Linear {
    pub fn dense(w: Matrix) -> Self {
        Linear::Dense { w, bias: None }
    }

    pub fn out_features(&self) -> usize {
        match self {
            Linear::Dense { w, .. } => w.rows,
            Linear::LowRank { u, .. } => u.rows,
        }
    }

    pub fn in_features(&self) -> usize {
        match self {
            Linear::Dense { w, .. } => w.cols,
            Linear::LowRank { v, .. } => v.cols,
        }
    }

    pub fn bias(&self) -> Option<&Vec<f32>> {
        match self {
            Linear::Dense { bias, .. } | Linear::LowRank { bias, .. } => bias.as_ref(),
        }
    }

    pub fn params(&self) -> usize {
        let b = self.bias().map_or(0, |b| b.len());
        match self {
            Linear::Dense { w, .. } => w.data.len() + b,
            Linear::LowRank { u, v, .. } => u.data.len() + v.data.len() + b,
        }
    }

    /// Multiply-accumulates per token.
    pub fn flops_per_token(&self) -> usize {
        match self {
            Linear::Dense { w, .. } => 2 * w.data.len(),
            Linear::LowRank { u, v, .. } => 2 * (u.data.len() + v.data.len()),
        }
    }

    /// The full `[out, in]` matrix (multiplying out a factorisation).
    pub fn to_dense(&self) -> Matrix {
        match self {
            Linear::Dense { w, .. } => w.clone(),
            Linear::LowRank { u, v, .. } => {
                let mut m = Matrix::zeros(u.rows, v.cols);
                for i in 0..u.rows {
                    let out = &mut m.data[i * v.cols..(i + 1) * v.cols];
                    for k in 0..u.cols {
                        let a = u.data[i * u.cols + k];
                        if a == 0.0 {
                            continue;
                        }
                        for (o, &b) in out.iter_mut().zip(v.row(k)) {
                            *o += a * b;
                        }
                    }
                }
                m
            }
        }
    }

    /// `y = W x + b` for one vector (reference forward and calibration).
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mv = |m: &Matrix, x: &[f32]| -> Vec<f32> {
            (0..m.rows)
                .map(|r| m.row(r).iter().zip(x).map(|(a, b)| a * b).sum())
                .collect()
        };
        let mut y = match self {
            Linear::Dense { w, .. } => mv(w, x),
            Linear::LowRank { u, v, .. } => mv(u, &mv(v, x)),
        };
        if let Some(b) = self.bias() {
            for (y, b) in y.iter_mut().zip(b) {
                *y += b;
            }
        }
        y
    }
}

/// One decoder layer. Heads are contiguous `head_dim` row blocks of `q`
/// (query heads) and of `k`/`v` (key/value heads); `o`'s columns follow `q`'s heads.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub attn_norm: Vec<f32>,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    /// Qwen3: RMS-norm weights `[head_dim]` applied to every query head and
    /// every key head before rotary (`None` for llama and qwen2).
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub mlp_norm: Vec<f32>,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub config: ModelConfig,
    /// `[vocab, hidden]`.
    pub embed: Matrix,
    pub layers: Vec<Layer>,
    pub final_norm: Vec<f32>,
    /// `[vocab, hidden]`; `None` when tied to `embed`.
    pub lm_head: Option<Matrix>,
    /// Identity of the weights (sha256 of the source file or files), used to key
    /// built-graph caches together with the transforms applied.
    pub source_digest: String,
    /// Transforms applied so far, as stable strings (part of the cache key).
    pub transforms: Vec<String>,
    /// Branches the graph computes beside the weights (unmergeable adapters).
    pub adapters: Adapters,
}

impl Model {
    pub fn params(&self) -> usize {
        let mut n = self.embed.data.len() + self.final_norm.len();
        if let Some(h) = &self.lm_head {
            n += h.data.len();
        }
        for l in &self.layers {
            n += l.attn_norm.len() + l.mlp_norm.len();
            n += l.q_norm.as_ref().map_or(0, Vec::len) + l.k_norm.as_ref().map_or(0, Vec::len);
            for p in [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down] {
                n += p.params();
            }
        }
        n + self.adapters.params()
    }

    /// Matrix FLOPs per generated token (projections and lm_head; attention
    /// score FLOPs depend on context length and are left out).
    pub fn flops_per_token(&self) -> usize {
        let mut n = 2 * self.config.vocab_size * self.config.hidden;
        for l in &self.layers {
            for p in [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down] {
                n += p.flops_per_token();
            }
        }
        n + self.adapters.flops_per_token()
    }

    pub fn lm_head(&self) -> &Matrix {
        self.lm_head.as_ref().unwrap_or(&self.embed)
    }

    /// Key for built-graph caches: weights + transforms (+ the builder's own version, added by the builder).
    pub fn cache_key(&self) -> String {
        cache_key(&self.source_digest, &self.transforms)
    }
}

/// The graph-cache key of weights with a digest and a transform chain, computable
/// without loading the weights (so a cached graph opens without dequantising).
pub fn cache_key(source_digest: &str, transforms: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(source_digest.as_bytes());
    for t in transforms {
        h.update(b"\0");
        h.update(t.as_bytes());
    }
    hex::encode(h.finalize())[..24].to_string()
}

// Adapter branches (see `model::adapters`): here, beside `Model`, which holds them.

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
