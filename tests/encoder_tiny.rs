//! A tiny random-weight BERT written by the test (WordPiece tokenizer.json,
//! config.json, model.safetensors) run through the ONNX encoder graphs and
//! compared with a straightforward forward pass written here.

use mscr::lm::{MaskFiller, SentenceEmbedder};
use mscr::runtime::LoadOptions;
use mscr::runtime::encoder::{GraphHead, MaskedLm, SentenceEncoder, cosine, export_onnx};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, tensor::TensorView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const H: usize = 32;
const HEADS: usize = 2;
const LAYERS: usize = 2;
const FF: usize = 64;
const MAXPOS: usize = 64;
const EPS: f64 = 1e-12;

const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
const WORDS: &str = "the a an man woman is was eating ate food meal cat dog sat on mat \
    how many apples does have she he it they buy bought sold each day week total cost \
    dollars price box boxes red blue green big small more less than and or of to in for \
    with what number answer sum half twice three four five six seven eight nine ten";

fn vocab() -> Vec<String> {
    let mut v: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    v.extend(WORDS.split_whitespace().map(str::to_string));
    for c in 'a'..='z' {
        v.push(c.to_string());
        v.push(format!("##{c}"));
    }
    for d in 0..10 {
        v.push(d.to_string());
        v.push(format!("##{d}"));
    }
    for p in [".", ",", "?", "!", "$", "'", "-"] {
        v.push(p.to_string());
    }
    for s in ["##s", "##ing", "##ed"] {
        v.push(s.to_string());
    }
    let mut seen = std::collections::HashSet::new();
    v.retain(|t| seen.insert(t.clone()));
    v
}

fn tokenizer_json(vocab: &[String]) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), serde_json::json!(i)))
        .collect();
    let added: Vec<_> = SPECIALS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({"id": i, "content": s, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        // Like real BERT tokenizers, this one pads by default; the loader must turn it off.
        "padding": {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": null,
            "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": map}
    })
}

/// Random weights under HF names (with the `bert.` prefix and the old
/// gamma/beta LayerNorm names, as the real bert-tiny checkpoint has).
fn random_weights(v: usize, seed: u64) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut t = |name: &str, shape: Vec<usize>, scale: f32, offset: f32| {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|_| offset + scale * (rng.random::<f32>() * 2.0 - 1.0))
            .collect();
        out.push((name.to_string(), shape, data));
    };
    t(
        "bert.embeddings.word_embeddings.weight",
        vec![v, H],
        0.5,
        0.0,
    );
    t(
        "bert.embeddings.position_embeddings.weight",
        vec![MAXPOS, H],
        0.5,
        0.0,
    );
    t(
        "bert.embeddings.token_type_embeddings.weight",
        vec![2, H],
        0.5,
        0.0,
    );
    t("bert.embeddings.LayerNorm.gamma", vec![H], 0.2, 1.0);
    t("bert.embeddings.LayerNorm.beta", vec![H], 0.1, 0.0);
    for l in 0..LAYERS {
        let p = format!("bert.encoder.layer.{l}");
        for n in ["query", "key", "value"] {
            t(
                &format!("{p}.attention.self.{n}.weight"),
                vec![H, H],
                0.3,
                0.0,
            );
            t(&format!("{p}.attention.self.{n}.bias"), vec![H], 0.1, 0.0);
        }
        t(
            &format!("{p}.attention.output.dense.weight"),
            vec![H, H],
            0.3,
            0.0,
        );
        t(
            &format!("{p}.attention.output.dense.bias"),
            vec![H],
            0.1,
            0.0,
        );
        t(
            &format!("{p}.attention.output.LayerNorm.gamma"),
            vec![H],
            0.2,
            1.0,
        );
        t(
            &format!("{p}.attention.output.LayerNorm.beta"),
            vec![H],
            0.1,
            0.0,
        );
        t(
            &format!("{p}.intermediate.dense.weight"),
            vec![FF, H],
            0.3,
            0.0,
        );
        t(&format!("{p}.intermediate.dense.bias"), vec![FF], 0.1, 0.0);
        t(&format!("{p}.output.dense.weight"), vec![H, FF], 0.3, 0.0);
        t(&format!("{p}.output.dense.bias"), vec![H], 0.1, 0.0);
        t(&format!("{p}.output.LayerNorm.gamma"), vec![H], 0.2, 1.0);
        t(&format!("{p}.output.LayerNorm.beta"), vec![H], 0.1, 0.0);
    }
    t(
        "cls.predictions.transform.dense.weight",
        vec![H, H],
        0.3,
        0.0,
    );
    t("cls.predictions.transform.dense.bias", vec![H], 0.1, 0.0);
    t(
        "cls.predictions.transform.LayerNorm.gamma",
        vec![H],
        0.2,
        1.0,
    );
    t(
        "cls.predictions.transform.LayerNorm.beta",
        vec![H],
        0.1,
        0.0,
    );
    t("cls.predictions.bias", vec![v], 0.5, 0.0);
    out
}

