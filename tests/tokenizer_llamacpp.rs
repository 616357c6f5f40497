//! Tokenizer parity with the reference: mscr's tokenizer, synthesised from the
//! default GGUF's metadata, gives exactly llama.cpp's ids on a fixed set of texts
//! (GGUF questions, MATH500 problems and solutions, chat prompts, tricky strings),
//! and mscr's chat template renders the chat prompts exactly as llama.cpp's
//! Jinja formatter did. The fixture is written by `benchmarks/llamacpp_tokens.py`.

use mscr::lm::ChatMessage;
use mscr::model::chat::ChatTemplate;
use mscr::model::gguf::GgufFile;
use mscr::model::tokenizer::Tokenizer;
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/smollm2_llamacpp_tokens.jsonl");

fn default_model() -> Option<GgufFile> {
    let p = mscr::paths::models_dir()
        .join("smollm2-135m-instruct")
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if !p.exists() {
        eprintln!(
            "skipping the llama.cpp tokenizer parity test: the default model {} is not set up (run `mscr setup`)",
            p.display()
        );
        return None;
    }
    Some(GgufFile::open(&p).unwrap())
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn smollm2_token_ids_equal_llama_cpp() {
    let Some(g) = default_model() else { return };
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let chat = ChatTemplate::from_gguf(&g, &tok).unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (n, line) in FIXTURE.lines().enumerate() {
        let rec: Value = serde_json::from_str(line).unwrap();
        let text = rec["text"].as_str().unwrap();
        let want = ids(&rec["ids"]);
        // llama.cpp with special=true: control-token text becomes its id, as mscr always does.
        let got = tok.encode(text, false).unwrap();
        if got != want {
            let first = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
            failures.push(format!(
                "line {} ({}): {:?}\n  first difference at token {first}: mscr {:?} llama.cpp {:?}",
                n + 1,
                rec["kind"],
                text.chars().take(80).collect::<String>(),
                &got[first..(first + 5).min(got.len())],
                &want[first..(first + 5).min(want.len())],
            ));
        }
        if let Some(msgs) = rec.get("messages").and_then(Value::as_array) {
            let msgs: Vec<ChatMessage> = msgs
                .iter()
                .map(|m| ChatMessage {
                    role: m["role"].as_str().unwrap().to_string(),
                    content: m["content"].as_str().unwrap().to_string(),
                })
                .collect();
            let rendered = chat.render(&msgs, true).unwrap();
            if rendered != text {
                failures.push(format!(
                    "line {}: mscr's chat template renders {rendered:?}, llama.cpp {text:?}",
                    n + 1
                ));
            }
        }
        checked += 1;
    }
    assert!(checked > 300, "fixture holds only {checked} texts");
    assert!(
        failures.is_empty(),
        "{} of {checked} texts differ from llama.cpp:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
