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

// ---- Contractions, possessives and names (issue 13, item 1) ----

fn protection(words: &[mscr::attack::words::Word], t: &str) -> Option<Protection> {
    words
        .iter()
        .find(|w| w.text == t)
        .unwrap_or_else(|| panic!("`{t}` is no word in {:?}", texts(words)))
        .protected
}

fn texts(words: &[mscr::attack::words::Word]) -> Vec<&str> {
    words.iter().map(|w| w.text.as_str()).collect()
}

#[test]
fn contractions_and_possessives_stay_whole() {
    let sw = Stopwords::default_english();
    let q = "Ellen has six more balls than Marin. Marin has nine balls. They're going to the store \
             with Hannah's brother. They didn't leave until 3 o'clock.";
    let words = split_words(q, &sw);
    let t = texts(&words);
    for clitic in ["re", "s", "t", "clock", "o", "didn"] {
        assert!(!t.contains(&clitic), "`{clitic}` split off: {t:?}");
    }
    assert_eq!(protection(&words, "Hannah's"), Some(Protection::Name));
    assert!(protection(&words, "They're").is_some());
    assert!(protection(&words, "didn't").is_some());
    assert!(protection(&words, "o'clock").is_some());
    // Curly apostrophes (GSM8K writes `Janet’s`) behave the same.
    let curly = split_words(
        "They’re at Janet’s farm, but she didn’t sell the duck’s eggs.",
        &sw,
    );
    let t = texts(&curly);
    assert!(t.contains(&"They’re") && t.contains(&"Janet’s") && t.contains(&"didn’t"));
    assert!(
        !t.contains(&"re") && !t.contains(&"s") && !t.contains(&"t"),
        "{t:?}"
    );
    assert_eq!(protection(&curly, "Janet’s"), Some(Protection::Name));
    assert_eq!(protection(&curly, "duck’s"), Some(Protection::Contraction));
    assert!(
        curly
            .iter()
            .all(|w| !w.text.contains('’') || !w.attackable())
    );
    // Offsets still cover the whole word, apostrophe included.
    let chars: Vec<char> = "They’re at Janet’s farm".chars().collect();
    let w = &curly[2];
    assert_eq!(chars[w.start..w.end].iter().collect::<String>(), "Janet’s");
}

#[test]
fn names_protected_wherever_they_occur() {
    let sw = Stopwords::default_english();
    let q = "Ellen has six more balls than Marin. Marin has nine balls. They're going to the store \
             with Hannah's brother.";
    let words = split_words(q, &sw);
    // Every occurrence of Marin: mid-sentence and at a sentence start.
    let marins: Vec<_> = words.iter().filter(|w| w.text == "Marin").collect();
    assert_eq!(marins.len(), 2);
    assert!(marins.iter().all(|w| w.protected == Some(Protection::Name)));
    // Ellen starts the text and occurs once: a known given name.
    assert_eq!(protection(&words, "Ellen"), Some(Protection::Name));
    assert!(protection(&words, "balls").is_none());
    assert!(protection(&words, "brother").is_none());

    // An unknown name at a sentence start is protected because it is capitalised elsewhere.
    let q = "Zorblax buys apples. Then Zorblax sells them to Quimby. Quimby pays cash.";
    let words = split_words(q, &sw);
    for w in words
        .iter()
        .filter(|w| w.text == "Zorblax" || w.text == "Quimby")
    {
        assert_eq!(
            w.protected,
            Some(Protection::Name),
            "{} at {}",
            w.text,
            w.start
        );
    }
    // ... and is otherwise an ordinary word (no evidence it is a name).
    let words = split_words("Zorblax is on the table.", &sw);
    assert_eq!(words[0].protected, None);

    // Common words at a sentence start are not names.
    let q = "Each box holds pens. There are red boxes. Find the total. Lemons cost more. \
             Compute the sum. How many boxes are there?";
    let words = split_words(q, &sw);
    for w in &words {
        assert_ne!(
            w.protected,
            Some(Protection::Name),
            "`{}` taken for a name",
            w.text
        );
    }
    assert_eq!(protection(&words, "Lemons"), None);
    assert_eq!(protection(&words, "Compute"), None);

    // Titles do not end a sentence; initials and acronyms are names too.
    let words = split_words("They met Mrs. Snyder and J. Doe at the NASA museum.", &sw);
    assert_eq!(protection(&words, "Snyder"), Some(Protection::Name));
    assert_eq!(protection(&words, "Doe"), Some(Protection::Name));
    assert_eq!(protection(&words, "NASA"), Some(Protection::Name));
    assert_eq!(protection(&words, "museum"), None);
    // A pronoun `I` is no name.
    let words = split_words("Then I bought pears and I'm happy.", &sw);
    assert_eq!(protection(&words, "I'm"), Some(Protection::Contraction));
}

