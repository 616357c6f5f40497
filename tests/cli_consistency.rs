//! Issue 22 through the real binary on a tiny random-weight model the test
//! builds: long commands print plain progress lines when stderr is not a
//! terminal, `attack` prints its figures, `eval` records its settings and
//! each answer's finish reason and warns when answers hit `--max-tokens`.

mod common;

use common::*;
use mscr::transform::save_transformed;
use std::process::{Command, Output};

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

/// A tiny random-weight model written as a folder `mscr` loads.
fn tiny_folder(parent: &std::path::Path) -> std::path::PathBuf {
    let dir = parent.join("tiny");
    save_transformed(
        &tiny_model(&Tiny::default(), 3),
        &[],
        &[("tokenizer.json".into(), tokenizer_json().into_bytes())],
        &dir,
    )
    .unwrap();
    dir
}

/// `n` GSM8K-format word questions.
fn questions(parent: &std::path::Path, n: usize) -> std::path::PathBuf {
    let p = parent.join("gsm8k_tiny.jsonl");
    let lines: Vec<String> = (0..n)
        .map(|i| {
            serde_json::json!({"question": format!("w{} w{} w3", i % 90 + 1, (i * 7) % 90 + 1), "answer": "#### 3"})
                .to_string()
        })
        .collect();
    std::fs::write(&p, lines.join("\n")).unwrap();
    p
}

