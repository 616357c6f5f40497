//! `synonym`: positive evidence that the candidate means the same here, for
//! every source. The word's part of speech comes from the tagger (in
//! context); WordNet must put a lemma of the original and one of the
//! candidate in one synset (or, for adjectives, linked by similar-to), and
//! that sense must be a common one for both words (its share of SemCor's
//! tagged uses, `cntlist.rev`). `balls` → `testicles` shares a synset only
//! in a sense rare for `ball`, so it does not pass; a masked LM's filler that
//! merely fits the slot has no such link and does not pass either.

use super::FilterVerdict;
use crate::attack::wordnet::{Pos, SenseEvidence, WordNet};

pub fn evidence(
    wordnet: &WordNet,
    pos: Option<Pos>,
    original: &str,
    candidate: &str,
    min_share: f32,
    min_candidate_share: f32,
) -> (FilterVerdict, Option<SenseEvidence>) {
    let name = "synonym";
    let Some(pos) = pos else {
        return (
            FilterVerdict::new(
                name,
                false,
                None,
                Some("no content-word tag in context".into()),
            ),
            None,
        );
    };
    match wordnet.sense_evidence(pos, original, candidate, min_share, min_candidate_share) {
        Some(e) => (
            FilterVerdict::new(
                name,
                true,
                Some(e.original_share.min(e.candidate_share)),
                Some(format!("{} {}", e.relation, e.sense)),
            ),
            Some(e),
        ),
        None => (
            FilterVerdict::new(name, false, None, Some("no common shared sense".into())),
            None,
        ),
    }
}
