//! `self-consistency` (Wang et al., 2023): n sampled answers, and the answer
//! most of them agree on is the model's answer. Answers equal under the
//! answer checker's equivalence (`3`, `3.0`, `\frac{6}{2}`) are one vote
//! bucket; samples with no extractable answer do not vote. Ties go to the
//! answer that appeared first in sample order, so the vote is deterministic
//! for a given seed. The gold answer plays no part in the vote.

use super::{
    DecideBatch, Decision, DecodingTransform, Sampling, decision_from, default_temperature,
    default_top_p, judge_samples,
};
use crate::error::Result;
use crate::lm::Generation;
use crate::score::{AnswerStyle, equivalent};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfConsistencyConfig {
    /// Samples per question.
    pub n: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
}

impl Default for SelfConsistencyConfig {
    fn default() -> Self {
        SelfConsistencyConfig {
            n: 5,
            temperature: default_temperature(),
            top_p: default_top_p(),
            seed: 0,
        }
    }
}

impl SelfConsistencyConfig {
    pub fn validate(&self) -> Result<()> {
        self.sampling().validate("self-consistency")
    }
}

/// The majority vote over extracted answers: `(index of the first sample of
/// the winning answer, its votes)`, or `None` when no sample has an answer.
///
/// Each answer joins the first bucket whose first answer it is equivalent to
/// (in the checker's sense for `style`); the bucket with most votes wins, and
/// among equals the one whose first vote came earliest.
pub fn vote(answers: &[Option<String>], style: AnswerStyle) -> Option<(usize, usize)> {
    // (first sample index, votes)
    let mut buckets: Vec<(usize, usize)> = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        let Some(a) = a else { continue };
        let same = buckets.iter_mut().find(|(first, _)| {
            answers[*first]
                .as_deref()
                .is_some_and(|f| equivalent(a, f, style))
        });
        match same {
            Some(b) => b.1 += 1,
            None => buckets.push((i, 1)),
        }
    }
    // Buckets are in order of first appearance, so the first maximum wins ties.
    buckets
        .into_iter()
        .fold(None, |best: Option<(usize, usize)>, b| match best {
            Some(x) if x.1 >= b.1 => Some(x),
            _ => Some(b),
        })
}

impl DecodingTransform for SelfConsistencyConfig {
    fn kind(&self) -> &'static str {
        "self-consistency"
    }
    fn sampling(&self) -> Sampling {
        Sampling {
            n: self.n,
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
        }
    }
    fn decide(&self, batch: &DecideBatch, samples: Vec<Vec<Generation>>) -> Result<Vec<Decision>> {
        Ok(samples
            .into_iter()
            .zip(batch.golds)
            .map(|(s, gold)| {
                let (answers, right) = judge_samples(&s, gold, batch.style);
                let winner = vote(&answers, batch.style);
                let (chosen, votes) = winner.unwrap_or((0, 0));
                // The decision is the majority answer: right when that answer is.
                let correct = winner.is_some() && right[chosen];
                let mut d = decision_from(
                    s,
                    answers,
                    &right,
                    chosen,
                    correct,
                    f64::from(u8::from(correct)),
                );
                if let Some(r) = d.record.as_mut() {
                    r.votes = Some(votes);
                }
                d
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::{Decoding, Prompt};
    use crate::transform::decode::tests::Scripted;
    use crate::transform::decode::{Answerer, DecodingTransform};
    use std::sync::Arc;

    fn a(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|x| x.map(str::to_string)).collect()
    }

    #[test]
    fn majority_wins_with_equivalent_answers_pooled() {
        let n = AnswerStyle::Numeric;
        // 5 has three votes; 3 and 3.0 pool to two.
        let v = a(&[
            Some("3"),
            Some("5"),
            Some("3.0"),
            Some("5"),
            None,
            Some("5"),
        ]);
        assert_eq!(vote(&v, n), Some((1, 3)));
        // 1/2 and 0.5 are one answer, beating 2 and 7.
        let v = a(&[Some("2"), Some("0.5"), Some("7"), Some("1/2")]);
        assert_eq!(vote(&v, n), Some((1, 2)));
        // A single answer among failures to extract.
        assert_eq!(vote(&a(&[None, None, Some("9")]), n), Some((2, 1)));
        // Nothing to vote on.
        assert_eq!(vote(&a(&[None, None]), n), None);
        assert_eq!(vote(&[], n), None);
        // LaTeX answers compare as LaTeX.
        let v = a(&[Some("\\frac{1}{2}"), Some("\\dfrac{1}{2}"), Some("2")]);
        assert_eq!(vote(&v, AnswerStyle::Latex), Some((0, 2)));
    }

    #[test]
    fn ties_go_to_the_answer_seen_first() {
        let n = AnswerStyle::Numeric;
        assert_eq!(
            vote(&a(&[Some("7"), Some("4"), Some("4"), Some("7")]), n),
            Some((0, 2))
        );
        assert_eq!(
            vote(&a(&[None, Some("4"), Some("7"), Some("7"), Some("4")]), n),
            Some((1, 2))
        );
        // All different: the first answer.
        assert_eq!(
            vote(&a(&[Some("1"), Some("2"), Some("3")]), n),
            Some((0, 1))
        );
    }

    #[test]
    fn the_decision_is_the_majority_answer() {
        let m = Scripted::new(&[
            "so The answer is 4.",
            "The answer is 6.",
            "The answer is 6.",
            "no idea",
            "The answer is 4.",
        ]);
        let sc = SelfConsistencyConfig::default();
        let ans = Answerer::new(Arc::new(sc.clone()));
        assert_eq!(ans.samples(), 5);
        let q = vec!["What is 2 + 4?".to_string()];
        let p = vec![Prompt::text("What is 2 + 4?")];
        let d = ans
            .answer(
                &m,
                &q,
                &p,
                &Decoding::default(),
                &["6"],
                AnswerStyle::Numeric,
            )
            .unwrap();
        // 4 and 6 tie at two votes; 4 came first, so the decision is 4 — wrong.
        let d = &d[0];
        assert_eq!(d.answer.as_deref(), Some("4"));
        assert!(!d.correct);
        let r = d.record.as_ref().unwrap();
        assert_eq!((r.chosen, r.votes, r.correct), (0, Some(2), 2));
        assert_eq!(r.answers.len(), 5);
        assert_eq!(r.credit, 0.0);
        assert_eq!(d.samples, 5);
        assert_eq!(r.total_tokens(), 10 + 11 + 12 + 13 + 14);
        assert_eq!(sc.kind(), "self-consistency");
    }
}
