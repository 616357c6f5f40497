//! `mscr serve` over real HTTP on 127.0.0.1, wrapping the real default model:
//! the protocol (models, errors, auth, body limit), batching, and the client
//! backend's scoring and token counting against in-process results.

use mscr::lm::{Decoding, Generation, LanguageModel, Prompt};
use mscr::runtime::http::HttpModel;
use mscr::runtime::{LoadOptions, load_model};
use mscr::serve::{ServeOptions, Server};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, OnceLock};

const KEY: &str = "test-key-9f8e7d";

fn model() -> Arc<dyn LanguageModel> {
    static M: OnceLock<Arc<dyn LanguageModel>> = OnceLock::new();
    M.get_or_init(|| {
        load_model("smollm2-135m-instruct", &LoadOptions::default())
            .expect("the default model loads (run `mscr setup` first)")
    })
    .clone()
}

/// The real model, recording the size of every batch the server asks for.
struct Recording {
    inner: Arc<dyn LanguageModel>,
    batches: Mutex<Vec<usize>>,
}

impl LanguageModel for Recording {
    fn id(&self) -> String {
        self.inner.id()
    }
    fn generate(&self, p: &[Prompt], d: &Decoding) -> mscr::Result<Vec<Generation>> {
        self.batches.lock().unwrap().push(p.len());
        self.inner.generate(p, d)
    }
    fn score(&self, pairs: &[(Prompt, String)]) -> mscr::Result<Vec<f32>> {
        self.inner.score(pairs)
    }
    fn render(&self, p: &Prompt) -> mscr::Result<String> {
        self.inner.render(p)
    }
    fn count_tokens(&self, t: &str) -> mscr::Result<usize> {
        self.inner.count_tokens(t)
    }
}

fn start(api_key: Option<&str>, max_body: usize) -> (Server, Arc<Recording>) {
    let rec = Arc::new(Recording {
        inner: model(),
        batches: Mutex::new(Vec::new()),
    });
    let server = Server::start(
        rec.clone(),
        ServeOptions {
            addr: "127.0.0.1:0".into(),
            model_name: "smol".into(),
            api_key: api_key.map(str::to_string),
            max_body_bytes: max_body,
            max_batch: 8,
            batch_wait: std::time::Duration::from_millis(20),
            ..ServeOptions::default()
        },
    )
    .unwrap();
    (server, rec)
}

fn post(url: &str, key: Option<&str>, body: impl Into<reqwest::blocking::Body>) -> (u16, Value) {
    let mut r = reqwest::blocking::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let resp = r.send().unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_str(&resp.text().unwrap()).unwrap_or(Value::Null),
    )
}

fn assert_openai_error(v: &Value, code: &str) {
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert_eq!(e["code"], code, "{v}");
}

#[test]
fn protocol_errors_auth_and_limits() {
    let (server, _) = start(Some(KEY), 2048);
    let base = server.base_url();
    let client = reqwest::blocking::Client::new();
    // /v1/models with and without the key.
    let r = client
        .get(format!("{base}/models"))
        .bearer_auth(KEY)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = serde_json::from_str(&r.text().unwrap()).unwrap();
    assert_eq!(v["data"][0]["id"], "smol");
    let r = client.get(format!("{base}/models")).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_openai_error(
        &serde_json::from_str(&r.text().unwrap()).unwrap(),
        "missing_api_key",
    );
    let url = format!("{base}/completions");
    let (s, v) = post(&url, Some("wrong"), json!({"prompt": "hi"}).to_string());
    assert_eq!(s, 401);
    assert_openai_error(&v, "invalid_api_key");
    // Malformed JSON, wrong field types, a non-object body.
    let (s, v) = post(&url, Some(KEY), "{\"prompt\": \"hi\",");
    assert_eq!(s, 400);
    assert_openai_error(&v, "invalid_json");
    let (s, v) = post(
        &url,
        Some(KEY),
        json!({"prompt": "hi", "max_tokens": "ten"}).to_string(),
    );
    assert_eq!(s, 400);
    assert_openai_error(&v, "invalid_value");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid type"),
        "{v}"
    );
    let (s, v) = post(&url, Some(KEY), "[1, 2]");
    assert_eq!(s, 400);
    assert_openai_error(&v, "invalid_json");
    let (s, v) = post(
        &url,
        Some(KEY),
        json!({"prompt": "hi", "temperature": 7.0}).to_string(),
    );
    assert_eq!(s, 400);
    assert_openai_error(&v, "invalid_value");
    let (s, v) = post(
        &url,
        Some(KEY),
        json!({"prompt": "hi", "model": "gpt-9"}).to_string(),
    );
    assert_eq!(s, 404);
    assert_openai_error(&v, "model_not_found");
    let (s, v) = post(
        &url,
        Some(KEY),
        json!({"prompt": "hi", "stream": true}).to_string(),
    );
    assert_eq!(s, 400);
    assert_openai_error(&v, "unsupported");
    // Oversized body.
    let big = json!({"prompt": "x".repeat(4096)}).to_string();
    let (s, v) = post(&url, Some(KEY), big);
    assert_eq!(s, 413);
    assert_openai_error(&v, "payload_too_large");
    // Unknown route.
    let r = client
        .get(format!("{base}/engines"))
        .bearer_auth(KEY)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    server.shutdown();
}

