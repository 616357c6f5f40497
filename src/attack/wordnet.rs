//! WordNet 3.0 for the attack: synonyms of a word in context-free form,
//! lemmatised with morphy and re-inflected to the original's form.
//!
//! Inflection is done by rule (plural, third person -s, -ed, -ing, -er, -est)
//! after first consulting the WordNet exception lists (`noun.exc`, `verb.exc`,
//! `adj.exc`) read in reverse, so `buy` + past gives `bought` and `goose` +
//! plural gives `geese`.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use wordnet_morphy::Morphy;
pub use wordnet_types::Pos;

/// Every WordNet part of speech, in the order lookups try them.
pub const ALL_POS: [Pos; 4] = [Pos::Noun, Pos::Verb, Pos::Adj, Pos::Adv];

/// The inflected form of a word relative to its lemma.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Form {
    Base,
    Plural,
    ThirdPerson,
    Past,
    PastParticipleN,
    Ing,
    Comparative,
    Superlative,
}

/// One synonym of a word, already inflected to the word's form.
#[derive(Clone, Debug, PartialEq)]
pub struct Synonym {
    pub text: String,
    pub pos: Pos,
    pub lemma: String,
}

/// WordNet database, morphy, and the exception lists read in reverse.
pub struct WordNet {
    db: wordnet_db::WordNet,
    morphy: Morphy,
    /// (pos, lemma) → irregular surface forms of that lemma.
    irregular: HashMap<(Pos, String), Vec<String>>,
    dir: PathBuf,
}

impl std::fmt::Debug for WordNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WordNet({})", self.dir.display())
    }
}

fn pos_index(p: Pos) -> usize {
    match p {
        Pos::Noun => 0,
        Pos::Verb => 1,
        Pos::Adj => 2,
        Pos::Adv => 3,
    }
}

/// A small set of parts of speech.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PosSet(u8);

impl PosSet {
    pub fn insert(&mut self, p: Pos) {
        self.0 |= 1 << pos_index(p);
    }
    pub fn contains(&self, p: Pos) -> bool {
        self.0 & (1 << pos_index(p)) != 0
    }
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
    pub fn intersects(&self, other: &PosSet) -> bool {
        self.0 & other.0 != 0
    }
    pub fn names(&self) -> Vec<String> {
        ALL_POS
            .iter()
            .filter(|p| self.contains(**p))
            .map(|p| p.to_string())
            .collect()
    }
}

