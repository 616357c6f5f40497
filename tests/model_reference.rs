//! End-to-end evidence for the GGUF import: a plain f32 forward pass (HF
//! rotate_half rope, written here independently of the runtime) over the
//! imported SmolLM2 weights greedy-completes "The capital of France is" with
//! " Paris". A wrong Q/K un-permutation or tokenizer breaks this.

use mscr::model::spec::load_gguf;
use mscr::model::{Linear, Model};

fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(a, b)| a * r * b).collect()
}

fn rope(x: &mut [f32], pos: usize, head_dim: usize, theta: f32) {
    let half = head_dim / 2;
    for h in x.chunks_exact_mut(head_dim) {
        for i in 0..half {
            let freq = 1.0 / theta.powf(2.0 * i as f32 / head_dim as f32);
            let (s, c) = (pos as f32 * freq).sin_cos();
            let (a, b) = (h[i], h[i + half]);
            h[i] = a * c - b * s;
            h[i + half] = b * c + a * s;
        }
    }
}

fn apply(l: &Linear, x: &[f32]) -> Vec<f32> {
    l.apply(x)
}

/// Logits of the last token after running `ids` through the model.
fn forward(m: &Model, ids: &[u32]) -> Vec<f32> {
    forward_all(m, ids).pop().unwrap()
}

fn logits(m: &Model, x: &[f32]) -> Vec<f32> {
    let h = rms_norm(x, &m.final_norm, m.config.rms_eps);
    let head = m.lm_head();
    (0..head.rows)
        .map(|r| head.row(r).iter().zip(&h).map(|(a, b)| a * b).sum())
        .collect()
}

/// Logits at every position.
fn forward_all(m: &Model, ids: &[u32]) -> Vec<Vec<f32>> {
    let mut all = Vec::new();
    let c = &m.config;
    let hd = c.head_dim;
    let mut kcache: Vec<Vec<Vec<f32>>> = vec![Vec::new(); c.n_layers];
    let mut vcache: Vec<Vec<Vec<f32>>> = vec![Vec::new(); c.n_layers];
    for (pos, &id) in ids.iter().enumerate() {
        let mut x = m.embed.row(id as usize).to_vec();
        for (li, l) in m.layers.iter().enumerate() {
            let h = rms_norm(&x, &l.attn_norm, c.rms_eps);
            let mut q = apply(&l.q, &h);
            let mut k = apply(&l.k, &h);
            let v = apply(&l.v, &h);
            rope(&mut q, pos, hd, c.rope_theta);
            rope(&mut k, pos, hd, c.rope_theta);
            kcache[li].push(k);
            vcache[li].push(v);
            let group = l.n_heads / l.n_kv_heads;
            let mut att = vec![0f32; l.n_heads * hd];
            for head in 0..l.n_heads {
                let kvh = head / group;
                let qh = &q[head * hd..(head + 1) * hd];
                let scores: Vec<f32> = kcache[li]
                    .iter()
                    .map(|k| {
                        qh.iter()
                            .zip(&k[kvh * hd..(kvh + 1) * hd])
                            .map(|(a, b)| a * b)
                            .sum::<f32>()
                            / (hd as f32).sqrt()
                    })
                    .collect();
                let mx = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - mx).exp()).collect();
                let z: f32 = e.iter().sum();
                for (t, w) in e.iter().enumerate() {
                    let vv = &vcache[li][t][kvh * hd..(kvh + 1) * hd];
                    for d in 0..hd {
                        att[head * hd + d] += w / z * vv[d];
                    }
                }
            }
            let o = apply(&l.o, &att);
            for (a, b) in x.iter_mut().zip(&o) {
                *a += b;
            }
            let h = rms_norm(&x, &l.mlp_norm, c.rms_eps);
            let g = apply(&l.gate, &h);
            let u = apply(&l.up, &h);
            let act: Vec<f32> = g
                .iter()
                .zip(&u)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let d = apply(&l.down, &act);
            for (a, b) in x.iter_mut().zip(&d) {
                *a += b;
            }
        }
        all.push(logits(m, &x));
    }
    all
}

#[test]
fn smollm2_reference_forward_says_paris() {
    let path = mscr::paths::models_dir()
        .join("smollm2-135m-instruct")
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if !path.exists() {
        eprintln!("skipping: {} missing (run `mscr setup`)", path.display());
        return;
    }
    let (model, tok, _) = load_gguf(&path).unwrap();
    let mut ids = tok.encode("The capital of France is", true).unwrap();
    let mut out = Vec::new();
    for _ in 0..2 {
        let logits = forward(&model, &ids);
        let best = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as u32)
            .unwrap();
        ids.push(best);
        out.push(best);
    }
    let text = tok.decode(&out, true).unwrap();
    assert!(text.starts_with(" Paris"), "completion {text:?}");
}

/// Mean next-token negative log-likelihood of `text` (teacher forced).
fn mean_nll(m: &Model, ids: &[u32]) -> f32 {
    let mut total = 0.0;
    let all = forward_all(m, ids);
    for t in 1..ids.len() {
        let logits = &all[t - 1];
        let mx = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let lse = mx + logits.iter().map(|l| (l - mx).exp()).sum::<f32>().ln();
        total += lse - logits[ids[t] as usize];
    }
    total / (ids.len() - 1) as f32
}

/// The un-permutation matters: with llama.cpp's interleaved Q/K rows left in
/// place, the same forward pass predicts ordinary text clearly worse.
#[test]
fn smollm2_unpermuted_rows_predict_text_better() {
    use mscr::model::gguf::permute_rows;
    let path = mscr::paths::models_dir()
        .join("smollm2-135m-instruct")
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if !path.exists() {
        return;
    }
    let (mut model, tok, _) = load_gguf(&path).unwrap();
    let text = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?";
    let ids = tok.encode(text, false).unwrap();
    let good = mean_nll(&model, &ids);
    for l in &mut model.layers {
        let (q, k) = (l.q.to_dense(), l.k.to_dense());
        l.q = Linear::dense(permute_rows(&q, l.n_heads));
        l.k = Linear::dense(permute_rows(&k, l.n_kv_heads));
    }
    let bad = mean_nll(&model, &ids);
    eprintln!("mean NLL: un-permuted {good:.3}, llama.cpp row order {bad:.3}");
    assert!(good + 0.5 < bad, "un-permuted {good} vs permuted {bad}");
}
