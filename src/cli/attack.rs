//! `mscr attack`: attack a model on a dataset and write records and a summary.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use mscr::attack::resources::resources_around;
use mscr::attack::{
    AttackConfig, AttackRecord, Attacker, Labels, Outcome, load_resources, output::write_outputs,
};
use mscr::campaign::{TransformChain, exec};
use mscr::data::Item;
use mscr::data::prompt::PromptTemplate;
use mscr::lm::Decoding;
use mscr::runtime::LoadOptions;
use mscr::score::AnswerStyle;
use mscr::transform::decode::Answerer;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Model spec (alias, .gguf, Hugging Face folder, .onnx, openai:URL#MODEL).
    #[arg(long)]
    model: String,
    /// Dataset name (gsm8k, math500, asdiv, ...).
    #[arg(long)]
    dataset: String,
    /// Attack only the first N questions.
    #[arg(long)]
    limit: Option<usize>,
    /// Attack configuration (default: attacks/mscr.toml, built in).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Also run the random-replacement baseline (attacks/random.toml) for comparison.
    #[arg(long)]
    baseline: bool,
    /// Output folder for records.jsonl, records.csv and summary.json.
    #[arg(long)]
    out: PathBuf,
    /// Largest number of new tokens per generation.
    #[arg(long, default_value_t = 384)]
    max_new_tokens: usize,
    /// Intra-op threads (0 = ONNX Runtime's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Attack the model under a transform, `KIND[:key=value,...]`; repeat for
    /// a chain (weight steps, then one prompt, then one decoding transform),
    /// as `mscr eval --transform` takes it.
    #[arg(long = "transform")]
    transforms: Vec<String>,
}

fn load_items(dataset: &str, limit: Option<usize>) -> anyhow::Result<(Vec<Item>, AnswerStyle)> {
    let ds = mscr::data::load(dataset, &Default::default())?;
    let mut items = ds.items;
    if let Some(n) = limit {
        items.truncate(n);
    }
    Ok((items, ds.style))
}

fn run_one(
    attacker: &Attacker,
    items: &[Item],
    style: AnswerStyle,
    labels: &Labels,
    decoding: &Decoding,
    prompt: &PromptTemplate,
) -> anyhow::Result<Vec<AttackRecord>> {
    let bar = ProgressBar::new(items.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(attacker.config().name.clone());
    let mut records = Vec::new();
    let mut wins = 0;
    // Clean generations go out in chunks so the bar moves during long runs.
    for chunk in items.chunks(16) {
        attacker.attack_many(chunk, style, prompt, decoding, labels, &mut |r| {
            if r.result == Outcome::Success {
                wins += 1;
            }
            bar.inc(1);
            bar.set_message(format!("{wins} successes"));
            records.push(r);
            Ok(())
        })?;
    }
    bar.finish();
    Ok(records)
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let config = match &a.config {
        Some(p) => AttackConfig::from_file(p)?,
        None => AttackConfig::default_mscr(),
    };
    let options = LoadOptions {
        threads: a.threads,
        ..LoadOptions::default()
    };
    let chain = (!a.transforms.is_empty())
        .then(|| TransformChain::from_cli(&a.transforms))
        .transpose()?;
    let (resources, prompt, answerer) = match &chain {
        None => (
            load_resources(&a.model, &config, &options).context("loading the attack's models")?,
            PromptTemplate::zero_shot_cot(),
            Answerer::plain(),
        ),
        Some(c) => {
            let model = exec::load_transformed_on(&a.model, c, &options)?;
            (
                resources_around(&a.model, model, &config, &options)
                    .context("loading the attack's models")?,
                exec::step_prompt(c)?.unwrap_or_else(PromptTemplate::zero_shot_cot),
                exec::step_answerer(c, &options)?.unwrap_or_default(),
            )
        }
    };
    let (items, style) = load_items(&a.dataset, a.limit)?;
    let labels = Labels {
        dataset: a.dataset.clone(),
        model: a.model.clone(),
        transform: chain.map_or_else(|| "identity".into(), |c| c.name),
    };
    let decoding = Decoding {
        max_new_tokens: a.max_new_tokens,
        ..Decoding::default()
    };
    let attacker = Attacker::new(config, resources.clone())?.with_answerer(answerer.clone());
    let records = run_one(&attacker, &items, style, &labels, &decoding, &prompt)?;
    let baseline = if a.baseline {
        let random =
            Attacker::new(AttackConfig::random_baseline(), resources)?.with_answerer(answerer);
        Some(run_one(
            &random, &items, style, &labels, &decoding, &prompt,
        )?)
    } else {
        None
    };
    let paths = write_outputs(&a.out, &records, baseline.as_deref())?;
    eprintln!(
        "wrote {}, {}, {}",
        paths.jsonl.display(),
        paths.csv.display(),
        paths.summary.display()
    );
    Ok(ExitCode::SUCCESS)
}
