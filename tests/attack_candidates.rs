//! Embedding index, candidate sources, merging and filters (real WordNet).

use mscr::attack::config::AttackConfig;
use mscr::attack::embedding::{EmbeddingIndex, whole_word};
use mscr::attack::filters::{FilterConfig, Filters};
use mscr::attack::sources::{SourceConfig, gather};
use mscr::attack::words::{Stopwords, split_words};
use mscr::attack::{Resources, WordNet, candidates_report};
use mscr::lm::{MaskFiller, SentenceEmbedder};
use mscr::model::Matrix;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

fn wordnet() -> Arc<WordNet> {
    static WN: OnceLock<Arc<WordNet>> = OnceLock::new();
    WN.get_or_init(|| Arc::new(WordNet::load_default().expect("WordNet 3.0 (run `mscr setup`)")))
        .clone()
}

/// A constructed vocabulary: purchased is close to bought, sold is farther,
/// subword and number entries must be dropped.
fn index() -> EmbeddingIndex {
    let vocab = [
        "Ġbought",
        " purchased",
        "ing",
        "Ġ12",
        " acquired",
        " sold",
        "Ġbought",
        " apples",
        " a",
    ];
    let rows: Vec<[f32; 3]> = vec![
        [1.0, 0.0, 0.0],
        [0.9, 0.1, 0.0],
        [1.0, 0.0, 0.0],
        [1.0, 0.0, 0.0],
        [2.0, 1.0, 0.0], // not unit length: normalised to cos 0.894 with bought
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0], // duplicate of bought: ignored
        [0.0, 0.0, 3.0],
        [1.0, 0.0, 0.0],
    ];
    let data = rows.iter().flatten().copied().collect();
    EmbeddingIndex::new(
        vocab.iter().map(|s| s.to_string()).collect(),
        Matrix::new(9, 3, data),
    )
    .unwrap()
}

#[test]
fn embedding_index_keeps_whole_words_and_ranks_by_cosine() {
    assert_eq!(whole_word("Ġapple"), Some("apple"));
    assert_eq!(whole_word(" apple"), Some("apple"));
    assert_eq!(whole_word("apple"), None);
    assert_eq!(whole_word(" 12"), None);
    let idx = index();
    assert_eq!(idx.len(), 5); // bought, purchased, acquired, sold, apples
    let n = idx.neighbours("bought", 10, -1.0);
    let names: Vec<&str> = n.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(names, ["purchased", "acquired", "sold", "apples"]);
    assert!((n[0].1 - 0.9 / (0.82f32).sqrt()).abs() < 1e-5);
    assert!((n[1].1 - 2.0 / 5f32.sqrt()).abs() < 1e-5);
    // k and min_cosine
    assert_eq!(idx.neighbours("bought", 1, -1.0).len(), 1);
    assert_eq!(idx.neighbours("Bought", 10, 0.5).len(), 2);
    assert!(idx.neighbours("unknown", 10, 0.0).is_empty());
    assert!((idx.cosine("bought", "sold").unwrap()).abs() < 1e-6);
}

#[test]
fn embedding_index_rejects_mismatched_shapes() {
    let e = EmbeddingIndex::new(vec![" a".into()], Matrix::zeros(2, 3)).unwrap_err();
    assert!(
        e.to_string().contains("1 entries") && e.to_string().contains("2 rows"),
        "{e}"
    );
}

fn resources() -> Resources {
    Resources {
        wordnet: Some(wordnet()),
        embeddings: Some(Arc::new(index())),
        ..Resources::default()
    }
}

