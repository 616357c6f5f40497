//! The attack configuration, read from TOML (`attacks/mscr.toml` holds the defaults).

use super::filters::FilterConfig;
use super::search::SearchConfig;
use super::sources::SourceConfig;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The shipped default attack (`attacks/mscr.toml`).
pub const DEFAULT_MSCR_TOML: &str = include_str!("../../attacks/mscr.toml");
/// The shipped random-replacement baseline (`attacks/random.toml`).
pub const RANDOM_TOML: &str = include_str!("../../attacks/random.toml");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackConfig {
    /// Name recorded in every `AttackRecord.attack` (`mscr`, `random`, ...).
    pub name: String,
    /// Seed of every random choice (ChaCha); same seed + config = same result.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub budget: Budget,
    #[serde(default)]
    pub words: WordsConfig,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
    pub search: SearchConfig,
    #[serde(default)]
    pub judge: Option<JudgeConfig>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Budget {
    /// Generations per question, the clean one included; under a decoding
    /// transform every sample is one.
    pub max_queries: usize,
    /// Perturbed questions generated together in one step (one `generate` batch).
    pub batch: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_queries: 40,
            batch: 8,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WordsConfig {
    /// Use the shipped English stopword list (`attacks/stopwords.txt`).
    pub default_stopwords: bool,
    /// A stopword file (one word a line) read in addition.
    pub stopwords_file: Option<std::path::PathBuf>,
    /// More stopwords.
    pub extra_stopwords: Vec<String>,
}

impl Default for WordsConfig {
    fn default() -> Self {
        WordsConfig {
            default_stopwords: true,
            stopwords_file: None,
            extra_stopwords: Vec::new(),
        }
    }
}

impl WordsConfig {
    pub fn stopwords(&self) -> Result<super::words::Stopwords> {
        let mut s = if self.default_stopwords {
            super::words::Stopwords::default_english()
        } else {
            super::words::Stopwords::default()
        };
        if let Some(p) = &self.stopwords_file {
            let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
            s.extend(super::words::Stopwords::parse(&text).iter());
        }
        s.extend(&self.extra_stopwords);
        Ok(s)
    }
}

/// MSCR's second stage: a judge model asked, for every success, whether
/// the perturbed question is the same problem with the same answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// Any model spec `load_model` accepts (an alias, a file, `openai:URL#MODEL`).
    pub model: String,
    #[serde(default = "judge_tokens")]
    pub max_new_tokens: usize,
    /// Leave successes the judge rejects out of the success rate (they are
    /// still stored and reported as `judge_rejected`).
    #[serde(default)]
    pub exclude_rejected: bool,
}

fn judge_tokens() -> usize {
    16
}

impl AttackConfig {
    pub fn from_toml_str(s: &str, origin: &str) -> Result<Self> {
        let c: AttackConfig = toml::from_str(s)
            .map_err(|e| Error::Config(format!("{origin}: {}", e.to_string().trim_end())))?;
        c.validate(origin)?;
        Ok(c)
    }

    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// The shipped defaults, `attacks/mscr.toml`.
    pub fn default_mscr() -> Self {
        Self::from_toml_str(DEFAULT_MSCR_TOML, "attacks/mscr.toml")
            .expect("attacks/mscr.toml is valid (checked by tests)")
    }

    /// The shipped random baseline, `attacks/random.toml`.
    pub fn random_baseline() -> Self {
        Self::from_toml_str(RANDOM_TOML, "attacks/random.toml")
            .expect("attacks/random.toml is valid (checked by tests)")
    }

    fn validate(&self, origin: &str) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::Config(format!("{origin}: `name` must not be empty")));
        }
        if self.budget.max_queries < 2 {
            return Err(Error::Config(format!(
                "{origin}: budget.max_queries must be at least 2 (the clean generation plus one attack)"
            )));
        }
        if self.budget.batch == 0 {
            return Err(Error::Config(format!(
                "{origin}: budget.batch must be at least 1"
            )));
        }
        if self.sources.is_empty() {
            return Err(Error::Config(format!(
                "{origin}: no candidate source; add a [[sources]] table with kind = \"wordnet\", \"embedding\" or \"mlm\""
            )));
        }
        for f in &self.filters {
            f.validate(origin)?;
        }
        Ok(())
    }

    /// Keeps only the sources named (for `--sources`); errors on unknown names.
    pub fn restrict_sources(&mut self, names: &[String]) -> Result<()> {
        for n in names {
            if !self.sources.iter().any(|s| s.name() == n) {
                let have: Vec<&str> = self.sources.iter().map(|s| s.name()).collect();
                return Err(Error::Config(format!(
                    "source `{n}` is not configured (configured: {}); use embedding, wordnet or mlm",
                    have.join(", ")
                )));
            }
        }
        self.sources.retain(|s| names.iter().any(|n| n == s.name()));
        Ok(())
    }

    /// Most words one perturbed question may change (the `max-words` filter; 1 without it).
    pub fn max_words(&self) -> usize {
        self.filters
            .iter()
            .find_map(|f| match f {
                FilterConfig::MaxWords { max } => Some(*max),
                _ => None,
            })
            .unwrap_or(1)
    }

    /// Largest share of attackable words that may change (the `max-rate` filter).
    pub fn max_rate(&self) -> Option<f32> {
        self.filters.iter().find_map(|f| match f {
            FilterConfig::MaxRate { max } => Some(*max),
            _ => None,
        })
    }
}
