//! Attack outputs in a folder: `records.jsonl`, `records.csv` and
//! `summary.json` (with the random baseline's summary beside, when run).

use super::record::{AttackRecord, write_csv, write_jsonl};
use super::summary::Summary;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The files written.
#[derive(Clone, Debug)]
pub struct OutputPaths {
    pub jsonl: PathBuf,
    pub csv: PathBuf,
    pub summary: PathBuf,
}

/// `summary.json`: the attack's summary, and the baseline's when present.
pub fn summary_json(
    records: &[AttackRecord],
    random_baseline: Option<&[AttackRecord]>,
) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(Summary::from_records(records))
        .map_err(|e| Error::Other(e.to_string()))?;
    if let Some(obj) = v.as_object_mut() {
        let name = records
            .first()
            .map(|r| r.attack.clone())
            .unwrap_or_default();
        obj.insert("attack".into(), serde_json::Value::String(name));
        let base = match random_baseline {
            Some(b) => serde_json::to_value(Summary::from_records(b))
                .map_err(|e| Error::Other(e.to_string()))?,
            None => serde_json::Value::Null,
        };
        obj.insert("random_baseline".into(), base);
    }
    Ok(v)
}

/// Writes the three files into `dir` (created if missing). Records of the
/// baseline go into the same JSONL/CSV (their `attack` column tells them apart).
pub fn write_outputs(
    dir: &Path,
    records: &[AttackRecord],
    random_baseline: Option<&[AttackRecord]>,
) -> Result<OutputPaths> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let paths = OutputPaths {
        jsonl: dir.join("records.jsonl"),
        csv: dir.join("records.csv"),
        summary: dir.join("summary.json"),
    };
    let all: Vec<AttackRecord> = records
        .iter()
        .chain(random_baseline.unwrap_or(&[]))
        .cloned()
        .collect();
    let create = |p: &Path| {
        std::fs::File::create(p)
            .map(std::io::BufWriter::new)
            .map_err(|e| Error::io(p, e))
    };
    write_jsonl(create(&paths.jsonl)?, &all)?;
    write_csv(create(&paths.csv)?, &all)?;
    let summary = summary_json(records, random_baseline)?;
    let text = serde_json::to_string_pretty(&summary).map_err(|e| Error::Other(e.to_string()))?;
    std::fs::write(&paths.summary, text + "\n").map_err(|e| Error::io(&paths.summary, e))?;
    Ok(paths)
}
