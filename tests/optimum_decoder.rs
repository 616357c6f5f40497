//! Running a decoder in Hugging Face Optimum's ONNX interface.

mod common;

use common::*;
use mscr::runtime::optimum::OptimumSession;
use mscr::runtime::session::{Sampling, SessionOptions};

fn tiny_optimum() -> (mscr::model::Model, OptimumSession, tempfile::TempDir) {
    let m = tiny_model(
        &Tiny {
            kv_heads: 4,
            ..Default::default()
        },
        21,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    write_optimum_style(&m, &path);
    let s = OptimumSession::open(&path, vec![2], 0, &SessionOptions::default()).unwrap();
    (m, s, dir)
}

#[test]
fn optimum_export_scores_like_the_reference() {
    let (m, s, _dir) = tiny_optimum();
    let tokens: Vec<u32> = vec![5, 17, 33, 8, 90, 41, 12];
    let got = s.score(&[(tokens.clone(), 1)]).unwrap();
    let logits = reference_logits(&m, &tokens);
    let want: Vec<f32> = (1..tokens.len())
        .map(|p| {
            let row = &logits[p - 1];
            let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let lse = mx + row.iter().map(|v| (v - mx).exp()).sum::<f32>().ln();
            row[tokens[p] as usize] - lse
        })
        .collect();
    let d = max_abs_diff(&got[0], &want);
    assert!(
        d < 1e-4,
        "Optimum-style graph differs from the reference by {d}"
    );
}

#[test]
fn optimum_batched_left_padded_generation_equals_one_by_one() {
    let (m, s, _dir) = tiny_optimum();
    let prompts: Vec<Vec<u32>> = vec![vec![5, 6, 7, 8, 9], vec![40, 41]];
    let sampling = Sampling {
        max_new_tokens: 8,
        temperature: 0.0,
        top_p: 1.0,
        seed: 0,
        ignore_eos: true,
    };
    let batched = s.generate(&prompts, &sampling, &mut |_, _| false).unwrap();
    for (i, p) in prompts.iter().enumerate() {
        let one = s
            .generate(std::slice::from_ref(p), &sampling, &mut |_, _| false)
            .unwrap();
        assert_eq!(one[0].tokens, batched[i].tokens, "row {i}");
        // And greedy tokens follow the reference model's argmax.
        let mut seq = p.clone();
        for t in &one[0].tokens {
            let logits = reference_logits(&m, &seq);
            let last = logits.last().unwrap();
            let arg = (0..last.len())
                .max_by(|a, b| last[*a].total_cmp(&last[*b]))
                .unwrap();
            assert_eq!(arg as u32, *t);
            seq.push(*t);
        }
    }
}

#[test]
fn a_file_that_is_not_an_optimum_decoder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.onnx");
    std::fs::write(&path, b"not a model").unwrap();
    let err = OptimumSession::open(&path, vec![2], 0, &SessionOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("bad.onnx"), "{err}");
}
