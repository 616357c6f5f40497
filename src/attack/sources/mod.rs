//! Candidate sources: where replacement words come from. Each source is one
//! file and one arm of [`SourceConfig`] (`kind = "embedding" | "wordnet" | "mlm"`).

pub mod embedding;
pub mod mlm;
pub mod wordnet;

use super::Resources;
use super::words::{Word, match_case};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One word a source proposes for a position (lower case, not yet re-cased).
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    pub text: String,
    /// Source-specific strength: cosine (embedding), probability (mlm), sense rank (wordnet).
    pub score: f32,
}

/// Proposes replacements for words of a question.
pub trait CandidateSource: Send + Sync {
    /// The tag recorded with each candidate: `embedding`, `wordnet`, `mlm`.
    fn name(&self) -> &'static str;

    /// For each target (an index into `words`), proposals best first. All
    /// targets of a question come in one call so sources can batch.
    fn propose(
        &self,
        question: &str,
        words: &[Word],
        targets: &[usize],
    ) -> Result<Vec<Vec<Proposal>>>;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SourceConfig {
    Embedding(embedding::EmbeddingSourceConfig),
    Wordnet(wordnet::WordnetSourceConfig),
    Mlm(mlm::MlmSourceConfig),
}

impl SourceConfig {
    pub fn name(&self) -> &'static str {
        match self {
            SourceConfig::Embedding(_) => "embedding",
            SourceConfig::Wordnet(_) => "wordnet",
            SourceConfig::Mlm(_) => "mlm",
        }
    }

    /// Builds the source from loaded resources; a readable error names the missing part.
    pub fn build(&self, resources: &Resources) -> Result<Box<dyn CandidateSource>> {
        match self {
            SourceConfig::Embedding(c) => c.build(resources),
            SourceConfig::Wordnet(c) => c.build(resources),
            SourceConfig::Mlm(c) => c.build(resources),
        }
    }
}

/// A replacement for one word, merged over sources by surface form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The replacement with the original's capitalisation.
    pub text: String,
    /// Every source that proposed it, in configuration order.
    pub sources: Vec<String>,
    /// Each source's score for it.
    pub scores: BTreeMap<String, f32>,
}

/// Asks every source for every target and merges proposals by lower-case
/// surface form, keeping the order of first proposal (sources in config order).
pub fn gather(
    sources: &[Box<dyn CandidateSource>],
    question: &str,
    words: &[Word],
    targets: &[usize],
) -> Result<Vec<Vec<Candidate>>> {
    let mut merged: Vec<Vec<Candidate>> = vec![Vec::new(); targets.len()];
    for source in sources {
        let proposals = source.propose(question, words, targets)?;
        for (slot, props) in merged.iter_mut().zip(proposals) {
            merge_into(slot, source.name(), props);
        }
    }
    for (slot, &t) in merged.iter_mut().zip(targets) {
        for c in slot.iter_mut() {
            c.text = match_case(&words[t].text, &c.text);
        }
    }
    Ok(merged)
}

/// Adds one source's proposals to a slot, merging equal surface forms.
pub fn merge_into(slot: &mut Vec<Candidate>, source: &str, proposals: Vec<Proposal>) {
    for p in proposals {
        let key = p.text.to_lowercase();
        match slot.iter_mut().find(|c| c.text.to_lowercase() == key) {
            Some(c) => {
                if !c.sources.iter().any(|s| s == source) {
                    c.sources.push(source.to_string());
                }
                c.scores.entry(source.to_string()).or_insert(p.score);
            }
            None => slot.push(Candidate {
                text: key,
                sources: vec![source.to_string()],
                scores: BTreeMap::from([(source.to_string(), p.score)]),
            }),
        }
    }
}
