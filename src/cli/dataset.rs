//! The dataset and prompt options `mscr eval` and `mscr attack` share: one
//! definition, so both spell and mean them alike.

use mscr::campaign::TransformChain;
use mscr::data::{self, DatasetSpec, prompt::PromptTemplate};
use mscr::score::AnswerStyle;
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug)]
pub struct DatasetArgs {
    /// gsm8k, gsm8k-train, math500, asdiv, svamp, mawps, a JSONL/CSV path, or a
    /// URL (with --sha256).
    #[arg(long)]
    pub dataset: String,
    /// Only the first N questions.
    #[arg(long, value_parser = super::parse_limit)]
    pub limit: Option<usize>,
    /// Built-in format (gsm8k, math500, asdiv, svamp, mawps) of a dataset file
    /// whose name does not say it.
    #[arg(long)]
    pub format: Option<String>,
    /// A TOML field mapping for any JSONL/CSV file: `question = "question"`,
    /// `answer = "answer"`, optional `answer_format`, `id`, `meta`, `style`
    /// (see the README).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Skip malformed dataset lines (counted) instead of failing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Pinned sha256 of a URL dataset.
    #[arg(long)]
    pub sha256: Option<String>,
    /// Prompt template: cot, boxed, plain, gsm8k-8shot (add -chat/-plain), or a
    /// TOML file. Default: cot for numeric datasets, boxed for MATH500.
    #[arg(long)]
    pub prompt: Option<String>,
}

impl DatasetArgs {
    /// The dataset with its options (`--limit` left to the caller: a campaign
    /// selects its questions itself).
    pub fn spec(&self) -> anyhow::Result<DatasetSpec> {
        Ok(DatasetSpec {
            spec: self.dataset.clone(),
            options: data::LoadOptions {
                skip_invalid: self.skip_invalid,
                format: self.format.clone(),
                sha256: self.sha256.clone(),
                mapping: self
                    .mapping
                    .as_deref()
                    .map(data::FieldMapping::from_file)
                    .transpose()?,
                ..Default::default()
            },
        })
    }

    /// The prompt template: `--prompt`, or the default for the answer style.
    /// A transform chain with a prompt step sets the prompt itself, so
    /// `--prompt` beside one is refused rather than ignored.
    pub fn prompt(
        &self,
        style: AnswerStyle,
        chain: Option<&TransformChain>,
    ) -> anyhow::Result<PromptTemplate> {
        if let (Some(p), Some(step)) = (&self.prompt, chain.and_then(|c| c.prompt_step())) {
            anyhow::bail!(
                "--prompt {p} and the prompt transform `{}` both set the prompt; drop --prompt, \
                 or drop the prompt transform",
                step.kind()
            );
        }
        Ok(PromptTemplate::named_or_default(
            self.prompt.as_deref(),
            style,
        )?)
    }
}
