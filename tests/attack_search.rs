//! Search strategies: ordering logic and budget accounting, against a scripted
//! oracle (a fixed rule for which questions break and fixed log-prob scores).

use mscr::attack::filters::{FilterConfig, Filters, Judged};
use mscr::attack::search::{
    Evaluated, Oracle, SearchConfig, SearchInput, Slot, leave_one_out, order_by_expected_damage,
    order_by_importance, order_by_score, random,
};
use mscr::attack::sources::Candidate;
use mscr::attack::words::{Stopwords, Word, split_words};
use mscr::attack::{AttackConfig, Resources};
use std::collections::HashMap;

const Q: &str = "Tom bought red apples at the busy market.";

/// Breaks (answer wrong) when every word of `breaks` appears; scores are
/// looked up per replacement word (default 0).
struct Scripted {
    breaks: Vec<&'static str>,
    scores: HashMap<&'static str, f32>,
    left: usize,
    batches: Vec<Vec<String>>,
    score_calls: usize,
    scored: usize,
}

impl Scripted {
    fn new(breaks: &[&'static str], scores: &[(&'static str, f32)], budget: usize) -> Self {
        Scripted {
            breaks: breaks.to_vec(),
            scores: scores.iter().copied().collect(),
            left: budget,
            batches: Vec::new(),
            score_calls: 0,
            scored: 0,
        }
    }
    fn queries(&self) -> usize {
        self.batches.iter().map(|b| b.len()).sum()
    }
}

impl Oracle for Scripted {
    fn generate(&mut self, questions: &[String]) -> mscr::Result<Vec<Evaluated>> {
        assert!(questions.len() <= self.left, "search exceeded the budget");
        self.left -= questions.len();
        self.batches.push(questions.to_vec());
        Ok(questions
            .iter()
            .map(|q| {
                let wrong = self
                    .breaks
                    .iter()
                    .all(|b| q.split(' ').any(|w| w.trim_end_matches('.') == *b));
                Evaluated::plain(format!("out: {q}"), Some("1".into()), wrong, 3)
            })
            .collect())
    }
    fn score(&mut self, questions: &[String]) -> mscr::Result<Vec<f32>> {
        self.score_calls += 1;
        self.scored += questions.len();
        Ok(questions
            .iter()
            .map(|q| {
                q.split(' ')
                    .map(|w| {
                        self.scores
                            .get(w.trim_end_matches('.'))
                            .copied()
                            .unwrap_or(0.0)
                    })
                    .sum()
            })
            .collect())
    }
    fn remaining(&self) -> usize {
        self.left
    }
}

fn judged(text: &str, sim: f32, sources: usize) -> Judged {
    Judged {
        candidate: Candidate {
            text: text.into(),
            sources: ["wordnet", "embedding", "mlm"][..sources]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            scores: Default::default(),
        },
        perturbed: String::new(),
        verdicts: vec![],
        word_similarity: None,
        sentence_similarity: Some(sim),
        evidence: Default::default(),
        passed: true,
    }
}

fn words() -> Vec<Word> {
    split_words(Q, &Stopwords::default_english())
}

/// Slots: bought (importance 1), apples (3), market (2).
fn slots(w: &[Word]) -> Vec<Slot> {
    let idx = |t: &str| w.iter().position(|x| x.text == t).unwrap();
    vec![
        Slot {
            word_index: idx("bought"),
            importance: 1.0,
            candidates: vec![judged("purchased", 0.95, 2), judged("got", 0.9, 1)],
        },
        Slot {
            word_index: idx("apples"),
            importance: 3.0,
            candidates: vec![
                judged("pears", 0.93, 1),
                judged("fruits", 0.97, 1),
                judged("plums", 0.91, 1),
            ],
        },
        Slot {
            word_index: idx("market"),
            importance: 2.0,
            candidates: vec![judged("bazaar", 0.9, 1), judged("mart", 0.9, 3)],
        },
    ]
}

fn filters(max_words: usize) -> Filters {
    Filters::new(
        vec![
            FilterConfig::MaxWords { max: max_words },
            FilterConfig::Numbers,
        ],
        &Resources::default(),
    )
    .unwrap()
}

fn input<'a>(
    w: &'a [Word],
    f: &'a Filters,
    batch: usize,
    max_words: usize,
    seed: u64,
) -> SearchInput<'a> {
    SearchInput {
        question: Q,
        words: w,
        slots: slots(w),
        filters: f,
        batch,
        max_words,
        seed,
    }
}

fn search(toml_text: &str) -> SearchConfig {
    toml::from_str(toml_text).unwrap()
}

