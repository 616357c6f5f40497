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
        Arch::Llama | Arch::Qwen3 => None,
    };
    let qwen3 = t.arch == Arch::Qwen3;
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
            q_norm: qwen3.then(|| rand_vec(&mut rng, t.head_dim, 1.0, 0.3)),
            k_norm: qwen3.then(|| rand_vec(&mut rng, t.head_dim, 1.0, 0.3)),
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
        adapters: Default::default(),
    }
}

fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let ms: f32 = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(v, w)| v * r * w).collect()
}

/// Qwen3: RMS-normalises every `hd`-sized head of `x` in place with `w`.
fn head_norms(x: &mut [f32], w: Option<&[f32]>, hd: usize, eps: f32) {
    if let Some(w) = w {
        for head in x.chunks_exact_mut(hd) {
            let y = rms_norm(head, w, eps);
            head.copy_from_slice(&y);
        }
    }
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
            head_norms(&mut q, l.q_norm.as_deref(), hd, c.rms_eps);
            head_norms(&mut k, l.k_norm.as_deref(), hd, c.rms_eps);
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

/// Replaces every weight by its round trip through the graph's block formats
/// (projections at `bits`, embedding and lm_head at 8 bits), so a float
/// reference sees what the quantised graph computes with.
pub fn quantized_copy(m: &Model, bits: u32) -> Model {
    use mscr::runtime::quant::{quantize, quantize8};
    let q8 = |w: &Matrix| {
        Matrix::new(
            w.rows,
            w.cols,
            quantize8(&w.data, w.rows, w.cols).dequantize(),
        )
    };
    let q = |w: &Matrix| {
        if bits == 8 {
            q8(w)
        } else {
            Matrix::new(
                w.rows,
                w.cols,
                quantize(&w.data, w.rows, w.cols).dequantize(),
            )
        }
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
    out.embed = q8(&m.embed);
    out.lm_head = m.lm_head.as_ref().map(q8);
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
            head_norms(&mut q, l.q_norm.as_deref(), hd, c.rms_eps);
            head_norms(&mut k, l.k_norm.as_deref(), hd, c.rms_eps);
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

/// Writes `m` as a decoder in Hugging Face Optimum's interface, in standard ONNX
/// ops only (opset 17): the shape of graph `optimum-cli export onnx` produces.
/// Needs `n_heads == n_kv_heads` (no grouped-query repeat in this test graph).
pub fn write_optimum_style(m: &Model, path: &std::path::Path) {
    use mscr::runtime::onnx::{Attr, DType, Dim, GraphBuilder};
    let c = &m.config;
    let (h, hd, nh) = (c.hidden, c.head_dim, c.n_heads);
    assert_eq!(c.n_heads, c.n_kv_heads);
    let mut g = GraphBuilder::new("optimum-style");
    g.input("input_ids", DType::I64, &["batch".into(), "seq".into()]);
    g.input(
        "attention_mask",
        DType::I64,
        &["batch".into(), "total".into()],
    );
    g.input("position_ids", DType::I64, &["batch".into(), "seq".into()]);
    g.output(
        "logits",
        DType::F32,
        &[
            "batch".into(),
            "seq".into(),
            Dim::Fixed(c.vocab_size as i64),
        ],
    );
    let tr = |g: &mut GraphBuilder, name: &str, w: &Matrix| {
        let t = w.transpose();
        g.init_f32(name, &[t.rows as i64, t.cols as i64], &t.data)
    };
    let emb = g.init_f32("emb", &[c.vocab_size as i64, h as i64], &m.embed.data);
    let mut x = g.op("Gather", &[&emb, "input_ids"], &[("axis", Attr::Int(0))]);
    // Rotary tables gathered by position.
    let inv: Vec<f32> = (0..hd / 2)
        .map(|i| 1.0 / c.rope_theta.powf(2.0 * i as f32 / hd as f32))
        .collect();
    let maxp = c.max_position;
    let mut cos = Vec::new();
    let mut sin = Vec::new();
    for p in 0..maxp {
        for f in inv.iter().chain(inv.iter()) {
            cos.push((p as f32 * f).cos());
            sin.push((p as f32 * f).sin());
        }
    }
    let cos_t = g.init_f32("cos", &[maxp as i64, hd as i64], &cos);
    let sin_t = g.init_f32("sin", &[maxp as i64, hd as i64], &sin);
    let cos_g = g.op(
        "Gather",
        &[&cos_t, "position_ids"],
        &[("axis", Attr::Int(0))],
    );
    let sin_g = g.op(
        "Gather",
        &[&sin_t, "position_ids"],
        &[("axis", Attr::Int(0))],
    );
    let ax1 = g.const_i64(&[1]);
    let cos_u = g.op("Unsqueeze", &[&cos_g, &ax1], &[]);
    let sin_u = g.op("Unsqueeze", &[&sin_g, &ax1], &[]);
    // Mask [B,1,S,T]: key j visible to query i when j <= (T - S) + i and attention_mask[j] = 1.
    let shape_ids = g.op("Shape", &["input_ids"], &[]);
    let shape_mask = g.op("Shape", &["attention_mask"], &[]);
    let one_idx = g.init_i64("one_idx", &[], &[1]);
    let s_len = g.op("Gather", &[&shape_ids, &one_idx], &[("axis", Attr::Int(0))]);
    let t_len = g.op(
        "Gather",
        &[&shape_mask, &one_idx],
        &[("axis", Attr::Int(0))],
    );
    let zero = g.init_i64("zero", &[], &[0]);
    let one = g.init_i64("one", &[], &[1]);
    let j_idx = g.op("Range", &[&zero, &t_len, &one], &[]);
    let off = g.op("Sub", &[&t_len, &s_len], &[]);
    let i_rng = g.op("Range", &[&zero, &s_len, &one], &[]);
    let i_idx = g.op("Add", &[&i_rng, &off], &[]);
    let ax0 = g.const_i64(&[0]);
    let j_row = g.op("Unsqueeze", &[&j_idx, &ax0], &[]);
    let i_col = g.op("Unsqueeze", &[&i_idx, &ax1], &[]);
    let causal = g.op("LessOrEqual", &[&j_row, &i_col], &[]);
    let am_b = g.op("Cast", &["attention_mask"], &[("to", Attr::Int(9))]);
    let ax12 = g.const_i64(&[1, 2]);
    let am_u = g.op("Unsqueeze", &[&am_b, &ax12], &[]);
    let allowed = g.op("And", &[&causal, &am_u], &[]);
    let neg = g.init_f32("neg", &[], &[-1e9]);
    let eps = g.init_f32("eps", &[], &[c.rms_eps]);
    let two = g.init_f32("two", &[], &[2.0]);
    let scale = g.init_f32("scale", &[], &[1.0 / (hd as f32).sqrt()]);
    let rms = |g: &mut GraphBuilder, x: &str, w: &[f32], name: &str| {
        let wn = g.init_f32(name, &[h as i64], w);
        let sq = g.op("Pow", &[x, &two], &[]);
        let mean = g.op(
            "ReduceMean",
            &[&sq],
            &[("axes", Attr::Ints(vec![-1])), ("keepdims", Attr::Int(1))],
        );
        let add = g.op("Add", &[&mean, &eps], &[]);
        let sd = g.op("Sqrt", &[&add], &[]);
        let d = g.op("Div", &[x, &sd], &[]);
        g.op("Mul", &[&d, &wn], &[])
    };
    let heads_shape = g.const_i64(&[0, 0, nh as i64, hd as i64]);
    let half = (hd / 2) as i64;
    let (s0, s1, s2, axl) = (
        g.const_i64(&[0]),
        g.const_i64(&[half]),
        g.const_i64(&[hd as i64]),
        g.const_i64(&[3]),
    );
    let rot = |g: &mut GraphBuilder, t: &str| {
        let a = g.op("Slice", &[t, &s0, &s1, &axl], &[]);
        let b = g.op("Slice", &[t, &s1, &s2, &axl], &[]);
        let nb = g.op("Neg", &[&b], &[]);
        let r = g.op("Concat", &[&nb, &a], &[("axis", Attr::Int(3))]);
        let tc = g.op("Mul", &[t, &cos_u], &[]);
        let rs = g.op("Mul", &[&r, &sin_u], &[]);
        g.op("Add", &[&tc, &rs], &[])
    };
    let flat_shape = g.const_i64(&[0, 0, -1]);
    for (i, l) in m.layers.iter().enumerate() {
        let kv: Vec<Dim> = vec![
            "batch".into(),
            Dim::Fixed(nh as i64),
            "past".into(),
            Dim::Fixed(hd as i64),
        ];
        let kvo: Vec<Dim> = vec![
            "batch".into(),
            Dim::Fixed(nh as i64),
            "total".into(),
            Dim::Fixed(hd as i64),
        ];
        let pk = format!("past_key_values.{i}.key");
        let pv = format!("past_key_values.{i}.value");
        g.input(&pk, DType::F32, &kv);
        g.input(&pv, DType::F32, &kv);
        let hn = rms(&mut g, &x, &l.attn_norm, &format!("an{i}"));
        let proj = |g: &mut GraphBuilder, lin: &Linear, name: &str| {
            let w = tr(g, name, &lin.to_dense());
            let y = g.op("MatMul", &[&hn, &w], &[]);
            match lin.bias() {
                Some(b) => {
                    let bn = g.init_f32(&format!("{name}.b"), &[b.len() as i64], b);
                    g.op("Add", &[&y, &bn], &[])
                }
                None => y,
            }
        };
        let q = proj(&mut g, &l.q, &format!("q{i}"));
        let k = proj(&mut g, &l.k, &format!("k{i}"));
        let v = proj(&mut g, &l.v, &format!("v{i}"));
        let to_heads = |g: &mut GraphBuilder, t: &str| {
            let r = g.op("Reshape", &[t, &heads_shape], &[]);
            g.op(
                "Transpose",
                &[&r],
                &[("perm", Attr::Ints(vec![0, 2, 1, 3]))],
            )
        };
        let qh = to_heads(&mut g, &q);
        let kh = to_heads(&mut g, &k);
        let vh = to_heads(&mut g, &v);
        let qr = rot(&mut g, &qh);
        let kr = rot(&mut g, &kh);
        let pres_k = format!("present.{i}.key");
        let pres_v = format!("present.{i}.value");
        g.node(
            "Concat",
            "",
            &[&pk, &kr],
            &[&pres_k],
            &[("axis", Attr::Int(2))],
        );
        g.node(
            "Concat",
            "",
            &[&pv, &vh],
            &[&pres_v],
            &[("axis", Attr::Int(2))],
        );
        g.output(&pres_k, DType::F32, &kvo);
        g.output(&pres_v, DType::F32, &kvo);
        let kt = g.op(
            "Transpose",
            &[&pres_k],
            &[("perm", Attr::Ints(vec![0, 1, 3, 2]))],
        );
        let sc = g.op("MatMul", &[&qr, &kt], &[]);
        let scs = g.op("Mul", &[&sc, &scale], &[]);
        let masked = g.op("Where", &[&allowed, &scs, &neg], &[]);
        let p = g.op("Softmax", &[&masked], &[("axis", Attr::Int(-1))]);
        let a = g.op("MatMul", &[&p, &pres_v], &[]);
        let at = g.op(
            "Transpose",
            &[&a],
            &[("perm", Attr::Ints(vec![0, 2, 1, 3]))],
        );
        let af = g.op("Reshape", &[&at, &flat_shape], &[]);
        let wo = tr(&mut g, &format!("o{i}"), &l.o.to_dense());
        let o = g.op("MatMul", &[&af, &wo], &[]);
        let x2 = g.op("Add", &[&x, &o], &[]);
        let h2 = rms(&mut g, &x2, &l.mlp_norm, &format!("mn{i}"));
        let wg = tr(&mut g, &format!("g{i}"), &l.gate.to_dense());
        let wu = tr(&mut g, &format!("u{i}"), &l.up.to_dense());
        let wd = tr(&mut g, &format!("d{i}"), &l.down.to_dense());
        let gt = g.op("MatMul", &[&h2, &wg], &[]);
        let up = g.op("MatMul", &[&h2, &wu], &[]);
        let sg = g.op("Sigmoid", &[&gt], &[]);
        let si = g.op("Mul", &[&gt, &sg], &[]);
        let ac = g.op("Mul", &[&si, &up], &[]);
        let dn = g.op("MatMul", &[&ac, &wd], &[]);
        x = g.op("Add", &[&x2, &dn], &[]);
    }
    let hf = rms(&mut g, &x, &m.final_norm, "fnorm");
    let wl = tr(&mut g, "lm_head", m.lm_head());
    g.node("MatMul", "", &[&hf, &wl], &["logits"], &[]);
    g.save(path, &[("", 17)]).unwrap();
}

/// Builds `m`'s decoder graph in `format` (256 positions) in a temporary folder
/// and opens it with `options`; the folder goes once ORT has read the files.
pub fn open_graph(
    m: &Model,
    format: mscr::runtime::decoder::WeightFormat,
    options: &mscr::runtime::session::SessionOptions,
) -> mscr::Result<mscr::runtime::session::DecoderSession> {
    use mscr::runtime::decoder::{self, BuildOptions};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    let info = decoder::build(
        m,
        &BuildOptions {
            format,
            max_positions: 256,
        },
        &path,
    )?;
    mscr::runtime::session::DecoderSession::open(dir.path(), info, options)
}
