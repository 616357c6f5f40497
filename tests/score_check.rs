//! `score::check` through its public interface: table-driven true and false
//! cases for both answer styles, and pathological inputs that must still get a
//! verdict.

use mscr::score::{AnswerStyle, check};

#[test]
fn numeric_table() {
    let cases: &[(&str, &str, Option<&str>, bool)] = &[
        ("Janet sells 9 eggs.\n#### 18", "18", Some("18"), true),
        ("#### 1,234", "1234", Some("1234"), true),
        ("The answer is 1,234.", "1,234", Some("1234"), true),
        ("The answer is $15.", "15", Some("15"), true),
        ("The answer is 15 dollars.", "15", Some("15"), true),
        ("So the final answer is -4.", "-4", Some("-4"), true),
        ("The answer is 0.75", "3/4", Some("0.75"), true),
        ("The answer is 3/4.", "0.75", Some("0.75"), true),
        ("It takes 1 1/2 hours", "1.5", Some("1.5"), true),
        ("The answer is 25%.", "25", Some("25%"), true),
        ("The answer is 25%.", "0.25", Some("25%"), true),
        ("The answer is 2.5e3", "2500", Some("2500"), true),
        ("Total: 100000.4", "100000", Some("100000.4"), true),
        ("Answer: 7 apples.", "7 (apples)", Some("7"), true),
        ("\\boxed{12}", "12", Some("12"), true),
        (
            "The answer is $\\frac{3}{4}$.",
            "0.75",
            Some("\\frac{3}{4}"),
            true,
        ),
        (
            "The answer is \\dfrac{1}{3} of the cake",
            "0.3333",
            Some("\\dfrac{1}{3}"),
            true,
        ),
        (
            "The answer is -\\frac{1}{2}.",
            "-0.5",
            Some("-\\frac{1}{2}"),
            true,
        ),
        ("So she has 5 left. The answer is 6.", "5", Some("6"), false),
        ("The answer is 18.5", "18", Some("18.5"), false),
        ("The answer is -18", "18", Some("-18"), false),
        ("The answer is 26%", "0.25", Some("26%"), false),
        ("I don't know.", "3", None, false),
    ];
    for (out, gold, ext, eq) in cases {
        let v = check(out, gold, AnswerStyle::Numeric);
        assert_eq!(v.extracted.as_deref(), *ext, "extracted from {out:?}");
        assert_eq!(v.equivalent, *eq, "{out:?} vs {gold:?}");
    }
}

#[test]
fn latex_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("$\\boxed{\\dfrac{3}{56}}$", "\\frac{3}{56}", true),
        (
            "\\boxed{\\frac{\\sqrt{2}}{2}}",
            "\\frac{1}{\\sqrt{2}}",
            true,
        ),
        ("\\boxed{2\\sqrt{5}}", "\\sqrt{20}", true),
        ("\\boxed{30^\\circ}", "30^\\circ", true),
        ("\\boxed{30}", "30^\\circ", true),
        ("\\boxed{\\$18.90}", "\\$18.90", true),
        ("\\boxed{18.9}", "\\$18.90", true),
        ("\\boxed{12\\text{ inches}}", "12", true),
        ("\\boxed{[-2, 7]}", "x \\in [-2,7]", true),
        ("\\boxed{(-2, 7]}", "[-2,7]", false),
        ("\\boxed{(1,-2)}", "(1, -2)", true),
        ("\\boxed{(-2,1)}", "(1, -2)", false),
        ("\\boxed{-2, 1}", "1, -2", true),
        ("\\boxed{\\{3, 5\\}}", "5, 3", true),
        (
            "\\boxed{\\begin{pmatrix} -1 \\\\ 2 \\end{pmatrix}}",
            "\\begin{pmatrix} -1 \\\\ 2 \\end{pmatrix}",
            true,
        ),
        (
            "\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}",
            "\\begin{pmatrix} -1 \\\\ 2 \\end{pmatrix}",
            false,
        ),
        ("\\boxed{(x+2)(x-3)}", "x^2 - x - 6", true),
        ("\\boxed{(x+2)(x+3)}", "x^2 - x - 6", false),
        ("\\boxed{\\frac{3\\pi}{4}}", "\\frac34\\pi", true),
        ("\\boxed{x=4}", "4", true),
        ("\\boxed{y=4}", "5", false),
        ("\\boxed{\\text{(B)}}", "\\text{(B)}", true),
        ("\\boxed{B}", "\\text{(B)}", true),
        ("\\boxed{A}", "\\text{(B)}", false),
        ("\\boxed{0.6667}", "\\frac{2}{3}", true),
        ("\\boxed{0.67}", "\\frac{2}{3}", false),
        ("\\boxed{1+2i}", "2i+1", true),
    ];
    for (out, gold, eq) in cases {
        let v = check(out, gold, AnswerStyle::Latex);
        assert_eq!(
            v.equivalent, *eq,
            "{out:?} vs {gold:?}: extracted {:?}",
            v.extracted
        );
    }
}

#[test]
fn pathological_outputs_get_a_verdict() {
    let long = "x".repeat(10_000);
    let deep_box = format!("\\boxed{{{}1{}}}", "{".repeat(5_000), "}".repeat(5_000));
    let frac = format!(
        "\\boxed{{{}1{}}}",
        "\\frac{1}{".repeat(1_000),
        "}".repeat(1_000)
    );
    let parens = format!("\\boxed{{{}x{}}}", "(".repeat(4_000), ")".repeat(4_000));
    let pow = format!("\\boxed{{{}}}", "2^".repeat(3_000) + "2");
    let unbalanced = format!("\\boxed{{{}", "(".repeat(10_000));
    let numbers = "1, ".repeat(3_000) + "\\boxed{1, 2, 3}";
    let digits = "9".repeat(10_000);
    for (name, out) in [
        ("long", long),
        ("deep_box", deep_box),
        ("frac", frac),
        ("parens", parens),
        ("pow", pow),
        ("unbalanced", unbalanced),
        ("numbers", numbers),
        ("digits", digits),
    ] {
        for style in [AnswerStyle::Latex, AnswerStyle::Numeric] {
            let v = check(&out, "2", style);
            assert!(
                !v.equivalent,
                "{name} {style:?}: {:?}",
                v.extracted.map(|e| e.len())
            );
        }
    }
}
