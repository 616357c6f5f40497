//! `concise`: asks for only the essential steps (`attacks/prompts/concise.toml`),
//! the length-only half of `self-doubt` without its validity check.

use super::{PromptTransform, builtin_or_file};
use crate::data::prompt::PromptTemplate;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConciseConfig {
    /// A template file to use instead of the built-in wording.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl PromptTransform for ConciseConfig {
    fn template(&self) -> Result<PromptTemplate> {
        builtin_or_file("concise", self.file.as_deref())
    }
    fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
    fn set_file(&mut self, path: PathBuf) {
        self.file = Some(path);
    }
}
