//! Prompt and decoding transforms through real models: seeded sampling on a
//! tiny random-weight model repeats exactly, and a campaign with `self-doubt`
//! and `self-consistency` chains runs the real attack path on the default
//! model (SmolLM2-135M-Instruct, needs `mscr setup`) with very small budgets.

mod common;

use common::*;
use mscr::campaign::{CampaignRun, CellKey, Store};
use mscr::lm::{Decoding, Prompt};
use mscr::runtime::LoadOptions;
use mscr::score::AnswerStyle;
use mscr::transform::decode::{
    Answerer, PassAtKConfig, SampleConfig, Sampling, SelfConsistencyConfig, draw, vote,
};
use mscr::transform::save_transformed;
use std::sync::Arc;

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

/// A tiny random-weight model written as a folder `mscr` loads (word-level tokenizer).
fn tiny_folder(parent: &std::path::Path, seed: u64) -> std::path::PathBuf {
    let dir = parent.join("tiny");
    save_transformed(
        &tiny_model(&Tiny::default(), seed),
        &[],
        &[("tokenizer.json".into(), tokenizer_json().into_bytes())],
        &dir,
    )
    .unwrap();
    dir
}

/// Runs the `mscr` binary.
fn mscr(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_mscr"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs the `mscr` binary and requires success.
fn mscr_ok(args: &[&str]) -> std::process::Output {
    let out = mscr(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A GSM8K-format file of word questions for the tiny model.
fn word_questions(parent: &std::path::Path, qa: &[(&str, &str)]) -> std::path::PathBuf {
    let p = parent.join("gsm8k_tiny.jsonl");
    let lines: Vec<String> = qa
        .iter()
        .map(|(q, a)| serde_json::json!({"question": q, "answer": format!("#### {a}")}).to_string())
        .collect();
    std::fs::write(&p, lines.join("\n")).unwrap();
    p
}

#[test]
fn a_sampled_run_is_identical_under_the_same_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny_folder(tmp.path(), 5);
    let model = mscr::runtime::load_model(dir.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let questions: Vec<String> = ["w1 w2 w3 w4", "w9 w8 w7"].map(String::from).to_vec();
    let prompts: Vec<Prompt> = questions.iter().map(Prompt::text).collect();
    let golds = ["3", "4"];
    let decoding = Decoding {
        max_new_tokens: 12,
        ..Decoding::default()
    };
    // A hot temperature: the random-weight model's next-token distribution is
    // peaked, and the test wants visibly different draws.
    let sample = |seed: u64| SampleConfig {
        n: 4,
        temperature: 5.0,
        top_p: 1.0,
        seed,
    };
    let run = |a: &Answerer| {
        a.answer(
            model.as_ref(),
            &questions,
            &prompts,
            &decoding,
            &golds,
            AnswerStyle::Numeric,
        )
        .unwrap()
    };
    // The raw samples, drawn the way every decoding transform draws them.
    let s11 = Sampling {
        n: 4,
        temperature: 5.0,
        top_p: 1.0,
        seed: 11,
    };
    let texts = |s: &Sampling| -> Vec<Vec<String>> {
        draw(model.as_ref(), &prompts, &decoding, s)
            .unwrap()
            .into_iter()
            .map(|s| s.into_iter().map(|g| g.text).collect())
            .collect()
    };
    let a = Answerer::new(Arc::new(sample(11)));
    // Same seed: the same samples and the same decisions.
    let (first, second) = (run(&a), run(&a));
    assert_eq!(first, second);
    let t = texts(&s11);
    assert_eq!(t, texts(&s11));
    for (per, d) in t.iter().zip(&first) {
        assert_eq!(per.len(), 4);
        let r = d.record.as_ref().unwrap();
        assert_eq!(r.answers.len(), 4);
        assert_eq!(r.tokens.len(), 4);
        assert_eq!(d.output, per[r.chosen]);
    }
    // The samples of a question are distinct draws (each its own seed), not
    // one answer repeated.
    let distinct = t.iter().any(|per| {
        let mut u = per.clone();
        u.sort();
        u.dedup();
        u.len() > 1
    });
    assert!(distinct, "every question's samples identical: {t:?}");
    // Another seed: other samples.
    assert_ne!(t, texts(&Sampling { seed: 12, ..s11 }));
    let other = run(&Answerer::new(Arc::new(sample(12))));
    assert_ne!(
        first.iter().map(|d| &d.output).collect::<Vec<_>>(),
        other.iter().map(|d| &d.output).collect::<Vec<_>>()
    );
    // The vote and pass@k decide deterministically from the same samples.
    let sc = Answerer::new(Arc::new(SelfConsistencyConfig {
        n: 4,
        temperature: 5.0,
        top_p: 1.0,
        seed: 11,
    }));
    let v1 = run(&sc);
    assert_eq!(v1, run(&sc));
    for d in &v1 {
        let r = d.record.as_ref().unwrap();
        match vote(&r.answers, AnswerStyle::Numeric) {
            Some((chosen, votes)) => assert_eq!((r.chosen, r.votes), (chosen, Some(votes))),
            None => assert_eq!((r.chosen, r.votes), (0, Some(0))),
        }
    }
    let pk = Answerer::new(Arc::new(PassAtKConfig {
        n: 4,
        k: 2,
        temperature: 5.0,
        top_p: 1.0,
        seed: 11,
    }));
    assert_eq!(pk.samples(), 4);
    assert_eq!(run(&pk), run(&pk));
}

#[test]
fn mscr_transform_refuses_inference_transforms_with_directions() {
    let tmp = tempfile::tempdir().unwrap();
    for (t, stage) in [
        ("self-doubt", "prompt"),
        ("self-consistency:n=5", "decoding"),
    ] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_mscr"))
            .args([
                "transform",
                "--model",
                "smollm2-135m-instruct",
                "--transform",
                t,
                "--out",
            ])
            .arg(tmp.path().join("out"))
            .output()
            .unwrap();
        assert!(!o.status.success());
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains(&format!("{stage} transform")) && e.contains("[[transforms]]"),
            "{t}: {e}"
        );
        assert!(!tmp.path().join("out").exists());
    }
}

/// Three ASDiv-A questions the default model answers correctly under greedy
/// decoding with the `cot` prompt (its quickstart run).
fn easy_asdiv(dir: &std::path::Path) -> std::path::PathBuf {
    let src = mscr::paths::shared_data_dir().expect("../shared/data (test data) not found");
    let text = std::fs::read_to_string(src.join("asdiv_a.jsonl")).unwrap();
    let wanted = [
        "Ellen has six more balls",
        "Sandra took six cups",
        "Five red peaches",
    ];
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| wanted.iter().any(|w| l.contains(w)))
        .collect();
    assert_eq!(lines.len(), 3);
    let p = dir.join("asdiv_a.jsonl");
    std::fs::write(&p, lines.join("\n")).unwrap();
    p
}

