//! The HTTP client against small fault-injecting servers on 127.0.0.1 that the
//! tests run themselves (plain TcpListener threads speaking HTTP/1.1).

use mscr::lm::{Decoding, FinishReason, LanguageModel, Prompt};
use mscr::runtime::http::HttpModel;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What a fake server does with request number `n` (0-based).
enum Action {
    Reply(u16, Value),
    /// Read the request and never answer.
    Stall,
    /// Close the connection without answering.
    Drop,
}

struct Received {
    at: Instant,
    body: Value,
    auth: Option<String>,
}

struct FakeServer {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    in_flight_max: Arc<AtomicUsize>,
    handle: Option<thread::JoinHandle<()>>,
}

impl FakeServer {
    fn start(handler: impl Fn(usize, &Value) -> Action + Send + Sync + 'static) -> Self {
        Self::start_on("127.0.0.1:0", Duration::ZERO, handler)
    }

    fn start_on(
        addr: &str,
        delay: Duration,
        handler: impl Fn(usize, &Value) -> Action + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let in_flight_max = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let counter = Arc::new(AtomicUsize::new(0));
        let (log2, stop2, max2) = (log.clone(), stop.clone(), in_flight_max.clone());
        let handle = thread::spawn(move || {
            let mut conns = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (h, log, c, stop, inf, max) = (
                            handler.clone(),
                            log2.clone(),
                            counter.clone(),
                            stop2.clone(),
                            in_flight.clone(),
                            max2.clone(),
                        );
                        conns.push(thread::spawn(move || {
                            serve_conn(stream, &*h, &log, &c, &stop, &inf, &max, delay)
                        }));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
            // The listener drops here: new connections are refused.
        });
        FakeServer {
            addr,
            log,
            stop,
            in_flight_max,
            handle: Some(handle),
        }
    }

    fn spec(&self, opts: &str) -> String {
        format!("openai:http://{}/v1#fake?{opts}", self.addr)
    }

    fn requests(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn kill(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.take().unwrap().join().unwrap();
    }
}

#[allow(clippy::too_many_arguments)]
fn serve_conn(
    stream: TcpStream,
    handler: &(dyn Fn(usize, &Value) -> Action + Send + Sync),
    log: &Mutex<Vec<Received>>,
    counter: &AtomicUsize,
    stop: &AtomicBool,
    in_flight: &AtomicUsize,
    max: &AtomicUsize,
    delay: Duration,
) {
    stream.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut len = 0usize;
    let mut auth = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
        if lower.starts_with("authorization:") {
            auth = Some(l["authorization:".len()..].trim().to_string());
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    max.fetch_max(now, Ordering::SeqCst);
    let n = counter.fetch_add(1, Ordering::SeqCst);
    log.lock().unwrap().push(Received {
        at: Instant::now(),
        body: body.clone(),
        auth,
    });
    thread::sleep(delay);
    let action = handler(n, &body);
    in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut stream = stream;
    match action {
        Action::Reply(status, v) => {
            let data = v.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{data}",
                data.len()
            );
        }
        Action::Stall => {
            while !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
            }
        }
        Action::Drop => {}
    }
}

