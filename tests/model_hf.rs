//! Hugging Face folder import on folders the test writes (single and sharded
//! safetensors, F32/BF16/F16), and clear errors on bad folders.

use mscr::lm::ChatMessage;
use mscr::model::Arch;
use mscr::model::gguf_write::{TinyConfig, random_model, write_tiny_model};
use mscr::model::hf::{load_hf, save_hf};
use mscr::model::spec::load_gguf;
use safetensors::Dtype;
use std::path::PathBuf;

/// A fresh folder per call: the two tests run in parallel and share names
/// (`tiny` is called by both), so a per-call counter keeps one from deleting
/// the other's files.
fn tmp(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir()
        .join(format!("mscr-model-hf-{}", std::process::id()))
        .join(format!("{name}-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tiny model and its tokenizer (taken from a tiny GGUF).
fn tiny(arch: Arch, tie: bool) -> (mscr::model::Model, mscr::model::tokenizer::Tokenizer) {
    let cfg = TinyConfig {
        tie_embeddings: tie,
        ..TinyConfig::default()
    };
    let g = tmp(&format!("gguf-{}-{tie}", arch.name())).join("m.gguf");
    write_tiny_model(&g, arch, &cfg, 11).unwrap();
    let (_, tok, _) = load_gguf(&g).unwrap();
    (random_model(arch, &cfg, 11), tok)
}

#[test]
fn hf_folders_read_back() {
    for (arch, tie, dtype, shards) in [
        (Arch::Llama, true, Dtype::F32, 1),
        (Arch::Qwen2, false, Dtype::F32, 3),
        (Arch::Llama, false, Dtype::BF16, 2),
        (Arch::Qwen2, true, Dtype::F16, 1),
    ] {
        let (model, tok) = tiny(arch, tie);
        let dir = tmp(&format!("hf-{}-{tie}-{dtype:?}-{shards}", arch.name()));
        let template = "{% for m in messages %}[{{ m.role|upper }}] {{ m.content.strip() }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}[ASSISTANT]{% endif %}";
        save_hf(&dir, &model, &tok, Some(template), dtype, shards).unwrap();
        assert_eq!(
            dir.join("model.safetensors.index.json").exists(),
            shards > 1
        );
        let (got, tok2, chat) = load_hf(&dir).unwrap();
        let c = &got.config;
        assert_eq!(c.arch, arch);
        assert_eq!(
            (c.hidden, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim),
            (64, 2, 4, 2, 16)
        );
        assert_eq!(c.tie_embeddings, tie);
        assert_eq!(got.lm_head.is_none(), tie);
        assert_eq!(c.bos_token_id, Some(1));
        assert!(c.eos_token_ids.contains(&2));
        let tol = match dtype {
            Dtype::F32 => 0.0,
            Dtype::F16 => 1e-3,
            _ => 1e-2,
        };
        let close = |a: &[f32], b: &[f32]| {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() <= tol * x.abs().max(1.0),
                    "{x} vs {y} ({dtype:?})"
                );
            }
        };
        close(&got.embed.data, &model.embed.data);
        for (l, m) in got.layers.iter().zip(&model.layers) {
            close(&l.q.to_dense().data, &m.q.to_dense().data);
            close(&l.k.to_dense().data, &m.k.to_dense().data);
            close(&l.down.to_dense().data, &m.down.to_dense().data);
            close(&l.attn_norm, &m.attn_norm);
            assert_eq!(l.q.bias().is_some(), arch == Arch::Qwen2);
            if let (Some(a), Some(b)) = (l.q.bias(), m.q.bias()) {
                close(a, b);
            }
        }
        if let (Some(a), Some(b)) = (&got.lm_head, &model.lm_head) {
            close(&a.data, &b.data);
        }
        // Same ids as the GGUF-built tokenizer.
        let s = "The cat is in the garden, 12 + 30 = 42.<|im_end|>";
        assert_eq!(
            tok2.encode(s, false).unwrap(),
            tok.encode(s, false).unwrap()
        );
        // The folder's own template, with Python string methods and eos_token.
        let out = chat
            .render(
                &[ChatMessage {
                    role: "user".into(),
                    content: "  hi  ".into(),
                }],
                true,
            )
            .unwrap();
        assert_eq!(out, "[USER] hi<|im_end|>\n[ASSISTANT]");
        assert_ne!(got.source_digest, "");
    }
}

#[test]
fn bad_hf_folders_give_clear_errors() {
    let (model, tok) = tiny(Arch::Llama, true);
    let dir = tmp("bad");
    save_hf(&dir, &model, &tok, None, Dtype::F32, 1).unwrap();
    // No template → ChatML.
    let (_, _, chat) = load_hf(&dir).unwrap();
    assert!(chat.is_fallback());
    // Truncated safetensors names the file.
    let st = dir.join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_hf(&dir).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("truncated or corrupt"),
        "{err}"
    );
    std::fs::write(&st, &bytes[..5]).unwrap();
    let err = load_hf(&dir).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    // Unknown architecture (the real BERT folder from the setup, or a written one).
    let bert = tmp("bert");
    std::fs::write(
        bert.join("config.json"),
        r#"{"model_type": "bert", "hidden_size": 128}"#,
    )
    .unwrap();
    let err = load_hf(&bert).unwrap_err().to_string();
    assert!(
        err.contains("config.json") && err.contains("\"bert\""),
        "{err}"
    );
    // Missing weights.
    let empty = tmp("noweights");
    std::fs::copy(dir.join("config.json"), empty.join("config.json")).unwrap();
    let err = load_hf(&empty).unwrap_err().to_string();
    assert!(err.contains("no *.safetensors"), "{err}");
    // Broken config.json.
    std::fs::write(empty.join("config.json"), "{ not json").unwrap();
    let err = load_hf(&empty).unwrap_err().to_string();
    assert!(
        err.contains("config.json") && err.contains("invalid JSON"),
        "{err}"
    );
}
