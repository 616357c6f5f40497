//! `mscr report DIR` on a store of records: every file, the figures in
//! summary.json, escaping and highlighting.

mod report_support;
use report_support::*;
use std::process::Command;

/// Summaries equal up to JSON's float round trip.
fn same(a: &mscr::attack::Summary, b: &mscr::attack::Summary) -> bool {
    let (a, b) = (
        serde_json::to_value(a).unwrap(),
        serde_json::to_value(b).unwrap(),
    );
    a.as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| match (v.as_f64(), b[k].as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-9,
            _ => *v == b[k],
        })
}

#[test]
fn report_writes_every_file_with_correct_figures() {
    let dir = tempfile::tempdir().unwrap();
    let cells = sample_cells();
    write_store(dir.path(), &cells);
    let out = Command::new(mscr_bin())
        .arg("report")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for f in [
        "report.md",
        "report.html",
        "summary.json",
        "results.csv",
        "results.jsonl",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    for p in ["accuracy", "sources", "length", "similarity", "queries"] {
        let png = std::fs::read(dir.path().join(format!("plots/{p}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{p}.png is not a PNG");
        let svg = std::fs::read_to_string(dir.path().join(format!("plots/{p}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("<text"),
            "{p}.svg has no text"
        );
    }

    // summary.json agrees with Summary::from_records and pairs the baseline.
    let s = mscr::report::CampaignSummary::from_file(&dir.path().join("summary.json")).unwrap();
    assert_eq!(s.cells.len(), 4);
    for (k, baseline, records) in &cells {
        let c = s.cells.iter().find(|c| c.cell == k.id()).unwrap();
        assert_eq!(c.baseline, *baseline);
        assert!(same(
            &c.summary,
            &mscr::attack::Summary::from_records(records)
        ));
        if *baseline {
            assert!(c.random_baseline.is_none());
        } else {
            let b = &cells
                .iter()
                .find(|(bk, _, _)| *bk == k.with_attack("random"))
                .unwrap()
                .2;
            assert!(same(
                c.random_baseline.as_ref().unwrap(),
                &mscr::attack::Summary::from_records(b)
            ));
        }
    }

    // CSV: header + one row per record, TextAttack columns present.
    let csv = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(csv.as_bytes());
    assert!(rdr.headers().unwrap().iter().any(|h| h == "result_type"));
    assert_eq!(rdr.records().count(), 96);
    let jsonl = std::fs::read_to_string(dir.path().join("results.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 96);

    // HTML: escaped markup, no raw script, changed words marked.
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script"), "raw <script> in report.html");
    assert!(
        !html.contains("<img src=x"),
        "raw injected <img> in report.html"
    );
    assert!(html.contains("<mark>pomes</mark>") && html.contains("<mark>fowl</mark>"));
    assert!(html.contains("data:image/png;base64,"));
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains("| smollm2-135m-instruct | identity | asdiv | mscr |"),
        "{md}"
    );
    assert!(md.contains("**pomes**") && !md.contains("<script>"));

    // Every rate carries its count and 95% interval; the validity evidence has its table.
    for c in s.cells.iter().filter(|c| !c.baseline) {
        let cs = &c.summary;
        let attacked = cs.successes + cs.failures;
        let (lo, hi) = mscr::eval::wilson(cs.successes, attacked, 1.959964);
        let want = format!(
            "{:.1}% ({}/{attacked}; {:.1}–{:.1})",
            100.0 * cs.success_rate,
            cs.successes,
            100.0 * lo,
            100.0 * hi
        );
        assert!(md.contains(&want), "no `{want}` in\n{md}");
    }
    assert!(
        md.contains("Validity of the successful perturbations"),
        "{md}"
    );
    assert!(
        md.contains("| -0.50 |"),
        "mean fluency change of the successes: {md}"
    );
    assert!(html.contains("Validity of the successful perturbations"));
}

#[test]
fn report_on_a_folder_without_a_campaign_is_a_readable_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(mscr_bin())
        .arg("report")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("campaign.sqlite") && err.contains("mscr campaign run"),
        "{err}"
    );
}

#[test]
fn report_of_an_empty_or_all_skipped_campaign_is_still_written() {
    // A campaign stopped before its first question: cells, no records.
    let empty = tempfile::tempdir().unwrap();
    let store = mscr::campaign::Store::open_dir(empty.path()).unwrap();
    store
        .register_cell(&mscr::campaign::CellInfo {
            key: key("m", "mscr"),
            baseline: false,
        })
        .unwrap();
    mscr::report::write_report(empty.path()).unwrap();
    let html = std::fs::read_to_string(empty.path().join("report.html")).unwrap();
    assert!(html.contains("No successful attacks."));

    // Every question answered wrongly when clean: nothing attacked.
    let skipped = tempfile::tempdir().unwrap();
    let records = (0..5)
        .map(|i| {
            rec(
                i,
                "A cat has 4 legs. How many legs do 2 cats have?",
                mscr::attack::Outcome::Skipped,
                None,
                1,
            )
        })
        .collect();
    write_store(skipped.path(), &[(key("m", "mscr"), false, records)]);
    let r = mscr::report::write_report(skipped.path()).unwrap();
    assert_eq!(r.files.len(), 5 + 10);
    let s = mscr::report::CampaignSummary::from_file(&skipped.path().join("summary.json")).unwrap();
    assert_eq!(
        (s.cells[0].summary.questions, s.cells[0].summary.skipped),
        (5, 5)
    );
}