/// Runs `mscr` with stderr piped (not a terminal) and a short progress interval.
fn mscr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mscr"))
        .args(args)
        .env("MSCR_PROGRESS_SECS", "0.01")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn eval_prints_progress_lines_records_settings_and_warns_at_max_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_folder(tmp.path());
    let data = questions(tmp.path(), 12);
    let out = tmp.path().join("eval");
    let o = mscr(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--format",
        "gsm8k",
        "--limit",
        "10",
        "--max-tokens",
        "5",
        "--batch-size",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    // Plain lines (no bar without a terminal): counts, rate, ETA; the last one complete.
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(" items (")).collect();
    assert!(!lines.is_empty(), "{err}");
    assert!(
        lines.last().unwrap().contains("10/10 items (100%)"),
        "{err}"
    );
    assert!(err.contains("items/s, ETA"), "{err}");
    assert!(
        !err.contains('\r'),
        "a progress bar drew without a terminal: {err:?}"
    );

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let items: Vec<serde_json::Value> = std::fs::read_to_string(out.join("items.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(items.len(), 10);
    // The random-weight model rarely ends within 5 tokens: count the items that hit the limit.
    let hits = items
        .iter()
        .filter(|it| it["finish_reason"] == "length")
        .count();
    assert!(
        items
            .iter()
            .all(|it| ["length", "eos", "stop"].contains(&it["finish_reason"].as_str().unwrap())),
        "{items:?}"
    );
    assert!(hits > 0, "{items:?}");
    assert_eq!(summary["max_tokens_hits"], hits);
    assert!(
        err.contains(&format!(
            "warning: {hits} of 10 answers stopped at --max-tokens 5"
        )),
        "{err}"
    );
    let s = &summary["settings"];
    assert_eq!(s["limit"], 10, "{s}");
    assert_eq!(s["max_tokens"], 5, "{s}");
    assert_eq!(s["batch_size"], 2, "{s}");
    assert_eq!(s["seed"], 0, "{s}");
    assert_eq!(s["prompt"], summary["prompt"], "{s}");
    assert_eq!(s["model_spec"], model.to_str().unwrap(), "{s}");
    assert!(s["version"].as_str().unwrap().starts_with("mscr "), "{s}");

    // `answers judge` takes eval's items.jsonl (the answer in "output") and `-` for stdout.
    let items_path = out.join("items.jsonl");
    let j = mscr(&[
        "answers",
        "judge",
        "--dataset",
        "gsm8k",
        "--input",
        items_path.to_str().unwrap(),
        "--output",
        "-",
    ]);
    assert!(j.status.success(), "{}", text(&j.stderr));
    let judged: Vec<serde_json::Value> = text(&j.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(judged.len(), 10);
    for (it, jd) in items.iter().zip(&judged) {
        assert_eq!(jd["equivalent"], it["correct"], "{jd}");
    }
    // A malformed line stops it, naming the line; --skip-invalid counts it and goes on.
    let mixed = tmp.path().join("mixed.jsonl");
    std::fs::write(
        &mixed,
        "{\"gold\": \"3\", \"output\": \"The answer is 3.\"}\n{oops\n{\"gold\": \"4\", \"completion\": \"4\"}\n",
    )
    .unwrap();
    let judge = |extra: &[&str]| {
        mscr(
            &[
                &[
                    "answers",
                    "judge",
                    "--dataset",
                    "gsm8k",
                    "--input",
                    mixed.to_str().unwrap(),
                ][..],
                extra,
            ]
            .concat(),
        )
    };
    let strict = judge(&[]);
    assert_eq!(strict.status.code(), Some(2));
    assert!(
        text(&strict.stderr).contains("mixed.jsonl:2"),
        "{}",
        text(&strict.stderr)
    );
    let lenient = judge(&["--skip-invalid"]);
    assert!(lenient.status.success(), "{}", text(&lenient.stderr));
    assert_eq!(text(&lenient.stdout).lines().count(), 2);
    assert!(
        text(&lenient.stderr).contains("skipped 1 malformed"),
        "{}",
        text(&lenient.stderr)
    );
    assert!(
        text(&lenient.stderr).contains("2 equivalent"),
        "{}",
        text(&lenient.stderr)
    );

    // The shared vocabulary: the model as given, `clean_accuracy` and
    // `mean_response_tokens` as attack and campaign summaries name them.
    assert_eq!(summary["model"], model.to_str().unwrap());
    assert!(
        summary["model_id"].as_str().unwrap().contains('@'),
        "{summary}"
    );
    assert_eq!(summary["clean_accuracy"], summary["accuracy"]);
    assert!(
        summary["mean_response_tokens"].as_f64().is_some(),
        "{summary}"
    );
    assert_eq!(summary["complete"], true);
    assert_eq!(summary["item_ids"].as_array().unwrap().len(), 10);

    // An eval summary is gated on its clean accuracy and question set ...
    let summary_path = out.join("summary.json");
    let gate = |baseline: &std::path::Path, current: &std::path::Path| {
        mscr(&[
            "gate",
            "--baseline",
            baseline.to_str().unwrap(),
            "--current",
            current.to_str().unwrap(),
        ])
    };
    let same = gate(&summary_path, &summary_path);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stderr));
    assert!(
        text(&same.stdout).contains("clean accuracy"),
        "{}",
        text(&same.stdout)
    );
    assert!(!text(&same.stdout).contains("attack success rate"));
    let write = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = summary.clone();
        edit(&mut v);
        let p = tmp.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p
    };
    let better = write("better.json", &|v| {
        v["accuracy"] = 1.0.into();
        v["clean_accuracy"] = 1.0.into();
    });
    let worse = gate(&better, &summary_path);
    if summary["accuracy"].as_f64().unwrap() < 0.95 {
        assert_eq!(worse.status.code(), Some(1), "{}", text(&worse.stdout));
    }
    let fewer = write("fewer.json", &|v| {
        v["item_ids"].as_array_mut().unwrap().pop();
    });
    let o = gate(&summary_path, &fewer);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("ran different questions"),
        "{}",
        text(&o.stderr)
    );
    // ... refused beside a campaign summary, naming what to pass instead ...
    let campaign = tmp.path().join("campaign.json");
    std::fs::write(
        &campaign,
        r#"{"campaign":"c","generated_by":"mscr","complete":true,"cells":[]}"#,
    )
    .unwrap();
    let o = gate(&campaign, &summary_path);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("gate two `mscr eval` summaries"),
        "{}",
        text(&o.stderr)
    );
    // ... and `mscr report` on an eval folder says what it takes instead.
    let o = mscr(&["report", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("`mscr eval` run") && err.contains("mscr gate"),
        "{err}"
    );
}

