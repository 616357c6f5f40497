//! Word splitting and protected spans on real GSM8K and MATH500 questions.

use mscr::attack::words::{
    Protection, Stopwords, apply_replacements, delete_word, match_case, numbers_in, split_words,
};
use std::io::BufRead;

fn questions(file: &str, field: &str, n: usize) -> Vec<String> {
    let dir = mscr::paths::shared_data_dir().expect("../shared/data with the test datasets");
    let f = std::fs::File::open(dir.join(file)).expect("dataset file");
    std::io::BufReader::new(f)
        .lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            v[field].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn gsm8k_first_question() {
    let q = &questions("gsm8k_test.jsonl", "question", 1)[0];
    let words = split_words(q, &Stopwords::default_english());
    let get = |t: &str| {
        words
            .iter()
            .find(|w| w.text == t)
            .unwrap_or_else(|| panic!("{t} not found"))
    };
    assert_eq!(get("16").protected, Some(Protection::Number));
    assert_eq!(get("three").protected, Some(Protection::NumberWord));
    assert_eq!(get("four").protected, Some(Protection::NumberWord));
    assert_eq!(get("2").protected, Some(Protection::Number));
    assert_eq!(get("for").protected, Some(Protection::Stopword));
    assert_eq!(get("ducks").protected, None);
    assert_eq!(get("muffins").protected, None);
    // Offsets are character offsets: `Janet’s` holds a 3-byte apostrophe.
    let ducks = get("ducks");
    let chars: Vec<char> = q.chars().collect();
    assert_eq!(
        chars[ducks.start..ducks.end].iter().collect::<String>(),
        "ducks"
    );
    assert!(
        ducks.byte_start > ducks.start,
        "byte and char offsets differ after ’"
    );
}

#[test]
fn gsm8k_numbers_never_attackable_and_offsets_round_trip() {
    let sw = Stopwords::default_english();
    for q in questions("gsm8k_test.jsonl", "question", 200) {
        let words = split_words(&q, &sw);
        let chars: Vec<char> = q.chars().collect();
        for w in &words {
            assert_eq!(
                chars[w.start..w.end].iter().collect::<String>(),
                w.text,
                "in {q}"
            );
            assert_eq!(&q[w.byte_start..w.byte_end], w.text);
            if w.text.chars().any(|c| c.is_ascii_digit()) {
                assert!(!w.attackable(), "{} attackable in {q}", w.text);
            }
        }
        assert!(
            words.iter().any(|w| w.attackable()),
            "nothing attackable in {q}"
        );
        // Replacing every attackable word by itself rebuilds the question exactly.
        let same: Vec<(usize, &str)> = words
            .iter()
            .filter(|w| w.attackable())
            .map(|w| (w.index, w.text.as_str()))
            .collect();
        assert_eq!(apply_replacements(&q, &words, &same), q);
    }
}

#[test]
fn math500_latex_is_protected() {
    let sw = Stopwords::default_english();
    let qs = questions("math500_test.jsonl", "problem", 100);
    let first = &qs[0]; // "Convert the point $(0,3)$ in rectangular coordinates ... $(r,\theta),$ ..."
    let words = split_words(first, &sw);
    let theta = words.iter().find(|w| w.text == "theta").expect("theta");
    assert_eq!(theta.protected, Some(Protection::Math));
    let pi = words.iter().find(|w| w.text == "pi").expect("pi");
    assert_eq!(pi.protected, Some(Protection::Math));
    assert!(
        words
            .iter()
            .find(|w| w.text == "rectangular")
            .unwrap()
            .attackable()
    );
    for q in &qs {
        for w in split_words(q, &sw) {
            let before = &q[..w.byte_start];
            // Inside an open `$...$` (odd number of unescaped dollars before it): protected.
            let dollars = before.matches('$').count() - before.matches("\\$").count();
            if dollars % 2 == 1 {
                assert!(
                    !w.attackable(),
                    "`{}` inside math is attackable in {q}",
                    w.text
                );
            }
            if before.ends_with('\\') {
                assert_eq!(
                    w.protected,
                    Some(Protection::Math),
                    "LaTeX command {} in {q}",
                    w.text
                );
            }
        }
    }
}

#[test]
fn operators_variables_and_glued_digits() {
    let sw = Stopwords::default_english();
    let q = "Let f(x) = 3x + y where total=5 and the 2nd boy runs 5km, twenty-five laps \\(a+b\\).";
    let words = split_words(q, &sw);
    let p = |t: &str| words.iter().find(|w| w.text == t).unwrap().protected;
    assert_eq!(p("f"), Some(Protection::Math));
    assert_eq!(p("y"), Some(Protection::SingleLetter));
    assert_eq!(p("total"), Some(Protection::Math));
    assert_eq!(p("nd"), Some(Protection::Number));
    assert_eq!(p("km"), Some(Protection::Number));
    assert_eq!(p("twenty-five"), Some(Protection::NumberWord));
    assert_eq!(p("a"), Some(Protection::Math));
    assert_eq!(p("boy"), None);
    assert_eq!(p("laps"), None);
}

#[test]
fn capitalisation_and_punctuation_preserved() {
    let q = "Bought: APPLES, (pears) and \"plums\".";
    let words = split_words(q, &Stopwords::default_english());
    let idx = |t: &str| words.iter().position(|w| w.text == t).unwrap();
    let out = apply_replacements(
        q,
        &words,
        &[
            (idx("Bought"), &match_case("Bought", "purchased")),
            (idx("APPLES"), &match_case("APPLES", "oranges")),
            (idx("pears"), &match_case("pears", "Figs")),
            (idx("plums"), &match_case("plums", "prunes")),
        ],
    );
    assert_eq!(out, "Purchased: ORANGES, (figs) and \"prunes\".");
}

#[test]
fn stopwords_are_configurable() {
    let mut sw = Stopwords::parse("# comment\nmuffins\n\n");
    assert_eq!(sw.len(), 1);
    sw.extend(["Ducks"]);
    let words = split_words("The ducks ate muffins.", &sw);
    assert_eq!(words[1].protected, Some(Protection::Stopword));
    assert_eq!(words[3].protected, Some(Protection::Stopword));
    // `The` is no stopword in this list.
    assert_eq!(words[0].protected, None);
    assert!(Stopwords::default_english().contains("the"));
}

#[test]
fn numbers_and_deletion() {
    assert_eq!(
        numbers_in("She has 3 cats and two dogs, 2,125 in total."),
        vec!["3", "two", "2,125"]
    );
    let q = "She sold apples today.";
    let words = split_words(q, &Stopwords::default());
    assert_eq!(delete_word(q, &words[2]), "She sold today.");
    assert_eq!(delete_word(q, &words[3]), "She sold apples.");
}
