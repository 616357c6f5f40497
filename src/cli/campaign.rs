//! `mscr campaign run|merge`.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Run a campaign spec (models × transforms × datasets × attacks) and write its report.
    Run {
        /// The campaign spec (TOML), e.g. attacks/quickstart.toml.
        spec: PathBuf,
        /// Output folder (overrides the spec's `out`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue a folder that already holds results; finished questions are not repeated.
        #[arg(long)]
        resume: bool,
        /// Run only shard I of N (1-based), e.g. `--shard 2/4`; merge shards with `campaign merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Do not write the report at the end.
        #[arg(long)]
        no_report: bool,
        /// cpu, cuda or cuda:N: where in-process models run.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Intra-op threads for in-process models (overrides the spec's `threads`; 0 = ONNX Runtime's default).
        #[arg(long)]
        threads: Option<usize>,
        /// Only the first N questions of each dataset (overrides the spec's
        /// `limit`; a resumed run must give the same).
        #[arg(long, value_parser = super::parse_limit)]
        limit: Option<usize>,
    },
    /// Combine the folders of sharded runs into one folder and report it.
    Merge {
        /// Campaign output folders (each holds campaign.sqlite).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    match a.command {
        Sub::Run {
            spec,
            out,
            resume,
            shard,
            no_report,
            device,
            threads,
            limit,
        } => {
            let shard = shard.map(|s| s.parse()).transpose()?;
            let mut parsed = mscr::campaign::CampaignSpec::from_file(&spec)?;
            if let Some(t) = threads {
                // Not part of what --resume compares: results do not depend on it.
                parsed.threads = t;
            }
            if limit.is_some() {
                parsed.limit = limit;
            }
            let r = mscr::campaign::run_spec_to_end(
                &parsed,
                &mscr::campaign::CampaignRun {
                    spec,
                    out,
                    resume,
                    shard,
                    progress: true,
                    device: Some(
                        device
                            .parse()
                            .map_err(|e| anyhow::anyhow!("--device {device}: {e}"))?,
                    ),
                },
            )?;
            // A run stopped part-way (Ctrl-C, an error) is reported too: its
            // summary.json and report say it is partial and what is missing.
            let report = if no_report {
                None
            } else {
                Some(mscr::report::write_report(&r.out))
            };
            if let Some(e) = r.error {
                match report {
                    Some(Err(re)) => eprintln!("error: writing the partial report: {re}"),
                    Some(Ok(_)) => eprintln!(
                        "the partial report in {} says which questions are missing",
                        r.out.display()
                    ),
                    None => {}
                }
                return Err(e.into());
            }
            eprintln!(
                "{} questions run, {} already done; results in {}",
                r.stats.ran,
                r.stats.resumed,
                r.out.display()
            );
            if let Some(report) = report {
                report?;
            }
            if r.stats.interrupted {
                eprintln!(
                    "interrupted: summary.json and the report mark this run partial; continue with --resume"
                );
                return Ok(ExitCode::from(130));
            }
            Ok(ExitCode::SUCCESS)
        }
        Sub::Merge { dirs, out } => {
            let s = mscr::campaign::merge(&dirs, &out)?;
            mscr::report::write_report(&out)?;
            eprintln!(
                "merged {} records ({} identical duplicates) and {} cached generations into {}",
                s.records,
                s.duplicates,
                s.generations,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
