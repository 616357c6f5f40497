//! Answer extraction and equivalence (numbers and LaTeX).

use serde::{Deserialize, Serialize};

/// How answers of a dataset are written and compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerStyle {
    /// A single number (GSM8K, ASDiv, SVAMP, MAWPS).
    Numeric,
    /// A LaTeX expression (MATH500).
    Latex,
}

/// The checker's verdict on one model output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The final answer found in the output, if any.
    pub extracted: Option<String>,
    pub equivalent: bool,
}

/// Extracts the final answer from `output` and compares it with `gold`.
pub fn check(output: &str, gold: &str, style: AnswerStyle) -> Verdict {
    let _ = (output, gold, style);
    Verdict {
        extracted: None,
        equivalent: false,
    }
}
