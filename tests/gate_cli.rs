//! `mscr gate` through the real binary: exit 0 within bounds, 1 on a
//! regression (with a table of what moved), 2 on bad input; JUnit XML.

#[path = "report_support/mod.rs"]
mod report_support;
use mscr::attack::Outcome;
use report_support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn summary_of(
    dir: &Path,
    cells: Vec<(
        mscr::campaign::CellKey,
        bool,
        Vec<mscr::attack::AttackRecord>,
    )>,
) -> PathBuf {
    mscr::report::write_report_from(dir, "gate-test", cells, &Default::default()).unwrap();
    dir.join("summary.json")
}

fn gate(args: &[&str]) -> Output {
    Command::new(mscr_bin())
        .arg("gate")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn gate_passes_fails_and_rejects_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let base = summary_of(&tmp.path().join("base"), sample_cells());
    let same = summary_of(&tmp.path().join("same"), sample_cells());
    // The regressed run: every failed attack on the first model now succeeds.
    let mut worse_cells = sample_cells();
    for r in worse_cells[0]
        .2
        .iter_mut()
        .filter(|r| r.result == Outcome::Failed)
    {
        r.result = Outcome::Success;
        r.attacked_answer = Some("7".into());
    }
    let worse = summary_of(&tmp.path().join("worse"), worse_cells);
    let (b, s, w) = (
        base.to_str().unwrap(),
        same.to_str().unwrap(),
        worse.to_str().unwrap(),
    );

    let ok = gate(&["--baseline", b, "--current", s]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("gate passed"));

    let junit = tmp.path().join("gate.xml");
    let bad = gate(&[
        "--baseline",
        b,
        "--current",
        w,
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let table = String::from_utf8_lossy(&bad.stdout);
    let first = table.lines().nth(1).unwrap();
    assert!(
        first.starts_with("FAIL")
            && first.contains("smollm2-135m-instruct | identity | asdiv | mscr")
            && first.contains("attack success rate"),
        "{table}"
    );
    assert!(
        table.contains("gate FAILED: 1 of 4 checks regressed"),
        "{table}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.starts_with("<?xml") && xml.contains("tests=\"4\" failures=\"1\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<failure").count(), 1);

    // A looser bound lets the same change through.
    let loose = gate(&["--baseline", b, "--current", w, "--max-asr-increase", "0.5"]);
    assert_eq!(loose.status.code(), Some(0));
    // A robust-accuracy floor above what the model reaches fails.
    let floor = gate(&[
        "--baseline",
        b,
        "--current",
        s,
        "--min-robust-accuracy",
        "0.9",
    ]);
    assert_eq!(floor.status.code(), Some(1));

    // Bad input: exit 2 with the file named.
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "{\"not\": \"a summary\"}").unwrap();
    let e = gate(&["--baseline", b, "--current", junk.to_str().unwrap()]);
    assert_eq!(e.status.code(), Some(2));
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        err.contains("junk.json") && err.contains("summary.json"),
        "{err}"
    );
    let missing = gate(&["--baseline", "/nonexistent/summary.json", "--current", s]);
    assert_eq!(missing.status.code(), Some(2));
    let range = gate(&["--baseline", b, "--current", s, "--max-clean-drop", "7"]);
    assert_eq!(range.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&range.stderr).contains("--max-clean-drop"));
}
