//! `mscr candidates`: show every word of a text, its candidates and each filter's verdict.

use anyhow::Context;
use mscr::attack::resources::{drop_unavailable, load_parts};
use mscr::attack::{AttackConfig, candidates_report};
use mscr::runtime::LoadOptions;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The text (a question) to analyse.
    #[arg(long)]
    text: String,
    /// Model whose embedding matrix the `embedding` source uses.
    #[arg(long)]
    model: Option<String>,
    /// Comma-separated sources to use (default: those in the config).
    #[arg(long, value_delimiter = ',')]
    sources: Vec<String>,
    /// Attack configuration (default: attacks/mscr.toml, built in).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// cpu, cuda or cuda:N: where the sources' and filters' models run.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Intra-op threads (0 = ONNX Runtime's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut config = match &a.config {
        Some(p) => AttackConfig::from_file(p)?,
        None => AttackConfig::default_mscr(),
    };
    if !a.sources.is_empty() {
        config.restrict_sources(&a.sources)?;
    }
    let options = LoadOptions {
        device: a
            .device
            .parse()
            .with_context(|| format!("--device {}", a.device))?,
        threads: a.threads,
    };
    let (resources, notes) = load_parts(a.model.as_deref(), &config, &options, true)
        .context("loading what the candidate sources and filters need")?;
    for n in &notes {
        eprintln!("note: {n}");
    }
    let dropped = drop_unavailable(&mut config, &resources);
    if !dropped.is_empty() {
        eprintln!("note: left out {}", dropped.join(", "));
    }
    if config.sources.is_empty() {
        anyhow::bail!("no candidate source could be loaded; try --sources wordnet");
    }
    let report = candidates_report(&a.text, &resources, &config)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(ExitCode::SUCCESS)
}
