//! `mscr serve`: an OpenAI-compatible HTTP server (`/v1/models`,
//! `/v1/completions`, `/v1/chat/completions`) over any [`LanguageModel`],
//! batching concurrent requests into one model call.

pub mod api;
mod batcher;

use crate::error::{Error, Result};
use crate::lm::{ChatMessage, Decoding, FinishReason, Generation, LanguageModel, Prompt};
use api::{ApiError, ChatRequest, CompletionRequest};
use batcher::Job;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Where to listen; loopback unless the user says otherwise.
    pub addr: String,
    /// The model name `/v1/models` lists and requests may name.
    pub model_name: String,
    /// Bearer token every request must carry; `None` = no authentication.
    pub api_key: Option<String>,
    /// Most prompts in one model call.
    pub max_batch: usize,
    /// Larger request bodies get a 413.
    pub max_body_bytes: usize,
    /// Threads reading HTTP requests (each waits for its batch).
    pub http_threads: usize,
    /// How long the batcher waits for more requests after the first.
    pub batch_wait: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            addr: "127.0.0.1:8080".into(),
            model_name: "mscr".into(),
            api_key: None,
            max_batch: 16,
            max_body_bytes: 4 << 20,
            http_threads: 64,
            batch_wait: Duration::from_millis(2),
        }
    }
}

/// A running server. Dropping it without [`Server::shutdown`] leaves the
/// threads running until the process ends.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    batcher: Option<JoinHandle<()>>,
}

/// Stops a server from another thread (e.g. a Ctrl-C handler).
#[derive(Clone)]
pub struct Stopper(Arc<AtomicBool>);

impl Stopper {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Shared {
    model: Arc<dyn LanguageModel>,
    opts: ServeOptions,
    next_id: AtomicU64,
}

impl Server {
    /// Binds `opts.addr` and starts serving `model`.
    pub fn start(model: Arc<dyn LanguageModel>, opts: ServeOptions) -> Result<Server> {
        let http = tiny_http::Server::http(&opts.addr).map_err(|e| {
            Error::Config(format!(
                "cannot listen on {}: {e}; pick another --addr (e.g. 127.0.0.1:0 for any free port)",
                opts.addr
            ))
        })?;
        let addr = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::Config(format!("{} is not an IP address", opts.addr)))?;
        let http = Arc::new(http);
        let (tx, batcher) = batcher::start(model.clone(), opts.max_batch, opts.batch_wait);
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            model,
            opts: opts.clone(),
            next_id: AtomicU64::new(1),
        });
        let mut workers = Vec::new();
        for i in 0..opts.http_threads.max(1) {
            let (http, stop, shared, tx) = (http.clone(), stop.clone(), shared.clone(), tx.clone());
            let w = std::thread::Builder::new()
                .name(format!("mscr-http-{i}"))
                .spawn(move || serve_loop(&http, &stop, &shared, &tx))
                .map_err(|e| Error::Other(format!("cannot start server threads: {e}")))?;
            workers.push(w);
        }
        Ok(Server {
            addr,
            stop,
            workers,
            batcher: Some(batcher),
        })
    }

    /// The bound address (the real port when `addr` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `base_url` clients use: `http://ADDR/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// Blocks until stopped, letting requests in progress finish.
    pub fn wait(mut self) {
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        // Every job sender lived in a worker; with them gone the batcher drains and ends.
        if let Some(b) = self.batcher.take() {
            let _ = b.join();
        }
    }

    /// Stops accepting requests, finishes those in progress and returns.
    pub fn shutdown(self) {
        self.stopper().stop();
        self.wait();
    }
}

fn serve_loop(http: &tiny_http::Server, stop: &AtomicBool, shared: &Shared, tx: &Sender<Job>) {
    while !stop.load(Ordering::SeqCst) {
        match http.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(mut req)) => {
                let (status, body) = match handle(&mut req, shared, tx) {
                    Ok(v) => (200, v),
                    Err(e) => (e.status, e.body()),
                };
                let data = serde_json::to_vec(&body).unwrap_or_default();
                let header =
                    tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
                        .expect("static header is valid");
                let resp = tiny_http::Response::from_data(data)
                    .with_status_code(status)
                    .with_header(header);
                // A client that hung up is not the server's problem.
                let _ = req.respond(resp);
            }
            Ok(None) => {}
            Err(_) => break,
        }
    }
}

