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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub wordnet: bool,
    pub embeddings: bool,
    pub mask_filler: bool,
    pub embedder: bool,
    /// The `fluency` filter's scoring model (its spec).
    pub fluency: Option<String>,
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
                FilterConfig::SamePos
                | FilterConfig::Differs
                | FilterConfig::PosTag
                | FilterConfig::Dictionary
                | FilterConfig::Inflection
                | FilterConfig::Synonym { .. } => {
                    n.wordnet = true;
                    // The in-context evidence reads MiniLM's token states.
                    if let FilterConfig::Synonym {
                        min_context_cosine,
                        min_wordnet_context_cosine,
                        ..
                    } = f
                        && (min_context_cosine.is_some() || min_wordnet_context_cosine.is_some())
                    {
                        n.embedder = true;
                    }
                }
                FilterConfig::Fluency { model, .. } => {
                    n.fluency = Some(
                        model
                            .clone()
                            .unwrap_or_else(|| crate::model::spec::DEFAULT_MODEL.into()),
                    )
                }
                FilterConfig::WordSimilarity { .. } => n.embeddings = true,
                FilterConfig::SentenceSimilarity { .. } => n.embedder = true,
                _ => {}
            }
        }
        n
    }
}

/// Loads everything `config` needs for attacking `model_spec`; any part that
/// cannot be loaded is an error.
pub fn load_resources(
    model_spec: &str,
    config: &AttackConfig,
    options: &LoadOptions,
) -> Result<Resources> {
    let model = load_model(model_spec, options)?;
    resources_around(model_spec, model, config, options)
}

/// The attack's parts around an already loaded model (a transformed one, or
/// a campaign's cached one); `model_spec` names the model whose embeddings the
/// `embedding` source uses.
pub fn resources_around(
    model_spec: &str,
    model: std::sync::Arc<dyn crate::lm::LanguageModel>,
    config: &AttackConfig,
    options: &LoadOptions,
) -> Result<Resources> {
    let (mut r, _) = load_parts(Some(model_spec), config, options, false)?;
    r.model = Some(model);
    if let Some(j) = &config.judge {
        r.judge = Some(load_model(&j.model, options)?);
    }
    Ok(r)
}

/// Loads the candidate-side parts only (no generation model), for `mscr
/// candidates`; `model_spec` names the model whose embeddings the `embedding`
/// source uses. With `lenient`, a part that cannot be loaded is left out and
/// the reason returned as a note (see [`drop_unavailable`]).
pub fn load_parts(
    model_spec: Option<&str>,
    config: &AttackConfig,
    options: &LoadOptions,
    lenient: bool,
) -> Result<(Resources, Vec<String>)> {
    let needs = Needs::of(config);
    let mut r = Resources::default();
    let mut notes = Vec::new();
    let mut soft = |res: Result<()>| -> Result<()> {
        match res {
            Err(e) if lenient => {
                notes.push(e.to_string());
                Ok(())
            }
            other => other,
        }
    };
    if needs.wordnet {
        r.wordnet = Some(Arc::new(WordNet::load_default()?));
    }
    if needs.embeddings {
        // The `embedding` source may name its own model (for HTTP-served targets).
        let own = config.sources.iter().find_map(|s| match s {
            SourceConfig::Embedding(c) => c.model.clone(),
            _ => None,
        });
        soft(match own.as_deref().or(model_spec) {
            None => Err(Error::Config(
                "the `embedding` source needs --model (its embedding matrix is the candidate space)".into(),
            )),
            Some(spec) => load_embedding_index(spec).map(|e| r.embeddings = Some(Arc::new(e))),
        })?;
    }
    if needs.mask_filler {
        let name = config
            .sources
            .iter()
            .find_map(|s| match s {
                SourceConfig::Mlm(c) => Some(c.model.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "bert-tiny-mlm".into());
        soft(encoder_path(&name).and_then(|p| {
            let m = crate::runtime::encoder::MaskedLm::load(&p, options)?;
            r.mask_filler = Some(Arc::new(m));
            Ok(())
        }))?;
    }
    if let Some(spec) = &needs.fluency {
        soft(load_model(spec, options).map(|m| r.fluency = Some(m)))?;
    }
    if needs.embedder {
        soft(encoder_path("all-minilm-l6-v2").and_then(|p| {
            let m = crate::runtime::encoder::SentenceEncoder::load(&p, options)?;
            r.embedder = Some(Arc::new(m));
            Ok(())
        }))?;
    }
    Ok((r, notes))
}

/// Removes the sources and filters whose part is missing from `resources`;
/// returns what was removed, for a note to the user.
pub fn drop_unavailable(config: &mut AttackConfig, resources: &Resources) -> Vec<String> {
    let mut dropped = Vec::new();
    config.sources.retain(|s| {
        let ok = match s {
            SourceConfig::Wordnet(_) => resources.wordnet.is_some(),
            SourceConfig::Embedding(_) => resources.embeddings.is_some(),
            SourceConfig::Mlm(_) => resources.mask_filler.is_some(),
        };
        if !ok {
            dropped.push(format!("source `{}`", s.name()));
        }
        ok
    });
    // Without the encoder `synonym` keeps its WordNet evidence (stricter),
    // rather than the whole filter going.
    if resources.embedder.is_none() {
        for f in config.filters.iter_mut() {
            if let FilterConfig::Synonym {
                min_context_cosine,
                min_wordnet_context_cosine,
                ..
            } = f
                && (min_context_cosine.is_some() || min_wordnet_context_cosine.is_some())
            {
                *min_context_cosine = None;
                *min_wordnet_context_cosine = None;
                dropped.push("the synonym filter's in-context evidence".into());
            }
        }
    }
    config.filters.retain(|f| {
        let ok = match f {
            FilterConfig::SamePos
            | FilterConfig::PosTag
            | FilterConfig::Dictionary
            | FilterConfig::Inflection
            | FilterConfig::Synonym { .. } => resources.wordnet.is_some(),
            FilterConfig::Fluency { .. } => resources.fluency.is_some(),
            FilterConfig::WordSimilarity { .. } => resources.embeddings.is_some(),
            FilterConfig::SentenceSimilarity { .. } => resources.embedder.is_some(),
            _ => true,
        };
        if !ok {
            dropped.push(format!("filter `{}`", f.name()));
        }
        ok
    });
    dropped
}

/// The attacked model's own input embeddings over its whole-word vocabulary.
fn load_embedding_index(spec: &str) -> Result<super::EmbeddingIndex> {
    let target = spec.split('?').next().unwrap_or(spec);
    let resolved = crate::model::spec::resolve(target)?;
    let (matrix, tokenizer) = crate::model::spec::load_embeddings(&resolved)?;
    super::EmbeddingIndex::new(tokenizer.vocab(), matrix)
}

/// Local folder (or `.onnx` file) of an encoder named by alias or path.
fn encoder_path(name: &str) -> Result<std::path::PathBuf> {
    use crate::model::spec::ResolvedModel;
    match crate::model::spec::resolve(name)? {
        ResolvedModel::HfFolder { dir } => Ok(dir),
        ResolvedModel::Onnx { path } => Ok(path),
        other => Err(Error::Config(format!(
            "encoder {name}: expected a BERT-family folder or .onnx file, got a {} model",
            other.kind()
        ))),
    }
}
