//! Subcommands. Each file parses its own arguments and calls into the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod attack;
mod candidates;
mod setup;

#[derive(Parser)]
#[command(name = "mscr", version, about = "Adversarial robustness evaluation of math-reasoning language models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch the ONNX Runtime library, WordNet, the default models and data into the cache.
    Setup(setup::Args),
    /// Attack a model on a dataset (MSCR) and write records and a summary.
    Attack(attack::Args),
    /// Show a text's words, their candidates and each filter's verdict.
    Candidates(candidates::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(a) => setup::run(a),
        Command::Attack(a) => attack::run(a),
        Command::Candidates(a) => candidates::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
