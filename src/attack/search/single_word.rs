//! `kind = "single-word"`: MSCR's setting. Positions in order of word
//! importance, candidates in order of expected damage, stop at the first
//! success. With `prescreen`, every candidate question of the item is first
//! ranked by the teacher-forced log-prob of the clean correct solution (one
//! batched `score` call, no queries) and generated most damaging first.
//! `prescreen_limit` caps that call at the candidates the plain plan would try
//! first (most important positions): scoring every candidate of a long question
//! costs more prompt tokens than the generations it saves.

use super::{
    Oracle, SearchInput, SearchResult, order_by_expected_damage, order_by_importance,
    order_by_score, run_plan,
};
use crate::error::Result;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SingleWordConfig {
    /// Order positions by leave-one-out importance (else left to right).
    pub importance: bool,
    /// Rank all candidate questions by teacher-forced log-prob before generating.
    pub prescreen: bool,
    /// Score at most this many candidates in the pre-screen: those at the most
    /// important positions, in the order the plain plan would try them. The rest
    /// follow, unscored, in that order. `None`: score every candidate.
    pub prescreen_limit: Option<usize>,
}

impl Default for SingleWordConfig {
    fn default() -> Self {
        SingleWordConfig {
            importance: true,
            prescreen: true,
            prescreen_limit: None,
        }
    }
}

/// The generation order: per position (importance order), candidates by
/// expected damage. Each inner vector is one step (one position).
pub fn plan_without_prescreen(input: &SearchInput) -> Vec<Vec<(usize, usize)>> {
    let importance: Vec<f32> = input.slots.iter().map(|s| s.importance).collect();
    order_by_importance(&importance)
        .into_iter()
        .map(|s| {
            order_by_expected_damage(&input.slots[s].candidates)
                .into_iter()
                .map(|c| (s, c))
                .collect()
        })
        .collect()
}

pub fn run(
    config: &SingleWordConfig,
    input: &SearchInput,
    oracle: &mut dyn Oracle,
) -> Result<SearchResult> {
    if config.prescreen {
        // The plain plan's order decides which candidates a limited pre-screen scores.
        let mut pairs: Vec<(usize, usize)> = plan_without_prescreen(input)
            .into_iter()
            .flatten()
            .collect();
        if pairs.is_empty() {
            return Ok(SearchResult::default());
        }
        if pairs.len() <= input.batch && pairs.len() <= oracle.remaining() {
            // One batch holds every candidate: scores would order it, not change it.
            let plan: Vec<Vec<(usize, usize)>> = pairs.into_iter().map(|p| vec![p]).collect();
            return run_plan(input, oracle, &plan, input.batch);
        }
        let rest = pairs.split_off(
            config
                .prescreen_limit
                .unwrap_or(usize::MAX)
                .min(pairs.len()),
        );
        if pairs.is_empty() {
            let plan: Vec<Vec<(usize, usize)>> = rest.into_iter().map(|p| vec![p]).collect();
            return run_plan(input, oracle, &plan, input.batch);
        }
        let questions: Vec<String> = pairs.iter().map(|&p| input.perturb(&[p])).collect();
        let scores = oracle.score(&questions)?;
        let plan: Vec<Vec<(usize, usize)>> = order_by_score(&scores)
            .into_iter()
            .map(|i| vec![pairs[i]])
            .chain(rest.into_iter().map(|p| vec![p]))
            .collect();
        return run_plan(input, oracle, &plan, input.batch);
    }
    let mut last = SearchResult::default();
    // One step per position: its candidates go out together (in batches of `batch`).
    for step in plan_without_prescreen(input) {
        let plan: Vec<Vec<(usize, usize)>> = step.into_iter().map(|p| vec![p]).collect();
        if oracle.remaining() == 0 {
            break;
        }
        let r = run_plan(input, oracle, &plan, input.batch)?;
        if r.success {
            return Ok(r);
        }
        last.keep_worse(r);
    }
    Ok(last)
}
