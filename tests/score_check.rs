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

/// Issue 13 item 9: two integers are equal only when identical, at every
/// magnitude and in every dataset's answer style; the tolerance is only for a
/// rounded decimal meeting an exact value.
#[test]
fn integers_compare_exactly_at_every_magnitude() {
    // gsm8k, asdiv, svamp, mawps: numeric; math500: LaTeX.
    let styles = [
        ("gsm8k", AnswerStyle::Numeric),
        ("asdiv", AnswerStyle::Numeric),
        ("svamp", AnswerStyle::Numeric),
        ("mawps", AnswerStyle::Numeric),
        ("math500", AnswerStyle::Latex),
    ];
    for (name, style) in styles {
        for exp in 0..=15u32 {
            let gold = 10i128.pow(exp) * 7;
            for (pred, want) in [(gold, true), (gold + 1, false), (gold - 1, false)] {
                for out in [
                    format!("So the total is {pred}."),
                    format!("The answer is {pred}."),
                    format!("\\boxed{{{pred}}}"),
                    format!("#### {pred}"),
                ] {
                    let v = check(&out, &gold.to_string(), style);
                    assert_eq!(v.equivalent, want, "{name}: {out:?} vs gold {gold}: {v:?}");
                }
            }
        }
        // The examples.
        for (out, gold) in [
            ("So the total is 70001.", "70000"),
            ("So the total is 57501.", "57500"),
            ("So the total is 25001.", "25000"),
            ("\\boxed{11111111000}", "11,\\! 111,\\! 111,\\! 100"),
            ("\\boxed{2^{10}}", "1025"),
            ("\\boxed{12345678901234567891}", "12345678901234567890"),
        ] {
            assert!(
                !check(out, gold, style).equivalent,
                "{name}: {out:?} vs {gold:?}"
            );
        }
        for (out, gold) in [
            ("\\boxed{11111111100}", "11,\\! 111,\\! 111,\\! 100"),
            ("\\boxed{2^{10}}", "1024"),
            ("So the total is 70,000.", "70000"),
            // A rounded decimal meets an exact value: the tolerance applies.
            ("The answer is 4.666667", "\\frac{14}{3}"),
            ("The answer is 0.33333", "1/3"),
        ] {
            assert!(
                check(out, gold, style).equivalent,
                "{name}: {out:?} vs {gold:?}"
            );
        }
    }
}

/// Issue 21's inputs, each as a user met it.
#[test]
fn real_output_formats() {
    let num = AnswerStyle::Numeric;
    let tex = AnswerStyle::Latex;
    let cases: &[(&str, &str, AnswerStyle, bool)] = &[
        ("It’s 2", "2", tex, true),
        ("It’s 3", "2", tex, false),
        ("\\boxed{18 \\text{ eggs}}", "18", num, true),
        ("\\boxed{18 \\text{ eggs}}", "18", tex, true),
        ("\\boxed{18 \\text{ cupcakes}}", "18", num, true),
        ("\\boxed{18 \\text{ cupcakes}}", "18", tex, true),
        ("\\boxed{18 \\text{ dollars per week}}", "18", num, true),
        ("\\boxed{18 \\text{ dollars per week}}", "18", tex, true),
        ("\\boxed{\\text{18 eggs}}", "18", num, true),
        ("\\boxed{\\text{18 eggs}}", "18", tex, true),
        ("\\boxed{19 \\text{ eggs}}", "18", num, false),
        ("So the answer is:\n\\[ \\frac{1}{2} \\]", "2", num, false),
        ("So the answer is:\n\\[ \\frac{1}{2} \\]", "2", tex, false),
        (
            "So the answer is:\n\\[ \\frac{1}{2} \\]",
            "\\frac{1}{2}",
            tex,
            true,
        ),
        ("So the answer is:\n\\[ \\frac{1}{2} \\]", "0.5", num, true),
        ("$$x = \\sqrt{3}$$", "3", tex, false),
        ("$$x = \\sqrt{3}$$", "\\sqrt{3}", tex, true),
        ("We find\n$$x = \\sqrt{3}$$", "3", num, false),
        ("The answer is 10 - 7 = 3.", "3", num, true),
        ("The answer is 10 - 7 = 3.", "10", num, false),
        ("The answer is 10 - 7 = 3.", "3", tex, true),
        (
            "The answer is 18.\nLet me double check the answer: 9 * 2 = 18.",
            "18",
            num,
            true,
        ),
        (
            "The answer is 18.\nLet me double check the answer: 9 * 2 = 18.",
            "9",
            num,
            false,
        ),
        (
            "#### Step 1: eggs per day\n16 - 3 - 4 = 9\n#### Step 2\n9 * 2 = 18\n\\boxed{18}",
            "18",
            num,
            true,
        ),
        (
            "#### Step 1: eggs per day\n16 - 3 - 4 = 9\n#### Step 2\n9 * 2 = 18\n\\boxed{18}",
            "1",
            num,
            false,
        ),
        ("\\boxed{864}", "864 \\mbox{ inches}^2", tex, true),
        ("\\boxed{746496}", "864 \\mbox{ inches}^2", tex, false),
        (
            "\\boxed{11111111000}",
            "11,\\! 111,\\! 111,\\! 100",
            tex,
            false,
        ),
        ("$\\boxed{2}$ and $\\boxed{3}$", "2, 3", tex, true),
        ("$\\boxed{2}$ and $\\boxed{4}$", "2, 3", tex, false),
        ("\\boxed{2 \\text{ and } 3}", "2, 3", tex, true),
        ("\\boxed{2 \\text{ and } 3}", "2", tex, false),
        ("\\boxed{\\text{seat}}", "\\text{east}", tex, false),
        ("\\boxed{\\text{east}}", "\\text{east}", tex, true),
        ("\\boxed{\\text{East}}", "\\text{east}", tex, true),
        // Currency signs and Unicode minus / dashes.
        ("The answer is £5.", "5", num, true),
        ("The answer is €12.50.", "12.5", num, true),
        ("The answer is −3.", "-3", num, true),
        ("The answer is –3.", "-3", num, true),
        ("The answer is −3.", "3", num, false),
        ("\\boxed{−3}", "-3", tex, true),
        ("\\boxed{3 × 4}", "12", tex, true),
        ("\\boxed{2π}", "2\\pi", tex, true),
    ];
    for (out, gold, style, want) in cases {
        let v = check(out, gold, *style);
        assert_eq!(v.error, None);
        assert_eq!(
            v.equivalent, *want,
            "{out:?} vs {gold:?} ({style:?}): extracted {:?}",
            v.extracted
        );
    }
}
