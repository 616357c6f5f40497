//! Datasets, acquisition and prompt templates.

pub mod dataset;
pub mod fetch;
pub mod prompt;

pub use dataset::{
    AnswerFormat, Dataset, DatasetSpec, FieldMapping, FileKind, LoadOptions, load, questions,
};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One benchmark question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Stable id (dataset-provided, or `<dataset>-<line index>`).
    pub id: String,
    /// The question text as the model should see it.
    pub question: String,
    /// The gold final answer (e.g. `18`, `\frac{1}{2}`).
    pub gold: String,
    /// Extra fields: `subject`, `level` for MATH500, and so on.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
}
