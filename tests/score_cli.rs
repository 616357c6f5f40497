//! `mscr answers judge` end to end through the binary.

use std::process::Command;

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("mscr-score-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn judge_writes_verdicts() {
    let input = tmp("pairs.jsonl");
    std::fs::write(
        &input,
        concat!(
            "{\"gold\":\"\\\\frac{1}{2}\",\"prediction\":\"Thus $\\\\boxed{\\\\dfrac12}$.\",\"id\":\"a\"}\n",
            "{\"gold\":\"(1,2)\",\"prediction\":\"The final answer is $(2,1)$\",\"id\":\"b\"}\n",
        ),
    )
    .unwrap();
    let output = tmp("judged.jsonl");
    let st = Command::new(env!("CARGO_BIN_EXE_mscr"))
        .args(["answers", "judge", "--dataset", "math500", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .status()
        .unwrap();
    assert!(st.success());
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[0]["extracted"], "\\dfrac12");
    assert_eq!(lines[0]["equivalent"], true);
    assert_eq!(lines[1]["extracted"], "(2,1)");
    assert_eq!(lines[1]["equivalent"], false);
}

#[test]
fn malformed_line_exits_2_naming_the_line() {
    let input = tmp("bad.jsonl");
    std::fs::write(&input, "{\"gold\":\"1\",\"prediction\":\"1\"}\nnot json\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mscr"))
        .args(["answers", "judge", "--dataset", "gsm8k", "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:2:") && err.contains("invalid JSON"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_mscr"))
        .args(["answers", "judge", "--dataset", "nope", "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown dataset"));
}