#[test]
fn sources_merge_by_surface_form_and_keep_case() {
    let r = resources();
    let configs: Vec<SourceConfig> = toml::from_str::<toml::Table>(
        "[[s]]\nkind = \"embedding\"\nk = 5\nmin_cosine = 0.5\n[[s]]\nkind = \"wordnet\"\n",
    )
    .unwrap()["s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.clone().try_into().unwrap())
        .collect();
    let sources: Vec<_> = configs.iter().map(|c| c.build(&r).unwrap()).collect();
    let q = "Bought 12 apples.";
    let words = split_words(q, &Stopwords::default_english());
    let slots = gather(&sources, q, &words, &[0]).unwrap();
    let purchased = slots[0]
        .iter()
        .find(|c| c.text == "Purchased")
        .expect("Purchased");
    assert_eq!(purchased.sources, ["embedding", "wordnet"]);
    assert_eq!(purchased.scores.len(), 2);
    let acquired = slots[0]
        .iter()
        .find(|c| c.text == "Acquired")
        .expect("Acquired");
    assert_eq!(acquired.sources, ["embedding"]);
    assert!(
        slots[0]
            .iter()
            .all(|c| c.text.chars().next().unwrap().is_uppercase())
    );
}

/// A fixed-table masked LM fixture: checks the `mlm` source's whole-word and
/// probability handling (a real masked LM arrives with the encoder backend).
struct TableFiller(AtomicUsize);

impl MaskFiller for TableFiller {
    fn fill(&self, texts: &[String], top_k: usize) -> mscr::Result<Vec<Vec<(String, f32)>>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(texts
            .iter()
            .map(|t| {
                assert_eq!(t.matches("[MASK]").count(), 1, "{t}");
                vec![
                    ("bought".into(), 0.5),
                    ("##ed".into(), 0.2),
                    ("got".into(), 0.1),
                    ("Picked".into(), 0.05),
                    ("5".into(), 0.05),
                    ("took".into(), 0.001),
                ]
                .into_iter()
                .take(top_k)
                .collect()
            })
            .collect())
    }

    fn mask_token(&self) -> &str {
        "[MASK]"
    }
}

#[test]
fn mlm_source_keeps_whole_words_above_min_prob_in_one_batch() {
    let filler = Arc::new(TableFiller(AtomicUsize::new(0)));
    let r = Resources {
        mask_filler: Some(filler.clone()),
        ..Resources::default()
    };
    let c: SourceConfig = toml::from_str("kind = \"mlm\"\nk = 10\nmin_prob = 0.01").unwrap();
    let src = c.build(&r).unwrap();
    let q = "She bought apples and pears.";
    let words = split_words(q, &Stopwords::default_english());
    let targets: Vec<usize> = words
        .iter()
        .filter(|w| w.attackable())
        .map(|w| w.index)
        .collect();
    let got = src.propose(q, &words, &targets).unwrap();
    assert_eq!(
        filler.0.load(Ordering::SeqCst),
        1,
        "one fill call for all positions"
    );
    let bought = &got[0];
    let texts: Vec<&str> = bought.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts, ["got", "picked"]); // not itself, no subword, no digit, not below 0.01
}

#[test]
fn missing_resources_are_named() {
    let c: SourceConfig = toml::from_str("kind = \"mlm\"").unwrap();
    let e = c.build(&Resources::default()).err().unwrap().to_string();
    assert!(e.contains("mlm") && e.contains("masked LM"), "{e}");
    let e = Filters::new(
        vec![FilterConfig::SentenceSimilarity {
            min_cosine: 0.8,
            window: None,
        }],
        &Resources::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("sentence-similarity"), "{e}");
}

/// A deterministic character-trigram sentence embedding used to exercise the
/// similarity filter's batching and thresholds (all-MiniLM arrives with the encoder backend).
struct TrigramEmbedder(AtomicUsize);

impl SentenceEmbedder for TrigramEmbedder {
    fn embed(&self, texts: &[String]) -> mscr::Result<Vec<Vec<f32>>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; 64];
                let cs: Vec<char> = t.to_lowercase().chars().collect();
                for w in cs.windows(3) {
                    let h = w
                        .iter()
                        .fold(7u32, |h, c| h.wrapping_mul(31).wrapping_add(*c as u32));
                    v[(h % 64) as usize] += 1.0;
                }
                v
            })
            .collect())
    }
}

