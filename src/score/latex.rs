//! LaTeX answer normalisation and equivalence (MATH500 style).
//!
//! An answer is normalised (spacing, `\left`, `\dfrac`, `\text{}`, units,
//! degrees, `x =`), split into its structure (interval, tuple, set/list,
//! union, matrix, equation, scalar) and compared part by part; scalars are
//! compared as strings, then as expressions evaluated at shared random points
//! (see [`super::expr`]).

use super::expr;
use std::cell::Cell;

/// Inputs longer than this are compared as plain strings only.
const MAX_INPUT: usize = 4000;
/// Most elements compared in a set, tuple or matrix.
const MAX_ELEMS: usize = 64;
/// Most part-by-part comparisons in one judgement.
const MAX_COMPARISONS: usize = 5_000;

/// Units and words dropped after a number (`5 \text{ cm}`, `12 inches`).
const UNITS: &[&str] = &[
    "cm",
    "m",
    "km",
    "mm",
    "in",
    "inch",
    "inches",
    "ft",
    "feet",
    "foot",
    "yd",
    "yard",
    "yards",
    "mi",
    "mile",
    "miles",
    "meter",
    "meters",
    "metre",
    "metres",
    "centimeter",
    "centimeters",
    "kilometer",
    "kilometers",
    "unit",
    "units",
    "sq",
    "square",
    "cubic",
    "degree",
    "degrees",
    "radian",
    "radians",
    "dollar",
    "dollars",
    "cent",
    "cents",
    "hour",
    "hours",
    "hr",
    "hrs",
    "minute",
    "minutes",
    "min",
    "second",
    "seconds",
    "sec",
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "months",
    "year",
    "years",
    "mph",
    "g",
    "kg",
    "gram",
    "grams",
    "pound",
    "pounds",
    "lb",
    "lbs",
    "ounce",
    "ounces",
    "oz",
    "liter",
    "liters",
    "ml",
    "gallon",
    "gallons",
    "people",
    "ways",
    "percent",
    "points",
    "students",
    "page",
    "pages",
    "book",
    "books",
    "cookies",
    "marbles",
    "games",
    "coins",
];

fn replace_all(s: &mut String, pats: &[(&str, &str)]) {
    for (a, b) in pats {
        if s.contains(a) {
            *s = s.replace(a, b);
        }
    }
}

