//! The MSCR attack: words and protected spans, candidate sources, filters,
//! search strategies and the goal.
//!
//! ```text
//! question ─► words (protected spans) ─► sources (embedding | wordnet | mlm)
//!          ─► filters ─► search (single-word | greedy | random) ─► goal ─► AttackRecord
//! ```
//!
//! Callers build a [`Resources`] of already-loaded parts (or call
//! [`resources::load_resources`]), an [`AttackConfig`] from TOML, and an
//! [`Attacker`].

pub mod attacker;
pub mod candidates;
pub mod config;
pub mod embedding;
pub mod filters;
pub mod goal;
pub mod output;
pub mod record;
pub mod resources;
pub mod search;
pub mod sources;
pub mod summary;
pub mod tagger;
pub mod wordnet;
pub mod words;

pub use attacker::{Attacker, Prepared};
pub use candidates::{CandidateReport, candidates_report};
pub use config::AttackConfig;
pub use embedding::EmbeddingIndex;
pub use record::{AttackRecord, Change, JudgeVerdict, Outcome};
pub use resources::load_resources;
pub use summary::Summary;
pub use wordnet::WordNet;

use crate::lm::{LanguageModel, MaskFiller, SentenceEmbedder};
use std::sync::Arc;

/// The already-built parts an attack uses. Only `model` is needed to attack;
/// `mscr candidates` works without it.
#[derive(Clone, Default)]
pub struct Resources {
    /// The attacked model.
    pub model: Option<Arc<dyn LanguageModel>>,
    /// Whole-word vocabulary entries + normalised input-embedding rows of the attacked model.
    pub embeddings: Option<Arc<EmbeddingIndex>>,
    pub wordnet: Option<Arc<WordNet>>,
    pub mask_filler: Option<Arc<dyn MaskFiller>>,
    pub embedder: Option<Arc<dyn SentenceEmbedder>>,
    /// Optional second model confirming the gold answer still holds.
    pub judge: Option<Arc<dyn LanguageModel>>,
    /// The causal LM the `fluency` filter scores questions with.
    pub fluency: Option<Arc<dyn LanguageModel>>,
}

impl Resources {
    /// Resources with the attacked model only; set the other fields as needed.
    pub fn with_model(model: Arc<dyn LanguageModel>) -> Self {
        Resources {
            model: Some(model),
            ..Resources::default()
        }
    }
}

/// Labels copied into every record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    pub dataset: String,
    pub model: String,
    /// The transform chain (`identity` when none).
    pub transform: String,
}

impl Labels {
    /// Labels for the model as it is (no transform).
    pub fn identity(dataset: &str, model: &str) -> Self {
        Labels {
            dataset: dataset.into(),
            model: model.into(),
            transform: "identity".into(),
        }
    }
}