fn handle(
    req: &mut tiny_http::Request,
    shared: &Shared,
    tx: &Sender<Job>,
) -> Result<Value, ApiError> {
    let path = req
        .url()
        .split('?')
        .next()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    let method = req.method().clone();
    if path == "/health" {
        return Ok(json!({"status": "ok"}));
    }
    check_key(req, shared)?;
    let post = |m: &tiny_http::Method| *m == tiny_http::Method::Post;
    match path.as_str() {
        "/v1/models" if method == tiny_http::Method::Get => Ok(json!({
            "object": "list",
            "data": [{"id": shared.opts.model_name, "object": "model", "created": now(),
                      "owned_by": "mscr", "root": shared.model.id()}],
        })),
        "/v1/completions" if post(&method) => completions(read_json(req, shared)?, shared, tx),
        "/v1/chat/completions" if post(&method) => chat(read_json(req, shared)?, shared, tx),
        "/v1/models" | "/v1/completions" | "/v1/chat/completions" => Err(ApiError::new(
            405,
            "invalid_request_error",
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        )),
        _ => Err(ApiError::new(
            404,
            "invalid_request_error",
            "not_found",
            format!(
                "no route {path}; this server offers /v1/models, /v1/completions and /v1/chat/completions"
            ),
        )),
    }
}

fn check_key(req: &tiny_http::Request, shared: &Shared) -> Result<(), ApiError> {
    let Some(key) = &shared.opts.api_key else {
        return Ok(());
    };
    let given = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .and_then(|h| h.value.as_str().strip_prefix("Bearer ").map(str::trim));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), key.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(
            401,
            "authentication_error",
            "invalid_api_key",
            "incorrect API key",
        )),
        None => Err(ApiError::new(
            401,
            "authentication_error",
            "missing_api_key",
            "this server needs an API key: send `Authorization: Bearer KEY`",
        )),
    }
}

/// Compares without an early exit, so timing does not reveal the key's prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read_json<T: DeserializeOwned>(
    req: &mut tiny_http::Request,
    shared: &Shared,
) -> Result<T, ApiError> {
    let limit = shared.opts.max_body_bytes;
    let too_big = || {
        ApiError::new(
            413,
            "invalid_request_error",
            "payload_too_large",
            format!("the request body is larger than {limit} bytes (--max-body-bytes)"),
        )
    };
    if req.body_length().is_some_and(|n| n > limit) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| {
            ApiError::bad_request("invalid_body", format!("could not read the body: {e}"))
        })?;
    if body.len() > limit {
        return Err(too_big());
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        ));
    }
    serde_json::from_value(v)
        .map_err(|e| ApiError::bad_request("invalid_value", format!("invalid request: {e}")))
}

/// Sampling settings shared by both endpoints, validated.
fn decoding(
    max_tokens: usize,
    temperature: Option<f32>,
    top_p: Option<f32>,
    seed: Option<u64>,
    stop: Option<api::OneOrMany>,
) -> Result<Decoding, ApiError> {
    let temperature = temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("temperature {temperature} is outside [0, 2]"),
        ));
    }
    let top_p = top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("top_p {top_p} is outside (0, 1]"),
        ));
    }
    let stop = stop.map(api::OneOrMany::into_vec).unwrap_or_default();
    if stop.len() > 16 || stop.iter().any(String::is_empty) {
        return Err(ApiError::bad_request(
            "invalid_value",
            "stop takes at most 16 non-empty strings",
        ));
    }
    Ok(Decoding {
        max_new_tokens: max_tokens,
        temperature,
        top_p,
        // Without a seed, sampled requests should differ from each other.
        seed: seed.unwrap_or_else(|| if temperature > 0.0 { rand::random() } else { 0 }),
        stop,
    })
}

