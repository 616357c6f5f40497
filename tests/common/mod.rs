//! Shared test helpers: tiny random-weight decoder models built in memory and an
//! independent, straightforward forward pass to check the ONNX graphs against.
#![allow(dead_code)]

use mscr::model::{Arch, Layer, Linear, Matrix, Model, ModelConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct Tiny {
    pub arch: Arch,
    pub vocab: usize,
    pub hidden: usize,
    pub inter: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub tied: bool,
}

impl Default for Tiny {
    fn default() -> Self {
        Tiny {
            arch: Arch::Llama,
            vocab: 96,
            hidden: 64,
            inter: 128,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            head_dim: 16,
            tied: true,
        }
    }
}

fn rand_matrix(rng: &mut ChaCha8Rng, rows: usize, cols: usize, scale: f32) -> Matrix {
    Matrix::new(
        rows,
        cols,
        (0..rows * cols)
            .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale)
            .collect(),
    )
}

fn rand_vec(rng: &mut ChaCha8Rng, n: usize, center: f32, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| center + (rng.random::<f32>() * 2.0 - 1.0) * scale)
        .collect()
}

pub fn tiny_model(t: &Tiny, seed: u64) -> Model {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let h = t.hidden;
    let s = 1.0 / (h as f32).sqrt();
    let bias = |rng: &mut ChaCha8Rng, n: usize| match t.arch {
        Arch::Qwen2 => Some(rand_vec(rng, n, 0.0, 0.1)),
        Arch::Llama => None,
    };
    let layers = (0..t.layers)
        .map(|_| Layer {
            n_heads: t.heads,
            n_kv_heads: t.kv_heads,
            attn_norm: rand_vec(&mut rng, h, 1.0, 0.2),
            q: Linear::Dense {
                w: rand_matrix(&mut rng, t.heads * t.head_dim, h, s),
                bias: bias(&mut rng, t.heads * t.head_dim),
            },
            k: Linear::Dense {
                w: rand_matrix(&mut rng, t.kv_heads * t.head_dim, h, s),
                bias: bias(&mut rng, t.kv_heads * t.head_dim),
            },
            v: Linear::Dense {
                w: rand_matrix(&mut rng, t.kv_heads * t.head_dim, h, s),
                bias: bias(&mut rng, t.kv_heads * t.head_dim),
            },
            o: Linear::dense(rand_matrix(&mut rng, h, t.heads * t.head_dim, s)),
            mlp_norm: rand_vec(&mut rng, h, 1.0, 0.2),
            gate: Linear::dense(rand_matrix(&mut rng, t.inter, h, s)),
            up: Linear::dense(rand_matrix(&mut rng, t.inter, h, s)),
            down: Linear::dense(rand_matrix(
                &mut rng,
                h,
                t.inter,
                1.0 / (t.inter as f32).sqrt(),
            )),
        })
        .collect();
    Model {
        config: ModelConfig {
            arch: t.arch,
            vocab_size: t.vocab,
            hidden: h,
            intermediate: t.inter,
            n_layers: t.layers,
            n_heads: t.heads,
            n_kv_heads: t.kv_heads,
            head_dim: t.head_dim,
            rope_theta: 10000.0,
            rope_scaling: None,
            rms_eps: 1e-5,
            max_position: 256,
            tie_embeddings: t.tied,
            bos_token_id: Some(1),
            eos_token_ids: vec![2],
            pad_token_id: Some(0),
        },
        embed: rand_matrix(&mut rng, t.vocab, h, 1.0),
        layers,
        final_norm: rand_vec(&mut rng, h, 1.0, 0.2),
        lm_head: if t.tied {
            None
        } else {
            Some(rand_matrix(&mut rng, t.vocab, h, s))
        },
        source_digest: format!("tiny-{seed}-{:?}-{}", t.arch, t.layers),
        transforms: Vec::new(),
    }
}

fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let ms: f32 = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(v, w)| v * r * w).collect()
}

fn rope(v: &mut [f32], pos: usize, inv_freq: &[f32]) {
    // HF rotate_half: pairs (i, i + d/2).
    let half = v.len() / 2;
    for i in 0..half {
        let a = pos as f64 * inv_freq[i] as f64;
        let (c, s) = (a.cos() as f32, a.sin() as f32);
        let (x1, x2) = (v[i], v[i + half]);
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
    }
}

