//! `fluency`: the perturbed question is not markedly less fluent than the
//! original. A causal LM (by default the setup's SmolLM2) scores both
//! questions teacher-forced; the candidate passes when the perturbed
//! question's total log-probability is at most `max_drop` nats below the
//! original's. The threshold is measured on the labelled dev set
//! (`cargo bench --bench validity`), not guessed.

use crate::error::{Error, Result};
use crate::lm::{LanguageModel, Prompt};

/// The fixed context both questions are scored after.
const PREFIX: &str = "Math word problem:";

/// `log p(perturbed) − log p(original)` for each perturbed text, in one batch.
pub fn deltas(model: &dyn LanguageModel, original: &str, perturbed: &[String]) -> Result<Vec<f32>> {
    if perturbed.is_empty() {
        return Ok(Vec::new());
    }
    let mut pairs = vec![(Prompt::text(PREFIX), format!(" {original}"))];
    pairs.extend(
        perturbed
            .iter()
            .map(|p| (Prompt::text(PREFIX), format!(" {p}"))),
    );
    let scores = model.score(&pairs)?;
    if scores.len() != pairs.len() {
        return Err(Error::Runtime(format!(
            "fluency model returned {} scores for {} texts",
            scores.len(),
            pairs.len()
        )));
    }
    Ok(scores[1..].iter().map(|s| s - scores[0]).collect())
}
