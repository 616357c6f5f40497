//! Finding the final answer in a model output.
//!
//! Order of preference, as the common graders do: GSM8K's `#### N`; the last
//! `\boxed{...}` (nested braces); "final answer is ..." / "The answer is ...";
//! then (flexible) the last number in the text.

use super::number::{self, Number};

/// Longest answer span taken after "the answer is" (bytes).
const MAX_SPAN: usize = 300;

/// The content of the last `\boxed{...}` (or `\fbox{...}`), braces matched,
/// escaped braces `\{ \}` not counted. `\boxed 5` (no braces) gives `5`.
pub fn last_boxed(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let (pos, len) = ["\\boxed", "\\fbox"]
        .iter()
        .filter_map(|k| text.rfind(k).map(|p| (p, k.len())))
        .max_by_key(|(p, _)| *p)?;
    let mut i = pos + len;
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    if i >= b.len() {
        return None;
    }
    if b[i] != b'{' {
        let start = i;
        while i < b.len() && !matches!(b[i], b' ' | b'$' | b'\n' | b',') {
            i += 1;
        }
        let s = text.get(start..i)?.trim_end_matches('.');
        return (!s.is_empty()).then_some(s);
    }
    let start = i + 1;
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return text.get(start..i).map(str::trim);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The text after the last "final answer is" / "the answer is" / "answer:"
/// (case-insensitive), up to the end of that line.
pub fn answer_phrase(text: &str) -> Option<&str> {
    // One backwards pass for "answer" in any case, then the phrase's tail: this
    // runs on every output, so no lower-cased copy of the text.
    let b = text.as_bytes();
    let mut i = b.len().checked_sub(6)?;
    let start = loop {
        if b[i..i + 6].eq_ignore_ascii_case(b"answer") {
            let rest = &b[i + 6..];
            let tail = [&b" is"[..], b":", b" would be", b" will be"]
                .into_iter()
                .find(|t| rest.len() >= t.len() && rest[..t.len()].eq_ignore_ascii_case(t));
            if let Some(t) = tail {
                break i + 6 + t.len();
            }
        }
        if i == 0 {
            return None;
        }
        i -= 1;
    };
    let rest = &text[start..];
    let rest = rest.trim_start_matches([' ', ':', '*']);
    let mut end = rest.find('\n').unwrap_or(rest.len()).min(MAX_SPAN);
    while !rest.is_char_boundary(end) {
        end -= 1;
    }
    let span = rest[..end].trim();
    (!span.is_empty()).then_some(span)
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

/// The final answer of a numeric-style output, canonical (`1,234` → `1234`);
/// a `\boxed{}` holding LaTeX (`\frac{3}{4}`) is returned as written.
pub fn numeric(text: &str) -> Option<String> {
    if let Some(p) = text.rfind("####")
        && let Some(n) = number::first_number(&text[p + 4..])
    {
        return Some(n.canonical());
    }
    if let Some(b) = last_boxed(text) {
        return Some(match number::parse_answer(b) {
            Some(n) => n.canonical(),
            None => b.to_string(),
        });
    }
    if let Some(span) = answer_phrase(text) {
        // `The answer is $\frac{3}{4}$`: LaTeX, returned as written.
        let math = unwrap_math(span);
        if let Some(f) = leading_frac(math) {
            return Some(f.to_string());
        }
        if let Some(n) = number::first_number(span) {
            return Some(n.canonical());
        }
    }
    gsm8k_flexible(text).map(|n| n.canonical())
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

/// The final answer of a LaTeX-style (MATH) output, as written.
pub fn latex(text: &str) -> Option<String> {
    if let Some(b) = last_boxed(text) {
        return Some(b.to_string());
    }
    if let Some(span) = answer_phrase(text) {
        let s = unwrap_math(span);
        if !s.is_empty() {
            return Some(s.to_string());
        }
    }
    // A bare answer: the whole (short, one-line) output.
    let t = text.trim();
    if !t.is_empty() && t.len() <= 80 && !t.contains('\n') {
        return Some(unwrap_math(t).to_string());
    }
    // The last inline math span, else the last number.
    if let Some(end) = t.rfind('$')
        && let Some(start) = t[..end].rfind('$')
    {
        let inner = t[start + 1..end].trim();
        if !inner.is_empty() && inner.len() <= MAX_SPAN {
            return Some(inner.to_string());
        }
    }
    number::last_number(t).map(|n| {
        t[n.start..n.end]
            .trim_start_matches(['$', '\\'])
            .to_string()
    })
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