struct Tiny {
    /// Removed when the test ends; holds the model folder and any copies.
    _root: tempfile::TempDir,
    dir: PathBuf,
    vocab: Vec<String>,
    w: HashMap<String, Vec<f32>>,
}

/// Writes the tiny model to a fresh folder. `f16` stores the weights as F16
/// (the reference then uses the rounded values).
fn write_tiny(name: &str, seed: u64, f16: bool) -> Tiny {
    let root = tempfile::Builder::new()
        .prefix(&format!("mscr-encoder-{name}-"))
        .tempdir()
        .unwrap();
    let dir = root.path().join("model");
    std::fs::create_dir_all(&dir).unwrap();
    let vocab = vocab();
    std::fs::write(
        dir.join("tokenizer.json"),
        serde_json::to_string(&tokenizer_json(&vocab)).unwrap(),
    )
    .unwrap();
    let cfg = serde_json::json!({
        "architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": vocab.len(),
        "hidden_size": H, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "intermediate_size": FF, "hidden_act": "gelu", "max_position_embeddings": MAXPOS,
        "type_vocab_size": 2, "layer_norm_eps": EPS, "pad_token_id": 0,
        "position_embedding_type": "absolute"
    });
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let mut weights = random_weights(vocab.len(), seed);
    let mut bytes = Vec::new();
    for (_, _, data) in &mut weights {
        if f16 {
            data.iter_mut()
                .for_each(|x| *x = half::f16::from_f32(*x).to_f32());
            bytes.push(
                data.iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect::<Vec<u8>>(),
            );
        } else {
            bytes.push(data.iter().flat_map(|x| x.to_le_bytes()).collect());
        }
    }
    let dtype = if f16 { Dtype::F16 } else { Dtype::F32 };
    let views: Vec<(String, TensorView)> = weights
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    let w = weights
        .into_iter()
        .map(|(n, _, d)| {
            let n = n.strip_prefix("bert.").unwrap_or(&n).to_string();
            (n, d)
        })
        .collect();
    Tiny {
        _root: root,
        dir,
        vocab,
        w,
    }
}

// ---- the reference forward pass, in f64 ----

/// Abramowitz–Stegun 7.1.26 is too coarse; use the series/continued-fraction-free
/// erfc approximation of Numerical Recipes (erfcc), relative error < 1.2e-7.
fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 { 1.0 - r } else { r - 1.0 }
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

impl Tiny {
    fn t(&self, n: &str) -> &[f32] {
        self.w
            .get(n)
            .unwrap_or_else(|| panic!("reference weight {n} missing"))
    }

    fn linear(&self, x: &[f64], name: &str, out: usize) -> Vec<f64> {
        let w = self.t(&format!("{name}.weight"));
        let b = self.t(&format!("{name}.bias"));
        let inp = x.len();
        (0..out)
            .map(|o| b[o] as f64 + (0..inp).map(|i| w[o * inp + i] as f64 * x[i]).sum::<f64>())
            .collect()
    }

    fn ln(&self, x: &[f64], name: &str) -> Vec<f64> {
        let g = self.t(&format!("{name}.gamma"));
        let b = self.t(&format!("{name}.beta"));
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        x.iter()
            .enumerate()
            .map(|(i, v)| (v - mean) / (var + EPS).sqrt() * g[i] as f64 + b[i] as f64)
            .collect()
    }

    fn ids(&self, text: &str) -> Vec<usize> {
        let tok = tokenizers::Tokenizer::from_file(self.dir.join("tokenizer.json")).unwrap();
        let e = tok.encode(text, true).unwrap();
        e.get_ids().iter().map(|&i| i as usize).collect()
    }

