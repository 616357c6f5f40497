//! Load benchmark for `mscr serve`: 16 and 64 concurrent clients against the
//! server wrapping the default model (in-process server, real HTTP on
//! loopback). Reports throughput and p50/p99 latency; any failed request is an
//! error. Run: `cargo bench --bench serve_load` (release build).
//!
//! Knobs (environment): MSCR_BENCH_CLIENTS (default "16,64"),
//! MSCR_BENCH_REQUESTS (per client, default 4), MSCR_BENCH_MAX_TOKENS (16),
//! MSCR_BENCH_MAX_BATCH (16), MSCR_BENCH_THREADS (ORT intra-op threads, 0).

use mscr::lm::{Decoding, Prompt};
use mscr::runtime::{LoadOptions, load_model};
use mscr::serve::{ServeOptions, Server};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

const PROMPTS: &[&str] = &[
    "Tom has 3 apples and buys 4 more. How many apples does he have?",
    "A train travels 60 miles in 1 hour. How far does it go in 3 hours?",
    "What is 12 times 11?",
    "Sara had 20 dollars and spent 7. How much is left?",
    "If a pencil costs 2 dollars, how much do 9 pencils cost?",
    "There are 5 boxes with 6 eggs each. How many eggs are there?",
    "What is half of 86?",
    "A class has 14 girls and 13 boys. How many students are there?",
];

fn main() {
    let clients: Vec<usize> = env("MSCR_BENCH_CLIENTS", "16,64")
        .split(',')
        .map(|s| s.trim().parse().expect("MSCR_BENCH_CLIENTS: numbers"))
        .collect();
    let per_client: usize = env("MSCR_BENCH_REQUESTS", "4")
        .parse()
        .expect("MSCR_BENCH_REQUESTS");
    let max_tokens: usize = env("MSCR_BENCH_MAX_TOKENS", "16")
        .parse()
        .expect("MSCR_BENCH_MAX_TOKENS");
    let max_batch: usize = env("MSCR_BENCH_MAX_BATCH", "16")
        .parse()
        .expect("MSCR_BENCH_MAX_BATCH");
    let threads: usize = env("MSCR_BENCH_THREADS", "0")
        .parse()
        .expect("MSCR_BENCH_THREADS");
    let t = Instant::now();
    let model = load_model(
        "smollm2-135m-instruct",
        &LoadOptions {
            threads,
            ..LoadOptions::default()
        },
    )
    .expect("loading the default model (run `mscr setup` first)");
    eprintln!("model loaded in {:.1} s", t.elapsed().as_secs_f64());
    // Baseline under the same machine load: one in-process batch of max_batch prompts.
    let prompts: Vec<Prompt> = (0..max_batch)
        .map(|i| Prompt::user(None, PROMPTS[i % PROMPTS.len()]))
        .collect();
    let d = Decoding {
        max_new_tokens: max_tokens,
        ..Decoding::default()
    };
    let t = Instant::now();
    let direct = model.generate(&prompts, &d).expect("in-process generation");
    let secs = t.elapsed().as_secs_f64();
    let toks: usize = direct.iter().map(|g| g.completion_tokens).sum();
    println!(
        "in-process baseline: one batch of {max_batch} prompts, {toks} tokens in {secs:.1} s = {:.1} gen tok/s",
        toks as f64 / secs
    );
    let server = Server::start(
        model,
        ServeOptions {
            addr: "127.0.0.1:0".into(),
            model_name: "smol".into(),
            max_batch,
            http_threads: clients.iter().copied().max().unwrap_or(64).max(16),
            ..ServeOptions::default()
        },
    )
    .expect("starting the server");
    let url = format!("{}/chat/completions", server.base_url());
    println!(
        "| clients | requests | max_batch | max_tokens | failed | wall s | req/s | gen tok/s | p50 ms | p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &c in &clients {
        let start = Instant::now();
        let results: Vec<(Vec<Duration>, usize, usize)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..c)
                .map(|i| {
                    let url = url.clone();
                    s.spawn(move || {
                        let http = reqwest::blocking::Client::builder()
                            .timeout(Duration::from_secs(600))
                            .build()
                            .expect("HTTP client");
                        let (mut lat, mut failed, mut tokens) = (Vec::new(), 0, 0);
                        for r in 0..per_client {
                            let q = PROMPTS[(i + r) % PROMPTS.len()];
                            let body = json!({"model": "smol", "max_tokens": max_tokens, "temperature": 0,
                                "messages": [{"role": "user", "content": q}]});
                            let t = Instant::now();
                            let resp = http
                                .post(&url)
                                .header("Content-Type", "application/json")
                                .body(body.to_string())
                                .send();
                            match resp {
                                Ok(r) if r.status().is_success() => {
                                    let v: Value = serde_json::from_str(&r.text().unwrap_or_default())
                                        .unwrap_or(Value::Null);
                                    tokens += v["usage"]["completion_tokens"].as_u64().unwrap_or(0) as usize;
                                    lat.push(t.elapsed());
                                }
                                other => {
                                    eprintln!("request failed: {:?}", other.map(|r| r.status()));
                                    failed += 1;
                                }
                            }
                        }
                        (lat, failed, tokens)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("client thread"))
                .collect()
        });
        let wall = start.elapsed().as_secs_f64();
        let mut lat: Vec<Duration> = results.iter().flat_map(|r| r.0.clone()).collect();
        let failed: usize = results.iter().map(|r| r.1).sum();
        let tokens: usize = results.iter().map(|r| r.2).sum();
        lat.sort();
        let n = lat.len();
        assert!(n > 0, "every request failed with {c} clients");
        println!(
            "| {c} | {} | {max_batch} | {max_tokens} | {failed} | {wall:.1} | {:.2} | {:.1} | {:.0} | {:.0} |",
            c * per_client,
            n as f64 / wall,
            tokens as f64 / wall,
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
        );
        assert_eq!(failed, 0, "{failed} requests failed with {c} clients");
    }
    server.shutdown();
}
