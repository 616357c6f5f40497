//! `mscr eval`: accuracy of a model on a benchmark.

use anyhow::Context;
use mscr::campaign::{TransformChain, exec};
use mscr::data::{self, prompt::PromptTemplate};
use mscr::eval;
use mscr::lm::Decoding;
use mscr::runtime::LoadOptions;
use mscr::score::AnswerStyle;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Model spec: an alias, a .gguf path, a Hugging Face folder, an .onnx path,
    /// or openai:http://HOST:PORT/v1#MODEL.
    #[arg(long)]
    model: String,
    /// gsm8k, math500, asdiv, svamp, mawps, a JSONL/CSV path, or a URL (with --sha256).
    #[arg(long)]
    dataset: String,
    /// Evaluate only the first N items.
    #[arg(long, value_parser = super::parse_limit)]
    limit: Option<usize>,
    /// Prompt template: cot, boxed, plain, gsm8k-8shot (add -chat/-plain), or a
    /// TOML file. Default: cot for numeric datasets, boxed for MATH500.
    #[arg(long)]
    prompt: Option<String>,
    /// Output directory for summary.json and items.jsonl.
    #[arg(long, default_value = "runs/eval")]
    out: PathBuf,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Intra-op threads (0 = ONNX Runtime's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Most new tokens per answer.
    #[arg(long, default_value_t = 384)]
    max_tokens: usize,
    /// Prompts per generation batch.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Skip malformed dataset lines (counted in the summary) instead of failing.
    #[arg(long)]
    skip_invalid: bool,
    /// Pinned sha256 of a URL dataset.
    #[arg(long)]
    sha256: Option<String>,
    /// Built-in format of a dataset file whose name does not say it.
    #[arg(long)]
    format: Option<String>,
    /// A TOML field mapping for any JSONL/CSV file (question, answer, id, ...).
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// Evaluate under a transform, `KIND[:key=value,...]`; repeat for a chain:
    /// weight transforms (prune-heads, low-rank, lora), then at most one prompt
    /// transform (self-doubt, cot, ...), then at most one decoding transform
    /// (self-consistency, best-of-n, pass@k, sample). E.g.
    /// `--transform self-consistency:n=5,temperature=0.7`.
    #[arg(long = "transform")]
    transforms: Vec<String>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let opts = data::LoadOptions {
        skip_invalid: a.skip_invalid,
        limit: a.limit,
        format: a.format.clone(),
        sha256: a.sha256.clone(),
        mapping: a
            .mapping
            .as_deref()
            .map(data::FieldMapping::from_file)
            .transpose()?,
        ..Default::default()
    };
    let dataset = data::load(&a.dataset, &opts)?;
    let prompt_name = a.prompt.clone().unwrap_or_else(|| {
        match dataset.style {
            AnswerStyle::Latex => "boxed",
            AnswerStyle::Numeric => "cot",
        }
        .to_string()
    });
    let device = a
        .device
        .parse()
        .with_context(|| format!("--device {}", a.device))?;
    let load = LoadOptions {
        device,
        threads: a.threads,
    };
    let chain = (!a.transforms.is_empty())
        .then(|| TransformChain::from_cli(&a.transforms))
        .transpose()?;
    let (model, prompt, answerer) = match &chain {
        None => (
            mscr::runtime::load_model(&a.model, &load)?,
            PromptTemplate::named(&prompt_name)?,
            None,
        ),
        Some(c) => (
            exec::load_transformed_on(&a.model, c, &load)?,
            match exec::step_prompt(c)? {
                Some(p) => p,
                None => PromptTemplate::named(&prompt_name)?,
            },
            exec::step_answerer(c, &load)?,
        ),
    };
    let options = eval::EvalOptions {
        prompt,
        decoding: Decoding {
            max_new_tokens: a.max_tokens,
            ..Decoding::default()
        },
        batch_size: a.batch_size,
        progress: true,
        answerer,
        transform: chain.map(|c| c.name),
        limit: a.limit,
        model_spec: Some(a.model.clone()),
    };
    let s = eval::evaluate_to_dir(model.as_ref(), &dataset, &options, &a.out)?;
    println!(
        "{} on {} ({} items, prompt {}): accuracy {:.1}% [95% CI {:.1}–{:.1}], extraction failures {:.1}%, response tokens mean {:.0} / median {:.0}",
        s.model,
        s.dataset,
        s.overall.n,
        s.prompt,
        100.0 * s.overall.accuracy,
        100.0 * s.overall.ci_low,
        100.0 * s.overall.ci_high,
        100.0 * s.extraction_failure_rate,
        s.mean_tokens,
        s.median_tokens
    );
    if let Some(st) = &s.strict {
        println!(
            "  strict match only (#### N / The answer is N): {:.1}% [95% CI {:.1}–{:.1}]",
            100.0 * st.accuracy,
            100.0 * st.ci_low,
            100.0 * st.ci_high
        );
    }
    for (title, groups) in [("subject", &s.by_subject), ("level", &s.by_level)] {
        for (k, g) in groups {
            println!(
                "  {title} {k}: {}/{} ({:.1}%)",
                g.correct,
                g.n,
                100.0 * g.accuracy
            );
        }
    }
    if s.skipped_lines > 0 {
        println!("  skipped {} malformed dataset lines", s.skipped_lines);
    }
    if let (Some(t), Some(credit)) = (&s.transform, s.mean_credit) {
        println!(
            "  under {}: mean credit {:.1}% (pass@k where it applies), tokens per question {:.0} over all samples",
            mscr::campaign::spec::display_label(t),
            100.0 * credit,
            s.tokens_per_question.unwrap_or(0.0)
        );
    }
    if s.max_tokens_hits > 0 {
        eprintln!(
            "warning: {} of {} answers stopped at --max-tokens {} (finish_reason \"length\" in items.jsonl) \
             and may be cut off before their final answer; raise --max-tokens",
            s.max_tokens_hits, s.overall.n, a.max_tokens
        );
    }
    println!("wrote {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
