//! OpenAI-compatible HTTP client backend (vLLM, SGLang, llama.cpp server, TGI,
//! Ollama, `mscr serve`): [`HttpModel`] implements [`LanguageModel`] over
//! `/completions` and `/chat/completions`, with many requests in flight,
//! retries with backoff and a per-request timeout.

mod spec;

pub use spec::{HttpSpec, parse_spec};

use crate::error::{Error, Result};
use crate::lm::{ChatMessage, Decoding, FinishReason, Generation, LanguageModel, Prompt};
use rand::RngExt;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Request field (an mscr extension other servers ignore) telling `mscr serve`
/// where the continuation starts, in characters, in an echo-scoring request.
pub const CONTINUATION_START_FIELD: &str = "mscr_continuation_start";

/// The API key, kept out of `Debug` output.
#[derive(Clone)]
struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// A model behind an OpenAI-compatible server.
#[derive(Debug)]
pub struct HttpModel {
    spec: HttpSpec,
    key: Option<ApiKey>,
    client: reqwest::blocking::Client,
}

/// Why one request finally failed.
enum Failure {
    /// Worth another attempt (connection error, timeout, 429, 5xx).
    Transient(String),
    /// Will not get better by retrying (4xx, bad response).
    Fatal(String),
}

impl HttpModel {
    /// Builds a client from an `openai:` spec; reads the API key from the
    /// variable the spec names.
    pub fn from_spec(s: &str) -> Result<Self> {
        Self::new(parse_spec(s)?)
    }

    pub fn new(spec: HttpSpec) -> Result<Self> {
        let key = match &spec.api_key_env {
            Some(var) => match std::env::var(var) {
                Ok(k) if !k.trim().is_empty() => Some(ApiKey(k.trim().to_string())),
                _ => {
                    return Err(Error::Config(format!(
                        "model {}: the API key variable {var} is not set; export it or drop \
                         api_key_env from the spec",
                        spec_id(&spec)
                    )));
                }
            },
            None => None,
        };
        let client = reqwest::blocking::Client::builder()
            .timeout(spec.timeout)
            .connect_timeout(spec.timeout.min(Duration::from_secs(10)))
            // One connection per request. A kept-alive connection pins a
            // server thread between requests, and servers with a fixed pool
            // (tiny_http's, behind `mscr serve`) can leave a burst of new
            // connections queued behind idle ones until the client times out
            // (tests/serve_concurrency.rs). A new TCP connection costs far less
            // than one generation.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| Error::Network(format!("could not build the HTTP client: {e}")))?;
        Ok(HttpModel { spec, key, client })
    }

    pub fn spec(&self) -> &HttpSpec {
        &self.spec
    }

