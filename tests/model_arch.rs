//! Qwen3 and Llama 3.x against an independent numpy forward pass: tiny random
//! GGUFs written by the `gguf` Python package as llama.cpp lays them out, with the
//! logits and greedy continuation `scripts/arch-reference-fixture.py` computed
//! (Hugging Face's formulation, float64). Also: the Qwen3 graph through a
//! GGUF written by mscr itself, and a clear error for other architectures.

mod common;

use common::*;
use mscr::model::gguf::{GgufFile, Value};
use mscr::model::gguf_write::{GgufWriter, TinyConfig, random_model, write_tiny_model};
use mscr::model::{Arch, Model};
use mscr::runtime::decoder::WeightFormat;
use mscr::runtime::session::{Sampling, SessionOptions};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("arch_reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load(file: &str) -> Model {
    GgufFile::open(&fixture(file)).unwrap().to_model().unwrap()
}

/// The f32 graph's logits at every position and greedy continuation against the
/// numpy reference.
fn check_against_reference(arch: &str, expect_arch: Arch) {
    let r = reference();
    let tokens: Vec<u32> = r["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    let entry = r["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["arch"] == arch)
        .unwrap();
    let m = load(entry["file"].as_str().unwrap());
    assert_eq!(m.config.arch, expect_arch);
    let want: Vec<Vec<f32>> = entry["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    let s = open_graph(&m, WeightFormat::F32, &SessionOptions::default()).unwrap();
    let got = s.logits(&tokens).unwrap();
    assert_eq!(got.len(), want.len());
    let d = got
        .iter()
        .zip(&want)
        .map(|(g, w)| max_abs_diff(g, w))
        .fold(0f32, f32::max);
    assert!(d < 2e-4, "{arch}: graph logits differ from numpy by {d}");

    let greedy: Vec<u32> = entry["greedy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    let sampling = Sampling {
        max_new_tokens: greedy.len(),
        temperature: 0.0,
        top_p: 1.0,
        seed: 0,
        ignore_eos: true,
    };
    let out = s
        .generate(std::slice::from_ref(&tokens), &sampling, &mut |_, _| false)
        .unwrap();
    assert_eq!(out[0].tokens, greedy, "{arch}: greedy continuation");
}

#[test]
fn qwen3_matches_numpy_reference() {
    let m = load("tiny_qwen3.gguf");
    let l = &m.layers[0];
    assert_eq!(l.q_norm.as_ref().map(Vec::len), Some(m.config.head_dim));
    assert_eq!(l.k_norm.as_ref().map(Vec::len), Some(m.config.head_dim));
    assert!(l.q.bias().is_none());
    // Qwen3's head_dim × heads differs from hidden.
    assert_ne!(m.config.n_heads * m.config.head_dim, m.config.hidden);
    check_against_reference("qwen3", Arch::Qwen3);
}

#[test]
fn llama3_rope_scaling_matches_numpy_reference() {
    let m = load("tiny_llama3.gguf");
    let rs = m.config.rope_scaling.clone().expect("rope scaling read");
    assert_eq!((rs.factor, rs.original_max_position), (8.0, 32));
    // Without the scaling the reference logits move by this much: the check bites.
    let r = reference();
    let moved = r["models"][1]["max_logit_change_without_rope_scaling"]
        .as_f64()
        .unwrap();
    assert!(moved > 0.05, "{moved}");
    check_against_reference("llama3", Arch::Llama);
}

/// Qwen3 through mscr's own writer and the 8-bit default format: the q/k norms
/// round-trip, and the graph agrees with the Rust reference forward pass.
#[test]
fn qwen3_written_by_mscr_round_trips_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("q3.gguf");
    let cfg = TinyConfig {
        tie_embeddings: false,
        head_dim: 32,
        ..Default::default()
    };
    write_tiny_model(&p, Arch::Qwen3, &cfg, 9).unwrap();
    let m = GgufFile::open(&p).unwrap().to_model().unwrap();
    let want = random_model(Arch::Qwen3, &cfg, 9);
    assert_eq!(m.layers[1].q_norm, want.layers[1].q_norm);
    assert_eq!(m.layers[1].k_norm, want.layers[1].k_norm);
    let tokens: Vec<u32> = vec![5, 17, 33, 8, 90, 41, 12, 3];
    let reference = reference_logits(&m, &tokens);
    let s = open_graph(&m, WeightFormat::F32, &SessionOptions::default()).unwrap();
    let got = s.logits(&tokens).unwrap();
    let d = got
        .iter()
        .zip(&reference)
        .map(|(g, w)| max_abs_diff(g, w))
        .fold(0f32, f32::max);
    assert!(d < 1e-3, "qwen3 graph vs reference: {d}");
    // Dropping the norms changes the logits: the graph really applies them.
    let mut plain = m.clone();
    for l in &mut plain.layers {
        l.q_norm = None;
        l.k_norm = None;
    }
    let other = reference_logits(&plain, &tokens);
    let moved = other
        .iter()
        .zip(&reference)
        .map(|(a, b)| max_abs_diff(a, b))
        .fold(0f32, f32::max);
    assert!(moved > 1e-2, "q/k norms had no effect ({moved})");
}

#[test]
fn unknown_architectures_are_named() {
    let dir = tempfile::tempdir().unwrap();
    for arch in ["gemma2", "phi3"] {
        let p = dir.path().join(format!("{arch}.gguf"));
        let mut w = GgufWriter::new();
        w.set("general.architecture", Value::String(arch.into()));
        w.write(&p).unwrap();
        let err = GgufFile::open(&p)
            .unwrap()
            .to_model()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("architecture \"{arch}\""))
                && err.contains("qwen3")
                && err.contains(&format!("{arch}.gguf")),
            "{err}"
        );
    }
}
