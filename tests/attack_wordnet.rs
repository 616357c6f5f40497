//! WordNet synonyms, lemmas and re-inflection on the real WordNet 3.0 files.

use mscr::attack::wordnet::{Form, Pos, Relation, SenseRule, WordNet};
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

#[test]
fn sense_counts_are_read_from_cntlist() {
    assert!(wn().has_sense_counts(), "cntlist.rev not read");
    // `ball`'s first noun sense (a round object) dominates its tagged uses.
    let shares = wn().sense_shares(Pos::Noun, "ball");
    assert!(shares.len() > 5);
    let total: f32 = shares.iter().map(|(_, s)| s).sum();
    assert!((total - 1.0).abs() < 1e-4, "{total}");
    assert!(shares[0].1 > 0.2, "{shares:?}");
}

#[test]
fn synonymy_needs_a_sense_common_for_both_words() {
    let ev = |pos, a, b| wn().sense_evidence(pos, a, b, 0.1, 0.1);
    // bought → purchased: buy.v.01 is buy's main sense and purchase's only one.
    let e = ev(Pos::Verb, "bought", "purchased").expect("buy/purchase share buy.v.01");
    assert_eq!(e.relation, "synonym");
    assert_eq!(e.sense, "buy.v.01");
    // balls → testicles: only through ball's rare `testis` sense.
    assert!(ev(Pos::Noun, "balls", "testicles").is_none());
    // A word in another synset altogether.
    assert!(ev(Pos::Noun, "apples", "cars").is_none());
    // The wrong part of speech finds nothing.
    assert!(ev(Pos::Noun, "bought", "purchased").is_none());
    // With no frequency requirement the rare sense counts again.
    assert!(
        wn().sense_evidence(Pos::Noun, "balls", "testicles", 0.0, 0.0)
            .is_some()
    );
}

/// Simplified Lesk: the sentence picks the sense whose gloss, examples and
/// neighbouring synsets share its words; a rare sense the sentence picks is
/// accepted, the same sense elsewhere is not.
#[test]
fn the_context_picks_the_sense() {
    let wn = wn();
    let dance = wn.context_bag(
        "She danced all night at two balls in formal attire.",
        &["balls"],
    );
    assert!(dance.contains("dance"), "{dance:?}");
    let (sense, shared) = wn
        .context_sense(Pos::Noun, "ball", &dance)
        .expect("the context shares words with a sense of ball");
    let (by_share, _) = wn.sense_shares(Pos::Noun, "ball")[0];
    assert_ne!(sense, by_share, "not the most frequent sense");
    assert!(!shared.is_empty());
    let rule = |ctx| SenseRule {
        min_share: 0.1,
        min_candidate_share: 0.1,
        relations: &[Relation::SimilarTo],
        context: ctx,
        candidate_context: None,
        attributive: None,
        repeated: false,
    };
    // formal (a dance) shares only ball's rare dance sense.
    let e = wn
        .sense_evidence_in(Pos::Noun, "balls", "formals", &rule(Some(&dance)))
        .expect("the dance sense is the one in context");
    assert!(!e.context_overlap.is_empty(), "{e:?}");
    assert!(
        wn.sense_evidence_in(Pos::Noun, "balls", "formals", &rule(None))
            .is_none()
    );
    let game = wn.context_bag("The box contains 6 blue balls and 4 red balls.", &["balls"]);
    assert!(
        wn.sense_evidence_in(Pos::Noun, "balls", "formals", &rule(Some(&game)))
            .is_none()
    );
    assert!(
        wn.sense_evidence_in(Pos::Noun, "balls", "testicles", &rule(Some(&game)))
            .is_none()
    );
}

