//! Prompt templates: how a question becomes a model prompt.

use crate::runtime::Prompt;
use serde::{Deserialize, Serialize};

/// A prompt template. `user` holds `{question}` where the question goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromptTemplate {
    pub name: String,
    /// System message for chat prompts.
    #[serde(default)]
    pub system: Option<String>,
    pub user: String,
    /// Render through the model's chat template (true) or as plain text.
    #[serde(default = "yes")]
    pub chat: bool,
}

fn yes() -> bool {
    true
}

impl PromptTemplate {
    /// Zero-shot chain of thought with an answer-format instruction.
    pub fn zero_shot_cot() -> Self {
        PromptTemplate {
            name: "cot".into(),
            system: None,
            user: "{question}\nSolve step by step and end with 'The answer is N.'".into(),
            chat: true,
        }
    }

    pub fn render(&self, question: &str) -> Prompt {
        let text = self.user.replace("{question}", question);
        if self.chat {
            Prompt::user(self.system.as_deref(), text)
        } else {
            Prompt::text(text)
        }
    }
}