    /// POSTs `body` to `base_url/path` with retries; returns the parsed JSON.
    fn post(&self, path: &str, body: &Value) -> std::result::Result<Value, String> {
        let url = format!("{}/{path}", self.spec.base_url);
        let attempts = self.spec.retries + 1;
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                std::thread::sleep(self.backoff_delay(attempt - 1, &last));
            }
            match self.post_once(&url, body) {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(m)) => return Err(m),
                Err(Failure::Transient(m)) => last = m,
            }
        }
        Err(format!(
            "{last} (gave up after {attempts} attempt{})",
            if attempts == 1 { "" } else { "s" }
        ))
    }

    /// Exponential backoff with full jitter over the upper half; a server's
    /// `Retry-After` (carried in the message) raises the floor.
    fn backoff_delay(&self, retry: u32, last: &str) -> Duration {
        let base = self.spec.backoff.as_secs_f64() * 2f64.powi(retry.min(16) as i32);
        let capped = base.min(30.0);
        let jitter: f64 = rand::rng().random_range(0.5..=1.0);
        let mut secs = capped * jitter;
        if let Some(ra) = last
            .split("retry-after ")
            .nth(1)
            .and_then(|t| t.split('s').next())
            .and_then(|t| t.parse::<f64>().ok())
        {
            secs = secs.max(ra.min(60.0));
        }
        Duration::from_secs_f64(secs)
    }

    fn post_once(&self, url: &str, body: &Value) -> std::result::Result<Value, Failure> {
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(k) = &self.key {
            req = req.bearer_auth(&k.0);
        }
        let resp = req.send().map_err(|e| {
            // reqwest's Display names the URL, never headers, so the key stays out.
            let what = if e.is_timeout() {
                format!(
                    "no answer within {:.1} s (timeout)",
                    self.spec.timeout.as_secs_f64()
                )
            } else if e.is_connect() {
                format!("could not connect ({})", root_cause(&e))
            } else {
                format!("request failed ({})", root_cause(&e))
            };
            Failure::Transient(what)
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok());
        let text = resp.text().map_err(|e| {
            if e.is_timeout() {
                Failure::Transient("timed out reading the response".into())
            } else {
                Failure::Transient(format!("could not read the response ({})", root_cause(&e)))
            }
        })?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|e| {
                Failure::Fatal(format!("the server answered with invalid JSON ({e})"))
            });
        }
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| text.chars().take(300).collect());
        let mut m = format!("HTTP {}: {message}", status.as_u16());
        if let Some(ra) = retry_after {
            m.push_str(&format!(" (retry-after {ra}s)"));
        }
        if status.as_u16() == 429 || status.is_server_error() {
            Err(Failure::Transient(m))
        } else if status.as_u16() == 401 || status.as_u16() == 403 {
            Err(Failure::Fatal(format!(
                "{m}; check the API key (api_key_env in the spec)"
            )))
        } else {
            Err(Failure::Fatal(m))
        }
    }

    /// Runs `job(i)` for every index with at most `max_in_flight` running, and
    /// turns the first failure into one error naming the server and the item.
    fn run_all<T: Send>(
        &self,
        n: usize,
        what: &str,
        job: impl Fn(usize) -> std::result::Result<T, String> + Sync,
    ) -> Result<Vec<T>> {
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<std::result::Result<T, String>>>> =
            (0..n).map(|_| Mutex::new(None)).collect();
        let workers = self.spec.max_in_flight.min(n).max(1);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let r = job(i);
                        if let Ok(mut slot) = results[i].lock() {
                            *slot = Some(r);
                        }
                    }
                });
            }
        });
        let mut out = Vec::with_capacity(n);
        let mut failed = Vec::new();
        for (i, slot) in results.into_iter().enumerate() {
            match slot.into_inner().ok().flatten() {
                Some(Ok(v)) => out.push(v),
                Some(Err(m)) => failed.push((i, m)),
                None => failed.push((i, "the worker thread panicked".into())),
            }
        }
        if let Some((i, m)) = failed.first() {
            return Err(Error::Network(format!(
                "{}: {what} {} of {n} failed: {m}{}",
                self.id(),
                i + 1,
                if failed.len() > 1 {
                    format!(" ({} of {n} items failed)", failed.len())
                } else {
                    String::new()
                }
            )));
        }
        Ok(out)
    }

    fn generate_one(
        &self,
        prompt: &Prompt,
        d: &Decoding,
    ) -> std::result::Result<Generation, String> {
        let mut body = json!({
            "model": self.spec.model,
            "max_tokens": d.max_new_tokens,
            "temperature": d.temperature,
            "top_p": d.top_p,
            "seed": d.seed,
            "n": 1,
        });
        if !d.stop.is_empty() {
            body["stop"] = json!(d.stop);
        }
        let chat_messages = match prompt {
            Prompt::Chat { messages } => Some(messages.clone()),
            Prompt::Text { text } if self.spec.chat => Some(vec![ChatMessage {
                role: "user".into(),
                content: text.clone(),
            }]),
            Prompt::Text { .. } => None,
        };
        let v = if let Some(messages) = chat_messages {
            body["messages"] = json!(messages);
            if self.spec.logprobs {
                body["logprobs"] = json!(true);
            }
            self.post("chat/completions", &body)?
        } else {
            let Prompt::Text { text } = prompt else {
                unreachable!("chat prompts took the branch above")
            };
            body["prompt"] = json!(text);
            if self.spec.logprobs {
                body["logprobs"] = json!(1);
            }
            self.post("completions", &body)?
        };
        parse_generation(&v, chat_messages_present(prompt, self.spec.chat))
    }

    fn score_one(&self, prompt: &Prompt, continuation: &str) -> std::result::Result<f32, String> {
        match prompt {
            Prompt::Text { text } if !self.spec.chat => {
                let start = text.chars().count();
                let body = json!({
                    "model": self.spec.model,
                    "prompt": format!("{text}{continuation}"),
                    "echo": true,
                    "logprobs": 1,
                    "max_tokens": 0,
                    "temperature": 0.0,
                    CONTINUATION_START_FIELD: start,
                });
                let v = self.post("completions", &body)?;
                sum_prompt_logprobs(&v, start).ok_or_else(|| self.no_logprobs("completions"))
            }
            _ => {
                let mut messages = match prompt {
                    Prompt::Chat { messages } => messages.clone(),
                    Prompt::Text { text } => vec![ChatMessage {
                        role: "user".into(),
                        content: text.clone(),
                    }],
                };
                messages.push(ChatMessage {
                    role: "assistant".into(),
                    content: continuation.to_string(),
                });
                // vLLM's names for "score the final assistant message".
                let body = json!({
                    "model": self.spec.model,
                    "messages": messages,
                    "echo": true,
                    "logprobs": true,
                    "max_tokens": 0,
                    "temperature": 0.0,
                    "add_generation_prompt": false,
                    "continue_final_message": true,
                });
                let v = self.post("chat/completions", &body)?;
                let content = v["choices"][0]["logprobs"]["content"].as_array();
                match content {
                    Some(toks) if !toks.is_empty() || continuation.is_empty() => Ok(toks
                        .iter()
                        .filter_map(|t| t["logprob"].as_f64())
                        .sum::<f64>()
                        as f32),
                    _ => Err(self.no_logprobs("chat/completions")),
                }
            }
        }
    }

    fn no_logprobs(&self, endpoint: &str) -> String {
        format!(
            "the server at {} returned no prompt log-probs from /{endpoint} (echo + logprobs); \
             scoring (and the log-prob pre-screen) needs a server that reports them, such as \
             vLLM or `mscr serve`",
            self.spec.base_url
        )
    }
}

