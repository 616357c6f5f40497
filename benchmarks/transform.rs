//! Compression transforms on the default model (SmolLM2-135M-Instruct): for the
//! untransformed model, 30% head pruning (with and without the closed-form
//! least-squares refit) and low-rank settings — parameters, FLOPs/token,
//! transform time, measured decode tokens/s (default int8 graph, ORT CPU, batch 1) and a
//! quick accuracy proxy: the mean per-token log-prob of GSM8K gold solutions.
//!
//! `cargo bench --bench transform -- [--gguf PATH] [--threads N] [--calib N] [--score N]
//!  [--variants base,prune30,...]`
//! Calibration: the first N GSM8K *train* questions; proxy: the first N GSM8K *test* items.

use mscr::model::Model;
use mscr::runtime::decoder::{self, BuildOptions};
use mscr::runtime::session::{DecoderSession, Sampling, SessionOptions};
use mscr::transform::{Calibration, TransformSpec, apply_chain};
use std::path::PathBuf;
use std::time::Instant;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn jsonl(path: &PathBuf, n: usize) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .take(n)
        .map(|l| serde_json::from_str(l).expect("valid JSONL"))
        .collect()
}

const VARIANTS: [(&str, &[&str]); 7] = [
    ("base", &[]),
    ("prune30-ls", &["prune-heads:ratio=0.3"]),
    ("prune30-none", &["prune-heads:ratio=0.3,distill=none"]),
    (
        "lowrank-svd",
        &["low-rank:method=svd,size=0.6,targets=o+down"],
    ),
    (
        "lowrank-activation",
        &["low-rank:method=activation,size=0.6,targets=o+down"],
    ),
    (
        "lowrank-impact",
        &["low-rank:method=impact,size=0.6,targets=o+down"],
    ),
    (
        "prune30-ls+lowrank-act",
        &[
            "prune-heads:ratio=0.3",
            "low-rank:method=activation,size=0.6,targets=o+down",
        ],
    ),
];

