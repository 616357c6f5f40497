//! Finding the final answer in a model output.
//!
//! Precedence, first that applies (both answer styles):
//!
//! 1. `\boxed{...}` (or `\fbox{...}`): the last one; when the gold answer has
//!    several parts (`2, 3`), all boxes, distinct, in order
//!    (`$\boxed{2}$ and $\boxed{3}$` reads `2, 3`).
//! 2. The last "answer is" / "answer:" phrase (also "would be", "will be"),
//!    skipping phrases in a check ("Let me double check the answer: 9 * 2 =
//!    18" after "The answer is 18."): its *result*, the value after the last
//!    `=` of its sentence ("The answer is 10 - 7 = 3." gives 3). When the
//!    phrase ends its line, a display-math block `\[...\]` / `$$...$$` (or a
//!    number) on the next line is the answer.
//! 3. GSM8K's `#### N`: a number right after the marks (a markdown heading
//!    `#### Step 1` is not an answer).
//! 4. LaTeX style only: a short one-line output that is itself an answer
//!    (`\frac{14}{3}`, `(3, 4)`), not a sentence ("It’s 2").
//! 5. The last number, read with its math: when it lies in (or before) the
//!    last `\[...\]`, `$$...$$`, `\(...\)` or LaTeX-holding `$...$`, that span
//!    read whole (`\[ \frac{1}{2} \]` is one half, not 2), after its last `=`.
//!
//! Units and `\text{...}` words after a number are dropped (`\boxed{18
//! \text{ eggs}}` is 18), currency signs (`$ £ € ¥ ₹`) and a Unicode minus or
//! en dash before a number are read as such (see [`super::number`]).

use super::number::{self, Number};

/// Longest answer span taken after "the answer is" (bytes).
const MAX_SPAN: usize = 300;

