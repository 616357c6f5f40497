//! Crash safety of the store and runner under a real SIGKILL: a child process
//! (this test binary, re-run as a writer) runs questions into campaign.sqlite
//! and is killed mid-run; resuming stores every question exactly once and
//! leaves the finished ones untouched. (The same through `mscr campaign run`
//! with the real model is tests/campaign_resume.rs.)

use mscr::attack::{AttackRecord, Outcome};
use mscr::campaign::runner::{CellPlan, QuestionRunner, RunOptions, run_cells};
use mscr::campaign::{CellInfo, CellKey, Store};
use mscr::data::Item;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const N: usize = 400;

fn cells() -> Vec<CellPlan> {
    let items: Vec<Item> = (0..N)
        .map(|i| Item {
            id: format!("q{i}"),
            question: format!("Ann has {i} pears and eats one. How many pears are left?"),
            gold: format!("{}", i as i64 - 1),
            meta: Default::default(),
        })
        .collect();
    ["mscr", "random"]
        .iter()
        .map(|a| CellPlan {
            info: CellInfo {
                key: CellKey {
                    model: "m".into(),
                    transform: "identity".into(),
                    dataset: "pears".into(),
                    attack: (*a).into(),
                },
                baseline: *a == "random",
            },
            items: items.clone(),
        })
        .collect()
}

/// Turns each question into its record after a short pause (the stand-in
/// for model time, so the kill lands mid-run).
struct Slow;

impl QuestionRunner for Slow {
    fn run(&self, item: &Item) -> mscr::Result<AttackRecord> {
        std::thread::sleep(Duration::from_millis(3));
        Ok(AttackRecord {
            id: item.id.clone(),
            dataset: String::new(),
            model: String::new(),
            transform: String::new(),
            attack: String::new(),
            gold: item.gold.clone(),
            original_question: item.question.clone(),
            perturbed_question: item.question.replace("pears", "pairs"),
            changes: vec![],
            sentence_similarity: Some(0.9),
            fluency_delta: None,
            clean_output: "x".repeat(2000), // records of realistic size
            clean_answer: Some(item.gold.clone()),
            clean_correct: true,
            clean_tokens: 300,
            attacked_output: Some("y".repeat(2000)),
            attacked_answer: Some("0".into()),
            attacked_tokens: Some(320),
            queries: 7,
            result: Outcome::Success,
            judge: None,
            seconds: 0.003,
            decoding: None,
        })
    }
}

fn run(dir: &std::path::Path, resume: bool) -> mscr::campaign::RunStats {
    let store = Store::open_dir(dir).unwrap();
    let cells = cells();
    let opts = RunOptions {
        resume,
        progress: false,
    };
    run_cells(
        &store,
        &cells,
        |_| Ok(Box::new(Slow) as Box<dyn QuestionRunner>),
        &opts,
    )
    .unwrap()
}

/// The child: only does work when the parent test starts it.
#[test]
fn crash_writer_child() {
    if let Ok(dir) = std::env::var("MSCR_CRASH_TEST_DIR") {
        run(std::path::Path::new(&dir), true);
    }
}

fn snapshot(dir: &std::path::Path) -> BTreeMap<(String, String), String> {
    let store = Store::open_existing(dir).unwrap();
    let mut m = BTreeMap::new();
    for c in store.cells().unwrap() {
        for r in store.records(&c.key).unwrap() {
            m.insert(
                (c.key.id(), r.id.clone()),
                serde_json::to_string(&r).unwrap(),
            );
        }
    }
    m
}

#[test]
fn sigkill_mid_run_then_resume_stores_each_question_once() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_writer_child", "--exact", "--test-threads=1"])
            .env("MSCR_CRASH_TEST_DIR", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let target = 40 * (round + 1);
        let t0 = Instant::now();
        loop {
            let n = Store::open_existing(dir.path())
                .and_then(|s| s.record_count())
                .unwrap_or(0);
            if n >= target {
                break;
            }
            assert!(child.try_wait().unwrap().is_none(), "writer exited early");
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "writer made no progress"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let before = snapshot(dir.path());
    assert!(
        before.len() >= 120 && before.len() < 2 * N,
        "{}",
        before.len()
    );

    let stats = run(dir.path(), true);
    assert_eq!(
        stats.resumed,
        before.len(),
        "every finished question is kept"
    );
    assert_eq!(
        stats.ran,
        2 * N - before.len(),
        "no finished question is repeated"
    );
    let after = snapshot(dir.path());
    assert_eq!(after.len(), 2 * N);
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k:?} changed");
    }
    // The database is intact after three kills.
    let store = Store::open_existing(dir.path()).unwrap();
    let ok: String = rusqlite::Connection::open(store.path())
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}
