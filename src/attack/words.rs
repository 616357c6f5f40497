//! Words and protected spans: which parts of a question the attack may touch.
//!
//! A question is split into words (runs of letters, optionally hyphenated) and
//! numbers (runs of digits with `.`/`,` separators). Numbers, number words,
//! anything inside math (`$...$`, `\(...\)`, `\[...\]`), LaTeX commands, words
//! glued to an operator or a digit, single letters (variables) and stopwords
//! are protected: the attack must not change what the question computes.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::LazyLock;

/// The default English stopword list shipped in `attacks/stopwords.txt`.
pub const DEFAULT_STOPWORDS: &str = include_str!("../../attacks/stopwords.txt");

/// Words that denote quantities: replacing them changes the arithmetic.
const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fourty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "thousand",
    "million",
    "billion",
    "trillion",
    "dozen",
    "score",
    "half",
    "halves",
    "halved",
    "halve",
    "twice",
    "thrice",
    "double",
    "doubled",
    "doubles",
    "triple",
    "tripled",
    "triples",
    "quadruple",
    "quadrupled",
    "quarter",
    "quarters",
    "first",
    "second",
    "third",
    "thirds",
    "fourth",
    "fourths",
    "fifth",
    "fifths",
    "sixth",
    "sixths",
    "seventh",
    "sevenths",
    "eighth",
    "eighths",
    "ninth",
    "ninths",
    "tenth",
    "tenths",
    "eleventh",
    "twelfth",
    "hundredth",
    "hundredths",
    "thousandth",
    "thousandths",
    "once",
    "percent",
    "pair",
    "pairs",
    "single",
    "none",
    "nothing",
    "every",
    "each",
    "both",
    "all",
    "half-hour",
    "dozens",
    "hundreds",
    "thousands",
    "millions",
    "billions",
    "tens",
    "twenties",
];

/// Why a word must not be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protection {
    /// Digits (`16`, `2,125`, `3.5`) or a word glued to digits (`2nd`, `5km`).
    Number,
    /// A word naming a quantity (`three`, `half`, `twice`, `dozen`).
    NumberWord,
    /// Inside `$...$`, `\(...\)`, `\[...\]`, a LaTeX command, or glued to an operator.
    Math,
    /// A single letter: usually a variable (`x`, `n`).
    SingleLetter,
    /// In the configured stopword list.
    Stopword,
}

impl Protection {
    pub fn as_str(&self) -> &'static str {
        match self {
            Protection::Number => "number",
            Protection::NumberWord => "number word",
            Protection::Math => "math",
            Protection::SingleLetter => "single letter",
            Protection::Stopword => "stopword",
        }
    }
}

/// One word of a question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub index: usize,
    pub text: String,
    /// Character offsets in the question (what records report).
    pub start: usize,
    pub end: usize,
    /// Byte offsets in the question (what replacement uses).
    #[serde(skip)]
    pub byte_start: usize,
    #[serde(skip)]
    pub byte_end: usize,
    pub protected: Option<Protection>,
}

impl Word {
    pub fn attackable(&self) -> bool {
        self.protected.is_none()
    }
}

/// A set of stopwords (lower case).
#[derive(Clone, Debug, Default)]
pub struct Stopwords(HashSet<String>);

impl Stopwords {
    /// Parses a list: one word per line, `#` comments, blank lines ignored.
    pub fn parse(text: &str) -> Self {
        Stopwords(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim().to_lowercase())
                .filter(|l| !l.is_empty())
                .collect(),
        )
    }

    pub fn default_english() -> Self {
        Self::parse(DEFAULT_STOPWORDS)
    }

    pub fn extend<I: IntoIterator<Item = S>, S: AsRef<str>>(&mut self, words: I) {
        self.0
            .extend(words.into_iter().map(|w| w.as_ref().to_lowercase()));
    }

    pub fn contains(&self, word: &str) -> bool {
        self.0.contains(&word.to_lowercase())
    }

    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\p{L}+(?:-\p{L}+)*|\p{N}+(?:[.,]\p{N}+)*").expect("static regex")
});

/// Math regions: `$$...$$`, `$...$`, `\(...\)`, `\[...\]`.
static MATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)\$\$.*?\$\$|\$[^$]*\$|\\\(.*?\\\)|\\\[.*?\\\]").expect("static regex")
});

/// Characters that make an adjacent word part of a formula.
fn is_operator(c: char) -> bool {
    matches!(
        c,
        '=' | '+'
            | '*'
            | '/'
            | '^'
            | '_'
            | '<'
            | '>'
            | '|'
            | '{'
            | '}'
            | '\\'
            | '×'
            | '÷'
            | '≤'
            | '≥'
            | '≠'
    )
}

/// True for a word naming a quantity (`three`, `twenty-five`, `half`).
pub fn is_number_word(word: &str) -> bool {
    let lower = word.to_lowercase();
    NUMBER_WORDS.contains(&lower.as_str()) || lower.split('-').any(|p| NUMBER_WORDS.contains(&p))
}

