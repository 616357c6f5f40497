//! `mscr transform`: apply a chain of compression transforms to a model and
//! write the result as a model folder with its `record.json`.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use mscr::model::tokenizer::Tokenizer;
use mscr::model::{Model, spec};
use mscr::transform::{self, Calibration, TransformSpec};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Model to transform: an alias, a .gguf file, a Hugging Face folder, or a folder written by `mscr transform`.
    #[arg(long)]
    model: String,
    /// KIND[:key=value,...], e.g. prune-heads:ratio=0.3, low-rank:method=impact,rank=64,targets=gate+up+down or lora:path=DIR (toplora, loreft and brep adapters are computed by the graph: they cannot be saved here).
    /// Repeat to chain (applied in order).
    #[arg(long = "transform", required = true)]
    transforms: Vec<String>,
    /// Calibration questions: a dataset spec as `--dataset` takes it (a
    /// built-in name such as gsm8k-train or asdiv, a JSONL/CSV file, a URL
    /// with --sha256). GSM8K *train* questions by default, never test questions
    /// a campaign attacks.
    #[arg(long, default_value = "gsm8k-train")]
    calibration: String,
    /// Built-in format of the calibration data (`gsm8k`, `math500`, ...), as in eval.
    #[arg(long)]
    format: Option<String>,
    /// Field mapping of the calibration data (TOML), as in eval.
    #[arg(long)]
    mapping: Option<std::path::PathBuf>,
    /// Skip malformed calibration lines instead of failing, as in eval.
    #[arg(long)]
    skip_invalid: bool,
    /// Pinned sha256 of a URL calibration dataset.
    #[arg(long)]
    sha256: Option<String>,
    /// Number of calibration questions.
    #[arg(long, default_value_t = 32)]
    calibration_items: usize,
    /// Tokens kept per calibration question.
    #[arg(long, default_value_t = 256)]
    calibration_tokens: usize,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Replace what --out already holds (refused otherwise).
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let specs = a
        .transforms
        .iter()
        // Weight transforms only: prompt and decoding kinds are refused here,
        // before the model is read, with a message saying where they belong.
        .map(|t| TransformSpec::parse(t).and_then(|s| s.build().map(|_| s)))
        .collect::<Result<Vec<_>, _>>()?;
    let occupied =
        a.out.is_file() || std::fs::read_dir(&a.out).is_ok_and(|mut d| d.next().is_some());
    if occupied && !a.force {
        anyhow::bail!(
            "{} already exists and is not empty (a model written earlier?); choose another --out, \
             or pass --force to replace it",
            a.out.display()
        );
    }
    let (model, tok, tokenizer_files) = load_source(&a.model)?;
    let opts = mscr::data::LoadOptions {
        sha256: a.sha256.clone(),
        format: a.format.clone(),
        skip_invalid: a.skip_invalid,
        mapping: a
            .mapping
            .as_deref()
            .map(mscr::data::FieldMapping::from_file)
            .transpose()?,
        ..Default::default()
    };
    let texts = mscr::data::questions(&a.calibration, a.calibration_items, &opts)?;
    let calib = Calibration::from_texts(&texts, a.calibration_tokens, |t| tok.encode(t, true))?;
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

/// The model to transform, its tokenizer, and the tokenizer files to write
/// beside the result (so the output folder loads as a model again).
fn load_source(spec: &str) -> anyhow::Result<(Model, Tokenizer, Files)> {
    let dir = Path::new(spec);
    let copy = |dir: &Path| -> anyhow::Result<Files> {
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
        Ok(files)
    };
    if dir.join(transform::RECORD_FILE).is_file() {
        let model = transform::load_transformed(dir)?;
        let tok = Tokenizer::from_json_file(
            &dir.join("tokenizer.json"),
            model.config.bos_token_id,
            model.config.eos_token_ids.clone(),
        )?;
        return Ok((model, tok, copy(dir)?));
    }
    let resolved = spec::resolve(spec)?;
    let (model, tok, chat) = spec::load_decoder(&resolved)?;
    let files = match &resolved {
        spec::ResolvedModel::HfFolder { dir } => copy(dir)?,
        _ => {
            // GGUF: write the synthesised tokenizer and the model's own chat template.
            let json = tok
                .inner()
                .to_string(false)
                .map_err(|e| anyhow::anyhow!("cannot serialise the tokenizer of {spec}: {e}"))?;
            let cfg = serde_json::json!({
                "chat_template": chat.source(),
                "bos_token": chat.bos_token(),
                "eos_token": chat.eos_token(),
            });
            vec![
                ("tokenizer.json".into(), json.into_bytes()),
                (
                    "tokenizer_config.json".into(),
                    serde_json::to_vec_pretty(&cfg)?,
                ),
            ]
        }
    };
    Ok((model, tok, files))
}