/// The contents of the top-level `\boxed{...}` (and `\fbox{...}`) groups, in
/// order; braces matched, escaped braces `\{ \}` not counted; `\boxed 5` (no
/// braces) gives `5`; an unclosed box gives nothing. One linear pass, so a
/// text of many nested or unclosed boxes costs no more than its length.
pub fn boxes(text: &str) -> Vec<&str> {
    const CMDS: [&[u8]; 2] = [b"\\boxed", b"\\fbox"];
    let b = text.as_bytes();
    let mut out = Vec::new();
    // Open boxes: (brace depth outside the box, byte where its content starts).
    let mut open: Vec<(usize, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                if let Some(c) = CMDS.iter().find(|c| b[i..].starts_with(c))
                    && !b.get(i + c.len()).is_some_and(u8::is_ascii_alphabetic)
                {
                    let mut j = i + c.len();
                    while j < b.len() && b[j] == b' ' {
                        j += 1;
                    }
                    if b.get(j) == Some(&b'{') {
                        open.push((depth, j + 1));
                        depth += 1;
                        i = j + 1;
                        continue;
                    }
                    let start = j;
                    while j < b.len() && !matches!(b[j], b' ' | b'$' | b'\n' | b',' | b'}') {
                        j += 1;
                    }
                    if open.is_empty()
                        && let Some(s) = text.get(start..j)
                    {
                        let s = s.trim_end_matches('.');
                        if !s.is_empty() {
                            out.push(s);
                        }
                    }
                    i = j.max(i + 1);
                    continue;
                }
                // An escaped character (`\{`): skip it.
                i += 2;
                continue;
            }
            b'{' => depth += 1,
            b'}' if depth > 0 => {
                depth -= 1;
                if open.last().is_some_and(|&(d, _)| d == depth) {
                    let (_, start) = open.pop().unwrap_or_default();
                    if open.is_empty()
                        && let Some(s) = text.get(start..i)
                    {
                        out.push(s.trim());
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The content of the last complete `\boxed{...}` (see [`boxes`]).
pub fn last_boxed(text: &str) -> Option<&str> {
    boxes(text).pop()
}

/// Byte offsets just past each "answer is" / "answer:" phrase, in text order.
fn phrase_ends(text: &str) -> Vec<usize> {
    const TAILS: [&[u8]; 5] = [b" is", b":", b" would be", b" will be", b" ="];
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 6 <= b.len() {
        if b[i..i + 6].eq_ignore_ascii_case(b"answer") {
            let mut j = i + 6;
            // `**Answer**: 18`, `Answer**:`.
            while b.get(j) == Some(&b'*') {
                j += 1;
            }
            if let Some(t) = TAILS
                .iter()
                .find(|t| b.len() >= j + t.len() && b[j..j + t.len()].eq_ignore_ascii_case(t))
            {
                out.push(j + t.len());
            }
            i += 6;
            continue;
        }
        i += 1;
    }
    out
}

/// Whether the line up to byte `at` is a check of an answer already given
/// ("Let me double check the answer: ...").
fn in_check(text: &str, at: usize) -> bool {
    // The line, or its last 200 bytes: many phrases in one long line stay linear.
    let mut from = at.saturating_sub(200);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let line_start = text[from..at].rfind('\n').map_or(from, |p| from + p + 1);
    let line = text[line_start..at].to_ascii_lowercase();
    ["check", "verif", "confirm", "double"]
        .iter()
        .any(|w| line.contains(w))
}

/// Up to the first sentence end: `.`, `!` or `?` followed by white space.
fn cut_sentence(s: &str) -> &str {
    let b = s.as_bytes();
    for i in 0..b.len() {
        if matches!(b[i], b'.' | b'!' | b'?') && b.get(i + 1).is_some_and(u8::is_ascii_whitespace) {
            return &s[..i];
        }
    }
    s
}

/// The answer span after a phrase ending at `end`: the rest of its sentence,
/// or the display math / number on the next line when the phrase ends a line.
fn phrase_span(text: &str, end: usize) -> Option<&str> {
    // A window of the text after the phrase: each phrase costs O(MAX_SPAN).
    let mut w = (end + 2 * MAX_SPAN).min(text.len());
    while !text.is_char_boundary(w) {
        w -= 1;
    }
    let rest = text[end..w].trim_start_matches([' ', '\t', ':', '*']);
    let rest = if rest.starts_with(['\n', '\r']) {
        let r = rest.trim_start();
        let answer_below = r.starts_with("\\[")
            || r.starts_with('$')
            || r.starts_with("\\(")
            || r.starts_with(|c: char| c.is_ascii_digit() || c == '-');
        if !answer_below {
            return None;
        }
        r
    } else {
        rest
    };
    for (open, close) in [("\\[", "\\]"), ("$$", "$$")] {
        if let Some(inner) = rest.strip_prefix(open) {
            let close = inner.find(close)?;
            let span = inner[..close].trim();
            return (!span.is_empty() && span.len() <= MAX_SPAN).then_some(span);
        }
    }
    let mut stop = rest.find('\n').unwrap_or(rest.len()).min(MAX_SPAN);
    while !rest.is_char_boundary(stop) {
        stop -= 1;
    }
    let span = cut_sentence(&rest[..stop]).trim();
    (!span.is_empty()).then_some(span)
}

/// The spans of the answer phrases, last first, checks skipped.
fn phrase_spans(text: &str) -> impl Iterator<Item = &str> {
    phrase_ends(text)
        .into_iter()
        .rev()
        .filter(|&e| !in_check(text, e))
        .filter_map(|e| phrase_span(text, e))
}

/// The part after the last `=` of `s` when something follows it (`10 - 7 = 3`
/// gives `3`); `s` otherwise. `<=`, `>=`, `\neq` and `=` inside braces are
/// not results.
fn after_last_eq(s: &str) -> &str {
    let b = s.as_bytes();
    let mut depth = 0i32;
    let mut last = None;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'{' | b'(' => depth += 1,
            b'}' | b')' => depth -= 1,
            b'=' if depth == 0
                && !(i > 0 && matches!(b[i - 1], b'<' | b'>' | b'!'))
                && b.get(i + 1) != Some(&b'=') =>
            {
                last = Some(i)
            }
            _ => {}
        }
    }
    match last {
        Some(p) if !s[p + 1..].trim().is_empty() => s[p + 1..].trim(),
        _ => s,
    }
}

/// GSM8K's `#### N`: the last `####` directly followed by a number.
fn hash_number(text: &str) -> Option<Number> {
    text.rmatch_indices("####").find_map(|(p, _)| {
        // The number follows the marks at once: look a few bytes ahead only,
        // so a text of many `####` stays linear.
        let rest = &text[p + 4..];
        let mut w = rest.len().min(64);
        while !rest.is_char_boundary(w) {
            w -= 1;
        }
        let rest = &rest[..w];
        let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
        let mut n = number::first_number(line)?;
        let bare = line[..n.start].trim_matches([' ', '*', '#']).is_empty();
        // Offsets into `text`, not into the line.
        n.start += p + 4;
        n.end += p + 4;
        bare.then_some(n)
    })
}

/// `s` without LaTeX text wrappers and spacing (`18 \text{ eggs}` →
/// `18  eggs`, `\$1{,}200` → `$1,200`), for reading a number with its words.
fn plain(s: &str) -> String {
    const WRAPPERS: &[&str] = &[
        "\\text", "\\textbf", "\\textit", "\\textrm", "\\mbox", "\\mathrm", "\\mathbf",
    ];
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut closes = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(w) = WRAPPERS
                .iter()
                .find(|w| s[i..].starts_with(**w) && b.get(i + w.len()) == Some(&b'{'))
            {
                depth += 1;
                closes.push(depth);
                i += w.len() + 1;
                continue;
            }
            if let Some((pat, rep)) = [
                ("\\$", "$"),
                ("\\%", "%"),
                ("\\,", " "),
                ("\\!", ""),
                ("\\ ", " "),
                ("\\;", " "),
            ]
            .iter()
            .find(|(p, _)| s[i..].starts_with(p))
            {
                out.push_str(rep);
                i += pat.len();
                continue;
            }
        }
        match b[i] {
            b'{' if s[i..].starts_with("{,}") => {
                out.push(',');
                i += 3;
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                if closes.last() == Some(&depth) {
                    closes.pop();
                    depth = depth.saturating_sub(1);
                    i += 1;
                    continue;
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        let ch = s[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A written numeric answer (a box's content, a phrase's result): a number
/// with words after it gives its canonical spelling, a leading `\frac{}{}` is
/// returned as written; anything else `None`.
fn numeric_answer(s: &str) -> Option<String> {
    let s = after_last_eq(unwrap_math(s));
    if let Some(n) = number::parse_answer(&plain(s)) {
        return Some(n.canonical());
    }
    leading_frac(s).map(str::to_string)
}

/// GSM8K strict match like lm-evaluation-harness: `#### N`, or
/// `The answer is N` (its `gsm8k_cot` filter).
pub fn gsm8k_strict(text: &str) -> Option<Number> {
    if let Some(p) = text.rfind("####") {
        return number::first_number(&text[p + 4..])
            .filter(|n| text[p + 4..p + 4 + n.start].trim().is_empty());
    }
    let lower = text.to_ascii_lowercase();
    let p = lower.rfind("the answer is ")?;
    let rest = &text[p + "the answer is ".len()..];
    number::first_number(rest).filter(|n| n.start <= 1)
}

/// GSM8K flexible match: the last number in the text.
pub fn gsm8k_flexible(text: &str) -> Option<Number> {
    number::last_number(text)
}

/// The last math span of `text`: (start, end) of the whole span with its
/// delimiters, and its content. `$...$` counts only when it holds LaTeX (a
/// `\`, `^`, `_` or `{`), since in word problems `$` is mostly a currency.
fn last_math<'a>(text: &'a str) -> Option<(usize, usize, &'a str)> {
    let mut best: Option<(usize, usize, &'a str)> = None;
    let mut consider = |s: usize, e: usize, inner: &'a str| {
        if best.is_none_or(|(_, be, _)| e > be) {
            best = Some((s, e, inner));
        }
    };
    for (open, close) in [("\\[", "\\]"), ("\\(", "\\)")] {
        if let Some(c) = text.rfind(close)
            && let Some(o) = text[..c].rfind(open)
        {
            consider(o, c + close.len(), &text[o + open.len()..c]);
        }
    }
    if let Some(c) = text.rfind("$$")
        && let Some(o) = text[..c].rfind("$$")
    {
        consider(o, c + 2, &text[o + 2..c]);
    }
    if let Some(c) = text.rfind('$')
        && let Some(o) = text[..c].rfind('$')
    {
        let inner = &text[o + 1..c];
        if !inner.is_empty() && inner.contains(['\\', '^', '_', '{']) {
            consider(o, c + 1, inner);
        }
    }
    best.map(|(s, e, inner)| (s, e, inner.trim()))
}

/// The answer a math span states: its last line, after its last `=`.
fn math_result(inner: &str) -> &str {
    let last_line = inner
        .rsplit("\\\\")
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(inner);
    let t = after_last_eq(last_line.trim_matches('&').trim());
    t.trim().trim_end_matches(['.', ',']).trim()
}

/// Step 5: the last number, or the math span it lies in (or that follows it).
fn last_number_or_math(text: &str) -> Option<(Option<Number>, Option<&str>)> {
    let n = number::last_number(text);
    if let Some((_, end, inner)) = last_math(text)
        && n.is_none_or(|n| end >= n.end)
    {
        let r = math_result(inner);
        if !r.is_empty() && r.len() <= MAX_SPAN {
            return Some((None, Some(r)));
        }
    }
    n.map(|n| (Some(n), None))
}

/// The final answer of a numeric-style output, canonical (`1,234` → `1234`);
/// LaTeX that is not a plain number (`\frac{3}{4}`) is returned as written.
pub fn numeric(text: &str) -> Option<String> {
    if let Some(b) = last_boxed(text)
        && !b.is_empty()
    {
        return Some(numeric_answer(b).unwrap_or_else(|| after_last_eq(b).to_string()));
    }
    for span in phrase_spans(text) {
        let result = after_last_eq(unwrap_math(span));
        if let Some(a) = numeric_answer(result) {
            return Some(a);
        }
        if let Some(n) = number::first_number(&plain(result)) {
            return Some(n.canonical());
        }
    }
    if let Some(n) = hash_number(text) {
        return Some(n.canonical());
    }
    match last_number_or_math(text)? {
        (Some(n), _) => Some(n.canonical()),
        (None, Some(m)) => Some(numeric_answer(m).unwrap_or_else(|| m.to_string())),
        (None, None) => None,
    }
}

/// A leading `\frac{a}{b}` (or `\dfrac`, `\tfrac`, signed) of `s`, braces matched.
fn leading_frac(s: &str) -> Option<&str> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let cmd = ["\\frac", "\\dfrac", "\\tfrac"]
        .into_iter()
        .find(|c| body.starts_with(c))?;
    let b = s.as_bytes();
    let mut i = s.len() - body.len() + cmd.len();
    for _ in 0..2 {
        if b.get(i) != Some(&b'{') {
            return None;
        }
        let mut depth = 0usize;
        loop {
            match b.get(i)? {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    s.get(..i)
}

/// Strips a `$...$`, `\(...\)` or `\[...\]` wrapper and a trailing period.
fn unwrap_math(s: &str) -> &str {
    let mut s = s.trim().trim_end_matches('.').trim();
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(inner) = s.strip_prefix(open) {
            // Up to the closing delimiter; anything after it is prose.
            if let Some(end) = inner.find(close) {
                s = inner[..end].trim();
            }
            break;
        }
    }
    s.trim_end_matches('.').trim()
}

/// Whether a short output reads as a sentence ("It’s 2", "She has 5 left")
/// rather than as an answer (`\frac{14}{3}`, `\text{Evelyn}`, `x = 5 cm`): a
/// plain word of three or more letters outside LaTeX commands.
fn is_prose(s: &str) -> bool {
    s.split_whitespace().any(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\\' && c != '{');
        !w.starts_with('\\')
            && !w.contains(['{', '}', '\\'])
            && w.chars().filter(|c| c.is_alphabetic()).count() >= 3
            && w.chars()
                .all(|c| c.is_alphabetic() || matches!(c, '\'' | '’'))
    })
}

/// The final answer of a LaTeX-style (MATH) output, as written.
pub fn latex(text: &str) -> Option<String> {
    latex_parts(text, 1)
}

/// [`latex`] for a gold answer of `parts` parts: several boxes are then read
/// together (`$\boxed{2}$ and $\boxed{3}$` → `2, 3`).
pub fn latex_parts(text: &str, parts: usize) -> Option<String> {
    let all = boxes(text);
    if let Some(last) = all.last() {
        if parts > 1 && all.len() > 1 {
            let mut distinct: Vec<&str> = Vec::new();
            for b in &all {
                if !distinct.contains(b) {
                    distinct.push(b);
                }
            }
            if distinct.len() > 1 {
                return Some(distinct.join(", "));
            }
        }
        return Some(last.to_string());
    }
    for span in phrase_spans(text) {
        let s = unwrap_math(span);
        if !s.is_empty() {
            return Some(s.to_string());
        }
    }
    if let Some(n) = hash_number(text) {
        return Some(text[n.start..n.end].trim_start_matches('$').to_string());
    }
    // A bare answer: the whole (short, one-line) output, unless a sentence.
    let t = text.trim();
    let sentence = is_prose(t) && number::last_number(t).is_some();
    if !t.is_empty() && t.len() <= 80 && !t.contains('\n') && !sentence {
        return Some(unwrap_math(t).to_string());
    }
    match last_number_or_math(t)? {
        (Some(n), _) => Some(
            t[n.start..n.end]
                .trim_start_matches(['$', '\\'])
                .to_string(),
        ),
        (None, m) => m.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_with_nested_braces() {
        let cases: &[(&str, Option<&str>)] = &[
            ("so $\\boxed{\\frac{1}{2}}$.", Some("\\frac{1}{2}")),
            (
                "\\boxed{1} then \\boxed{\\sqrt{\\frac{a}{b}}}",
                Some("\\sqrt{\\frac{a}{b}}"),
            ),
            ("\\boxed{\\{1,2\\}}", Some("\\{1,2\\}")),
            ("\\boxed 5.", Some("5")),
            ("\\fbox{7}", Some("7")),
            ("\\boxed{unclosed", None),
            ("no box", None),
        ];
        for (t, want) in cases {
            assert_eq!(last_boxed(t), *want, "{t}");
        }
    }

    #[test]
    fn gsm8k_strict_and_flexible() {
        assert_eq!(gsm8k_strict("so 3+4=7\n#### 7").map(|n| n.value), Some(7.0));
        assert_eq!(gsm8k_strict("#### 1,234").map(|n| n.value), Some(1234.0));
        assert_eq!(
            gsm8k_strict("The answer is 18.").map(|n| n.value),
            Some(18.0)
        );
        assert_eq!(
            gsm8k_strict("The answer is $-5.").map(|n| n.value),
            Some(-5.0)
        );
        assert_eq!(gsm8k_strict("The answer is that she has 5"), None);
        assert_eq!(gsm8k_strict("She has 5 left"), None);
        assert_eq!(
            gsm8k_flexible("She has 5 left, 3 eaten.").map(|n| n.value),
            Some(3.0)
        );
    }

    #[test]
    fn numeric_extraction() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Janet makes 9 * 2 = $18.\n#### 18", Some("18")),
            ("... so the final answer is $1,200.", Some("1200")),
            ("The answer is 42.", Some("42")),
            ("The answer is: **-7**", Some("-7")),
            ("Thus $\\boxed{\\frac{3}{4}}$", Some("\\frac{3}{4}")),
            ("Thus \\boxed{15\\%}", Some("15%")),
            ("3 apples plus 4 apples is 7 apples.", Some("7")),
            ("She gets 2 1/2 pies", Some("2.5")),
            ("The answer is $\\frac{3}{4}$.", Some("\\frac{3}{4}")),
            ("Speed of light 3e8", Some("300000000")),
            ("nothing numeric", None),
        ];
        for (t, want) in cases {
            assert_eq!(numeric(t).as_deref(), *want, "{t}");
        }
    }

    #[test]
    fn latex_extraction() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "Hence $\\boxed{(3, \\frac{\\pi}{2})}$.",
                Some("(3, \\frac{\\pi}{2})"),
            ),
            (
                "The final answer is $\\frac{1}{2}$. I hope",
                Some("\\frac{1}{2}"),
            ),
            ("The answer is \\(x^2\\).", Some("x^2")),
            ("\\frac{14}{3}", Some("\\frac{14}{3}")),
            ("$5$", Some("5")),
        ];
        for (t, want) in cases {
            assert_eq!(latex(t).as_deref(), *want, "{t}");
        }
    }
}
