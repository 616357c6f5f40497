//! `dictionary`: the candidate is a real English word (WordNet knows it in
//! some form), so vocabulary fragments such as `restaur` or `scrib` from the
//! embedding and masked-LM sources never reach the model.

use super::FilterVerdict;
use crate::attack::wordnet::WordNet;

pub fn verdict(wordnet: &WordNet, candidate: &str) -> FilterVerdict {
    if wordnet.knows(candidate) {
        FilterVerdict::new("dictionary", true, None, None)
    } else {
        FilterVerdict::new(
            "dictionary",
            false,
            None,
            Some("not a dictionary word".into()),
        )
    }
}
