//! Prompt transforms: the prompt a question is asked with, chosen per
//! transform chain instead of the campaign's `prompt`. One file per transform,
//! one arm of [`crate::transform::TransformSpec`]:
//!
//! - `self-doubt` ([`self_doubt`]): first question the question's validity, then answer concisely;
//! - `cot` ([`cot`]): plain step-by-step reasoning;
//! - `concise` ([`concise`]): only the essential steps;
//! - `prompt-template` ([`template_file`]): a template file of the user's.
//!
//! The wording of the built-in ones lives in `attacks/prompts/*.toml` (embedded
//! at build time); every one takes `file = "..."` to use an edited copy instead.

pub mod concise;
pub mod cot;
pub mod self_doubt;
pub mod template_file;

pub use concise::ConciseConfig;
pub use cot::CotConfig;
pub use self_doubt::SelfDoubtConfig;
pub use template_file::PromptTemplateConfig;

use crate::data::prompt::PromptTemplate;
use crate::error::Result;
use std::path::{Path, PathBuf};

/// A transform that decides how a question is put to the model.
pub trait PromptTransform {
    /// The template the question is asked with.
    fn template(&self) -> Result<PromptTemplate>;

    /// The template file the settings name, if any (a campaign resolves it
    /// against the spec's folder and checks it before any work).
    fn file(&self) -> Option<&Path>;

    /// Points the file setting at `path` (a campaign resolves relative paths).
    fn set_file(&mut self, path: PathBuf);
}

/// The built-in template `name`, or the file when one is given.
fn builtin_or_file(name: &str, file: Option<&Path>) -> Result<PromptTemplate> {
    match file {
        Some(f) => PromptTemplate::from_file(f),
        None => PromptTemplate::named(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::Prompt;

    #[test]
    fn built_in_prompt_transforms_render_the_question() {
        let q = "Sam has 3 apples and buys 2. How many apples does he have?";
        let transforms: Vec<Box<dyn PromptTransform>> = vec![
            Box::new(SelfDoubtConfig::default()),
            Box::new(CotConfig::default()),
            Box::new(ConciseConfig::default()),
        ];
        for t in transforms {
            let tpl = t.template().unwrap();
            let Prompt::Chat { messages } = tpl.render(q) else {
                panic!("{}: expected a chat prompt", tpl.name)
            };
            let user = &messages.last().unwrap().content;
            assert!(user.contains(q), "{}", tpl.name);
            // Every built-in asks for the form the answer checker reads first.
            assert!(user.contains("The answer is N"), "{}", tpl.name);
        }
        let sd = SelfDoubtConfig::default().template().unwrap();
        assert_eq!(sd.name, "self-doubt");
        assert!(sd.user.to_lowercase().contains("valid"), "{}", sd.user);
    }

    #[test]
    fn a_file_replaces_the_wording() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("mine.toml");
        std::fs::write(
            &f,
            "name = \"mine\"\nuser = \"Q: {question}\\nA:\"\nchat = false\n",
        )
        .unwrap();
        let mut sd = SelfDoubtConfig::default();
        sd.set_file(f.clone());
        assert_eq!(sd.template().unwrap().name, "mine");
        let t = PromptTemplateConfig { file: f };
        assert!(!t.template().unwrap().chat);
        let missing = PromptTemplateConfig {
            file: dir.path().join("nope.toml"),
        };
        let e = missing.template().unwrap_err().to_string();
        assert!(e.contains("nope.toml"), "{e}");
    }
}
