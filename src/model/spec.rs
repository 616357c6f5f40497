//! Model specs: what a MODEL argument names and where its files are.

use crate::error::{Error, Result};
use std::path::PathBuf;

/// What a spec resolved to, with local paths.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved {
    Gguf(PathBuf),
    HfFolder(PathBuf),
    /// An ONNX decoder exported by Hugging Face Optimum (tokenizer files beside it).
    Onnx(PathBuf),
    /// `openai:http://HOST:PORT/v1#MODEL`.
    OpenAi(String),
}

/// The default causal LM.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// Resolves an alias, a `.gguf` path, a Hugging Face folder, an `.onnx` path or
/// an `openai:` URL.
pub fn resolve(spec: &str) -> Result<Resolved> {
    if spec.starts_with("openai:") {
        return Ok(Resolved::OpenAi(spec.to_string()));
    }
    if spec == DEFAULT_MODEL {
        let p = crate::paths::models_dir()
            .join(DEFAULT_MODEL)
            .join("SmolLM2-135M-Instruct.Q4_1.gguf");
        if !p.is_file() {
            return Err(Error::file(
                &p,
                "the default model is missing: run `mscr setup`",
            ));
        }
        return Ok(Resolved::Gguf(p));
    }
    let p = PathBuf::from(spec);
    if p.is_dir() {
        if p.join("config.json").is_file() {
            return Ok(Resolved::HfFolder(p));
        }
        return Err(Error::file(
            &p,
            "folder has no config.json: not a Hugging Face model folder",
        ));
    }
    if p.is_file() {
        return match p.extension().and_then(|e| e.to_str()) {
            Some("gguf") => Ok(Resolved::Gguf(p)),
            Some("onnx") => Ok(Resolved::Onnx(p)),
            _ => Err(Error::file(
                &p,
                "unknown model file type: expected .gguf or .onnx",
            )),
        };
    }
    Err(Error::Config(format!(
        "model {spec:?} is neither a known alias ({DEFAULT_MODEL}), an existing .gguf/.onnx file, \
         a Hugging Face folder nor openai:URL#MODEL; `mscr models list` shows the aliases"
    )))
}