#[test]
fn repeated_names_never_partly_attackable() {
    let sw = Stopwords::default_english();
    for q in questions("gsm8k_test.jsonl", "question", 1319) {
        let words = split_words(&q, &sw);
        let names: std::collections::HashSet<&str> = words
            .iter()
            .filter(|w| w.protected == Some(Protection::Name))
            .map(|w| w.text.split(['\'', '’']).next().unwrap())
            .collect();
        for w in &words {
            let base = w.text.split(['\'', '’']).next().unwrap();
            if names.contains(base) {
                assert!(
                    !w.attackable(),
                    "`{}` attackable, a name elsewhere in: {q}",
                    w.text
                );
            }
        }
    }
}

// ---- MATH500: math, code and units (issue 20, item 1) ----

#[test]
fn asy_blocks_and_every_math_delimiter() {
    let sw = Stopwords::default_english();
    let q = "The figure shows a triangle. [asy]\ndraw((0,0)--(1,1));\nlabel(\"$h$\", midpoint, E);\n\
             fill(circle, gray);\n[/asy] Inline $area of the triangle$ and display \\[ perimeter \
             squared \\] and \\( radius \\) and $$ volume here $$ and \\begin{align*} width \
             \\text{ apples} \\end{align*} then \\begin{tabular}{cc} tomato & carrot \\end{tabular} \
             Compute the answer.";
    let words = split_words(q, &sw);
    for t in ["draw", "label", "midpoint", "fill", "circle", "gray", "asy"] {
        for w in words.iter().filter(|w| w.text == t) {
            assert_eq!(w.protected, Some(Protection::Code), "`{t}` in asy");
        }
    }
    for t in [
        "area",
        "perimeter",
        "squared",
        "radius",
        "volume",
        "here",
        "width",
        "apples",
        "tomato",
        "carrot",
        "align",
        "tabular",
    ] {
        assert_eq!(
            protection(&words, t),
            Some(Protection::Math),
            "`{t}` in math"
        );
    }
    for t in ["figure", "shows", "triangle", "Inline", "display", "answer"] {
        assert!(
            words.iter().any(|w| w.text == t && w.attackable()),
            "`{t}` is prose and attackable"
        );
    }
    // An unclosed `[asy]` or `$` protects the rest rather than exposing code.
    let words = split_words("Look at this. [asy] draw(circle); label", &sw);
    assert!(words.iter().skip(3).all(|w| !w.attackable()));
}

#[test]
fn dollars_as_money_vs_math() {
    let sw = Stopwords::default_english();
    // GSM8K: `$` marks money; the prose between two amounts is attackable.
    let words = split_words("She sells eggs for $2 each and buys bread for $3.", &sw);
    assert!(protection(&words, "eggs").is_none() && protection(&words, "bread").is_none());
    assert_eq!(protection(&words, "2"), Some(Protection::Number));
    // MATH500: `\$` is money, `$…$` is math.
    let q = "A pen costs \\$5 and a book costs $x$ dollars. Find $x$ if the total is \\$12.";
    let words = split_words(q, &sw);
    assert!(protection(&words, "pen").is_none() && protection(&words, "book").is_none());
    assert_eq!(protection(&words, "dollars"), Some(Protection::Unit));
    assert!(protection(&words, "total").is_none());
}

