//! Calibration: an f32 forward pass of the in-memory [`Model`] over token
//! sequences that records, layer by layer, what the transforms need —
//! second-moment matrices XᵀX of each projection's input (activation-aware
//! low-rank, the least-squares refit of pruned heads) and the entropy of every
//! query head's attention distribution (head importance).
//!
//! All calibration tokens are processed together one layer at a time (large
//! faer matmuls; attention per sequence in parallel with rayon), and each
//! layer's statistics are handed to a visitor and then dropped, so memory stays
//! at one layer's worth of matrices.

use crate::error::{Error, Result};
use crate::model::{Linear, Matrix, Model};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// Token sequences to calibrate on (each starts at position 0).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Calibration {
    pub sequences: Vec<Vec<u32>>,
}

impl Calibration {
    pub fn new(sequences: Vec<Vec<u32>>) -> Self {
        Calibration {
            sequences: sequences.into_iter().filter(|s| !s.is_empty()).collect(),
        }
    }

    /// No calibration data (for transforms that need none).
    pub fn none() -> Self {
        Calibration::default()
    }

    /// Uniformly random token ids (tests and smoke runs).
    pub fn random(vocab: usize, n_sequences: usize, len: usize, seed: u64) -> Self {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let v = vocab.max(1) as u32;
        Calibration::new(
            (0..n_sequences)
                .map(|_| (0..len).map(|_| rng.random::<u32>() % v).collect())
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.tokens() == 0
    }

    pub fn tokens(&self) -> usize {
        self.sequences.iter().map(Vec::len).sum()
    }

    /// Short digest of the token ids (part of a transform's cache key).
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for s in &self.sequences {
            h.update((s.len() as u64).to_le_bytes());
            for t in s {
                h.update(t.to_le_bytes());
            }
        }
        hex::encode(h.finalize())[..12].to_string()
    }
}

/// Which statistics to record (each costs time and memory).
#[derive(Clone, Copy, Debug, Default)]
pub struct Needs {
    /// XᵀX of the normed attention input (input of q, k, v).
    pub attn_in_cov: bool,
    /// XᵀX of the concatenated head outputs (input of o).
    pub o_in_cov: bool,
    /// XᵀX of the normed MLP input (input of gate, up).
    pub mlp_in_cov: bool,
    /// XᵀX of the MLP activation (input of down).
    pub down_in_cov: bool,
    /// Mean normalised attention entropy per query head.
    pub head_entropy: bool,
    /// The raw input of o, `[tokens, n_heads·head_dim]` row-major (tests, diagnostics).
    pub raw_o_in: bool,
}

/// One layer's statistics; only the fields asked for in [`Needs`] are set.
pub struct LayerActivations {
    pub layer: usize,
    pub tokens: usize,
    pub attn_in_cov: Option<Mat<f64>>,
    pub o_in_cov: Option<Mat<f64>>,
    pub mlp_in_cov: Option<Mat<f64>>,
    pub down_in_cov: Option<Mat<f64>>,
    /// Per query head: mean over positions ≥ 1 of H(p)/ln(t+1), in [0, 1]
    /// (1 = uniform attention, 0 = all weight on one token).
    pub head_entropy: Option<Vec<f64>>,
    pub o_in: Option<Matrix>,
}

