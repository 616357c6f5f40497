//! Filters (TextAttack's "constraints"): which candidates may be used. Each
//! filter gives a verdict per candidate, recorded so `mscr candidates` can show
//! why a candidate was dropped.
//!
//! - `differs`: not the same word (case-insensitive) and not the same lemma
//!   (`apple` → `apples` is not a substitution).
//! - `same-pos`: the WordNet part-of-speech sets of original and candidate
//!   intersect. WordNet knows nouns, verbs, adjectives and adverbs only and
//!   assigns no sentence context, so this is a necessary-condition check: a
//!   word WordNet does not know passes (nothing to compare against).
//! - `numbers`: the perturbed question holds the same numbers and number
//!   words as the original, in the same order.
//! - `word-similarity`: cosine of the two words in the model's embedding
//!   space ≥ `min_cosine`; words without an entry pass (not judged).
//! - `sentence-similarity`: cosine of the sentence embeddings (all-MiniLM-L6-v2
//!   by default) of original and perturbed question ≥ `min_cosine`, every
//!   candidate of a question embedded in one batch.
//! - `max-words` / `max-rate`: how many words (or what share of the attackable
//!   words) one perturbed question may change; the search enforces them on
//!   multi-word perturbations.
//!
//! Validity filters (issue 13), one file each under `filters/`:
//! - `dictionary`: the candidate is a real word (WordNet knows it).
//! - `pos-tag`: the contextual tagger (`tagger.rs`) gives the candidate the
//!   original's part of speech in context (original and perturbed question
//!   tagged).
//! - `inflection`: same number, tense, person, degree as the original.
//! - `synonym`: WordNet links original and candidate in a sense common for
//!   both, or (option `context`) in the sense the question picks by gloss
//!   overlap (positive evidence of synonymy, whatever the source).
//! - `fluency`: a causal LM's log-probability of the perturbed question falls
//!   at most `max_drop` nats below the original's.

mod dictionary;
pub mod fluency;
pub mod inflection;
mod pos_tag;
mod synonym;

use super::Resources;
use super::sources::Candidate;
use super::tagger::{self, Tagged};
use super::wordnet::{Pos, Relation};
use super::words::{Word, apply_replacements, numbers_in};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FilterConfig {
    Differs,
    SamePos,
    Numbers,
    WordSimilarity {
        min_cosine: f32,
    },
    SentenceSimilarity {
        min_cosine: f32,
        /// Compare only this many words either side of the change (TextFooler
        /// compares a 15-word window); absent = the whole question.
        #[serde(default)]
        window: Option<usize>,
    },
    MaxWords {
        max: usize,
    },
    MaxRate {
        max: f32,
    },
    Dictionary,
    PosTag,
    Inflection,
    Synonym {
        /// Least share of the original lemma's tagged uses the shared sense must have.
        #[serde(default = "default_min_share")]
        min_share: f32,
        /// Least share of the candidate lemma's tagged uses it must have.
        #[serde(default = "default_min_share")]
        min_candidate_share: f32,
        /// WordNet links besides a shared synset that count as evidence
        /// (`similar-to`, `hypernym`, `verb-group`, `also-see`).
        #[serde(default = "default_relations")]
        relations: Vec<Relation>,
        /// Let the question pick the original's sense (simplified Lesk over
        /// glosses, examples and neighbouring synsets): a shared sense the
        /// context picks passes whatever its share.
        #[serde(default)]
        context: bool,
        /// The same for the candidate's sense in the perturbed question.
        #[serde(default)]
        candidate_context: bool,
        /// Evidence besides WordNet: the cosine between the original word's
        /// vector in the question and the candidate's in the perturbed
        /// question (all-MiniLM-L6-v2 hidden states over the word's tokens, a
        /// paraphrase-trained encoder) is at least this, and WordNet does not
        /// call the two words antonyms, and the candidate has at least
        /// `min_candidate_share` of its SemCor uses in the tagged part of
        /// speech. Catches synonyms WordNet links only
        /// in a rare sense or not at all (pictures → photos, items → things).
        #[serde(default)]
        min_context_cosine: Option<f32>,
        /// WordNet evidence is overruled when the same in-context cosine is
        /// below this: the shared sense is one the sentence does not use
        /// ("the hexagon shown here" → "established", "Write 3/20 as a
        /// decimal" → "Compose").
        #[serde(default)]
        min_wordnet_context_cosine: Option<f32>,
    },
    Fluency {
        /// Largest drop in total log-probability (nats) of the perturbed question.
        max_drop: f32,
        /// The scoring model (any model spec); default: the setup's SmolLM2.
        #[serde(default)]
        model: Option<String>,
    },
}

