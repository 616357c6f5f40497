//! Attack-level figures (issue 4, item 7) computed from per-question records.
//!
//! Accuracies and the success rate are means of per-question credit: 1 or 0
//! for a decided answer, and for `pass@k`/`sample` decoding the pass@k
//! estimate, so that their success rate is the mean chance that none of k
//! samples of the perturbed question is right. For decided answers these are
//! the familiar counts (successes / attacked, ...).

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
    /// Mean fluency change (`log p(perturbed) − log p(original)`, nats) of
    /// successful one-word perturbations where the fluency filter scored them.
    #[serde(default)]
    pub mean_fluency_delta: Option<f64>,
    /// Mean attacked/clean response-token ratio over successes.
    pub length_ratio: f64,
    /// Successes in which each source proposed the winning replacement.
    pub successes_per_source: BTreeMap<String, usize>,
    /// Successes whose winning replacement only that source proposed.
    pub unique_per_source: BTreeMap<String, usize>,
    /// Mean completion tokens of one clean response (every sample of a
    /// decoding transform counted), over all questions.
    #[serde(default)]
    pub mean_response_tokens: f64,
    /// Mean completion tokens generated to answer one clean question (all
    /// samples): what the transform costs per question.
    #[serde(default)]
    pub tokens_per_question: f64,
    /// Samples drawn per question (1 without a decoding transform).
    #[serde(default)]
    pub samples_per_question: f64,
    /// Successes a judge model looked at.
    #[serde(default)]
    pub judged: usize,
    /// Judged successes the judge said keep the problem and its answer.
    #[serde(default)]
    pub judge_confirmed: usize,
    /// Judged successes the judge rejected (a different problem or answer).
    /// Under `[judge] exclude_rejected = true` they are not in `successes`
    /// nor in the success rate: the question counts as not validly attacked.
    #[serde(default)]
    pub judge_rejected: usize,
}

