//! Greedy generation of three GSM8K questions through the HTTP client against
//! `mscr serve` (the real binary, as a child process) equals in-process
//! generation token for token.

use mscr::data::prompt::PromptTemplate;
use mscr::lm::{Decoding, LanguageModel};
use mscr::runtime::http::HttpModel;
use mscr::runtime::{LoadOptions, load_model};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn gsm8k_questions(n: usize) -> Vec<String> {
    let dir = mscr::paths::shared_data_dir()
        .expect("../shared/data (or MSCR_SHARED_DATA) holds the test data");
    let text = std::fs::read_to_string(dir.join("gsm8k_test.jsonl")).unwrap();
    text.lines()
        .take(n)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["question"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn greedy_generation_through_serve_equals_in_process() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mscr"))
        .args([
            "serve",
            "--model",
            "smollm2-135m-instruct",
            "--addr",
            "127.0.0.1:0",
            "--max-batch",
            "4",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = Kill(child);
    // Wait for "serving ... on http://ADDR/v1".
    let mut base = None;
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if let Some(i) = line.find("http://") {
            base = Some(line[i..].split_whitespace().next().unwrap().to_string());
            break;
        }
    }
    let base = base.unwrap_or_else(|| panic!("mscr serve did not start:\n{seen}"));
    let prompts: Vec<_> = gsm8k_questions(3)
        .iter()
        .map(|q| PromptTemplate::zero_shot_cot().render(q))
        .collect();
    let d = Decoding {
        max_new_tokens: 48,
        ..Decoding::default()
    };
    let client = HttpModel::from_spec(&format!("openai:{base}#smollm2-135m-instruct")).unwrap();
    let remote = client.generate(&prompts, &d).unwrap();
    let local = load_model("smollm2-135m-instruct", &LoadOptions::default())
        .unwrap()
        .generate(&prompts, &d)
        .unwrap();
    for (r, l) in remote.iter().zip(&local) {
        assert!(
            l.completion_tokens > 0 && !l.text.trim().is_empty(),
            "{l:?}"
        );
        assert_eq!(r.text, l.text);
        assert_eq!(r.completion_tokens, l.completion_tokens);
        assert_eq!(r.prompt_tokens, l.prompt_tokens);
        assert_eq!(r.finish_reason, l.finish_reason);
        assert_eq!(r.logprobs.len(), l.logprobs.len());
    }
    drop(child);
}
