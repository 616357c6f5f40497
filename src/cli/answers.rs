//! `mscr answers judge`: the answer checker on JSONL pairs.

use anyhow::{Context, bail};
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Judge JSONL lines {"gold": ..., "output": ...} (the model's text in
    /// "output", as eval's items.jsonl and generate write it; "prediction" and
    /// "completion" are read too); writes each line back with "extracted" and
    /// "equivalent" added.
    Judge {
        /// Which answer style to use: gsm8k, math500, asdiv, svamp or mawps.
        #[arg(long)]
        dataset: String,
        /// Input JSONL file (`-` for stdin).
        #[arg(long)]
        input: PathBuf,
        /// Output JSONL file (default: stdout; `-` for stdout).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Skip malformed lines (counted) instead of stopping at the first.
        #[arg(long)]
        skip_invalid: bool,
    },
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let Sub::Judge {
        dataset,
        input,
        output,
        skip_invalid,
    } = a.command;
    let Some(mapping) = mscr::data::dataset::builtin_split(&dataset)
        .and_then(|(name, _)| mscr::data::dataset::builtin_mapping(name))
    else {
        bail!(
            "unknown dataset `{dataset}`: use one of {}",
            mscr::data::dataset::BUILTIN_SPECS.join(", ")
        );
    };
    let reader: Box<dyn std::io::BufRead> = if input.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(&input)
            .with_context(|| format!("cannot open {}", input.display()))?;
        Box::new(BufReader::new(f))
    };
    let writer: Box<dyn Write> = match output.as_ref().filter(|p| p.as_os_str() != "-") {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let stats =
        mscr::score::judge::judge_jsonl_opts(reader, writer, mapping.style, &input, skip_invalid)?;
    eprintln!(
        "judged {} lines: {} equivalent, {} without an extractable answer",
        stats.lines, stats.equivalent, stats.not_extracted
    );
    if stats.skipped > 0 {
        eprintln!("skipped {} malformed lines (--skip-invalid)", stats.skipped);
    }
    Ok(ExitCode::SUCCESS)
}