/// A success whose judge rejected it under `exclude_rejected`: reported
/// separately and left out of the success rate.
pub fn excluded_by_judge(r: &AttackRecord) -> bool {
    r.result == Outcome::Success && r.judge.as_ref().is_some_and(|j| j.excluded)
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// A question's clean credit: the decision's, or 1/0.
pub fn clean_credit(r: &AttackRecord) -> f64 {
    match &r.decoding {
        Some(d) => d.clean.credit,
        None => f64::from(u8::from(r.clean_correct)),
    }
}

/// A question's credit after the attack: 0 for a success of a decided
/// answer; the settled perturbed question's decision otherwise; unchanged
/// when nothing was attacked or tried.
pub fn attacked_credit(r: &AttackRecord) -> f64 {
    if r.result == Outcome::Skipped || excluded_by_judge(r) {
        return clean_credit(r);
    }
    match r.decoding.as_ref().and_then(|d| d.attacked.as_ref()) {
        Some(a) => a.credit,
        None if r.result == Outcome::Success => 0.0,
        None => clean_credit(r),
    }
}

/// Completion tokens of every clean sample of a question.
fn clean_sample_tokens(r: &AttackRecord) -> Vec<usize> {
    match &r.decoding {
        Some(d) => d.clean.tokens.clone(),
        None => vec![r.clean_tokens],
    }
}

impl Summary {
    pub fn from_records(records: &[AttackRecord]) -> Summary {
        let n = records.len();
        let count = |o: Outcome| records.iter().filter(|r| r.result == o).count();
        let judge_excluded = records.iter().filter(|r| excluded_by_judge(r)).count();
        let successes = count(Outcome::Success) - judge_excluded;
        let judged_successes = records
            .iter()
            .filter(|r| r.result == Outcome::Success && r.judge.is_some());
        let judged = judged_successes.clone().count();
        let judge_confirmed = judged_successes
            .filter(|r| r.judge.as_ref().is_some_and(|j| j.answer_preserved))
            .count();
        let failures = count(Outcome::Failed);
        let skipped = count(Outcome::Skipped);
        let clean_accuracy = mean(&records.iter().map(clean_credit).collect::<Vec<_>>());
        let attacked_accuracy = mean(&records.iter().map(attacked_credit).collect::<Vec<_>>());
        let won: Vec<&AttackRecord> = records
            .iter()
            .filter(|r| r.result == Outcome::Success && !excluded_by_judge(r))
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
            .filter(|r| r.result != Outcome::Skipped && !excluded_by_judge(r))
            .collect();
        Summary {
            questions: n,
            successes,
            failures,
            skipped,
            clean_accuracy,
            attacked_accuracy,
            accuracy_drop: clean_accuracy - attacked_accuracy,
            success_rate: mean(
                &attacked
                    .iter()
                    .map(|r| 1.0 - attacked_credit(r))
                    .collect::<Vec<_>>(),
            ),
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
            mean_fluency_delta: {
                let d: Vec<f64> = won
                    .iter()
                    .filter_map(|r| r.fluency_delta.map(f64::from))
                    .collect();
                (!d.is_empty()).then(|| mean(&d))
            },
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
            mean_response_tokens: mean(
                &records
                    .iter()
                    .flat_map(clean_sample_tokens)
                    .map(|t| t as f64)
                    .collect::<Vec<_>>(),
            ),
            tokens_per_question: mean(
                &records
                    .iter()
                    .map(|r| clean_sample_tokens(r).iter().sum::<usize>() as f64)
                    .collect::<Vec<_>>(),
            ),
            samples_per_question: mean(
                &records
                    .iter()
                    .map(|r| r.decoding.as_ref().map_or(1, |d| d.samples) as f64)
                    .collect::<Vec<_>>(),
            ),
            judged,
            judge_confirmed,
            judge_rejected: judged - judge_confirmed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::decode::{DecisionRecord, DecodingRecord, pass_at_k};

    fn record(result: Outcome, clean_correct: bool) -> AttackRecord {
        AttackRecord {
            id: "q".into(),
            dataset: "d".into(),
            model: "m".into(),
            transform: "t".into(),
            attack: "a".into(),
            gold: "5".into(),
            original_question: "q".into(),
            perturbed_question: "q".into(),
            changes: vec![],
            sentence_similarity: None,
            fluency_delta: None,
            clean_output: String::new(),
            clean_answer: None,
            clean_correct,
            clean_tokens: 10,
            attacked_output: None,
            attacked_answer: None,
            attacked_tokens: None,
            queries: 1,
            result,
            judge: None,
            seconds: 0.0,
            decoding: None,
        }
    }

    fn decision(n: usize, c: usize, k: usize) -> DecisionRecord {
        DecisionRecord {
            answers: vec![None; n],
            tokens: (0..n).map(|i| 10 + i).collect(),
            correct: c,
            chosen: 0,
            votes: None,
            scores: vec![],
            credit: pass_at_k(n, c, k),
        }
    }

    fn with_pass_at_k(
        mut r: AttackRecord,
        clean_c: usize,
        attacked_c: Option<usize>,
    ) -> AttackRecord {
        r.decoding = Some(DecodingRecord {
            kind: "pass@k".into(),
            samples: 4,
            k: Some(2),
            clean: decision(4, clean_c, 2),
            attacked: attacked_c.map(|c| decision(4, c, 2)),
        });
        r
    }

    #[test]
    fn decided_answers_give_the_familiar_counts() {
        let rs = vec![
            record(Outcome::Success, true),
            record(Outcome::Failed, true),
            record(Outcome::Failed, true),
            record(Outcome::Skipped, false),
        ];
        let s = Summary::from_records(&rs);
        assert_eq!(s.clean_accuracy, 0.75);
        assert_eq!(s.attacked_accuracy, 0.5);
        assert_eq!(s.success_rate, 1.0 / 3.0);
        assert_eq!(s.mean_response_tokens, 10.0);
        assert_eq!(s.tokens_per_question, 10.0);
        assert_eq!(s.samples_per_question, 1.0);
    }

    fn judged(mut r: AttackRecord, preserved: bool, excluded: bool) -> AttackRecord {
        r.judge = Some(crate::attack::JudgeVerdict {
            model: "j".into(),
            answer_preserved: preserved,
            output: if preserved { "yes" } else { "no" }.into(),
            excluded,
        });
        r
    }

    #[test]
    fn judge_rejected_successes_are_reported_and_excluded_when_asked() {
        let rs = vec![
            judged(record(Outcome::Success, true), true, false),
            judged(record(Outcome::Success, true), false, true),
            record(Outcome::Failed, true),
        ];
        let s = Summary::from_records(&rs);
        assert_eq!((s.judged, s.judge_confirmed, s.judge_rejected), (2, 1, 1));
        // The rejected success is neither a success nor attacked.
        assert_eq!(s.successes, 1);
        assert_eq!(s.success_rate, 0.5);
        assert!((s.attacked_accuracy - 2.0 / 3.0).abs() < 1e-12, "{s:?}");
        // Without exclusion it stays a success, still reported as rejected.
        let rs2 = vec![
            judged(record(Outcome::Success, true), true, false),
            judged(record(Outcome::Success, true), false, false),
            record(Outcome::Failed, true),
        ];
        let s2 = Summary::from_records(&rs2);
        assert_eq!((s2.successes, s2.judge_rejected), (2, 1));
        assert!((s2.success_rate - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn pass_at_k_reports_the_chance_that_no_sample_is_right() {
        // n = 4, k = 2. Question 1: 2 right clean, none after the attack.
        // Question 2: 1 right clean, 1 still right after it (attack failed).
        // Question 3: none right: skipped.
        let rs = vec![
            with_pass_at_k(record(Outcome::Success, true), 2, Some(0)),
            with_pass_at_k(record(Outcome::Failed, true), 1, Some(1)),
            with_pass_at_k(record(Outcome::Skipped, false), 0, None),
        ];
        let s = Summary::from_records(&rs);
        let p21 = 1.0 - 3.0 / 6.0; // pass@2 with 1 of 4 right: 1 − C(3,2)/C(4,2)
        let p22 = 1.0 - 1.0 / 6.0; // 2 of 4 right: 1 − C(2,2)/C(4,2)
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(s.clean_accuracy, (p22 + p21) / 3.0), "{s:?}");
        assert!(close(s.attacked_accuracy, p21 / 3.0), "{s:?}");
        // Attacked: chance none of 2 is right = 1 on q1, C(3,2)/C(4,2) = 1/2 on q2.
        assert!(close(s.success_rate, (1.0 + 0.5) / 2.0), "{s:?}");
        assert_eq!((s.successes, s.failures, s.skipped), (1, 1, 1));
        // Every sample's tokens: 10..13 per question.
        assert_eq!(s.mean_response_tokens, 11.5);
        assert_eq!(s.tokens_per_question, 46.0);
        assert_eq!(s.samples_per_question, 4.0);
    }
}
