//! Search strategies: which perturbed questions to send to the model, in what
//! order, within the query budget. One file per strategy, one arm of
//! [`SearchConfig`] (`kind = "single-word" | "greedy" | "random"`).
//!
//! The search talks to the model only through [`Oracle`]: `generate` (counts
//! one query per question, one batch per call) and `score` (teacher-forced
//! log-prob of the model's own clean solution; free of queries). This keeps
//! the strategies' ordering and budget logic testable as plain functions.

pub mod greedy;
pub mod random;
pub mod single_word;

use super::filters::{Filters, Judged};
use super::words::{Word, apply_replacements};
use crate::error::Result;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SearchConfig {
    SingleWord(single_word::SingleWordConfig),
    Greedy(greedy::GreedyConfig),
    Random(random::RandomConfig),
}

impl SearchConfig {
    pub fn name(&self) -> &'static str {
        match self {
            SearchConfig::SingleWord(_) => "single-word",
            SearchConfig::Greedy(_) => "greedy",
            SearchConfig::Random(_) => "random",
        }
    }

    /// Whether the strategy needs leave-one-out word importance.
    pub fn uses_importance(&self) -> bool {
        match self {
            SearchConfig::SingleWord(c) => c.importance,
            SearchConfig::Greedy(_) => true,
            SearchConfig::Random(_) => false,
        }
    }

    /// Whether `candidates` perturbed questions all go out in one batch
    /// anyway (single-word search with pre-screen, everything fits the batch
    /// and the budget), so that ordering them by word importance or
    /// pre-screen scores cannot change what is generated: the strict filters
    /// often leave a question only a handful of candidates, and scoring them
    /// cost more than generating them.
    pub fn one_batch_holds_all(&self, candidates: usize, batch: usize, remaining: usize) -> bool {
        matches!(self, SearchConfig::SingleWord(c) if c.prescreen)
            && candidates <= batch
            && candidates <= remaining
    }

    pub fn run(&self, input: &SearchInput, oracle: &mut dyn Oracle) -> Result<SearchResult> {
        match self {
            SearchConfig::SingleWord(c) => single_word::run(c, input, oracle),
            SearchConfig::Greedy(c) => greedy::run(c, input, oracle),
            SearchConfig::Random(c) => random::run(c, input, oracle),
        }
    }
}

/// The model's answer to one perturbed question.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluated {
    pub output: String,
    pub answer: Option<String>,
    /// The extracted answer no longer matches the gold: the attack succeeded.
    pub wrong: bool,
    pub tokens: usize,
    /// How close the answer is to meeting the goal, in [0, 1]: 1 when
    /// `wrong`, 0 when right; between for fractional figures (pass@k: the
    /// chance that none of k samples is right). A failed search settles on the
    /// most damaging question it tried.
    pub damage: f64,
    /// The decoding transform's decision, when one answered.
    pub decision: Option<crate::transform::decode::DecisionRecord>,
}

impl Evaluated {
    /// A one-generation answer: damage is 1 when wrong, else 0.
    pub fn plain(output: String, answer: Option<String>, wrong: bool, tokens: usize) -> Self {
        Evaluated {
            output,
            answer,
            wrong,
            tokens,
            damage: if wrong { 1.0 } else { 0.0 },
            decision: None,
        }
    }
}

impl SearchResult {
    /// Keeps `new` unless the result held is more damaging (ties go to the
    /// newer one, so among equally harmless questions the last tried stays).
    pub fn keep_worse(&mut self, new: SearchResult) {
        let held = self.evaluated.as_ref().map_or(-1.0, |e| e.damage);
        let other = new.evaluated.as_ref().map_or(-1.0, |e| e.damage);
        if new.question.is_some() && other >= held {
            *self = new;
        }
    }
}

/// What the search may ask of the attacked model.
pub trait Oracle {
    /// Generates for every question in ONE batch; each question costs a query.
    /// Callers never pass more than [`Oracle::remaining`] questions.
    fn generate(&mut self, questions: &[String]) -> Result<Vec<Evaluated>>;
    /// Teacher-forced log-prob of the clean correct solution given each
    /// question (lower = more damaging). Costs no query.
    fn score(&mut self, questions: &[String]) -> Result<Vec<f32>>;
    /// Queries left in this question's budget.
    fn remaining(&self) -> usize;
}