/// Index just past the `}` matching the `{` at `open`, escapes skipped.
fn match_brace(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Replaces `\text{X}` (and friends) by `X`, or drops it when it is a unit or
/// word after a number (`10\text{ cm}`, `5 \mbox{ inches}`).
fn strip_text_commands(s: &str) -> String {
    const CMDS: &[&str] = &[
        "\\text",
        "\\textbf",
        "\\textit",
        "\\textnormal",
        "\\textrm",
        "\\mbox",
        "\\mathrm",
        "\\mathbf",
        "\\mathit",
        "\\mathsf",
        "\\operatorname",
        "\\boxed",
        "\\bold",
    ];
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    'outer: while i < b.len() {
        if b[i] == b'\\' {
            for c in CMDS {
                if s[i..].starts_with(c) && b.get(i + c.len()) == Some(&b'{') {
                    let open = i + c.len();
                    if let Some(end) = match_brace(b, open) {
                        let inner = &s[open + 1..end - 1];
                        let prev = out.trim_end();
                        let after_number = prev
                            .ends_with(|ch: char| ch.is_ascii_digit() || ch == '}' || ch == ')');
                        let word = inner.trim();
                        if matches!(word, "and" | "or") && !prev.is_empty() {
                            // `2 \text{ and } 3`: a list of answers.
                            out.push_str(", ");
                            i = end;
                            continue 'outer;
                        }
                        // Words after a number are its unit (`18 \text{ eggs}`,
                        // `5 \mbox{ dollars per week}`), whatever the words.
                        let is_unit = word.chars().any(char::is_alphabetic)
                            && word.chars().all(|c| {
                                c.is_alphabetic()
                                    || matches!(c, ' ' | '^' | '-' | '/' | '.' | '\'')
                                    || c.is_ascii_digit()
                            });
                        if !(after_number && is_unit) {
                            out.push_str(inner);
                            i = end;
                        } else {
                            // A unit's power belongs to the unit: `864 \mbox{ inches}^2`.
                            i = end;
                            for pow in ["^{2}", "^{3}", "^2", "^3"] {
                                if s[i..].starts_with(pow) {
                                    i += pow.len();
                                    break;
                                }
                            }
                        }
                        continue 'outer;
                    }
                }
            }
        }
        let ch = s[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Whether `word` (a trailing word of an answer) is a unit: a known unit,
/// or any plain lower-case word of 3+ letters (`eggs`, `per`, `week`); a
/// power after it (`inches^2`) is part of it. "x", "pi", "and" never are.
fn unit_word(word: &str) -> bool {
    let word = word.trim_end_matches('.');
    let word = ["^{2}", "^{3}", "^2", "^3"]
        .iter()
        .find_map(|p| word.strip_suffix(p))
        .unwrap_or(word);
    let w = word.to_ascii_lowercase();
    UNITS.contains(&w.as_str())
        || (w.len() >= 3
            && word.bytes().all(|c| c.is_ascii_lowercase())
            && !matches!(w.as_str(), "and" | "or"))
}

/// Drops trailing unit words after a number: `12 inches`, `5 square units`,
/// `18 dollars per week`.
fn strip_trailing_units(s: &str) -> &str {
    let t = s.trim_end();
    let mut head = t;
    let mut cut = t.len();
    while let Some(sp) = head.rfind(' ') {
        if !unit_word(&head[sp + 1..]) {
            break;
        }
        head = head[..sp].trim_end();
        if head.ends_with(|c: char| c.is_ascii_digit() || c == '}') {
            cut = head.len();
        }
    }
    &t[..cut]
}

/// A name on the left of `=` (`x`, `f(2)`, `a_{1}`, `\theta`, `Total`).
fn simple_name(lhs: &str) -> bool {
    !lhs.is_empty()
        && lhs.len() <= 12
        && lhs
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '\\' | '{' | '}' | '(' | ')'))
        && lhs.starts_with(|c: char| c.is_alphabetic() || c == '\\')
}

/// Normalises one answer string (idempotent).
pub fn normalize(input: &str) -> String {
    // Protect matrix row breaks `\\` from the `\ ` (spacing) rule below.
    let mut s = input.trim().replace("\\\\", "\u{1}");
    replace_all(
        &mut s,
        &[
            ("\\left", ""),
            ("\\right", ""),
            ("\\displaystyle", ""),
            ("\\dfrac", "\\frac"),
            ("\\tfrac", "\\frac"),
            ("\\!", ""),
            ("\\,", " "),
            ("\\;", " "),
            ("\\:", " "),
            ("\\qquad", " "),
            ("\\quad", " "),
            ("\\ ", " "),
            ("~", " "),
            ("\\lbrace", "\\{"),
            ("\\rbrace", "\\}"),
            ("\\lvert", "|"),
            ("\\rvert", "|"),
            ("\\vert", "|"),
            ("^{\\circ}", ""),
            ("^\\circ", ""),
            ("\\circ", ""),
            ("\\degree", ""),
            ("°", ""),
            ("\\%", ""),
            ("%", ""),
            ("\\$", ""),
            ("$", ""),
            ("{,}", ""),
            ("\\infinity", "\\infty"),
            ("∞", "\\infty"),
            ("\\varnothing", "\\emptyset"),
            ("\\le ", "\\leq "),
            ("−", "-"),
            ("–", "-"),
            ("—", "-"),
            ("×", "\\times "),
            ("÷", "\\div "),
            ("·", "\\cdot "),
            ("π", "\\pi "),
            ("√", "\\sqrt"),
            ("≤", "\\leq "),
            ("≥", "\\geq "),
            ("£", ""),
            ("€", ""),
            ("¥", ""),
            ("₹", ""),
            ("\\approx", "\u{2}"),
            ("≈", "\u{2}"),
            ("\\(", ""),
            ("\\)", ""),
            ("\\[", ""),
            ("\\]", ""),
            ("\\cdot", " \\cdot "),
        ],
    );
    let mut s = strip_text_commands(&s).replace('\u{1}', "\\\\");
    // Inner `\text` may have uncovered more of the same.
    if s.contains("\\text") || s.contains("\\mbox") {
        s = strip_text_commands(&s);
    }
    // `\frac{10}{3} \approx 3.33`: the exact value (`x \approx 3.3`: the value).
    if let Some(p) = s.find('\u{2}') {
        let (before, after) = (s[..p].trim(), s[p + 1..].trim());
        s = if simple_name(before) || before.is_empty() {
            after.replace('\u{2}', "")
        } else {
            before.to_string()
        };
    }
    // ` and ` between answers: a list.
    if s.contains(" and ") {
        s = s.replace(" and ", ", ");
    }
    let mut t = s.trim().trim_end_matches(['.', ',']).trim();
    t = strip_trailing_units(t);
    // `10 - 7 = 3`, `x = 2 + 3 = 5`: a computation, keep its result.
    let eqs = split_top(t, "=");
    if eqs.len() >= 2 && eqs.len() <= MAX_ELEMS && !eqs[eqs.len() - 1].is_empty() {
        let constant = |e: &str| expr::parse(e).is_some_and(|p| p.vars.is_empty());
        let first = usize::from(simple_name(eqs[0]));
        if eqs[first..eqs.len() - 1].iter().all(|e| constant(e)) && first < eqs.len() - 1 {
            t = eqs[eqs.len() - 1];
        }
    }
    // `x = 3`, `k \in [1, 2]`: keep the value when the left side is a name.
    for op in ["=", "\\in"] {
        if let Some(p) = top_level_find(t, op)
            && !(op == "\\in" && t[p + op.len()..].starts_with(|c: char| c.is_ascii_alphabetic()))
        {
            let lhs = t[..p].trim();
            if simple_name(lhs) && top_level_find(&t[p + op.len()..], "=").is_none() {
                t = t[p + op.len()..].trim();
            }
            break;
        }
    }
    let t = t.trim();
    // A whole answer `10,000` (or `11, 111, 100` once `\!` is gone) is a number
    // with separators, not a list.
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    // `1, 234` with a plain space stays a list; `11,\! 111` is one number.
    let sep_number = compact.len() >= 5
        && (!t.contains(", ") || input.contains("\\!"))
        && compact.split(',').enumerate().all(|(k, g)| {
            let g = if k == 0 { g.trim_start_matches('-') } else { g };
            let digits = g.split('.').next().unwrap_or("");
            (if k == 0 {
                (1..=3).contains(&digits.len())
            } else {
                digits.len() == 3
            }) && g.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
        && compact.contains(',');
    if sep_number {
        return compact.replace(',', "");
    }
    t.to_string()
}

/// Byte offset of `pat` at bracket depth 0 (any of `([{` opens, `)]}` closes).
fn top_level_find(s: &str, pat: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0i32;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b'\\' if b.get(i + 1).is_some_and(|c| matches!(c, b'{' | b'}')) => {
                depth += if b[i + 1] == b'{' { 1 } else { -1 };
                i += 2;
                continue;
            }
            _ => {}
        }
        // Bytes, not `&s[i..]`: `i` may sit inside a multi-byte character (’, π).
        if depth == 0 && b[i..].starts_with(pat.as_bytes()) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Splits at `sep` on bracket depth 0.
fn split_top<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(p) = top_level_find(rest, sep) {
        out.push(rest[..p].trim());
        rest = &rest[p + sep.len()..];
        if out.len() > MAX_ELEMS {
            break;
        }
    }
    out.push(rest.trim());
    out
}

/// Whether the bracket opened at byte 0 closes at the last byte.
fn wraps_whole(s: &str) -> bool {
    let b = s.as_bytes();
    let mut depth = 0i32;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i == b.len() - 1;
                }
            }
            _ => {}
        }
    }
    false
}