fn default_min_share() -> f32 {
    0.1
}

fn default_relations() -> Vec<Relation> {
    vec![Relation::SimilarTo]
}

impl FilterConfig {
    pub fn name(&self) -> &'static str {
        match self {
            FilterConfig::Differs => "differs",
            FilterConfig::SamePos => "same-pos",
            FilterConfig::Numbers => "numbers",
            FilterConfig::WordSimilarity { .. } => "word-similarity",
            FilterConfig::SentenceSimilarity { .. } => "sentence-similarity",
            FilterConfig::MaxWords { .. } => "max-words",
            FilterConfig::MaxRate { .. } => "max-rate",
            FilterConfig::Dictionary => "dictionary",
            FilterConfig::PosTag => "pos-tag",
            FilterConfig::Inflection => "inflection",
            FilterConfig::Synonym { .. } => "synonym",
            FilterConfig::Fluency { .. } => "fluency",
        }
    }

    pub fn validate(&self, origin: &str) -> Result<()> {
        let bad = |what: &str| {
            Err(Error::Config(format!(
                "{origin}: filter `{}`: {what}",
                self.name()
            )))
        };
        match self {
            FilterConfig::WordSimilarity { min_cosine }
            | FilterConfig::SentenceSimilarity { min_cosine, .. }
                if !(-1.0..=1.0).contains(min_cosine) =>
            {
                bad("min_cosine must lie in [-1, 1]")
            }
            FilterConfig::MaxWords { max: 0 } => bad("max must be at least 1"),
            FilterConfig::MaxRate { max } if !(*max > 0.0 && *max <= 1.0) => {
                bad("max must lie in (0, 1]")
            }
            FilterConfig::Synonym {
                min_share,
                min_candidate_share,
                ..
            } if !(0.0..=1.0).contains(min_share) || !(0.0..=1.0).contains(min_candidate_share) => {
                bad("min_share and min_candidate_share must lie in [0, 1]")
            }
            FilterConfig::Synonym {
                min_context_cosine,
                min_wordnet_context_cosine,
                ..
            } if [min_context_cosine, min_wordnet_context_cosine]
                .iter()
                .any(|c| c.is_some_and(|c| !(-1.0..=1.0).contains(&c))) =>
            {
                bad("min_context_cosine and min_wordnet_context_cosine must lie in [-1, 1]")
            }
            FilterConfig::Fluency { max_drop, .. } if !max_drop.is_finite() || *max_drop < 0.0 => {
                bad("max_drop must be a number of nats ≥ 0")
            }
            _ => Ok(()),
        }
    }
}

/// One filter's judgement of one candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FilterVerdict {
    pub filter: String,
    pub passed: bool,
    /// The measured value (cosine, rate), when the filter measures one.
    pub value: Option<f32>,
    pub note: Option<String>,
}

impl FilterVerdict {
    pub(crate) fn new(
        filter: &str,
        passed: bool,
        value: Option<f32>,
        note: Option<String>,
    ) -> Self {
        FilterVerdict {
            filter: filter.to_string(),
            passed,
            value,
            note,
        }
    }
}

