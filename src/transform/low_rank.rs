//! `low-rank`: factorises chosen projections as `W ≈ U V` ([`Linear::LowRank`],
//! two MatMuls in the graph) at a fixed `rank`, an `energy` fraction of the
//! method's spectrum, or a parameter `size` fraction. Methods:
//!
//! - `svd`: truncated SVD of W (no calibration needed).
//! - `activation`: output-space activation PCA. With `C = XᵀX` the calibration
//!   second moment of the projection's input, the outputs `Y = XWᵀ` have second
//!   moment `W C Wᵀ`; its top-r eigenvectors `U` give `W̃ = U (Uᵀ W)`, the rank-r
//!   weight with the smallest activation error ‖XWᵀ − XW̃ᵀ‖_F (so it never does
//!   worse than SVD on that measure).
//! - `activation-input`: input-space variant, W projected on the top-r
//!   eigenvectors `P` of `C`: `W̃ = (W P) Pᵀ`. Cheaper to reason about, not
//!   optimal for the activation error.
//! - `impact`: IMPACT-style importance-weighted output covariance. IMPACT weights
//!   by gradient-based importance; here each output channel j gets the saliency
//!   `a_j = ‖W_j,:‖₂ · rms(y_j)` (weight magnitude × activation magnitude,
//!   normalised to mean 1) — an approximation without gradients, stated in the
//!   record. Basis: top-r eigenvectors `U` of `D (W C Wᵀ) D`, `D = diag(√a)`,
//!   and `W̃ = D⁻¹U (Uᵀ D W)`, which minimises the a-weighted activation error.
//!
//! A projection is factorised only when that saves parameters, i.e.
//! `r (in + out) < in · out`; otherwise it stays dense and the record says why.

use super::calib::{self, Needs, from_faer, to_faer};
use super::{Calibration, LayerRecord, ProjectionRecord, Transform, TransformRecord, stable_key};
use crate::error::{Error, Result};
use crate::model::{Layer, Linear, Model};
use faer::{Mat, Side};
use serde::{Deserialize, Serialize};