#[test]
fn filters_give_a_verdict_per_candidate() {
    let embedder = Arc::new(TrigramEmbedder(AtomicUsize::new(0)));
    let mut r = resources();
    r.embedder = Some(embedder.clone());
    let filters = Filters::new(
        vec![
            FilterConfig::Differs,
            FilterConfig::SamePos,
            FilterConfig::Numbers,
            FilterConfig::WordSimilarity { min_cosine: 0.5 },
            FilterConfig::SentenceSimilarity {
                min_cosine: 0.5,
                window: None,
            },
            FilterConfig::MaxRate { max: 0.4 },
        ],
        &r,
    )
    .unwrap();
    let q = "She bought 12 apples.";
    let words = split_words(q, &Stopwords::default_english());
    let cand = |t: &str| mscr::attack::sources::Candidate {
        text: t.into(),
        sources: vec!["test".into()],
        scores: Default::default(),
    };
    let slot = vec![
        cand("purchased"),
        cand("buy"),
        cand("sold"),
        cand("quickly"),
        cand("twelve"),
        cand("acquired"),
    ];
    let judged = filters.judge(q, &words, &[1], vec![slot], true).unwrap();
    assert_eq!(
        embedder.0.load(Ordering::SeqCst),
        1,
        "one embed call per question"
    );
    let j = &judged[0];
    let verdict = |i: usize, f: &str| {
        j[i].verdicts
            .iter()
            .find(|v| v.filter == f)
            .unwrap()
            .clone()
    };
    assert!(verdict(0, "differs").passed);
    assert!(!verdict(1, "differs").passed, "buy is bought's lemma");
    assert_eq!(verdict(1, "differs").note.as_deref(), Some("same lemma"));
    assert!(
        !verdict(2, "word-similarity").passed,
        "sold is orthogonal to bought"
    );
    assert!(!verdict(3, "same-pos").passed, "adverb for a verb");
    assert!(!verdict(4, "numbers").passed, "a number word was added");
    assert!(verdict(5, "word-similarity").passed);
    // 2 attackable words (bought, apples): one change is a 0.5 rate > 0.4.
    assert!(!verdict(0, "max-rate").passed);
    assert_eq!(verdict(0, "max-rate").value, Some(0.5));
    for c in j {
        assert_eq!(c.verdicts.len(), 6, "every filter judged every candidate");
        assert!(c.sentence_similarity.is_some());
        assert_eq!(c.passed, c.verdicts.iter().all(|v| v.passed));
    }
    assert_eq!(j[0].perturbed, "She purchased 12 apples.");
    // Without all_verdicts a candidate stops at its first failure and is not embedded.
    let slot = vec![cand("buy"), cand("purchased")];
    let judged = filters.judge(q, &words, &[1], vec![slot], false).unwrap();
    assert_eq!(judged[0][0].verdicts.len(), 1);
    assert!(judged[0][0].sentence_similarity.is_none());
}

#[test]
fn candidates_report_on_real_wordnet() {
    let mut config = AttackConfig::default_mscr();
    config.restrict_sources(&["wordnet".into()]).unwrap();
    // The model-backed filters are tested on their own; this one needs WordNet only.
    config.filters.retain(|f| {
        !matches!(
            f,
            FilterConfig::SentenceSimilarity { .. } | FilterConfig::Fluency { .. }
        )
    });
    for f in &mut config.filters {
        if let FilterConfig::Synonym {
            min_context_cosine,
            min_wordnet_context_cosine,
            ..
        } = f
        {
            // The encoder-backed evidence, tested on its own.
            *min_context_cosine = None;
            *min_wordnet_context_cosine = None;
        }
    }
    let r = Resources {
        wordnet: Some(wordnet()),
        ..Resources::default()
    };
    let report =
        candidates_report("Janet bought 16 eggs and three large baskets.", &r, &config).unwrap();
    let w = |t: &str| report.words.iter().find(|w| w.word.text == t).unwrap();
    assert_eq!(w("16").reason.as_deref(), Some("number"));
    assert_eq!(w("three").reason.as_deref(), Some("number word"));
    assert_eq!(w("and").reason.as_deref(), Some("stopword"));
    let bought = w("bought");
    assert!(bought.reason.is_none());
    let p = bought
        .candidates
        .iter()
        .find(|c| c.candidate.text == "purchased")
        .unwrap();
    assert!(p.passed && p.candidate.sources == ["wordnet"]);
    assert!(
        w("baskets")
            .candidates
            .iter()
            .all(|c| c.candidate.text != "basket")
    );
    let text = report.to_text();
    assert!(text.contains("protected (number)") && text.contains("purchased"));
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["words"][1]["candidates"].is_array());
}

