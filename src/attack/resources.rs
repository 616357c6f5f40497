//! Loading what an attack needs, for the CLI: the attacked model, its
//! embedding matrix, WordNet, the masked LM, the sentence encoder and the judge.

use super::Resources;
use super::config::AttackConfig;
use super::filters::FilterConfig;
use super::sources::SourceConfig;
use super::wordnet::WordNet;
use crate::error::{Error, Result};
use crate::runtime::{LoadOptions, load_model};
use std::sync::Arc;

/// What the configuration asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub wordnet: bool,
    pub embeddings: bool,
    pub mask_filler: bool,
    pub embedder: bool,
}

impl Needs {
    pub fn of(config: &AttackConfig) -> Needs {
        let mut n = Needs::default();
        for s in &config.sources {
            match s {
                SourceConfig::Wordnet(_) => n.wordnet = true,
                SourceConfig::Embedding(_) => n.embeddings = true,
                SourceConfig::Mlm(_) => n.mask_filler = true,
            }
        }
        for f in &config.filters {
            match f {
                FilterConfig::SamePos | FilterConfig::Differs => n.wordnet = true,
                FilterConfig::WordSimilarity { .. } => n.embeddings = true,
                FilterConfig::SentenceSimilarity { .. } => n.embedder = true,
                _ => {}
            }
        }
        n
    }
}

/// Loads everything `config` needs for attacking `model_spec`.
pub fn load_resources(model_spec: &str, config: &AttackConfig, options: &LoadOptions) -> Result<Resources> {
    let model = load_model(model_spec, options)?;
    let mut r = load_parts(Some(model_spec), config, options)?;
    r.model = Some(model);
    if let Some(j) = &config.judge {
        r.judge = Some(load_model(&j.model, options)?);
    }
    Ok(r)
}

/// Loads the candidate-side parts only (no generation model), for `mscr
/// candidates`; `model_spec` names the model whose embeddings the `embedding`
/// source uses.
pub fn load_parts(model_spec: Option<&str>, config: &AttackConfig, options: &LoadOptions) -> Result<Resources> {
    let _ = options;
    let needs = Needs::of(config);
    let mut r = Resources::default();
    if needs.wordnet {
        r.wordnet = Some(Arc::new(WordNet::load_default()?));
    }
    if needs.embeddings {
        let spec = model_spec.ok_or_else(|| {
            Error::Config("the `embedding` source needs --model (its embedding matrix is the candidate space)".into())
        })?;
        // WIRE: import the model's tokenizer vocabulary (decoded surface forms,
        // `Tokenizer::vocab()`) and input-embedding matrix (`gguf::load_embeddings`)
        // and build `EmbeddingIndex::new(vocab, matrix)`.
        return Err(Error::Unsupported(format!(
            "model {spec}: loading embedding matrices is not wired yet; use --sources wordnet"
        )));
    }
    if needs.mask_filler {
        // WIRE: load the masked LM (`crate::runtime::encoder::MaskedLm`, default
        // models/bert-tiny-mlm) into `r.mask_filler`.
        return Err(Error::Unsupported(
            "the `mlm` source: loading a masked LM is not wired yet; remove it from --sources".into(),
        ));
    }
    if needs.embedder {
        // WIRE: load the sentence encoder (`crate::runtime::encoder::SentenceEncoder`,
        // default models/all-minilm-l6-v2) into `r.embedder`.
        return Err(Error::Unsupported(
            "the `sentence-similarity` filter: loading the sentence encoder is not wired yet".into(),
        ));
    }
    Ok(r)
}
