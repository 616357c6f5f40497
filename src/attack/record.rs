//! The per-question result of an attack: what every output file, the SQLite
//! store and the report are made from.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The clean answer was right and a perturbation turned it wrong.
    Success,
    /// The clean answer was right and no perturbation within budget broke it.
    Failed,
    /// The clean answer was already wrong: nothing to attack.
    Skipped,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One substituted word.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Index of the word among the question's words.
    pub word_index: usize,
    /// Character (not byte) offsets of the original word in the original question.
    pub start: usize,
    pub end: usize,
    pub original: String,
    pub replacement: String,
    /// Every source that proposed this replacement: `embedding`, `wordnet`, `mlm`, `random`.
    pub sources: Vec<String>,
    /// Cosine of the two words in the attacked model's embedding space, when known.
    pub word_similarity: Option<f32>,
}

/// A second model's verdict on whether the perturbed question still has the gold answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgeVerdict {
    pub model: String,
    /// True when the judge says the perturbed question is the same problem
    /// with the same answer.
    pub answer_preserved: bool,
    /// The judge's reply, verbatim.
    pub output: String,
    /// True when the judge rejected this success and the config says to
    /// leave such successes out of the success rate (`exclude_rejected`).
    #[serde(default)]
    pub excluded: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackRecord {
    /// Stable item id from the dataset.
    pub id: String,
    pub dataset: String,
    pub model: String,
    /// The transform chain applied to the model (`identity` when none).
    pub transform: String,
    /// The attack configuration's name (e.g. `mscr`, `random`).
    pub attack: String,
    pub gold: String,
    pub original_question: String,
    /// The question the attack settled on: the successful one, or for a failed
    /// attack the last one tried (equal to the original when nothing was tried).
    pub perturbed_question: String,
    pub changes: Vec<Change>,
    /// Sentence-embedding cosine between original and perturbed question.
    pub sentence_similarity: Option<f32>,
    /// `log p(perturbed) − log p(original)` under the fluency filter's model
    /// (nats), for a one-word change when that filter ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fluency_delta: Option<f32>,
    pub clean_output: String,
    pub clean_answer: Option<String>,
    pub clean_correct: bool,
    pub clean_tokens: usize,
    pub attacked_output: Option<String>,
    pub attacked_answer: Option<String>,
    pub attacked_tokens: Option<usize>,
    /// Model generations spent on this question, the clean one included
    /// (every sample of a decoding transform counts).
    pub queries: usize,
    pub result: Outcome,
    pub judge: Option<JudgeVerdict>,
    /// Wall time spent on this question.
    pub seconds: f64,
    /// The decoding transform's samples and decisions (absent for plain decoding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding: Option<crate::transform::decode::DecodingRecord>,
}

/// One CSV row: our columns plus TextAttack's (original_text, perturbed_text,
/// original_output, perturbed_output, ground_truth_output, num_queries, result_type).
#[derive(Serialize)]
struct CsvRow<'a> {
    id: &'a str,
    dataset: &'a str,
    model: &'a str,
    transform: &'a str,
    attack: &'a str,
    result: &'a str,
    gold: &'a str,
    clean_answer: &'a str,
    attacked_answer: &'a str,
    changed_words: String,
    replacements: String,
    offsets: String,
    sources: String,
    sentence_similarity: Option<f32>,
    clean_tokens: usize,
    attacked_tokens: Option<usize>,
    judge_answer_preserved: Option<bool>,
    original_text: &'a str,
    perturbed_text: &'a str,
    original_output: &'a str,
    perturbed_output: &'a str,
    ground_truth_output: &'a str,
    num_queries: usize,
    result_type: &'static str,
}

/// Writes records as CSV (with TextAttack's columns) to any writer.
pub fn write_csv<W: std::io::Write>(w: W, records: &[AttackRecord]) -> crate::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    for r in records {
        let join =
            |f: &dyn Fn(&Change) -> String| r.changes.iter().map(f).collect::<Vec<_>>().join("; ");
        let row = CsvRow {
            id: &r.id,
            dataset: &r.dataset,
            model: &r.model,
            transform: &r.transform,
            attack: &r.attack,
            result: r.result.as_str(),
            gold: &r.gold,
            clean_answer: r.clean_answer.as_deref().unwrap_or(""),
            attacked_answer: r.attacked_answer.as_deref().unwrap_or(""),
            changed_words: join(&|c| c.original.clone()),
            replacements: join(&|c| c.replacement.clone()),
            offsets: join(&|c| format!("{}-{}", c.start, c.end)),
            sources: join(&|c| c.sources.join("+")),
            sentence_similarity: r.sentence_similarity,
            clean_tokens: r.clean_tokens,
            attacked_tokens: r.attacked_tokens,
            judge_answer_preserved: r.judge.as_ref().map(|j| j.answer_preserved),
            original_text: &r.original_question,
            perturbed_text: &r.perturbed_question,
            original_output: &r.clean_output,
            perturbed_output: r.attacked_output.as_deref().unwrap_or(""),
            ground_truth_output: &r.gold,
            num_queries: r.queries,
            // TextAttack's names for the three outcomes.
            result_type: match r.result {
                Outcome::Success => "Successful",
                Outcome::Failed => "Failed",
                Outcome::Skipped => "Skipped",
            },
        };
        csv.serialize(row)
            .map_err(|e| crate::Error::Other(format!("writing CSV: {e}")))?;
    }
    csv.flush()
        .map_err(|e| crate::Error::Other(format!("writing CSV: {e}")))?;
    Ok(())
}

/// Writes records as JSON lines.
pub fn write_jsonl<W: std::io::Write>(mut w: W, records: &[AttackRecord]) -> crate::Result<()> {
    for r in records {
        let line = serde_json::to_string(r).map_err(|e| crate::Error::Other(e.to_string()))?;
        writeln!(w, "{line}").map_err(|e| crate::Error::Other(format!("writing JSONL: {e}")))?;
    }
    Ok(())
}