impl WordNet {
    /// Loads WordNet from `dir` (`data.*`, `index.*`, `*.exc`).
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.join("index.noun").is_file() {
            return Err(Error::file(
                dir,
                "no WordNet here (index.noun missing): run `mscr setup`, install Debian's \
                 wordnet-base, or point MSCR_WORDNET at a WordNet 3.0 dict folder",
            ));
        }
        let db = wordnet_db::WordNet::load_with_mode(dir, wordnet_db::LoadMode::Mmap)
            .map_err(|e| Error::file(dir, format!("loading WordNet: {e:#}")))?;
        let morphy = Morphy::load(dir)
            .map_err(|e| Error::file(dir, format!("loading WordNet exception lists: {e:#}")))?;
        let mut irregular: HashMap<(Pos, String), Vec<String>> = HashMap::new();
        for (pos, file) in [
            (Pos::Noun, "noun.exc"),
            (Pos::Verb, "verb.exc"),
            (Pos::Adj, "adj.exc"),
        ] {
            let path = dir.join(file);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue; // optional: rules still inflect regular words
            };
            for line in text.lines() {
                let mut parts = line.split_whitespace();
                let (Some(form), Some(lemma)) = (parts.next(), parts.next()) else {
                    continue;
                };
                irregular
                    .entry((pos, lemma.to_string()))
                    .or_default()
                    .push(form.to_string());
            }
        }
        Ok(WordNet {
            db,
            morphy,
            irregular,
            dir: dir.to_path_buf(),
        })
    }

    /// Loads from [`crate::paths::wordnet_dir`].
    pub fn load_default() -> Result<Self> {
        Self::load(crate::paths::wordnet_dir())
    }

    pub fn lemma_count(&self) -> usize {
        self.db.lemma_count()
    }

    /// Lemmas of a surface word for one part of speech (morphy).
    pub fn lemmas_pos(&self, pos: Pos, word: &str) -> Vec<String> {
        let lower = word.to_lowercase();
        let exists = |p: Pos, l: &str| self.db.lemma_exists(p, l);
        let mut out: Vec<String> = self
            .morphy
            .lemmas_for(pos, &lower, exists)
            .into_iter()
            .map(|c| c.lemma.into_owned())
            .collect();
        // wordnet-morphy 0.1.3 undoubles every final double letter after a
        // stripped suffix (`eggs` → `eg`, `balls` → `bal`); add the plain
        // detachment rules so such words still find their lemma.
        for (suffix, replacement) in detachment_rules(pos) {
            if let Some(stem) = lower.strip_suffix(suffix) {
                let cand = format!("{stem}{replacement}");
                if !cand.is_empty() && self.db.lemma_exists(pos, &cand) && !out.contains(&cand) {
                    out.push(cand);
                }
            }
        }
        out
    }

    /// Every (part of speech, lemma) WordNet knows for a surface word.
    pub fn lemmas(&self, word: &str) -> Vec<(Pos, String)> {
        ALL_POS
            .iter()
            .flat_map(|&p| self.lemmas_pos(p, word).into_iter().map(move |l| (p, l)))
            .collect()
    }

    /// The parts of speech WordNet allows for a surface word.
    pub fn pos_set(&self, word: &str) -> PosSet {
        let mut s = PosSet::default();
        for (p, _) in self.lemmas(word) {
            s.insert(p);
        }
        s
    }

    /// True when two words share a lemma (`apple`/`apples`, `buy`/`bought`).
    pub fn same_lemma(&self, a: &str, b: &str) -> bool {
        let la = self.lemmas(a);
        let lb = self.lemmas(b);
        la.iter().any(|x| lb.contains(x))
    }

    /// The form of `word` relative to `lemma` (both lower case).
    pub fn form_of(&self, pos: Pos, word: &str, lemma: &str) -> Form {
        if word == lemma {
            return Form::Base;
        }
        match pos {
            Pos::Noun => Form::Plural,
            Pos::Verb => {
                if word.ends_with("ing") && !lemma.ends_with("ing") {
                    Form::Ing
                } else if word.ends_with('s') && !lemma.ends_with('s') {
                    Form::ThirdPerson
                } else if word.ends_with('n') && !word.ends_with("ed") {
                    Form::PastParticipleN
                } else {
                    Form::Past
                }
            }
            Pos::Adj | Pos::Adv => {
                if word.ends_with("est") {
                    Form::Superlative
                } else if word.ends_with("er") || word.ends_with('r') {
                    Form::Comparative
                } else {
                    Form::Base
                }
            }
        }
    }

    /// Inflects a lemma (lower case, may hold spaces) to a form. Multi-word
    /// lemmas inflect their head: the first word of a verb, the last of a noun.
    pub fn inflect(&self, pos: Pos, lemma: &str, form: Form) -> String {
        if form == Form::Base {
            return lemma.to_string();
        }
        if let Some(irregular) = self.irregular_form(pos, lemma, form) {
            return irregular;
        }
        if lemma.contains(' ') {
            let parts: Vec<&str> = lemma.split(' ').collect();
            let head = if pos == Pos::Verb { 0 } else { parts.len() - 1 };
            return parts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    if i == head {
                        self.inflect(pos, p, form)
                    } else {
                        p.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
        }
        regular_inflection(lemma, form)
    }

    fn irregular_form(&self, pos: Pos, lemma: &str, form: Form) -> Option<String> {
        let forms = self.irregular.get(&(pos, lemma.to_string()))?;
        let pick = |f: &dyn Fn(&str) -> bool| forms.iter().find(|s| f(s)).cloned();
        match (pos, form) {
            (Pos::Noun, Form::Plural) => forms.first().cloned(),
            (Pos::Verb, Form::Ing) => pick(&|s| s.ends_with("ing")),
            (Pos::Verb, Form::ThirdPerson) => pick(&|s| s.ends_with('s') && !s.ends_with("ss")),
            (Pos::Verb, Form::PastParticipleN) => {
                pick(&|s| s.ends_with('n') && !s.ends_with("ing"))
                    .or_else(|| pick(&|s| !s.ends_with("ing") && !s.ends_with('s')))
            }
            (Pos::Verb, Form::Past) => {
                pick(&|s| !s.ends_with("ing") && !s.ends_with('s') && !s.ends_with('n'))
                    .or_else(|| pick(&|s| !s.ends_with("ing") && !s.ends_with('s')))
            }
            (Pos::Adj, Form::Comparative) => pick(&|s| s.ends_with('r')),
            (Pos::Adj, Form::Superlative) => pick(&|s| s.ends_with("st")),
            _ => None,
        }
    }

    /// Synonyms of `word` (any case) for every part of speech it can have,
    /// inflected to its form, best-known senses first, without the word's own
    /// lemmas. `(a)`/`(p)`/`(ip)` markers are stripped; multi-word lemmas are
    /// kept (with spaces) only when `multiword`.
    pub fn synonyms(&self, word: &str, multiword: bool) -> Vec<Synonym> {
        let lower = word.to_lowercase();
        let own = self.lemmas(&lower);
        let mut out: Vec<Synonym> = Vec::new();
        for (pos, lemma) in &own {
            let form = self.form_of(*pos, &lower, lemma);
            for id in self.db.synsets_for_lemma(*pos, lemma) {
                let Some(synset) = self.db.get_synset(*id) else {
                    continue;
                };
                for w in &synset.words {
                    let text = strip_marker(w.text).to_lowercase();
                    if text.contains('_') && !multiword {
                        continue;
                    }
                    let text = text.replace('_', " ");
                    if own.iter().any(|(_, l)| *l == text) || text == lower {
                        continue;
                    }
                    let inflected = self.inflect(*pos, &text, form);
                    if inflected == lower || out.iter().any(|s| s.text == inflected) {
                        continue;
                    }
                    out.push(Synonym {
                        text: inflected,
                        pos: *pos,
                        lemma: text,
                    });
                }
            }
        }
        out
    }
}

