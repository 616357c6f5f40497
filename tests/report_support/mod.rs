//! Test data for report, gate and campaign tests: attack records built here
//! (real `AttackRecord` values, as a campaign stores them), including
//! questions that carry markup.
#![allow(dead_code)]

use mscr::attack::{AttackRecord, Change, Outcome};
use mscr::campaign::{CellInfo, CellKey, Store};
use std::path::Path;

pub const SCRIPT_Q: &str =
    "Tom has 3 <script>alert(1)</script> apples and buys 2 more. How many apples does he have?";
pub const IMG_Q: &str = "Sara <img src=x onerror=\"document.title='pwned'\"> read 12 pages & then 8 more. How many pages did she read?";

pub fn key(model: &str, attack: &str) -> CellKey {
    CellKey {
        model: model.into(),
        transform: "identity".into(),
        dataset: "asdiv".into(),
        attack: attack.into(),
    }
}

/// One record. `word` is replaced by `repl` (first occurrence) when given.
pub fn rec(
    id: usize,
    question: &str,
    result: Outcome,
    change: Option<(&str, &str, &[&str])>,
    queries: usize,
) -> AttackRecord {
    let mut changes = Vec::new();
    let mut perturbed = question.to_string();
    if let Some((word, repl, sources)) = change {
        let byte = question.find(word).expect("word in question");
        let start = question[..byte].chars().count();
        let end = start + word.chars().count();
        perturbed = format!(
            "{}{}{}",
            &question[..byte],
            repl,
            &question[byte + word.len()..]
        );
        changes.push(Change {
            word_index: question[..byte].split_whitespace().count(),
            start,
            end,
            original: word.into(),
            replacement: repl.into(),
            sources: sources.iter().map(|s| s.to_string()).collect(),
            word_similarity: Some(0.71),
        });
    }
    let clean_correct = result != Outcome::Skipped;
    AttackRecord {
        id: format!("asdiv-{id}"),
        dataset: "asdiv".into(),
        model: String::new(),
        transform: String::new(),
        attack: String::new(),
        gold: "5".into(),
        original_question: question.into(),
        perturbed_question: perturbed,
        changes,
        sentence_similarity: (result == Outcome::Success).then_some(0.86 + (id % 7) as f32 * 0.015),
        fluency_delta: (result == Outcome::Success).then_some(-0.5),
        clean_output: format!(
            "Step 1: 3 + 2 = 5. <b>bold</b> & done. The answer is {}.",
            if clean_correct { 5 } else { 4 }
        ),
        clean_answer: Some(if clean_correct { "5" } else { "4" }.into()),
        clean_correct,
        clean_tokens: 40 + id % 9,
        attacked_output: (result != Outcome::Skipped).then(|| {
            format!(
                "Hmm </pre><script>alert(2)</script> The answer is {}.",
                if result == Outcome::Success { 7 } else { 5 }
            )
        }),
        attacked_answer: match result {
            Outcome::Success => Some("7".into()),
            Outcome::Failed => Some("5".into()),
            Outcome::Skipped => None,
        },
        attacked_tokens: (result != Outcome::Skipped).then_some(55 + id % 11),
        queries,
        result,
        judge: None,
        seconds: 0.5,
        decoding: None,
    }
}

/// Two models, each attacked by `mscr` and by the `random` baseline.
pub fn sample_cells() -> Vec<(CellKey, bool, Vec<AttackRecord>)> {
    let qs = [
        SCRIPT_Q,
        IMG_Q,
        "A baker made 24 cookies and sold 9 of them. How many cookies are left?",
        "There are 15 birds on a tree and 6 fly away. How many birds remain?",
        "Mia has 7 red pens and 5 blue pens. How many pens does she have in total?",
        "A farmer has 30 cows and buys 12 more. How many cows does the farmer own?",
    ];
    let mut cells = Vec::new();
    for (mi, model) in ["smollm2-135m-instruct", "tiny-llama"].iter().enumerate() {
        let mut mscr = Vec::new();
        let mut random = Vec::new();
        for i in 0..24 {
            let q = qs[i % qs.len()];
            let (word, repl, sources): (&str, &str, &[&str]) = match i % 6 {
                0 => ("apples", "pomes", &["wordnet"]),
                1 => ("pages", "leaves", &["embedding", "wordnet"]),
                2 => ("cookies", "biscuits", &["mlm"]),
                3 => ("birds", "fowl", &["embedding"]),
                4 => ("pens", "quills", &["mlm", "wordnet"]),
                _ => ("cows", "cattle", &["embedding", "mlm", "wordnet"]),
            };
            let r = match (i + mi) % 4 {
                0 if i % 5 == 4 => Outcome::Skipped,
                0 | 1 => Outcome::Success,
                2 => Outcome::Failed,
                _ => Outcome::Skipped,
            };
            let ch = (r != Outcome::Skipped).then_some((word, repl, sources));
            mscr.push(rec(i, q, r, ch, 3 + i % 9));
            let rr = if r == Outcome::Success && i % 3 != 0 {
                Outcome::Failed
            } else {
                r
            };
            let rch = (rr != Outcome::Skipped).then_some((word, "thing", &["random"][..]));
            random.push(rec(i, q, rr, rch, 10 + i % 5));
        }
        cells.push((key(model, "mscr"), false, mscr));
        cells.push((key(model, "random"), true, random));
    }
    cells
}

/// Writes cells into `DIR/campaign.sqlite` the way the runner does.
pub fn write_store(dir: &Path, cells: &[(CellKey, bool, Vec<AttackRecord>)]) {
    let store = Store::open_dir(dir).unwrap();
    store.set_meta("name", "report-test").unwrap();
    for (k, b, records) in cells {
        store
            .register_cell(&CellInfo {
                key: k.clone(),
                baseline: *b,
            })
            .unwrap();
        // The plan a runner records: these questions are the whole cell.
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        store.set_plan(k, &ids).unwrap();
        for r in records {
            let mut r = r.clone();
            r.model = k.model.clone();
            r.transform = k.transform.clone();
            r.attack = k.attack.clone();
            store.put_record(k, &r).unwrap();
        }
    }
}

pub fn mscr_bin() -> &'static str {
    env!("CARGO_BIN_EXE_mscr")
}

/// Every record stored in the campaign folder `out`, by (cell, item), as its
/// JSON; empty before the store exists.
pub fn stored_records(out: &Path) -> std::collections::BTreeMap<(String, String), String> {
    let Ok(store) = Store::open_existing(out) else {
        return Default::default();
    };
    let mut m = std::collections::BTreeMap::new();
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

/// How many records the campaign folder `out` holds (0 before the store exists).
pub fn stored_count(out: &Path) -> usize {
    Store::open_existing(out)
        .and_then(|s| s.record_count())
        .unwrap_or(0)
}
