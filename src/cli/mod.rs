//! Subcommands. Each file parses its own arguments and calls into the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod answers;
mod attack;
mod campaign;
mod candidates;
mod dataset;
mod eval;
mod gate;
mod generate;
mod models;
mod report;
mod serve;
mod setup;
mod transform;

#[derive(Parser)]
#[command(
    name = "mscr",
    version,
    about = "Adversarial robustness evaluation of math-reasoning language models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch the ONNX Runtime library, WordNet, the default models and data into the cache.
    Setup(setup::Args),
    /// Transform a model (head pruning, low-rank, a merged PEFT LoRA adapter) and write it with its record.
    Transform(transform::Args),
    /// Complete a prompt (or a JSONL file of prompts) with a model.
    Generate(generate::Args),
    /// Judge model answers against gold answers (the answer checker).
    Answers(answers::Args),
    /// Evaluate a model's accuracy on a benchmark.
    Eval(eval::Args),
    /// List model aliases or describe a model.
    Models(models::Args),
    /// Run campaigns (models × transforms × datasets × attacks) and merge shards.
    Campaign(campaign::Args),
    /// Write the report of a campaign folder.
    Report(report::Args),
    /// Compare two summary.json files and fail on a robustness regression (CI).
    Gate(gate::Args),
    /// Attack a model on a dataset (MSCR) and write records and a summary.
    Attack(attack::Args),
    /// Show a text's words, their candidates and each filter's verdict.
    Candidates(candidates::Args),
    /// Serve a model over an OpenAI-compatible HTTP API.
    Serve(serve::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(a) => setup::run(a),
        Command::Transform(a) => transform::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Answers(a) => answers::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Models(a) => models::run(a),
        Command::Campaign(a) => campaign::run(a),
        Command::Report(a) => report::run(a),
        Command::Gate(a) => gate::run(a),
        Command::Attack(a) => attack::run(a),
        Command::Candidates(a) => candidates::run(a),
        Command::Serve(a) => serve::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, each cause once: a message that
/// already quotes its cause (`I/O error on F: No such file ... (os error 2)`)
/// is not followed by the same words again.
/// Refuses to write over `files` (results of an earlier run) unless `force`:
/// the same rule as `transform --out` and campaigns' `--out`.
pub(crate) fn refuse_overwrite(files: &[std::path::PathBuf], force: bool) -> anyhow::Result<()> {
    match files.iter().find(|f| f.exists()) {
        Some(f) if !force => anyhow::bail!(
            "{} already exists (results of an earlier run?); choose another output, or pass \
             --force to replace it",
            f.display()
        ),
        _ => Ok(()),
    }
}

fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.contains(&c) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&c);
    }
    text
}

/// `--limit N`: a count of at least 1 (`--limit 0` would select nothing).
pub(crate) fn parse_limit(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("0 selects no questions: give N ≥ 1, or leave --limit out for all".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a count: give N ≥ 1")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_quoted_by_their_error_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file (os error 2)");
        let e = anyhow::Error::new(mscr::Error::io("/x/y.toml", io)).context("reading the spec");
        let t = super::error_text(&e);
        assert_eq!(t.matches("os error 2").count(), 1, "{t}");
        assert!(
            t.starts_with("reading the spec: I/O error on /x/y.toml"),
            "{t}"
        );
        assert!(super::parse_limit("0").unwrap_err().contains("≥ 1"));
        assert_eq!(super::parse_limit("3"), Ok(3));
    }
}
