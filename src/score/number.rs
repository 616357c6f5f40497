//! Plain-text numbers as people and models write them: `1,234.5`, `$18`, `-3/4`,
//! `1 1/2`, `2.5e3`, `50%`, `18.` (sentence end), `9 (apples)`.
//!
//! A hand-written byte scanner rather than a regex: it runs on every model
//! output and must stay in the microsecond range.

/// A number found in text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number {
    pub value: f64,
    /// Written with `%` (or `\%`, "percent").
    pub percent: bool,
    /// Written as a decimal with digits after the point, or in scientific
    /// notation: a possibly rounded value, compared with a tolerance.
    pub decimal: bool,
    /// The exact value of a plain integer (`70,001`, `-3`): integers compare
    /// exactly, beyond f64's 2^53 too.
    pub int: Option<i128>,
    /// Byte range in the source text.
    pub start: usize,
    pub end: usize,
}

impl Number {
    /// A canonical spelling: no separators or currency, `%` kept.
    pub fn canonical(&self) -> String {
        let mut s = match self.int {
            Some(i) => i.to_string(),
            None => format_value(self.value),
        };
        if self.percent {
            s.push('%');
        }
        s
    }
}

/// Formats a value the way an answer is written: integers without `.0`, others
/// with up to 10 significant decimals and no trailing zeros.
pub fn format_value(v: f64) -> String {
    if v.is_finite() && v == v.trunc() && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    if !v.is_finite() || v.abs() >= 1e15 || (v != 0.0 && v.abs() < 1e-6) {
        return format!("{v:e}");
    }
    let s = format!("{v:.10}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

/// Signs read as a minus before a number: ASCII, the Unicode minus and the en
/// dash models use for it (after a digit, `10–7`, no number starts there).
const MINUS: [&str; 3] = ["-", "\u{2212}", "\u{2013}"];

/// Currency signs before a number (`$18`, `\\$18`, `£5`, `€5`, `¥5`, `₹5`).
const CURRENCY: [&str; 6] = ["$", "\\$", "£", "€", "¥", "₹"];

fn is_digit(b: Option<&u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_digit())
}

/// A scanned decimal: value, end, whether written with a fraction or an
/// exponent, and the exact integer when it is a plain integer.
struct Decimal {
    value: f64,
    end: usize,
    decimal: bool,
    int: Option<i128>,
}

/// Scans a plain decimal (with thousands separators and exponent) at `i`,
/// which must be a digit or a `.` followed by a digit.
fn scan_decimal(s: &[u8], mut i: usize) -> Option<Decimal> {
    let start = i;
    let mut buf = String::new();
    while i < s.len() {
        let b = s[i];
        if b.is_ascii_digit() {
            buf.push(b as char);
            i += 1;
        } else if b == b',' && !buf.is_empty() && !buf.contains('.') {
            // A thousands separator only when exactly three digits follow.
            let three = s.len() >= i + 4 && s[i + 1..i + 4].iter().all(u8::is_ascii_digit);
            let fourth = is_digit(s.get(i + 4));
            if three && !fourth {
                i += 1;
            } else {
                break;
            }
        } else if b == b'{' && s[i..].starts_with(b"{,}") && !buf.is_empty() {
            // LaTeX thousands separator `10{,}000`.
            i += 3;
        } else {
            break;
        }
    }
    if i < s.len() && s[i] == b'.' && is_digit(s.get(i + 1)) {
        buf.push('.');
        i += 1;
        while i < s.len() && s[i].is_ascii_digit() {
            buf.push(s[i] as char);
            i += 1;
        }
    }
    if buf.is_empty() || i == start {
        return None;
    }
    // Exponent: `e5`, `E-3`, but not `5 eggs` (needs a digit after the sign).
    if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
        let mut j = i + 1;
        if j < s.len() && (s[j] == b'+' || s[j] == b'-') {
            j += 1;
        }
        if is_digit(s.get(j)) {
            let mut k = j;
            while k < s.len() && s[k].is_ascii_digit() {
                k += 1;
            }
            // `2e5x` is not scientific notation of anything sensible; keep it strict.
            if !s.get(k).is_some_and(u8::is_ascii_alphabetic) {
                buf.push('e');
                buf.push_str(std::str::from_utf8(&s[i + 1..k]).unwrap_or("0"));
                i = k;
            }
        }
    }
    let decimal = buf.contains(['.', 'e']);
    let int = if decimal { None } else { buf.parse().ok() };
    buf.parse::<f64>().ok().map(|value| Decimal {
        value,
        end: i,
        decimal,
        int,
    })
}

