//! Output files: records.jsonl, records.csv (TextAttack columns), summary.json.

use mscr::attack::output::write_outputs;
use mscr::attack::{AttackRecord, Change, Outcome};

fn record(id: &str, attack: &str, result: Outcome, sources: &[&str]) -> AttackRecord {
    let success = result == Outcome::Success;
    AttackRecord {
        id: id.into(),
        dataset: "gsm8k".into(),
        model: "m".into(),
        transform: "identity".into(),
        attack: attack.into(),
        gold: "18".into(),
        original_question: "Janet bought 16 eggs, \"fresh\".".into(),
        perturbed_question: if success {
            "Janet purchased 16 eggs, \"fresh\".".into()
        } else {
            "Janet bought 16 eggs, \"fresh\".".into()
        },
        changes: if success {
            vec![Change {
                word_index: 1,
                start: 6,
                end: 12,
                original: "bought".into(),
                replacement: "purchased".into(),
                sources: sources.iter().map(|s| s.to_string()).collect(),
                word_similarity: Some(0.7),
            }]
        } else {
            vec![]
        },
        sentence_similarity: success.then_some(0.9),
        fluency_delta: None,
        clean_output: "The answer is 18.".into(),
        clean_answer: Some("18".into()),
        clean_correct: result != Outcome::Skipped,
        clean_tokens: 10,
        attacked_output: success.then(|| "The answer is 20.".into()),
        attacked_answer: success.then(|| "20".into()),
        attacked_tokens: success.then_some(20),
        queries: if result == Outcome::Skipped { 1 } else { 5 },
        result,
        judge: None,
        seconds: 1.0,
        decoding: None,
    }
}

#[test]
fn writes_records_and_summary_with_baseline() {
    let dir = std::env::temp_dir().join(format!("mscr-attack-out-{}", std::process::id()));
    let main = vec![
        record("a", "mscr", Outcome::Success, &["wordnet", "mlm"]),
        record("b", "mscr", Outcome::Success, &["embedding"]),
        record("c", "mscr", Outcome::Failed, &[]),
        record("d", "mscr", Outcome::Skipped, &[]),
    ];
    let base = vec![
        record("a", "random", Outcome::Failed, &[]),
        record("b", "random", Outcome::Success, &["wordnet"]),
        record("c", "random", Outcome::Failed, &[]),
        record("d", "random", Outcome::Skipped, &[]),
    ];
    let paths = write_outputs(&dir, &main, Some(&base)).unwrap();
    let jsonl = std::fs::read_to_string(&paths.jsonl).unwrap();
    let back: Vec<AttackRecord> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back.len(), 8);
    assert_eq!(back[0], main[0]);
    let mut csv = csv::Reader::from_path(&paths.csv).unwrap();
    let headers = csv.headers().unwrap().clone();
    for col in [
        "original_text",
        "perturbed_text",
        "original_output",
        "perturbed_output",
        "ground_truth_output",
        "num_queries",
        "result_type",
    ] {
        assert!(headers.iter().any(|h| h == col), "missing {col}");
    }
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 8);
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(
        &rows[0][col("perturbed_text")],
        "Janet purchased 16 eggs, \"fresh\"."
    );
    assert_eq!(&rows[0][col("result_type")], "Successful");
    assert_eq!(&rows[0][col("sources")], "wordnet+mlm");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&paths.summary).unwrap()).unwrap();
    assert_eq!(s["attack"], "mscr");
    assert_eq!(s["successes"], 2);
    assert!((s["success_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(s["random_baseline"]["successes"], 1);
    assert_eq!(s["successes_per_source"]["wordnet"], 1);
    assert_eq!(s["unique_per_source"]["embedding"], 1);
    // Without a baseline the key is present and null.
    let paths = write_outputs(&dir, &main, None).unwrap();
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&paths.summary).unwrap()).unwrap();
    assert!(s["random_baseline"].is_null());
    std::fs::remove_dir_all(&dir).ok();
}
