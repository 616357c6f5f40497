//! `kind = "embedding"`: nearest neighbours in the attacked model's input embeddings.

use super::{CandidateSource, Proposal};
use crate::attack::embedding::EmbeddingIndex;
use crate::attack::{Resources, words::Word};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingSourceConfig {
    /// Neighbours per word.
    pub k: usize,
    /// Lowest cosine kept (TextAttack's WordSwapEmbedding uses 0.5 on counter-fitted vectors).
    pub min_cosine: f32,
    /// Model whose input embeddings give the candidates; default: the
    /// attacked model. Set it for HTTP-served models (no local matrix), e.g.
    /// a local GGUF of the same family.
    pub model: Option<String>,
}

impl Default for EmbeddingSourceConfig {
    fn default() -> Self {
        EmbeddingSourceConfig {
            k: 30,
            min_cosine: 0.3,
            model: None,
        }
    }
}

impl EmbeddingSourceConfig {
    pub fn build(&self, r: &Resources) -> Result<Box<dyn CandidateSource>> {
        let index = r.embeddings.clone().ok_or_else(|| {
            Error::Config(
                "source `embedding` needs the model's embedding matrix, which was not loaded; \
                 remove the source or load a model with embeddings"
                    .into(),
            )
        })?;
        Ok(Box::new(EmbeddingSource {
            index,
            config: self.clone(),
        }))
    }
}

pub struct EmbeddingSource {
    pub index: Arc<EmbeddingIndex>,
    pub config: EmbeddingSourceConfig,
}

impl CandidateSource for EmbeddingSource {
    fn name(&self) -> &'static str {
        "embedding"
    }

    fn propose(
        &self,
        _question: &str,
        words: &[Word],
        targets: &[usize],
    ) -> Result<Vec<Vec<Proposal>>> {
        let words: Vec<&str> = targets.iter().map(|&t| words[t].text.as_str()).collect();
        Ok(self
            .index
            .neighbours_many(&words, self.config.k, self.config.min_cosine)
            .into_iter()
            .map(|n| {
                n.into_iter()
                    .map(|(text, score)| Proposal {
                        text: text.to_lowercase(),
                        score,
                    })
                    .collect()
            })
            .collect())
    }
}
