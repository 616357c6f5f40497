//! `self-doubt`: the two-stage prompt of Peng et al. (2025), "Revisiting
//! Overthinking in Long Chain-of-Thought from the Perspective of Self-Doubt".
//!
//! Reasoning models spend many tokens re-verifying answers they already have,
//! in part because they defer to the question as given. The paper's prompt
//! first asks the model to question whether the input question is valid
//! (well-posed, consistent, complete), and then to answer concisely based on
//! that check; it reports shorter answers and higher accuracy on four
//! reasoning models. Both stages are instructions in one prompt, so a question
//! costs one generation. The wording is ours and lives in
//! `attacks/prompts/self-doubt.toml`; `file = "..."` names an edited copy.

use super::{PromptTransform, builtin_or_file};
use crate::data::prompt::PromptTemplate;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfDoubtConfig {
    /// A template file to use instead of the built-in wording.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl PromptTransform for SelfDoubtConfig {
    fn template(&self) -> Result<PromptTemplate> {
        builtin_or_file("self-doubt", self.file.as_deref())
    }
    fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
    fn set_file(&mut self, path: PathBuf) {
        self.file = Some(path);
    }
}