    /// Last hidden states `[seq][H]` of one unpadded text.
    fn hidden(&self, ids: &[usize]) -> Vec<Vec<f64>> {
        let we = self.t("embeddings.word_embeddings.weight");
        let pe = self.t("embeddings.position_embeddings.weight");
        let te = self.t("embeddings.token_type_embeddings.weight");
        let mut x: Vec<Vec<f64>> = ids
            .iter()
            .enumerate()
            .map(|(p, &id)| {
                let e: Vec<f64> = (0..H)
                    .map(|j| (we[id * H + j] + pe[p * H + j] + te[j]) as f64)
                    .collect();
                self.ln(&e, "embeddings.LayerNorm")
            })
            .collect();
        let hd = H / HEADS;
        for l in 0..LAYERS {
            let p = format!("encoder.layer.{l}");
            let q: Vec<_> = x
                .iter()
                .map(|r| self.linear(r, &format!("{p}.attention.self.query"), H))
                .collect();
            let k: Vec<_> = x
                .iter()
                .map(|r| self.linear(r, &format!("{p}.attention.self.key"), H))
                .collect();
            let v: Vec<_> = x
                .iter()
                .map(|r| self.linear(r, &format!("{p}.attention.self.value"), H))
                .collect();
            let s = x.len();
            let mut ctx = vec![vec![0f64; H]; s];
            for h in 0..HEADS {
                for i in 0..s {
                    let scores: Vec<f64> = (0..s)
                        .map(|j| {
                            (0..hd)
                                .map(|d| q[i][h * hd + d] * k[j][h * hd + d])
                                .sum::<f64>()
                                / (hd as f64).sqrt()
                        })
                        .collect();
                    let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for d in 0..hd {
                        ctx[i][h * hd + d] = (0..s).map(|j| e[j] / z * v[j][h * hd + d]).sum();
                    }
                }
            }
            for i in 0..s {
                let a = self.linear(&ctx[i], &format!("{p}.attention.output.dense"), H);
                let a: Vec<f64> = a.iter().zip(&x[i]).map(|(a, b)| a + b).collect();
                let a = self.ln(&a, &format!("{p}.attention.output.LayerNorm"));
                let f: Vec<f64> = self
                    .linear(&a, &format!("{p}.intermediate.dense"), FF)
                    .into_iter()
                    .map(gelu)
                    .collect();
                let o = self.linear(&f, &format!("{p}.output.dense"), H);
                let o: Vec<f64> = o.iter().zip(&a).map(|(o, a)| o + a).collect();
                x[i] = self.ln(&o, &format!("{p}.output.LayerNorm"));
            }
        }
        x
    }

    fn mask_logits(&self, text: &str) -> Vec<f64> {
        let ids = self.ids(text);
        let pos = ids
            .iter()
            .position(|&i| i == 4)
            .expect("a [MASK] in the text");
        let x = &self.hidden(&ids)[pos];
        let t: Vec<f64> = self
            .linear(x, "cls.predictions.transform.dense", H)
            .into_iter()
            .map(gelu)
            .collect();
        let t = self.ln(&t, "cls.predictions.transform.LayerNorm");
        let we = self.t("embeddings.word_embeddings.weight");
        let b = self.t("cls.predictions.bias");
        (0..self.vocab.len())
            .map(|v| b[v] as f64 + (0..H).map(|j| we[v * H + j] as f64 * t[j]).sum::<f64>())
            .collect()
    }

    fn embedding(&self, text: &str) -> Vec<f64> {
        let x = self.hidden(&self.ids(text));
        let mut m = vec![0f64; H];
        for r in &x {
            m.iter_mut()
                .zip(r)
                .for_each(|(a, b)| *a += b / x.len() as f64);
        }
        let n = m.iter().map(|v| v * v).sum::<f64>().sqrt();
        m.iter().map(|v| v / n).collect()
    }
}

fn max_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - y).abs())
        .fold(0.0, f64::max)
}

fn opts() -> LoadOptions {
    LoadOptions {
        threads: 1,
        ..Default::default()
    }
}

