//! `mscr report DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// A campaign output folder (holds campaign.sqlite).
    dir: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let r = mscr::report::write_report(&a.dir)?;
    eprintln!(
        "wrote {} files; open {}",
        r.files.len(),
        r.dir.join("report.html").display()
    );
    Ok(ExitCode::SUCCESS)
}
