//! Crash safety through the real binary and the real default model: a run
//! killed with SIGKILL mid-campaign, then resumed, loses no finished question
//! and repeats none; Ctrl-C (SIGINT) stops after the current question.
//!
//! Needs `mscr setup` (default model, ORT) and the campaign wired to the
//! attack, dataset loader and model backend.

#[path = "report_support/mod.rs"]
mod report_support;
use mscr::campaign::{CellKey, Store};
use report_support::{mscr_bin, stored_count as count, stored_records as snapshot};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ITEMS: usize = 8;

fn start(spec: &Path, resume: bool) -> Child {
    let mut c = Command::new(mscr_bin());
    c.args(["campaign", "run", "--no-report"]).arg(spec);
    if resume {
        c.arg("--resume");
    }
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the store holds `n` records, then returns; panics with the
/// child's stderr if it exits first.
fn wait_for(child: &mut Child, out: &Path, n: usize) {
    let t0 = Instant::now();
    while count(out) < n {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("campaign exited ({status}) before {n} questions were stored:\n{err}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1500),
            "no progress in 25 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigkill_then_resume_loses_nothing_and_repeats_nothing() {
    let data = mscr::paths::shared_data_dir().expect("../shared/data (test data) not found");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let spec = tmp.path().join("crash.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"crash\"\nmodels = [\"smollm2-135m-instruct\"]\ndatasets = [{:?}]\nlimit = {ITEMS}\nout = {:?}\n\
             [decoding]\nmax_new_tokens = 48\n[[attacks]]\nconfig = {:?}\n",
            data.join("asdiv_a.jsonl").to_string_lossy(),
            out.to_string_lossy(),
            repo.join("attacks/mscr.toml").to_string_lossy(),
        ),
    )
    .unwrap();

    // 1. SIGKILL once two questions are stored.
    let mut child = start(&spec, false);
    wait_for(&mut child, &out, 2);
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let before = snapshot(&out);
    assert!(
        before.len() >= 2 && before.len() < ITEMS,
        "killed too late: {}",
        before.len()
    );

    // Without --resume the folder is refused, untouched.
    let refused = Command::new(mscr_bin())
        .args(["campaign", "run"])
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));

    // 2. Resume, then Ctrl-C once two more are stored: exits 130 after the current question.
    let mut middle = before.clone();
    if before.len() + 3 <= ITEMS {
        let mut child = start(&spec, true);
        wait_for(&mut child, &out, before.len() + 2);
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let o = child.wait_with_output().unwrap();
        middle = snapshot(&out);
        if middle.len() < ITEMS {
            assert_eq!(
                o.status.code(),
                Some(130),
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
        }
        for (k, v) in &before {
            assert_eq!(
                middle.get(k),
                Some(v),
                "record {k:?} changed by the resumed run"
            );
        }
    }

    // 3. Resume to the end.
    let o = Command::new(mscr_bin())
        .args(["campaign", "run", "--resume"])
        .arg(&spec)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let after = snapshot(&out);
    assert_eq!(after.len(), ITEMS, "every question exactly once");
    assert!(
        err.contains(&format!(
            "{} questions run, {} already done",
            ITEMS - middle.len(),
            middle.len()
        )),
        "{err}"
    );
    // Finished questions survived both interruptions unchanged.
    for (k, v) in &middle {
        assert_eq!(after.get(k), Some(v), "record {k:?} changed or vanished");
    }
    let cell = CellKey {
        model: "smollm2-135m-instruct".into(),
        transform: "identity".into(),
        dataset: after
            .keys()
            .next()
            .unwrap()
            .0
            .split(" | ")
            .nth(2)
            .unwrap()
            .into(),
        attack: "mscr".into(),
    };
    let ids: Vec<String> = Store::open_existing(&out)
        .unwrap()
        .records(&cell)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
    assert!(out.join("report.html").is_file());
    // The model's size and measured speed reach summary.json and the transforms table.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let profile = &summary["cells"][0]["profile"];
    assert_eq!(profile["params"].as_u64(), Some(134_515_008), "{profile}");
    assert!(profile["flops_per_token"].as_u64().unwrap() > 2 * 134_000_000 / 2);
    assert!(
        profile["decode_tokens_per_s"].as_f64().unwrap() > 0.0,
        "{profile}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("## Transforms\n") && md.contains("| identity | 134.5M |"),
        "{md}"
    );
}