fn texts(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const MASKED: [&str; 3] = [
    "the man is [MASK] food.",
    "how many apples does she [MASK] each day? she bought 12 boxes of red apples for 5 dollars.",
    "[MASK] cat sat",
];

const SENTENCES: [&str; 3] = [
    "A man is eating food.",
    "She bought 3 boxes of apples; each box cost 4 dollars. What is the total cost?",
    "dog",
];

#[test]
fn mlm_logits_match_reference_and_are_padding_invariant() {
    let tiny = write_tiny("mlm", 7, false);
    let mlm = MaskedLm::load(&tiny.dir, &opts()).unwrap();
    assert_eq!(mlm.mask_token(), "[MASK]");
    assert_eq!(mlm.vocab_size(), tiny.vocab.len());
    let batch = mlm.mask_logits(&texts(&MASKED)).unwrap();
    assert_eq!(batch.len(), MASKED.len());
    for (i, t) in MASKED.iter().enumerate() {
        let reference = tiny.mask_logits(t);
        let d = max_diff(&batch[i], &reference);
        eprintln!("mlm text {i}: max abs diff vs reference {d:.2e}");
        assert!(d < 1e-4, "text {i}: max |onnx - reference| = {d}");
        // Alone (no padding) equals inside the padded batch.
        let alone = mlm.mask_logits(&texts(&[t])).unwrap();
        let d = batch[i]
            .iter()
            .zip(&alone[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-5, "text {i}: batch vs alone differ by {d}");
    }

    // fill: whole words only, probabilities from the full softmax, best first.
    let filled = mlm.fill(&texts(&MASKED), 10).unwrap();
    for (i, cands) in filled.iter().enumerate() {
        assert_eq!(cands.len(), 10);
        let reference = tiny.mask_logits(MASKED[i]);
        let m = reference.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = reference.iter().map(|l| (l - m).exp()).sum();
        for w in cands.windows(2) {
            assert!(w[0].1 >= w[1].1, "not sorted: {cands:?}");
        }
        for (word, p) in cands {
            assert!(
                !word.starts_with("##") && word.chars().all(char::is_alphabetic),
                "{word}"
            );
            assert!(!word.starts_with('['), "special token {word}");
            let id = tiny.vocab.iter().position(|v| v == word).unwrap();
            let want = (reference[id] - m).exp() / z;
            assert!((*p as f64 - want).abs() < 1e-5, "{word}: {p} vs {want}");
        }
        let total: f32 = cands.iter().map(|c| c.1).sum();
        assert!(total <= 1.0 + 1e-5);
        // Nothing better was skipped: every whole word not returned is less likely.
        let worst = cands.last().unwrap().1 as f64;
        for (id, tok) in tiny.vocab.iter().enumerate() {
            let whole = !tok.starts_with("##")
                && !tok.starts_with('[')
                && tok.chars().all(char::is_alphabetic);
            if whole && !cands.iter().any(|c| &c.0 == tok) {
                assert!(
                    (reference[id] - m).exp() / z <= worst + 1e-6,
                    "{tok} skipped"
                );
            }
        }
    }
}

#[test]
fn pooled_embeddings_match_reference_and_are_padding_invariant() {
    let tiny = write_tiny("emb", 11, false);
    let enc = SentenceEncoder::load(&tiny.dir, &opts()).unwrap();
    let batch = enc.embed(&texts(&SENTENCES)).unwrap();
    for (i, t) in SENTENCES.iter().enumerate() {
        assert_eq!(batch[i].len(), H);
        let d = max_diff(&batch[i], &tiny.embedding(t));
        eprintln!("embedding text {i}: max abs diff vs reference {d:.2e}");
        assert!(d < 1e-4, "text {i}: max diff {d}");
        let norm: f32 = batch[i].iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        let alone = enc.embed(&texts(&[t])).unwrap();
        assert!(cosine(&alone[0], &batch[i]) > 1.0 - 1e-6);
        let d = max_diff(
            &alone[0],
            &batch[i].iter().map(|&v| v as f64).collect::<Vec<_>>(),
        );
        assert!(d < 1e-5, "text {i}: alone vs batch {d}");
    }
    // More texts than one chunk: order is kept across chunks.
    let many: Vec<String> = (0..70).map(|i| SENTENCES[i % 3].to_string()).collect();
    let out = enc.embed(&many).unwrap();
    assert_eq!(out.len(), 70);
    for (i, v) in out.iter().enumerate() {
        assert!(cosine(v, &batch[i % 3]) > 1.0 - 1e-5, "row {i}");
    }
    assert!(enc.embed(&[]).unwrap().is_empty());
}

#[test]
fn f16_checkpoint_matches_reference() {
    let tiny = write_tiny("f16", 5, true);
    let mlm = MaskedLm::load(&tiny.dir, &opts()).unwrap();
    let got = mlm.mask_logits(&texts(&MASKED[..1])).unwrap();
    let d = max_diff(&got[0], &tiny.mask_logits(MASKED[0]));
    assert!(d < 1e-4, "max diff {d}");
}

#[test]
fn optimum_style_onnx_files_load() {
    let tiny = write_tiny("optimum", 3, false);
    let hidden_dir = tiny.dir.join("hidden");
    let logits_dir = tiny.dir.join("logits");
    for (d, head) in [
        (&hidden_dir, GraphHead::Hidden),
        (&logits_dir, GraphHead::FullLogits),
    ] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::copy(tiny.dir.join("tokenizer.json"), d.join("tokenizer.json")).unwrap();
        export_onnx(&tiny.dir, head, &d.join("model.onnx")).unwrap();
    }
    let enc = SentenceEncoder::load(&hidden_dir.join("model.onnx"), &opts()).unwrap();
    let out = enc.embed(&texts(&SENTENCES)).unwrap();
    for (i, t) in SENTENCES.iter().enumerate() {
        let d = max_diff(&out[i], &tiny.embedding(t));
        assert!(d < 1e-4, "optimum embedding {i}: {d}");
    }
    let mlm = MaskedLm::load(&logits_dir.join("model.onnx"), &opts()).unwrap();
    let out = mlm.mask_logits(&texts(&MASKED)).unwrap();
    for (i, t) in MASKED.iter().enumerate() {
        let d = max_diff(&out[i], &tiny.mask_logits(t));
        assert!(d < 1e-4, "optimum logits {i}: {d}");
    }
    // A hidden-state export is not a masked LM.
    let e = MaskedLm::load(&hidden_dir.join("model.onnx"), &opts())
        .err()
        .expect("must fail");
    assert!(e.to_string().contains("logits"), "{e}");
}

#[test]
fn built_graphs_are_cached_by_weights() {
    let a = write_tiny("cache-a", 21, false);
    let b = write_tiny("cache-b", 22, false);
    let first = MaskedLm::load(&a.dir, &opts()).unwrap();
    let path = first.model_path().to_path_buf();
    assert!(
        path.starts_with(mscr::paths::graphs_dir()),
        "{}",
        path.display()
    );
    let stamp = std::fs::metadata(&path).unwrap().modified().unwrap();
    // Same weights (even in another folder): the cached graph is reused, not rebuilt.
    let a2 = copy_dir(&a.dir, "again");
    let second = MaskedLm::load(&a2, &opts()).unwrap();
    assert_eq!(second.model_path(), path);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), stamp);
    // Different weights, or a different head, get their own graph.
    let other = MaskedLm::load(&b.dir, &opts()).unwrap();
    assert_ne!(other.model_path(), path);
    let pooled = SentenceEncoder::load(&a.dir, &opts()).unwrap();
    assert_ne!(pooled.model_path(), path);
    // No half-built temporaries are left beside the cache entries.
    let parent = path.parent().unwrap().parent().unwrap();
    let key = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    for e in std::fs::read_dir(parent).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            !(name.contains(&key) && name.contains(".tmp-")),
            "left over: {name}"
        );
    }
}