/// Runs the model over the calibration sequences, calling `visit` with each
/// layer's statistics in order.
pub fn forward(
    model: &Model,
    calib: &Calibration,
    needs: Needs,
    mut visit: impl FnMut(LayerActivations) -> Result<()>,
) -> Result<()> {
    let c = &model.config;
    let h = c.hidden;
    let hd = c.head_dim;
    if calib.is_empty() {
        return Err(Error::Config(
            "this transform needs calibration text: pass --calibration DATASET (or calibration sequences)"
                .into(),
        ));
    }
    for (i, s) in calib.sequences.iter().enumerate() {
        if let Some(t) = s.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(Error::Config(format!(
                "calibration sequence {i}: token id {t} is outside the model's vocabulary ({})",
                c.vocab_size
            )));
        }
    }
    let n: usize = calib.tokens();
    // Sequence start offsets into the concatenated token rows.
    let mut starts = Vec::with_capacity(calib.sequences.len());
    let mut off = 0;
    for s in &calib.sequences {
        starts.push(off);
        off += s.len();
    }
    let inv = crate::runtime::decoder::inv_freq(model);
    let positions: Vec<usize> = calib.sequences.iter().flat_map(|s| 0..s.len()).collect();

    let mut x: Vec<f32> = Vec::with_capacity(n * h);
    for s in &calib.sequences {
        for &t in s {
            x.extend_from_slice(model.embed.row(t as usize));
        }
    }

    for (li, layer) in model.layers.iter().enumerate() {
        let nh = layer.n_heads;
        let nkv = layer.n_kv_heads;
        if nkv == 0 || nh % nkv != 0 {
            return Err(Error::Config(format!(
                "layer {li}: {nh} query heads are not a multiple of {nkv} key/value heads"
            )));
        }
        let group = nh / nkv;
        let hn = rms_norm_rows(&x, h, &layer.attn_norm, c.rms_eps);
        let mut q = apply_linear(&hn, n, &layer.q);
        let mut k = apply_linear(&hn, n, &layer.k);
        let v = apply_linear(&hn, n, &layer.v);
        let (qd, kd) = (nh * hd, nkv * hd);
        q.par_chunks_mut(qd)
            .zip(k.par_chunks_mut(kd))
            .zip(positions.par_iter())
            .for_each(|((qr, kr), &pos)| {
                // Qwen3's per-head norms come before rotary.
                for (heads, w) in [(&mut *qr, &layer.q_norm), (&mut *kr, &layer.k_norm)] {
                    if let Some(w) = w {
                        for hh in heads.chunks_mut(hd) {
                            let y = rms_norm_rows(hh, hd, w, c.rms_eps);
                            hh.copy_from_slice(&y);
                        }
                    }
                }
                for hh in qr.chunks_mut(hd).chain(kr.chunks_mut(hd)) {
                    rope(hh, pos, &inv);
                }
            });

        // Attention, one sequence per task: each returns its rows of the
        // head outputs and its per-head entropy sums.
        let scale = 1.0 / (hd as f32).sqrt();
        let parts: Vec<(Vec<f32>, Vec<f64>, usize)> = calib
            .sequences
            .par_iter()
            .zip(starts.par_iter())
            .map(|(s, &st)| {
                let len = s.len();
                let mut out = vec![0.0f32; len * qd];
                let mut ent = vec![0.0f64; nh];
                let mut scores = vec![0.0f32; len];
                for t in 0..len {
                    let qrow = &q[(st + t) * qd..(st + t + 1) * qd];
                    for hh in 0..nh {
                        let g = hh / group;
                        let qh = &qrow[hh * hd..(hh + 1) * hd];
                        let mut mx = f32::NEG_INFINITY;
                        for (j, sc) in scores[..=t].iter_mut().enumerate() {
                            let kh = &k[(st + j) * kd + g * hd..(st + j) * kd + (g + 1) * hd];
                            *sc = dot(qh, kh) * scale;
                            mx = mx.max(*sc);
                        }
                        let mut z = 0.0f32;
                        for sc in scores[..=t].iter_mut() {
                            *sc = (*sc - mx).exp();
                            z += *sc;
                        }
                        let o = &mut out[t * qd + hh * hd..t * qd + (hh + 1) * hd];
                        let mut hsum = 0.0f64;
                        for (j, sc) in scores[..=t].iter().enumerate() {
                            let p = sc / z;
                            if p > 0.0 {
                                hsum -= p as f64 * (p as f64).ln();
                            }
                            let vh = &v[(st + j) * kd + g * hd..(st + j) * kd + (g + 1) * hd];
                            for (o, vv) in o.iter_mut().zip(vh) {
                                *o += p * vv;
                            }
                        }
                        if t >= 1 {
                            ent[hh] += hsum / ((t + 1) as f64).ln();
                        }
                    }
                }
                (out, ent, len.saturating_sub(1))
            })
            .collect();
        let mut a = Vec::with_capacity(n * qd);
        let mut ent = vec![0.0f64; nh];
        let mut ent_n = 0usize;
        for (rows, e, cnt) in parts {
            a.extend_from_slice(&rows);
            for (s, v) in ent.iter_mut().zip(e) {
                *s += v;
            }
            ent_n += cnt;
        }
        let o = apply_linear(&a, n, &layer.o);
        for (xv, ov) in x.iter_mut().zip(&o) {
            *xv += ov;
        }
        let h2 = rms_norm_rows(&x, h, &layer.mlp_norm, c.rms_eps);
        let g = apply_linear(&h2, n, &layer.gate);
        let u = apply_linear(&h2, n, &layer.up);
        let act: Vec<f32> = g
            .iter()
            .zip(&u)
            .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
            .collect();
        let d = apply_linear(&act, n, &layer.down);
        for (xv, dv) in x.iter_mut().zip(&d) {
            *xv += dv;
        }

        let inter = layer.gate.out_features();
        let stats = LayerActivations {
            layer: li,
            tokens: n,
            attn_in_cov: needs.attn_in_cov.then(|| gram(&hn, n, h)),
            o_in_cov: needs.o_in_cov.then(|| gram(&a, n, qd)),
            mlp_in_cov: needs.mlp_in_cov.then(|| gram(&h2, n, h)),
            down_in_cov: needs.down_in_cov.then(|| gram(&act, n, inter)),
            head_entropy: needs.head_entropy.then(|| {
                ent.iter()
                    .map(|e| if ent_n > 0 { e / ent_n as f64 } else { 1.0 })
                    .collect()
            }),
            o_in: needs.raw_o_in.then(|| Matrix::new(n, qd, a)),
        };
        visit(stats)?;
    }
    Ok(())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn rope(v: &mut [f32], pos: usize, inv_freq: &[f32]) {
    // HF rotate_half pairing (i, i + d/2), as the graph's rotary_interleaved=0.
    let half = v.len() / 2;
    for i in 0..half {
        let a = pos as f64 * inv_freq[i] as f64;
        let (c, s) = (a.cos() as f32, a.sin() as f32);
        let (x1, x2) = (v[i], v[i + half]);
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
    }
}