/// Settings that would be ignored or produce garbage are refused before any
/// model loads, each with one message naming the option and the fix.
#[test]
fn bad_inputs_are_refused_once_with_the_fix() {
    let generate = |extra: &[&str]| mscr(&[&["generate", "--prompt", "w1 w2"][..], extra].concat());
    for (args, want) in [
        (
            &["--temperature", "nan"][..],
            "temperature NaN must be a finite number",
        ),
        (
            &["--temperature=-0.5"][..],
            "temperature -0.5 must be a finite number",
        ),
        (&["--top-p", "2"][..], "top_p 2 must be in (0, 1]"),
        (&["--top-p", "0"][..], "top_p 0 must be in (0, 1]"),
        (&["--max-tokens", "0"][..], "max tokens 0"),
        (
            &["--system", "be brief"][..],
            "--system is used only with --chat",
        ),
        (
            &["--output", "x.jsonl"][..],
            "--output writes the results of --input",
        ),
    ] {
        let o = generate(args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // --limit 0 is the same error in eval and attack (and a campaign's `limit = 0`).
    for cmd in ["eval", "attack"] {
        let o = mscr(&[
            cmd,
            "--model",
            "m",
            "--dataset",
            "gsm8k",
            "--limit",
            "0",
            "--out",
            "x",
        ]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
        assert!(err.contains("0 selects no questions"), "{cmd}: {err}");
    }
    // A missing file is named once, its cause once (not "(os error 2)" twice).
    let o = mscr(&[
        "gate",
        "--baseline",
        "/nonexistent/summary.json",
        "--current",
        "/nonexistent/b.json",
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("/nonexistent/summary.json"), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    // attack takes eval's options; `--max-new-tokens` stays a hidden alias of `--max-tokens`.
    let help = text(&mscr(&["attack", "--help"]).stdout);
    for flag in [
        "--max-tokens",
        "--device",
        "--threads",
        "--resume",
        "--prompt",
        "--format",
        "--mapping",
        "--skip-invalid",
        "--sha256",
    ] {
        assert!(help.contains(flag), "attack --help lacks {flag}: {help}");
    }
    assert!(!help.contains("--max-new-tokens"), "{help}");
    let o = mscr(&[
        "attack",
        "--model",
        "m",
        "--dataset",
        "gsm8k",
        "--max-new-tokens",
        "5",
        "--limit",
        "0",
        "--out",
        "x",
    ]);
    assert!(
        text(&o.stderr).contains("0 selects no questions"),
        "{}",
        text(&o.stderr)
    );
    let help = text(&mscr(&["candidates", "--help"]).stdout);
    assert!(
        help.contains("--device") && help.contains("--threads"),
        "{help}"
    );
}

#[test]
fn attack_prints_progress_lines_and_its_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_folder(tmp.path());
    let data = questions(tmp.path(), 3);
    let out = tmp.path().join("attack");
    let o = mscr(&[
        "attack",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--max-tokens",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("campaign, cell `"), "{err}");
    assert!(err.contains("3/3 questions (100%)"), "{err}");
    let stdout = text(&o.stdout);
    let figures = stdout
        .lines()
        .find(|l| l.contains("clean accuracy"))
        .unwrap_or_else(|| panic!("no figures printed: {stdout}"));
    assert!(
        figures.contains("success rate") && figures.contains("of 3 questions"),
        "{figures}"
    );
    // The figures are the summary's.
    let summary = mscr::report::CampaignSummary::from_file(&out.join("summary.json")).unwrap();
    let s = &summary.cells[0].summary;
    assert!(
        figures.contains(&format!("clean accuracy {:.1}%", 100.0 * s.clean_accuracy)),
        "{figures}"
    );
}

/// `mscr attack` takes the dataset and prompt options of `mscr eval`
/// (`--mapping` in its TOML table form, `--skip-invalid`, `--prompt`), and
/// names an attack by its config file's stem as campaigns do.
#[test]
fn attack_takes_evals_dataset_options_and_names_attacks_as_campaigns_do() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_folder(tmp.path());
    // A layout no built-in format knows, with one malformed line.
    let data = tmp.path().join("mine.jsonl");
    std::fs::write(
        &data,
        "{\"q\": \"w1 w2 w3\", \"a\": \"3\", \"key\": \"first\"}\n{oops\n{\"q\": \"w4 w5 w6\", \"a\": \"6\", \"key\": \"second\"}\n",
    )
    .unwrap();
    let mapping = tmp.path().join("fields.toml");
    std::fs::write(&mapping, "question = \"q\"\nanswer = \"a\"\nid = \"key\"\n").unwrap();
    let config = tmp.path().join("my-attack.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/attacks/mscr.toml"),
        &config,
    )
    .unwrap();
    let out = tmp.path().join("attack");
    let attack = |extra: &[&str]| {
        mscr(
            &[
                &[
                    "attack",
                    "--model",
                    model.to_str().unwrap(),
                    "--dataset",
                    data.to_str().unwrap(),
                    "--mapping",
                    mapping.to_str().unwrap(),
                    "--config",
                    config.to_str().unwrap(),
                    "--max-tokens",
                    "4",
                    "--out",
                    out.to_str().unwrap(),
                ][..],
                extra,
            ]
            .concat(),
        )
    };
    // Without --skip-invalid the bad line is named, and the flag it suggests exists.
    let strict = attack(&[]);
    let err = text(&strict.stderr);
    assert_eq!(strict.status.code(), Some(2), "{err}");
    assert!(err.contains("mine.jsonl:2"), "{err}");
    assert!(err.contains("--skip-invalid"), "{err}");
    let o = attack(&["--skip-invalid", "--prompt", "plain"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    let summary = mscr::report::CampaignSummary::from_file(&out.join("summary.json")).unwrap();
    assert_eq!(summary.cells.len(), 1);
    let cell = &summary.cells[0];
    assert_eq!(cell.attack, "my-attack", "{}", cell.cell);
    assert_eq!(cell.item_ids, vec!["first", "second"]);
    // --prompt means what it means in eval: a template name or file.
    let bad = attack(&["--skip-invalid", "--prompt", "nosuch"]);
    let err = text(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(
        err.contains("prompt `nosuch`") && err.contains("boxed"),
        "{err}"
    );
    // A prompt transform beside --prompt is refused, not silently preferred.
    let both = mscr(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
        "--skip-invalid",
        "--prompt",
        "plain",
        "--transform",
        "concise",
        "--out",
        tmp.path().join("e").to_str().unwrap(),
    ]);
    let err = text(&both.stderr);
    assert_eq!(both.status.code(), Some(2), "{err}");
    assert!(err.contains("both set the prompt"), "{err}");
}

/// `models info` takes what other commands take (aliases `models list`
/// shows, `?weights=` build options) and shows a pruned model's heads per layer.
#[test]
fn models_info_takes_specs_as_generate_does_and_shows_pruned_heads() {
    use mscr::transform::{Calibration, PruneHeadsConfig, Transform};
    let tmp = tempfile::tempdir().unwrap();
    // Global pruning removes different numbers of heads from different layers.
    let (pruned, record) = (1..40)
        .find_map(|seed| {
            let m = tiny_model(
                &Tiny {
                    layers: 3,
                    ..Default::default()
                },
                seed,
            );
            let (p, rec) = PruneHeadsConfig::new(0.3)
                .apply(&m, &Calibration::random(96, 6, 24, 99))
                .unwrap();
            let heads: Vec<usize> = p.layers.iter().map(|l| l.n_heads).collect();
            (heads.iter().min() != heads.iter().max()).then_some((p, rec))
        })
        .expect("no seed gave uneven layers");
    let heads: Vec<String> = pruned
        .layers
        .iter()
        .map(|l| l.n_heads.to_string())
        .collect();
    let dir = tmp.path().join("pruned");
    save_transformed(
        &pruned,
        &[record],
        &[("tokenizer.json".into(), tokenizer_json().into_bytes())],
        &dir,
    )
    .unwrap();
    let o = mscr(&["models", "info", dir.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let line = out
        .lines()
        .find(|l| l.starts_with("heads "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(!line.contains("every layer"), "{line}");
    assert!(
        line.contains("varies") && line.contains(&heads.join(" ")),
        "{line}"
    );

    // Build options as `generate` takes them; encoder aliases `models list` shows.
    let o = mscr(&["models", "info", "smollm2-135m-instruct?weights=q4"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("graph weights    q4"),
        "{}",
        text(&o.stdout)
    );
    assert!(text(&o.stdout).contains("heads            9 (every layer)"));
    let o = mscr(&["models", "info", "all-minilm-l6-v2"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("sentence embedding"),
        "{}",
        text(&o.stdout)
    );
}

/// eval and generate refuse to write over an earlier run's results unless
/// --force, like transform and campaigns (checked before any model loads).
#[test]
fn eval_and_generate_do_not_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("summary.json"), "{}").unwrap();
    let data = questions(tmp.path(), 2);
    let e = mscr(&[
        "eval",
        "--model",
        "smollm2-135m-instruct",
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = text(&e.stderr);
    assert_eq!(e.status.code(), Some(2), "{err}");
    assert!(
        err.contains("summary.json") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("summary.json")).unwrap(),
        "{}"
    );

    let input = tmp.path().join("in.jsonl");
    std::fs::write(&input, "{\"prompt\": \"2+2=\"}\n").unwrap();
    let output = tmp.path().join("out.jsonl");
    std::fs::write(&output, "kept\n").unwrap();
    let g = mscr(&[
        "generate",
        "--model",
        "smollm2-135m-instruct",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    let err = text(&g.stderr);
    assert_eq!(g.status.code(), Some(2), "{err}");
    assert!(
        err.contains("out.jsonl") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "kept\n");
}