#[derive(Debug, PartialEq)]
enum Shape<'a> {
    Scalar(&'a str),
    /// Tuple or interval: brackets matter, order matters.
    Tuple(u8, u8, Vec<&'a str>),
    /// Set or bare list: order does not matter.
    Set(Vec<String>),
    Union(Vec<&'a str>),
    Matrix(Vec<Vec<&'a str>>),
    Equation(&'a str, &'a str),
}

fn matrix(s: &str) -> Option<Vec<Vec<&str>>> {
    let start = s.find("\\begin{")?;
    let env_end = start + s[start..].find('}')? + 1;
    if !s[start..env_end].contains("matrix") {
        return None;
    }
    let end = s.rfind("\\end{")?;
    let body = s.get(env_end..end)?;
    let rows: Vec<Vec<&str>> = body
        .split("\\\\")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.split('&').map(str::trim).collect())
        .collect();
    (!rows.is_empty() && rows.len() <= MAX_ELEMS).then_some(rows)
}

fn shape(s: &str) -> Shape<'_> {
    if s.contains("\\begin{")
        && let Some(m) = matrix(s)
    {
        return Shape::Matrix(m);
    }
    let union = split_top(s, "\\cup");
    if union.len() > 1 {
        return Shape::Union(union);
    }
    if let Some(inner) = s.strip_prefix("\\{").and_then(|r| r.strip_suffix("\\}")) {
        return Shape::Set(
            split_top(inner, ",")
                .into_iter()
                .map(String::from)
                .collect(),
        );
    }
    let b = s.as_bytes();
    if b.len() >= 2 && matches!(b[0], b'(' | b'[') && matches!(b[b.len() - 1], b')' | b']') {
        let inner = &s[1..s.len() - 1];
        let parts = split_top(inner, ",");
        let balanced =
            b[0] == b'(' && b[b.len() - 1] == b')' || b[0] == b'[' && b[b.len() - 1] == b']';
        if parts.len() >= 2 && (wraps_whole(s) || !balanced) {
            return Shape::Tuple(b[0], b[b.len() - 1], parts);
        }
    }
    if let Some(p) = top_level_find(s, "\\pm") {
        let (a, rest) = (s[..p].trim(), s[p + 3..].trim());
        if top_level_find(rest, "\\pm").is_none() && !rest.is_empty() {
            let a = if a.is_empty() { "0" } else { a };
            return Shape::Set(vec![format!("{a}+({rest})"), format!("{a}-({rest})")]);
        }
    }
    let list = split_top(s, ",");
    if list.len() > 1 {
        return Shape::Set(list.into_iter().map(String::from).collect());
    }
    if let Some(p) = top_level_find(s, "=") {
        return Shape::Equation(s[..p].trim(), s[p + 1..].trim());
    }
    Shape::Scalar(s)
}

/// Removes whitespace and grouping braces for the string comparison.
fn squash(s: &str) -> String {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    // `(C)` and `C` name the same multiple-choice option.
    let t = t
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .filter(|r| r.len() == 1)
        .unwrap_or(&t);
    if t.chars().all(char::is_alphabetic) && t.chars().count() > 1 {
        t.to_lowercase()
    } else {
        t.to_string()
    }
}

/// Whether `s` holds a word: three or more letters in a row, not a `\command`.
fn has_word(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            if i - start >= 3 && !(start > 0 && b[start - 1] == b'\\') {
                return true;
            }
            continue;
        }
        i += 1;
    }
    false
}