/// A hypernym counts only when the filter names the relation.
#[test]
fn hypernyms_count_when_asked() {
    let rule = |relations| SenseRule {
        min_share: 0.1,
        min_candidate_share: 0.1,
        relations,
        context: None,
        candidate_context: None,
        attributive: None,
        repeated: false,
    };
    let e = wn()
        .sense_evidence_in(
            Pos::Verb,
            "deleted",
            "removed",
            &rule(&[Relation::Hypernym]),
        )
        .expect("remove is delete's hypernym");
    assert_eq!(e.relation, "hypernym");
    assert!(
        wn().sense_evidence_in(
            Pos::Verb,
            "deleted",
            "removed",
            &rule(&[Relation::SimilarTo])
        )
        .is_none()
    );
    // The other direction (a more specific word) is not a hypernym link.
    assert!(
        wn().sense_evidence_in(
            Pos::Verb,
            "removed",
            "deleted",
            &rule(&[Relation::Hypernym])
        )
        .is_none()
    );
}

#[test]
fn dictionary_and_forms() {
    assert!(wn().knows("purchased"));
    assert!(wn().knows("Geese"));
    assert!(!wn().knows("restaur"));
    assert!(!wn().knows("scrib"));
    assert_eq!(wn().forms(Pos::Verb, "gave"), vec![Form::Past]);
    assert_eq!(wn().forms(Pos::Verb, "gives"), vec![Form::ThirdPerson]);
    assert_eq!(wn().forms(Pos::Noun, "classmates"), vec![Form::Plural]);
    assert_eq!(wn().forms(Pos::Noun, "friend"), vec![Form::Base]);
}

#[test]
fn synonyms_as_keeps_to_the_tagged_part_of_speech() {
    let nouns: Vec<String> = wn()
        .synonyms_as("plays", Some(Pos::Noun), false)
        .into_iter()
        .map(|s| s.text)
        .collect();
    assert!(nouns.iter().all(|w| w.ends_with('s')), "{nouns:?}");
    let all = wn().synonyms("plays", false);
    assert!(all.len() > nouns.len());
    assert!(
        wn().synonyms_as("plays", Some(Pos::Noun), false)
            .iter()
            .all(|s| s.pos == Pos::Noun)
    );
}

#[test]
fn the_tagger_decides_the_part_of_speech_in_context() {
    use mscr::attack::tagger::{Tag, tag, tag_at};
    let at = |text: &str, word: &str| tag_at(&tag(wn(), text), text.find(word).unwrap());
    assert_eq!(at("She plays with the balls.", "plays"), Some(Tag::Verb));
    assert_eq!(at("He saw the plays twice.", "plays"), Some(Tag::Noun));
    assert_eq!(at("She has 6 blue balls.", "blue"), Some(Tag::Adj));
    assert_eq!(
        at("It takes him 20 minutes to paint a marine.", "paint"),
        Some(Tag::Verb)
    );
    assert_eq!(at("He bought more paint.", "paint"), Some(Tag::Noun));
    // Modals are function words, except as nouns after a determiner or number.
    assert_eq!(
        at("In 7 years, Kaylee will be 3 times as old.", "will"),
        Some(Tag::Other)
    );
    assert_eq!(at("She may go.", "may"), Some(Tag::Other));
    assert_eq!(
        at("He bought 5 cans of soup and a can of beans.", "can "),
        Some(Tag::Noun)
    );
    // A preposition's bare object ending the phrase is a noun, so `in total?`
    // and `in entire?` are not the same adjective (nor is `to swim.` a noun).
    assert_eq!(
        at("How many did they take in total?", "total"),
        Some(Tag::Noun)
    );
    assert_eq!(
        at("How many did they take in entire?", "entire"),
        Some(Tag::Noun)
    );
    assert_eq!(at("He paid for gas.", "gas"), Some(Tag::Noun));
    assert_eq!(at("She wants to swim.", "swim"), Some(Tag::Verb));
    // A word right before an amount is its verb (SemCor alone makes `costs`
    // a noun), but not after a preposition.
    assert_eq!(
        at("A pound of strawberries costs $2.20 in May.", "costs"),
        Some(Tag::Verb)
    );
    assert_eq!(at("The tickets cost 5 dollars.", "cost"), Some(Tag::Verb));
    assert_eq!(at("He started at age 5.", "age"), Some(Tag::Noun));
    // A word WordNet does not know gets no tag.
    assert_eq!(at("He bought a restaur.", "restaur"), None);
}