#[test]
fn ordering_helpers() {
    assert_eq!(order_by_importance(&[1.0, 3.0, 2.0, 3.0]), [1, 3, 2, 0]);
    assert_eq!(
        leave_one_out(-10.0, &[-12.0, -10.5, -9.0]),
        [2.0, 0.5, -1.0]
    );
    assert_eq!(order_by_score(&[-1.0, -5.0, -3.0, -5.0]), [1, 3, 2, 0]);
    let c = vec![
        judged("a", 0.95, 1),
        judged("b", 0.9, 1),
        judged("c", 0.9, 3),
        judged("d", 0.99, 2),
    ];
    // Lower similarity first; among equals, more agreeing sources first.
    assert_eq!(order_by_expected_damage(&c), [2, 1, 0, 3]);
}

#[test]
fn single_word_without_prescreen_walks_positions_by_importance() {
    let (w, f) = (words(), filters(1));
    let inp = input(&w, &f, 8, 1, 0);
    let mut o = Scripted::new(&["bazaar"], &[], 40);
    let r = search("kind = \"single-word\"\nprescreen = false")
        .run(&inp, &mut o)
        .unwrap();
    assert!(r.success);
    assert_eq!(
        r.question.as_deref(),
        Some("Tom bought red apples at the busy bazaar.")
    );
    assert_eq!(r.picks, [(2, 0)]);
    // apples first (3 candidates, one batch, by expected damage), then market (one batch).
    assert_eq!(o.batches.len(), 2);
    assert_eq!(o.batches[0][0], "Tom bought red plums at the busy market.");
    assert_eq!(o.batches[0].len(), 3);
    assert_eq!(
        o.batches[1][0], "Tom bought red apples at the busy mart.",
        "3 sources before 1 at equal similarity"
    );
    assert_eq!(o.queries(), 5);
    assert_eq!(o.score_calls, 0);
}

#[test]
fn single_word_batches_respect_batch_size_and_budget() {
    let (w, f) = (words(), filters(1));
    let inp = input(&w, &f, 2, 1, 0);
    let mut o = Scripted::new(&["never"], &[], 4);
    let r = search("kind = \"single-word\"\nprescreen = false")
        .run(&inp, &mut o)
        .unwrap();
    assert!(!r.success);
    assert_eq!(o.queries(), 4, "stops exactly at the budget");
    assert!(o.batches.iter().all(|b| b.len() <= 2));
    // The failed attack reports the last question tried.
    assert_eq!(
        r.question.as_deref(),
        Some(o.batches.last().unwrap().last().unwrap().as_str())
    );
}

#[test]
fn prescreen_generates_the_most_damaging_first() {
    let (w, f) = (words(), filters(1));
    let scores = [("got", -9.0), ("pears", -2.0), ("bazaar", -1.0)];
    let inp = input(&w, &f, 1, 1, 0);
    let mut o = Scripted::new(&["got"], &scores, 40);
    let r = search("kind = \"single-word\"\nprescreen = true")
        .run(&inp, &mut o)
        .unwrap();
    assert!(r.success);
    assert_eq!(
        o.queries(),
        1,
        "the lowest log-prob candidate breaks the model"
    );
    assert_eq!(
        o.score_calls, 1,
        "one batched score call for all 7 candidates"
    );
    // Without the pre-screen the same attack needs every apples and market candidate first.
    let mut o2 = Scripted::new(&["got"], &scores, 40);
    let r2 = search("kind = \"single-word\"\nprescreen = false")
        .run(&input(&w, &f, 1, 1, 0), &mut o2)
        .unwrap();
    assert!(r2.success);
    assert_eq!(o2.queries(), 6, "apples 3 + market 2 + got");
    // A limited pre-screen scores only the plain plan's first candidates (apples'),
    // generates those best-first, then the rest in the plain order.
    let mut o3 = Scripted::new(&["got"], &scores, 40);
    let r3 = search("kind = \"single-word\"\nprescreen = true\nprescreen_limit = 3")
        .run(&input(&w, &f, 1, 1, 0), &mut o3)
        .unwrap();
    assert!(r3.success);
    assert_eq!(o3.scored, 3, "only the three apples candidates are scored");
    assert_eq!(o3.queries(), 6, "got lies outside the scored three");
    let mut o4 = Scripted::new(&["got"], &scores, 40);
    search("kind = \"single-word\"\nprescreen = true\nprescreen_limit = 7")
        .run(&input(&w, &f, 1, 1, 0), &mut o4)
        .unwrap();
    assert_eq!(
        (o4.scored, o4.queries()),
        (7, 1),
        "a limit of all = no limit"
    );
}

