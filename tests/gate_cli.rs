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

/// The gate refuses (exit 2, naming the difference) a run that did not
/// finish, and runs over different questions, models or attacks: their
/// figures are not comparable, so neither "passed" nor "failed" would be true.
#[test]
fn gate_refuses_partial_runs_and_different_coverage() {
    let tmp = tempfile::tempdir().unwrap();
    let base = summary_of(&tmp.path().join("base"), sample_cells());
    let b = base.to_str().unwrap();

    // A partial run: every cell planned its questions, two were never finished.
    let cells = sample_cells();
    let mut plans = mscr::report::Plans::new();
    let mut partial_cells = Vec::new();
    for (k, baseline, records) in cells {
        plans.insert(k.clone(), records.iter().map(|r| r.id.clone()).collect());
        partial_cells.push((k, baseline, records[..records.len() - 2].to_vec()));
    }
    let dir = tmp.path().join("partial");
    mscr::report::write_report_planned(
        &dir,
        "gate-test",
        partial_cells,
        &Default::default(),
        Some(&plans),
    )
    .unwrap();
    let partial = dir.join("summary.json");
    let s = mscr::report::CampaignSummary::from_file(&partial).unwrap();
    assert_eq!(s.complete, Some(false));
    assert_eq!(s.cells[0].missing_item_ids.len(), 2);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("PARTIAL RUN"), "{md}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("PARTIAL RUN"));
    let full = mscr::report::CampaignSummary::from_file(&base).unwrap();
    assert_eq!(full.complete, Some(true));
    assert!(full.cells.iter().all(|c| c.missing_item_ids.is_empty()));

    let o = gate(&["--baseline", b, "--current", partial.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let missing = &s.cells[0].missing_item_ids[0];
    assert!(
        err.contains("current run is partial") && err.contains(missing.as_str()),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("gate passed"));
    // A partial baseline is refused the same way.
    let o = gate(&["--baseline", partial.to_str().unwrap(), "--current", b]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("baseline run is partial"));

    // Different questions (a complete run of fewer questions).
    let fewer: Vec<_> = sample_cells()
        .into_iter()
        .map(|(k, b, r)| (k, b, r[1..].to_vec()))
        .collect();
    let fewer = summary_of(&tmp.path().join("fewer"), fewer);
    let o = gate(&["--baseline", b, "--current", fewer.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ran different questions") && err.contains("only in the baseline: 1 (asdiv-"),
        "{err}"
    );

    // A model of the baseline missing from the current run.
    let one_model: Vec<_> = sample_cells()
        .into_iter()
        .filter(|(k, _, _)| k.model != "tiny-llama")
        .collect();
    let one_model = summary_of(&tmp.path().join("one-model"), one_model);
    let o = gate(&["--baseline", b, "--current", one_model.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("different models") && err.contains("`tiny-llama`"),
        "{err}"
    );

    // A summary that does not say whether it finished (an older mscr).
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("complete");
    let old = tmp.path().join("old.json");
    std::fs::write(&old, v.to_string()).unwrap();
    let o = gate(&["--baseline", b, "--current", old.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
}