/// What the validity filters found out about a candidate (shown by
/// `mscr candidates --json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The original word's part of speech in context (universal tag).
    pub tag: Option<String>,
    /// The candidate's part of speech in the perturbed question.
    pub candidate_tag: Option<String>,
    /// The shared WordNet sense (`buy.v.01`) and its gloss.
    pub sense: Option<String>,
    pub gloss: Option<String>,
    /// How WordNet links the two words: `synonym` or `similar-to`.
    pub relation: Option<String>,
    /// `log p(perturbed) − log p(original)` under the fluency model (nats).
    pub fluency_delta: Option<f32>,
    /// Cosine of the word's in-context vectors in the original and the
    /// perturbed question (the `synonym` filter's evidence besides WordNet),
    /// where it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_cosine: Option<f32>,
}

/// A candidate with every verdict and the similarities measured on the way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    #[serde(flatten)]
    pub candidate: Candidate,
    pub perturbed: String,
    pub verdicts: Vec<FilterVerdict>,
    pub word_similarity: Option<f32>,
    pub sentence_similarity: Option<f32>,
    #[serde(default)]
    pub evidence: Evidence,
    pub passed: bool,
}

/// What the cheap filters need to know about the word being replaced.
struct Context<'a> {
    question: &'a str,
    original: &'a str,
    tags: &'a [Tagged],
    perturbed_tags: &'a [Tagged],
    /// Byte offset of the word (the same in the original and perturbed question).
    start: usize,
    /// The word's WordNet part of speech in context, from the tagger.
    pos: Option<super::wordnet::Pos>,
    original_numbers: &'a [String],
    attackable: usize,
}

/// The configured filters plus the resources they need.
pub struct Filters {
    configs: Vec<FilterConfig>,
    resources: Resources,
}

