//! `kind = "greedy"`: multi-word. Positions in order of leave-one-out
//! importance; at each position every candidate (on top of the words already
//! changed) goes out in one batch; if none succeeds, the candidate that most
//! lowers the log-prob of the clean solution is kept and the next position is
//! tried, up to `max-words` / `max-rate`.

use super::{Oracle, SearchInput, SearchResult, order_by_importance, order_by_score};
use crate::error::Result;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GreedyConfig {
    /// Generate only the `batch` most damaging candidates of each position
    /// (by teacher-forced log-prob) instead of all of them.
    pub prescreen: bool,
}

pub fn run(
    config: &GreedyConfig,
    input: &SearchInput,
    oracle: &mut dyn Oracle,
) -> Result<SearchResult> {
    let importance: Vec<f32> = input.slots.iter().map(|s| s.importance).collect();
    let attackable = input.attackable();
    let mut kept: Vec<(usize, usize)> = Vec::new();
    let mut last = SearchResult::default();
    for s in order_by_importance(&importance) {
        if kept.len() >= input.max_words || oracle.remaining() == 0 {
            break;
        }
        let mut options: Vec<(Vec<(usize, usize)>, String)> = Vec::new();
        for c in 0..input.slots[s].candidates.len() {
            let mut picks = kept.clone();
            picks.push((s, c));
            let q = input.perturb(&picks);
            if input
                .filters
                .allows_changes(input.question, &q, picks.len(), attackable)
            {
                options.push((picks, q));
            }
        }
        if options.is_empty() {
            continue;
        }
        let questions: Vec<String> = options.iter().map(|(_, q)| q.clone()).collect();
        let scores = oracle.score(&questions)?;
        let ranked = order_by_score(&scores);
        let take = if config.prescreen {
            input.batch
        } else {
            ranked.len()
        };
        let chosen: Vec<usize> = ranked.iter().copied().take(take).collect();
        // All chosen questions of this step in batches (one batch when they fit).
        let mut i = 0;
        while i < chosen.len() {
            let n = input
                .batch
                .max(1)
                .min(chosen.len() - i)
                .min(oracle.remaining());
            if n == 0 {
                break;
            }
            let qs: Vec<String> = chosen[i..i + n]
                .iter()
                .map(|&k| questions[k].clone())
                .collect();
            let evals = oracle.generate(&qs)?;
            for (&k, e) in chosen[i..i + n].iter().zip(evals) {
                let wrong = e.wrong;
                let r = SearchResult {
                    picks: options[k].0.clone(),
                    question: Some(questions[k].clone()),
                    evaluated: Some(e),
                    success: wrong,
                };
                if wrong {
                    return Ok(r);
                }
                last.keep_worse(r);
            }
            i += n;
        }
        // Keep the most damaging change and go on to the next position.
        kept = options[ranked[0]].0.clone();
    }
    Ok(last)
}