/// True for a token made of digits.
pub fn is_numeric(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_numeric())
}

/// Splits `question` into words and marks the protected ones.
pub fn split_words(question: &str, stopwords: &Stopwords) -> Vec<Word> {
    let math: Vec<(usize, usize)> = MATH
        .find_iter(question)
        .map(|m| (m.start(), m.end()))
        .collect();
    let in_math = |s: usize, e: usize| math.iter().any(|&(a, b)| s >= a && e <= b);
    let mut words = Vec::new();
    // Character offsets: count chars up to each match incrementally.
    let mut char_pos = 0usize;
    let mut byte_pos = 0usize;
    for m in TOKEN.find_iter(question) {
        char_pos += question[byte_pos..m.start()].chars().count();
        let start = char_pos;
        let len = m.as_str().chars().count();
        char_pos += len;
        byte_pos = m.end();
        let text = m.as_str();
        let before = question[..m.start()].chars().next_back();
        let after = question[m.end()..].chars().next();
        let protected = if is_numeric(text) {
            Some(Protection::Number)
        } else if in_math(m.start(), m.end()) {
            Some(Protection::Math)
        } else if before.is_some_and(|c| c.is_numeric()) || after.is_some_and(|c| c.is_numeric()) {
            Some(Protection::Number)
        } else if before.is_some_and(is_operator)
            || after.is_some_and(|c| is_operator(c) || c == '(')
        {
            // `\frac`, `x^2`, `f(x)`, `a=b`: formula syntax, not prose.
            Some(Protection::Math)
        } else if is_number_word(text) {
            Some(Protection::NumberWord)
        } else if text.chars().count() == 1 {
            Some(Protection::SingleLetter)
        } else if stopwords.contains(text) {
            Some(Protection::Stopword)
        } else {
            None
        };
        words.push(Word {
            index: words.len(),
            text: text.to_string(),
            start,
            end: start + len,
            byte_start: m.start(),
            byte_end: m.end(),
            protected,
        });
    }
    words
}

/// The numbers and number words of a text, lower-cased, in order (for the
/// "no number added or removed" filter).
pub fn numbers_in(text: &str) -> Vec<String> {
    TOKEN
        .find_iter(text)
        .map(|m| m.as_str())
        .filter(|w| is_numeric(w) || is_number_word(w))
        .map(|w| w.to_lowercase())
        .collect()
}

/// Gives `candidate` the capitalisation pattern of `original`: UPPER, Title or lower.
pub fn match_case(original: &str, candidate: &str) -> String {
    let letters: Vec<char> = original.chars().filter(|c| c.is_alphabetic()).collect();
    let upper = letters.len() > 1 && letters.iter().all(|c| c.is_uppercase());
    if upper {
        return candidate.to_uppercase();
    }
    let lower = candidate.to_lowercase();
    if original.chars().next().is_some_and(|c| c.is_uppercase()) {
        let mut cs = lower.chars();
        match cs.next() {
            Some(f) => f.to_uppercase().chain(cs).collect(),
            None => lower,
        }
    } else {
        lower
    }
}

/// Replaces words by index (replacements already cased); everything between
/// words — punctuation, spacing, math — is kept byte for byte.
pub fn apply_replacements(
    question: &str,
    words: &[Word],
    replacements: &[(usize, &str)],
) -> String {
    let mut sorted: Vec<(usize, &str)> = replacements
        .iter()
        .copied()
        .filter(|(i, _)| *i < words.len())
        .collect();
    sorted.sort_by_key(|(i, _)| *i);
    let mut out = String::with_capacity(question.len() + 16);
    let mut pos = 0;
    for (i, rep) in sorted {
        let w = &words[i];
        if w.byte_start < pos {
            continue; // duplicate index
        }
        out.push_str(&question[pos..w.byte_start]);
        out.push_str(rep);
        pos = w.byte_end;
    }
    out.push_str(&question[pos..]);
    out
}

/// The question with one word deleted (and one adjoining space), for
/// leave-one-out word importance.
pub fn delete_word(question: &str, word: &Word) -> String {
    let (mut s, mut e) = (word.byte_start, word.byte_end);
    if question[e..].starts_with(' ') {
        e += 1;
    } else if question[..s].ends_with(' ') {
        s -= 1;
    }
    let mut out = String::with_capacity(question.len());
    out.push_str(&question[..s]);
    out.push_str(&question[e..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_patterns() {
        assert_eq!(match_case("Bought", "purchased"), "Purchased");
        assert_eq!(match_case("BOUGHT", "purchased"), "PURCHASED");
        assert_eq!(match_case("bought", "Purchased"), "purchased");
    }

    #[test]
    fn replacement_keeps_punctuation() {
        let q = "Tom bought apples, pears.";
        let words = split_words(q, &Stopwords::default());
        let i = words.iter().position(|w| w.text == "apples").unwrap();
        assert_eq!(
            apply_replacements(q, &words, &[(i, "oranges")]),
            "Tom bought oranges, pears."
        );
    }
}
