//! WordNet 3.0 for the attack: synonyms of a word in context-free form,
//! lemmatised with morphy and re-inflected to the original's form.
//!
//! Inflection is done by rule (plural, third person -s, -ed, -ing, -er, -est)
//! after first consulting the WordNet exception lists (`noun.exc`, `verb.exc`,
//! `adj.exc`) read in reverse, so `buy` + past gives `bought` and `goose` +
//! plural gives `geese`.

use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
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
    /// (pos, lemma, sense number) → times SemCor tagged that sense (`cntlist.rev`).
    sense_counts: HashMap<(Pos, String, u32), u32>,
    /// Lesk signatures of the synsets looked at so far (see [`WordNet::signature`]).
    signatures: Mutex<HashMap<wordnet_types::SynsetId, Arc<HashSet<String>>>>,
    dir: PathBuf,
}

/// A WordNet link between two synsets that may stand in for synonymy, besides
/// sharing a synset (the `synonym` filter's `relations`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// Adjective satellites and their head (`different` → `various`).
    SimilarTo,
    /// The candidate's synset is a direct hypernym of the original's: a more
    /// general word for the same thing or act (`deleted` → `removed`).
    Hypernym,
    /// Verb senses WordNet groups as near-identical (`$`).
    VerbGroup,
    /// WordNet's `also see` (`^`).
    AlsoSee,
}

impl Relation {
    fn symbol(self) -> &'static str {
        match self {
            Relation::SimilarTo => "&",
            Relation::Hypernym => "@",
            Relation::VerbGroup => "$",
            Relation::AlsoSee => "^",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Relation::SimilarTo => "similar-to",
            Relation::Hypernym => "hypernym",
            Relation::VerbGroup => "verb-group",
            Relation::AlsoSee => "also-see",
        }
    }
}

/// What [`WordNet::sense_evidence_in`] accepts.
#[derive(Clone, Copy, Debug)]
pub struct SenseRule<'a> {
    /// Least share of the original lemma's tagged uses the linking sense must have.
    pub min_share: f32,
    /// Least share of the candidate lemma's tagged uses its linked sense must have.
    pub min_candidate_share: f32,
    /// Links accepted besides a shared synset.
    pub relations: &'a [Relation],
    /// Lemmatised content words of the original question around the word
    /// ([`WordNet::context_bag`]): with them, the original's sense that the
    /// context picks (simplified Lesk) counts whatever its share.
    pub context: Option<&'a HashSet<String>>,
    /// The same for the perturbed question and the candidate's sense.
    pub candidate_context: Option<&'a HashSet<String>>,
    /// Where an adjective stands: `Some(true)` before its noun ("lonely
    /// pigeons"), `Some(false)` on its own ("the pigeon was lonely"), `None`
    /// unknown. WordNet marks lemmas usable only predicatively (`alone(p)`),
    /// only attributively (`main(a)`) or only after the noun (`galore(ip)`);
    /// a candidate whose lemma is marked for the other position does not pass
    /// ("1 alone pigeons").
    pub attributive: Option<bool>,
    /// The original word occurs more than once in the question. A more
    /// general word for one occurrence then reads as something else beside
    /// the others ("two cups of coffee … the coffee" → "two cups of drink …
    /// the coffee"), so `hypernym` links do not count.
    pub repeated: bool,
}

