//! ONNX graph building, ONNX Runtime sessions, generation and scoring; the HTTP backend.
//!
//! Implements the language-model interface ([`crate::lm::LanguageModel`]) with
//! the in-process ORT backend and the OpenAI-compatible HTTP client, so the
//! attack, the evaluator and the campaign runner never care which.

pub mod decoder;
pub mod encoder;
pub mod env;
pub mod http;
pub mod load;
pub mod onnx;
pub mod optimum;
pub mod ort_model;
pub mod quant;
pub mod session;

use crate::error::Result;
use crate::lm::LanguageModel;

/// How to load a model named by a spec string.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub device: env::Device,
    /// Intra-op threads; 0 = ONNX Runtime's default.
    pub threads: usize,
}

/// Loads the model a spec names: an alias, a `.gguf` path, a Hugging Face
/// folder, an `.onnx` path, or `openai:http://HOST:PORT/v1#MODEL`.
pub fn load_model(spec: &str, options: &LoadOptions) -> Result<std::sync::Arc<dyn LanguageModel>> {
    if spec.trim_start().starts_with("openai:") {
        return Ok(std::sync::Arc::new(http::HttpModel::from_spec(spec)?));
    }
    load::load_model(spec, options)
}
