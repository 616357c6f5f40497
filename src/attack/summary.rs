//! Attack-level figures (issue 4, item 7) computed from per-question records.

use super::record::{AttackRecord, Outcome};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub questions: usize,
    pub successes: usize,
    pub failures: usize,
    pub skipped: usize,
    /// Correct clean answers / questions.
    pub clean_accuracy: f64,
    /// Questions still answered correctly after the attack / questions.
    pub attacked_accuracy: f64,
    /// `clean_accuracy - attacked_accuracy`, in points of accuracy (0..1).
    pub accuracy_drop: f64,
    /// Successes / attacked (successes + failures).
    pub success_rate: f64,
    /// PromptBench's performance drop rate: 1 − attacked/clean.
    pub performance_drop_rate: f64,
    /// Mean queries per successful attack.
    pub queries_per_success: f64,
    /// Mean queries per attacked question.
    pub mean_queries: f64,
    /// Mean words changed per successful attack.
    pub perturbed_words: f64,
    /// Mean sentence similarity of successful perturbations.
    pub mean_similarity: f64,
    /// Mean attacked/clean response-token ratio over successes.
    pub length_ratio: f64,
    /// Successes in which each source proposed the winning replacement.
    pub successes_per_source: BTreeMap<String, usize>,
    /// Successes whose winning replacement only that source proposed.
    pub unique_per_source: BTreeMap<String, usize>,
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

impl Summary {
    pub fn from_records(records: &[AttackRecord]) -> Summary {
        let n = records.len();
        let count = |o: Outcome| records.iter().filter(|r| r.result == o).count();
        let successes = count(Outcome::Success);
        let failures = count(Outcome::Failed);
        let skipped = count(Outcome::Skipped);
        let clean_correct = records.iter().filter(|r| r.clean_correct).count();
        let frac = |a: usize| if n == 0 { 0.0 } else { a as f64 / n as f64 };
        let clean_accuracy = frac(clean_correct);
        let attacked_accuracy = frac(clean_correct.saturating_sub(successes));
        let won: Vec<&AttackRecord> = records
            .iter()
            .filter(|r| r.result == Outcome::Success)
            .collect();
        let mut per_source = BTreeMap::new();
        let mut unique = BTreeMap::new();
        for r in &won {
            let mut sources: Vec<&String> = r.changes.iter().flat_map(|c| &c.sources).collect();
            sources.sort();
            sources.dedup();
            for s in &sources {
                *per_source.entry((*s).clone()).or_insert(0) += 1;
            }
            if sources.len() == 1 {
                *unique.entry(sources[0].clone()).or_insert(0) += 1;
            }
        }
        let attacked: Vec<&AttackRecord> = records
            .iter()
            .filter(|r| r.result != Outcome::Skipped)
            .collect();
        Summary {
            questions: n,
            successes,
            failures,
            skipped,
            clean_accuracy,
            attacked_accuracy,
            accuracy_drop: clean_accuracy - attacked_accuracy,
            success_rate: if successes + failures == 0 {
                0.0
            } else {
                successes as f64 / (successes + failures) as f64
            },
            performance_drop_rate: if clean_accuracy > 0.0 {
                1.0 - attacked_accuracy / clean_accuracy
            } else {
                0.0
            },
            queries_per_success: mean(&won.iter().map(|r| r.queries as f64).collect::<Vec<_>>()),
            mean_queries: mean(
                &attacked
                    .iter()
                    .map(|r| r.queries as f64)
                    .collect::<Vec<_>>(),
            ),
            perturbed_words: mean(
                &won.iter()
                    .map(|r| r.changes.len() as f64)
                    .collect::<Vec<_>>(),
            ),
            mean_similarity: mean(
                &won.iter()
                    .filter_map(|r| r.sentence_similarity.map(f64::from))
                    .collect::<Vec<_>>(),
            ),
            length_ratio: mean(
                &won.iter()
                    .filter_map(|r| {
                        let a = r.attacked_tokens? as f64;
                        (r.clean_tokens > 0).then(|| a / r.clean_tokens as f64)
                    })
                    .collect::<Vec<_>>(),
            ),
            successes_per_source: per_source,
            unique_per_source: unique,
        }
    }
}