fn completion(text: &str) -> Value {
    json!({"choices": [{"index": 0, "text": text, "finish_reason": "length",
        "logprobs": {"token_logprobs": [-0.5, -0.25]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2}})
}

fn greedy(n: usize) -> Decoding {
    Decoding {
        max_new_tokens: n,
        ..Decoding::default()
    }
}

#[test]
fn backs_off_on_429_then_succeeds() {
    let server = FakeServer::start(|n, _| {
        if n < 2 {
            Action::Reply(
                429,
                json!({"error": {"message": "slow down", "type": "rate_limit", "code": null}}),
            )
        } else {
            Action::Reply(200, completion(" 42"))
        }
    });
    let model = HttpModel::from_spec(&server.spec("backoff_ms=200&retries=3")).unwrap();
    let out = model.generate(&[Prompt::text("6*7=")], &greedy(2)).unwrap();
    assert_eq!(out[0].text, " 42");
    assert_eq!(out[0].finish_reason, FinishReason::Length);
    assert_eq!(out[0].logprobs, vec![-0.5, -0.25]);
    assert_eq!((out[0].prompt_tokens, out[0].completion_tokens), (5, 2));
    let log = server.log.lock().unwrap();
    assert_eq!(log.len(), 3, "two 429s, then the success");
    // Jitter keeps each wait within [0.5, 1] × 200 ms × 2^retry.
    let gap1 = log[1].at - log[0].at;
    let gap2 = log[2].at - log[1].at;
    assert!(gap1 >= Duration::from_millis(100), "first backoff {gap1:?}");
    assert!(
        gap2 >= Duration::from_millis(200),
        "second backoff doubles: {gap2:?}"
    );
    assert_eq!(log[0].body["prompt"], "6*7=");
    assert_eq!(log[0].body["model"], "fake");
    assert_eq!(log[0].body["temperature"], 0.0);
}

#[test]
fn retries_5xx_but_not_4xx() {
    let server = FakeServer::start(|n, _| match n {
        0 => Action::Reply(503, json!({"error": {"message": "warming up"}})),
        _ => Action::Reply(
            400,
            json!({"error": {"message": "prompt too long for this model"}}),
        ),
    });
    let model = HttpModel::from_spec(&server.spec("backoff_ms=10&retries=5")).unwrap();
    let e = model
        .generate(&[Prompt::text("x")], &greedy(2))
        .unwrap_err()
        .to_string();
    assert_eq!(server.requests(), 2, "the 400 must not be retried");
    assert!(
        e.contains("HTTP 400") && e.contains("prompt too long"),
        "{e}"
    );
    assert!(
        e.contains(&server.addr.to_string()),
        "error names the server: {e}"
    );
}

#[test]
fn stalled_server_times_out_with_clear_error() {
    let server = FakeServer::start(|_, _| Action::Stall);
    let model =
        HttpModel::from_spec(&server.spec("timeout_s=0.5&retries=1&backoff_ms=10")).unwrap();
    let e = model
        .generate(&[Prompt::text("x")], &greedy(2))
        .unwrap_err()
        .to_string();
    assert!(e.contains("timeout"), "{e}");
    assert!(
        e.contains(&format!("http://{}/v1", server.addr)),
        "names the server: {e}"
    );
    assert!(e.contains("gave up after 2 attempts"), "{e}");
    assert_eq!(server.requests(), 2);
    server.kill();
}

#[test]
fn killed_server_gives_per_item_error_then_recovers_when_back() {
    let server = FakeServer::start(|n, _| {
        if n < 2 {
            Action::Reply(200, completion(&format!("answer {n}")))
        } else {
            Action::Drop
        }
    });
    let addr = server.addr;
    let model =
        HttpModel::from_spec(&server.spec("retries=2&backoff_ms=20&max_in_flight=1")).unwrap();
    let prompts: Vec<Prompt> = (0..3).map(|i| Prompt::text(format!("q{i}"))).collect();
    // The server dies after two answers: the third request is dropped mid-flight.
    let stop = server.stop.clone();
    let watcher = thread::spawn(move || {
        // Once the third request has come in, kill the listener.
        while server.requests() < 3 {
            thread::sleep(Duration::from_millis(2));
        }
        stop.store(true, Ordering::SeqCst);
        server.kill();
    });
    let e = model
        .generate(&prompts, &greedy(2))
        .unwrap_err()
        .to_string();
    watcher.join().unwrap();
    assert!(e.contains("prompt 3 of 3"), "names the item: {e}");
    assert!(e.contains("gave up after 3 attempts"), "{e}");
    assert!(e.contains(&addr.to_string()), "{e}");
    // The server comes back on the same port: the same client works again.
    let back = FakeServer::start_on(&addr.to_string(), Duration::ZERO, |_, b| {
        Action::Reply(
            200,
            completion(&format!("re {}", b["prompt"].as_str().unwrap())),
        )
    });
    let out = model.generate(&prompts, &greedy(2)).unwrap();
    let texts: Vec<&str> = out.iter().map(|g| g.text.as_str()).collect();
    assert_eq!(
        texts,
        ["re q0", "re q1", "re q2"],
        "results stay in prompt order"
    );
    back.kill();
}

#[test]
fn bounded_requests_in_flight_and_order_kept() {
    let server = FakeServer::start_on("127.0.0.1:0", Duration::from_millis(60), |_, b| {
        Action::Reply(
            200,
            completion(&format!("<{}>", b["prompt"].as_str().unwrap())),
        )
    });
    let model = HttpModel::from_spec(&server.spec("max_in_flight=4")).unwrap();
    let prompts: Vec<Prompt> = (0..12).map(|i| Prompt::text(format!("p{i}"))).collect();
    let out = model.generate(&prompts, &greedy(2)).unwrap();
    for (i, g) in out.iter().enumerate() {
        assert_eq!(g.text, format!("<p{i}>"));
    }
    let max = server.in_flight_max.load(Ordering::SeqCst);
    assert!((2..=4).contains(&max), "in flight at once: {max}");
}

#[test]
fn api_key_sent_as_bearer_and_kept_out_of_errors() {
    // SAFETY: no other test in this binary reads or writes this variable.
    unsafe { std::env::set_var("MSCR_TEST_HTTP_KEY", "sk-test-secret-123") };
    let server = FakeServer::start(|_, _| {
        Action::Reply(
            401,
            json!({"error": {"message": "bad key", "type": "authentication_error"}}),
        )
    });
    let model = HttpModel::from_spec(&server.spec("api_key_env=MSCR_TEST_HTTP_KEY")).unwrap();
    let e = model
        .generate(&[Prompt::text("x")], &greedy(2))
        .unwrap_err()
        .to_string();
    let log = server.log.lock().unwrap();
    assert_eq!(log[0].auth.as_deref(), Some("Bearer sk-test-secret-123"));
    assert_eq!(log.len(), 1, "401 is not retried");
    assert!(
        e.contains("API key") && !e.contains("sk-test-secret"),
        "{e}"
    );
    assert!(!model.id().contains("sk-test") && !model.id().contains("MSCR_TEST_HTTP_KEY"));
}

#[test]
fn chat_prompts_use_chat_endpoint_and_read_logprobs() {
    let server = FakeServer::start(|_, b| {
        assert!(b["messages"].is_array());
        Action::Reply(
            200,
            json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "Four."},
            "finish_reason": "stop", "logprobs": {"content": [{"token": "Four", "logprob": -0.1}, {"token": ".", "logprob": -0.2}]}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2}}),
        )
    });
    // Through the generic loader, as every command loads models.
    let model = mscr::runtime::load_model(&server.spec(""), &Default::default()).unwrap();
    assert_eq!(model.id(), format!("openai:http://{}/v1#fake", server.addr));
    let out = model
        .generate(&[Prompt::user(Some("Be brief."), "2+2?")], &greedy(8))
        .unwrap();
    assert_eq!(out[0].text, "Four.");
    assert_eq!(out[0].finish_reason, FinishReason::Eos);
    assert_eq!(out[0].logprobs, vec![-0.1, -0.2]);
    let log = server.log.lock().unwrap();
    assert_eq!(log[0].body["messages"][0]["role"], "system");
    assert_eq!(log[0].body["messages"][1]["content"], "2+2?");
    assert_eq!(log[0].body["logprobs"], true);
}

#[test]
fn scoring_sums_continuation_logprobs_or_says_server_lacks_them() {
    let server = FakeServer::start(|n, b| {
        assert_eq!(b["echo"], true);
        assert_eq!(b["max_tokens"], 0);
        if n == 0 {
            Action::Reply(
                200,
                json!({"choices": [{"text": b["prompt"], "logprobs": {
                "tokens": ["2+2=", "4"], "token_logprobs": [null, -0.75], "text_offset": [0, 4]}}]}),
            )
        } else {
            Action::Reply(
                200,
                json!({"choices": [{"text": b["prompt"], "logprobs": null}]}),
            )
        }
    });
    let model = HttpModel::from_spec(&server.spec("max_in_flight=1")).unwrap();
    let s = model.score(&[(Prompt::text("2+2="), "4".into())]).unwrap();
    assert_eq!(s, vec![-0.75]);
    assert_eq!(server.log.lock().unwrap()[0].body["prompt"], "2+2=4");
    let e = model
        .score(&[(Prompt::text("2+2="), "4".into())])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no prompt log-probs") && e.contains(&server.addr.to_string()),
        "{e}"
    );
}
