//! The real encoders the setup installs: all-MiniLM-L6-v2 (sentence
//! embeddings) and the tiny SPLADE-tuned BERT masked LM.

use mscr::lm::{MaskFiller, SentenceEmbedder};
use mscr::runtime::LoadOptions;
use mscr::runtime::encoder::{MaskedLm, SentenceEncoder, cosine};
use std::path::PathBuf;

fn model(name: &str) -> PathBuf {
    let dir = mscr::paths::models_dir().join(name);
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: run `cargo run -- setup` first",
        dir.display()
    );
    dir
}

fn opts() -> LoadOptions {
    LoadOptions {
        threads: 2,
        ..Default::default()
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|t| t.to_string()).collect()
}

#[test]
fn minilm_paraphrases_are_close_and_unrelated_far() {
    let enc = SentenceEncoder::load(&model("all-minilm-l6-v2"), &opts()).unwrap();
    let e = enc
        .embed(&s(&[
            "A man is eating food.",
            "A man is eating a meal.",
            "The stock market fell sharply on Monday.",
            "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
            "Natalia sold clips to 48 of her pals in April, and then she sold half as many clips in May.",
        ]))
        .unwrap();
    for v in &e {
        assert_eq!(v.len(), 384);
        let n: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5, "norm {n}");
    }
    let para = cosine(&e[0], &e[1]);
    let unrelated = cosine(&e[0], &e[2]);
    let swap = cosine(&e[3], &e[4]);
    eprintln!("paraphrase {para:.4}, unrelated {unrelated:.4}, one-word swap {swap:.4}");
    assert!(para > 0.7, "paraphrase cosine {para}");
    assert!(unrelated < 0.3, "unrelated cosine {unrelated}");
    assert!(swap > 0.9, "one-word swap cosine {swap}");
    // Same text alone gives the same vector as inside a padded batch.
    let alone = enc.embed(&s(&["A man is eating food."])).unwrap();
    assert!(cosine(&alone[0], &e[0]) > 1.0 - 1e-6);
}

#[test]
fn tiny_mlm_returns_sorted_whole_words() {
    let mlm = MaskedLm::load(&model("bert-tiny-mlm"), &opts()).unwrap();
    assert_eq!(mlm.mask_token(), "[MASK]");
    let texts = s(&[
        "The capital of France is [MASK].",
        "Natalia sold clips to 48 of her [MASK] in April.",
        "She [MASK] 3 apples and ate one of them.",
    ]);
    let out = mlm.fill(&texts, 20).unwrap();
    assert_eq!(out.len(), 3);
    for (t, cands) in texts.iter().zip(&out) {
        eprintln!("{t}: {:?}", &cands[..5]);
        assert_eq!(cands.len(), 20);
        let total: f32 = cands.iter().map(|c| c.1).sum();
        assert!(total <= 1.0 + 1e-5 && total > 0.0, "sum {total}");
        for w in cands.windows(2) {
            assert!(w[0].1 >= w[1].1, "not sorted: {cands:?}");
        }
        for (word, p) in cands {
            assert!(*p > 0.0 && *p <= 1.0);
            assert!(
                !word.starts_with("##")
                    && !word.starts_with('[')
                    && word.chars().all(char::is_alphabetic),
                "not a whole word: {word:?}"
            );
        }
    }
}

#[test]
fn sentence_model_is_not_a_masked_lm() {
    let e = match MaskedLm::load(&model("all-minilm-l6-v2"), &opts()) {
        Ok(_) => panic!("all-MiniLM-L6-v2 has no MLM head"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("model.safetensors") && e.contains("masked-LM head"),
        "{e}"
    );
}
