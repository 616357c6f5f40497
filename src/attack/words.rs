//! Words and protected spans: which parts of a question the attack may touch.
//!
//! A question is split into words (runs of letters, optionally hyphenated, with
//! contractions and possessives kept whole: `They're`, `Hannah's`, `didn’t`) and
//! numbers (runs of digits with `.`/`,` separators). Protected, because changing
//! them changes what the question computes or who it is about: numbers and
//! number words; everything inside math (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`,
//! `\begin{…}…\end{…}`) and Asymptote code (`[asy]…[/asy]`); LaTeX commands
//! and words glued to an operator or a digit; units of measure (`cubic cm`,
//! `hours`, `dollars`); proper names (mid-sentence capitals, and sentence-start
//! words that are known names or capitalised elsewhere in the question, so a
//! repeated name is never changed in one place only); contractions and
//! possessives; single letters (variables); and stopwords.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::LazyLock;

/// The default English stopword list shipped in `attacks/stopwords.txt`.
pub const DEFAULT_STOPWORDS: &str = include_str!("../../attacks/stopwords.txt");

/// Units of measure (`attacks/units.txt`; `~word` is a unit only next to a quantity).
pub const UNITS: &str = include_str!("../../attacks/units.txt");

/// Given names and other proper nouns (`src/attack/names.txt`, see its header).
pub const NAMES: &str = include_str!("names.txt");

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
    /// Inside `$...$`, `\(...\)`, `\[...\]`, `\begin{..}...\end{..}`, a LaTeX command,
    /// or glued to an operator.
    Math,
    /// Inside an `[asy]...[/asy]` Asymptote block.
    Code,
    /// A unit of measure (`cm`, `cubic`, `hours`, `dollars`).
    Unit,
    /// A proper name (`Marin`, `Hannah's`, `Mr`), protected wherever it occurs.
    Name,
    /// A contraction or possessive (`They're`, `didn't`, `farmer's`): kept whole, never replaced.
    Contraction,
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
            Protection::Code => "code",
            Protection::Unit => "unit",
            Protection::Name => "name",
            Protection::Contraction => "contraction",
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

/// Words (letters, hyphens, contractions and possessives with `'` or `’` kept whole)
/// and numbers.
static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\p{L}+(?:['’]\p{L}+)*(?:-\p{L}+(?:['’]\p{L}+)*)*|\p{N}+(?:[.,]\p{N}+)*")
        .expect("static regex")
});

/// Signs that `$` delimits LaTeX math in this text rather than marking dollars
/// (GSM8K writes `$5 each and $3`, MATH500 writes `\$5` for money).
static LATEX_DOLLAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\\|\$\$|\$[A-Za-z({|\-]|\$[^\s$]+\$|\$[^$]*[=+^_<>][^$]*\$").expect("static regex")
});

/// What a protected span holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// Math: `$…$`, `$$…$$`, `\(…\)`, `\[…\]`, `\begin{…}…\end{…}`.
    Math,
    /// An Asymptote figure: `[asy]…[/asy]`.
    Code,
}

/// A region of a question where no word is attackable (byte offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: SpanKind,
}

fn find_from(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|p| p + from)
}

/// The next `pat` at or after `from` that is not escaped by a backslash.
fn find_unescaped(b: &[u8], mut from: usize, pat: &[u8]) -> Option<usize> {
    while from < b.len() {
        if b[from] == b'\\' {
            from += 2;
        } else if b[from..].starts_with(pat) {
            return Some(from);
        } else {
            from += 1;
        }
    }
    None
}

