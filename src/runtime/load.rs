//! From a model spec string to a ready [`LanguageModel`]: resolve the spec,
//! build (or reuse) the ONNX graph, open the session.
//!
//! Spec options ride in a query string: `MODEL?weights=f32&max_positions=2048`.

use super::LoadOptions;
use super::decoder::{self, BuildOptions};
use super::ort_model::OrtModel;
use super::session::{DecoderSession, SessionOptions};
use crate::error::{Error, Result};
use crate::lm::LanguageModel;
use crate::model::chat::ChatTemplate;
use crate::model::gguf::GgufFile;
use crate::model::native::NativeWeights;
use crate::model::spec::ResolvedModel;
use crate::model::tokenizer::Tokenizer;
use std::path::Path;
use std::sync::Arc;

/// A model spec split into its target and options.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecOptions {
    pub target: String,
    pub build: BuildOptions,
}

pub fn parse_options(spec: &str) -> Result<SpecOptions> {
    // `openai:` specs carry their own URL query; leave them whole.
    if spec.starts_with("openai:") {
        return Ok(SpecOptions {
            target: spec.to_string(),
            build: BuildOptions::default(),
        });
    }
    let (target, query) = spec.split_once('?').unwrap_or((spec, ""));
    let mut build = BuildOptions::default();
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "weights" => build.format = v.parse()?,
            "max_positions" => {
                build.max_positions = v.parse().map_err(|_| {
                    Error::Config(format!(
                        "model spec {spec}: max_positions={v} is not a number"
                    ))
                })?
            }
            _ => {
                return Err(Error::Config(format!(
                    "model spec {spec}: unknown option {k:?} (valid: weights, max_positions)"
                )));
            }
        }
    }
    Ok(SpecOptions {
        target: target.to_string(),
        build,
    })
}

fn session_options(o: &LoadOptions) -> SessionOptions {
    SessionOptions {
        device: o.device,
        threads: o.threads,
    }
}

/// Loads an in-process decoder from a GGUF file. A graph already in the cache
/// opens without dequantising the weights.
pub fn load_gguf(
    path: &Path,
    name: &str,
    build: &BuildOptions,
    options: &LoadOptions,
) -> Result<OrtModel> {
    let g = GgufFile::open(path)?;
    let config = g.config()?;
    let key = crate::model::weights::cache_key(&g.digest(), &[]);
    let dir = decoder::cache_dir_for(&key, config.max_position, build);
    let tokenizer = Tokenizer::from_gguf(&g)?;
    let chat = ChatTemplate::from_gguf(&g, &tokenizer)?;
    let (dir, info) = match decoder::cached(&dir) {
        Some(info) => (dir, info),
        None => {
            let model = g.to_model()?;
            let native = native_weights(&g, &model, build)?;
            drop(g);
            decoder::build_cached_with(&model, build, native.as_ref())?
        }
    };
    let info = with_tokenizer_eos(info, &tokenizer);
    let session = DecoderSession::open(&dir, info, &session_options(options))?;
    Ok(OrtModel::new(
        session,
        tokenizer,
        chat,
        format!("{name}@{key}-{}", build.format.name()),
    ))
}

/// The file's own blocks, for the native weight formats.
pub fn native_weights(
    g: &GgufFile,
    model: &crate::model::Model,
    build: &BuildOptions,
) -> Result<Option<NativeWeights>> {
    if !build.format.is_native() {
        return Ok(None);
    }
    NativeWeights::from_gguf(g, &model.config).map(Some)
}

/// Loads a decoder from a Hugging Face folder (config.json + safetensors).
pub fn load_hf(
    dir: &Path,
    name: &str,
    build: &BuildOptions,
    options: &LoadOptions,
) -> Result<OrtModel> {
    let tokenizer = crate::model::hf::load_tokenizer(dir)?;
    let chat = crate::model::hf::load_chat_template(dir, &tokenizer)?;
    // Also reads folders written by `mscr transform`.
    let model = crate::model::hf::load_model(dir)?;
    let key = model.cache_key();
    let (dir, info) = decoder::build_cached(&model, build)?;
    drop(model);
    let info = with_tokenizer_eos(info, &tokenizer);
    let session = DecoderSession::open(&dir, info, &session_options(options))?;
    Ok(OrtModel::new(
        session,
        tokenizer,
        chat,
        format!("{name}@{key}-{}", build.format.name()),
    ))
}

/// Loads an ONNX decoder exported by Hugging Face Optimum; its tokenizer files
/// (tokenizer.json, tokenizer_config.json, config.json) sit beside it.
pub fn load_optimum(path: &Path, name: &str, options: &LoadOptions) -> Result<OrtModel> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tokenizer = crate::model::hf::load_tokenizer(dir)?;
    let chat = crate::model::hf::load_chat_template(dir, &tokenizer)?;
    let pad = tokenizer
        .pad_id()
        .or(tokenizer.eos_ids().first().copied())
        .unwrap_or(0);
    let session = super::optimum::OptimumSession::open(
        path,
        tokenizer.eos_ids().to_vec(),
        pad,
        &session_options(options),
    )?;
    let digest = crate::setup::sha256_file(path)?;
    Ok(OrtModel::with_backend(
        super::ort_model::Backend::Optimum(session),
        tokenizer,
        chat,
        format!("{name}@{}", &digest[..16]),
    ))
}

/// Loads the in-process ORT model a spec names (not HTTP models).
pub fn load_ort(spec: &str, options: &LoadOptions) -> Result<OrtModel> {
    let so = parse_options(spec)?;
    match crate::model::spec::resolve(&so.target)? {
        ResolvedModel::Gguf { path } => load_gguf(&path, &so.target, &so.build, options),
        ResolvedModel::HfFolder { dir } => load_hf(&dir, &so.target, &so.build, options),
        ResolvedModel::Onnx { path } => load_optimum(&path, &so.target, options),
        ResolvedModel::OpenAi { .. } => Err(Error::Unsupported(format!(
            "model {spec}: a served model is reached over HTTP, not run in-process"
        ))),
    }
}

/// See [`super::load_model`].
pub fn load_model(spec: &str, options: &LoadOptions) -> Result<Arc<dyn LanguageModel>> {
    Ok(Arc::new(load_ort(spec, options)?))
}

/// Generation stops on the tokenizer's end tokens too (end-of-turn markers such
/// as `<|endoftext|>` that the weights' metadata may not list).
fn with_tokenizer_eos(mut info: decoder::GraphInfo, tokenizer: &Tokenizer) -> decoder::GraphInfo {
    for id in tokenizer.eos_ids() {
        if !info.eos_token_ids.contains(id) {
            info.eos_token_ids.push(*id);
        }
    }
    info
}

/// Builds (or reuses) the graph of an in-memory model and opens its session:
/// for callers that edited the weights first (transform chains). `native`: the
/// GGUF's own blocks for projections the edits left untouched.
pub fn open_model(
    model: crate::model::Model,
    native: Option<&NativeWeights>,
    tokenizer: Tokenizer,
    chat: ChatTemplate,
    target: &str,
    build: &BuildOptions,
    options: &LoadOptions,
) -> Result<OrtModel> {
    let key = model.cache_key();
    let (dir, info) = decoder::build_cached_with(&model, build, native)?;
    drop(model);
    let info = with_tokenizer_eos(info, &tokenizer);
    let session = DecoderSession::open(&dir, info, &session_options(options))?;
    Ok(OrtModel::new(
        session,
        tokenizer,
        chat,
        format!("{target}@{key}-{}", build.format.name()),
    ))
}