/// How often `word` occurs in `text` as a whole word, ignoring case.
fn occurrences(text: &str, word: &str) -> usize {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-')
        .filter(|w| w.eq_ignore_ascii_case(word))
        .count()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

impl Filters {
    pub fn new(configs: Vec<FilterConfig>, resources: &Resources) -> Result<Self> {
        for c in &configs {
            match c {
                FilterConfig::SamePos if resources.wordnet.is_none() => {
                    return Err(Error::Config(
                        "filter `same-pos` needs WordNet, which was not loaded; run `mscr setup`"
                            .into(),
                    ));
                }
                FilterConfig::WordSimilarity { .. } if resources.embeddings.is_none() => {
                    return Err(Error::Config(
                        "filter `word-similarity` needs the model's embedding matrix, which was not loaded".into(),
                    ));
                }
                FilterConfig::Dictionary
                | FilterConfig::PosTag
                | FilterConfig::Inflection
                | FilterConfig::Synonym { .. }
                    if resources.wordnet.is_none() =>
                {
                    return Err(Error::Config(format!(
                        "filter `{}` needs WordNet, which was not loaded; run `mscr setup`",
                        c.name()
                    )));
                }
                FilterConfig::Fluency { .. } if resources.fluency.is_none() => {
                    return Err(Error::Config(
                        "filter `fluency` needs a scoring model, which was not loaded; run `mscr setup` or set `model`"
                            .into(),
                    ));
                }
                FilterConfig::Synonym {
                    min_context_cosine,
                    min_wordnet_context_cosine,
                    ..
                } if resources.embedder.is_none()
                    && (min_context_cosine.is_some() || min_wordnet_context_cosine.is_some()) =>
                {
                    return Err(Error::Config(
                        "filter `synonym` with min_context_cosine needs a sentence encoder (all-MiniLM-L6-v2), which was not loaded; run `mscr setup` or remove min_context_cosine"
                            .into(),
                    ));
                }
                FilterConfig::SentenceSimilarity { .. } if resources.embedder.is_none() => {
                    return Err(Error::Config(
                        "filter `sentence-similarity` needs a sentence encoder (all-MiniLM-L6-v2), which was not loaded"
                            .into(),
                    ));
                }
                _ => {}
            }
        }
        Ok(Filters {
            configs,
            resources: resources.clone(),
        })
    }

    /// Judges every candidate of every target (`slots[i]` belongs to word
    /// `targets[i]`). With `all_verdicts` every filter runs on every candidate
    /// (for reports); otherwise a candidate stops at its first failure and
    /// only survivors are sentence-embedded.
    pub fn judge(
        &self,
        question: &str,
        words: &[Word],
        targets: &[usize],
        slots: Vec<Vec<Candidate>>,
        all_verdicts: bool,
    ) -> Result<Vec<Vec<Judged>>> {
        let attackable = words.iter().filter(|w| w.attackable()).count().max(1);
        let original_numbers = numbers_in(question);
        // The original question tagged once; each perturbed one when a filter asks.
        let tag_text = |text: &str| match &self.resources.wordnet {
            Some(wn) => tagger::tag(wn, text),
            None => Vec::new(),
        };
        let tags = tag_text(question);
        let tags_perturbed = self
            .configs
            .iter()
            .any(|f| matches!(f, FilterConfig::PosTag));
        let mut out: Vec<Vec<Judged>> = Vec::with_capacity(slots.len());
        for (slot, &t) in slots.into_iter().zip(targets) {
            let original = &words[t].text;
            let start = words[t].byte_start;
            let tag = tagger::tag_at(&tags, start);
            let mut judged = Vec::with_capacity(slot.len());
            for cand in slot {
                let perturbed = apply_replacements(question, words, &[(t, cand.text.as_str())]);
                let word_similarity = self
                    .resources
                    .embeddings
                    .as_ref()
                    .and_then(|e| e.cosine(original, &cand.text));
                let perturbed_tags = if tags_perturbed {
                    tag_text(&perturbed)
                } else {
                    Vec::new()
                };
                let mut j = Judged {
                    candidate: cand,
                    perturbed,
                    verdicts: Vec::new(),
                    word_similarity,
                    sentence_similarity: None,
                    evidence: Evidence {
                        tag: Some(tagger::tag_name(tag)),
                        candidate_tag: tags_perturbed
                            .then(|| tagger::tag_name(tagger::tag_at(&perturbed_tags, start))),
                        ..Evidence::default()
                    },
                    passed: true,
                };
                let ctx = Context {
                    question,
                    original,
                    tags: &tags,
                    perturbed_tags: &perturbed_tags,
                    start,
                    pos: tag.and_then(tagger::wordnet_pos),
                    original_numbers: &original_numbers,
                    attackable,
                };
                for f in &self.configs {
                    if !j.passed && !all_verdicts {
                        break;
                    }
                    let v = match f {
                        // Batched below.
                        FilterConfig::SentenceSimilarity { .. } | FilterConfig::Fluency { .. } => {
                            continue;
                        }
                        _ => self.cheap_verdict(f, &ctx, &mut j),
                    };
                    // Without WordNet evidence the in-context cosine may still
                    // pass `synonym` (batched below): the candidate stays in
                    // the running until then.
                    let pending = !v.passed
                        && matches!(
                            f,
                            FilterConfig::Synonym {
                                min_context_cosine: Some(_),
                                ..
                            }
                        );
                    j.passed &= v.passed || pending;
                    j.verdicts.push(v);
                }
                judged.push(j);
            }
            out.push(judged);
        }
        self.context_verdicts(question, words, targets, &tags, &mut out, all_verdicts)?;
        self.fluency_verdicts(question, &mut out, all_verdicts)?;
        self.sentence_verdicts(question, words, targets, &mut out, all_verdicts)?;
        Ok(out)
    }

    /// The `synonym` filter's in-context evidence: for each candidate WordNet
    /// gave no evidence for (and that no other filter has rejected, unless
    /// `all`), the cosine of the word's vector in the original and the
    /// candidate's in the perturbed question, over a window of words around
    /// it; at least `min_context_cosine` and no WordNet antonymy passes.
    fn context_verdicts(
        &self,
        question: &str,
        words: &[Word],
        targets: &[usize],
        tags: &[Tagged],
        out: &mut [Vec<Judged>],
        all: bool,
    ) -> Result<()> {
        let Some((min, floor, min_pos_share)) = self.configs.iter().find_map(|f| match f {
            FilterConfig::Synonym {
                min_context_cosine,
                min_wordnet_context_cosine,
                min_candidate_share,
                ..
            } if min_context_cosine.is_some() || min_wordnet_context_cosine.is_some() => Some((
                *min_context_cosine,
                *min_wordnet_context_cosine,
                *min_candidate_share,
            )),
            _ => None,
        }) else {
            return Ok(());
        };
        let Some(embedder) = &self.resources.embedder else {
            return Ok(());
        };
        let synonym_index = |j: &Judged| j.verdicts.iter().position(|v| v.filter == "synonym");
        // The word's neighbourhood: long MATH500 problems would pass the
        // encoder's 256 tokens; 40 words either side is context enough.
        const WINDOW: usize = 40;
        let mut spans: Vec<(String, std::ops::Range<usize>)> = Vec::new();
        let mut who = Vec::new(); // (slot, candidate, index of the original's span)
        for (s, slot) in out.iter().enumerate() {
            let t = targets[s];
            let (a, b) = (
                words[t.saturating_sub(WINDOW)].byte_start,
                words[(t + WINDOW).min(words.len() - 1)].byte_end,
            );
            let (ws, we) = (words[t].byte_start, words[t].byte_end);
            let mut orig_index = None;
            for (c, j) in slot.iter().enumerate() {
                let Some(k) = synonym_index(j) else { continue };
                let others_pass = j
                    .verdicts
                    .iter()
                    .enumerate()
                    .all(|(i, v)| i == k || v.passed);
                // WordNet's evidence is checked against the floor; a missing
                // one may be made up by the cosine.
                let asked = if j.verdicts[k].passed {
                    floor.is_some()
                } else {
                    min.is_some()
                };
                if !asked || !(all || others_pass) {
                    continue;
                }
                let oi = *orig_index.get_or_insert_with(|| {
                    spans.push((question[a..b].to_string(), ws - a..we - a));
                    spans.len() - 1
                });
                let delta = j.perturbed.len() as isize - question.len() as isize;
                let (end, cand_end) = (
                    (b as isize + delta) as usize,
                    (we as isize + delta) as usize,
                );
                let text = j.perturbed.get(a..end).unwrap_or(&j.perturbed).to_string();
                spans.push((text, ws - a..cand_end - a));
                who.push((s, c, oi, spans.len() - 1));
            }
        }
        if who.is_empty() {
            return Ok(());
        }
        let vectors = embedder.embed_spans(&spans)?;
        if vectors.len() != spans.len() {
            return Err(Error::Runtime(format!(
                "sentence encoder returned {} vectors for {} spans",
                vectors.len(),
                spans.len()
            )));
        }
        for (s, c, oi, ci) in who {
            let sim = cosine(&vectors[oi], &vectors[ci]);
            let t = targets[s];
            let j = &mut out[s][c];
            let k = synonym_index(j).expect("synonym verdict");
            let pos = tagger::tag_at(tags, words[t].byte_start).and_then(tagger::wordnet_pos);
            j.evidence.context_cosine = Some(sim);
            if j.verdicts[k].passed {
                // WordNet evidence: only the floor applies.
                if floor.is_some_and(|f| sim < f) {
                    let v = &mut j.verdicts[k];
                    v.passed = false;
                    v.note = Some(format!(
                        "{}, but in-context cosine {sim:.3} is below {:.2}: not the sense used here",
                        v.note.as_deref().unwrap_or("WordNet evidence"),
                        floor.unwrap_or_default()
                    ));
                    j.passed = false;
                }
                continue;
            }
            let Some(min) = min else { continue };
            let (opposite, rare) = match (&self.resources.wordnet, pos) {
                (Some(wn), Some(p)) => (
                    wn.antonymous(p, &words[t].text, &j.candidate.text),
                    // The candidate must commonly be this part of speech:
                    // `cost` → `price` as verbs ("how much will it price?")
                    // is close in meaning but not how `price` is used.
                    wn.pos_share(p, &j.candidate.text)
                        .is_some_and(|s| s < min_pos_share),
                ),
                _ => (false, false),
            };
            // A narrower word (pants → jeans) is close in context but asks
            // about something more specific.
            // Nouns only: a verb's troponym is often the same act here
            // (increases → raises).
            let narrower = match (&self.resources.wordnet, pos) {
                (Some(wn), Some(p @ Pos::Noun)) => {
                    wn.narrower(p, &words[t].text, &j.candidate.text)
                }
                _ => false,
            };
            let ok = sim >= min && !opposite && !rare && !narrower;
            let v = &mut j.verdicts[k];
            v.value = Some(sim);
            if ok {
                v.passed = true;
                v.note = Some(format!("in-context cosine {sim:.3}"));
                j.evidence.relation = Some("context-cosine".into());
            } else {
                let why = if opposite {
                    "WordNet antonyms"
                } else if rare {
                    "the candidate is rarely this part of speech"
                } else if narrower {
                    "the candidate is a kind of the original (WordNet hyponym)"
                } else {
                    "in-context cosine too low"
                };
                v.note = Some(format!(
                    "{}; {why} ({sim:.3})",
                    v.note.as_deref().unwrap_or("no WordNet evidence")
                ));
            }
            j.passed = j.verdicts.iter().all(|v| v.passed);
        }
        // Candidates left pending without a vector (not asked for) fail now.
        for slot in out.iter_mut() {
            for j in slot {
                if j.verdicts.iter().any(|v| !v.passed) {
                    j.passed = false;
                }
            }
        }
        Ok(())
    }

    /// The `fluency` filter: every candidate still in the running (all of
    /// them with `all`) scored in one batch.
    fn fluency_verdicts(&self, question: &str, out: &mut [Vec<Judged>], all: bool) -> Result<()> {
        let Some(max_drop) = self.configs.iter().find_map(|f| match f {
            FilterConfig::Fluency { max_drop, .. } => Some(*max_drop),
            _ => None,
        }) else {
            return Ok(());
        };
        let Some(model) = &self.resources.fluency else {
            return Ok(());
        };
        let mut who = Vec::new();
        let mut texts = Vec::new();
        for (s, slot) in out.iter().enumerate() {
            for (c, j) in slot.iter().enumerate() {
                if all || j.passed {
                    who.push((s, c));
                    texts.push(j.perturbed.clone());
                }
            }
        }
        let deltas = fluency::deltas(model.as_ref(), question, &texts)?;
        for ((s, c), d) in who.into_iter().zip(deltas) {
            let j = &mut out[s][c];
            let ok = d >= -max_drop;
            j.evidence.fluency_delta = Some(d);
            j.passed &= ok;
            j.verdicts
                .push(FilterVerdict::new("fluency", ok, Some(d), None));
        }
        Ok(())
    }

    fn cheap_verdict(&self, f: &FilterConfig, ctx: &Context, j: &mut Judged) -> FilterVerdict {
        let name = f.name();
        let original = ctx.original;
        let original_numbers = ctx.original_numbers;
        let attackable = ctx.attackable;
        let cand = &j.candidate.text;
        match f {
            FilterConfig::Differs => {
                if cand.to_lowercase() == original.to_lowercase() {
                    FilterVerdict::new(name, false, None, Some("same word".into()))
                } else if self
                    .resources
                    .wordnet
                    .as_ref()
                    .is_some_and(|wn| wn.same_lemma(original, cand))
                {
                    FilterVerdict::new(name, false, None, Some("same lemma".into()))
                } else {
                    FilterVerdict::new(name, true, None, None)
                }
            }
            FilterConfig::SamePos => {
                let Some(wn) = &self.resources.wordnet else {
                    return FilterVerdict::new(name, true, None, Some("no WordNet".into()));
                };
                let (a, b) = (wn.pos_set(original), wn.pos_set(cand));
                if a.is_empty() || b.is_empty() {
                    FilterVerdict::new(name, true, None, Some("not in WordNet: not judged".into()))
                } else {
                    let note = format!("{} vs {}", a.names().join("/"), b.names().join("/"));
                    FilterVerdict::new(name, a.intersects(&b), None, Some(note))
                }
            }
            FilterConfig::Numbers => {
                let ok = numbers_in(&j.perturbed) == original_numbers;
                FilterVerdict::new(
                    name,
                    ok,
                    None,
                    (!ok).then(|| "a number was added or removed".into()),
                )
            }
            FilterConfig::WordSimilarity { min_cosine } => match j.word_similarity {
                Some(c) => FilterVerdict::new(name, c >= *min_cosine, Some(c), None),
                None => FilterVerdict::new(
                    name,
                    true,
                    None,
                    Some("no embedding entry: not judged".into()),
                ),
            },
            FilterConfig::MaxWords { max } => FilterVerdict::new(name, 1 <= *max, Some(1.0), None),
            FilterConfig::MaxRate { max } => {
                let rate = 1.0 / attackable as f32;
                FilterVerdict::new(name, rate <= *max, Some(rate), None)
            }
            FilterConfig::Dictionary => match &self.resources.wordnet {
                Some(wn) => dictionary::verdict(wn, cand),
                None => FilterVerdict::new(name, false, None, Some("no WordNet".into())),
            },
            FilterConfig::PosTag => pos_tag::verdict(ctx.tags, ctx.perturbed_tags, ctx.start),
            FilterConfig::Inflection => match &self.resources.wordnet {
                Some(wn) => inflection::verdict(wn, ctx.pos, original, cand),
                None => FilterVerdict::new(name, false, None, Some("no WordNet".into())),
            },
            FilterConfig::Synonym {
                min_share,
                min_candidate_share,
                relations,
                context,
                candidate_context,
                ..
            } => match &self.resources.wordnet {
                Some(wn) => {
                    let around = context.then(|| wn.context_bag(ctx.question, &[original]));
                    let around_candidate =
                        candidate_context.then(|| wn.context_bag(&j.perturbed, &[cand.as_str()]));
                    let rule = super::wordnet::SenseRule {
                        min_share: *min_share,
                        min_candidate_share: *min_candidate_share,
                        relations,
                        context: around.as_ref(),
                        candidate_context: around_candidate.as_ref(),
                        attributive: crate::attack::tagger::attributive_at(ctx.tags, ctx.start),
                        repeated: occurrences(ctx.question, original) > 1,
                    };
                    let (v, e) = synonym::evidence(wn, ctx.pos, original, cand, &rule);
                    if let Some(e) = e {
                        j.evidence.sense = Some(e.sense);
                        j.evidence.gloss = Some(e.gloss);
                        j.evidence.relation = Some(e.relation);
                    }
                    v
                }
                None => FilterVerdict::new(name, false, None, Some("no WordNet".into())),
            },
            FilterConfig::SentenceSimilarity { .. } | FilterConfig::Fluency { .. } => {
                FilterVerdict::new(name, true, None, None)
            }
        }
    }

    fn sentence_verdicts(
        &self,
        question: &str,
        words: &[Word],
        targets: &[usize],
        out: &mut [Vec<Judged>],
        all: bool,
    ) -> Result<()> {
        let Some((min, window)) = self.configs.iter().find_map(|f| match f {
            FilterConfig::SentenceSimilarity { min_cosine, window } => Some((*min_cosine, *window)),
            _ => None,
        }) else {
            return Ok(());
        };
        let Some(embedder) = &self.resources.embedder else {
            return Ok(());
        };
        // texts[0..] = one original text per slot (the whole question once
        // without a window), then one perturbed text per judged candidate.
        let mut texts: Vec<String> = Vec::new();
        let mut who = Vec::new(); // (slot, candidate, index of its original text)
        let mut perturbed = Vec::new();
        for (s, slot) in out.iter().enumerate() {
            let t = targets[s];
            let (a, b) = match window {
                Some(w) => (
                    words[t.saturating_sub(w)].byte_start,
                    words[(t + w).min(words.len() - 1)].byte_end,
                ),
                None => (0, question.len()),
            };
            let mut orig_index = None;
            for (c, j) in slot.iter().enumerate() {
                if !(all || j.passed) {
                    continue;
                }
                let oi = *orig_index.get_or_insert_with(|| {
                    texts.push(question[a..b].to_string());
                    texts.len() - 1
                });
                // Everything before the word is unchanged, so the window's
                // start is the same byte; its end moves by the length change.
                let delta = j.perturbed.len() as isize - question.len() as isize;
                let end = (b as isize + delta) as usize;
                perturbed.push(j.perturbed.get(a..end).unwrap_or(&j.perturbed).to_string());
                who.push((s, c, oi));
            }
        }
        if who.is_empty() {
            return Ok(());
        }
        let n_orig = texts.len();
        texts.extend(perturbed);
        let vectors = embedder.embed(&texts)?;
        if vectors.len() != texts.len() {
            return Err(Error::Runtime(format!(
                "sentence encoder returned {} vectors for {} texts",
                vectors.len(),
                texts.len()
            )));
        }
        for (k, (s, c, oi)) in who.into_iter().enumerate() {
            let sim = cosine(&vectors[oi], &vectors[n_orig + k]);
            let j = &mut out[s][c];
            j.sentence_similarity = Some(sim);
            j.passed &= sim >= min;
            j.verdicts.push(FilterVerdict::new(
                "sentence-similarity",
                sim >= min,
                Some(sim),
                None,
            ));
        }
        Ok(())
    }

    /// Checks a multi-word perturbation against `max-words`, `max-rate` and
    /// `numbers` (for greedy search).
    pub fn allows_changes(
        &self,
        question: &str,
        perturbed: &str,
        changed: usize,
        attackable: usize,
    ) -> bool {
        self.configs.iter().all(|f| match f {
            FilterConfig::MaxWords { max } => changed <= *max,
            FilterConfig::MaxRate { max } => changed as f32 / attackable.max(1) as f32 <= *max,
            FilterConfig::Numbers => numbers_in(perturbed) == numbers_in(question),
            _ => true,
        })
    }

    /// Sentence cosine of original and perturbed questions (batched).
    pub fn sentence_similarities(
        &self,
        question: &str,
        perturbed: &[String],
    ) -> Result<Option<Vec<f32>>> {
        let Some(embedder) = &self.resources.embedder else {
            return Ok(None);
        };
        if perturbed.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let mut texts = vec![question.to_string()];
        texts.extend(perturbed.iter().cloned());
        let v = embedder.embed(&texts)?;
        if v.len() != texts.len() {
            return Err(Error::Runtime(
                "sentence encoder returned the wrong number of vectors".into(),
            ));
        }
        Ok(Some(v[1..].iter().map(|x| cosine(&v[0], x)).collect()))
    }

    pub fn sentence_threshold(&self) -> Option<f32> {
        self.configs.iter().find_map(|f| match f {
            FilterConfig::SentenceSimilarity { min_cosine, .. } => Some(*min_cosine),
            _ => None,
        })
    }
}