/// Logits at every position of `tokens`, by the textbook forward pass.
pub fn reference_logits(m: &Model, tokens: &[u32]) -> Vec<Vec<f32>> {
    let c = &m.config;
    let hd = c.head_dim;
    let inv: Vec<f32> = (0..hd / 2)
        .map(|i| 1.0 / c.rope_theta.powf(2.0 * i as f32 / hd as f32))
        .collect();
    let mut xs: Vec<Vec<f32>> = tokens
        .iter()
        .map(|t| m.embed.row(*t as usize).to_vec())
        .collect();
    for l in &m.layers {
        let group = l.n_heads / l.n_kv_heads;
        let mut qs = Vec::new();
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        for (pos, x) in xs.iter().enumerate() {
            let h = rms_norm(x, &l.attn_norm, c.rms_eps);
            let mut q = l.q.apply(&h);
            let mut k = l.k.apply(&h);
            let v = l.v.apply(&h);
            for hh in 0..l.n_heads {
                rope(&mut q[hh * hd..(hh + 1) * hd], pos, &inv);
            }
            for hh in 0..l.n_kv_heads {
                rope(&mut k[hh * hd..(hh + 1) * hd], pos, &inv);
            }
            qs.push(q);
            ks.push(k);
            vs.push(v);
        }
        for pos in 0..xs.len() {
            let mut attn = vec![0.0f32; l.n_heads * hd];
            for hh in 0..l.n_heads {
                let kvh = hh / group;
                let q = &qs[pos][hh * hd..(hh + 1) * hd];
                let scores: Vec<f32> = (0..=pos)
                    .map(|j| {
                        let k = &ks[j][kvh * hd..(kvh + 1) * hd];
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() / (hd as f32).sqrt()
                    })
                    .collect();
                let mx = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - mx).exp()).collect();
                let z: f32 = e.iter().sum();
                for (j, w) in e.iter().enumerate() {
                    let v = &vs[j][kvh * hd..(kvh + 1) * hd];
                    for d in 0..hd {
                        attn[hh * hd + d] += w / z * v[d];
                    }
                }
            }
            let o = l.o.apply(&attn);
            for (x, o) in xs[pos].iter_mut().zip(o) {
                *x += o;
            }
            let h = rms_norm(&xs[pos], &l.mlp_norm, c.rms_eps);
            let g = l.gate.apply(&h);
            let u = l.up.apply(&h);
            let a: Vec<f32> = g
                .iter()
                .zip(&u)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let d = l.down.apply(&a);
            for (x, d) in xs[pos].iter_mut().zip(d) {
                *x += d;
            }
        }
    }
    let head = m.lm_head();
    xs.iter()
        .map(|x| {
            let h = rms_norm(x, &m.final_norm, c.rms_eps);
            (0..head.rows)
                .map(|r| head.row(r).iter().zip(&h).map(|(a, b)| a * b).sum())
                .collect()
        })
        .collect()
}