#[test]
fn units_next_to_or_standing_for_a_quantity() {
    let sw = Stopwords::default_english();
    let q = "The volume of the cylinder is $45\\pi$ cubic cm. How many cm are in 3 inches? \
             He ran 5 miles in 40 minutes at 8 mph, a 10-minute walk, 2 feet long, 30 degrees, \
             20 percent, \\$4 a pound, 9 square meters. His foot hurts; the yard is green.";
    let words = split_words(q, &sw);
    for t in [
        "cubic", "cm", "inches", "miles", "minutes", "mph", "minute", "feet", "degrees", "pound",
        "square", "meters",
    ] {
        for w in words.iter().filter(|w| w.text == t) {
            assert!(
                matches!(w.protected, Some(Protection::Unit | Protection::Number)),
                "`{t}` at {} is {:?}",
                w.start,
                w.protected
            );
        }
    }
    assert_eq!(protection(&words, "cubic"), Some(Protection::Unit));
    assert!(protection(&words, "percent").is_some());
    // `foot` and `yard` name no quantity here: ordinary words.
    assert_eq!(protection(&words, "foot"), None);
    assert_eq!(protection(&words, "yard"), None);
    assert_eq!(protection(&words, "cylinder"), None);
    // `\text{ cm}` inside math reports the unit.
    let words = split_words("The side is $5\\text{ cm}$ long.", &sw);
    assert_eq!(protection(&words, "cm"), Some(Protection::Unit));
}

#[test]
fn math500_named_items() {
    let sw = Stopwords::default_english();
    let qs = questions("math500_test.jsonl", "problem", 500);
    let attackable = |i: usize| -> Vec<String> {
        split_words(&qs[i], &sw)
            .into_iter()
            .filter(|w| w.attackable())
            .map(|w| w.text)
            .collect()
    };
    // Item 13: the cylinder; `cubic cm` and the asy code are protected.
    let a = attackable(13);
    assert!(a.contains(&"cylinder".to_string()), "{a:?}");
    for t in [
        "cubic", "cm", "draw", "label", "midpoint", "shift", "yscale", "Circle", "size",
    ] {
        assert!(
            !a.contains(&t.to_string()),
            "`{t}` attackable in item 13: {a:?}"
        );
    }
    assert!(!a.contains(&"centimeters".to_string()));
    // Item 32: the round table; Pierre, Rosa and Thomas are names.
    let words = split_words(&qs[32], &sw);
    for n in ["Pierre", "Rosa", "Thomas"] {
        assert_eq!(protection(&words, n), Some(Protection::Name));
    }
    assert!(protection(&words, "table").is_none());
    // Item 67: square to rectangle; percentages are math, `percent` is protected.
    let words = split_words(&qs[67], &sw);
    assert!(protection(&words, "percent").is_some());
    assert_eq!(
        protection(&words, "square's"),
        Some(Protection::Contraction)
    );
    assert!(protection(&words, "rectangle").is_none());
}

/// Byte ranges of math and Asymptote in a MATH500 problem, found independently of the
/// library: every MATH500 problem writes money as `\$`, so `$` always delimits math.
fn math_regions(q: &str) -> Vec<(usize, usize)> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let find = |from: usize, pat: &str| q[from..].find(pat).map(|p| p + from + pat.len());
    while i < b.len() {
        let close = if q[i..].starts_with("[asy]") {
            find(i, "[/asy]")
        } else if q[i..].starts_with("\\$") {
            i += 2;
            continue;
        } else if q[i..].starts_with("$$") {
            find(i + 2, "$$")
        } else if b[i] == b'$' {
            let mut j = i + 1;
            while j < b.len() && (b[j] != b'$' || b[j - 1] == b'\\') {
                j += 1;
            }
            Some(j + 1)
        } else if q[i..].starts_with("\\(") {
            find(i, "\\)")
        } else if q[i..].starts_with("\\[") {
            find(i, "\\]")
        } else if q[i..].starts_with("\\begin{") {
            let name = &q[i + 7..i + 7 + q[i + 7..].find('}').unwrap()];
            find(i, &format!("\\end{{{name}}}"))
        } else {
            i += q[i..].chars().next().unwrap().len_utf8();
            continue;
        };
        let end = close.unwrap_or(q.len()).min(q.len());
        out.push((i, end));
        i = end;
    }
    out
}

