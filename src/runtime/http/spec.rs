//! Parsing `openai:http://HOST:PORT/v1#MODEL?opt=v&...` model specs.

use crate::error::{Error, Result};
use std::time::Duration;

/// A parsed OpenAI-compatible endpoint spec. Holds the *name* of the API-key
/// variable, never the key.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpSpec {
    /// Base URL up to and including `/v1`, without a trailing slash.
    pub base_url: String,
    /// Model name sent in every request.
    pub model: String,
    /// Environment variable holding the API key (sent as a bearer token).
    pub api_key_env: Option<String>,
    /// Send text prompts to `/chat/completions` as one user message.
    pub chat: bool,
    /// Most requests in flight at once.
    pub max_in_flight: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt (connection errors, timeouts, 429, 5xx).
    pub retries: u32,
    /// First backoff delay; doubles per retry, with jitter.
    pub backoff: Duration,
    /// Ask for per-token log-probs of generations.
    pub logprobs: bool,
}

const USAGE: &str = "expected openai:http://HOST:PORT/v1#MODEL, options after `?` \
     (api_key_env=VAR, chat=0|1, max_in_flight=N, timeout_s=S, retries=N, backoff_ms=MS, logprobs=0|1)";

/// Parses a spec such as `openai:http://127.0.0.1:8000/v1#qwen?max_in_flight=32`.
/// Options may follow the URL (`/v1?opt=v#MODEL`) or the model (`#MODEL?opt=v`).
pub fn parse_spec(s: &str) -> Result<HttpSpec> {
    let bad = |why: &str| Error::Config(format!("model spec {s:?}: {why}; {USAGE}"));
    let rest = s
        .trim()
        .strip_prefix("openai:")
        .ok_or_else(|| bad("does not start with `openai:`"))?;
    let (url_part, fragment) = rest
        .split_once('#')
        .ok_or_else(|| bad("no model name after `#`"))?;
    let (url, url_query) = match url_part.split_once('?') {
        Some((u, q)) => (u, Some(q)),
        None => (url_part, None),
    };
    let (model, frag_query) = match fragment.split_once(['?', '&']) {
        Some((m, q)) => (m, Some(q)),
        None => (fragment, None),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(bad("the URL must start with http:// or https://"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&format!("bad URL: {e}")))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    if model.trim().is_empty() {
        return Err(bad("empty model name"));
    }
    let mut spec = HttpSpec {
        base_url: url.trim_end_matches('/').to_string(),
        model: model.to_string(),
        api_key_env: None,
        chat: false,
        max_in_flight: 16,
        timeout: Duration::from_secs(120),
        retries: 4,
        backoff: Duration::from_millis(500),
        logprobs: true,
    };
    for query in [url_query, frag_query].into_iter().flatten() {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(&format!("option {pair:?} has no `=`")))?;
            let num = |what: &str| -> Result<f64> {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| bad(&format!("option {k}={v:?}: expected {what}")))
            };
            let flag = || -> Result<bool> {
                match v {
                    "1" | "true" | "yes" => Ok(true),
                    "0" | "false" | "no" => Ok(false),
                    _ => Err(bad(&format!("option {k}={v:?}: expected 0 or 1"))),
                }
            };
            match k {
                "api_key_env" => {
                    if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        return Err(bad(&format!(
                            "option api_key_env={v:?}: expected an environment variable name"
                        )));
                    }
                    spec.api_key_env = Some(v.to_string());
                }
                "chat" => spec.chat = flag()?,
                "logprobs" => spec.logprobs = flag()?,
                "max_in_flight" => {
                    let n = num("a whole number ≥ 1")?;
                    if n < 1.0 || n.fract() != 0.0 {
                        return Err(bad(&format!("option max_in_flight={v:?}: expected ≥ 1")));
                    }
                    spec.max_in_flight = n as usize;
                }
                "timeout_s" => {
                    let t = num("seconds")?;
                    if t == 0.0 {
                        return Err(bad("option timeout_s must be > 0"));
                    }
                    spec.timeout = Duration::from_secs_f64(t);
                }
                "retries" => spec.retries = num("a whole number")? as u32,
                "backoff_ms" => spec.backoff = Duration::from_millis(num("milliseconds")? as u64),
                _ => return Err(bad(&format!("unknown option {k:?}"))),
            }
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_spec_with_defaults() {
        let s = parse_spec("openai:http://127.0.0.1:8000/v1/#my-model").unwrap();
        assert_eq!(s.base_url, "http://127.0.0.1:8000/v1");
        assert_eq!(s.model, "my-model");
        assert_eq!(s.max_in_flight, 16);
        assert!(!s.chat);
        assert!(s.api_key_env.is_none());
    }

    #[test]
    fn options_in_query_and_fragment() {
        let s = parse_spec(
            "openai:http://h:1/v1?api_key_env=MY_KEY&timeout_s=2.5#org/model?chat=1&max_in_flight=64&retries=0",
        )
        .unwrap();
        assert_eq!(s.model, "org/model");
        assert_eq!(s.api_key_env.as_deref(), Some("MY_KEY"));
        assert_eq!(s.timeout, Duration::from_millis(2500));
        assert!(s.chat);
        assert_eq!(s.max_in_flight, 64);
        assert_eq!(s.retries, 0);
    }

    #[test]
    fn rejects_bad_specs_with_reason() {
        for (spec, why) in [
            ("http://h/v1#m", "openai:"),
            ("openai:http://h/v1", "no model"),
            ("openai:ftp://h/v1#m", "http://"),
            ("openai:http://h/v1#", "empty model"),
            ("openai:http://h/v1#m?max_in_flight=0", "max_in_flight"),
            ("openai:http://h/v1#m?bogus=1", "unknown option"),
            ("openai:http://h/v1#m?chat=maybe", "expected 0 or 1"),
            ("openai:http://h/v1#m?timeout_s=abc", "timeout_s"),
        ] {
            let e = parse_spec(spec).unwrap_err().to_string();
            assert!(e.contains(why), "{spec}: {e}");
        }
    }
}
