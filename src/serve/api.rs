//! OpenAI wire types the server accepts, and its error bodies. Unknown fields
//! are ignored (clients send many optional ones); known fields of the wrong
//! type are a 400.

use crate::lm::ChatMessage;
use serde::Deserialize;
use serde_json::{Value, json};

/// A string or a list of strings (`prompt`, `stop`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `POST /v1/completions`.
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: OneOrMany,
    pub max_tokens: Option<usize>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub seed: Option<u64>,
    pub stop: Option<OneOrMany>,
    pub n: Option<usize>,
    /// Number of top alternatives; any value ≥ 0 turns per-token log-probs on
    /// (alternatives are not reported).
    pub logprobs: Option<u32>,
    pub echo: Option<bool>,
    pub stream: Option<bool>,
    /// mscr extension for echo scoring: the character offset where the
    /// continuation to score starts.
    pub mscr_continuation_start: Option<usize>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: Option<usize>,
    pub max_completion_tokens: Option<usize>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub seed: Option<u64>,
    pub stop: Option<OneOrMany>,
    pub n: Option<usize>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<u32>,
    /// With `max_tokens: 0` and a final assistant message: score that message.
    pub echo: Option<bool>,
    pub stream: Option<bool>,
}

/// An HTTP error with an OpenAI-style body.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub code: &'static str,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            code,
        }
    }

    pub fn new(
        status: u16,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            code,
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "code": self.code, "param": null}})
    }
}
