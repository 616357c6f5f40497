//! WordNet synonyms, lemmas and re-inflection on the real WordNet 3.0 files.

use mscr::attack::wordnet::{Form, Pos, WordNet};
use std::sync::OnceLock;

fn wn() -> &'static WordNet {
    static WN: OnceLock<WordNet> = OnceLock::new();
    WN.get_or_init(|| {
        WordNet::load_default().expect("WordNet 3.0 in /usr/share/wordnet (run `mscr setup`)")
    })
}

fn texts(word: &str) -> Vec<String> {
    wn().synonyms(word, false)
        .into_iter()
        .map(|s| s.text)
        .collect()
}

#[test]
fn loads_the_whole_dictionary() {
    assert!(
        wn().lemma_count() > 140_000,
        "{} lemmas",
        wn().lemma_count()
    );
}

#[test]
fn bought_gives_past_tense_verbs() {
    let t = texts("bought");
    assert!(t.contains(&"purchased".to_string()), "{t:?}");
    // Every verb synonym is in the past: no bare `purchase`.
    assert!(!t.contains(&"purchase".to_string()), "{t:?}");
    assert!(!t.iter().any(|w| w == "buy" || w == "bought"), "{t:?}");
}

#[test]
fn plurals_stay_plural() {
    let cars = texts("cars");
    for w in ["autos", "automobiles", "machines"] {
        assert!(cars.contains(&w.to_string()), "{w} missing from {cars:?}");
    }
    assert!(!cars.contains(&"auto".to_string()), "{cars:?}");
    let noun_syns: Vec<_> = wn()
        .synonyms("apples", true)
        .into_iter()
        .filter(|s| s.pos == Pos::Noun)
        .collect();
    assert!(!noun_syns.is_empty());
    for s in &noun_syns {
        assert!(
            s.text.ends_with('s') || s.text.ends_with("ae"),
            "{s:?} is not plural"
        );
    }
}

#[test]
fn running_gives_ing_forms() {
    let verbs: Vec<_> = wn()
        .synonyms("running", false)
        .into_iter()
        .filter(|s| s.pos == Pos::Verb)
        .collect();
    assert!(verbs.len() > 10, "{verbs:?}");
    assert!(verbs.iter().all(|s| s.text.ends_with("ing")), "{verbs:?}");
    assert!(verbs.iter().any(|s| s.text == "operating"));
}

#[test]
fn irregular_forms_come_from_the_exception_lists() {
    let w = wn();
    assert_eq!(w.inflect(Pos::Verb, "buy", Form::Past), "bought");
    assert_eq!(w.inflect(Pos::Verb, "take", Form::Past), "took");
    assert_eq!(w.inflect(Pos::Verb, "take", Form::PastParticipleN), "taken");
    assert_eq!(w.inflect(Pos::Noun, "goose", Form::Plural), "geese");
    assert_eq!(
        w.inflect(Pos::Verb, "purchase", Form::ThirdPerson),
        "purchases"
    );
    assert_eq!(w.inflect(Pos::Verb, "run", Form::Ing), "running");
    assert_eq!(w.inflect(Pos::Adj, "good", Form::Comparative), "better");
    assert_eq!(w.form_of(Pos::Verb, "bought", "buy"), Form::Past);
    assert_eq!(w.form_of(Pos::Verb, "buys", "buy"), Form::ThirdPerson);
    assert_eq!(w.form_of(Pos::Noun, "geese", "goose"), Form::Plural);
}

#[test]
fn lemmas_and_parts_of_speech() {
    let w = wn();
    assert!(w.same_lemma("apples", "apple"));
    assert!(w.same_lemma("bought", "buy"));
    assert!(
        w.same_lemma("eggs", "egg"),
        "double letters before a suffix"
    );
    assert!(!w.same_lemma("bought", "purchased"));
    let p = w.pos_set("quickly");
    assert!(p.contains(Pos::Adv) && !p.contains(Pos::Noun));
    assert!(w.pos_set("xyzzyq").is_empty());
}

#[test]
fn adjective_markers_and_multiword_lemmas() {
    let all: Vec<String> = wn()
        .synonyms("big", true)
        .into_iter()
        .map(|s| s.text)
        .collect();
    assert!(
        all.iter().all(|t| !t.contains('(') && !t.contains('_')),
        "{all:?}"
    );
    assert!(all.iter().any(|t| t.contains(' ')), "multiword on: {all:?}");
    let single = texts("big");
    assert!(single.iter().all(|t| !t.contains(' ')), "{single:?}");
    assert!(single.contains(&"large".to_string()));
}

#[test]
fn missing_dictionary_is_a_readable_error() {
    let e = WordNet::load("/nonexistent/wordnet")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/nonexistent/wordnet") && e.contains("mscr setup"),
        "{e}"
    );
}
