//! `kind = "wordnet"`: WordNet 3.0 synonyms, re-inflected to the original's
//! form, for the part of speech the tagger gives the word in its sentence
//! (every part of speech when the tagger does not know the word). Whether a
//! synonym's sense fits is the `synonym` filter's call.

use super::{CandidateSource, Proposal};
use crate::attack::wordnet::WordNet;
use crate::attack::{Resources, words::Word};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WordnetSourceConfig {
    /// Most synonyms per word (best-known senses first).
    pub max: usize,
    /// Keep multi-word lemmas (`take_off` → `take off`).
    pub multiword: bool,
}

impl Default for WordnetSourceConfig {
    fn default() -> Self {
        WordnetSourceConfig {
            max: 30,
            multiword: false,
        }
    }
}

impl WordnetSourceConfig {
    pub fn build(&self, r: &Resources) -> Result<Box<dyn CandidateSource>> {
        let wordnet = r.wordnet.clone().ok_or_else(|| {
            Error::Config(
                "source `wordnet` needs WordNet, which was not loaded; run `mscr setup`".into(),
            )
        })?;
        Ok(Box::new(WordnetSource {
            wordnet,
            config: self.clone(),
        }))
    }
}

pub struct WordnetSource {
    pub wordnet: Arc<WordNet>,
    pub config: WordnetSourceConfig,
}

impl CandidateSource for WordnetSource {
    fn name(&self) -> &'static str {
        "wordnet"
    }

    fn propose(
        &self,
        question: &str,
        words: &[Word],
        targets: &[usize],
    ) -> Result<Vec<Vec<Proposal>>> {
        let tags = crate::attack::tagger::tag(&self.wordnet, question);
        Ok(targets
            .iter()
            .map(|&t| {
                let pos = crate::attack::tagger::tag_at(&tags, words[t].byte_start)
                    .and_then(crate::attack::tagger::wordnet_pos);
                self.wordnet
                    .synonyms_as(&words[t].text, pos, self.config.multiword)
                    .into_iter()
                    .take(self.config.max)
                    .enumerate()
                    .map(|(rank, s)| Proposal {
                        text: s.text,
                        // Rank as a score in (0, 1]: first sense first.
                        score: 1.0 / (1.0 + rank as f32),
                    })
                    .collect()
            })
            .collect())
    }
}
