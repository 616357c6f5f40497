//! `pos-tag`: the part of speech is decided in context. The tagger tags
//! the original and the perturbed question; the candidate must get the
//! original word's tag at the same place. A word the tagger does not know
//! gets no tag and does not pass: there is nothing to compare.

use super::FilterVerdict;
use crate::attack::tagger::{Tagged, tag_at, tag_name};

/// `original` holds the original question's tags, `perturbed` the perturbed
/// question's; `start` is the changed word's byte offset (the same in both).
pub fn verdict(original: &[Tagged], perturbed: &[Tagged], start: usize) -> FilterVerdict {
    let (a, b) = (tag_at(original, start), tag_at(perturbed, start));
    let note = format!("{} vs {}", tag_name(a), tag_name(b));
    let passed = a.is_some_and(|t| t != crate::attack::tagger::Tag::Other) && a == b;
    FilterVerdict::new("pos-tag", passed, None, Some(note))
}
