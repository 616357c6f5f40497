//! `mscr gate`: exit 0 within bounds, 1 on a regression, 2 on bad input.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// summary.json of the reference run.
    #[arg(long)]
    baseline: PathBuf,
    /// summary.json of the run under test.
    #[arg(long)]
    current: PathBuf,
    /// Largest allowed rise in attack success rate, as a fraction (0.05 = 5 points).
    #[arg(long, default_value_t = 0.05)]
    max_asr_increase: f64,
    /// Largest allowed fall in clean accuracy, as a fraction.
    #[arg(long, default_value_t = 0.05)]
    max_clean_drop: f64,
    /// Smallest allowed accuracy under attack, as a fraction.
    #[arg(long)]
    min_robust_accuracy: Option<f64>,
    /// Also write the checks as JUnit XML.
    #[arg(long)]
    junit: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let bounds = mscr::report::gate::GateBounds {
        max_asr_increase: a.max_asr_increase,
        max_clean_drop: a.max_clean_drop,
        min_robust_accuracy: a.min_robust_accuracy,
    };
    let r = mscr::report::gate::run(&a.baseline, &a.current, &bounds, a.junit.as_deref())?;
    print!("{}", r.table());
    let failed = r.checks.iter().filter(|c| !c.passed).count();
    if failed == 0 {
        println!("gate passed: {} checks within bounds", r.checks.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "gate FAILED: {failed} of {} checks regressed",
            r.checks.len()
        );
        Ok(ExitCode::from(1))
    }
}