/// Scans one number starting exactly at `i` (sign, currency, fraction, mixed
/// number, percent). Returns `None` if no number starts there.
fn scan_at(s: &[u8], i: usize) -> Option<Number> {
    let start = i;
    let mut j = i;
    let mut neg = false;
    if let Some(m) = MINUS.iter().find(|m| s[j..].starts_with(m.as_bytes())) {
        neg = true;
        j += m.len();
    }
    if let Some(c) = CURRENCY.iter().find(|c| s[j..].starts_with(c.as_bytes())) {
        j += c.len();
    }
    if !neg && let Some(m) = MINUS.iter().find(|m| s[j..].starts_with(m.as_bytes())) {
        neg = true;
        j += m.len();
    }
    let first_ok = is_digit(s.get(j)) || (s.get(j) == Some(&b'.') && is_digit(s.get(j + 1)));
    if !first_ok {
        return None;
    }
    let Decimal {
        mut value,
        mut end,
        decimal,
        mut int,
    } = scan_decimal(s, j)?;
    let int_part = s[j..end].iter().all(u8::is_ascii_digit);
    // Fraction `3/4` (integers only, so `1.5/2` stays a decimal and a slash).
    if int_part && s.get(end) == Some(&b'/') && is_digit(s.get(end + 1)) {
        let mut k = end + 1;
        while k < s.len() && s[k].is_ascii_digit() {
            k += 1;
        }
        if let Ok(d) = std::str::from_utf8(&s[end + 1..k])
            .unwrap_or("")
            .parse::<f64>()
            && d != 0.0
            && !(s.get(k) == Some(&b'.') && is_digit(s.get(k + 1)))
        {
            value /= d;
            end = k;
            int = None;
        }
    } else if int_part && s.get(end) == Some(&b' ') && is_digit(s.get(end + 1)) {
        // Mixed number `1 1/2`: an integer, one space, then a proper fraction.
        let mut k = end + 1;
        while k < s.len() && s[k].is_ascii_digit() {
            k += 1;
        }
        if s.get(k) == Some(&b'/') && is_digit(s.get(k + 1)) {
            let mut m = k + 1;
            while m < s.len() && s[m].is_ascii_digit() {
                m += 1;
            }
            let num = std::str::from_utf8(&s[end + 1..k])
                .unwrap_or("")
                .parse::<f64>();
            let den = std::str::from_utf8(&s[k + 1..m])
                .unwrap_or("")
                .parse::<f64>();
            if let (Ok(n), Ok(d)) = (num, den)
                && d != 0.0
                && n < d
            {
                value += n / d;
                end = m;
                int = None;
            }
        }
    }
    let mut percent = false;
    if s.get(end) == Some(&b'%') {
        percent = true;
        end += 1;
    } else if s[end..].starts_with(b"\\%") {
        percent = true;
        end += 2;
    } else if s[end..].starts_with(b" percent") || s[end..].starts_with(b" per cent") {
        percent = true;
    }
    Some(Number {
        value: if neg { -value } else { value },
        percent,
        decimal,
        int: int.map(|i| if neg { -i } else { i }),
        start,
        end,
    })
}

/// Whether a number may start at byte `i` (not in the middle of a word/number).
fn may_start(s: &[u8], i: usize) -> bool {
    let b = s[i];
    let starts = b.is_ascii_digit()
        || b == b'.'
        || b == b'\\'
        || MINUS.iter().any(|m| s[i..].starts_with(m.as_bytes()))
        || CURRENCY.iter().any(|c| s[i..].starts_with(c.as_bytes()));
    if !starts {
        return false;
    }
    if i == 0 {
        return true;
    }
    let p = s[i - 1];
    // Inside a number or an identifier like `x2`.
    !(p.is_ascii_digit()
        || (p == b'.' && b.is_ascii_digit())
        || (p.is_ascii_alphabetic() && b.is_ascii_digit()))
}

/// All numbers in `text`, left to right.
pub fn numbers(text: &str) -> Vec<Number> {
    let s = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if may_start(s, i)
            && let Some(n) = scan_at(s, i)
        {
            i = n.end.max(i + 1);
            out.push(n);
            continue;
        }
        i += 1;
    }
    out
}

/// The first number in `text`.
pub fn first_number(text: &str) -> Option<Number> {
    let s = text.as_bytes();
    (0..s.len()).find_map(|i| if may_start(s, i) { scan_at(s, i) } else { None })
}

/// The last number in `text`.
pub fn last_number(text: &str) -> Option<Number> {
    let s = text.as_bytes();
    let mut last = None;
    let mut i = 0;
    while i < s.len() {
        if may_start(s, i)
            && let Some(n) = scan_at(s, i)
        {
            i = n.end.max(i + 1);
            last = Some(n);
            continue;
        }
        i += 1;
    }
    last
}

