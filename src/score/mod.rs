//! Answer extraction and equivalence (numbers and LaTeX).
//!
//! [`check`] is the one entry point the evaluator and the attack use: it finds
//! the final answer in a model output ([`extract`]) and compares it with the
//! gold answer ([`equivalent`]).

pub mod expr;
pub mod extract;
pub mod judge;
pub mod latex;
pub mod number;

use serde::{Deserialize, Serialize};

/// How answers of a dataset are written and compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerStyle {
    /// A single number (GSM8K, ASDiv, SVAMP, MAWPS).
    Numeric,
    /// A LaTeX expression (MATH500).
    Latex,
}

/// The checker's verdict on one model output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The final answer found in the output, if any.
    pub extracted: Option<String>,
    pub equivalent: bool,
    /// Set when the checker itself failed on this output (a bug in the
    /// checker, caught so that one output never ends a run): the item is then
    /// judged not equivalent and callers record it as a judging error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The checker failed on one input (an internal bug, caught): the message
/// names the panic; the input is kept by the caller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("judging error (checker bug, please report with this output): {0}")]
pub struct JudgingError(pub String);

/// Runs `f`, turning a panic into a [`JudgingError`]. Every public entry of the
/// checker goes through this: eval, attack and campaigns record the error on
/// the item and go on.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, JudgingError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        JudgingError(msg)
    })
}

/// Relative tolerance of numeric comparisons.
pub const NUMERIC_TOLERANCE: f64 = 1e-4;

/// Extracts the final answer from a model output (or a bare answer). A
/// checker failure gives `None` (use [`check`] to see the error).
pub fn extract(output: &str, style: AnswerStyle) -> Option<String> {
    guarded(|| extract_inner(output, style)).unwrap_or(None)
}

fn extract_inner(output: &str, style: AnswerStyle) -> Option<String> {
    match style {
        AnswerStyle::Numeric => extract::numeric(output),
        AnswerStyle::Latex => extract::latex(output),
    }
}

/// A gold answer as stored: GSM8K's full solution ends with `#### N`, some
/// sets hold `\boxed{}` solutions; anything else is the answer itself.
fn gold_answer(gold: &str) -> &str {
    let g = gold.trim();
    if let Some(p) = g.rfind("####") {
        return g[p + 4..].trim();
    }
    if g.contains("\\boxed")
        && let Some(b) = extract::last_boxed(g)
    {
        return b;
    }
    g
}

/// A numeric answer's value: a plain number (`1,234`, `50%`, `9 (apples)`), or
/// LaTeX that evaluates to a constant (`\frac{3}{4}`, `2\sqrt{2}`).
fn numeric_value(s: &str) -> Option<number::Number> {
    if let Some(n) = number::parse_answer(s)
        && !s.contains('\\')
    {
        return Some(n);
    }
    // Longer text is no constant the expression parser would take, and
    // normalising it could cost more than its length.
    if s.len() > 2 * expr::MAX_LEN {
        return None;
    }
    let norm = latex::normalize(s);
    let parsed = expr::parse(&norm)?;
    if !parsed.vars.is_empty() {
        return None;
    }
    let v = expr::eval(&parsed.expr, &[]);
    (v.im.abs() < 1e-12 && v.re.is_finite()).then(|| number::Number {
        value: v.re,
        percent: s.contains('%'),
        decimal: s.contains('.'),
        int: None,
        start: 0,
        end: s.len(),
    })
}

/// Whether an extracted answer equals the gold answer; a checker failure
/// counts as not equal (use [`try_equivalent`] to see it).
pub fn equivalent(extracted: &str, gold: &str, style: AnswerStyle) -> bool {
    try_equivalent(extracted, gold, style).unwrap_or(false)
}

/// [`equivalent`], with a checker failure returned as an error.
pub fn try_equivalent(
    extracted: &str,
    gold: &str,
    style: AnswerStyle,
) -> Result<bool, JudgingError> {
    guarded(|| equivalent_inner(extracted, gold, style))
}

