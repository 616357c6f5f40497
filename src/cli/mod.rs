//! Subcommands. Each file parses its own arguments and calls into the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
    /// Compress a model (head pruning, low-rank) and write it with its record.
    Transform(transform::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(a) => setup::run(a),
        Command::Transform(a) => transform::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