/// Positive evidence that a candidate means what the original means here:
/// both lemmas share a WordNet synset (or the original's synset points to the
/// candidate's with similar-to), in a sense common for both words.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SenseEvidence {
    /// `synonym` (same synset) or `similar-to` (adjective satellites).
    pub relation: String,
    /// The original's sense, WordNet-style: `buy.v.01`.
    pub sense: String,
    pub gloss: String,
    /// Share of the original lemma's tagged uses that fall on this sense.
    pub original_share: f32,
    /// Share of the candidate lemma's tagged uses that fall on the shared sense.
    pub candidate_share: f32,
    /// Context words the sense's gloss, examples and neighbours share with
    /// the question, when the sense was accepted because the context picks it
    /// (simplified Lesk) rather than for its share.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context_overlap: Vec<String>,
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
        // wordnet-db 0.1.3 expects `count lemma pos sense` lines, but the
        // real `cntlist.rev` holds `sense_key sense_number tag_count`; read it here.
        let sense_counts = std::fs::read_to_string(dir.join("cntlist.rev"))
            .map(|t| parse_cntlist(&t))
            .unwrap_or_default();
        Ok(WordNet {
            db,
            morphy,
            irregular,
            sense_counts,
            signatures: Mutex::new(HashMap::new()),
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

    /// True when sense counts (`cntlist.rev`) were found.
    pub fn has_sense_counts(&self) -> bool {
        !self.sense_counts.is_empty()
    }

    /// The senses of a lemma in WordNet's order (most frequent first) with the
    /// share of the lemma's SemCor-tagged uses each one has. A lemma never
    /// tagged gives its first sense the whole share.
    pub fn sense_shares(&self, pos: Pos, lemma: &str) -> Vec<(wordnet_types::SynsetId, f32)> {
        let ids = self.db.synsets_for_lemma(pos, lemma);
        let key = lemma.replace(' ', "_");
        let counts: Vec<u32> = (1..=ids.len() as u32)
            .map(|n| {
                self.sense_counts
                    .get(&(pos, key.clone(), n))
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        let total: u32 = counts.iter().sum();
        ids.iter()
            .zip(&counts)
            .enumerate()
            .map(|(i, (id, &c))| {
                let share = if total == 0 {
                    if i == 0 { 1.0 } else { 0.0 }
                } else {
                    c as f32 / total as f32
                };
                (*id, share)
            })
            .collect()
    }

    /// SemCor-tagged uses of a surface word as part of speech `pos` (every
    /// sense of every lemma it can have).
    /// The share of `word`'s SemCor-tagged uses, over every part of speech,
    /// that are uses as `pos` (`price`: 0.05 as a verb); `None` when SemCor
    /// never tagged it.
    pub fn pos_share(&self, pos: Pos, word: &str) -> Option<f32> {
        let total: u32 = ALL_POS.iter().map(|&p| self.tagged_uses(p, word)).sum();
        (total > 0).then(|| self.tagged_uses(pos, word) as f32 / total as f32)
    }

    pub fn tagged_uses(&self, pos: Pos, word: &str) -> u32 {
        self.lemmas_pos(pos, word)
            .iter()
            .map(|l| {
                let key = l.replace(' ', "_");
                (1..=self.db.synsets_for_lemma(pos, l).len() as u32)
                    .map(|n| {
                        self.sense_counts
                            .get(&(pos, key.clone(), n))
                            .copied()
                            .unwrap_or(0)
                    })
                    .sum::<u32>()
            })
            .sum()
    }

    /// A synset's normalised lemma texts with each one's syntactic marker
    /// (`p`, `a`, `ip`) where WordNet gives one.
    fn synset_lemma_markers(&self, id: wordnet_types::SynsetId) -> Vec<(String, Option<String>)> {
        self.db
            .get_synset(id)
            .map(|s| {
                s.words
                    .iter()
                    .map(|w| {
                        let bare = strip_marker(w.text);
                        let marker = w.text[bare.len()..]
                            .strip_prefix('(')
                            .and_then(|m| m.strip_suffix(')'))
                            .map(str::to_string);
                        (bare.to_lowercase().replace('_', " "), marker)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Evidence that `candidate` is a synonym of `original` (both surface
    /// words) as part of speech `pos`: a synset holding a lemma of each, whose
    /// share of the original's uses is at least `min_share` and of the
    /// candidate's at least `min_candidate_share`; for adjectives also a
    /// similar-to link. The strongest such sense wins; `None` without one.
    pub fn sense_evidence(
        &self,
        pos: Pos,
        original: &str,
        candidate: &str,
        min_share: f32,
        min_candidate_share: f32,
    ) -> Option<SenseEvidence> {
        let rule = SenseRule {
            min_share,
            min_candidate_share,
            relations: &[Relation::SimilarTo],
            context: None,
            candidate_context: None,
            attributive: None,
            repeated: false,
        };
        self.sense_evidence_in(pos, original, candidate, &rule)
    }

    /// [`WordNet::sense_evidence`] under a [`SenseRule`]: the links it names
    /// (similar-to only for adjectives), and a sense the context picks counts
    /// whatever its share. A sense passing on its shares beats one passing on
    /// context; among equals the larger product of shares wins.
    pub fn sense_evidence_in(
        &self,
        pos: Pos,
        original: &str,
        candidate: &str,
        rule: &SenseRule,
    ) -> Option<SenseEvidence> {
        let own = self.lemmas_pos(pos, original);
        let theirs = self.lemmas_pos(pos, &candidate.to_lowercase());
        if own.is_empty() || theirs.is_empty() {
            return None;
        }
        // The sense each lemma has in its sentence, by simplified Lesk.
        let picked = |lemma: &str, ctx: Option<&HashSet<String>>| {
            ctx.and_then(|c| self.context_sense(pos, lemma, c))
        };
        let mut best: Option<((bool, f32), SenseEvidence)> = None;
        for lo in &own {
            let in_context = picked(lo, rule.context);
            for (number, (sid, so)) in self.sense_shares(pos, lo).into_iter().enumerate() {
                let by_context = in_context.as_ref().filter(|(id, _)| *id == sid);
                if so < rule.min_share && by_context.is_none() {
                    continue;
                }
                let mut linked = vec![("synonym", sid)];
                if let Some(s) = self.db.get_synset(sid) {
                    for r in rule.relations {
                        if (*r == Relation::SimilarTo && pos != Pos::Adj)
                            || (*r == Relation::Hypernym && rule.repeated)
                        {
                            continue;
                        }
                        linked.extend(
                            s.pointers
                                .iter()
                                .filter(|p| p.symbol == r.symbol() && p.src_word.is_none())
                                .filter(|p| p.target.pos == pos)
                                .map(|p| (r.name(), p.target)),
                        );
                    }
                }
                for (relation, target) in linked {
                    let marked = self.synset_lemma_markers(target);
                    let fits = |(lemma, marker): &(String, Option<String>)| match (
                        marker.as_deref(),
                        rule.attributive,
                    ) {
                        (Some("p") | Some("ip"), Some(true)) | (Some("a"), Some(false)) => false,
                        _ => lemma != lo,
                    };
                    for lc in theirs
                        .iter()
                        .filter(|l| marked.iter().any(|m| &m.0 == *l && fits(m)))
                    {
                        let sc = self
                            .sense_shares(pos, lc)
                            .into_iter()
                            .find(|(id, _)| *id == target)
                            .map(|(_, s)| s)
                            .unwrap_or(0.0);
                        let cand_by_context = (sc < rule.min_candidate_share)
                            .then(|| picked(lc, rule.candidate_context))
                            .flatten()
                            .filter(|(id, _)| *id == target);
                        if sc < rule.min_candidate_share && cand_by_context.is_none() {
                            continue;
                        }
                        let on_shares = so >= rule.min_share && sc >= rule.min_candidate_share;
                        let strength = (on_shares, so * sc);
                        if best.as_ref().is_some_and(|(b, _)| *b >= strength) {
                            continue;
                        }
                        let gloss = self
                            .db
                            .get_synset(sid)
                            .map(|s| s.gloss.definition.to_string())
                            .unwrap_or_default();
                        let mut context_overlap = Vec::new();
                        if so < rule.min_share {
                            context_overlap
                                .extend(by_context.map(|(_, o)| o.clone()).unwrap_or_default());
                        }
                        if let Some((_, o)) = &cand_by_context {
                            context_overlap.extend(o.iter().cloned());
                        }
                        best = Some((
                            strength,
                            SenseEvidence {
                                relation: relation.to_string(),
                                sense: format!("{lo}.{}.{:02}", pos_letter(pos), number + 1),
                                gloss,
                                original_share: so,
                                candidate_share: sc,
                                context_overlap,
                            },
                        ));
                    }
                }
            }
        }
        best.map(|(_, e)| e)
    }

    /// WordNet calls the two words opposites as part of speech `pos`: a sense
    /// of one has an antonym pointer (`!`) to a synset holding the other (for
    /// adjectives also through the head a satellite is similar to:
    /// `tiny` → `small` ! `large`). Antonyms sit close in any distributional
    /// space (`buys` / `sells`), so in-context similarity never counts for them.
    pub fn antonymous(&self, pos: Pos, a: &str, b: &str) -> bool {
        let ours = self.lemmas_pos(pos, &a.to_lowercase());
        let theirs = self.lemmas_pos(pos, &b.to_lowercase());
        // A synset and, for adjectives, the heads it is similar to.
        let widen = |ids: Vec<wordnet_types::SynsetId>| -> Vec<wordnet_types::SynsetId> {
            let mut out = ids.clone();
            if pos == Pos::Adj {
                for id in ids {
                    if let Some(s) = self.db.get_synset(id) {
                        out.extend(
                            s.pointers
                                .iter()
                                .filter(|p| p.symbol == "&" && p.target.pos == pos)
                                .map(|p| p.target),
                        );
                    }
                }
            }
            out
        };
        let senses = |lemmas: &[String]| -> Vec<wordnet_types::SynsetId> {
            widen(
                lemmas
                    .iter()
                    .flat_map(|l| self.sense_shares(pos, l).into_iter().map(|(id, _)| id))
                    .collect(),
            )
        };
        let (mine, yours) = (senses(&ours), senses(&theirs));
        mine.iter().any(|id| {
            self.db.get_synset(*id).is_some_and(|s| {
                s.pointers
                    .iter()
                    .any(|p| p.symbol == "!" && yours.contains(&p.target))
            })
        })
    }

    /// The candidate names a kind of what the original names: a sense of it
    /// has a hypernym pointer (`@`, `@i`) to a sense of the original (`jeans`
    /// → `trousers`, which holds `pants`).
    pub fn narrower(&self, pos: Pos, original: &str, candidate: &str) -> bool {
        let ours: Vec<wordnet_types::SynsetId> = self
            .lemmas_pos(pos, &original.to_lowercase())
            .iter()
            .flat_map(|l| self.sense_shares(pos, l).into_iter().map(|(id, _)| id))
            .collect();
        self.lemmas_pos(pos, &candidate.to_lowercase())
            .iter()
            .flat_map(|l| self.sense_shares(pos, l).into_iter().map(|(id, _)| id))
            .any(|id| {
                self.db.get_synset(id).is_some_and(|s| {
                    s.pointers
                        .iter()
                        .any(|p| (p.symbol == "@" || p.symbol == "@i") && ours.contains(&p.target))
                })
            })
    }

    /// Lemmatised content words of `text` (lower case; every lemma WordNet
    /// gives each word, and the word itself), without stopwords, short words
    /// and the words `except` (the word being replaced).
    pub fn context_bag(&self, text: &str, except: &[&str]) -> HashSet<String> {
        let mut out = HashSet::new();
        for w in text
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| w.len() >= 3)
        {
            let lower = w.to_lowercase();
            if LESK_STOPWORDS.contains(&lower) {
                continue;
            }
            out.extend(self.lemmas(&lower).into_iter().map(|(_, l)| l));
            out.insert(lower);
        }
        for e in except {
            let lower = e.to_lowercase();
            for (_, l) in self.lemmas(&lower) {
                out.remove(&l);
            }
            out.remove(&lower);
        }
        out
    }

    /// Simplified Lesk (Kilgarriff & Rosenzweig 2000, extended with related
    /// synsets as in Banerjee & Pedersen 2002): the sense of `lemma` whose
    /// signature shares the most words with `context`, ties broken by
    /// frequency; `None` when no sense shares a word (the context says
    /// nothing). Returns the sense and the shared words.
    pub fn context_sense(
        &self,
        pos: Pos,
        lemma: &str,
        context: &HashSet<String>,
    ) -> Option<(wordnet_types::SynsetId, Vec<String>)> {
        let own: HashSet<String> = self
            .lemmas(lemma)
            .into_iter()
            .map(|(_, l)| l)
            .chain([lemma.to_string()])
            .collect();
        let mut best: Option<(usize, f32, wordnet_types::SynsetId, Vec<String>)> = None;
        for (id, share) in self.sense_shares(pos, lemma) {
            let sig = self.signature(id);
            let mut shared: Vec<String> = context
                .iter()
                .filter(|w| sig.contains(*w) && !own.contains(*w))
                .cloned()
                .collect();
            shared.sort();
            // The bag holds surface forms and their lemmas ("contains",
            // "contain"): count each word once, by its first lemma.
            let distinct: HashSet<String> = shared
                .iter()
                .map(|w| {
                    self.lemmas(w)
                        .into_iter()
                        .map(|(_, l)| l)
                        .next()
                        .unwrap_or_else(|| w.clone())
                })
                .collect();
            let n = distinct.len();
            let better = best
                .as_ref()
                .is_none_or(|(bn, s, _, _)| (n, share) > (*bn, *s));
            if better {
                best = Some((n, share, id, shared));
            }
        }
        // One shared word is too weak a signal: "The box contains 6 blue balls"
        // shares only "contain" with the testis sense of ball.
        best.filter(|(n, ..)| *n >= MIN_CONTEXT_OVERLAP)
            .map(|(_, _, id, w)| (id, w))
    }

    /// A synset's Lesk signature: the lemmatised content words of its gloss
    /// and examples, its lemmas, and the lemmas and definitions of the
    /// synsets it points to (hypernyms, hyponyms, parts, similar-to ...).
    fn signature(&self, id: wordnet_types::SynsetId) -> Arc<HashSet<String>> {
        if let Some(s) = self
            .signatures
            .lock()
            .ok()
            .and_then(|m| m.get(&id).cloned())
        {
            return s;
        }
        let mut text = String::new();
        if let Some(s) = self.db.get_synset(id) {
            text.push_str(s.gloss.raw);
            for w in &s.words {
                text.push(' ');
                text.push_str(&strip_marker(w.text).replace('_', " "));
            }
            for p in s.pointers.iter().filter(|p| p.src_word.is_none()) {
                if let Some(t) = self.db.get_synset(p.target) {
                    text.push(' ');
                    text.push_str(t.gloss.definition);
                    for w in &t.words {
                        text.push(' ');
                        text.push_str(&strip_marker(w.text).replace('_', " "));
                    }
                }
            }
        }
        let sig = Arc::new(self.context_bag(&text, &[]));
        if let Ok(mut m) = self.signatures.lock() {
            m.insert(id, sig.clone());
        }
        sig
    }

    /// True when WordNet knows `word` (any form, any part of speech): the
    /// dictionary check for content-word candidates.
    pub fn knows(&self, word: &str) -> bool {
        let lower = word.to_lowercase();
        lower.split(' ').all(|part| {
            ALL_POS
                .iter()
                .any(|&p| !self.lemmas_pos(p, part).is_empty())
        })
    }

    /// The forms `word` can have as part of speech `pos` (one per lemma).
    pub fn forms(&self, pos: Pos, word: &str) -> Vec<Form> {
        let lower = word.to_lowercase();
        self.lemmas_pos(pos, &lower)
            .iter()
            .map(|l| self.form_of(pos, &lower, l))
            .collect()
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
                } else if word.ends_with('s')
                    && (!lemma.ends_with('s') || word == format!("{lemma}es"))
                {
                    // `passes` from `pass` too, not only `goes` from `go`.
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
        self.synonyms_as(word, None, multiword)
    }

    /// [`WordNet::synonyms`] for one part of speech only (the one a tagger
    /// gave the word in its sentence), or every one with `None`.
    pub fn synonyms_as(&self, word: &str, pos: Option<Pos>, multiword: bool) -> Vec<Synonym> {
        let lower = word.to_lowercase();
        let all = self.lemmas(&lower);
        let own: Vec<(Pos, String)> = all
            .iter()
            .filter(|(p, _)| pos.is_none_or(|want| want == *p))
            .cloned()
            .collect();
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
                    if all.iter().any(|(_, l)| *l == text) || text == lower {
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

/// Words that carry no sense in a gloss or a question (for Lesk overlaps):
/// function words and the glosses' own vocabulary.
static LESK_STOPWORDS: std::sync::LazyLock<HashSet<String>> = std::sync::LazyLock::new(|| {
    let mut s: HashSet<String> = crate::attack::words::Stopwords::default_english()
        .iter()
        .cloned()
        .collect();
    for w in [
        "something",
        "someone",
        "somebody",
        "usually",
        "often",
        "especially",
        "etc",
        "one",
        "ones",
        "person",
        "thing",
        "things",
        "act",
        "state",
        "quality",
        "way",
        "part",
        "certain",
        "particular",
        "many",
        "much",
        "how",
        "what",
        "each",
    ] {
        s.insert(w.to_string());
    }
    s
});

/// `n`, `v`, `a`, `r`: WordNet's letter for a part of speech.
fn pos_letter(p: Pos) -> char {
    match p {
        Pos::Noun => 'n',
        Pos::Verb => 'v',
        Pos::Adj => 'a',
        Pos::Adv => 'r',
    }
}

/// Reads `cntlist.rev`: `lemma%ss_type:lex_filenum:lex_id:head:head_id sense_number tag_count`.
fn parse_cntlist(text: &str) -> HashMap<(Pos, String, u32), u32> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(key), Some(number), Some(count)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Some((lemma, rest)) = key.split_once('%') else {
            continue;
        };
        let pos = match rest.chars().next() {
            Some('1') => Pos::Noun,
            Some('2') => Pos::Verb,
            Some('3') | Some('5') => Pos::Adj,
            Some('4') => Pos::Adv,
            _ => continue,
        };
        if let (Ok(n), Ok(c)) = (number.parse::<u32>(), count.parse::<u32>()) {
            out.insert((pos, lemma.to_lowercase(), n), c);
        }
    }
    out
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

/// Fewest context words a sense's Lesk signature must share for the sentence
/// to pick it over sense frequency.
const MIN_CONTEXT_OVERLAP: usize = 2;

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
