//! `cot`: plain zero-shot chain of thought ("Solve step by step and end with
//! 'The answer is N.'", `attacks/prompts/cot.toml`) — the campaign default,
//! named as a transform so a chain can state it explicitly.

use super::{PromptTransform, builtin_or_file};
use crate::data::prompt::PromptTemplate;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CotConfig {
    /// A template file to use instead of the built-in wording.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl PromptTransform for CotConfig {
    fn template(&self) -> Result<PromptTemplate> {
        builtin_or_file("cot", self.file.as_deref())
    }
    fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
    fn set_file(&mut self, path: PathBuf) {
        self.file = Some(path);
    }
}