/// Parses a whole short answer as one number (`$1,234`, `9 (apples)`, `-3/4`,
/// `50%`, `145.0`). Anything but trailing words/units after the number, such as
/// a second number or an operator, makes it not a plain number.
pub fn parse_answer(text: &str) -> Option<Number> {
    let t = text.trim().trim_end_matches('.');
    let n = first_number(t)?;
    let before = t[..n.start].trim();
    if !before.is_empty()
        && !before
            .chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == ':' || c == '=')
    {
        return None;
    }
    let after = &t[n.end..];
    let clean = after
        .chars()
        .all(|c| c.is_alphabetic() || c.is_whitespace() || "()%.'’".contains(c));
    clean.then_some(n)
}

/// Numeric equality; a side written as a percentage also matches its fraction
/// (`50%` = `0.5` = `50`). Two exact values (integers, fractions) must be
/// equal: `70001` is not `70000`. The relative tolerance `tol` applies only
/// where a rounded decimal meets another value (`0.3333` = `1/3`,
/// `4.666667` = `14/3`).
pub fn numbers_equal(a: &Number, b: &Number, tol: f64) -> bool {
    if let (Some(x), Some(y)) = (a.int, b.int)
        && a.percent == b.percent
    {
        return x == y;
    }
    let tol = if a.decimal || b.decimal { tol } else { 0.0 };
    if values_equal(a.value, b.value, tol) {
        return true;
    }
    if a.percent != b.percent {
        let (p, q) = if a.percent { (a, b) } else { (b, a) };
        return values_equal(p.value / 100.0, q.value, tol);
    }
    false
}

/// Equality of two values, `tol` 0 meaning exact: integers must be
/// identical; other exact values (fractions) may differ only by float
/// rounding (1e-12 relative), never by one unit of an integer.
pub fn values_equal(a: f64, b: f64, tol: f64) -> bool {
    if tol > 0.0 {
        return close(a, b, tol);
    }
    if a == a.trunc() && b == b.trunc() {
        return a == b;
    }
    close(a, b, 1e-12)
}

/// `|a - b| <= tol * max(|a|, |b|)`, with a tiny absolute floor for zero.
pub fn close(a: f64, b: f64, tol: f64) -> bool {
    if a == b {
        return true;
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<f64> {
        parse_answer(s).map(|n| n.value)
    }

    #[test]
    fn parses_written_numbers() {
        let cases: &[(&str, Option<f64>)] = &[
            ("18", Some(18.0)),
            ("2,125", Some(2125.0)),
            ("$1,234.50", Some(1234.5)),
            ("-3", Some(-3.0)),
            ("−7", Some(-7.0)),
            ("3/4", Some(0.75)),
            ("-3/4", Some(-0.75)),
            ("1 1/2", Some(1.5)),
            ("0.25", Some(0.25)),
            (".5", Some(0.5)),
            ("2.5e3", Some(2500.0)),
            ("1E-2", Some(0.01)),
            ("50%", Some(50.0)),
            ("9 (apples)", Some(9.0)),
            ("145.0", Some(145.0)),
            ("18.", Some(18.0)),
            ("12 dollars", Some(12.0)),
            ("$-5", Some(-5.0)),
            ("10{,}000", Some(10000.0)),
            ("x", None),
            ("3 + 4", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(v(s), *want, "{s}");
        }
    }

    #[test]
    fn finds_numbers_in_text() {
        let t = "She has 3 apples, buys 1,200 more at $2.50 each; 5 eggs. Total 3,002.";
        let got: Vec<f64> = numbers(t).iter().map(|n| n.value).collect();
        assert_eq!(got, vec![3.0, 1200.0, 2.5, 5.0, 3002.0]);
        // Lists with comma-space are separate numbers; `x2` is not a number.
        let got: Vec<f64> = numbers("1, 2, 3 and x2").iter().map(|n| n.value).collect();
        assert_eq!(got, vec![1.0, 2.0, 3.0]);
        assert_eq!(last_number("no numbers here"), None);
        assert_eq!(last_number("answer: 1,23").map(|n| n.value), Some(23.0));
    }

    #[test]
    fn percent_aware_equality() {
        let a = parse_answer("50%").unwrap();
        let b = parse_answer("0.5").unwrap();
        let c = parse_answer("50").unwrap();
        let d = parse_answer("0.6").unwrap();
        assert!(numbers_equal(&a, &b, 1e-4));
        assert!(numbers_equal(&a, &c, 1e-4));
        assert!(!numbers_equal(&a, &d, 1e-4));
        assert!(close(100000.0, 100000.5, 1e-4));
        assert!(!close(100.0, 100.1, 1e-4));
        assert!(close(0.0, 0.0, 1e-4));
    }

    #[test]
    fn canonical_spelling() {
        assert_eq!(parse_answer("$1,000.00").unwrap().canonical(), "1000");
        assert_eq!(parse_answer("0.125").unwrap().canonical(), "0.125");
        assert_eq!(parse_answer("12.5%").unwrap().canonical(), "12.5%");
    }
}
