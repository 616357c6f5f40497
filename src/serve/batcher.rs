//! Batching concurrent requests: HTTP threads queue single-prompt jobs; one
//! collector thread takes whatever is waiting (up to `max_batch`), groups it by
//! decoding settings and makes one `generate` (or `score`) call per group.

use crate::lm::{Decoding, Generation, LanguageModel, Prompt};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub type Reply<T> = Sender<Result<T, String>>;

pub enum Job {
    Generate {
        prompt: Prompt,
        decoding: Decoding,
        reply: Reply<Generation>,
    },
    Score {
        prompt: Prompt,
        continuation: String,
        reply: Reply<f32>,
    },
}

/// Starts the collector; it ends when every sender is dropped.
pub fn start(
    model: Arc<dyn LanguageModel>,
    max_batch: usize,
    gather: Duration,
) -> (Sender<Job>, JoinHandle<()>) {
    let (tx, rx) = channel();
    let handle = std::thread::Builder::new()
        .name("mscr-batcher".into())
        .spawn(move || collect(model.as_ref(), &rx, max_batch.max(1), gather))
        .expect("spawning the batcher thread");
    (tx, handle)
}

fn collect(model: &dyn LanguageModel, rx: &Receiver<Job>, max_batch: usize, gather: Duration) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        // A short window lets a burst of requests that arrive together share a batch;
        // under load the queue fills while the previous batch runs anyway.
        let deadline = Instant::now() + gather;
        while jobs.len() < max_batch {
            let wait = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(j) => jobs.push(j),
                Err(RecvTimeoutError::Timeout) => {
                    // Take whatever else is already queued, without waiting.
                    while jobs.len() < max_batch {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        run_batch(model, jobs);
    }
}

/// Generation jobs that share decoding settings.
type Group = (Decoding, Vec<(Prompt, Reply<Generation>)>);

fn run_batch(model: &dyn LanguageModel, jobs: Vec<Job>) {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut scores: Vec<((Prompt, String), Reply<f32>)> = Vec::new();
    for job in jobs {
        match job {
            Job::Generate {
                prompt,
                decoding,
                reply,
            } => groups
                .entry(decoding.key())
                .or_insert_with(|| (decoding, Vec::new()))
                .1
                .push((prompt, reply)),
            Job::Score {
                prompt,
                continuation,
                reply,
            } => scores.push(((prompt, continuation), reply)),
        }
    }
    for (_, (decoding, items)) in groups {
        let (prompts, replies): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        let out = guarded(|| model.generate(&prompts, &decoding));
        deliver(out, replies);
    }
    if !scores.is_empty() {
        let (pairs, replies): (Vec<_>, Vec<_>) = scores.into_iter().unzip();
        let out = guarded(|| model.score(&pairs));
        deliver(out, replies);
    }
}

/// A panic in the model must not take the server down: it becomes a 500.
fn guarded<T>(f: impl FnOnce() -> crate::Result<Vec<T>>) -> Result<Vec<T>, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the model panicked while running this batch".into()),
    }
}

fn deliver<T>(out: Result<Vec<T>, String>, replies: Vec<Reply<T>>) {
    match out {
        Ok(values) if values.len() == replies.len() => {
            for (v, r) in values.into_iter().zip(replies) {
                // The client may have gone; nothing to do then.
                let _ = r.send(Ok(v));
            }
        }
        Ok(values) => {
            let m = format!(
                "the model returned {} results for {} inputs",
                values.len(),
                replies.len()
            );
            for r in replies {
                let _ = r.send(Err(m.clone()));
            }
        }
        Err(m) => {
            for r in replies {
                let _ = r.send(Err(m.clone()));
            }
        }
    }
}
