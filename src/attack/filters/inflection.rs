//! `inflection`: the candidate has the original's inflection (number, tense,
//! person, degree) for the part of speech the word has in context:
//! `friend` → `classmates` (singular → plural) and `gives` → `gave` (present
//! → past) do not pass. The WordNet source re-inflects its synonyms, so this
//! mostly stops embedding and masked-LM neighbours of the wrong form.

use super::FilterVerdict;
use crate::attack::wordnet::{ALL_POS, Form, Pos, WordNet};

/// Regular verbs share one form for the past and the past participle
/// (`provided`), so `gave`/`given` → `provided` agree; two irregular forms
/// (`gave` → `given`) do not.
fn agree(a: Form, b: Form, original: &str, candidate: &str) -> bool {
    let past = |f: Form| matches!(f, Form::Past | Form::PastParticipleN);
    a == b
        || (past(a)
            && past(b)
            && (original.to_lowercase().ends_with("ed")
                || candidate.to_lowercase().ends_with("ed")))
}

/// English verbs whose past is their base form. WordNet's `verb.exc` lists
/// only forms that differ from the lemma, so this closed class is spelled out.
const BASE_IS_PAST: &[&str] = &[
    "bet",
    "bid",
    "broadcast",
    "burst",
    "bust",
    "cast",
    "cost",
    "cut",
    "fit",
    "forecast",
    "hit",
    "hurt",
    "knit",
    "let",
    "put",
    "quit",
    "read",
    "rid",
    "set",
    "shed",
    "shut",
    "slit",
    "split",
    "spread",
    "thrust",
    "upset",
    "wet",
];

/// A verb whose base form is its past too (`cost`, `put`).
fn base_is_past(wordnet: &WordNet, word: &str) -> bool {
    let lower = word.to_lowercase();
    BASE_IS_PAST.contains(&lower.as_str()) && wordnet.lemmas_pos(Pos::Verb, &lower).contains(&lower)
}

/// `pos` is the word's part of speech in context, when a tagger gave one
/// (otherwise every part of speech both words can have is tried).
pub fn verdict(
    wordnet: &WordNet,
    pos: Option<Pos>,
    original: &str,
    candidate: &str,
) -> FilterVerdict {
    let name = "inflection";
    let poses: Vec<Pos> = match pos {
        Some(p) => vec![p],
        None => ALL_POS.to_vec(),
    };
    // `cost`, `put`, `cut`: the base form is also the past, and which one a
    // sentence means ("Each ticket cost $30") the tagger cannot tell; a
    // candidate must read both ways too, or `charge` turns a past into a
    // present without agreement.
    if pos == Some(Pos::Verb)
        && base_is_past(wordnet, original)
        && !base_is_past(wordnet, candidate)
    {
        return FilterVerdict::new(
            name,
            false,
            None,
            Some("the original is present or past; the candidate only present".into()),
        );
    }
    let mut judged = false;
    for p in poses {
        let (a, b) = (wordnet.forms(p, original), wordnet.forms(p, candidate));
        if a.is_empty() || b.is_empty() {
            continue;
        }
        judged = true;
        if a.iter()
            .any(|&f| b.iter().any(|&g| agree(f, g, original, candidate)))
        {
            return FilterVerdict::new(name, true, None, Some(format!("{:?}", a[0])));
        }
    }
    let note = if judged {
        "different inflection"
    } else {
        "no form known for this part of speech"
    };
    FilterVerdict::new(name, false, None, Some(note.into()))
}
