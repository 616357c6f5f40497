//! Prompt templates: how a question becomes a model prompt.

use crate::error::{Error, Result};
use crate::lm::Prompt;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Built-in templates, embedded from `attacks/prompts/` (users copy and edit those).
const BUILTIN: &[(&str, &str)] = &[
    ("cot", include_str!("../../attacks/prompts/cot.toml")),
    ("boxed", include_str!("../../attacks/prompts/boxed.toml")),
    ("plain", include_str!("../../attacks/prompts/plain.toml")),
    (
        "gsm8k-8shot",
        include_str!("../../attacks/prompts/gsm8k-8shot.toml"),
    ),
    (
        "self-doubt",
        include_str!("../../attacks/prompts/self-doubt.toml"),
    ),
    (
        "concise",
        include_str!("../../attacks/prompts/concise.toml"),
    ),
];

/// A prompt template. `user` holds `{question}` where the question goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

    /// The names [`PromptTemplate::named`] knows besides file paths. Each also
    /// comes as `NAME-chat` and `NAME-plain` (chat template on or off).
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// A built-in template by name (`cot`, `boxed`, `plain`, `gsm8k-8shot`,
    /// `self-doubt`, `concise`, with
    /// an optional `-chat`/`-plain` suffix), or a TOML template file's path.
    pub fn named(name: &str) -> Result<PromptTemplate> {
        let path = Path::new(name);
        if path.is_file() {
            return Self::from_file(path);
        }
        let (base, chat) = match name {
            n if n.ends_with("-chat") => (&n[..n.len() - 5], Some(true)),
            n if n.ends_with("-plain") => (&n[..n.len() - 6], Some(false)),
            n => (n, None),
        };
        let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == base) else {
            return Err(Error::Config(format!(
                "prompt `{name}`: not a file and not a built-in template ({}; add -chat or -plain to switch the form)",
                Self::builtin_names().join(", ")
            )));
        };
        let mut t = Self::from_toml(text, Path::new(base))?;
        if let Some(c) = chat {
            t.chat = c;
            t.name = name.to_string();
        }
        Ok(t)
    }

    /// The template `--prompt NAME` selects, or without it the default for
    /// the dataset's answer style: `cot` for numeric answers, `boxed` for
    /// LaTeX ones (MATH500). `mscr eval` and `mscr attack` both choose so.
    pub fn named_or_default(
        name: Option<&str>,
        style: crate::score::AnswerStyle,
    ) -> Result<PromptTemplate> {
        match name {
            Some(n) => Self::named(n),
            None => Self::named(match style {
                crate::score::AnswerStyle::Latex => "boxed",
                crate::score::AnswerStyle::Numeric => "cot",
            }),
        }
    }

    /// Loads a template from a TOML file (`name`, `user`, optional `system`, `chat`).
    pub fn from_file(path: &Path) -> Result<PromptTemplate> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text, path)
    }

    fn from_toml(text: &str, path: &Path) -> Result<PromptTemplate> {
        let t: PromptTemplate = toml::from_str(text)
            .map_err(|e| Error::file(path, format!("invalid prompt template: {e}")))?;
        if !t.user.contains("{question}") {
            return Err(Error::file(
                path,
                "the `user` text has no `{question}` placeholder",
            ));
        }
        Ok(t)
    }

    /// Stop strings that end a plain-completion answer before the model starts
    /// writing the next few-shot question.
    pub fn stop_strings(&self) -> Vec<String> {
        if self.chat {
            return Vec::new();
        }
        ["\n\nQ:", "\nQ:", "\n\nQuestion:"]
            .iter()
            .map(|s| s.to_string())
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load_and_render() {
        for name in PromptTemplate::builtin_names() {
            let t = PromptTemplate::named(name).unwrap();
            assert!(t.user.contains("{question}"), "{name}");
        }
        let cot = PromptTemplate::named("cot").unwrap();
        assert_eq!(cot, PromptTemplate::zero_shot_cot());
        let shots = PromptTemplate::named("gsm8k-8shot").unwrap();
        assert!(!shots.chat);
        assert_eq!(shots.user.matches("The answer is").count(), 8);
        match shots.render("How many?") {
            Prompt::Text { text } => assert!(text.ends_with("Q: How many?\nA:")),
            other => panic!("expected text prompt, got {other:?}"),
        }
        let chat = PromptTemplate::named("gsm8k-8shot-chat").unwrap();
        assert!(matches!(chat.render("x"), Prompt::Chat { .. }));
        let boxed = PromptTemplate::named("boxed-plain").unwrap();
        assert!(!boxed.chat && boxed.user.contains("\\boxed{}"));
        assert!(PromptTemplate::named("nope").is_err());
    }

    #[test]
    fn template_files() {
        let dir = std::env::temp_dir().join(format!("mscr-prompt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("mine.toml");
        std::fs::write(
            &good,
            "name = \"mine\"\nsystem = \"Be brief.\"\nuser = \"Q: {question}\"\n",
        )
        .unwrap();
        let t = PromptTemplate::named(good.to_str().unwrap()).unwrap();
        assert_eq!(t.system.as_deref(), Some("Be brief."));
        assert!(t.chat);
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "name = \"x\"\nuser = \"no placeholder\"\n").unwrap();
        let e = PromptTemplate::named(bad.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.toml") && e.contains("{question}"), "{e}");
        let typo = dir.join("typo.toml");
        std::fs::write(&typo, "name = \"x\"\nuser = \"{question}\"\nchta = true\n").unwrap();
        assert!(PromptTemplate::named(typo.to_str().unwrap()).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
