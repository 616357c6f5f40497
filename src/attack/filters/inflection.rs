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
