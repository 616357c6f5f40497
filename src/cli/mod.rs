//! Subcommands. Each file parses its own arguments and calls into the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod campaign;
mod gate;
mod report;
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
    /// Run campaigns (models × transforms × datasets × attacks) and merge shards.
    Campaign(campaign::Args),
    /// Write the report of a campaign folder.
    Report(report::Args),
    /// Compare two summary.json files and fail on a robustness regression (CI).
    Gate(gate::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(a) => setup::run(a),
        Command::Campaign(a) => campaign::run(a),
        Command::Report(a) => report::run(a),
        Command::Gate(a) => gate::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