fn chat_messages_present(prompt: &Prompt, chat: bool) -> bool {
    matches!(prompt, Prompt::Chat { .. }) || chat
}

fn spec_id(spec: &HttpSpec) -> String {
    format!("openai:{}#{}", spec.base_url, spec.model)
}

/// The innermost error message (hyper's "connection refused" hides a few levels down).
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Reads one choice of a completions or chat-completions response.
fn parse_generation(v: &Value, chat: bool) -> std::result::Result<Generation, String> {
    let choice = &v["choices"][0];
    if choice.is_null() {
        return Err("the response has no choices".into());
    }
    let text = if chat {
        choice["message"]["content"].as_str()
    } else {
        choice["text"].as_str()
    }
    .ok_or("the response choice has no text")?
    .to_string();
    let finish_reason = match choice["finish_reason"].as_str() {
        Some("length") => FinishReason::Length,
        // OpenAI says "stop" for both; vLLM's `stop_reason` names the stop string.
        Some("stop") if choice["stop_reason"].is_string() => FinishReason::Stop,
        _ => FinishReason::Eos,
    };
    let logprobs: Vec<f32> = if chat {
        choice["logprobs"]["content"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t["logprob"].as_f64().map(|x| x as f32))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        choice["logprobs"]["token_logprobs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_f64().map(|x| x as f32))
                    .collect()
            })
            .unwrap_or_default()
    };
    let usage = |k: &str| v["usage"][k].as_u64().unwrap_or(0) as usize;
    Ok(Generation {
        text,
        prompt_tokens: usage("prompt_tokens"),
        completion_tokens: match usage("completion_tokens") {
            0 => logprobs.len(),
            n => n,
        },
        finish_reason,
        logprobs,
    })
}

