//! The native weight formats (`q4`, `q4-exact`): graphs built from a GGUF's own
//! blocks compute with exactly the file's weights. Checked against a plain f32
//! graph of the dequantised weights on tiny GGUF models of each 4-bit type
//! (tightly at accuracy level 0, within activation quantisation at level 4),
//! with fall-backs to 8-bit blocks for other types and for edited weights, and
//! on the real default model.

mod common;

use common::max_abs_diff;
use mscr::model::gguf::GgufFile;
use mscr::model::gguf_write::{TinyConfig, write_tiny_model};
use mscr::model::native::NativeWeights;
use mscr::model::quant::GgmlType;
use mscr::model::spec::load_gguf;
use mscr::model::{Arch, Linear, Model};
use mscr::runtime::decoder::{self, BuildOptions, WeightFormat};
use mscr::runtime::session::{DecoderSession, SessionOptions};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mscr-decoder-native-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Builds `m`'s graph in `format` (with `native` blocks) and opens it; also
/// returns the graph file's bytes, to see which initializers it holds.
fn open(
    m: &Model,
    format: WeightFormat,
    native: Option<&NativeWeights>,
) -> (DecoderSession, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    let info = decoder::build_with(
        m,
        &BuildOptions {
            format,
            max_positions: 256,
        },
        native,
        &path,
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let s = DecoderSession::open(dir.path(), info, &SessionOptions::default()).unwrap();
    (s, bytes)
}

fn has(graph: &[u8], name: &str) -> bool {
    graph.windows(name.len()).any(|w| w == name.as_bytes())
}

struct Diff {
    max: f32,
    mean: f64,
    agree: f64,
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

fn compare(a: &[Vec<f32>], b: &[Vec<f32>]) -> Diff {
    let mut sum = 0.0f64;
    let mut n = 0usize;
    let mut max = 0f32;
    let mut agree = 0usize;
    for (x, y) in a.iter().zip(b) {
        max = max.max(max_abs_diff(x, y));
        sum += x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs() as f64)
            .sum::<f64>();
        n += x.len();
        agree += (argmax(x) == argmax(y)) as usize;
    }
    Diff {
        max,
        mean: sum / n as f64,
        agree: agree as f64 / a.len() as f64,
    }
}

fn std_dev(rows: &[Vec<f32>]) -> f32 {
    let all: Vec<f64> = rows.iter().flatten().map(|v| *v as f64).collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / all.len() as f64).sqrt() as f32
}

fn tiny(ty: GgmlType, arch: Arch, tied: bool) -> (Model, NativeWeights) {
    // Widths a multiple of 256 so Q4_K's super-blocks fit.
    let cfg = TinyConfig {
        hidden: 256,
        intermediate: 512,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 64,
        tie_embeddings: tied,
        weight_type: ty,
        embed_type: GgmlType::Q8_0,
        ..TinyConfig::default()
    };
    let path = tmp(&format!("tiny-{}-{}-{tied}.gguf", ty.name(), arch.name()));
    write_tiny_model(&path, arch, &cfg, 5).unwrap();
    let (model, _, _) = load_gguf(&path).unwrap();
    let native = NativeWeights::from_gguf(&GgufFile::open(&path).unwrap(), &model.config).unwrap();
    (model, native)
}

const TOKENS: [u32; 12] = [5, 17, 33, 8, 90, 41, 12, 3, 77, 140, 260, 9];