fn err_of<T>(r: mscr::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_inputs_give_clear_errors() {
    let tiny = write_tiny("bad", 9, false);
    let mlm = MaskedLm::load(&tiny.dir, &opts()).unwrap();
    let e = err_of(mlm.fill(&texts(&["no mask here"]), 5));
    assert!(e.contains("text 0") && e.contains("exactly one"), "{e}");
    let e = err_of(mlm.fill(&texts(&["the [MASK] [MASK]"]), 5));
    assert!(e.contains("2 [MASK]"), "{e}");
    let long = format!("{} [MASK]", "the ".repeat(100));
    let e = err_of(mlm.fill(&texts(&["the [MASK]", &long]), 5));
    assert!(e.contains("text 1") && e.contains("64 positions"), "{e}");
    // The sentence encoder truncates instead.
    let enc = SentenceEncoder::load(&tiny.dir, &opts()).unwrap();
    assert_eq!(enc.embed(&texts(&[&long])).unwrap()[0].len(), H);

    let corrupt = copy_dir(&tiny.dir, "corrupt");
    let st = corrupt.join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() / 2]).unwrap();
    let e = err_of(MaskedLm::load(&corrupt, &opts()));
    assert!(
        e.contains("model.safetensors") && e.contains("safetensors"),
        "{e}"
    );
    let e = err_of(SentenceEncoder::load(&corrupt, &opts()));
    assert!(e.contains("model.safetensors"), "{e}");
    std::fs::write(&st, b"garbage").unwrap();
    let e = err_of(SentenceEncoder::load(&corrupt, &opts()));
    assert!(e.contains("model.safetensors"), "{e}");

    let nocfg = copy_dir(&tiny.dir, "nocfg");
    std::fs::remove_file(nocfg.join("config.json")).unwrap();
    let e = err_of(SentenceEncoder::load(&nocfg, &opts()));
    assert!(e.contains("config.json") && e.contains("missing"), "{e}");

    let notok = copy_dir(&tiny.dir, "notok");
    std::fs::remove_file(notok.join("tokenizer.json")).unwrap();
    let e = err_of(MaskedLm::load(&notok, &opts()));
    assert!(e.contains("tokenizer.json"), "{e}");

    let arch = copy_dir(&tiny.dir, "arch");
    let cfg = std::fs::read_to_string(arch.join("config.json")).unwrap();
    std::fs::write(
        arch.join("config.json"),
        cfg.replace("\"bert\"", "\"roberta\""),
    )
    .unwrap();
    let e = err_of(SentenceEncoder::load(&arch, &opts()));
    assert!(e.contains("config.json") && e.contains("roberta"), "{e}");

    let e = err_of(SentenceEncoder::load(
        Path::new("/nonexistent/model.onnx"),
        &opts(),
    ));
    assert!(e.contains("/nonexistent/model.onnx"), "{e}");
}