/// Sums the echoed prompt log-probs of tokens starting at or after `start`
/// characters; `None` when the server sent none.
fn sum_prompt_logprobs(v: &Value, start: usize) -> Option<f32> {
    let lp = &v["choices"][0]["logprobs"];
    let values = lp["token_logprobs"].as_array()?;
    let offsets = lp["text_offset"].as_array()?;
    if values.is_empty() || values.len() != offsets.len() {
        return None;
    }
    let mut sum = 0f64;
    for (x, off) in values.iter().zip(offsets) {
        if off.as_u64().is_some_and(|o| o as usize >= start) {
            sum += x.as_f64()?;
        }
    }
    Some(sum as f32)
}

impl LanguageModel for HttpModel {
    fn id(&self) -> String {
        spec_id(&self.spec)
    }

    fn generate(&self, prompts: &[Prompt], decoding: &Decoding) -> Result<Vec<Generation>> {
        self.run_all(prompts.len(), "prompt", |i| {
            self.generate_one(&prompts[i], decoding)
        })
    }

    fn score(&self, pairs: &[(Prompt, String)]) -> Result<Vec<f32>> {
        self.run_all(pairs.len(), "scoring item", |i| {
            self.score_one(&pairs[i].0, &pairs[i].1)
        })
    }

    /// The server applies its own chat template, so chat prompts get a stable,
    /// readable rendering (for caches and reports), not the model's exact input.
    fn render(&self, prompt: &Prompt) -> Result<String> {
        Ok(match prompt {
            Prompt::Text { text } => text.clone(),
            Prompt::Chat { messages } => messages
                .iter()
                .map(|m| format!("<|{}|>\n{}\n", m.role, m.content))
                .collect(),
        })
    }

    /// Asks the server for a zero-token completion and reads `usage.prompt_tokens`
    /// (which may include a BOS token the server adds).
    fn count_tokens(&self, text: &str) -> Result<usize> {
        let body = json!({
            "model": self.spec.model,
            "prompt": text,
            "max_tokens": 0,
            "temperature": 0.0,
        });
        let v = self
            .post("completions", &body)
            .map_err(|m| Error::Network(format!("{}: counting tokens: {m}", self.id())))?;
        v["usage"]["prompt_tokens"]
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "{}: the server reports no usage.prompt_tokens, so tokens cannot be counted \
                     through it",
                    self.id()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_only_continuation_tokens() {
        let v = json!({"choices": [{"logprobs": {
            "tokens": ["Two", " plus", " two", " is", " four"],
            "token_logprobs": [null, -1.0, -2.0, -0.5, -0.25],
            "text_offset": [0, 3, 8, 12, 15]
        }}]});
        assert_eq!(sum_prompt_logprobs(&v, 12), Some(-0.75));
        assert_eq!(
            sum_prompt_logprobs(&json!({"choices": [{"text": "x"}]}), 0),
            None
        );
    }

    #[test]
    fn reads_chat_and_completion_choices() {
        let v = json!({"choices": [{"text": "4", "finish_reason": "stop", "stop_reason": "\n",
            "logprobs": {"token_logprobs": [-0.1]}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 1}});
        let g = parse_generation(&v, false).unwrap();
        assert_eq!(
            (g.text.as_str(), g.prompt_tokens, g.finish_reason),
            ("4", 7, FinishReason::Stop)
        );
        assert_eq!(g.logprobs, vec![-0.1]);
        let v = json!({"choices": [{"message": {"content": "hi"}, "finish_reason": "length"}]});
        let g = parse_generation(&v, true).unwrap();
        assert_eq!(
            (g.text.as_str(), g.finish_reason),
            ("hi", FinishReason::Length)
        );
        assert!(parse_generation(&json!({}), true).is_err());
    }

    #[test]
    fn missing_key_variable_is_named_and_key_is_never_shown() {
        let e = HttpModel::from_spec(
            "openai:http://127.0.0.1:9/v1#m?api_key_env=MSCR_TEST_UNSET_VAR_X",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("MSCR_TEST_UNSET_VAR_X"), "{e}");
        let m = HttpModel {
            spec: parse_spec("openai:http://127.0.0.1:9/v1#m").unwrap(),
            key: Some(ApiKey("sk-secret".into())),
            client: reqwest::blocking::Client::new(),
        };
        assert!(!format!("{m:?}").contains("sk-secret"));
        assert!(!m.id().contains("sk-secret"));
    }
}