#[test]
fn math500_no_attackable_word_in_math_or_code() {
    let sw = Stopwords::default_english();
    let qs = questions("math500_test.jsonl", "problem", 500);
    assert_eq!(qs.len(), 500);
    let (mut regions, mut attackable) = (0, 0);
    for q in &qs {
        let spans = math_regions(q);
        regions += spans.len();
        for w in split_words(q, &sw) {
            if let Some(s) = spans
                .iter()
                .find(|(a, b)| w.byte_start >= *a && w.byte_end <= *b)
            {
                assert!(
                    !w.attackable(),
                    "`{}` attackable inside `{}` in: {q}",
                    w.text,
                    &q[s.0..s.1]
                );
            }
            if w.attackable() {
                attackable += 1;
                assert!(!w.text.chars().any(|c| c.is_numeric()), "{} in {q}", w.text);
            }
        }
    }
    assert!(regions > 1000, "only {regions} math regions found");
    assert!(
        attackable > 2000,
        "only {attackable} attackable words in MATH500"
    );
}

/// Units a GSM8K question writes after a number.
const GSM_UNITS: &[&str] = &[
    "cm",
    "km",
    "kg",
    "mph",
    "inches",
    "feet",
    "miles",
    "meters",
    "hours",
    "minutes",
    "seconds",
    "days",
    "weeks",
    "months",
    "years",
    "dollars",
    "cents",
    "pounds",
    "ounces",
    "gallons",
    "liters",
    "degrees",
    "percent",
    "grams",
    "kilograms",
    "hour",
    "minute",
    "day",
    "week",
    "year",
    "foot",
    "mile",
    "pound",
    "cups",
    "cup",
];

#[test]
fn gsm8k_test_no_number_unit_or_name_attackable() {
    let sw = Stopwords::default_english();
    let qs = questions("gsm8k_test.jsonl", "question", 1319);
    assert_eq!(qs.len(), 1319);
    let mut attackable = 0;
    for q in &qs {
        let words = split_words(q, &sw);
        for (i, w) in words.iter().enumerate() {
            if !w.attackable() {
                continue;
            }
            attackable += 1;
            assert!(!w.text.chars().any(|c| c.is_numeric()), "{} in {q}", w.text);
            let after_number = i > 0
                && words[i - 1]
                    .text
                    .chars()
                    .all(|c| c.is_numeric() || c == ',' || c == '.')
                && q[words[i - 1].byte_end..w.byte_start].trim().is_empty();
            assert!(
                !(after_number && GSM_UNITS.contains(&w.text.to_lowercase().as_str())),
                "unit `{}` after a number attackable in: {q}",
                w.text
            );
            // A capitalised word that does not start a sentence is a name.
            let head = q[..w.byte_start]
                .trim_end_matches(|c: char| c.is_whitespace() || "\"'“”‘’(".contains(c));
            let sentence_start = q[head.len()..w.byte_start].contains('\n')
                || head.chars().next_back().is_none_or(|c| ".?!:".contains(c));
            assert!(
                sentence_start || !w.text.starts_with(char::is_uppercase),
                "capitalised `{}` attackable mid-sentence in: {q}",
                w.text
            );
            assert!(
                !w.text.contains(['\'', '’']),
                "clitic word `{}` in {q}",
                w.text
            );
        }
    }
    assert!(
        attackable > 10_000,
        "only {attackable} attackable words in GSM8K test"
    );
}
