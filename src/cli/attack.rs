//! `mscr attack`: attack a model on a dataset and write records and a summary.

use anyhow::Context;
use mscr::attack::config::{DEFAULT_MSCR_TOML, RANDOM_TOML};
use mscr::attack::output::OutputPaths;
use mscr::attack::record::{write_csv, write_jsonl};
use mscr::attack::{AttackConfig, AttackRecord};
use mscr::campaign::{AttackSource, AttackSpec, CampaignRun, CampaignSpec, TransformChain};
use mscr::lm::Decoding;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Model spec (alias, .gguf, Hugging Face folder, .onnx, openai:URL#MODEL).
    #[arg(long)]
    model: String,
    #[command(flatten)]
    data: super::dataset::DatasetArgs,
    /// Attack configuration (default: attacks/mscr.toml, built in).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Also run the random-replacement baseline (attacks/random.toml) for comparison.
    #[arg(long)]
    baseline: bool,
    /// Output folder: summary.json (the campaign schema: one cell, two with
    /// --baseline), the report, records.jsonl/.csv and campaign.sqlite.
    #[arg(long)]
    out: PathBuf,
    /// Continue a folder that already holds results; finished questions are not repeated.
    #[arg(long)]
    resume: bool,
    /// Most new tokens per answer.
    #[arg(long = "max-tokens", alias = "max-new-tokens", default_value_t = 384)]
    max_tokens: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Intra-op threads (0 = ONNX Runtime's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Attack the model under a transform, `KIND[:key=value,...]`; repeat for
    /// a chain (weight steps, then one prompt, then one decoding transform),
    /// as `mscr eval --transform` takes it.
    #[arg(long = "transform")]
    transforms: Vec<String>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    // The attack is a one-cell campaign (two with --baseline): the same
    // store, resume, Ctrl-C handling and summary.json as `mscr campaign run`.
    // Named as a campaign names an `[[attacks]] config = FILE` entry: by the
    // file's stem, so the same attack has the same name in both.
    let (config_name, source) = match &a.config {
        Some(p) => {
            AttackConfig::from_file(p)?;
            (
                p.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "attack".into()),
                AttackSource::File(p.clone()),
            )
        }
        None => (
            AttackConfig::default_mscr().name,
            AttackSource::Inline(DEFAULT_MSCR_TOML.into()),
        ),
    };
    let mut attacks = vec![AttackSpec {
        name: config_name,
        baseline: false,
        source,
    }];
    if a.baseline {
        attacks.push(AttackSpec {
            name: AttackConfig::random_baseline().name,
            baseline: true,
            source: AttackSource::Inline(RANDOM_TOML.into()),
        });
    }
    let chain = if a.transforms.is_empty() {
        TransformChain::identity()
    } else {
        TransformChain::from_cli(&a.transforms)?
    };
    // The same dataset and prompt options as `mscr eval`, built by the same code.
    let dataset = a.data.spec()?;
    let style = dataset.load()?.style;
    let prompt = a.data.prompt(style, Some(&chain))?;
    let decoding = Decoding {
        max_new_tokens: a.max_tokens,
        ..Decoding::default()
    };
    decoding.validate("attack")?;
    let spec = CampaignSpec {
        name: format!("attack {} on {}", a.model, a.data.dataset),
        models: vec![a.model.clone()],
        transforms: vec![chain],
        datasets: vec![dataset],
        attacks,
        limit: a.data.limit,
        shuffle: false,
        seed: 0,
        decoding,
        prompt,
        out: a.out.clone(),
        threads: a.threads,
        device: Default::default(),
        base_dir: PathBuf::from("."),
    };
    let r = mscr::campaign::run_spec_to_end(
        &spec,
        &CampaignRun {
            spec: PathBuf::new(),
            out: Some(a.out.clone()),
            resume: a.resume,
            shard: None,
            progress: true,
            device: Some(
                a.device
                    .parse()
                    .with_context(|| format!("--device {}", a.device))?,
            ),
        },
    )?;
    // Written even for a run stopped part-way: it then says what is missing.
    let report = mscr::report::write_report(&a.out);
    if let Some(e) = r.error {
        if report.is_ok() {
            eprintln!(
                "the partial report in {} says which questions are missing",
                a.out.display()
            );
        }
        return Err(e.into());
    }
    report?;
    let records = write_records(&a.out)?;
    let summary = mscr::report::CampaignSummary::from_file(&a.out.join("summary.json"))?;
    for c in &summary.cells {
        let s = &c.summary;
        println!(
            "{}: clean accuracy {:.1}%, attacked accuracy {:.1}%, success rate {:.1}% \
             ({} successes, {} failures, {} skipped of {} questions), {:.1} queries per success, \
             response tokens {:.0}",
            c.cell,
            100.0 * s.clean_accuracy,
            100.0 * s.attacked_accuracy,
            100.0 * s.success_rate,
            s.successes,
            s.failures,
            s.skipped,
            s.questions,
            s.queries_per_success,
            s.mean_response_tokens
        );
    }
    eprintln!(
        "{} questions run, {} already done; wrote {}, {} and the report (summary.json, report.html) in {}",
        r.stats.ran,
        r.stats.resumed,
        records.jsonl.display(),
        records.csv.display(),
        a.out.display()
    );
    if r.stats.interrupted {
        eprintln!(
            "interrupted: summary.json and the report mark this run partial; continue with --resume"
        );
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// `records.jsonl` and `records.csv` (every cell's records, the attack's
/// first), as `mscr attack` has always written them beside the report.
fn write_records(dir: &Path) -> anyhow::Result<OutputPaths> {
    let store = mscr::campaign::Store::open_existing(dir)?;
    let mut all: Vec<AttackRecord> = Vec::new();
    for c in store.cells()? {
        all.extend(store.records(&c.key)?);
    }
    let paths = OutputPaths {
        jsonl: dir.join("records.jsonl"),
        csv: dir.join("records.csv"),
        summary: dir.join("summary.json"),
    };
    let create = |p: &Path| -> anyhow::Result<_> {
        Ok(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        ))
    };
    write_jsonl(create(&paths.jsonl)?, &all)?;
    write_csv(create(&paths.csv)?, &all)?;
    Ok(paths)
}
