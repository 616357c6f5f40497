use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Also fetch the CUDA build of ONNX Runtime (onnxruntime-gpu).
    #[arg(long)]
    cuda: bool,
    /// Do not install WordNet.
    #[arg(long)]
    skip_wordnet: bool,
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    mscr::setup::run(&mscr::setup::SetupOptions {
        cuda: a.cuda,
        skip_wordnet: a.skip_wordnet,
        quiet: a.quiet,
    })?;
    eprintln!("setup complete: {}", mscr::paths::home().display());
    Ok(ExitCode::SUCCESS)
}