fn check_common(
    model: &Option<String>,
    n: Option<usize>,
    stream: Option<bool>,
    shared: &Shared,
) -> Result<usize, ApiError> {
    if let Some(m) = model
        && m != &shared.opts.model_name
    {
        return Err(ApiError::new(
            404,
            "invalid_request_error",
            "model_not_found",
            format!(
                "the model {m:?} is not served here; this server serves {:?}",
                shared.opts.model_name
            ),
        ));
    }
    if stream == Some(true) {
        return Err(ApiError::bad_request(
            "unsupported",
            "streaming is not supported; send stream: false",
        ));
    }
    let n = n.unwrap_or(1);
    if !(1..=64).contains(&n) {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("n = {n} is outside 1..=64"),
        ));
    }
    Ok(n)
}

/// Queues `prompts × n` generation jobs and waits for all of them.
fn run_generate(
    prompts: &[Prompt],
    n: usize,
    d: &Decoding,
    tx: &Sender<Job>,
) -> Result<Vec<Generation>, ApiError> {
    let mut waits = Vec::new();
    for p in prompts {
        for i in 0..n {
            let mut decoding = d.clone();
            // n sampled choices must differ; greedy ones are identical anyway.
            if d.temperature > 0.0 {
                decoding.seed = d.seed.wrapping_add(i as u64);
            }
            let (reply, rx) = channel();
            tx.send(Job::Generate {
                prompt: p.clone(),
                decoding,
                reply,
            })
            .map_err(|_| shutting_down())?;
            waits.push(rx);
        }
    }
    waits
        .into_iter()
        .map(|rx| match rx.recv() {
            Ok(Ok(g)) => Ok(g),
            Ok(Err(m)) => Err(ApiError::new(500, "server_error", "model_error", m)),
            Err(_) => Err(shutting_down()),
        })
        .collect()
}

fn run_score(prompt: Prompt, continuation: String, tx: &Sender<Job>) -> Result<f32, ApiError> {
    let (reply, rx) = channel();
    tx.send(Job::Score {
        prompt,
        continuation,
        reply,
    })
    .map_err(|_| shutting_down())?;
    match rx.recv() {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(m)) => Err(ApiError::new(500, "server_error", "model_error", m)),
        Err(_) => Err(shutting_down()),
    }
}

fn shutting_down() -> ApiError {
    ApiError::new(
        503,
        "server_error",
        "shutting_down",
        "the server is shutting down",
    )
}

fn finish(g: &Generation, stop: &[String]) -> (&'static str, Value) {
    match g.finish_reason {
        FinishReason::Length => ("length", Value::Null),
        FinishReason::Eos => ("stop", Value::Null),
        // vLLM's `stop_reason` names the stop string, which tells a stop string from EOS.
        FinishReason::Stop => {
            let s = stop
                .iter()
                .find(|s| g.text.ends_with(s.as_str()))
                .or(stop.first());
            ("stop", json!(s.cloned().unwrap_or_default()))
        }
    }
}

fn count(model: &dyn LanguageModel, text: &str) -> Result<usize, ApiError> {
    model
        .count_tokens(text)
        .map_err(|e| ApiError::new(500, "server_error", "model_error", e.to_string()))
}

