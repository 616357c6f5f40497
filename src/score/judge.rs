//! Batch judging of JSONL `{"gold": ..., "output": ...}` lines: the
//! checker's public interface (`mscr answers judge`) and how its quality is
//! measured against other graders.

use super::{AnswerStyle, check};
use crate::error::{Error, Result};
use serde_json::Value;
use std::io::{BufRead, Write};
use std::path::Path;

/// Counts from one judging run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JudgeStats {
    pub lines: usize,
    pub equivalent: usize,
    pub not_extracted: usize,
    /// Malformed lines passed over under `skip_invalid`.
    pub skipped: usize,
}

/// The fields a line's model answer may sit in, in order: `output` (the name
/// eval's `items.jsonl` and generate's output use), then the older
/// `prediction` and `completion`.
pub const PREDICTION_FIELDS: &[&str] = &["output", "prediction", "completion"];

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) => super::number::format_value(f),
            None => n.to_string(),
        }),
        _ => None,
    }
}

/// Reads JSONL from `input`, writes each line back with `"extracted"` (string
/// or null) and `"equivalent"` added; other fields pass through. `name` labels
/// errors (the input file's path). Blank lines are skipped.
pub fn judge_jsonl(
    input: impl BufRead,
    output: impl Write,
    style: AnswerStyle,
    name: &Path,
) -> Result<JudgeStats> {
    judge_jsonl_opts(input, output, style, name, false)
}

/// As [`judge_jsonl`]; with `skip_invalid`, a malformed line (not a JSON
/// object, no gold, no answer) is counted in `skipped` and left out of the
/// output instead of stopping the run.
pub fn judge_jsonl_opts(
    input: impl BufRead,
    mut output: impl Write,
    style: AnswerStyle,
    name: &Path,
    skip_invalid: bool,
) -> Result<JudgeStats> {
    let mut stats = JudgeStats::default();
    let bad = |line: usize, message: String| Error::Line {
        path: name.to_path_buf(),
        line,
        message,
    };
    for (k, line) in input.lines().enumerate() {
        let line = line.map_err(|e| Error::io(name, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = (|| {
            let obj = match serde_json::from_str::<Value>(&line) {
                Ok(Value::Object(o)) => o,
                Ok(_) => {
                    return Err(bad(
                        k + 1,
                        "expected a JSON object with \"gold\" and \"output\"".into(),
                    ));
                }
                Err(e) => return Err(bad(k + 1, format!("invalid JSON: {e}"))),
            };
            let gold = obj.get("gold").and_then(text_of).ok_or_else(|| {
                bad(
                    k + 1,
                    "missing or non-text \"gold\" (need a string or number)".into(),
                )
            })?;
            let prediction = PREDICTION_FIELDS
                .iter()
                .find_map(|f| obj.get(*f).and_then(text_of))
                .ok_or_else(|| {
                    bad(
                        k + 1,
                        "missing or non-text \"output\" (the model's text: a string or number; \
                         \"prediction\" and \"completion\" also work)"
                            .into(),
                    )
                })?;
            Ok((obj, gold, prediction))
        })();
        let (mut obj, gold, prediction) = match parsed {
            Ok(p) => p,
            Err(_) if skip_invalid => {
                stats.skipped += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let v = check(&prediction, &gold, style);
        stats.lines += 1;
        stats.equivalent += usize::from(v.equivalent);
        stats.not_extracted += usize::from(v.extracted.is_none());
        obj.insert(
            "extracted".into(),
            v.extracted.map_or(Value::Null, Value::String),
        );
        obj.insert("equivalent".into(), Value::Bool(v.equivalent));
        let out = serde_json::to_string(&obj).map_err(|e| Error::Other(e.to_string()))?;
        writeln!(output, "{out}").map_err(|e| Error::io("<output>", e))?;
    }
    output.flush().map_err(|e| Error::io("<output>", e))?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_lines_and_passes_fields_through() {
        let input = "{\"gold\":\"18\",\"prediction\":\"so $18.\\n#### 18\",\"id\":7}\n\n{\"gold\":2.5,\"prediction\":\"The answer is 3.\"}\n{\"gold\":\"4\",\"prediction\":\"no idea\"}\n";
        let mut out = Vec::new();
        let s = judge_jsonl(
            input.as_bytes(),
            &mut out,
            AnswerStyle::Numeric,
            Path::new("in.jsonl"),
        )
        .unwrap();
        assert_eq!(
            s,
            JudgeStats {
                lines: 3,
                equivalent: 1,
                not_extracted: 1,
                skipped: 0
            }
        );
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["id"], 7);
        assert_eq!(lines[0]["extracted"], "18");
        assert_eq!(lines[0]["equivalent"], true);
        assert_eq!(lines[1]["equivalent"], false);
        assert!(lines[2]["extracted"].is_null());
    }

    #[test]
    fn malformed_lines_are_named() {
        for (input, want) in [
            (
                "{\"gold\":\"1\",\"prediction\":\"1\"}\n{oops\n",
                "in.jsonl:2: invalid JSON",
            ),
            (
                "{\"gold\":\"1\"}\n",
                "in.jsonl:1: missing or non-text \"output\"",
            ),
            ("[1,2]\n", "in.jsonl:1: expected a JSON object"),
        ] {
            let e = judge_jsonl(
                input.as_bytes(),
                Vec::new(),
                AnswerStyle::Latex,
                Path::new("in.jsonl"),
            )
            .unwrap_err();
            assert!(e.to_string().starts_with(want), "{e}");
        }
    }
}