fn rms_norm_rows(x: &[f32], d: usize, w: &[f32], eps: f32) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .for_each(|(o, r)| {
            let ms: f32 = r.iter().map(|v| v * v).sum::<f32>() / d as f32;
            let s = 1.0 / (ms + eps).sqrt();
            for ((o, v), w) in o.iter_mut().zip(r).zip(w) {
                *o = v * s * w;
            }
        });
    out
}

fn par() -> Par {
    faer::get_global_parallelism()
}

/// `Y = X Wᵀ` for row-major `X: [n, in]`, `W: [out, in]`; row-major `[n, out]`.
pub(crate) fn matmul_xwt(x: &[f32], n: usize, w: &Matrix) -> Vec<f32> {
    let mut y = vec![0.0f32; n * w.rows];
    if n == 0 || w.rows == 0 {
        return y;
    }
    let xm = MatRef::from_row_major_slice(x, n, w.cols);
    let wm = MatRef::from_row_major_slice(&w.data, w.rows, w.cols);
    let ym = MatMut::from_row_major_slice_mut(&mut y, n, w.rows);
    faer::linalg::matmul::matmul(ym, Accum::Replace, xm, wm.transpose(), 1.0f32, par());
    y
}

/// `y = x Wᵀ + b` for every row of `x` (dense or factorised `W`).
pub(crate) fn apply_linear(x: &[f32], n: usize, l: &Linear) -> Vec<f32> {
    let mut y = match l {
        Linear::Dense { w, .. } => matmul_xwt(x, n, w),
        Linear::LowRank { u, v, .. } => matmul_xwt(&matmul_xwt(x, n, v), n, u),
    };
    if let Some(b) = l.bias() {
        y.par_chunks_mut(b.len()).for_each(|r| {
            for (y, b) in r.iter_mut().zip(b) {
                *y += b;
            }
        });
    }
    y
}

/// `XᵀX` in f64 for row-major `X: [n, d]`.
pub(crate) fn gram(x: &[f32], n: usize, d: usize) -> Mat<f64> {
    let x64 = Mat::<f64>::from_fn(n, d, |i, j| x[i * d + j] as f64);
    let mut g = Mat::<f64>::zeros(d, d);
    faer::linalg::matmul::matmul(
        g.as_mut(),
        Accum::Replace,
        x64.transpose(),
        x64.as_ref(),
        1.0f64,
        par(),
    );
    g
}

/// A weight matrix as an f64 faer matrix.
pub(crate) fn to_faer(m: &Matrix) -> Mat<f64> {
    Mat::<f64>::from_fn(m.rows, m.cols, |i, j| m.data[i * m.cols + j] as f64)
}

/// An f64 faer matrix back into a row-major f32 [`Matrix`].
pub(crate) fn from_faer(m: MatRef<'_, f64>) -> Matrix {
    let (r, c) = (m.nrows(), m.ncols());
    let mut data = Vec::with_capacity(r * c);
    for i in 0..r {
        for j in 0..c {
            data.push(m[(i, j)] as f32);
        }
    }
    Matrix::new(r, c, data)
}

impl Calibration {
    /// Tokenises texts (each truncated to `max_tokens`) into calibration sequences.
    pub fn from_texts(
        texts: &[String],
        max_tokens: usize,
        mut encode: impl FnMut(&str) -> Result<Vec<u32>>,
    ) -> Result<Self> {
        let mut seqs = Vec::with_capacity(texts.len());
        for t in texts {
            let mut ids = encode(t)?;
            ids.truncate(max_tokens.max(1));
            seqs.push(ids);
        }
        Ok(Calibration::new(seqs))
    }
}