#[test]
fn native_4bit_graphs_compute_with_the_files_own_weights() {
    for (ty, arch, tied) in [
        (GgmlType::Q4_0, Arch::Llama, true),
        (GgmlType::Q4_1, Arch::Llama, true),
        (GgmlType::Q4K, Arch::Llama, true),
        (GgmlType::Q4_1, Arch::Qwen2, false),
        (GgmlType::Q4K, Arch::Qwen2, false),
    ] {
        let what = format!("{} {arch:?}", ty.name());
        let (m, native) = tiny(ty, arch, tied);
        let (f32s, _) = open(&m, WeightFormat::F32, None);
        let want = f32s.logits(&TOKENS).unwrap();

        let (s, graph) = open(&m, WeightFormat::Q4Exact, Some(&native));
        // Every projection from the file's 4-bit blocks, the Q8_0 embedding exact.
        for name in [
            "l0.qkv.n4.blob",
            "l1.o.n4.blob",
            "l1.gate_up.n4.blob",
            "l0.down.n4.blob",
        ] {
            assert!(has(&graph, name), "{what}: {name} missing");
        }
        assert!(
            !has(&graph, "qkv.q8.blob"),
            "{what}: a projection fell back"
        );
        assert_eq!(has(&graph, "n4.offsets"), ty != GgmlType::Q4_0, "{what}");
        if !tied {
            assert!(has(&graph, "lm_head.n4.blob"), "{what}: untied head");
        }
        let exact = compare(&s.logits(&TOKENS).unwrap(), &want);
        assert!(
            exact.max < 2e-3,
            "{what}: q4-exact logits differ from the f32 graph by {}",
            exact.max
        );

        // Re-quantising the same weights to ORT's own 4-bit grid is far from exact.
        let (s, _) = open(&m, WeightFormat::Int4Exact, None);
        let requant = compare(&s.logits(&TOKENS).unwrap(), &want);
        assert!(
            requant.max > 10.0 * exact.max.max(1e-4),
            "{what}: int4-exact {} vs q4-exact {}",
            requant.max,
            exact.max
        );

        // Accuracy level 4 quantises activations to int8: close, not exact.
        let (s, _) = open(&m, WeightFormat::Q4, Some(&native));
        let fast = compare(&s.logits(&TOKENS).unwrap(), &want);
        eprintln!(
            "{what}: max |Δ logit| vs f32: q4-exact {:.2e}, q4 {:.2e} (mean {:.2e}), int4-exact {:.2e}",
            exact.max, fast.max, fast.mean, requant.max
        );
        // Relative to the spread of the logits (random tied embeddings give large ones).
        let sd = std_dev(&want);
        assert!(
            fast.max < 0.05 * sd && fast.mean < 0.01 * sd as f64,
            "{what}: q4 logits differ from the f32 graph by {} (mean {}; logit sd {sd})",
            fast.max,
            fast.mean
        );
    }
}

#[test]
fn other_types_and_edited_weights_fall_back_to_8_bit_blocks() {
    // Q8_0 projections: exact 8-bit blocks.
    let (m, native) = tiny(GgmlType::Q8_0, Arch::Llama, true);
    let (f32s, _) = open(&m, WeightFormat::F32, None);
    let (s, graph) = open(&m, WeightFormat::Q4Exact, Some(&native));
    assert!(has(&graph, "l0.qkv.q8.blob") && !has(&graph, "n4.blob"));
    let d = compare(&s.logits(&TOKENS).unwrap(), &f32s.logits(&TOKENS).unwrap());
    assert!(d.max < 2e-3, "Q8_0 exact blocks differ by {}", d.max);

    // A transform edits some weights: those projections (and a packed QKV that
    // holds one) are re-quantised to 8 bits, the rest keep the file's blocks.
    let (mut m, native) = tiny(GgmlType::Q4_1, Arch::Llama, true);
    let (l0, l1) = m.layers.split_at_mut(1);
    for p in [&mut l0[0].q, &mut l1[0].up] {
        if let Linear::Dense { w, .. } = p {
            w.data[3] += 0.01;
        }
    }
    let (s, graph) = open(&m, WeightFormat::Q4Exact, Some(&native));
    assert!(has(&graph, "l0.qkv.q8.blob") && has(&graph, "l1.qkv.n4.blob"));
    assert!(has(&graph, "l1.gate_up.q8.blob") && has(&graph, "l0.gate_up.n4.blob"));
    let (f32s, _) = open(&m, WeightFormat::F32, None);
    let d = compare(&s.logits(&TOKENS).unwrap(), &f32s.logits(&TOKENS).unwrap());
    assert!(d.max < 0.3, "mixed graph differs by {}", d.max);

    // Without native blocks (or in the other formats) nothing changes.
    let (_, graph) = open(&m, WeightFormat::Int8, Some(&native));
    assert!(!has(&graph, "n4.blob"));
}

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

