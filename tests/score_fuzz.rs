//! The answer checker never panics and never hangs, on any text: a proptest
//! suite over arbitrary Unicode, LaTeX fragments mixed with the characters
//! models write (curly quotes, £, €, π, ×, √, ≤, dashes) and very long text.
//!
//! CI runs a small fixed budget (a few seconds). For the big run:
//!
//! ```text
//! MSCR_FUZZ_CASES=1000000 cargo test --release --test score_fuzz -- --nocapture
//! ```
//!
//! prints the number of inputs judged, the panics (always 0, or the test
//! fails) and the slowest input's time (recorded in benchmarks/RESULTS.md).
//! `check` catches a panic into `Verdict::error`; this suite asserts that no
//! input ever gets there.

use mscr::score::{self, AnswerStyle};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Pieces of LaTeX, model prose and awkward Unicode that inputs are built from.
const PIECES: &[&str] = &[
    "\\boxed{",
    "\\boxed",
    "\\fbox{",
    "}",
    "{",
    "\\{",
    "\\}",
    "\\frac",
    "\\dfrac",
    "\\frac{1}{2}",
    "\\sqrt",
    "\\sqrt[3]{",
    "\\text{",
    "\\mbox{",
    "\\textbf{",
    "\\mathrm{",
    " eggs}",
    " dollars",
    "\\left(",
    "\\right)",
    "\\left[",
    "\\right]",
    "(",
    ")",
    "[",
    "]",
    "$",
    "$$",
    "\\[",
    "\\]",
    "\\(",
    "\\)",
    "^",
    "_",
    "^\\circ",
    "\\%",
    "%",
    "\\$",
    "\\!",
    ",\\!",
    "{,}",
    ",",
    ", ",
    ".",
    "=",
    " = ",
    "+",
    "-",
    "*",
    "/",
    "\\cdot",
    "\\times",
    "\\div",
    "\\pm",
    "\\cup",
    "\\in",
    "\\infty",
    "\\pi",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "\\\\",
    "&",
    "\\le ",
    "\\geq",
    "0",
    "1",
    "2",
    "3",
    "7",
    "18",
    "100",
    "1,234",
    "70000",
    "0.5",
    "3.14",
    "1e5",
    "-3",
    "x",
    "y",
    "i",
    "e",
    "The answer is ",
    "the final answer is: ",
    "Answer: ",
    "####",
    "#### Step 1",
    "answer is",
    " and ",
    "\n",
    " ",
    "\t",
    "**",
    "’",
    "‘",
    "“",
    "”",
    "£",
    "€",
    "π",
    "×",
    "√",
    "≤",
    "≥",
    "–",
    "—",
    "−",
    "°",
    "∞",
    "½",
    "²",
    "é",
    "中",
    "🙂",
    "\u{0}",
    "\u{200b}",
    "\u{feff}",
    "\\",
    "\\\\boxed{",
    "!",
    "|",
    "<<",
    ">>",
    "'",
    "\"",
];

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(PIECES).prop_map(str::to_string),
        1 => any::<char>().prop_map(String::from),
    ]
}

/// Arbitrary Unicode (any scalar value).
fn unicode(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

/// LaTeX fragments and prose mixed with arbitrary characters.
fn fragments(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..max).prop_map(|v| v.concat())
}

/// Very long text: a fragment repeated to tens of kilobytes, with a tail.
fn long_text() -> impl Strategy<Value = String> {
    (fragments(40), 50usize..2000, fragments(20))
        .prop_map(|(body, times, tail)| body.repeat(times) + &tail)
}

fn output() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => unicode(200),
        6 => fragments(60),
        1 => long_text(),
    ]
}

/// Golds as datasets hold them, and arbitrary ones.
fn gold() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&[
            "18", "70000", "2, 3", "\\text{east}", "864 \\mbox{ inches}^2",
            "11,\\! 111,\\! 111,\\! 100", "\\frac{14}{3}", "\\left( 3, \\frac{\\pi}{2} \\right)",
            "[-2,7]", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "0.5", "-3", "\\$32.50",
            "Natalia sold 48/2 = 24 clips.\n#### 72",
        ][..]).prop_map(str::to_string),
        2 => fragments(20),
        1 => unicode(40),
    ]
}

fn cases() -> u32 {
    std::env::var("MSCR_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400)
}

/// A check that runs far past this on one input is a hang, not slowness (the
/// 1,000,000-input release run averaged 0.25 ms of CPU per input: RESULTS.md).
const HANG: Duration = Duration::from_secs(5);

#[test]
fn no_input_panics_or_hangs() {
    let cases = cases();
    let config = Config {
        cases,
        failure_persistence: None,
        // Long inputs are the interesting ones; shrinking finds the small core.
        max_shrink_iters: 200,
        ..Config::default()
    };
    // A fixed seed: CI sees the same inputs every run; the big run draws more.
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let judged = Cell::new(0u64);
    let slowest = Cell::new((Duration::ZERO, 0usize));
    let strategy = (output(), gold(), any::<bool>());
    let result = runner.run(&strategy, |(out, gold, latex)| {
        let style = if latex {
            AnswerStyle::Latex
        } else {
            AnswerStyle::Numeric
        };
        let start = Instant::now();
        let v = score::check(&out, &gold, style);
        // The raw text as an extracted answer and as a gold: the comparison
        // paths see text extraction would never hand them.
        let eq = score::try_equivalent(&out, &gold, style);
        let back = score::try_equivalent(&gold, &out, style);
        let dt = start.elapsed();
        judged.set(judged.get() + 1);
        if dt > slowest.get().0 {
            slowest.set((dt, out.len()));
        }
        if let Some(e) = v.error {
            return Err(TestCaseError::fail(format!("check panicked: {e}")));
        }
        if let Err(e) = eq.and(back) {
            return Err(TestCaseError::fail(format!("equivalent panicked: {e}")));
        }
        if dt > HANG {
            return Err(TestCaseError::fail(format!("took {dt:?}")));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (dt, len) = slowest.get();
    eprintln!(
        "score_fuzz: {} inputs judged ({} cases x check + 2 equivalence calls), 0 panics; \
         slowest input {dt:?} ({len} bytes)",
        judged.get(),
        cases
    );
}

/// The crash of issue 21 and its relatives: a multi-byte character where the
/// checker slices the extracted span.
#[test]
fn multibyte_characters_in_the_answer_span() {
    for ch in ["’", "£", "€", "π", "×", "√", "≤", "–", "—", "−", "“", "”"] {
        for out in [
            format!("It{ch}s 2"),
            format!("{ch}2"),
            format!("2{ch}"),
            format!("The answer is {ch}2{ch}"),
            format!("\\boxed{{2{ch}}}"),
            format!("$x {ch} 2$"),
        ] {
            for style in [AnswerStyle::Latex, AnswerStyle::Numeric] {
                let v = score::check(&out, "2", style);
                assert_eq!(v.error, None, "{out:?} {style:?}");
            }
        }
    }
    let v = score::check("It’s 2", "2", AnswerStyle::Latex);
    assert!(v.equivalent, "{v:?}");
}
