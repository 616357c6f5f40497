//! Bursts of new connections to `mscr serve` are all answered promptly.
//!
//! A client with many requests in flight (the mscr client sends up to
//! `max_in_flight` at once) opens a burst of connections together. Every one
//! must be served at once. tiny_http 0.12's connection pool can queue a burst's
//! connections behind kept-alive ones, stranding them until another connection
//! closes (the client's 90 s idle timeout): seen here as requests that time out
//! although the model is idle. The mscr client therefore uses one connection
//! per request; with a kept-alive client pool this test fails in its first
//! round. It runs the server `mscr serve` runs (`mscr::serve::Server`, in this
//! process) and the real HTTP client over loopback, 30 bursts on busy cores,
//! and fails if any request errs or times out or a burst takes over 8 s. The
//! model behind the server is an instant stand-in: what is tested is the
//! connection handling, which a real model's slower batches make less likely
//! to show (with the default model behind the binary the stranding showed in
//! only some runs), and the stand-in keeps the test fast and setup-free.

use mscr::lm::{Decoding, FinishReason, Generation, LanguageModel, Prompt};
use mscr::runtime::http::HttpModel;
use mscr::serve::{ServeOptions, Server};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Answers at once: a generation echoes the prompt's length, a score is −1 per
/// character of the continuation.
struct Instant0;

impl LanguageModel for Instant0 {
    fn id(&self) -> String {
        "instant".into()
    }
    fn generate(&self, prompts: &[Prompt], _: &Decoding) -> mscr::Result<Vec<Generation>> {
        // A little model time, so requests overlap as they do with a real model.
        std::thread::sleep(Duration::from_millis(5));
        Ok(prompts
            .iter()
            .map(|p| Generation {
                text: format!("{}", p.key().len()),
                prompt_tokens: 1,
                completion_tokens: 1,
                finish_reason: FinishReason::Eos,
                logprobs: vec![-0.5],
            })
            .collect())
    }
    fn score(&self, pairs: &[(Prompt, String)]) -> mscr::Result<Vec<f32>> {
        std::thread::sleep(Duration::from_millis(5));
        Ok(pairs.iter().map(|(_, c)| -(c.len() as f32)).collect())
    }
    fn render(&self, p: &Prompt) -> mscr::Result<String> {
        Ok(p.key())
    }
    fn count_tokens(&self, t: &str) -> mscr::Result<usize> {
        Ok(t.len())
    }
}

#[test]
fn bursts_of_new_connections_are_all_served_promptly() {
    let server = Server::start(
        Arc::new(Instant0),
        ServeOptions {
            addr: "127.0.0.1:0".into(),
            model_name: "m".into(),
            ..ServeOptions::default()
        },
    )
    .unwrap();
    let pairs: Vec<(Prompt, String)> = (0..32)
        .map(|i| (Prompt::text(format!("question {i}")), "x".repeat(i)))
        .collect();
    let prompts: Vec<Prompt> = (0..32).map(|i| Prompt::text(format!("q {i}"))).collect();
    // Busy cores, as with a model running beside the server: woken threads
    // start late, which is when a thread pool's bookkeeping races show.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinners: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                x
            })
        })
        .collect();
    let t0 = Instant::now();
    for round in 0..30 {
        // A fresh client each round: a new pool, so 16 new connections at once.
        // No retries, and a timeout far above the milliseconds each burst needs.
        let client = HttpModel::from_spec(&format!(
            "openai:{}#m?max_in_flight=16&retries=0&timeout_s=10",
            server.base_url()
        ))
        .unwrap();
        let t = Instant::now();
        let scores = client
            .score(&pairs)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(scores[7], -7.0);
        let gens = client
            .generate(&prompts, &Decoding::default())
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(gens.len(), 32);
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "round {round} took {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    eprintln!("30 rounds in {:.1} s", t0.elapsed().as_secs_f64());
    server.shutdown();
}