fn completions(r: CompletionRequest, shared: &Shared, tx: &Sender<Job>) -> Result<Value, ApiError> {
    let n = check_common(&r.model, r.n, r.stream, shared)?;
    let prompts = r.prompt.into_vec();
    if prompts.is_empty() || prompts.len() > 256 {
        return Err(ApiError::bad_request(
            "invalid_value",
            "prompt must hold 1 to 256 strings",
        ));
    }
    let max_tokens = r.max_tokens.unwrap_or(16);
    let echo = r.echo.unwrap_or(false);
    let id = format!("cmpl-{}", shared.next_id.fetch_add(1, Ordering::Relaxed));
    let model = shared.model.as_ref();
    let head = |choices: Vec<Value>, prompt_tokens: usize, completion_tokens: usize| {
        json!({
            "id": id, "object": "text_completion", "created": now(), "model": shared.opts.model_name,
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })
    };
    if max_tokens == 0 {
        // Prompt-only requests: echo scoring (with the mscr extension) or token counting.
        if echo && r.logprobs.is_some() {
            let Some(start) = r.mscr_continuation_start else {
                return Err(ApiError::bad_request(
                    "unsupported",
                    "prompt log-probs (echo with logprobs) need the `mscr_continuation_start` field: \
                     the character offset where the scored continuation starts",
                ));
            };
            let [text] = prompts.as_slice() else {
                return Err(ApiError::bad_request(
                    "invalid_value",
                    "echo scoring takes one prompt",
                ));
            };
            let Some((cut, _)) = text
                .char_indices()
                .nth(start)
                .or((start == text.chars().count()).then_some((text.len(), ' ')))
            else {
                return Err(ApiError::bad_request(
                    "invalid_value",
                    format!("mscr_continuation_start {start} is past the end of the prompt"),
                ));
            };
            let (prefix, cont) = text.split_at(cut);
            let score = run_score(Prompt::text(prefix), cont.to_string(), tx)?;
            let (tokens, lps, offs) = if cont.is_empty() {
                (json!([prefix]), json!([null]), json!([0]))
            } else {
                (
                    json!([prefix, cont]),
                    json!([null, score]),
                    json!([0, start]),
                )
            };
            let choice = json!({"index": 0, "text": text, "finish_reason": "length", "stop_reason": null,
                "logprobs": {"tokens": tokens, "token_logprobs": lps, "text_offset": offs, "top_logprobs": null}});
            return Ok(head(vec![choice], count(model, text)?, 0));
        }
        let mut choices = Vec::new();
        let mut total = 0;
        for (i, p) in prompts.iter().enumerate() {
            total += count(model, p)?;
            choices.push(
                json!({"index": i, "text": if echo { p.as_str() } else { "" },
                "finish_reason": "length", "stop_reason": null, "logprobs": null}),
            );
        }
        return Ok(head(choices, total, 0));
    }
    if echo && r.logprobs.is_some() {
        return Err(ApiError::bad_request(
            "unsupported",
            "echo with logprobs is only supported for scoring (max_tokens: 0 with mscr_continuation_start)",
        ));
    }
    let d = decoding(max_tokens, r.temperature, r.top_p, r.seed, r.stop)?;
    let as_prompts: Vec<Prompt> = prompts.iter().map(Prompt::text).collect();
    let gens = run_generate(&as_prompts, n, &d, tx)?;
    let mut choices = Vec::new();
    let (mut pt, mut ct) = (0, 0);
    for (i, g) in gens.iter().enumerate() {
        let p = &prompts[i / n];
        if i % n == 0 {
            pt += g.prompt_tokens;
        }
        ct += g.completion_tokens;
        let (fr, sr) = finish(g, &d.stop);
        let base = if echo { p.chars().count() } else { 0 };
        let logprobs = if r.logprobs.is_some() {
            // The model interface reports each token's log-prob but not its text.
            json!({"tokens": vec![""; g.logprobs.len()], "token_logprobs": g.logprobs,
                   "text_offset": vec![base; g.logprobs.len()], "top_logprobs": null})
        } else {
            Value::Null
        };
        let text = if echo {
            format!("{p}{}", g.text)
        } else {
            g.text.clone()
        };
        choices.push(json!({"index": i, "text": text, "finish_reason": fr, "stop_reason": sr, "logprobs": logprobs}));
    }
    Ok(head(choices, pt, ct))
}

