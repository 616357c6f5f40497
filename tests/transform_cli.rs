//! `mscr transform` end to end on a tiny model folder: chained transforms with
//! calibration text from a JSONL dataset, the written folder loads back with
//! the new head counts and ranks, and bad input is one readable error.

mod common;

use common::*;
use mscr::transform::{load_transformed, persist::load_records, save_transformed};
use std::process::Command;

/// A word-level tokenizer over "w0".."w95" (ids 0..95), whitespace split.
fn tokenizer_json() -> String {
    let vocab: Vec<String> = (0..96).map(|i| format!("\"w{i}\": {i}")).collect();
    format!(
        r#"{{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
"pre_tokenizer":{{"type":"Whitespace"}},"post_processor":null,"decoder":null,
"model":{{"type":"WordLevel","vocab":{{{}}},"unk_token":"w0"}}}}"#,
        vocab.join(",")
    )
}

#[test]
fn transform_command_writes_a_loadable_model_and_record() {
    let m = tiny_model(&Tiny::default(), 31);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    save_transformed(
        &m,
        &[],
        &[("tokenizer.json".into(), tokenizer_json().into_bytes())],
        &src,
    )
    .unwrap();
    let data = tmp.path().join("calib.jsonl");
    let lines: Vec<String> = (0..8)
        .map(|i| {
            let words: Vec<String> = (0..20)
                .map(|j| format!("w{}", (i * 7 + j * 3) % 96))
                .collect();
            format!(
                "{{\"question\": \"{}\", \"answer\": \"1\"}}",
                words.join(" ")
            )
        })
        .collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let out = tmp.path().join("out");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mscr"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&[
        "transform",
        "--model",
        src.to_str().unwrap(),
        "--transform",
        "prune-heads:ratio=0.5,scope=per-layer",
        "--transform",
        "low-rank:method=impact,rank=8,targets=o+down",
        "--calibration",
        data.to_str().unwrap(),
        "--calibration-items",
        "6",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = load_transformed(&out).unwrap();
    assert!(t.layers.iter().all(|l| l.n_heads == 2 && l.n_kv_heads == 2));
    assert!(
        t.layers
            .iter()
            .all(|l| matches!(l.down, mscr::model::Linear::LowRank { ref u, .. } if u.cols == 8))
    );
    let recs = load_records(&out).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].calibration_tokens, 6 * 20);
    assert!(out.join("tokenizer.json").is_file());
    assert_eq!(t.transforms.len(), 2);

    // Bad transform settings: one readable error, exit code 2, no panic.
    let o = run(&[
        "transform",
        "--model",
        src.to_str().unwrap(),
        "--transform",
        "prune-heads:ratio=0.3,colour=red",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("colour") && !err.contains("panicked"), "{err}");
    // An existing model is not overwritten without --force.
    let o = run(&[
        "transform",
        "--model",
        src.to_str().unwrap(),
        "--transform",
        "low-rank:rank=4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        load_records(&out).unwrap().len(),
        2,
        "the old model is kept"
    );
    // Without --calibration, activation-aware transforms calibrate on GSM8K's
    // training questions (the default dataset spec), never on test questions.
    let o = run(&[
        "transform",
        "--model",
        src.to_str().unwrap(),
        "--transform",
        "low-rank:rank=4",
        "--calibration-items",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--force",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recs = load_records(&out).unwrap();
    assert!(recs[0].calibration_tokens > 0, "{recs:?}");
    // An unknown dataset spec names the built-in ones.
    let o = run(&[
        "transform",
        "--model",
        src.to_str().unwrap(),
        "--transform",
        "low-rank:rank=4",
        "--calibration",
        "no-such-set",
        "--out",
        out.to_str().unwrap(),
        "--force",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("gsm8k-train"), "{err}");

    // Calibration data with its own field names, through --mapping as in
    // eval: the mapped field is read (20 words a question, 3 questions).
    let mapped = tmp.path().join("mapped.jsonl");
    let rows: Vec<String> = (0..3)
        .map(|i| {
            let words: Vec<String> = (0..20).map(|j| format!("w{}", (i + j) % 96)).collect();
            format!(
                "{{\"problem\": \"{}\", \"solution\": \"1\"}}",
                words.join(" ")
            )
        })
        .collect();
    std::fs::write(&mapped, rows.join("\n") + "\nnot json\n").unwrap();
    let mapping = tmp.path().join("fields.toml");
    std::fs::write(&mapping, "question = \"problem\"\nanswer = \"solution\"\n").unwrap();
    let out3 = tmp.path().join("out3");
    let o = run(&[
        "transform",
        "--model",
        src.to_str().unwrap(),
        "--transform",
        "low-rank:method=impact,rank=8,targets=o+down",
        "--calibration",
        mapped.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
        "--skip-invalid",
        "--out",
        out3.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(load_records(&out3).unwrap()[0].calibration_tokens, 3 * 20);
}