/// The end of `\begin{name}…\end{name}` starting at `from` (just after `\begin{name}`),
/// counting nested environments of the same name.
fn find_env_end(b: &[u8], from: usize, name: &[u8]) -> Option<usize> {
    let open = [b"\\begin{".as_slice(), name, b"}"].concat();
    let close = [b"\\end{".as_slice(), name, b"}"].concat();
    let (mut depth, mut i) = (1usize, from);
    while i < b.len() {
        if b[i..].starts_with(&open) {
            depth += 1;
            i += open.len();
        } else if b[i..].starts_with(&close) {
            depth -= 1;
            i += close.len();
            if depth == 0 {
                return Some(i);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The math and Asymptote regions of `text`, in order. An unclosed delimiter
/// protects the rest of the text: better too much than a formula half-attacked.
pub fn protected_spans(text: &str) -> Vec<Span> {
    let b = text.as_bytes();
    let dollars = LATEX_DOLLAR.is_match(text);
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let (end, kind) = if rest.starts_with(b"[asy]") {
            let end = find_from(b, i + 5, b"[/asy]").map_or(b.len(), |e| e + 6);
            (end, SpanKind::Code)
        } else if rest.starts_with(b"\\$") {
            i += 2; // an escaped dollar is money, not math
            continue;
        } else if dollars && rest.starts_with(b"$$") {
            let end = find_unescaped(b, i + 2, b"$$").map_or(b.len(), |e| e + 2);
            (end, SpanKind::Math)
        } else if dollars && rest[0] == b'$' {
            let end = find_unescaped(b, i + 1, b"$").map_or(b.len(), |e| e + 1);
            (end, SpanKind::Math)
        } else if rest.starts_with(b"\\(") {
            let end = find_from(b, i + 2, b"\\)").map_or(b.len(), |e| e + 2);
            (end, SpanKind::Math)
        } else if rest.starts_with(b"\\[") {
            let end = find_from(b, i + 2, b"\\]").map_or(b.len(), |e| e + 2);
            (end, SpanKind::Math)
        } else if rest.starts_with(b"\\begin{") {
            let name_start = i + 7;
            let end = match find_from(b, name_start, b"}") {
                Some(close) => find_env_end(b, close + 1, &b[name_start..close]),
                None => None,
            };
            (end.unwrap_or(b.len()), SpanKind::Math)
        } else {
            i += 1;
            continue;
        };
        spans.push(Span {
            start: i,
            end,
            kind,
        });
        i = end;
    }
    spans
}

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

/// The unit list: `(always, only next to a quantity)`.
static UNIT_SETS: LazyLock<(HashSet<&'static str>, HashSet<&'static str>)> = LazyLock::new(|| {
    let mut always = HashSet::new();
    let mut context = HashSet::new();
    for l in UNITS
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
    {
        match l.strip_prefix('~') {
            Some(w) => context.insert(w),
            None if !l.is_empty() => always.insert(l),
            None => false,
        };
    }
    (always, context)
});

static NAME_SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    NAMES
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect()
});

/// True for a word that only ever names a unit (`cm`, `inches`, `dollars`).
pub fn is_unit(word: &str) -> bool {
    UNIT_SETS.0.contains(word.to_lowercase().as_str())
}

/// True for a word that names a unit next to a quantity (`foot`, `minute`, `degree`).
pub fn is_context_unit(word: &str) -> bool {
    UNIT_SETS.1.contains(word.to_lowercase().as_str())
}

/// True for a known given name or proper noun (`Marin`, `Hannah`, `Chicago`).
pub fn is_known_name(word: &str) -> bool {
    NAME_SET.contains(word)
}

/// Words after which a `~` unit stands for a quantity (`a cup`, `per hour`, `in feet`).
const QUANTITY_BEFORE: &[&str] = &[
    "a", "an", "per", "each", "every", "many", "much", "in", "of", "square", "cubic", "sq",
];
/// Words before which a `~` unit measures something (`a foot long`, `a day old`).
const QUANTITY_AFTER: &[&str] = &[
    "per", "long", "wide", "tall", "high", "deep", "old", "away", "thick",
];
/// Titles and kinship words that begin a name at the start of a sentence (`Uncle Bob`).
const NAME_TITLES: &[&str] = &[
    "Aunt",
    "Auntie",
    "Uncle",
    "Grandma",
    "Grandpa",
    "Granny",
    "Grandmother",
    "Grandfather",
    "Mom",
    "Dad",
    "Mother",
    "Father",
    "Sister",
    "Brother",
    "Cousin",
    "Farmer",
    "Coach",
    "Miss",
    "Mister",
    "Madam",
    "Lady",
    "Sir",
    "Captain",
    "Doctor",
    "Professor",
    "Officer",
    "Chef",
    "Judge",
    "Nurse",
    "Principal",
    "Teacher",
    "President",
    "Mayor",
    "Senator",
    "Governor",
    "General",
    "Sergeant",
    "Detective",
    "Agent",
    "King",
    "Queen",
    "Prince",
    "Princess",
    "Saint",
    "Pastor",
    "Reverend",
];
/// Abbreviations whose `.` does not end a sentence.
const TITLES: &[&str] = &[
    "Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Jr", "Sr", "Mt", "Ft", "Gen", "Capt", "Lt", "Sgt",
];

/// True when the word at byte `start` begins a sentence (or a line, or the text).
fn at_sentence_start(text: &str, start: usize) -> bool {
    let mut head = &text[..start];
    loop {
        // A figure or display math ends a paragraph; inline math ends a sentence when its
        // last sign is one (`… is $w.$ Find …`).
        if head.ends_with("[/asy]") || head.ends_with("\\]") || head.ends_with("$$") {
            return true;
        }
        if let Some(p) = head.rfind("\\end{")
            && head.ends_with('}')
            && !head[p..].contains(char::is_whitespace)
        {
            return true;
        }
        if let Some(inner) = head.strip_suffix('$').or_else(|| head.strip_suffix("\\)")) {
            return inner.trim_end().ends_with(['.', '?', '!']);
        }
        let Some(c) = head.chars().next_back() else {
            return true;
        };
        if c == '\n' {
            return true;
        }
        if c.is_whitespace() || "\"'“”‘’()[]{}".contains(c) {
            head = &head[..head.len() - c.len_utf8()];
            continue;
        }
        return match c {
            '?' | '!' | ':' => true,
            '.' => {
                // `Mr. Snyder`, `J. Smith`: the abbreviation's dot does not end the sentence.
                let stem = head[..head.len() - 1].trim_end_matches(char::is_alphabetic);
                let prev = &head[stem.len()..head.len() - 1];
                let initial = prev.chars().count() == 1 && prev.chars().all(char::is_uppercase);
                !(initial || TITLES.contains(&prev))
            }
            _ => false,
        };
    }
}

fn base_of(word: &str) -> &str {
    word.split(['\'', '’']).next().unwrap_or(word)
}

fn is_capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
}

