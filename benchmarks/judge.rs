//! Answer-checker speed on one core: judgements per second for GSM8K-style
//! outputs and MATH500 LaTeX answers, built from the real test files.
//!
//! Run: `MSCR_SHARED_DATA=/path/to/shared/data cargo bench --bench judge`
//! (defaults to `../shared/data`). Record results in benchmarks/RESULTS.md.

use mscr::score::{self, AnswerStyle};
use std::hint::black_box;
use std::time::Instant;

fn lines(name: &str) -> Vec<serde_json::Value> {
    let dir =
        mscr::paths::shared_data_dir().expect("set MSCR_SHARED_DATA to the shared data folder");
    let text = std::fs::read_to_string(dir.join(name)).expect("read data file");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON"))
        .collect()
}

/// Runs `check` over `pairs` repeatedly for at least `secs`; returns judgements/s.
fn measure(pairs: &[(String, String)], style: AnswerStyle, secs: f64) -> (f64, usize) {
    let mut n = 0usize;
    let mut equal = 0usize;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        for (pred, gold) in pairs {
            equal += usize::from(
                black_box(score::check(black_box(pred), black_box(gold), style)).equivalent,
            );
            n += 1;
        }
    }
    (n as f64 / start.elapsed().as_secs_f64(), equal)
}

fn main() {
    // One core: the checker is single-threaded; nothing here spawns threads.
    let gsm = lines("gsm8k_test.jsonl");
    let mut gsm_pairs = Vec::new();
    for (k, v) in gsm.iter().enumerate() {
        let sol = v["answer"].as_str().unwrap_or_default();
        let gold = sol
            .rsplit("####")
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        // A full chain-of-thought output in the model's style, right and wrong.
        let body = sol
            .split("####")
            .next()
            .unwrap_or_default()
            .replace("<<", "")
            .replace(">>", " ");
        gsm_pairs.push((format!("{body}\nThe answer is {gold}."), gold.clone()));
        let other = gsm[(k + 1) % gsm.len()]["answer"]
            .as_str()
            .unwrap_or_default();
        let wrong = other.rsplit("####").next().unwrap_or_default().trim();
        gsm_pairs.push((format!("{body}\nSo she has {wrong} left."), gold));
    }
    let math = lines("math500_test.jsonl");
    let golds: Vec<String> = math
        .iter()
        .map(|v| v["answer"].as_str().unwrap_or_default().to_string())
        .collect();
    let mut math_pairs = Vec::new();
    for (k, g) in golds.iter().enumerate() {
        math_pairs.push((
            format!("Therefore the answer is $\\boxed{{{g}}}$."),
            g.clone(),
        ));
        let w = &golds[(k + 7) % golds.len()];
        math_pairs.push((
            format!("Therefore the answer is $\\boxed{{{w}}}$."),
            g.clone(),
        ));
    }
    let secs = std::env::var("JUDGE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let (gsm_rate, _) = measure(&gsm_pairs, AnswerStyle::Numeric, secs);
    let (math_rate, _) = measure(&math_pairs, AnswerStyle::Latex, secs);
    let gsm_ok = gsm_pairs
        .iter()
        .filter(|(p, g)| score::check(p, g, AnswerStyle::Numeric).equivalent)
        .count();
    let math_ok = math_pairs
        .iter()
        .filter(|(p, g)| score::check(p, g, AnswerStyle::Latex).equivalent)
        .count();
    println!(
        "gsm8k-style: {} pairs ({} judged equal), {:.0} judgements/s (target >= 50000)",
        gsm_pairs.len(),
        gsm_ok,
        gsm_rate
    );
    println!(
        "math500 latex: {} pairs ({} judged equal), {:.0} judgements/s (target >= 5000)",
        math_pairs.len(),
        math_ok,
        math_rate
    );
}