/// One attackable word with its surviving candidates.
#[derive(Clone, Debug)]
pub struct Slot {
    pub word_index: usize,
    /// Leave-one-out importance (higher = deleting the word hurts the clean solution more); 0 when unknown.
    pub importance: f32,
    /// Candidates that passed every filter, in source order.
    pub candidates: Vec<Judged>,
}

pub struct SearchInput<'a> {
    pub question: &'a str,
    pub words: &'a [Word],
    pub slots: Vec<Slot>,
    pub filters: &'a Filters,
    /// Perturbed questions per generate batch.
    pub batch: usize,
    pub max_words: usize,
    /// Seed for this question (config seed mixed with the item id).
    pub seed: u64,
}

impl SearchInput<'_> {
    pub fn attackable(&self) -> usize {
        self.words.iter().filter(|w| w.attackable()).count()
    }

    /// The question with `(slot, candidate)` replacements applied.
    pub fn perturb(&self, picks: &[(usize, usize)]) -> String {
        let reps: Vec<(usize, &str)> = picks
            .iter()
            .map(|&(s, c)| {
                (
                    self.slots[s].word_index,
                    self.slots[s].candidates[c].candidate.text.as_str(),
                )
            })
            .collect();
        apply_replacements(self.question, self.words, &reps)
    }
}

/// Where the search ended.
#[derive(Clone, Debug, Default)]
pub struct SearchResult {
    /// `(slot, candidate)` picks of the returned question.
    pub picks: Vec<(usize, usize)>,
    /// The successful question, or the last one tried.
    pub question: Option<String>,
    pub evaluated: Option<Evaluated>,
    pub success: bool,
}

/// Slots in order of importance, highest first; ties keep question order.
pub fn order_by_importance(importance: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..importance.len()).collect();
    idx.sort_by(|&a, &b| importance[b].total_cmp(&importance[a]).then(a.cmp(&b)));
    idx
}

/// Leave-one-out importance: how much the clean solution's log-prob drops
/// when the word is deleted (`base − score_without_word`).
pub fn leave_one_out(base: f32, without: &[f32]) -> Vec<f32> {
    without.iter().map(|s| base - s).collect()
}

/// Candidates of a slot in order of expected damage without querying the
/// model: a larger move in sentence-embedding space first (lower similarity,
/// still above the filter's threshold), then more agreeing sources, then
/// source order. Returns candidate indices.
pub fn order_by_expected_damage(candidates: &[Judged]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..candidates.len()).collect();
    idx.sort_by(|&a, &b| {
        let (ca, cb) = (&candidates[a], &candidates[b]);
        let sa = ca.sentence_similarity.unwrap_or(1.0);
        let sb = cb.sentence_similarity.unwrap_or(1.0);
        sa.total_cmp(&sb)
            .then(cb.candidate.sources.len().cmp(&ca.candidate.sources.len()))
            .then(a.cmp(&b))
    });
    idx
}

/// Indices of `scores` from lowest (most damaging) to highest; ties keep order.
pub fn order_by_score(scores: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    idx
}

/// Generates `plan` (lists of picks) in batches of at most `batch`, never
/// past the budget, stopping after the first batch that contains a success
/// (the first successful question in plan order wins). Without a success it
/// returns the most damaging question tried (the last one among equals).
pub fn run_plan(
    input: &SearchInput,
    oracle: &mut dyn Oracle,
    plan: &[Vec<(usize, usize)>],
    batch: usize,
) -> Result<SearchResult> {
    let mut result = SearchResult::default();
    let mut pos = 0;
    while pos < plan.len() {
        let n = batch.max(1).min(plan.len() - pos).min(oracle.remaining());
        if n == 0 {
            break;
        }
        let chunk = &plan[pos..pos + n];
        let questions: Vec<String> = chunk.iter().map(|p| input.perturb(p)).collect();
        let evals = oracle.generate(&questions)?;
        pos += n;
        for ((picks, q), e) in chunk.iter().zip(questions).zip(evals) {
            let wrong = e.wrong;
            let r = SearchResult {
                picks: picks.clone(),
                question: Some(q),
                evaluated: Some(e),
                success: wrong,
            };
            if wrong {
                return Ok(r);
            }
            result.keep_worse(r);
        }
    }
    Ok(result)
}