/// How many answers a gold holds: `2, 3` and `\{2, 3\}` two, `1 \pm \sqrt{2}`
/// two; a tuple, interval or single value one.
pub fn answer_parts(gold: &str) -> usize {
    if gold.len() > MAX_INPUT {
        return 1;
    }
    let n = normalize(gold);
    let inner = n.strip_prefix("\\{").and_then(|r| r.strip_suffix("\\}"));
    let list = inner.unwrap_or(&n);
    if inner.is_none() && (list.starts_with(['(', '[']) || list.contains("\\begin{")) {
        return 1;
    }
    if top_level_find(list, "\\pm").is_some() {
        return 2;
    }
    split_top(list, ",").len()
}

/// A squashed answer that is a plain integer (`-12`, `007`).
fn sa_int(s: &str) -> Option<i128> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || digits.len() > 30 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn scalar_equal(a: &str, b: &str) -> bool {
    let (sa, sb) = (squash(a), squash(b));
    if sa == sb {
        return true;
    }
    let strip = |s: &str| s.replace(['{', '}'], "");
    if strip(&sa) == strip(&sb) && !sa.contains('\\') {
        return true;
    }
    // Words compare as text (`seat` is not `east`), never as products of letters.
    if has_word(&sa) || has_word(&sb) {
        return false;
    }
    // Integers compare exactly (`11111111000` is not `11111111100`).
    let int = |s: &str| sa_int(s);
    if let (Some(x), Some(y)) = (int(&sa), int(&sb)) {
        return x == y;
    }
    let (Some(pa), Some(pb)) = (expr::parse(a), expr::parse(b)) else {
        return false;
    };
    // Decimals are approximations: compare them as the numeric graders do.
    let decimal = a.contains('.') || b.contains('.');
    if !decimal && pa.vars.is_empty() && pb.vars.is_empty() {
        // Two exact constants that evaluate to integers (`2^{10}`, `\frac{6}{3}`)
        // must be the same integer.
        let (x, y) = (expr::eval(&pa.expr, &[]), expr::eval(&pb.expr, &[]));
        let integral =
            |v: num_complex::Complex64| v.im == 0.0 && v.re.is_finite() && v.re == v.re.trunc();
        if integral(x) && integral(y) {
            return x.re == y.re;
        }
    }
    let tol = if decimal { 1e-4 } else { 1e-10 };
    expr::equal(&pa, &pb, tol).unwrap_or(false)
}