/// Replaces every weight by its 4-bit round trip, so a float reference sees what
/// the int4 graph computes with.
pub fn quantized_copy(m: &Model) -> Model {
    use mscr::runtime::quant::quantize;
    let q = |w: &Matrix| {
        Matrix::new(
            w.rows,
            w.cols,
            quantize(&w.data, w.rows, w.cols).dequantize(),
        )
    };
    let ql = |l: &Linear| match l {
        Linear::Dense { w, bias } => Linear::Dense {
            w: q(w),
            bias: bias.clone(),
        },
        Linear::LowRank { u, v, bias } => Linear::LowRank {
            u: q(u),
            v: q(v),
            bias: bias.clone(),
        },
    };
    let mut out = m.clone();
    out.embed = q(&m.embed);
    out.lm_head = m.lm_head.as_ref().map(q);
    for l in &mut out.layers {
        for p in [
            &mut l.q,
            &mut l.k,
            &mut l.v,
            &mut l.o,
            &mut l.gate,
            &mut l.up,
            &mut l.down,
        ] {
            *p = ql(p);
        }
    }
    out
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The textbook forward pass with chosen query heads' outputs zeroed
/// (`masked[layer]` lists head indices), also returning every layer's
/// attention-head outputs (the input of o) per position. Used to check head
/// pruning against masking and the calibration statistics.
pub fn reference_masked(
    m: &Model,
    tokens: &[u32],
    masked: &[Vec<usize>],
) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
    let c = &m.config;
    let hd = c.head_dim;
    let inv: Vec<f32> = (0..hd / 2)
        .map(|i| 1.0 / c.rope_theta.powf(2.0 * i as f32 / hd as f32))
        .collect();
    let mut xs: Vec<Vec<f32>> = tokens
        .iter()
        .map(|t| m.embed.row(*t as usize).to_vec())
        .collect();
    let mut o_inputs = Vec::new();
    for (li, l) in m.layers.iter().enumerate() {
        let group = l.n_heads / l.n_kv_heads;
        let (mut qs, mut ks, mut vs) = (Vec::new(), Vec::new(), Vec::new());
        for (pos, x) in xs.iter().enumerate() {
            let h = rms_norm(x, &l.attn_norm, c.rms_eps);
            let mut q = l.q.apply(&h);
            let mut k = l.k.apply(&h);
            let v = l.v.apply(&h);
            for hh in 0..l.n_heads {
                rope(&mut q[hh * hd..(hh + 1) * hd], pos, &inv);
            }
            for hh in 0..l.n_kv_heads {
                rope(&mut k[hh * hd..(hh + 1) * hd], pos, &inv);
            }
            qs.push(q);
            ks.push(k);
            vs.push(v);
        }
        let mut layer_in = Vec::new();
        // Attention for every position first (causal: later x updates don't feed it).
        let mut attns = Vec::new();
        for (pos, q_pos) in qs.iter().enumerate() {
            let mut attn = vec![0.0f32; l.n_heads * hd];
            for hh in 0..l.n_heads {
                if masked.get(li).is_some_and(|m| m.contains(&hh)) {
                    continue;
                }
                let kvh = hh / group;
                let q = &q_pos[hh * hd..(hh + 1) * hd];
                let scores: Vec<f32> = (0..=pos)
                    .map(|j| {
                        let k = &ks[j][kvh * hd..(kvh + 1) * hd];
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() / (hd as f32).sqrt()
                    })
                    .collect();
                let mx = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - mx).exp()).collect();
                let z: f32 = e.iter().sum();
                for (j, w) in e.iter().enumerate() {
                    let v = &vs[j][kvh * hd..(kvh + 1) * hd];
                    for (a, vv) in attn[hh * hd..(hh + 1) * hd].iter_mut().zip(v) {
                        *a += w / z * vv;
                    }
                }
            }
            attns.push(attn);
        }
        for (pos, attn) in attns.into_iter().enumerate() {
            let o = l.o.apply(&attn);
            layer_in.push(attn);
            for (x, o) in xs[pos].iter_mut().zip(o) {
                *x += o;
            }
            let h = rms_norm(&xs[pos], &l.mlp_norm, c.rms_eps);
            let g = l.gate.apply(&h);
            let u = l.up.apply(&h);
            let a: Vec<f32> = g
                .iter()
                .zip(&u)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let d = l.down.apply(&a);
            for (x, d) in xs[pos].iter_mut().zip(d) {
                *x += d;
            }
        }
        o_inputs.push(layer_in);
    }
    let head = m.lm_head();
    let logits = xs
        .iter()
        .map(|x| {
            let h = rms_norm(x, &m.final_norm, c.rms_eps);
            (0..head.rows)
                .map(|r| head.row(r).iter().zip(&h).map(|(a, b)| a * b).sum())
                .collect()
        })
        .collect();
    (logits, o_inputs)
}

/// Log-probs of each next token from `start` on, given logits per position.
pub fn logprobs_from_logits(logits: &[Vec<f32>], tokens: &[u32], start: usize) -> Vec<f32> {
    (start..tokens.len())
        .map(|p| {
            let row = &logits[p - 1];
            let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let lse = mx + row.iter().map(|v| (v - mx).exp()).sum::<f32>().ln();
            row[tokens[p] as usize] - lse
        })
        .collect()
}
