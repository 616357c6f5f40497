//! `mscr transform`: apply a chain of compression transforms to a model and
//! write the result as a model folder with its `record.json`.

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use mscr::model::Model;
use mscr::transform::{self, Calibration, TransformSpec};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Model to transform (a folder written by `mscr transform`; other specs once import is wired).
    #[arg(long)]
    model: String,
    /// KIND[:key=value,...], e.g. prune-heads:ratio=0.3 or low-rank:method=impact,rank=64,targets=gate+up+down.
    /// Repeat to chain (applied in order).
    #[arg(long = "transform", required = true)]
    transforms: Vec<String>,
    /// Calibration questions: a JSONL dataset file (question / problem fields).
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Number of calibration questions.
    #[arg(long, default_value_t = 32)]
    calibration_items: usize,
    /// Tokens kept per calibration question.
    #[arg(long, default_value_t = 256)]
    calibration_tokens: usize,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let specs = a
        .transforms
        .iter()
        .map(|t| TransformSpec::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let (model, tokenizer_files) = load_source(&a.model)?;
    let calib = match &a.calibration {
        None => Calibration::none(),
        Some(path) => {
            let texts = transform::calib::questions_from_jsonl(path, a.calibration_items)?;
            let tok_path = Path::new(&a.model).join("tokenizer.json");
            let tok = tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| {
                anyhow::anyhow!(
                    "{}: cannot load the tokenizer for calibration: {e}",
                    tok_path.display()
                )
            })?;
            Calibration::from_texts(&texts, a.calibration_tokens, |t| {
                tok.encode(t, true)
                    .map(|e| e.get_ids().to_vec())
                    .map_err(|e| mscr::Error::Other(format!("tokenizer: {e}")))
            })?
        }
    };
    let mut current = model;
    let mut records = Vec::new();
    for spec in &specs {
        let bar = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("applying {}", spec.kind()));
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        let (next, rec) = spec.build()?.apply(&current, &calib)?;
        bar.finish_and_clear();
        eprintln!(
            "{}: parameters {} → {}, FLOPs/token {} → {}",
            rec.kind,
            rec.params_before,
            rec.params_after,
            rec.flops_per_token_before,
            rec.flops_per_token_after
        );
        current = next;
        records.push(rec);
    }
    transform::save_transformed(&current, &records, &tokenizer_files, &a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!("wrote {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}

/// (file name, bytes) pairs copied into the output folder.
type Files = Vec<(String, Vec<u8>)>;

/// The model to transform plus the tokenizer files to copy beside it.
fn load_source(spec: &str) -> anyhow::Result<(Model, Files)> {
    let dir = Path::new(spec);
    if dir.join(transform::RECORD_FILE).is_file() {
        let model = transform::load_transformed(dir)?;
        let mut files = Vec::new();
        for name in [
            "tokenizer.json",
            "tokenizer_config.json",
            "generation_config.json",
        ] {
            let p = dir.join(name);
            if p.is_file() {
                files.push((
                    name.to_string(),
                    std::fs::read(&p).with_context(|| p.display().to_string())?,
                ));
            }
        }
        return Ok((model, files));
    }
    // WIRE: resolve aliases / .gguf / HF folders through crate::model::spec into a
    // `Model` (and its tokenizer.json / tokenizer_config.json bytes) once import is on main.
    bail!(
        "model {spec}: only folders written by `mscr transform` can be transformed until model import is wired in"
    )
}
