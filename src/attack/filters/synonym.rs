//! `synonym`: positive evidence that the candidate means the same here, for
//! every source. The word's part of speech comes from the tagger (in
//! context); WordNet must put a lemma of the original and one of the
//! candidate in one synset (or link the two synsets by one of the configured
//! `relations`: `similar-to` for adjectives by default, `hypernym`,
//! `verb-group`, `also-see`), and that sense must be a common one for both
//! words (its share of SemCor's tagged uses, `cntlist.rev`) or, with
//! `context` / `candidate_context`, the sense the question itself picks
//! (simplified Lesk: the sense whose gloss, examples and neighbouring synsets
//! share the most lemmatised content words with the question). `balls` →
//! `testicles` shares a synset only in a sense rare for `ball` that nothing in
//! a question about coloured balls points to, so it does not pass; a masked
//! LM's filler that merely fits the slot has no such link and does not pass
//! either.

use super::FilterVerdict;
use crate::attack::wordnet::{Pos, SenseEvidence, SenseRule, WordNet};

pub fn evidence(
    wordnet: &WordNet,
    pos: Option<Pos>,
    original: &str,
    candidate: &str,
    rule: &SenseRule,
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
    match wordnet.sense_evidence_in(pos, original, candidate, rule) {
        Some(e) => (
            FilterVerdict::new(
                name,
                true,
                Some(e.original_share.min(e.candidate_share)),
                Some(if e.context_overlap.is_empty() {
                    format!("{} {}", e.relation, e.sense)
                } else {
                    format!(
                        "{} {} (in context: {})",
                        e.relation,
                        e.sense,
                        e.context_overlap.join(", ")
                    )
                }),
            ),
            Some(e),
        ),
        None => (
            FilterVerdict::new(name, false, None, Some("no common shared sense".into())),
            None,
        ),
    }
}
