//! Part of speech in context. WordNet alone only knows which parts of speech
//! a word *can* have (`balls` the noun and the verb); this decides which one
//! it has in its sentence, from the words around it, so the original and the
//! perturbed question can be tagged and compared.
//!
//! A small contextual tagger: closed-class words (determiners, pronouns,
//! modals, auxiliaries, prepositions) fix the tag of the next content word
//! (`the balls` → noun, `to paint` → verb, `she paints` → verb); where the
//! context says nothing, the word's most-tagged part of speech in WordNet's
//! SemCor counts decides. A word WordNet does not know gets no tag (callers
//! treat that as "cannot judge": it does not pass).
//!
//! harper's Brill tagger (`harper-brill` 3.0.0) was tried first: its model
//! loads and tags well, but it depends on the `burn` deep-learning crates
//! (243 more crates) and changes the feature set of shared dependencies, so
//! the whole tree rebuilds (24 min for the tagger alone on the 2-core build
//! machine). It is the intended replacement for [`tag`]; the filters only see
//! [`Tagged`].

use super::wordnet::{ALL_POS, Pos, WordNet};
use regex::Regex;
use std::sync::LazyLock;

/// Universal part-of-speech tags the filters compare (content words only;
/// every other token is `Other`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    Noun,
    Verb,
    Adj,
    Adv,
    Other,
}

impl Tag {
    pub fn name(&self) -> &'static str {
        match self {
            Tag::Noun => "NOUN",
            Tag::Verb => "VERB",
            Tag::Adj => "ADJ",
            Tag::Adv => "ADV",
            Tag::Other => "OTHER",
        }
    }

    fn of(p: Pos) -> Tag {
        match p {
            Pos::Noun => Tag::Noun,
            Pos::Verb => Tag::Verb,
            Pos::Adj => Tag::Adj,
            Pos::Adv => Tag::Adv,
        }
    }
}

/// Words, numbers, clitics (`'s`) and single symbols, with byte offsets.
static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z]+(?:-[A-Za-z]+)*|['’][A-Za-z]+|\d+(?:[.,]\d+)*|\S")
        .expect("token pattern is valid")
});

/// One tagged token with its byte offset in the text.
#[derive(Clone, Debug, PartialEq)]
pub struct Tagged {
    pub start: usize,
    pub text: String,
    pub tag: Option<Tag>,
}

const DETERMINERS: &[&str] = &[
    "a", "an", "the", "this", "that", "these", "those", "each", "every", "his", "her", "their",
    "my", "your", "its", "our", "some", "any", "many", "more", "most", "few", "several", "no",
    "another", "other", "all", "both", "much", "less", "fewer", "'s", "’s",
];
const VERB_CUES: &[&str] = &[
    "to",
    "can",
    "could",
    "will",
    "would",
    "shall",
    "should",
    "must",
    "may",
    "might",
    "did",
    "does",
    "do",
    "i",
    "you",
    "he",
    "she",
    "it",
    "we",
    "they",
    "n't",
    "who",
    "then",
    "also",
    "not",
    "cannot",
    "already",
    "just",
    "accidentally",
    "only",
];
const PREPOSITIONS: &[&str] = &[
    "in", "on", "at", "for", "of", "from", "with", "by", "about", "into", "onto", "per", "without",
    "during", "after", "before", "under", "over", "between", "among", "through",
];
const AUXILIARIES: &[&str] = &[
    "can", "could", "will", "would", "shall", "should", "must", "may", "might", "do", "does",
    "did", "is", "are", "was", "were", "be", "been", "being", "am", "has", "have", "had",
];
const COPULAS: &[&str] = &[
    "is", "are", "was", "were", "be", "been", "being", "am", "seem", "seems", "looks", "feel",
    "feels", "get", "gets", "got", "become", "becomes", "very", "so", "too", "as", "how",
];

fn tokens(text: &str) -> Vec<(usize, String)> {
    TOKEN
        .find_iter(text)
        .map(|m| (m.start(), m.as_str().to_string()))
        .collect()
}

/// Tags every token of `text` in context.
pub fn tag(wordnet: &WordNet, text: &str) -> Vec<Tagged> {
    let toks = tokens(text);
    let lower: Vec<String> = toks.iter().map(|(_, t)| t.to_lowercase()).collect();
    let mut out = Vec::with_capacity(toks.len());
    for (i, (start, t)) in toks.iter().enumerate() {
        let tag = if t.chars().next().is_some_and(char::is_alphabetic) {
            tag_word(wordnet, &lower, i)
        } else {
            Some(Tag::Other)
        };
        out.push(Tagged {
            start: *start,
            text: t.clone(),
            tag,
        });
    }
    out
}