/// When one batch holds every candidate and the budget allows it, scores
/// could only reorder that batch: the pre-screen is skipped, everything goes
/// out at once, and the same attack succeeds with the same queries.
#[test]
fn prescreen_is_skipped_when_one_batch_holds_every_candidate() {
    let (w, f) = (words(), filters(1));
    let scores = [("got", -9.0), ("pears", -2.0), ("bazaar", -1.0)];
    let config = search("kind = \"single-word\"\nprescreen = true");
    let mut o = Scripted::new(&["got"], &scores, 40);
    let r = config.run(&input(&w, &f, 8, 1, 0), &mut o).unwrap();
    assert!(r.success);
    assert_eq!(o.score_calls, 0, "nothing scored");
    assert_eq!(o.batches.len(), 1);
    assert_eq!(o.batches[0].len(), 7, "all seven candidates in one batch");
    assert!(config.one_batch_holds_all(7, 8, 40));
    assert!(
        !config.one_batch_holds_all(7, 8, 6),
        "not within the budget"
    );
    assert!(!config.one_batch_holds_all(9, 8, 40), "more than a batch");
    // A batch smaller than the candidates keeps the pre-screen.
    let mut o2 = Scripted::new(&["got"], &scores, 40);
    config.run(&input(&w, &f, 4, 1, 0), &mut o2).unwrap();
    assert_eq!(o2.score_calls, 1);
    assert!(!search("kind = \"single-word\"\nprescreen = false").one_batch_holds_all(1, 8, 40));
}

#[test]
fn greedy_combines_words_up_to_max_words() {
    let (w, f2) = (words(), filters(2));
    // Breaks only with both plums and bazaar; plums is the most damaging apples candidate.
    let scores = [("plums", -5.0), ("pears", -1.0), ("bazaar", -3.0)];
    let mut o = Scripted::new(&["plums", "bazaar"], &scores, 40);
    let r = search("kind = \"greedy\"")
        .run(&input(&w, &f2, 8, 2, 0), &mut o)
        .unwrap();
    assert!(r.success);
    assert_eq!(
        r.question.as_deref(),
        Some("Tom bought red plums at the busy bazaar.")
    );
    assert_eq!(r.picks.len(), 2);
    assert_eq!(o.batches.len(), 2, "one batch per position");
    assert_eq!(o.batches[1].len(), 2, "market's candidates on top of plums");
    assert!(o.batches[1].iter().all(|q| q.contains("plums")));
    // With one word allowed it cannot succeed, and stops after one position.
    let f1 = filters(1);
    let mut o1 = Scripted::new(&["plums", "bazaar"], &scores, 40);
    let r1 = search("kind = \"greedy\"")
        .run(&input(&w, &f1, 8, 1, 0), &mut o1)
        .unwrap();
    assert!(!r1.success);
    assert_eq!(o1.batches.len(), 1);
}

#[test]
fn random_baseline_is_seeded_and_budgeted() {
    let (w, f) = (words(), filters(1));
    let plan = |seed| random::plan(&input(&w, &f, 8, 1, seed), usize::MAX);
    let a = plan(7);
    assert_eq!(a, plan(7), "same seed, same plan");
    assert_ne!(a, plan(8), "another seed, another plan");
    assert_eq!(a.len(), 7, "every candidate once");
    let mut all: Vec<(usize, usize)> = a.iter().map(|p| p[0]).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 7);
    // The first round visits each position once before any repeats.
    let mut first: Vec<usize> = a[..3].iter().map(|p| p[0].0).collect();
    first.sort();
    assert_eq!(first, [0, 1, 2]);
    let mut o = Scripted::new(&["never"], &[], 5);
    let r = search("kind = \"random\"")
        .run(&input(&w, &f, 2, 1, 7), &mut o)
        .unwrap();
    assert!(!r.success);
    assert_eq!(o.queries(), 5);
    assert_eq!(o.score_calls, 0);
    // Multi-word random perturbations change up to max_words positions.
    let f3 = filters(3);
    let multi = random::plan(&input(&w, &f3, 8, 3, 1), usize::MAX);
    assert_eq!(multi[0].len(), 3);
}

#[test]
fn shipped_configs_parse_and_bad_ones_explain() {
    let m = AttackConfig::default_mscr();
    assert_eq!(m.name, "mscr");
    assert_eq!(m.max_words(), 1);
    assert_eq!(m.sources.len(), 3);
    assert!(matches!(m.search, SearchConfig::SingleWord(_)));
    let r = AttackConfig::random_baseline();
    assert!(matches!(r.search, SearchConfig::Random(_)));
    assert_eq!(r.budget, m.budget, "baseline has the same budget");
    assert_eq!(r.filters, m.filters, "and the same filters");
    let e = AttackConfig::from_toml_str(
        "name = \"x\"\nbogus = 1\n[search]\nkind = \"random\"",
        "my.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("my.toml") && e.contains("bogus"), "{e}");
    let e = AttackConfig::from_toml_str("name = \"x\"\n[search]\nkind = \"random\"", "my.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no candidate source"), "{e}");
    let e = AttackConfig::from_toml_str(
        "name = \"x\"\n[[sources]]\nkind = \"wordnet\"\n[[filters]]\nkind = \"max-rate\"\nmax = 2.0\n[search]\nkind = \"greedy\"",
        "my.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("max-rate"), "{e}");
    let e = AttackConfig::from_file("/nonexistent/attack.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/attack.toml"), "{e}");
}