fn all_caps(word: &str) -> bool {
    word.chars().count() > 1 && word.chars().all(|c| !c.is_alphabetic() || c.is_uppercase())
}

/// Splits `question` into words and marks the protected ones.
pub fn split_words(question: &str, stopwords: &Stopwords) -> Vec<Word> {
    let spans = protected_spans(question);
    let span_at = |s: usize, e: usize| {
        spans
            .iter()
            .find(|sp| s >= sp.start && e <= sp.end)
            .map(|sp| sp.kind)
    };
    let tokens: Vec<regex::Match> = TOKEN.find_iter(question).collect();
    let starts: Vec<bool> = tokens
        .iter()
        .map(|m| at_sentence_start(question, m.start()))
        .collect();
    // A word capitalised mid-sentence is a name; so is every other occurrence of it.
    let mid_capitals: HashSet<&str> = tokens
        .iter()
        .zip(&starts)
        .filter(|(m, start)| {
            let base = base_of(m.as_str());
            !**start && span_at(m.start(), m.end()).is_none() && is_capitalised(base) && base != "I"
        })
        .map(|(m, _)| base_of(m.as_str()))
        .collect();
    let is_name = |ti: usize| {
        let base = base_of(tokens[ti].as_str());
        // `Uncle Bob`, `Farmer Brown`, `Coach Smith`: a title before a name is part of it.
        let titled = || {
            NAME_TITLES.contains(&base)
                && tokens.get(ti + 1).is_some_and(|n| {
                    is_capitalised(n.as_str()) && n.start() == tokens[ti].end() + 1
                })
        };
        is_capitalised(base)
            && base != "I"
            && (!starts[ti]
                || mid_capitals.contains(base)
                || is_known_name(base)
                || all_caps(base)
                || titled())
    };
    let lower = |i: usize| tokens.get(i).map(|m| m.as_str().to_lowercase());
    let quantity_cue = |i: usize| {
        let prev = i.checked_sub(1);
        let prev_cue = prev.is_some_and(|p| {
            let t = tokens[p].as_str();
            is_numeric(t)
                || is_number_word(t)
                || QUANTITY_BEFORE.contains(&t.to_lowercase().as_str())
                // `$45\pi$ cubic cm`, `\$5 a day`: math or money right before.
                || question[tokens[p].end()..tokens[i].start()].contains(['$', '%'])
        });
        let next_cue = lower(i + 1).is_some_and(|n| QUANTITY_AFTER.contains(&n.as_str()));
        prev_cue || next_cue
    };
    let unit_at = |i: usize| {
        let t = tokens[i].as_str();
        is_unit(t) || (is_context_unit(t) && quantity_cue(i))
    };

    let mut words = Vec::new();
    // Character offsets: count chars up to each match incrementally.
    let mut char_pos = 0usize;
    let mut byte_pos = 0usize;
    for (ti, m) in tokens.iter().enumerate() {
        char_pos += question[byte_pos..m.start()].chars().count();
        let start = char_pos;
        let len = m.as_str().chars().count();
        char_pos += len;
        byte_pos = m.end();
        let text = m.as_str();
        let before = question[..m.start()].chars().next_back();
        let before2 = question[..m.start()].chars().rev().nth(1);
        let after = question[m.end()..].chars().next();
        let glued_digit = before.is_some_and(|c| c.is_numeric())
            || after.is_some_and(|c| c.is_numeric())
            // `5-inch`, `10-minute`
            || (before == Some('-') && before2.is_some_and(|c| c.is_numeric()));
        let square_of_unit = matches!(text.to_lowercase().as_str(), "square" | "cubic" | "sq")
            && ti + 1 < tokens.len()
            && (is_unit(tokens[ti + 1].as_str()) || is_context_unit(tokens[ti + 1].as_str()));
        let protected = if is_numeric(text) {
            Some(Protection::Number)
        } else if let Some(kind) = span_at(m.start(), m.end()) {
            match kind {
                // `label("$\frac{\pi}{4}$")` inside a figure: LaTeX is still math.
                SpanKind::Code if before == Some('\\') => Some(Protection::Math),
                SpanKind::Code => Some(Protection::Code),
                // `\text{ cm}` inside math: the unit is still a unit.
                SpanKind::Math if in_text_command(question, m.start()) && is_unit(text) => {
                    Some(Protection::Unit)
                }
                SpanKind::Math => Some(Protection::Math),
            }
        } else if glued_digit {
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
        } else if unit_at(ti) || square_of_unit {
            Some(Protection::Unit)
        } else if is_name(ti) {
            Some(Protection::Name)
        } else if text.contains(['\'', '’']) {
            Some(Protection::Contraction)
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

/// True when byte `pos` lies inside the braces of a `\text{…}` or `\mbox{…}`.
fn in_text_command(text: &str, pos: usize) -> bool {
    let before = &text[..pos];
    let open = ["\\text{", "\\mbox{", "\\textrm{", "\\mathrm{"]
        .iter()
        .filter_map(|c| before.rfind(c).map(|p| p + c.len()))
        .max();
    open.is_some_and(|o| !before[o..].contains('}'))
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
    fn spans_for_every_delimiter() {
        let kinds = |t: &str| -> Vec<(String, SpanKind)> {
            protected_spans(t)
                .into_iter()
                .map(|s| (t[s.start..s.end].to_string(), s.kind))
                .collect()
        };
        let t = "a $x$ b $$y$$ c \\(z\\) d \\[w\\] e \\begin{align}p\\begin{align}q\\end{align}\\end{align} f [asy]draw(o);[/asy] g";
        let got = kinds(t);
        let want = [
            "$x$",
            "$$y$$",
            "\\(z\\)",
            "\\[w\\]",
            "\\begin{align}p\\begin{align}q\\end{align}\\end{align}",
            "[asy]draw(o);[/asy]",
        ];
        assert_eq!(got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(), want);
        assert_eq!(got[5].1, SpanKind::Code);
        // `\$` is money inside and outside math; `$…$` with an escaped dollar inside stays one span.
        assert_eq!(kinds("costs \\$5 and $\\$3+x$ now")[0].0, "$\\$3+x$");
        // GSM8K money: no math at all.
        assert!(protected_spans("pays $5 for eggs and $3 for milk").is_empty());
        // Unclosed: protect to the end.
        assert_eq!(kinds("see [asy] draw(")[0].0, "[asy] draw(");
    }

    #[test]
    fn sentence_starts() {
        let at = |t: &str, w: &str| at_sentence_start(t, t.find(w).unwrap());
        assert!(at("Tom ran.", "Tom"));
        assert!(at("He ran. Tom ran.", "Tom"));
        assert!(at("He ran? (Tom ran.)", "Tom"));
        assert!(at("Find $w.$  Then go.", "Then"));
        assert!(at("Let \\[x=1\\] Then go.", "Then"));
        assert!(at("Look.\n\n[asy]draw();[/asy] Then go.", "Then"));
        assert!(!at("He met Mrs. Snyder.", "Snyder"));
        assert!(!at("He met J. Doe.", "Doe"));
        assert!(!at("He met Tom.", "Tom"));
        assert!(!at("If $x$ Then", "Then"));
    }

    #[test]
    fn lists_load() {
        assert!(NAME_SET.len() > 30_000);
        for n in [
            "Marin", "Hannah", "Ellen", "Janet", "Kylie", "Jayden", "Chicago", "Monday",
        ] {
            assert!(is_known_name(n), "{n}");
        }
        for w in [
            "The", "Each", "There", "Find", "Compute", "An", "My", "Farmer",
        ] {
            assert!(!is_known_name(w), "{w}");
        }
        assert!(is_unit("cm") && is_unit("Inches") && !is_unit("foot") && is_context_unit("foot"));
        let (always, context) = &*UNIT_SETS;
        assert!(always.is_disjoint(context));
        assert!(
            always
                .iter()
                .chain(context)
                .all(|u| u.chars().all(|c| c.is_lowercase()))
        );
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