fn chat(r: ChatRequest, shared: &Shared, tx: &Sender<Job>) -> Result<Value, ApiError> {
    let n = check_common(&r.model, r.n, r.stream, shared)?;
    if r.messages.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_value",
            "messages must not be empty",
        ));
    }
    let max_tokens = r
        .max_completion_tokens
        .or(r.max_tokens)
        .unwrap_or(Decoding::default().max_new_tokens);
    let id = format!(
        "chatcmpl-{}",
        shared.next_id.fetch_add(1, Ordering::Relaxed)
    );
    let head = |choices: Vec<Value>, pt: usize, ct: usize| {
        json!({
            "id": id, "object": "chat.completion", "created": now(), "model": shared.opts.model_name,
            "choices": choices,
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
        })
    };
    let want_logprobs = r.logprobs.unwrap_or(false) || r.top_logprobs.is_some();
    if max_tokens == 0 && r.echo.unwrap_or(false) {
        // Score the final assistant message as a continuation of the rest.
        let mut messages = r.messages;
        let last: ChatMessage = messages.pop().expect("checked non-empty");
        if last.role != "assistant" || messages.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_value",
                "echo scoring needs at least one message followed by the assistant message to score",
            ));
        }
        let prompt = Prompt::Chat { messages };
        let score = run_score(prompt.clone(), last.content.clone(), tx)?;
        let rendered = shared
            .model
            .render(&prompt)
            .map_err(|e| ApiError::new(500, "server_error", "model_error", e.to_string()))?;
        let content = if last.content.is_empty() {
            json!([])
        } else {
            json!([{"token": last.content, "logprob": score, "bytes": null, "top_logprobs": []}])
        };
        let choice = json!({"index": 0, "message": {"role": "assistant", "content": last.content},
            "finish_reason": "length", "logprobs": {"content": content}});
        return Ok(head(
            vec![choice],
            count(shared.model.as_ref(), &rendered)?,
            0,
        ));
    }
    if max_tokens == 0 {
        return Err(ApiError::bad_request(
            "invalid_value",
            "max_tokens must be ≥ 1 (0 is only for echo scoring)",
        ));
    }
    let d = decoding(max_tokens, r.temperature, r.top_p, r.seed, r.stop)?;
    let gens = run_generate(
        &[Prompt::Chat {
            messages: r.messages,
        }],
        n,
        &d,
        tx,
    )?;
    let pt = gens.first().map_or(0, |g| g.prompt_tokens);
    let ct = gens.iter().map(|g| g.completion_tokens).sum();
    let choices = gens
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let (fr, sr) = finish(g, &d.stop);
            let logprobs = if want_logprobs {
                let content: Vec<Value> = g
                    .logprobs
                    .iter()
                    .map(
                        |lp| json!({"token": "", "logprob": lp, "bytes": null, "top_logprobs": []}),
                    )
                    .collect();
                json!({"content": content})
            } else {
                Value::Null
            };
            json!({"index": i, "message": {"role": "assistant", "content": g.text},
                   "finish_reason": fr, "stop_reason": sr, "logprobs": logprobs})
        })
        .collect();
    Ok(head(choices, pt, ct))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_validates_and_defaults_like_openai() {
        let d = decoding(8, None, None, Some(3), None).unwrap();
        assert_eq!((d.temperature, d.top_p, d.seed), (1.0, 1.0, 3));
        let d = decoding(
            8,
            Some(0.0),
            None,
            None,
            Some(api::OneOrMany::One("\n".into())),
        )
        .unwrap();
        assert_eq!((d.seed, d.stop.clone()), (0, vec!["\n".to_string()]));
        for (t, p) in [
            (Some(2.5), None),
            (Some(-0.1), None),
            (None, Some(0.0)),
            (None, Some(1.5)),
        ] {
            let e = decoding(8, t, p, None, None).unwrap_err();
            assert_eq!((e.status, e.code), (400, "invalid_value"));
        }
        let e = decoding(
            8,
            None,
            None,
            None,
            Some(api::OneOrMany::Many(vec![String::new()])),
        );
        assert!(e.is_err());
    }

    #[test]
    fn key_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn default_binds_loopback() {
        let addr: SocketAddr = ServeOptions::default().addr.parse().unwrap();
        assert!(addr.ip().is_loopback());
    }

    #[test]
    fn error_body_is_openai_shaped() {
        let b = ApiError::bad_request("invalid_json", "nope").body();
        assert_eq!(b["error"]["message"], "nope");
        assert_eq!(b["error"]["type"], "invalid_request_error");
        assert_eq!(b["error"]["code"], "invalid_json");
    }
}