#[test]
fn prompt_and_decoding_transforms_run_through_the_campaign_attack() {
    let tmp = tempfile::tempdir().unwrap();
    let data = easy_asdiv(tmp.path());
    let out = tmp.path().join("run");
    let spec = tmp.path().join("prompting-test.toml");
    // WordNet candidates only and a tiny budget: the clean answer (3 samples
    // under self-consistency) plus one batch of at most two perturbed questions.
    std::fs::write(
        &spec,
        format!(
            r#"name = "prompting-test"
models = ["smollm2-135m-instruct"]
datasets = [{data:?}]
out = {out:?}
[decoding]
max_new_tokens = 96
[[transforms]]
kind = "identity"
[[transforms]]
kind = "self-doubt"
[[transforms]]
kind = "self-consistency"
n = 3
temperature = 0.5
[[attacks]]
name = "wordnet"
seed = 0
budget = {{ max_queries = 9, batch = 2 }}
sources = [{{ kind = "wordnet", max = 10 }}]
filters = [{{ kind = "differs" }}, {{ kind = "numbers" }}, {{ kind = "max-words", max = 1 }}]
search = {{ kind = "single-word", importance = false, prescreen = false }}
"#,
        ),
    )
    .unwrap();
    let result = mscr::campaign::run(&CampaignRun {
        spec: spec.clone(),
        ..CampaignRun::default()
    })
    .unwrap();
    mscr::report::write_report(&result.out).unwrap();
    assert_eq!(result.stats.ran, 9);
    let store = Store::open_existing(&out).unwrap();
    let cell = |t: &str| CellKey {
        model: "smollm2-135m-instruct".into(),
        transform: t.into(),
        dataset: "asdiv".into(),
        attack: "wordnet".into(),
    };
    let plain = store.records(&cell("identity")).unwrap();
    let doubt = store.records(&cell("self-doubt")).unwrap();
    let sc = store
        .records(&cell("self-consistency{\"n\":3,\"temperature\":0.5}"))
        .unwrap();
    assert_eq!((plain.len(), doubt.len(), sc.len()), (3, 3, 3));
    // The default model answers these under greedy cot decoding: the attack ran.
    assert!(plain.iter().any(|r| r.clean_correct), "{plain:#?}");
    for r in plain.iter().chain(&doubt) {
        assert!(r.decoding.is_none());
        assert!(r.queries <= 9, "{}: {} queries", r.id, r.queries);
    }
    // The self-doubt prompt is what the model saw: different outputs.
    assert_ne!(
        plain.iter().map(|r| &r.clean_output).collect::<Vec<_>>(),
        doubt.iter().map(|r| &r.clean_output).collect::<Vec<_>>()
    );
    for r in &sc {
        let d = r.decoding.as_ref().expect("a decoding record");
        assert_eq!((d.kind.as_str(), d.samples), ("self-consistency", 3));
        assert_eq!(d.clean.answers.len(), 3);
        // The decision is the vote over the samples' answers.
        let (chosen, votes) = vote(&d.clean.answers, AnswerStyle::Numeric).unwrap_or((0, 0));
        assert_eq!((d.clean.chosen, d.clean.votes), (chosen, Some(votes)));
        assert_eq!(r.clean_answer, d.clean.answers[chosen]);
        assert_eq!(r.clean_tokens, d.clean.tokens[chosen]);
        // Every sample is a query: 3 for the clean answer, 3 per perturbed question.
        assert_eq!(r.queries % 3, 0, "{}", r.queries);
        assert!(r.queries <= 9, "{}", r.queries);
        if r.clean_correct {
            assert!(r.queries > 3 || r.changes.is_empty());
            if r.attacked_output.is_some() {
                let a = d.attacked.as_ref().expect("the attacked decision");
                assert_eq!(a.answers.len(), 3);
                assert_eq!(r.attacked_answer, a.answers[a.chosen]);
                // The goal used the majority answer.
                assert_eq!(r.result == mscr::attack::Outcome::Success, a.credit == 0.0);
            }
        } else {
            assert_eq!(r.queries, 3);
        }
    }
    // Report: rows per transform beside the untransformed model, with costs.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Transforms"), "{md}");
    assert!(
        md.contains("| self-doubt |") && md.contains("tokens / question"),
        "{md}"
    );
    let summary = mscr::report::CampaignSummary::from_file(&out.join("summary.json")).unwrap();
    let sc_cell = summary
        .cells
        .iter()
        .find(|c| c.transform.starts_with("self-consistency"))
        .unwrap();
    assert_eq!(sc_cell.summary.samples_per_question, 3.0);
    let id_cell = summary
        .cells
        .iter()
        .find(|c| c.transform == "identity")
        .unwrap();
    assert!(
        sc_cell.summary.tokens_per_question > 1.5 * id_cell.summary.tokens_per_question,
        "three samples cost more than one: {} vs {}",
        sc_cell.summary.tokens_per_question,
        id_cell.summary.tokens_per_question
    );
}

