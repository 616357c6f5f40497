//! Subcommands. Each file parses its own arguments and calls into the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod serve;
mod setup;

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
    /// Serve a model over an OpenAI-compatible HTTP API.
    Serve(serve::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(a) => setup::run(a),
        Command::Serve(a) => serve::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
