//! `kind = "random"`: the chance baseline. Random positions and random
//! candidates (from the same sources and filters), the same budget and batch
//! size, no importance, no pre-screen. ChaCha-seeded: deterministic per seed
//! and item.

use super::{Oracle, SearchInput, SearchResult, run_plan};
use crate::error::Result;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomConfig {}

/// The random order of perturbations: rounds over the positions in a random
/// order, each taking one not-yet-used random candidate of that position;
/// with `max_words > 1` each perturbation changes up to `max_words` random
/// positions. At most `limit` perturbations.
pub fn plan(input: &SearchInput, limit: usize) -> Vec<Vec<(usize, usize)>> {
    let mut rng = ChaCha8Rng::seed_from_u64(input.seed);
    let mut pools: Vec<Vec<usize>> = input
        .slots
        .iter()
        .map(|s| {
            let mut c: Vec<usize> = (0..s.candidates.len()).collect();
            c.shuffle(&mut rng);
            c
        })
        .collect();
    let mut plan = Vec::new();
    let k = input.max_words.max(1);
    loop {
        let mut live: Vec<usize> = (0..pools.len()).filter(|&s| !pools[s].is_empty()).collect();
        if live.is_empty() || plan.len() >= limit {
            break;
        }
        live.shuffle(&mut rng);
        for group in live.chunks(k) {
            if plan.len() >= limit {
                break;
            }
            let picks: Vec<(usize, usize)> = group
                .iter()
                .filter_map(|&s| pools[s].pop().map(|c| (s, c)))
                .collect();
            if !picks.is_empty() {
                plan.push(picks);
            }
        }
    }
    plan
}

pub fn run(
    _config: &RandomConfig,
    input: &SearchInput,
    oracle: &mut dyn Oracle,
) -> Result<SearchResult> {
    let attackable = input.attackable();
    let plan: Vec<Vec<(usize, usize)>> = plan(input, usize::MAX)
        .into_iter()
        .filter(|p| {
            p.len() == 1
                || input.filters.allows_changes(
                    input.question,
                    &input.perturb(p),
                    p.len(),
                    attackable,
                )
        })
        .take(oracle.remaining())
        .collect();
    run_plan(input, oracle, &plan, input.batch)
}