#[test]
fn mscr_eval_runs_a_transform_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny_folder(tmp.path(), 8);
    let data = word_questions(tmp.path(), &[("w1 w2 w3", "3"), ("w9 w8", "2")]);
    let out = tmp.path().join("eval");
    // A weight, a prompt and a decoding transform in one chain.
    let (model, data) = (dir.to_str().unwrap(), data.to_str().unwrap());
    let base = [
        "eval",
        "--model",
        model,
        "--dataset",
        data,
        "--format",
        "gsm8k",
    ];
    let chain = [
        "--transform",
        "prune-heads:ratio=0.5",
        "--transform",
        "self-doubt",
        "--transform",
        "self-consistency:n=3,temperature=2.0",
    ];
    let out_s = out.to_str().unwrap();
    mscr_ok(&[&base[..], &["--max-tokens", "6", "--out", out_s], &chain].concat());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let label = summary["transform"].as_str().unwrap();
    assert!(
        label.contains("prune-heads") && label.contains("self-consistency"),
        "{label}"
    );
    assert_eq!(
        summary["prompt"], "self-doubt",
        "the prompt step's template"
    );
    assert_eq!(summary["n"], 2);
    let credit = summary["mean_credit"].as_f64().unwrap();
    assert_eq!(credit, summary["accuracy"].as_f64().unwrap());
    let items: Vec<serde_json::Value> = std::fs::read_to_string(out.join("items.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(items.len(), 2);
    for it in &items {
        assert_eq!(it["samples"], 3, "{it}");
        let (shown, all) = (
            it["tokens"].as_u64().unwrap(),
            it["sample_tokens"].as_u64().unwrap(),
        );
        assert!(shown <= all && all <= 18, "{shown} of {all} tokens");
    }
    // A chain in the wrong order is refused before any work, naming the rule.
    let bad_out = tmp.path().join("bad");
    let wrong_order = [
        "--transform",
        "self-consistency:n=3",
        "--transform",
        "self-doubt",
    ];
    let bad = mscr(
        &[
            &base[..],
            &["--out", bad_out.to_str().unwrap()],
            &wrong_order,
        ]
        .concat(),
    );
    assert!(!bad.status.success());
    let msg = String::from_utf8_lossy(&bad.stderr);
    assert!(msg.contains("comes after a decoding transform"), "{msg}");
    assert!(!tmp.path().join("bad").exists());
}

#[test]
fn mscr_attack_takes_a_transform_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny_folder(tmp.path(), 9);
    let data = word_questions(tmp.path(), &[("w1 w2 w3", "3")]);
    let out = tmp.path().join("attack");
    mscr_ok(&[
        "attack",
        "--model",
        dir.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--max-new-tokens",
        "6",
        "--out",
        out.to_str().unwrap(),
        "--transform",
        "self-consistency:n=2,temperature=2.0",
    ]);
    let text = std::fs::read_to_string(out.join("records.jsonl")).unwrap();
    let rec: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(
        rec["transform"]
            .as_str()
            .unwrap()
            .starts_with("self-consistency"),
        "{rec}"
    );
    // The clean question was answered by the transform: two samples and a vote.
    assert_eq!(rec["decoding"]["kind"], "self-consistency", "{rec}");
    assert_eq!(rec["decoding"]["samples"], 2, "{rec}");

    // An attack's summary.json is a campaign summary (one cell), which
    // `mscr report` rewrites and `mscr gate` takes.
    let summary = mscr::report::CampaignSummary::from_file(&out.join("summary.json")).unwrap();
    assert_eq!(summary.complete, Some(true));
    assert_eq!(summary.cells.len(), 1);
    assert_eq!(summary.cells[0].summary.questions, 1);
    assert!(summary.cells[0].transform.starts_with("self-consistency"));
    assert!(out.join("report.html").is_file());
    std::fs::remove_file(out.join("report.md")).unwrap();
    mscr_ok(&["report", out.to_str().unwrap()]);
    assert!(out.join("report.md").is_file());
    let s = out.join("summary.json");
    let g = mscr_ok(&[
        "gate",
        "--baseline",
        s.to_str().unwrap(),
        "--current",
        s.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&g.stdout).contains("gate passed"));
    // The same folder again is refused without --resume; with it, nothing is repeated.
    let again = [
        "attack",
        "--model",
        dir.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--max-tokens",
        "6",
        "--out",
        out.to_str().unwrap(),
        "--transform",
        "self-consistency:n=2,temperature=2.0",
    ];
    let refused = mscr(&again);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));
    let resumed = mscr_ok(&[&again[..], &["--resume"]].concat());
    assert!(
        String::from_utf8_lossy(&resumed.stderr).contains("0 questions run, 1 already done"),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
}