/// The share of a word's SemCor uses in one part of speech: `price` is
/// nearly always a noun, so it cannot stand in for the verb `cost` on
/// in-context similarity alone.
#[test]
fn part_of_speech_shares_come_from_semcor() {
    let price = wn().pos_share(Pos::Verb, "price").unwrap();
    assert!(price < 0.1, "price as a verb: {price}");
    assert!(wn().pos_share(Pos::Noun, "prices").unwrap() > 0.9);
    assert!(wn().pos_share(Pos::Verb, "raises").unwrap() > 0.9);
    assert_eq!(wn().pos_share(Pos::Noun, "bagfuls"), None, "never tagged");
}

/// `cost` is present and past at once; `charge` is present only, so "Each
/// ticket charge $30" does not pass for "Each ticket cost $30".
#[test]
fn a_base_that_is_also_past_needs_a_candidate_that_is_too() {
    use mscr::attack::filters::inflection;
    assert!(!inflection::verdict(wn(), Some(Pos::Verb), "cost", "charge").passed);
    assert!(inflection::verdict(wn(), Some(Pos::Verb), "cut", "put").passed);
    assert!(inflection::verdict(wn(), Some(Pos::Verb), "costs", "charges").passed);
    assert!(inflection::verdict(wn(), Some(Pos::Verb), "charge", "ask").passed);
}

/// WordNet's adjective markers: `alone(p)` is predicative only, so it cannot
/// stand before a noun ("1 alone pigeons", a quickstart success that a reader
/// rejects), though it may replace `lonely` where that stands on its own.
#[test]
fn predicative_only_adjectives_do_not_go_before_a_noun() {
    use mscr::attack::tagger::{attributive_at, tag};
    let at = |text: &str, word: &str| attributive_at(&tag(wn(), text), text.find(word).unwrap());
    let before_noun = "1 lonely pigeons was eating breadcrumbs.";
    let on_its_own = "The pigeon was lonely.";
    assert_eq!(at(before_noun, "lonely"), Some(true));
    assert_eq!(at(on_its_own, "lonely"), Some(false));
    assert_eq!(
        at("He has red and green apples.", "red"),
        None,
        "coordinated"
    );
    assert_eq!(at(before_noun, "pigeons"), None, "not an adjective");
    let rule = |attributive| SenseRule {
        min_share: 0.0,
        min_candidate_share: 0.0,
        relations: &[Relation::SimilarTo],
        context: None,
        candidate_context: None,
        attributive,
        repeated: false,
    };
    let ev = |a| wn().sense_evidence_in(Pos::Adj, "lonely", "alone", &rule(a));
    assert!(ev(None).is_some(), "lonely and alone share a sense");
    assert!(
        ev(Some(false)).is_some(),
        "'the pigeon was alone' is English"
    );
    assert!(ev(Some(true)).is_none(), "'1 alone pigeons' is not");
    // An unmarked candidate is unaffected by the position.
    let e = wn().sense_evidence_in(Pos::Adj, "lonely", "solitary", &rule(Some(true)));
    assert!(e.is_some());
}

/// A verb whose lemma ends in s takes -es in the third person (`passes`):
/// the same form as `goes`, not a past tense.
#[test]
fn third_person_of_a_lemma_ending_in_s() {
    use mscr::attack::wordnet::Form;
    let wn = wn();
    assert_eq!(wn.form_of(Pos::Verb, "passes", "pass"), Form::ThirdPerson);
    assert_eq!(wn.form_of(Pos::Verb, "goes", "go"), Form::ThirdPerson);
    assert_eq!(wn.form_of(Pos::Verb, "passed", "pass"), Form::Past);
}
