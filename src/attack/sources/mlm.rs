//! `kind = "mlm"`: a masked LM's fillers for the word's position, the rest of
//! the question as context.

use super::{CandidateSource, Proposal};
use crate::attack::words::apply_replacements;
use crate::attack::{Resources, words::Word};
use crate::error::{Error, Result};
use crate::lm::MaskFiller;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlmSourceConfig {
    /// Predictions asked per position (TextAttack's BAE/BERT-Attack use 50).
    pub k: usize,
    /// Lowest probability kept.
    pub min_prob: f32,
    /// The masked LM: an alias or a BERT-family folder. The default is the tiny
    /// model the setup installs; for real campaigns use `bert-base-uncased`.
    pub model: String,
}

impl Default for MlmSourceConfig {
    fn default() -> Self {
        MlmSourceConfig {
            k: 30,
            min_prob: 0.005,
            model: "bert-tiny-mlm".into(),
        }
    }
}

impl MlmSourceConfig {
    pub fn build(&self, r: &Resources) -> Result<Box<dyn CandidateSource>> {
        let filler = r.mask_filler.clone().ok_or_else(|| {
            Error::Config(
                "source `mlm` needs a masked LM, which was not loaded; remove the source or configure one".into(),
            )
        })?;
        Ok(Box::new(MlmSource {
            filler,
            config: self.clone(),
        }))
    }
}

pub struct MlmSource {
    pub filler: Arc<dyn MaskFiller>,
    pub config: MlmSourceConfig,
}

/// A filler usable as a word: letters (and inner hyphens) only, two or more.
fn is_whole_word(s: &str) -> bool {
    s.chars().count() >= 2
        && s.chars().all(|c| c.is_alphabetic() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl CandidateSource for MlmSource {
    fn name(&self) -> &'static str {
        "mlm"
    }

    fn propose(
        &self,
        question: &str,
        words: &[Word],
        targets: &[usize],
    ) -> Result<Vec<Vec<Proposal>>> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let mask = self.filler.mask_token().to_string();
        let texts: Vec<String> = targets
            .iter()
            .map(|&t| apply_replacements(question, words, &[(t, mask.as_str())]))
            .collect();
        let fills = self.filler.fill(&texts, self.config.k)?;
        if fills.len() != texts.len() {
            return Err(Error::Runtime(format!(
                "masked LM returned {} answers for {} texts",
                fills.len(),
                texts.len()
            )));
        }
        Ok(fills
            .into_iter()
            .zip(targets)
            .map(|(fill, &t)| {
                let original = words[t].text.to_lowercase();
                fill.into_iter()
                    .map(|(w, p)| (w.trim().to_lowercase(), p))
                    .filter(|(w, p)| {
                        *p >= self.config.min_prob && is_whole_word(w) && *w != original
                    })
                    .map(|(text, score)| Proposal { text, score })
                    .collect()
            })
            .collect())
    }
}