fn real_prompts(path: &Path) -> Vec<Vec<u32>> {
    let (_, tok, chat) = load_gguf(path).unwrap();
    [
        "Janet has 16 eggs. She eats 3 and bakes with 4. How many are left?",
        "A train travels 60 miles per hour for 2.5 hours. How far does it go?",
        "What is the sum of the interior angles of a hexagon?",
        "Write one sentence about the sea.",
    ]
    .iter()
    .map(|q| {
        let text = chat
            .render(
                &[mscr::lm::ChatMessage {
                    role: "user".into(),
                    content: (*q).into(),
                }],
                true,
            )
            .unwrap();
        tok.encode(&text, false).unwrap()
    })
    .collect()
}

/// The default model (Q4_1 projections, Q8_0 embedding): the native graph at
/// level 0 equals the f32 graph of the dequantised weights; at level 4 it is
/// as close as the 8-bit graph or closer.
#[test]
fn smollm2_native_graph_matches_the_dequantised_model() {
    let Some(path) = smollm2() else { return };
    let (model, _, _) = load_gguf(&path).unwrap();
    let native = NativeWeights::from_gguf(&GgufFile::open(&path).unwrap(), &model.config).unwrap();
    let prompts = real_prompts(&path);
    let run = |format: WeightFormat| -> Vec<Vec<f32>> {
        let (s, _) = open(&model, format, Some(&native));
        prompts.iter().flat_map(|p| s.logits(p).unwrap()).collect()
    };
    let want = run(WeightFormat::F32);
    let mut report = Vec::new();
    let mut diffs = Vec::new();
    for format in [WeightFormat::Q4Exact, WeightFormat::Q4, WeightFormat::Int8] {
        let d = compare(&run(format), &want);
        report.push(format!(
            "{}: mean |Δ logit| {:.4}, max {:.3}, next-token agreement {:.1}% of {}",
            format.name(),
            d.mean,
            d.max,
            100.0 * d.agree,
            want.len()
        ));
        diffs.push(d);
    }
    eprintln!("SmolLM2 vs the f32 graph:\n{}", report.join("\n"));
    let (exact, fast, int8) = (&diffs[0], &diffs[1], &diffs[2]);
    assert!(exact.mean < 1e-3 && exact.agree == 1.0, "{}", report[0]);
    assert!(fast.agree >= 0.95, "{}", report[1]);
    assert!(fast.mean <= int8.mean * 1.1, "{}\n{}", report[1], report[2]);
}

#[test]
fn int8_is_the_default_and_spec_options_name_the_formats() {
    use mscr::runtime::load::parse_options;
    assert_eq!(
        parse_options("m.gguf").unwrap().build.format,
        WeightFormat::Int8
    );
    for (spec, want) in [
        ("m.gguf?weights=q4", WeightFormat::Q4),
        ("m.gguf?weights=gguf-native", WeightFormat::Q4),
        ("m.gguf?weights=q4-exact", WeightFormat::Q4Exact),
        ("m.gguf?weights=int8", WeightFormat::Int8),
        ("m.gguf?weights=int4-all", WeightFormat::Int4All),
    ] {
        assert_eq!(parse_options(spec).unwrap().build.format, want, "{spec}");
    }
    let err = parse_options("m.gguf?weights=q3").unwrap_err().to_string();
    assert!(err.contains("q4") && err.contains("int8"), "{err}");
}
