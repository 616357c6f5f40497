//! A campaign against `mscr serve` whose server is SIGKILLed mid-run, through
//! the real binaries (both child processes, the default model, 8 ASDiv-A
//! questions): the client retries, then the run stops (exit status 2, no
//! panic) with an error naming the server, the question, the attempts and
//! `--resume`; finished questions stay in campaign.sqlite and the failed one is
//! not stored. With the server back on the same port, `--resume` runs exactly
//! the questions left, stores every question once, and leaves the finished
//! records byte for byte as they were (none recomputed). Needs `mscr setup`.

#[path = "report_support/mod.rs"]
mod report_support;
use mscr::campaign::Store;
#[path = "serve_support/mod.rs"]
mod serve_support;
use report_support::{mscr_bin, stored_count as count, stored_records as snapshot};
use serve_support::Proc;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Everything a child wrote to its piped stderr (reads to its end).
fn stderr_of(child: &mut std::process::Child) -> String {
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    err
}

const MODEL: &str = "smollm2-135m-instruct";
/// The first 8 ASDiv-A questions: the default model answers nluds-0002 and
/// nluds-0007 correctly (so they are attacked, asking the server again after
/// the clean answers); most others are skipped after their clean answer.
const ITEMS: usize = 8;

/// Starts `mscr serve` with the default model on `addr`.
fn serve(addr: &str) -> (Proc, String) {
    serve_support::serve(MODEL, addr, &["--max-batch", "8"])
}

fn campaign(spec: &Path, resume: bool) -> Command {
    let mut c = Command::new(mscr_bin());
    c.args(["campaign", "run", "--no-report"]).arg(spec);
    if resume {
        c.arg("--resume");
    }
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

#[test]
fn server_killed_mid_campaign_then_resume_finishes_each_question_once() {
    let data = mscr::paths::shared_data_dir().expect("../shared/data (test data) not found");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let spec = tmp.path().join("served.toml");

    let (server, base) = serve("127.0.0.1:0");
    let addr = base
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string();
    // Quick retries: a dead server (connection refused) is given up on in about
    // a second. The timeout is long because a live request can wait behind
    // several batches on a busy 2-core machine.
    let model = format!("openai:{base}#{MODEL}?timeout_s=60&retries=2&backoff_ms=200");
    std::fs::write(
        &spec,
        format!(
            r#"name = "served"
models = [{model:?}]
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

    // 1. Run; SIGKILL the server once the first question is stored (the clean
    //    answers are in; the attacks still need the server).
    let t0 = Instant::now();
    let mut run = Proc(campaign(&spec, false).spawn().unwrap());
    while count(&out) < 1 {
        if let Some(status) = run.0.try_wait().unwrap() {
            let err = stderr_of(&mut run.0);
            panic!("campaign exited ({status}) before storing a question:\n{err}");
        }
        assert!(t0.elapsed() < Duration::from_secs(900), "no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server); // SIGKILL
    let err = stderr_of(&mut run.0);
    let status = run.0.wait().unwrap();
    eprintln!("first run ({:.0} s): {err}", t0.elapsed().as_secs_f64());
    let before = snapshot(&out);
    assert!(
        !before.is_empty() && before.len() < ITEMS,
        "expected the run to stop part-way, it stored {}:\n{err}",
        before.len()
    );
    // A clear error, not a panic: the server, the question, retries, what to do.
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let failed = err
        .split("item `")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .unwrap_or_else(|| panic!("the error names no item:\n{err}"))
        .to_string();
    assert!(failed.starts_with("nluds-"), "{err}");
    assert!(
        err.contains(&format!("openai:http://{addr}/v1#{MODEL}")),
        "the error should name the server:\n{err}"
    );
    assert!(err.contains("gave up after 3 attempts"), "{err}");
    assert!(err.contains("--resume"), "{err}");
    assert!(
        !before.keys().any(|(_, id)| *id == failed),
        "the failed question {failed} must not be stored as finished"
    );

    // 2. The server comes back on the same port; resume to the end.
    let (_server, base2) = serve(&addr);
    assert_eq!(base2, base);
    let t1 = Instant::now();
    let o = campaign(&spec, true).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("resumed run ({:.0} s): {err}", t1.elapsed().as_secs_f64());
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "{} questions run, {} already done",
            ITEMS - before.len(),
            before.len()
        )),
        "{err}"
    );
    let after = snapshot(&out);
    assert_eq!(after.len(), ITEMS, "every question exactly once");
    assert!(after.keys().any(|(_, id)| *id == failed));
    for (k, v) in &before {
        assert_eq!(
            after.get(k),
            Some(v),
            "finished record {k:?} was recomputed"
        );
    }
    let ids: Vec<String> = {
        let store = Store::open_existing(&out).unwrap();
        let cells = store.cells().unwrap();
        assert_eq!(cells.len(), 1);
        store
            .records(&cells[0].key)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ITEMS, "{ids:?}");
}