fn all_pairs<A: AsRef<str>>(a: &[A], b: &[A], depth: usize, budget: &Cell<usize>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| equal_normalized(x.as_ref(), y.as_ref(), depth + 1, budget))
}

/// Order-free matching; greedy is exact here because equality is transitive.
fn unordered<A: AsRef<str>>(a: &[A], b: &[A], depth: usize, budget: &Cell<usize>) -> bool {
    if a.len() != b.len() || a.len() > MAX_ELEMS {
        return false;
    }
    let mut used = vec![false; b.len()];
    a.iter().all(|x| {
        let hit = (0..b.len())
            .find(|&j| !used[j] && equal_normalized(x.as_ref(), b[j].as_ref(), depth + 1, budget));
        if let Some(j) = hit {
            used[j] = true;
        }
        hit.is_some()
    })
}

fn equal_normalized(a: &str, b: &str, depth: usize, budget: &Cell<usize>) -> bool {
    // A work budget across the whole comparison: sets of sets of sets could
    // otherwise multiply into millions of element comparisons.
    let left = budget.get();
    if depth > 4 || left == 0 {
        return squash(a) == squash(b);
    }
    budget.set(left - 1);
    let (a, b) = (normalize(a), normalize(b));
    if squash(&a) == squash(&b) {
        return true;
    }
    match (shape(&a), shape(&b)) {
        (Shape::Scalar(x), Shape::Scalar(y)) => scalar_equal(x, y),
        (Shape::Tuple(o1, c1, x), Shape::Tuple(o2, c2, y)) => {
            o1 == o2 && c1 == c2 && all_pairs(&x, &y, depth, budget)
        }
        (Shape::Set(x), Shape::Set(y)) => unordered(&x, &y, depth, budget),
        (Shape::Union(x), Shape::Union(y)) => unordered(&x, &y, depth, budget),
        (Shape::Matrix(x), Shape::Matrix(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(&y)
                    .all(|(r, s)| all_pairs(r, s, depth, budget))
        }
        (Shape::Equation(l1, r1), Shape::Equation(l2, r2)) => {
            equal_normalized(l1, l2, depth + 1, budget)
                && equal_normalized(r1, r2, depth + 1, budget)
                || equal_normalized(l1, r2, depth + 1, budget)
                    && equal_normalized(r1, l2, depth + 1, budget)
        }
        _ => false,
    }
}

/// Whether a predicted LaTeX answer equals the gold one.
pub fn equal(pred: &str, gold: &str) -> bool {
    if pred.len() > MAX_INPUT || gold.len() > MAX_INPUT {
        return squash(pred) == squash(gold);
    }
    let budget = Cell::new(MAX_COMPARISONS);
    if equal_normalized(pred, gold, 0, &budget) {
        return true;
    }
    // Percent-aware: `50\%` also equals `0.5`.
    let pct = |s: &str| s.contains('%');
    let scaled = |s: &str| format!("\\frac{{{}}}{{100}}", normalize(s));
    match (pct(pred), pct(gold)) {
        (true, false) => equal_normalized(&scaled(pred), gold, 0, &budget),
        (false, true) => equal_normalized(pred, &scaled(gold), 0, &budget),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        let cases: &[(&str, &str)] = &[
            ("\\dfrac{1}{2}", "\\frac{1}{2}"),
            (
                "$\\left( 3, \\frac{\\pi}{2} \\right)$",
                "( 3, \\frac{\\pi}{2} )",
            ),
            ("10\\text{ cm}", "10"),
            ("5 \\mbox{ inches}", "5"),
            ("12 inches", "12"),
            ("\\text{Evelyn}", "Evelyn"),
            ("30^\\circ", "30"),
            ("x = 3", "3"),
            ("y = 2x + 3", "2x + 3"),
            ("10{,}000", "10000"),
            ("10,080", "10080"),
            ("11,\\! 111,\\! 111,\\! 100", "11111111100"),
            ("x \\in [-2,7]", "[-2,7]"),
            ("x\\in(0,1)", "(0,1)"),
            ("\\infty", "\\infty"),
            ("1,2", "1,2"),
            ("1, 2", "1, 2"),
            ("1, 234", "1, 234"),
            ("50\\%", "50"),
            ("\\$32.50", "32.50"),
            ("18.", "18"),
        ];
        for (s, want) in cases {
            assert_eq!(normalize(s), *want, "{s}");
        }
    }

    #[test]
    fn equivalent_pairs() {
        let yes: &[(&str, &str)] = &[
            ("\\frac{1}{2}", "\\dfrac12"),
            ("\\frac{1}{2}", "0.5"),
            ("\\frac{1}{2}", "1/2"),
            ("\\sqrt{8}", "2\\sqrt{2}"),
            ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}"),
            ("2\\pi", "\\pi \\cdot 2"),
            ("90^\\circ", "90"),
            ("10\\text{ cm}", "10"),
            ("x=3", "3"),
            ("(3, \\frac{\\pi}{2})", "\\left(3,\\frac{\\pi}{2}\\right)"),
            ("[2, 5)", "[2,5)"),
            ("(-\\infty, 3]", "(-\\infty,3]"),
            (
                "(-\\infty, 0) \\cup (1, \\infty)",
                "(1,\\infty)\\cup(-\\infty,0)",
            ),
            ("\\{1, 2, 3\\}", "\\{3, 1, 2\\}"),
            ("1, -2", "-2, 1"),
            (
                "\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}",
                "\\begin{pmatrix}1\\\\-2\\end{pmatrix}",
            ),
            (
                "\\begin{pmatrix} 1/2 & 0 \\\\ 0 & 1 \\end{pmatrix}",
                "\\begin{pmatrix} 0.5 & 0 \\\\ 0 & 1 \\end{pmatrix}",
            ),
            ("x^2+2x+1", "(x+1)^2"),
            ("\\frac{x+1}{2}", "\\frac{1}{2}x + \\frac12"),
            ("\\text{(C)}", "C"),
            ("\\text{Evelyn}", "evelyn"),
            ("1 \\pm \\sqrt{2}", "1+\\sqrt2, 1-\\sqrt2"),
            ("y = 2x+3", "y=3+2x"),
            ("x + y = 1", "y + x = 1"),
            ("10,080", "10080"),
            ("3i+2", "2+3i"),
            ("\\$32.50", "32.5"),
            ("50\\%", "0.5"),
            ("50\\%", "50"),
            ("2\\frac{1}{2}", "\\frac{5}{2}"),
        ];
        for (a, b) in yes {
            assert!(equal(a, b), "expected equal: {a} vs {b}");
            assert!(equal(b, a), "expected equal: {b} vs {a}");
        }
        let no: &[(&str, &str)] = &[
            ("\\frac{1}{2}", "\\frac{1}{3}"),
            ("\\frac{1}{3}", "0.33"),
            ("\\sqrt{8}", "3\\sqrt{2}"),
            ("[2, 5)", "(2, 5)"),
            ("[2, 5)", "[2, 5]"),
            ("(1, 2)", "(2, 1)"),
            ("\\{1, 2\\}", "\\{1, 2, 3\\}"),
            ("x^2+1", "(x+1)^2"),
            ("\\text{Evelyn}", "Adam"),
            ("C", "D"),
            ("2\\pi", "2"),
            (
                "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
                "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}",
            ),
            ("x", "y"),
            ("-\\infty", "\\infty"),
            ("10", "10,080"),
            ("50\\%", "0.05"),
            ("2\\frac{1}{2}", "1"),
        ];
        for (a, b) in no {
            assert!(!equal(a, b), "expected different: {a} vs {b}");
            assert!(!equal(b, a), "expected different: {b} vs {a}");
        }
    }

    #[test]
    fn pathological_inputs_get_a_verdict() {
        let deep = format!("{}1{}", "\\frac{".repeat(3000), "}{2}".repeat(3000));
        assert!(!equal(&deep, "1"));
        let nested = format!("{}x{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(equal(&nested, &nested));
        assert!(!equal(&nested, "x"));
        let long = "x+".repeat(5000) + "1";
        assert!(!equal(&long, "5000x+1"));
        let commas = "1,".repeat(5000) + "1";
        assert!(!equal(&commas, "1"));
        let braces = "{".repeat(10_000);
        assert!(!equal(&braces, "1"));
        fn nest(d: usize, w: usize, leaf: &str) -> String {
            if d == 0 {
                return leaf.to_string();
            }
            let inner: Vec<String> = (0..w).map(|_| nest(d - 1, w, leaf)).collect();
            format!("\\{{{}\\}}", inner.join(","))
        }
        let sets = nest(4, 6, "x");
        assert!(equal(&sets, &sets));
        let almost = sets.replacen('x', "y", 1);
        assert!(!equal(&sets, &almost));
        assert!(equal(&nest(2, 3, "2"), &nest(2, 3, "\\frac{4}{2}")));
        let medium = format!("{}1{}", "(".repeat(900), ")".repeat(900));
        assert!(!equal(&medium, "2"));
        let boxes = "\\text{".repeat(3000) + "a" + &"}".repeat(3000);
        let _ = equal(&boxes, "a");
    }
}