fn copy_dir(src: &Path, name: &str) -> PathBuf {
    let dst = src.with_file_name(name);
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
    dst
}

/// A word's in-context vector (`embed_spans`, the synonym filter's evidence):
/// the mean of the reference's last hidden states over the tokens inside the
/// byte span, normalised; the same alone and in a batch; a span with no token
/// inside gives the zero vector.
#[test]
fn span_vectors_match_reference_hidden_states() {
    let tiny = write_tiny("spans", 13, false);
    let enc = SentenceEncoder::load(&tiny.dir, &opts()).unwrap();
    let text = SENTENCES[1];
    let tok = tokenizers::Tokenizer::from_file(tiny.dir.join("tokenizer.json")).unwrap();
    let e = tok.encode(text, true).unwrap();
    let hidden = tiny.hidden(&tiny.ids(text));
    let mut spans = Vec::new();
    let mut want = Vec::new();
    for word in ["bought", "apples", "total cost"] {
        let a = text.find(word).unwrap();
        let range = a..a + word.len();
        let inside: Vec<usize> = e
            .get_offsets()
            .iter()
            .enumerate()
            .filter(|(k, (s, t))| {
                t > s
                    && *s >= range.start
                    && *t <= range.end
                    && e.get_special_tokens_mask()[*k] == 0
            })
            .map(|(k, _)| k)
            .collect();
        assert!(!inside.is_empty(), "{word} has tokens");
        let mut m = vec![0f64; H];
        for &k in &inside {
            m.iter_mut().zip(&hidden[k]).for_each(|(a, b)| *a += b);
        }
        let n = m.iter().map(|v| v * v).sum::<f64>().sqrt();
        want.push(m.iter().map(|v| v / n).collect::<Vec<f64>>());
        spans.push((text.to_string(), range));
    }
    // A second text in the batch (different length: padding) must not matter.
    spans.push((SENTENCES[0].to_string(), 2..5));
    spans.push((SENTENCES[0].to_string(), 100..105));
    let got = enc.embed_spans(&spans).unwrap();
    for (i, w) in want.iter().enumerate() {
        let d = max_diff(&got[i], w);
        assert!(d < 1e-4, "span {i}: max diff {d}");
    }
    let alone = enc.embed_spans(&spans[..1]).unwrap();
    assert!(max_diff(&alone[0], &want[0]) < 1e-4);
    assert!(got[4].iter().all(|&v| v == 0.0), "no token inside: zero");
}