/// The tag of word `i` of the lower-cased tokens.
fn tag_word(wordnet: &WordNet, lower: &[String], i: usize) -> Option<Tag> {
    let w = lower[i].as_str();
    let prev = i.checked_sub(1).map(|j| lower[j].as_str());
    // Modals and auxiliaries are function words unless a determiner or a
    // number makes them nouns (`Kaylee will be` vs `5 cans of soup`): WordNet
    // alone would make `will` the noun (volition) it rarely is in a question.
    if AUXILIARIES.contains(&w) {
        let after_determiner =
            prev.is_some_and(|p| DETERMINERS.contains(&p) || p.chars().all(|c| c.is_ascii_digit()));
        if !after_determiner {
            return Some(Tag::Other);
        }
    }
    let possible: Vec<Pos> = ALL_POS
        .iter()
        .copied()
        .filter(|&p| !wordnet.lemmas_pos(p, w).is_empty())
        .collect();
    if possible.is_empty() {
        // Closed-class words are known to the tagger but not to WordNet.
        return if DETERMINERS.contains(&w) || VERB_CUES.contains(&w) || COPULAS.contains(&w) {
            Some(Tag::Other)
        } else {
            None
        };
    }
    if possible.len() == 1 {
        return Some(Tag::of(possible[0]));
    }
    let can = |p: Pos| possible.contains(&p);
    let next = lower.get(i + 1).map(String::as_str);
    let prev_is_number = prev.is_some_and(|p| {
        p.chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '.')
    }) || prev.is_some_and(crate::attack::words::is_number_word);
    // An adjective between a determiner/number and a noun: `6 blue balls`.
    let next_is_noun = next.is_some_and(|n| !wordnet.lemmas_pos(Pos::Noun, n).is_empty());
    // A preposition's bare object at the end of a phrase is a noun: `in
    // total?`, `for gas.`; else `total` (mostly an adjective in SemCor) would
    // accept `in entire?` as the same adjective. Not after `to` (`to swim.`).
    let phrase_ends = next.is_none_or(|n| !n.chars().any(char::is_alphanumeric));
    if prev.is_some_and(|p| PREPOSITIONS.contains(&p)) && phrase_ends && can(Pos::Noun) {
        return Some(Tag::Noun);
    }
    if let Some(p) = prev {
        if DETERMINERS.contains(&p) || prev_is_number {
            if can(Pos::Adj) && next_is_noun && w != "ones" {
                return Some(Tag::Adj);
            }
            if can(Pos::Noun) {
                return Some(Tag::Noun);
            }
        }
        if VERB_CUES.contains(&p) && can(Pos::Verb) {
            return Some(Tag::Verb);
        }
        // A word right before an amount, not after a determiner, number or
        // preposition (`at age 5`), is its verb: `strawberries costs $2.20`, `she pays 5 dollars` (SemCor
        // makes `costs` a noun, which let `prices` stand in for it).
        // A currency sign counts only before a number: in MATH text `$` opens
        // math (`for all real numbers $x$`).
        let digit = |t: Option<&String>| {
            t.and_then(|t| t.chars().next())
                .is_some_and(|c| c.is_ascii_digit())
        };
        let next_is_amount = digit(lower.get(i + 1))
            || (next.is_some_and(|n| ["$", "£", "€"].contains(&n)) && digit(lower.get(i + 2)));
        if next_is_amount
            && can(Pos::Verb)
            // ... and commonly a verb: `brought home 3 bags` keeps `home`.
            && wordnet.pos_share(Pos::Verb, w).is_some_and(|s| s >= 0.1)
            && !PREPOSITIONS.contains(&p)
            && !p.chars().all(|c| c.is_ascii_digit())
        {
            return Some(Tag::Verb);
        }
        if COPULAS.contains(&p) {
            if can(Pos::Adj) {
                return Some(Tag::Adj);
            }
            if (w.ends_with("ing") || w.ends_with("ed")) && can(Pos::Verb) {
                return Some(Tag::Verb);
            }
        }
        if w.ends_with("ly") && can(Pos::Adv) {
            return Some(Tag::Adv);
        }
    }
    // No cue: the part of speech with the most tagged uses in SemCor.
    possible
        .iter()
        .copied()
        .max_by(|&a, &b| {
            wordnet
                .tagged_uses(a, w)
                .cmp(&wordnet.tagged_uses(b, w))
                // Ties: WordNet's order (noun, verb, adjective, adverb) reversed
                // so the earlier one wins in max_by.
                .then(
                    ALL_POS
                        .iter()
                        .position(|&x| x == b)
                        .cmp(&ALL_POS.iter().position(|&x| x == a)),
                )
        })
        .map(Tag::of)
}

/// The tag of the token starting at byte `start`, if a token starts there.
pub fn tag_at(tagged: &[Tagged], start: usize) -> Option<Tag> {
    tagged.iter().find(|t| t.start == start).and_then(|t| t.tag)
}

/// Whether the adjective starting at byte `start` stands before a noun
/// (`Some(true)`: "two lonely pigeons", "a big red ball") or on its own
/// (`Some(false)`: "the pigeon was lonely."); `None` when the token is no
/// adjective or is coordinated ("red and green apples": the position is
/// decided further on).
pub fn attributive_at(tagged: &[Tagged], start: usize) -> Option<bool> {
    let i = tagged.iter().position(|t| t.start == start)?;
    if tagged[i].tag != Some(Tag::Adj) {
        return None;
    }
    match tagged.get(i + 1) {
        Some(n) if matches!(n.tag, Some(Tag::Noun) | Some(Tag::Adj)) => Some(true),
        Some(n) if matches!(n.text.as_str(), "and" | "or" | "," | "but") => None,
        _ => Some(false),
    }
}

/// The WordNet part of speech of a tag (content words only).
pub fn wordnet_pos(tag: Tag) -> Option<Pos> {
    match tag {
        Tag::Noun => Some(Pos::Noun),
        Tag::Verb => Some(Pos::Verb),
        Tag::Adj => Some(Pos::Adj),
        Tag::Adv => Some(Pos::Adv),
        Tag::Other => None,
    }
}

/// The tag's name (`NOUN`, `VERB`, ...; `unknown` without one).
pub fn tag_name(tag: Option<Tag>) -> String {
    tag.map_or("unknown", |t| t.name()).to_string()
}