/// A projection of a decoder layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Projection {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Projection {
    pub const ALL: [Projection; 7] = [
        Projection::Q,
        Projection::K,
        Projection::V,
        Projection::O,
        Projection::Gate,
        Projection::Up,
        Projection::Down,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Projection::Q => "q",
            Projection::K => "k",
            Projection::V => "v",
            Projection::O => "o",
            Projection::Gate => "gate",
            Projection::Up => "up",
            Projection::Down => "down",
        }
    }

    pub fn get<'a>(&self, l: &'a Layer) -> &'a Linear {
        match self {
            Projection::Q => &l.q,
            Projection::K => &l.k,
            Projection::V => &l.v,
            Projection::O => &l.o,
            Projection::Gate => &l.gate,
            Projection::Up => &l.up,
            Projection::Down => &l.down,
        }
    }

    pub fn get_mut<'a>(&self, l: &'a mut Layer) -> &'a mut Linear {
        match self {
            Projection::Q => &mut l.q,
            Projection::K => &mut l.k,
            Projection::V => &mut l.v,
            Projection::O => &mut l.o,
            Projection::Gate => &mut l.gate,
            Projection::Up => &mut l.up,
            Projection::Down => &mut l.down,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LowRankMethod {
    Svd,
    #[default]
    Activation,
    ActivationInput,
    Impact,
}

/// q/k/v are left out by default: the graph builder packs them into one dense
/// MatMul, so factorising them saves no graph FLOPs (name them to do it anyway).
fn default_targets() -> Vec<Projection> {
    vec![
        Projection::O,
        Projection::Gate,
        Projection::Up,
        Projection::Down,
    ]
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LowRankConfig {
    #[serde(default = "default_targets")]
    pub targets: Vec<Projection>,
    #[serde(default)]
    pub method: LowRankMethod,
    /// Fixed rank (one of rank / energy / size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    /// Smallest rank keeping this fraction of the method's spectrum energy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<f64>,
    /// Fraction of each projection's dense parameter count to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<f64>,
    /// Factorise even where it saves no parameters (experiments and tests).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

impl LowRankConfig {
    pub fn with_rank(method: LowRankMethod, rank: usize, targets: Vec<Projection>) -> Self {
        LowRankConfig {
            targets,
            method,
            rank: Some(rank),
            energy: None,
            size: None,
            force: false,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("low-rank: {m}")));
        let set = [
            self.rank.is_some(),
            self.energy.is_some(),
            self.size.is_some(),
        ];
        if set.iter().filter(|b| **b).count() != 1 {
            return bad("give exactly one of rank, energy or size (e.g. low-rank:rank=64)".into());
        }
        if self.rank == Some(0) {
            return bad("rank must be at least 1".into());
        }
        if let Some(e) = self.energy
            && !(e > 0.0 && e <= 1.0)
        {
            return bad(format!("energy {e} must be in (0, 1]"));
        }
        if let Some(s) = self.size
            && !(s > 0.0 && s < 1.0)
        {
            return bad(format!("size {s} must be in (0, 1)"));
        }
        if self.targets.is_empty() {
            return bad("targets is empty; name some of q, k, v, o, gate, up, down".into());
        }
        Ok(())
    }
}

impl Transform for LowRankConfig {
    fn name(&self) -> String {
        format!(
            "low-rank{}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    fn apply(&self, model: &Model, calib: &Calibration) -> Result<(Model, TransformRecord)> {
        self.validate()?;
        let settings = serde_json::to_value(self).map_err(|e| Error::Other(e.to_string()))?;
        let mut rec = TransformRecord::start("low-rank", settings, model);
        let mut out = model.clone();
        let has = |p: Projection| self.targets.contains(&p);
        let needs_calib = self.method != LowRankMethod::Svd;
        // SVD needs no activations, but with calibration text at hand the record
        // also reports its activation error (for comparison with the others).
        let use_calib = needs_calib || !calib.is_empty();
        let mut layer_recs: Vec<LayerRecord> = Vec::with_capacity(model.layers.len());
        let mut do_layer = |i: usize, acts: Option<&calib::LayerActivations>| -> Result<()> {
            let layer = &model.layers[i];
            let mut lr = LayerRecord {
                layer: i,
                heads_before: layer.n_heads,
                heads_after: layer.n_heads,
                kv_heads_before: layer.n_kv_heads,
                kv_heads_after: layer.n_kv_heads,
                ..Default::default()
            };
            for p in self.targets.iter().copied() {
                let cov = acts.and_then(|a| match p {
                    Projection::Q | Projection::K | Projection::V => a.attn_in_cov.as_ref(),
                    Projection::O => a.o_in_cov.as_ref(),
                    Projection::Gate | Projection::Up => a.mlp_in_cov.as_ref(),
                    Projection::Down => a.down_in_cov.as_ref(),
                });
                let (lin, pr) = self.factorise(p, p.get(layer), cov)?;
                *p.get_mut(&mut out.layers[i]) = lin;
                lr.projections.push(pr);
            }
            layer_recs.push(lr);
            Ok(())
        };
        if use_calib {
            let needs = Needs {
                attn_in_cov: has(Projection::Q) || has(Projection::K) || has(Projection::V),
                o_in_cov: has(Projection::O),
                mlp_in_cov: has(Projection::Gate) || has(Projection::Up),
                down_in_cov: has(Projection::Down),
                ..Default::default()
            };
            calib::forward(model, calib, needs, |a| do_layer(a.layer, Some(&a)))?;
            rec.calibration_tokens = calib.tokens();
        } else {
            for i in 0..model.layers.len() {
                do_layer(i, None)?;
            }
        }
        rec.layers = layer_recs;
        rec.notes.push(match self.method {
            LowRankMethod::Svd => "method svd: truncated SVD of each weight".into(),
            LowRankMethod::Activation => "method activation: eigenvectors of the output activation second moment W·XᵀX·Wᵀ on calibration text (minimises ‖XWᵀ − XW̃ᵀ‖ at the rank)".into(),
            LowRankMethod::ActivationInput => "method activation-input: W projected on the top eigenvectors P of the input activation second moment XᵀX, W ≈ (W·P)·Pᵀ".into(),
            LowRankMethod::Impact => "method impact (approximation): IMPACT's gradient-based importance is replaced by a per-output-channel saliency a_j = ‖W_j‖·rms(y_j) (weight magnitude × activation magnitude, no gradients); basis = eigenvectors of the a-weighted output activation covariance".into(),
        });
        if self
            .targets
            .iter()
            .any(|p| matches!(p, Projection::Q | Projection::K | Projection::V))
        {
            rec.notes.push("q/k/v factorisations cut the model's parameter count, but the graph builder packs q/k/v into one dense MatMul, so they do not shrink the built graph".into());
        }
        let cal = use_calib.then_some(calib);
        let key = stable_key(&self.name(), cal);
        rec.finish(&mut out, key);
        Ok((out, rec))
    }
}

impl LowRankConfig {
    fn factorise(
        &self,
        p: Projection,
        lin: &Linear,
        cov: Option<&Mat<f64>>,
    ) -> Result<(Linear, ProjectionRecord)> {
        let dense = lin.to_dense();
        let (out_f, in_f) = (dense.rows, dense.cols);
        let mut pr = ProjectionRecord {
            name: p.name().into(),
            in_features: in_f,
            out_features: out_f,
            ..Default::default()
        };
        let breakeven = in_f * out_f / (in_f + out_f); // ranks below this save parameters
        let w = to_faer(&dense);
        if self.method != LowRankMethod::Svd && cov.is_none() {
            return Err(Error::Config(format!(
                "low-rank method {:?} needs calibration text: pass --calibration DATASET",
                self.method
            )));
        }
        // Basis and spectrum per method: W̃ = left · right.
        // The largest rank a method can use (input-space bases span all of `in`).
        let full = match self.method {
            LowRankMethod::ActivationInput => in_f,
            _ => in_f.min(out_f),
        };
        let (spectrum, factors): (Vec<f64>, Factors) = match self.method {
            LowRankMethod::Svd => {
                let svd = w.thin_svd().map_err(|e| {
                    Error::Other(format!("low-rank: SVD of {} failed: {e:?}", p.name()))
                })?;
                let s: Vec<f64> = (0..in_f.min(out_f))
                    .map(|i| svd.S().column_vector()[i])
                    .collect();
                let u = svd.U().to_owned();
                let v = svd.V().to_owned();
                let spec = s.iter().map(|x| x * x).collect();
                (
                    spec,
                    Box::new(move |r| {
                        let left = Mat::from_fn(u.nrows(), r, |i, j| u[(i, j)] * s[j]);
                        let right = Mat::from_fn(r, v.nrows(), |i, j| v[(j, i)]);
                        (left, right)
                    }),
                )
            }
            LowRankMethod::ActivationInput => {
                let c = cov.expect("checked above");
                let (vals, vecs) = top_eigen(c)?;
                let w2 = w.clone();
                (
                    vals,
                    Box::new(move |r| {
                        let pm = vecs.subcols(0, r).to_owned(); // [in, r]
                        (&w2 * &pm, pm.transpose().to_owned())
                    }),
                )
            }
            LowRankMethod::Activation | LowRankMethod::Impact => {
                let c = cov.expect("checked above");
                let cy = &w * c * w.transpose(); // [out, out]
                let weights: Vec<f64> = if self.method == LowRankMethod::Impact {
                    saliency(&w, &cy)
                } else {
                    vec![1.0; out_f]
                };
                let d: Vec<f64> = weights.iter().map(|a| a.sqrt()).collect();
                let cw = Mat::from_fn(out_f, out_f, |i, j| d[i] * cy[(i, j)] * d[j]);
                let (vals, vecs) = top_eigen(&cw)?;
                let w2 = w.clone();
                (
                    vals,
                    Box::new(move |r| {
                        let u = vecs.subcols(0, r); // [out, r]
                        let left = Mat::from_fn(out_f, r, |i, j| u[(i, j)] / d[i]);
                        let dw = Mat::from_fn(out_f, in_f, |i, j| d[i] * w2[(i, j)]);
                        (left, u.transpose() * &dw)
                    }),
                )
            }
        };
        let rank = match (self.rank, self.energy, self.size) {
            (Some(r), _, _) => r.min(full),
            (_, Some(e), _) => {
                let total: f64 = spectrum.iter().map(|v| v.max(0.0)).sum();
                let mut acc = 0.0;
                let mut r = full;
                for (i, v) in spectrum.iter().enumerate() {
                    acc += v.max(0.0);
                    if total <= 0.0 || acc >= e * total - 1e-12 * total {
                        r = i + 1;
                        break;
                    }
                }
                r
            }
            (_, _, Some(s)) => {
                ((s * (in_f * out_f) as f64 / (in_f + out_f) as f64).floor() as usize).max(1)
            }
            _ => unreachable!("validated"),
        }
        .max(1);
        if !self.force && rank * (in_f + out_f) >= in_f * out_f {
            pr.kept_dense = Some(format!(
                "rank {rank} saves no parameters for a {out_f}×{in_f} weight (break-even rank {breakeven})"
            ));
            pr.activation_error = cov.map(|_| 0.0);
            return Ok((lin.clone(), pr));
        }
        let (left, right) = factors(rank);
        let approx = &left * &right;
        let diff = &w - &approx;
        pr.rank = Some(rank);
        pr.weight_error = (diff.norm_l2() / w.norm_l2().max(1e-30)).min(f64::MAX);
        if let Some(c) = cov {
            let num = frob_inner(&(&diff * c), &diff);
            let den = frob_inner(&(&w * c), &w);
            pr.activation_error = Some(if den > 0.0 {
                (num.max(0.0) / den).sqrt()
            } else {
                0.0
            });
        }
        Ok((
            Linear::LowRank {
                u: from_faer(left.as_ref()),
                v: from_faer(right.as_ref()),
                bias: lin.bias().cloned(),
            },
            pr,
        ))
    }
}

/// Builds the factors `(left [out, r], right [r, in])` of a rank-r approximation.
type Factors = Box<dyn Fn(usize) -> (Mat<f64>, Mat<f64>)>;

/// Eigenvalues (descending) and eigenvectors (columns, same order) of a
/// symmetric matrix.
fn top_eigen(c: &Mat<f64>) -> Result<(Vec<f64>, Mat<f64>)> {
    let n = c.nrows();
    let e = c
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::Other(format!("low-rank: eigendecomposition failed: {e:?}")))?;
    let s = e.S().column_vector();
    let u = e.U();
    let vals: Vec<f64> = (0..n).rev().map(|i| s[i]).collect();
    let vecs = Mat::from_fn(n, n, |i, j| u[(i, n - 1 - j)]);
    Ok((vals, vecs))
}

/// Per-output-channel saliency ‖W_j,:‖ · rms(y_j), normalised to mean 1 and
/// floored so the weighting stays invertible.
fn saliency(w: &Mat<f64>, cy: &Mat<f64>) -> Vec<f64> {
    let n = w.nrows();
    let raw: Vec<f64> = (0..n)
        .map(|j| {
            let wn = (0..w.ncols())
                .map(|k| w[(j, k)] * w[(j, k)])
                .sum::<f64>()
                .sqrt();
            wn * cy[(j, j)].max(0.0).sqrt()
        })
        .collect();
    let mean = raw.iter().sum::<f64>() / n.max(1) as f64;
    if mean <= 0.0 {
        return vec![1.0; n];
    }
    raw.iter().map(|a| (a / mean).max(1e-3)).collect()
}

/// Σ A∘B.
fn frob_inner(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            s += a[(i, j)] * b[(i, j)];
        }
    }
    s
}
