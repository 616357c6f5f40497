//! The `mscr` command line: argument parsing only; each subcommand calls the library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
