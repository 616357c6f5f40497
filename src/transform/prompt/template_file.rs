//! `prompt-template`: a prompt template file of the user's (`name`, `user`
//! with `{question}`, optional `system` and `chat`, as in `attacks/prompts/`).

use super::PromptTransform;
use crate::data::prompt::PromptTemplate;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptTemplateConfig {
    /// The template file (in a campaign: relative to the spec file).
    pub file: PathBuf,
}

impl PromptTransform for PromptTemplateConfig {
    fn template(&self) -> Result<PromptTemplate> {
        PromptTemplate::from_file(&self.file)
    }
    fn file(&self) -> Option<&Path> {
        Some(&self.file)
    }
    fn set_file(&mut self, path: PathBuf) {
        self.file = path;
    }
}
