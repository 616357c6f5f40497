//! MODEL spec parsing: aliases, paths, openai URLs and readable errors.

use mscr::model::spec::{DEFAULT_MODEL, ResolvedModel, aliases, find_alias, parse};

#[test]
fn specs_parse() {
    assert!(find_alias(DEFAULT_MODEL).is_some());
    for name in [
        "qwen2.5-0.5b-instruct",
        "qwen2.5-math-1.5b-instruct",
        "bert-base-uncased",
        "all-minilm-l6-v2",
        "bert-tiny-mlm",
        "qwen2.5-coder-0.5b-instruct",
    ] {
        assert!(find_alias(name).is_some(), "{name}");
    }
    assert_eq!(aliases().len(), 7);
    match parse("qwen2.5-coder-0.5b-instruct").unwrap() {
        ResolvedModel::Gguf { path } => {
            assert!(
                path.ends_with("qwen2.5-coder-0.5b-instruct.gguf"),
                "{path:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    match parse(DEFAULT_MODEL).unwrap() {
        ResolvedModel::Gguf { path } => assert!(path.ends_with("SmolLM2-135M-Instruct.Q4_1.gguf")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse("bert-base-uncased").unwrap(),
        ResolvedModel::HfFolder { .. }
    ));
    assert_eq!(
        parse("openai:http://127.0.0.1:8080/v1#qwen").unwrap(),
        ResolvedModel::OpenAi {
            base_url: "http://127.0.0.1:8080/v1".into(),
            model: "qwen".into()
        }
    );
    let err = parse("openai:http://127.0.0.1:8080/v1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("#MODEL"), "{err}");

    let dir = std::env::temp_dir().join(format!("mscr-model-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let onnx = dir.join("decoder.onnx");
    std::fs::write(&onnx, b"x").unwrap();
    assert_eq!(
        parse(onnx.to_str().unwrap()).unwrap(),
        ResolvedModel::Onnx { path: onnx.clone() }
    );
    let err = parse(dir.join("missing.gguf").to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing.gguf") && err.contains("no such file"),
        "{err}"
    );
    // A folder without config.json is not a HF folder.
    let err = parse(dir.to_str().unwrap()).unwrap_err().to_string();
    assert!(err.contains("config.json"), "{err}");
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    assert_eq!(
        parse(dir.to_str().unwrap()).unwrap(),
        ResolvedModel::HfFolder { dir: dir.clone() }
    );
    // Unknown words list the aliases.
    let err = parse("gpt-5").unwrap_err().to_string();
    assert!(
        err.contains("smollm2-135m-instruct") && err.contains("gpt-5"),
        "{err}"
    );
}

/// The runtime shares these across threads.
#[test]
fn loaded_parts_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<mscr::model::tokenizer::Tokenizer>();
    check::<mscr::model::chat::ChatTemplate>();
    check::<mscr::model::gguf::GgufFile>();
}
