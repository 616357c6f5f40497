//! `mscr eval`: accuracy of a model on a benchmark.

use anyhow::Context;
use mscr::campaign::{TransformChain, exec};
use mscr::eval;
use mscr::lm::Decoding;
use mscr::runtime::LoadOptions;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Model spec: an alias, a .gguf path, a Hugging Face folder, an .onnx path,
    /// or openai:http://HOST:PORT/v1#MODEL.
    #[arg(long)]
    model: String,
    #[command(flatten)]
    data: super::dataset::DatasetArgs,
    /// Output directory for summary.json and items.jsonl.
    #[arg(long, default_value = "runs/eval")]
    out: PathBuf,
    /// Replace an earlier run's summary.json/items.jsonl in --out (refused otherwise).
    #[arg(long)]
    force: bool,
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
    /// Evaluate under a transform, `KIND[:key=value,...]`; repeat for a chain:
    /// weight transforms (prune-heads, low-rank, lora, toplora, loreft, brep), then at most one prompt
    /// transform (self-doubt, cot, ...), then at most one decoding transform
    /// (self-consistency, best-of-n, pass@k, sample). E.g.
    /// `--transform self-consistency:n=5,temperature=0.7`.
    #[arg(long = "transform")]
    transforms: Vec<String>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let decoding = Decoding {
        max_new_tokens: a.max_tokens,
        ..Decoding::default()
    };
    decoding.validate("eval")?;
    super::refuse_overwrite(
        &[a.out.join("summary.json"), a.out.join("items.jsonl")],
        a.force,
    )?;
    let mut dataset_spec = a.data.spec()?;
    dataset_spec.options.limit = a.data.limit;
    let dataset = dataset_spec.load()?;
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
    // Checked before the (slow) model load.
    let prompt = a.data.prompt(dataset.style, chain.as_ref())?;
    let (model, prompt, answerer) = match &chain {
        None => (mscr::runtime::load_model(&a.model, &load)?, prompt, None),
        Some(c) => (
            exec::load_transformed_on(&a.model, c, &load)?,
            exec::step_prompt(c)?.unwrap_or(prompt),
            exec::step_answerer(c, &load)?,
        ),
    };
    let options = eval::EvalOptions {
        prompt,
        decoding,
        batch_size: a.batch_size,
        progress: true,
        answerer,
        transform: chain.map(|c| c.name),
        limit: a.data.limit,
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
        s.mean_response_tokens,
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
