//! Opens report.html in real headless Chromium: the page must render its
//! tables and plots with no console message at all (the report has no script,
//! so any message means something broke or was blocked), and questions that
//! carry markup must stay text.

mod report_support;
use base64::Engine;
use report_support::*;
use std::process::Command;

fn chromium() -> String {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c.into();
        }
    }
    panic!(
        "no headless Chromium found: run `bash scripts/test-deps.sh` (installs Debian's chromium)"
    );
}

/// Returns (serialised DOM, console lines).
fn load(page: &std::path::Path) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    (String::from_utf8(out.stdout).unwrap(), console)
}

#[test]
fn report_renders_in_chromium_without_console_errors_and_markup_stays_text() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path(), &sample_cells());
    mscr::report::write_report(dir.path()).unwrap();
    let page = dir.path().join("report.html").canonicalize().unwrap();
    let (dom, console) = load(&page);

    assert!(console.is_empty(), "console messages: {console:#?}");
    // Tables rendered with their rows.
    assert!(dom.contains("<table id=\"robustness\">") && dom.contains("<table id=\"details\">"));
    assert!(dom.contains("<table id=\"validity\">"));
    assert_eq!(
        dom.matches("<tr").count(),
        3 * (1 + 4),
        "header + 4 cells in each of the three tables"
    );
    // The injected markup is text, not elements.
    assert!(
        !dom.contains("<script"),
        "a <script> element reached the DOM"
    );
    assert!(
        !dom.contains("<img src=\"x\""),
        "an injected <img> reached the DOM"
    );
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(dom.contains("&lt;img src=x onerror="));
    assert!(
        dom.contains("<title>mscr robustness report — report-test</title>"),
        "title changed"
    );
    assert!(dom.contains("<mark>pomes</mark>"));
    // Every plot is an inline PNG that decodes to its stated size.
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut plots = 0;
    for part in dom.split("src=\"data:image/png;base64,").skip(1) {
        let data = &part[..part.find('"').unwrap()];
        let png = b64.decode(data).expect("valid base64");
        let img = image::load_from_memory(&png).expect("a decodable PNG");
        assert!(img.width() >= 800 && img.height() >= 300);
        plots += 1;
    }
    assert_eq!(plots, 5);
}

#[test]
fn a_script_in_a_page_would_be_caught() {
    // Guards the guard: the console capture above really sees script errors.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><p>x</p><script>console.error('boom')</script>",
    )
    .unwrap();
    let (_, console) = load(&page);
    assert!(console.iter().any(|l| l.contains("boom")), "{console:#?}");
}
