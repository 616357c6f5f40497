//! The real SmolLM2-135M-Instruct GGUF (from the setup) imports with the right
//! shape, its tokenizer round-trips hard strings and splits digits, and its chat
//! template renders as the model's own Jinja template says.

use mscr::lm::ChatMessage;
use mscr::model::gguf::{GgufFile, load_embeddings};
use mscr::model::spec::load_gguf;
use std::path::PathBuf;

fn smollm2() -> Option<PathBuf> {
    let p = mscr::paths::models_dir()
        .join("smollm2-135m-instruct")
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} missing (run `mscr setup`)", p.display());
        None
    }
}

#[test]
fn smollm2_imports_with_its_shape() {
    let Some(path) = smollm2() else { return };
    let t0 = std::time::Instant::now();
    let (model, tok, chat) = load_gguf(&path).unwrap();
    eprintln!(
        "load_gguf(SmolLM2 Q4_1): {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    let c = &model.config;
    assert_eq!(c.arch, mscr::model::Arch::Llama);
    assert_eq!(c.n_layers, 30);
    assert_eq!(model.layers.len(), 30);
    assert_eq!(c.hidden, 576);
    assert_eq!(c.n_heads, 9);
    assert_eq!(c.n_kv_heads, 3);
    assert_eq!(c.head_dim, 64);
    assert_eq!(c.intermediate, 1536);
    assert_eq!(c.vocab_size, 49152);
    assert_eq!(c.max_position, 8192);
    assert!(c.tie_embeddings && model.lm_head.is_none());
    assert!((c.rope_theta - 100000.0).abs() < 1e-3);
    assert!((c.rms_eps - 1e-5).abs() < 1e-9);
    assert_eq!(model.embed.rows, 49152);
    assert_eq!(model.layers[0].q.out_features(), 576);
    assert_eq!(model.layers[0].k.out_features(), 192);
    assert_eq!(model.layers[0].down.in_features(), 1536);
    assert!(model.embed.data.iter().all(|v| v.is_finite()));
    assert_eq!(model.source_digest.len(), 64);
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(tok.bos_id(), Some(1));
    assert!(tok.eos_ids().contains(&2));
    assert!(!chat.is_fallback());
    // Embeddings alone equal the model's.
    let e = load_embeddings(&path).unwrap();
    assert_eq!(e, model.embed);
    let r = mscr::model::spec::ResolvedModel::Gguf { path: path.clone() };
    let (e2, tok2) = mscr::model::spec::load_embeddings(&r).unwrap();
    assert_eq!(e2, model.embed);
    assert_eq!(tok2.vocab_size(), e2.rows);
}

#[test]
fn smollm2_metadata_and_types() {
    let Some(path) = smollm2() else { return };
    let g = GgufFile::open(&path).unwrap();
    assert_eq!(g.get_str("tokenizer.ggml.pre"), Some("smollm"));
    let types = g.type_counts();
    assert_eq!(types.get("Q4_1"), Some(&210));
    assert_eq!(types.get("Q8_0"), Some(&1));
    assert_eq!(types.get("F32"), Some(&61));
}

#[test]
fn smollm2_tokenizer_round_trips_hard_strings() {
    let Some(path) = smollm2() else { return };
    let g = GgufFile::open(&path).unwrap();
    let tok = mscr::model::tokenizer::Tokenizer::from_gguf(&g).unwrap();
    let hard = [
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
        "  leading and   multiple   spaces\tand\ttabs\n\nnewlines  ",
        "12345678901234567890 and 3.14159 and -42 and 1,000,000",
        "Unicode: café naïve Ωμέγα 日本語 🤖🎉 — “quotes” ½ ∑",
        r"LaTeX: $\frac{1}{2} + \sqrt{x^2 + y^2} = \boxed{\dfrac{3}{4}}$ \\ \begin{align} a &= b \end{align}",
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
        "",
        " ",
    ];
    for s in hard {
        let ids = tok.encode(s, false).unwrap();
        let back = tok.decode(&ids, false).unwrap();
        assert_eq!(back, s, "round trip of {s:?} via {ids:?}");
        // Streaming decode gives the same text piece by piece.
        let mut st = tok.stream(false);
        let mut text = String::new();
        for &id in &ids {
            text.push_str(&st.step(&tok, id).unwrap());
        }
        text.push_str(&st.flush(&tok).unwrap());
        assert_eq!(text, s, "streamed decode of {s:?}");
    }
    // smollm splits every digit on its own.
    let ids = tok.encode("12345", false).unwrap();
    assert_eq!(ids.len(), 5, "{ids:?}");
    let pieces: Vec<String> = ids
        .iter()
        .map(|&i| tok.decode(&[i], false).unwrap())
        .collect();
    assert_eq!(pieces, ["1", "2", "3", "4", "5"]);
    // Specials are single tokens.
    let ids = tok.encode("<|im_start|>user", false).unwrap();
    assert_eq!(ids[0], 1);
    assert_eq!(tok.decode(&ids, true).unwrap(), "user");
    // Surface forms: "Ġthe" decodes to " the".
    let vocab = tok.vocab();
    assert_eq!(vocab.len(), 49152);
    let the = tok.token_to_id("Ġthe").unwrap();
    assert_eq!(vocab[the as usize], " the");
}

#[test]
fn smollm2_chat_template_adds_default_system_line() {
    let Some(path) = smollm2() else { return };
    let (_, _, chat) = load_gguf(&path).unwrap();
    let msgs = [ChatMessage {
        role: "user".into(),
        content: "What is 2+2?".into(),
    }];
    let s = chat.render(&msgs, true).unwrap();
    assert_eq!(
        s,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    );
    let with_system = [
        ChatMessage {
            role: "system".into(),
            content: "Be brief.".into(),
        },
        msgs[0].clone(),
    ];
    let s = chat.render(&with_system, false).unwrap();
    assert_eq!(
        s,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    );
}

/// Every GGUF-synthesised encoding of the shared GSM8K and MATH500 questions
/// decodes back to the exact text, and no token holds more than one digit.
#[test]
fn smollm2_tokenizer_round_trips_benchmark_questions() {
    let Some(path) = smollm2() else { return };
    let Some(data) = mscr::paths::shared_data_dir() else {
        return;
    };
    let g = GgufFile::open(&path).unwrap();
    let tok = mscr::model::tokenizer::Tokenizer::from_gguf(&g).unwrap();
    let mut n = 0;
    for (file, field) in [
        ("gsm8k_test.jsonl", "question"),
        ("math500_test.jsonl", "problem"),
    ] {
        let Ok(text) = std::fs::read_to_string(data.join(file)) else {
            continue;
        };
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let q = v[field].as_str().unwrap();
            let ids = tok.encode(q, false).unwrap();
            assert_eq!(tok.decode(&ids, false).unwrap(), q);
            for &id in &ids {
                let piece = tok.decode(&[id], false).unwrap();
                assert!(
                    piece.chars().filter(|c| c.is_ascii_digit()).count() <= 1,
                    "{piece:?}"
                );
            }
            n += 1;
        }
    }
    assert!(n == 0 || n >= 1819, "{n} questions");
}