fn equivalent_inner(extracted: &str, gold: &str, style: AnswerStyle) -> bool {
    let gold = gold_answer(gold);
    match style {
        AnswerStyle::Numeric => match (numeric_value(extracted), numeric_value(gold)) {
            (Some(a), Some(b)) => number::numbers_equal(&a, &b, NUMERIC_TOLERANCE),
            // A non-numeric gold (rare in these sets): compare as LaTeX.
            _ => latex::equal(extracted, gold),
        },
        AnswerStyle::Latex => latex::equal(extracted, gold),
    }
}

/// Extracts the final answer from `output` and compares it with `gold`.
///
/// Never panics: a failure inside the checker (a bug) comes back as a verdict
/// with `error` set and `equivalent: false`, so a run records a judging error
/// on the item and goes on.
pub fn check(output: &str, gold: &str, style: AnswerStyle) -> Verdict {
    match guarded(|| {
        let extracted = match style {
            AnswerStyle::Numeric => extract::numeric(output),
            // All boxes count when the gold has several parts (`2, 3`).
            AnswerStyle::Latex => {
                extract::latex_parts(output, latex::answer_parts(gold_answer(gold)))
            }
        };
        let equivalent = extracted
            .as_deref()
            .is_some_and(|e| equivalent_inner(e, gold, style));
        (extracted, equivalent)
    }) {
        Ok((extracted, equivalent)) => Verdict {
            extracted,
            equivalent,
            error: None,
        },
        Err(e) => Verdict {
            extracted: None,
            equivalent: false,
            error: Some(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_checks() {
        let cases: &[(&str, &str, bool)] = &[
            ("Janet makes $18 a day.\n#### 18", "18", true),
            ("The answer is 18.", "18", true),
            ("The answer is 17.", "18", false),
            (
                "She pays $2,125 in total. The answer is $2,125.",
                "2,125",
                true,
            ),
            ("So 9 apples in all.", "9 (apples)", true),
            ("We get \\boxed{\\frac{3}{4}}", "0.75", true),
            ("The answer is 50%.", "0.5", true),
            ("The answer is 145", "145.0", true),
            ("x = 0.33333", "1/3", true),
            ("x = 0.33", "1/3", false),
            ("I cannot solve this.", "5", false),
            ("The answer is -3.", "3", false),
            ("It takes 2 1/2 hours", "2.5", true),
            ("#### 7", "Natalia sold 48/2 = 24 clips.\n#### 7", true),
        ];
        for (out, gold, want) in cases {
            let v = check(out, gold, AnswerStyle::Numeric);
            assert_eq!(v.equivalent, *want, "{out:?} vs {gold:?}: {v:?}");
        }
        assert_eq!(check("nothing", "1", AnswerStyle::Numeric).extracted, None);
    }

    #[test]
    fn latex_checks() {
        let cases: &[(&str, &str, bool)] = &[
            (
                "Thus $r = 3$, so the point is $\\boxed{\\left(3, \\frac{\\pi}{2}\\right)}$.",
                "\\left( 3, \\frac{\\pi}{2} \\right)",
                true,
            ),
            (
                "The final answer is $\\dfrac{14}{3}$.",
                "\\frac{14}{3}",
                true,
            ),
            ("\\boxed{4.666667}", "\\frac{14}{3}", true),
            ("\\boxed{\\frac{13}{3}}", "\\frac{14}{3}", false),
            ("\\boxed{x=5}", "5", true),
            ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}", true),
            ("\\boxed{p - q}", "p - q", true),
            ("\\boxed{q - p}", "p - q", false),
        ];
        for (out, gold, want) in cases {
            let v = check(out, gold, AnswerStyle::Latex);
            assert_eq!(v.equivalent, *want, "{out:?} vs {gold:?}: {v:?}");
        }
    }
}
