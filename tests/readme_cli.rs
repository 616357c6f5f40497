//! The README's command table against the built binary's `--help` (issue 22):
//! every command the table names exists and every command exists in the
//! table; every option the table lists for a command is in that command's
//! `--help`; the options that mean the same thing are spelled the same in
//! every command.

use std::collections::BTreeSet;
use std::process::Command;

fn help(path: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_mscr"))
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mscr {} --help failed: {}",
        path.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The subcommand names of a `--help` page's `Commands:` section (without `help`).
fn commands(page: &str) -> BTreeSet<String> {
    page.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The options a `--help` page lists (the first `--name` of each option line).
fn options(page: &str) -> BTreeSet<String> {
    page.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| flags(l).into_iter().next())
        .collect()
}

/// Every `--name` in a text.
fn flags(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(p) = text[i..].find("--") {
        let start = i + p + 2;
        let end = start
            + text[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(text.len() - start);
        let preceded_ok = i + p == 0 || !b[i + p - 1].is_ascii_alphanumeric();
        if end > start && preceded_ok && b[start].is_ascii_lowercase() {
            out.push(format!("--{}", &text[start..end]));
        }
        i = end.max(start);
    }
    out
}

/// Backticked segments of a text.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The cells of a Markdown table row (`\|` inside a cell is not a separator).
fn cells(row: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = row.trim().trim_start_matches('|').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

fn readme_command_rows() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "## Commands")
        .skip_while(|l| !l.starts_with("| command"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(
        table.len() >= 10,
        "the README's command table was not found"
    );
    table.iter().map(|r| cells(r)).collect()
}

#[test]
fn readme_command_table_matches_help() {
    let top = commands(&help(&[]));
    let mut named = BTreeSet::new();
    let mut checked = 0;
    for row in readme_command_rows() {
        let (command_cell, description) = (&row[0], row.get(1).cloned().unwrap_or_default());
        let mut first: Option<Vec<String>> = None;
        for span in code_spans(command_cell) {
            let words: Vec<&str> = span.split_whitespace().collect();
            if words.first() != Some(&"mscr") {
                continue;
            }
            let cmd = words[1];
            assert!(
                top.contains(cmd),
                "README names `mscr {cmd}`, which `mscr --help` does not list ({top:?})"
            );
            named.insert(cmd.to_string());
            let mut path = vec![cmd.to_string()];
            let subs = commands(&help(&[cmd]));
            if !subs.is_empty() {
                let sub = words.get(2).copied().unwrap_or("");
                assert!(
                    subs.contains(sub),
                    "README names `mscr {cmd} {sub}`; `mscr {cmd} --help` lists {subs:?}"
                );
                path.push(sub.to_string());
            }
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            let have = options(&help(&p));
            for f in flags(span) {
                assert!(
                    have.contains(&f),
                    "README lists `{f}` for `mscr {}`, but its --help has only {have:?}",
                    path.join(" ")
                );
                checked += 1;
            }
            first.get_or_insert(path);
        }
        // Options named in the row's description belong to its (first) command.
        let path = first.unwrap_or_else(|| panic!("a README row names no command: {row:?}"));
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let have = options(&help(&p));
        for span in code_spans(&description) {
            if !span.starts_with("--") {
                continue;
            }
            for f in flags(span) {
                assert!(
                    have.contains(&f),
                    "README's description of `mscr {}` names `{f}`, which its --help lacks",
                    path.join(" ")
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "only {checked} options checked");
    let missing: Vec<&String> = top.difference(&named).collect();
    assert!(
        missing.is_empty(),
        "commands missing from the README's command table: {missing:?}"
    );
}

/// One vocabulary: the same option for the same thing in every command.
#[test]
fn same_options_for_the_same_thing_in_every_command() {
    let model_running: [&[&str]; 6] = [
        &["generate"],
        &["eval"],
        &["attack"],
        &["candidates"],
        &["serve"],
        &["campaign", "run"],
    ];
    for path in model_running {
        let have = options(&help(path));
        for f in ["--device", "--threads"] {
            assert!(have.contains(f), "mscr {} lacks {f}", path.join(" "));
        }
    }
    let dataset_options = [
        "--dataset",
        "--limit",
        "--prompt",
        "--format",
        "--mapping",
        "--skip-invalid",
        "--sha256",
        "--max-tokens",
    ];
    for cmd in ["eval", "attack"] {
        let have = options(&help(&[cmd]));
        for f in dataset_options {
            assert!(have.contains(f), "mscr {cmd} lacks {f}");
        }
    }
    // Old spellings are hidden aliases, never shown as a second name.
    let mut pages = vec![help(&[])];
    for cmd in commands(&pages[0].clone()) {
        let page = help(&[&cmd]);
        for sub in commands(&page) {
            pages.push(help(&[&cmd, &sub]));
        }
        pages.push(page);
    }
    for page in &pages {
        for f in [
            "--max-new-tokens",
            "--num-threads",
            "--n-threads",
            "--skip-bad",
        ] {
            assert!(!options(page).contains(f), "{f} shown in:\n{page}");
        }
    }
}

#[test]
fn flag_extraction() {
    assert_eq!(
        flags("[--chat [--system TEXT]] --top-p P, `--limit 0`"),
        vec!["--chat", "--system", "--top-p", "--limit"]
    );
    assert!(flags("a -- b").is_empty());
    assert_eq!(cells("| `a\\|b` | c |"), vec![" `a|b` ", " c ", ""]);
}