#[test]
fn restrict_sources_rejects_unknown_names() {
    let mut c = AttackConfig::default_mscr();
    let e = c
        .restrict_sources(&["thesaurus".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("thesaurus") && e.contains("wordnet"), "{e}");
}

#[test]
fn sentence_similarity_window_compares_the_words_around_the_change() {
    let embedder = Arc::new(TrigramEmbedder(AtomicUsize::new(0)));
    let r = Resources {
        embedder: Some(embedder.clone()),
        ..Resources::default()
    };
    let filters = Filters::new(
        vec![FilterConfig::SentenceSimilarity {
            min_cosine: 0.0,
            window: Some(1),
        }],
        &r,
    )
    .unwrap();
    let q = "Long ago the farmer bought seven fat sheep near town.";
    let words = split_words(q, &Stopwords::default());
    let t = words.iter().position(|w| w.text == "bought").unwrap();
    let cand = mscr::attack::sources::Candidate {
        text: "purchased".into(),
        sources: vec!["test".into()],
        scores: Default::default(),
    };
    let judged = filters
        .judge(q, &words, &[t], vec![vec![cand]], true)
        .unwrap();
    let got = judged[0][0].sentence_similarity.unwrap();
    let v = embedder
        .embed(&[
            "farmer bought seven".into(),
            "farmer purchased seven".into(),
        ])
        .unwrap();
    let norm = |x: &[f32]| x.iter().map(|a| a * a).sum::<f32>().sqrt();
    let want =
        v[0].iter().zip(&v[1]).map(|(a, b)| a * b).sum::<f32>() / (norm(&v[0]) * norm(&v[1]));
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    // The whole-question cosine is higher: the window makes the filter sharper.
    let whole = filters
        .sentence_similarities(q, &[judged[0][0].perturbed.clone()])
        .unwrap()
        .unwrap()[0];
    assert!(whole > got, "{whole} vs {got}");
}

/// The validity filters on real WordNet with the contextual tagger.
#[test]
fn validity_filters_need_real_words_same_tag_form_and_a_shared_sense() {
    let r = resources();
    let filters = Filters::new(
        vec![
            FilterConfig::Dictionary,
            FilterConfig::PosTag,
            FilterConfig::Inflection,
            FilterConfig::Synonym {
                min_share: 0.1,
                min_candidate_share: 0.1,
                relations: vec![mscr::attack::wordnet::Relation::SimilarTo],
                context: false,
                candidate_context: false,
                min_context_cosine: None,
                min_wordnet_context_cosine: None,
            },
        ],
        &r,
    )
    .unwrap();
    let q = "Ellen bought 6 more balls than Marin.";
    let words = split_words(q, &Stopwords::default_english());
    let bought = words.iter().find(|w| w.text == "bought").unwrap().index;
    let balls = words.iter().find(|w| w.text == "balls").unwrap().index;
    let cand = |t: &str| mscr::attack::sources::Candidate {
        text: t.into(),
        sources: vec!["test".into()],
        scores: Default::default(),
    };
    let judged = filters
        .judge(
            q,
            &words,
            &[bought, balls],
            vec![
                vec![
                    cand("purchased"),
                    cand("purchase"),
                    cand("restaur"),
                    cand("quickly"),
                ],
                vec![cand("testicles"), cand("ball"), cand("brothers")],
            ],
            true,
        )
        .unwrap();
    let verdict = |s: usize, c: usize, f: &str| {
        judged[s][c]
            .verdicts
            .iter()
            .find(|v| v.filter == f)
            .unwrap()
            .clone()
    };
    let purchased = &judged[0][0];
    assert!(purchased.passed, "{:?}", purchased.verdicts);
    assert_eq!(purchased.evidence.tag.as_deref(), Some("VERB"));
    assert_eq!(purchased.evidence.relation.as_deref(), Some("synonym"));
    assert_eq!(purchased.evidence.sense.as_deref(), Some("buy.v.01"));
    assert!(
        !verdict(0, 1, "inflection").passed,
        "purchase is not past tense"
    );
    assert!(!verdict(0, 2, "dictionary").passed, "restaur is a fragment");
    assert!(
        !verdict(0, 2, "pos-tag").passed,
        "the tagger does not know restaur"
    );
    assert!(!verdict(0, 3, "pos-tag").passed, "an adverb for a verb");
    assert!(
        !verdict(1, 0, "synonym").passed,
        "testicles: a rare sense of ball"
    );
    assert!(!verdict(1, 1, "inflection").passed, "singular for plural");
    assert!(!verdict(1, 2, "synonym").passed, "brothers are not balls");
    for slot in &judged {
        for c in slot {
            assert_eq!(c.passed, c.verdicts.iter().all(|v| v.passed));
        }
    }
}

/// MSCR's judge stage through the real default model: the verdict and the
/// judge's reply are kept, and `exclude_rejected` marks rejections.
#[test]
fn judge_stage_runs_the_real_default_model() {
    use mscr::attack::goal;
    let model = mscr::runtime::load_model(
        mscr::model::spec::DEFAULT_MODEL,
        &mscr::runtime::LoadOptions::default(),
    )
    .expect("the default model (run `mscr setup`)");
    let q = "Tom has 3 apples and buys 2 more. How many apples does he have?";
    let p = "Tom has 3 apples and purchases 2 more. How many apples does he have?";
    for exclude in [false, true] {
        let v = goal::judge(model.as_ref(), 16, exclude, q, p, "5").unwrap();
        assert!(!v.output.trim().is_empty(), "the judge said nothing");
        assert_eq!(v.model, model.id());
        assert_eq!(
            v.answer_preserved,
            goal::parse_judge(&v.output).unwrap_or(false)
        );
        assert_eq!(v.excluded, exclude && !v.answer_preserved);
    }
    let config = AttackConfig::from_toml_str(
        "name = \"j\"\n[[sources]]\nkind = \"wordnet\"\n[search]\nkind = \"single-word\"\n\
         [judge]\nmodel = \"openai:http://127.0.0.1:9/v1#m\"\nexclude_rejected = true\n",
        "test",
    )
    .unwrap();
    let j = config.judge.unwrap();
    assert!(j.exclude_rejected);
    assert!(j.model.starts_with("openai:"));
}

/// The synonym filter's evidence besides WordNet, on the real
/// all-MiniLM-L6-v2: a synonym WordNet links only in a rare sense passes on
/// its in-context cosine; an antonym (close in any distributional space) and
/// an unrelated word do not; with WordNet evidence the cosine is not needed.
#[test]
fn synonym_filter_takes_in_context_similarity_but_not_antonyms() {
    let dir = mscr::paths::models_dir().join("all-minilm-l6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: run `cargo run -- setup` first",
        dir.display()
    );
    let options = mscr::runtime::LoadOptions {
        threads: 2,
        ..Default::default()
    };
    let encoder = mscr::runtime::encoder::SentenceEncoder::load(&dir, &options).unwrap();
    let r = Resources {
        wordnet: Some(wordnet()),
        embedder: Some(Arc::new(encoder)),
        ..Resources::default()
    };
    let synonym = |cosine| FilterConfig::Synonym {
        min_share: 0.1,
        min_candidate_share: 0.1,
        relations: vec![mscr::attack::wordnet::Relation::SimilarTo],
        context: false,
        candidate_context: false,
        min_context_cosine: cosine,
        min_wordnet_context_cosine: None,
    };
    let q = "Maria took 24 pictures at the zoo and then she buys 3 frames for them.";
    let words = split_words(q, &Stopwords::default_english());
    let at = |w: &str| words.iter().find(|x| x.text == w).unwrap().index;
    let cand = |t: &str| mscr::attack::sources::Candidate {
        text: t.into(),
        sources: vec!["test".into()],
        scores: Default::default(),
    };
    let slots = || {
        vec![
            vec![cand("photos"), cand("brothers")],
            vec![cand("sells"), cand("purchases")],
        ]
    };
    let targets = [at("pictures"), at("buys")];
    let with = Filters::new(vec![synonym(Some(0.75))], &r).unwrap();
    let judged = with.judge(q, &words, &targets, slots(), true).unwrap();
    let photos = &judged[0][0];
    assert!(photos.passed, "{:?}", photos.verdicts);
    assert_eq!(photos.evidence.relation.as_deref(), Some("context-cosine"));
    assert!(photos.evidence.context_cosine.unwrap() >= 0.75);
    let brothers = &judged[0][1];
    assert!(!brothers.passed, "{:?}", brothers.verdicts);
    assert!(brothers.evidence.context_cosine.unwrap() < 0.75);
    let sells = &judged[1][0];
    assert!(!sells.passed, "{:?}", sells.verdicts);
    assert!(
        sells.verdicts[0]
            .note
            .as_deref()
            .unwrap()
            .contains("antonyms"),
        "{:?}",
        sells.verdicts
    );
    let purchases = &judged[1][1];
    assert!(purchases.passed, "{:?}", purchases.verdicts);
    assert_eq!(purchases.evidence.relation.as_deref(), Some("synonym"));
    assert_eq!(purchases.evidence.context_cosine, None, "WordNet sufficed");
    // Without the option, photos has no evidence (WordNet links it to
    // pictures only through a rare sense of picture).
    let without = Filters::new(vec![synonym(None)], &r).unwrap();
    let judged = without.judge(q, &words, &targets, slots(), true).unwrap();
    assert!(!judged[0][0].passed);
    // Without an encoder the option is refused with a clear message.
    let bare = Resources {
        wordnet: Some(wordnet()),
        ..Resources::default()
    };
    let e = Filters::new(vec![synonym(Some(0.75))], &bare)
        .err()
        .unwrap();
    assert!(e.to_string().contains("min_context_cosine"), "{e}");
}