#[test]
fn completions_chat_logprobs_and_stop() {
    let (server, _) = start(None, 1 << 20);
    let base = server.base_url();
    let (s, v) = post(
        &format!("{base}/completions"),
        None,
        json!({"prompt": "The capital of France is", "max_tokens": 5, "temperature": 0, "logprobs": 1}).to_string(),
    );
    assert_eq!(s, 200, "{v}");
    let c = &v["choices"][0];
    let ct = v["usage"]["completion_tokens"].as_u64().unwrap() as usize;
    assert!((1..=5).contains(&ct), "{v}");
    assert_eq!(
        c["logprobs"]["token_logprobs"].as_array().unwrap().len(),
        ct,
        "{v}"
    );
    assert!(
        c["logprobs"]["token_logprobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x.as_f64().unwrap() <= 0.0)
    );
    // Greedy n=2 chat: both choices identical, and equal to in-process generation.
    let msgs = json!([{"role": "user", "content": "What is 2 + 3? Answer briefly."}]);
    let (s, v) = post(
        &format!("{base}/chat/completions"),
        None,
        json!({"messages": msgs, "max_tokens": 12, "temperature": 0, "n": 2, "logprobs": true})
            .to_string(),
    );
    assert_eq!(s, 200, "{v}");
    let a = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(a, v["choices"][1]["message"]["content"].as_str().unwrap());
    let local = model()
        .generate(
            &[Prompt::user(None, "What is 2 + 3? Answer briefly.")],
            &Decoding {
                max_new_tokens: 12,
                ..Decoding::default()
            },
        )
        .unwrap();
    assert_eq!(a, local[0].text);
    assert_eq!(
        v["usage"]["prompt_tokens"].as_u64().unwrap() as usize,
        local[0].prompt_tokens
    );
    // A stop string ends the text.
    let d = Decoding {
        max_new_tokens: 40,
        stop: vec![" ".into()],
        ..Decoding::default()
    };
    let client = HttpModel::from_spec(&format!("openai:{base}#smol")).unwrap();
    let g = client
        .generate(&[Prompt::text("Once upon a time")], &d)
        .unwrap();
    let l = model()
        .generate(&[Prompt::text("Once upon a time")], &d)
        .unwrap();
    assert_eq!(g[0].text, l[0].text);
    assert_eq!(g[0].finish_reason, l[0].finish_reason);
    server.shutdown();
}

#[test]
fn client_scoring_and_counting_match_in_process() {
    let (server, _) = start(Some(KEY), 1 << 20);
    // SAFETY: only this test in this binary touches the variable.
    unsafe { std::env::set_var("MSCR_SERVE_TEST_KEY", KEY) };
    let client = HttpModel::from_spec(&format!(
        "openai:{}#smol?api_key_env=MSCR_SERVE_TEST_KEY",
        server.base_url()
    ))
    .unwrap();
    let pairs = vec![
        (Prompt::text("2 + 2 ="), " 4".to_string()),
        (Prompt::text("2 + 2 ="), " 5".to_string()),
        (
            Prompt::user(None, "What is 2 + 2?"),
            "The answer is 4.".to_string(),
        ),
    ];
    let remote = client.score(&pairs).unwrap();
    let local = model().score(&pairs).unwrap();
    for (r, l) in remote.iter().zip(&local) {
        assert!((r - l).abs() < 1e-3, "remote {remote:?} local {local:?}");
    }
    assert!(
        remote[0] > remote[1],
        "' 4' should be likelier than ' 5': {remote:?}"
    );
    let text = "Natalia sold clips to 48 of her friends in April.";
    assert_eq!(
        client.count_tokens(text).unwrap(),
        model().count_tokens(text).unwrap()
    );
    server.shutdown();
}

#[test]
fn concurrent_requests_are_batched() {
    let (server, rec) = start(None, 1 << 20);
    let client = HttpModel::from_spec(&format!(
        "openai:{}#smol?max_in_flight=8",
        server.base_url()
    ))
    .unwrap();
    let prompts: Vec<Prompt> = (0..8)
        .map(|i| Prompt::text(format!("Count: {i}, ")))
        .collect();
    let d = Decoding {
        max_new_tokens: 4,
        ..Decoding::default()
    };
    let remote = client.generate(&prompts, &d).unwrap();
    assert_eq!(remote.len(), 8);
    let batches = rec.batches.lock().unwrap().clone();
    assert_eq!(batches.iter().sum::<usize>(), 8);
    assert!(
        batches.iter().any(|&b| b > 1),
        "no request was batched: {batches:?}"
    );
    server.shutdown();
}