fn main() {
    let home = mscr::paths::models_dir();
    let gguf = PathBuf::from(arg(
        "--gguf",
        &home
            .join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
            .to_string_lossy(),
    ));
    let threads: usize = arg("--threads", "2").parse().expect("--threads N");
    let n_calib: usize = arg("--calib", "32").parse().expect("--calib N");
    let n_score: usize = arg("--score", "40").parse().expect("--score N");
    let tokens: usize = arg("--tokens", "64").parse().expect("--tokens N");
    let only = arg("--variants", "");
    let data = mscr::paths::shared_data_dir().expect("../shared/data with gsm8k_*.jsonl");

    let t0 = Instant::now();
    let (model, tok, _chat) = mscr::model::spec::load_gguf(&gguf).expect("load GGUF");
    eprintln!(
        "loaded {} in {:.1}s",
        gguf.display(),
        t0.elapsed().as_secs_f64()
    );
    let enc = |t: &str, special: bool| tok.encode(t, special).expect("tokenize");

    let calib = Calibration::new(
        jsonl(&data.join("gsm8k_train.jsonl"), n_calib)
            .iter()
            .map(|v| {
                let mut ids = enc(v["question"].as_str().unwrap_or(""), true);
                ids.truncate(128);
                ids
            })
            .collect(),
    );
    let scored: Vec<(Vec<u32>, usize)> = jsonl(&data.join("gsm8k_test.jsonl"), n_score)
        .iter()
        .map(|v| {
            let mut ids = enc(
                &format!(
                    "Question: {}\nAnswer: ",
                    v["question"].as_str().unwrap_or("")
                ),
                true,
            );
            let start = ids.len();
            ids.extend(enc(v["answer"].as_str().unwrap_or(""), false));
            (ids, start)
        })
        .collect();
    let prompt = enc(
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
        true,
    );
    eprintln!(
        "calibration: {} sequences, {} tokens",
        calib.sequences.len(),
        calib.tokens()
    );

    println!(
        "| variant | params | FLOPs/token | transform s | decode tok/s (b1) | mean log-prob/token (GSM8K gold) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut base_tps = None;
    let mut base_lp = None;
    for (name, chain) in VARIANTS {
        if !only.is_empty() && !only.split(',').any(|v| v == name) {
            continue;
        }
        let specs: Vec<TransformSpec> = chain
            .iter()
            .map(|s| TransformSpec::parse(s).expect("spec"))
            .collect();
        let t = Instant::now();
        let (m, recs) = apply_chain(&model, &specs, &calib).expect("transform");
        let t_transform = t.elapsed().as_secs_f64();
        for r in &recs {
            let errs: Vec<String> = r
                .layers
                .iter()
                .filter_map(|l| {
                    l.block_error_refit
                        .map(|e| format!("{:.3}->{e:.3}", l.block_error_pruned.unwrap_or(0.0)))
                })
                .take(4)
                .collect();
            let act: Vec<f64> = r
                .layers
                .iter()
                .flat_map(|l| l.projections.iter().filter_map(|p| p.activation_error))
                .collect();
            let mean_act = if act.is_empty() {
                f64::NAN
            } else {
                act.iter().sum::<f64>() / act.len() as f64
            };
            let heads: usize = r.layers.iter().map(|l| l.heads_after).sum();
            eprintln!(
                "  {name}/{}: heads after {heads}, block err (first layers) {errs:?}, mean activation err {mean_act:.4}",
                r.kind
            );
        }
        let (tps, lp) = measure(&m, threads, &prompt, tokens, &scored);
        let (bt, bl) = (*base_tps.get_or_insert(tps), *base_lp.get_or_insert(lp));
        println!(
            "| {name} | {} ({:+.1}%) | {} ({:+.1}%) | {t_transform:.1} | {tps:.1} ({:+.1}%) | {lp:.4} ({:+.4}) |",
            m.params(),
            pct(m.params() as f64, model.params() as f64),
            m.flops_per_token(),
            pct(m.flops_per_token() as f64, model.flops_per_token() as f64),
            pct(tps, bt),
            lp - bl,
        );
    }
}

fn pct(x: f64, base: f64) -> f64 {
    100.0 * (x / base - 1.0)
}

/// Decode tokens/s at batch 1 (prefill subtracted) and the mean per-token
/// log-prob of the scored continuations, on the default graph built in a temp dir.
fn measure(
    m: &Model,
    threads: usize,
    prompt: &[u32],
    tokens: usize,
    scored: &[(Vec<u32>, usize)],
) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let info = decoder::build(
        m,
        &BuildOptions {
            max_positions: 1024,
            ..Default::default()
        },
        &dir.path().join("model.onnx"),
    )
    .expect("build graph");
    let s = DecoderSession::open(
        dir.path(),
        info,
        &SessionOptions {
            threads,
            ..Default::default()
        },
    )
    .expect("open session");
    let sampling = |n| Sampling {
        max_new_tokens: n,
        temperature: 0.0,
        top_p: 1.0,
        seed: 0,
        ignore_eos: true,
    };
    let p = vec![prompt.to_vec()];
    s.generate(&p, &sampling(4), &mut |_, _| false)
        .expect("warm-up");
    let mut best = 0.0f64;
    for _ in 0..3 {
        let t0 = Instant::now();
        s.generate(&p, &sampling(1), &mut |_, _| false)
            .expect("prefill");
        let prefill = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        s.generate(&p, &sampling(tokens + 1), &mut |_, _| false)
            .expect("decode");
        best = best.max(tokens as f64 / (t1.elapsed().as_secs_f64() - prefill));
    }
    let mut sum = 0.0f64;
    let mut n = 0usize;
    for chunk in scored.chunks(8) {
        for lp in s.score(chunk).expect("score") {
            sum += lp.iter().map(|v| *v as f64).sum::<f64>();
            n += lp.len();
        }
    }
    (best, sum / n.max(1) as f64)
}