/// WordNet's morphy suffix rules (detachment of inflectional endings).
fn detachment_rules(pos: Pos) -> &'static [(&'static str, &'static str)] {
    match pos {
        Pos::Noun => &[
            ("s", ""),
            ("ses", "s"),
            ("xes", "x"),
            ("zes", "z"),
            ("ches", "ch"),
            ("shes", "sh"),
            ("men", "man"),
            ("ies", "y"),
        ],
        Pos::Verb => &[
            ("s", ""),
            ("ies", "y"),
            ("es", "e"),
            ("es", ""),
            ("ed", "e"),
            ("ed", ""),
            ("ing", "e"),
            ("ing", ""),
        ],
        Pos::Adj | Pos::Adv => &[("er", ""), ("er", "e"), ("est", ""), ("est", "e")],
    }
}

/// Strips WordNet's adjective position markers: `(a)`, `(p)`, `(ip)`.
fn strip_marker(lemma: &str) -> &str {
    match lemma.find('(') {
        Some(i) if lemma.ends_with(')') => &lemma[..i],
        _ => lemma,
    }
}

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

/// Short consonant-vowel-consonant words double their last consonant
/// (`run` → `running`, `stop` → `stopped`); longer ones mostly don't.
fn doubles_final(word: &str) -> bool {
    let cs: Vec<char> = word.chars().collect();
    let n = cs.len();
    if n < 3 {
        return false;
    }
    let vowel_groups = cs
        .iter()
        .enumerate()
        .filter(|(i, c)| is_vowel(**c) && (*i == 0 || !is_vowel(cs[i - 1])))
        .count();
    vowel_groups == 1
        && !is_vowel(cs[n - 1])
        && !matches!(cs[n - 1], 'w' | 'x' | 'y')
        && is_vowel(cs[n - 2])
        && !is_vowel(cs[n - 3])
}

/// English regular inflection.
pub fn regular_inflection(lemma: &str, form: Form) -> String {
    let ends_sibilant = ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|s| lemma.ends_with(s));
    let cons_y =
        lemma.len() > 1 && lemma.ends_with('y') && !lemma[..lemma.len() - 1].ends_with(is_vowel);
    let stem_y = || format!("{}i", &lemma[..lemma.len() - 1]);
    let last = lemma.chars().last().unwrap_or('_');
    match form {
        Form::Base => lemma.to_string(),
        Form::Plural | Form::ThirdPerson => {
            if ends_sibilant || (form == Form::ThirdPerson && lemma.ends_with('o')) {
                format!("{lemma}es")
            } else if cons_y {
                format!("{}es", stem_y())
            } else {
                format!("{lemma}s")
            }
        }
        Form::Past | Form::PastParticipleN => {
            if lemma.ends_with('e') {
                format!("{lemma}d")
            } else if cons_y {
                format!("{}ed", stem_y())
            } else if doubles_final(lemma) {
                format!("{lemma}{last}ed")
            } else {
                format!("{lemma}ed")
            }
        }
        Form::Ing => {
            if let Some(stem) = lemma.strip_suffix("ie") {
                format!("{stem}ying")
            } else if lemma.ends_with('e') && !lemma.ends_with("ee") && lemma.len() > 2 {
                format!("{}ing", &lemma[..lemma.len() - 1])
            } else if doubles_final(lemma) {
                format!("{lemma}{last}ing")
            } else {
                format!("{lemma}ing")
            }
        }
        Form::Comparative | Form::Superlative => {
            let suffix = if form == Form::Comparative {
                "er"
            } else {
                "est"
            };
            if lemma.contains(' ') || lemma.chars().filter(|c| is_vowel(*c)).count() > 2 {
                let word = if form == Form::Comparative {
                    "more"
                } else {
                    "most"
                };
                format!("{word} {lemma}")
            } else if lemma.ends_with('e') {
                format!("{lemma}{}", &suffix[1..])
            } else if cons_y {
                format!("{}{suffix}", stem_y())
            } else if doubles_final(lemma) {
                format!("{lemma}{last}{suffix}")
            } else {
                format!("{lemma}{suffix}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_rules() {
        assert_eq!(regular_inflection("purchase", Form::Past), "purchased");
        assert_eq!(regular_inflection("run", Form::Ing), "running");
        assert_eq!(regular_inflection("visit", Form::Ing), "visiting");
        assert_eq!(regular_inflection("box", Form::Plural), "boxes");
        assert_eq!(regular_inflection("berry", Form::Plural), "berries");
        assert_eq!(regular_inflection("carry", Form::ThirdPerson), "carries");
        assert_eq!(regular_inflection("stop", Form::Past), "stopped");
        assert_eq!(regular_inflection("make", Form::Ing), "making");
        assert_eq!(strip_marker("big(a)"), "big");
    }
}
