//! Ctrl-C mid-campaign through the real binary and the default model: the run
//! exits 130 and still writes its report, whose `summary.json` says
//! `"complete": false` and lists the questions each cell did not finish; the
//! report says so at its top; and `mscr gate` refuses the partial run (exit 2,
//! naming it) instead of gating figures over half the questions.
//! Needs `mscr setup` (default model, ORT, WordNet) and `../shared/data`.

#[path = "report_support/mod.rs"]
mod report_support;
use report_support::{mscr_bin, stored_count as count};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The first 8 ASDiv-A questions: the default model answers nluds-0002
/// correctly (so it is attacked, which takes seconds) right after nluds-0001
/// (skipped after its clean answer): Ctrl-C once one question is stored lands
/// while the second is under attack, well before the eighth.
const ITEMS: usize = 8;

#[test]
fn sigint_mid_campaign_marks_the_run_partial_and_the_gate_refuses_it() {
    let data = mscr::paths::shared_data_dir().expect("../shared/data (test data) not found");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let spec = tmp.path().join("interrupt.toml");
    std::fs::write(
        &spec,
        format!(
            r#"name = "interrupt"
models = ["smollm2-135m-instruct"]
datasets = [{data:?}]
limit = {ITEMS}
out = {out:?}
[decoding]
max_new_tokens = 128
[[attacks]]
name = "wordnet"
[attacks.budget]
max_queries = 5
batch = 4
[[attacks.sources]]
kind = "wordnet"
max = 8
[[attacks.filters]]
kind = "differs"
[[attacks.filters]]
kind = "numbers"
[attacks.search]
kind = "single-word"
importance = false
prescreen = false
"#,
            data = data.join("asdiv_a.jsonl").to_string_lossy(),
            out = out.to_string_lossy(),
        ),
    )
    .unwrap();

    let t0 = Instant::now();
    let mut child = Command::new(mscr_bin())
        .args(["campaign", "run"])
        .arg(&spec)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while count(&out) < 1 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("campaign exited ({status}) before storing a question:\n{err}");
        }
        assert!(t0.elapsed() < Duration::from_secs(900), "no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let stored = count(&out);
    assert!(stored < ITEMS, "Ctrl-C came too late: all {stored} stored");
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("partial") && err.contains("--resume"), "{err}");

    // summary.json: partial, with the questions left named per cell.
    let summary = mscr::report::CampaignSummary::from_file(&out.join("summary.json")).unwrap();
    assert_eq!(summary.complete, Some(false));
    let cell = &summary.cells[0];
    assert_eq!(cell.summary.questions, stored);
    assert_eq!(cell.item_ids.len(), stored);
    assert_eq!(cell.missing_item_ids.len(), ITEMS - stored);
    assert!(
        cell.missing_item_ids
            .iter()
            .all(|id| !cell.item_ids.contains(id)),
        "{cell:?}"
    );
    for f in ["report.md", "report.html"] {
        let text = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(
            text.contains(&format!("{stored} of {ITEMS} planned questions finished")),
            "{f} does not say the run is partial"
        );
    }

    // The gate refuses it, whatever the baseline.
    let s = out.join("summary.json");
    let g = Command::new(mscr_bin())
        .args(["gate", "--baseline"])
        .arg(&s)
        .arg("--current")
        .arg(&s)
        .output()
        .unwrap();
    let gerr = String::from_utf8_lossy(&g.stderr);
    assert_eq!(g.status.code(), Some(2), "{gerr}");
    assert!(
        gerr.contains("run is partial") && gerr.contains(&cell.missing_item_ids[0]),
        "{gerr}"
    );
    assert!(!String::from_utf8_lossy(&g.stdout).contains("gate passed"));
}
