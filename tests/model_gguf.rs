//! GGUF reading, writing and dequantisation on files the tests write themselves.

use mscr::lm::ChatMessage;
use mscr::model::gguf::{GgufFile, Value};
use mscr::model::gguf_write::{GgufWriter, TinyConfig, random_model, write_tiny_model};
use mscr::model::native::Native;
use mscr::model::quant::{self, GgmlType};
use mscr::model::spec::load_gguf;
use mscr::model::{Arch, Linear};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mscr-model-gguf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

const H1: [u8; 2] = [0x00, 0x3C]; // f16 1.0
const H05: [u8; 2] = [0x00, 0x38]; // f16 0.5
const H2: [u8; 2] = [0x00, 0x40]; // f16 2.0
const H025: [u8; 2] = [0x00, 0x34]; // f16 0.25
const HM1: [u8; 2] = [0x00, 0xBC]; // f16 -1.0

/// Reads one crafted block of `ty` back through a GGUF file.
fn read_block(ty: GgmlType, bytes: Vec<u8>, n: usize) -> Vec<f32> {
    let path = tmp(&format!("block-{}.gguf", ty.name()));
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::String("llama".into()));
    w.add_raw_tensor("x", &[n as u64], ty, bytes).unwrap();
    w.write(&path).unwrap();
    let g = GgufFile::open(&path).unwrap();
    g.vector("x").unwrap()
}

#[test]
fn dequant_simple_types_by_hand() {
    let y = read_block(GgmlType::F16, vec![0x00, 0x3C, 0x00, 0xC0], 2);
    assert_eq!(y, [1.0, -2.0]);
    let y = read_block(GgmlType::BF16, vec![0x80, 0x3F, 0x40, 0xC0], 2);
    assert_eq!(y, [1.0, -3.0]);

    let mut b = H025.to_vec();
    b.extend((0..32).map(|i| (i as i8 - 16) as u8));
    let y = read_block(GgmlType::Q8_0, b, 32);
    for (i, v) in y.iter().enumerate() {
        assert_eq!(*v, 0.25 * (i as f32 - 16.0));
    }

    let mut b = H2.to_vec();
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let y = read_block(GgmlType::Q4_0, b, 32);
    for j in 0..16 {
        assert_eq!(y[j], 2.0 * (j as f32 - 8.0));
        assert_eq!(y[j + 16], 2.0 * (7.0 - j as f32));
    }

    let mut b = H05.to_vec();
    b.extend(HM1);
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let y = read_block(GgmlType::Q4_1, b, 32);
    for j in 0..16 {
        assert_eq!(y[j], 0.5 * j as f32 - 1.0);
        assert_eq!(y[j + 16], 0.5 * (15 - j) as f32 - 1.0);
    }
}

/// 12 scale bytes giving (scale, min) pairs:
/// (2,1) (3,2) (4,0) (5,0) (23,3) (1,34) (0,0) (1,15).
fn k_scales() -> [u8; 12] {
    [
        0b01_000010,
        3,
        4,
        5, // scales 0..3; top bits: high bits of scale 4 (=1)
        1,
        0b10_000010,
        0,
        0, // mins 0..3; top bits of byte 5: high bits of min 5 (=2)
        0x37,
        0x21,
        0x00,
        0xF1, // low nibble: scale 4..7, high nibble: min 4..7
    ]
}

#[test]
fn dequant_q4_k_by_hand() {
    let mut b = H1.to_vec();
    b.extend(H05);
    b.extend(k_scales());
    b.extend((0..128).map(|i| i as u8));
    let y = read_block(GgmlType::Q4K, b, 256);
    // y = d*scale*q - dmin*min with d = 1, dmin = 0.5.
    assert_eq!(y[0], -0.5); // q 0, scale 2, min 1
    assert_eq!(y[5], 9.5); // q 5
    assert_eq!(y[32 + 5], -1.0); // high nibble 0, min 2
    assert_eq!(y[64 + 3], 12.0); // byte 35: low 3, scale 4
    assert_eq!(y[96 + 3], 10.0); // byte 35: high 2, scale 5
    assert_eq!(y[128 + 17], 21.5); // byte 81: low 1, scale 23, min 3
    assert_eq!(y[160 + 17], -12.0); // byte 81: high 5, scale 1, min 34
    assert_eq!(y[192 + 31], 0.0); // scale 0, min 0
    assert_eq!(y[224 + 31], -0.5); // byte 127: high 7, scale 1, min 15
}

#[test]
fn dequant_q5_k_by_hand() {
    let mut b = H1.to_vec();
    b.extend(H05);
    b.extend(k_scales());
    let mut qh = [0u8; 32];
    qh[5] = 0b0000_0101; // fifth bit for element 5 of groups 0 (first half) and 1 (first half)
    qh[7] = 0b1000_0000; // fifth bit for element 7 of group 3, second half
    b.extend(qh);
    b.extend((0..128).map(|i| i as u8));
    let y = read_block(GgmlType::Q5K, b, 256);
    assert_eq!(y[0], -0.5);
    assert_eq!(y[5], 41.5); // (5 + 16) * 2 - 0.5
    assert_eq!(y[32 + 5], -1.0); // bit not set: 0 * 3 - 1
    assert_eq!(y[64 + 5], 84.0); // (5 + 16) * 4
    assert_eq!(y[224 + 7], 14.5); // (6 + 16) * 1 - 7.5
    assert_eq!(y[224 + 6], -1.5); // byte 102: high 6, no fifth bit: 6 - 7.5
}

#[test]
fn dequant_q6_k_by_hand() {
    let mut b: Vec<u8> = (0..128).map(|i| i as u8).collect(); // ql
    let mut qh = [0u8; 64];
    qh[3] = 0b11_10_01_00;
    qh[32] = 0xFF;
    b.extend(qh);
    b.extend((0..16).map(|i| (i as i8 - 8) as u8)); // scales -8..7
    b.extend(H05); // d
    let y = read_block(GgmlType::Q6K, b, 256);
    assert_eq!(y[3], 116.0); // 0.5 * -8 * (3 - 32)
    assert_eq!(y[32 + 3], 39.0); // 0.5 * -6 * ((3 | 1<<4) - 32)
    assert_eq!(y[64 + 3], 0.0); // (0 | 2<<4) - 32 = 0
    assert_eq!(y[96 + 3], -18.0); // 0.5 * -2 * ((2 | 3<<4) - 32)
    assert_eq!(y[20], 98.0); // 0.5 * -7 * (4 - 32)
    assert_eq!(y[128 + 96], 66.0); // 0.5 * 6 * ((6 | 3<<4) - 32)
    assert_eq!(y[128 + 32], 16.0); // 0.5 * 2 * ((0 | 3<<4) - 32)
}

#[test]
fn quantisers_round_trip_within_format_error() {
    let x: Vec<f32> = (0..1024)
        .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
        .collect();
    for ty in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q4K,
    ] {
        let bytes = quant::quantize(ty, &x).unwrap();
        assert_eq!(Some(bytes.len()), ty.bytes_for(x.len()));
        let y = quant::dequantize(ty, &bytes, x.len()).unwrap();
        for (b, (xs, ys)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
            let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
            let range = xs.iter().cloned().fold(f32::MIN, f32::max)
                - xs.iter().cloned().fold(f32::MAX, f32::min);
            // Half a quantisation step (plus f16 rounding of the scale).
            let tol = match ty {
                GgmlType::F32 => 0.0,
                GgmlType::F16 => amax / 1024.0,
                GgmlType::BF16 => amax / 128.0,
                GgmlType::Q8_0 => amax / 127.0 * 0.51 + amax * 1e-3,
                // The positive side stops at 7/8 of the largest magnitude.
                GgmlType::Q4_0 => amax / 8.0 * 1.01 + amax * 1e-3,
                // 6-bit sub-block scales (rounded up) and mins (rounded) on top.
                GgmlType::Q4K => range / 15.0 * 0.75 + amax * 0.02,
                _ => range / 15.0 * 0.51 + amax * 1e-3,
            };
            for (a, b2) in xs.iter().zip(ys) {
                assert!(
                    (a - b2).abs() <= tol,
                    "{}: block {b}: {a} vs {b2} (tol {tol})",
                    ty.name()
                );
            }
        }
    }
}

fn same_weights(a: &mscr::model::Model, b: &mscr::model::Model) {
    assert_eq!(a.config, b.config);
    assert_eq!(a.embed, b.embed);
    assert_eq!(a.final_norm, b.final_norm);
    assert_eq!(a.lm_head, b.lm_head);
    assert_eq!(a.layers, b.layers);
}

#[test]
fn tiny_f32_models_read_back_exactly() {
    for (arch, tie) in [(Arch::Llama, true), (Arch::Qwen2, false)] {
        let cfg = TinyConfig {
            tie_embeddings: tie,
            ..TinyConfig::default()
        };
        let path = tmp(&format!("tiny-{}.gguf", arch.name()));
        write_tiny_model(&path, arch, &cfg, 7).unwrap();
        let (model, tok, chat) = load_gguf(&path).unwrap();
        let expect = random_model(arch, &cfg, 7);
        same_weights(&model, &expect);
        if arch == Arch::Qwen2 {
            assert!(model.layers[0].q.bias().is_some());
        }
        // Deterministic by seed; another seed differs.
        assert_ne!(random_model(arch, &cfg, 8).embed, expect.embed);
        // The tiny tokenizer round-trips and renders ChatML.
        let s = "The cat is in the garden, 12 + 30 = 42. café ∑";
        let ids = tok.encode(s, false).unwrap();
        assert!(ids.iter().all(|&i| (i as usize) < model.config.vocab_size));
        assert_eq!(tok.decode(&ids, false).unwrap(), s);
        assert!(ids.len() < s.len(), "merges apply");
        let text = chat
            .render(
                &[ChatMessage {
                    role: "user".into(),
                    content: "hi".into(),
                }],
                true,
            )
            .unwrap();
        assert_eq!(
            text,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(tok.encode(&text, false).unwrap()[0], 1);
        // <|im_end|> from the metadata, <|endoftext|> as an end-of-turn control token.
        assert_eq!(tok.eos_ids(), [2, 0]);
        assert_eq!(model.config.eos_token_ids, [2, 0]);
    }
}

#[test]
fn tiny_quantised_models_read_back_within_error() {
    for ty in [
        GgmlType::F16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
    ] {
        let cfg = TinyConfig {
            weight_type: ty,
            embed_type: GgmlType::Q8_0,
            ..TinyConfig::default()
        };
        let path = tmp(&format!("tiny-{}.gguf", ty.name()));
        write_tiny_model(&path, Arch::Llama, &cfg, 3).unwrap();
        let g = GgufFile::open(&path).unwrap();
        assert_eq!(g.tensor("blk.0.attn_q.weight").unwrap().ty, ty);
        let (model, _, _) = load_gguf(&path).unwrap();
        let expect = random_model(Arch::Llama, &cfg, 3);
        let (Linear::Dense { w: got, .. }, Linear::Dense { w: want, .. }) =
            (&model.layers[1].up, &expect.layers[1].up)
        else {
            panic!("dense expected");
        };
        let scale = 1.0 / (cfg.hidden as f32).sqrt(); // weights lie in [-scale, scale]
        let tol = match ty {
            GgmlType::F16 => scale / 1000.0,
            GgmlType::Q8_0 => scale / 100.0,
            _ => scale / 7.0,
        };
        let err = got
            .data
            .iter()
            .zip(&want.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err <= tol && err > 0.0, "{}: max error {err}", ty.name());
        // Norms stay exact (F32), Q/K un-permuted back to the HF layout.
        assert_eq!(model.layers[0].attn_norm, expect.layers[0].attn_norm);
        let q_err = model.layers[0]
            .q
            .to_dense()
            .data
            .iter()
            .zip(&expect.layers[0].q.to_dense().data)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(q_err <= tol, "{}: q error {q_err}", ty.name());
    }
}

fn expect_file_error(path: &std::path::Path, what: &str) -> String {
    let err = match GgufFile::open(path).and_then(|g| g.to_model()) {
        Ok(_) => panic!("{what}: expected an error"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&path.display().to_string()),
        "{what}: error names the file: {err}"
    );
    err
}

#[test]
fn corrupt_and_truncated_files_give_clear_errors() {
    let good = tmp("good.gguf");
    write_tiny_model(&good, Arch::Llama, &TinyConfig::default(), 1).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    // Truncated in the tensor data and in the header.
    for cut in [bytes.len() - 100, bytes.len() / 2, 200, 30, 10, 3, 0] {
        let p = tmp(&format!("cut-{cut}.gguf"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let err = expect_file_error(&p, "truncated");
        assert!(
            err.contains("truncated") || err.contains("end of file") || err.contains("not a GGUF"),
            "{err}"
        );
    }
    // Wrong magic.
    let p = tmp("magic.gguf");
    let mut b = bytes.clone();
    b[0] = b'X';
    std::fs::write(&p, &b).unwrap();
    assert!(expect_file_error(&p, "magic").contains("not a GGUF file"));
    // Lying tensor count / metadata count: no huge allocation, a clear error.
    for at in [8, 16] {
        let p = tmp(&format!("count-{at}.gguf"));
        let mut b = bytes.clone();
        b[at..at + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        std::fs::write(&p, &b).unwrap();
        assert!(expect_file_error(&p, "count").contains("exceeds the file"));
    }
    // Garbage everywhere after the magic never panics.
    for seed in 0..40u64 {
        let mut b = bytes.clone();
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for _ in 0..20 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let pos = 4 + (x >> 33) as usize % 2000.min(b.len() - 4);
            b[pos] = (x >> 17) as u8;
        }
        let p = tmp("fuzz.gguf");
        std::fs::write(&p, &b).unwrap();
        let _ = GgufFile::open(&p).and_then(|g| g.to_model());
    }
}

#[test]
fn unsupported_type_and_architecture_are_named() {
    // A tensor of an IQ type (ggml id 16) → Unsupported naming file, tensor and type.
    let p = tmp("iq.gguf");
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::String("llama".into()));
    w.add_tensor("x", &[32], GgmlType::F32, &[0.0; 32]).unwrap();
    w.write(&p).unwrap();
    let mut b = std::fs::read(&p).unwrap();
    // The type id sits right after the single dimension of tensor "x".
    let name_at = b.windows(3).position(|w| w == b"\x01\x00x").unwrap_or(0);
    let _ = name_at;
    let info = b
        .windows(9)
        .position(|w| w == b"x\x01\x00\x00\x00\x20\x00\x00\x00")
        .unwrap();
    let ty_at = info + 1 + 4 + 8;
    b[ty_at..ty_at + 4].copy_from_slice(&16u32.to_le_bytes());
    std::fs::write(&p, &b).unwrap();
    let g = GgufFile::open(&p).unwrap();
    let err = g.vector("x").unwrap_err().to_string();
    assert!(
        err.contains("iq.gguf") && err.contains("\"x\"") && err.contains("ggml type 16"),
        "{err}"
    );

    // Unknown architecture.
    let p = tmp("gpt2.gguf");
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::String("gpt2".into()));
    w.write(&p).unwrap();
    let err = GgufFile::open(&p)
        .unwrap()
        .to_model()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gpt2.gguf") && err.contains("architecture \"gpt2\""),
        "{err}"
    );
}

/// The pre-tokenizers named by `tokenizer.ggml.pre` split text as their
/// reference regexes do: smollm and qwen2 one digit per token, llama-bpe
/// (Llama 3) up to three digits; qwen2 and llama-bpe keep a leading space
/// with the word; unknown names are refused.
#[test]
fn pre_tokenizers_split_like_their_references() {
    use mscr::model::gguf_write::{add_model, set_tiny_tokenizer};
    use mscr::model::tokenizer::Tokenizer;
    let model = random_model(Arch::Llama, &TinyConfig::default(), 1);
    let tok_for = |pre: &str| {
        let p = tmp(&format!("pre-{pre}.gguf"));
        let mut w = GgufWriter::new();
        add_model(&mut w, &model, GgmlType::F32, GgmlType::F32).unwrap();
        set_tiny_tokenizer(&mut w, Arch::Llama);
        w.set("tokenizer.ggml.pre", Value::String(pre.into()));
        w.write(&p).unwrap();
        Tokenizer::from_gguf(&GgufFile::open(&p).unwrap())
    };
    let pieces = |t: &Tokenizer, s: &str| -> Vec<String> {
        t.encode(s, false)
            .unwrap()
            .iter()
            .map(|&i| t.decode(&[i], false).unwrap())
            .collect()
    };
    for pre in ["smollm", "qwen2"] {
        let t = tok_for(pre).unwrap();
        assert_eq!(pieces(&t, "12345"), ["1", "2", "3", "4", "5"], "{pre}");
    }
    // The tiny vocabulary merges 1+2, 12+3 and 4+5: digit groups show in the ids.
    for pre in ["llama-bpe", "gpt2"] {
        let t = tok_for(pre).unwrap();
        assert_eq!(pieces(&t, "12345"), ["123", "45"], "{pre}");
    }
    let t = tok_for("qwen2").unwrap();
    assert_eq!(pieces(&t, " the"), [" the"]);
    let err = tok_for("no-such-pre").unwrap_err().to_string();
    assert!(err.contains("no-such-pre"), "{err}");
}

/// Llama 3 rope scaling travels as llama.cpp's `rope_freqs.weight` factors
/// and comes back as the same config; factors that no Llama 3 scaling
/// produces are refused.
#[test]
fn llama3_rope_scaling_round_trips() {
    use mscr::model::RopeScaling;
    use mscr::model::gguf_write::{add_model, set_tiny_tokenizer};
    let cfg = TinyConfig {
        head_dim: 64,
        n_heads: 2,
        n_kv_heads: 1,
        hidden: 128,
        rope_theta: 500000.0,
        ..TinyConfig::default()
    };
    let mut model = random_model(Arch::Llama, &cfg, 2);
    let rs = RopeScaling {
        factor: 32.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position: 8192,
    };
    model.config.rope_scaling = Some(rs.clone());
    let f = mscr::model::gguf::llama3_rope_factors(&rs, 64, 500000.0);
    assert_eq!(f[0], 1.0);
    assert_eq!(f[31], 32.0);
    assert!(f.iter().any(|&x| x > 1.0 && x < 32.0), "{f:?}");
    let write = |m: &mscr::model::Model, name: &str| {
        let p = tmp(name);
        let mut w = GgufWriter::new();
        add_model(&mut w, m, GgmlType::F32, GgmlType::F32).unwrap();
        set_tiny_tokenizer(&mut w, Arch::Llama);
        w.write(&p).unwrap();
        p
    };
    let p = write(&model, "rope3.gguf");
    let (back, _, _) = load_gguf(&p).unwrap();
    assert_eq!(back.config.rope_scaling, Some(rs));
    // A high-frequency factor of 2 is no Llama 3 scaling.
    let mut g = GgufWriter::new();
    let mut plain = model.clone();
    plain.config.rope_scaling = None;
    add_model(&mut g, &plain, GgmlType::F32, GgmlType::F32).unwrap();
    set_tiny_tokenizer(&mut g, Arch::Llama);
    let mut bad = f.clone();
    bad[0] = 2.0;
    g.add_vector("rope_freqs.weight", &bad).unwrap();
    let p = tmp("rope-bad.gguf");
    g.write(&p).unwrap();
    let err = load_gguf(&p).unwrap_err().to_string();
    assert!(
        err.contains("rope-bad.gguf") && err.contains("rope_freqs"),
        "{err}"
    );
}

/// Every entry of the fixture written by `scripts/gguf-dequant-fixture.py`: blocks
/// of each common ggml type (random bytes with sane scales, and real blocks cut
/// from Qwen2.5-Coder-0.5B's GGUF) with the values the `gguf` Python package
/// dequantises them to. Ours must be the same f32 values, bit for bit.
#[test]
fn dequant_matches_gguf_python_package() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf_dequant.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut checked = std::collections::BTreeSet::new();
    let mut native_kinds = BTreeMap::new();
    for e in fixture["entries"].as_array().unwrap() {
        let name = e["type"].as_str().unwrap();
        let ty = GgmlType::from_id(e["id"].as_u64().unwrap() as u32);
        assert_eq!(ty.name(), name, "type id {} names {name}", ty.id());
        let bytes = hex::decode(e["bytes"].as_str().unwrap()).unwrap();
        let n = e["n"].as_u64().unwrap() as usize;
        let want: Vec<f32> = e["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let got = quant::dequantize(ty, &bytes, n)
            .unwrap_or_else(|err| panic!("{name} ({}): {err}", e["source"]));
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{name} ({}) value {i}: {g} vs {w}",
                e["source"]
            );
        }
        checked.insert(name.to_string());
        // The `q4` weight format keeps a type's own blocks when `Native::from_ggml`
        // gives them; they must hold the very same values.
        let (block, _) = ty.block().unwrap();
        let cols = if block == 1 { 32 } else { block };
        if let Some(native) = Native::from_ggml(ty, &bytes, n / cols, cols) {
            assert_eq!(native.dequantize(), got, "{name}: native blocks differ");
            let kind = match native {
                Native::Q4(_) => "4-bit",
                Native::Q8(_) => "8-bit",
            };
            native_kinds.insert(name.to_string(), kind);
        }
    }
    // Which types keep their own blocks in the `q4` format (README's table).
    let expect: BTreeMap<String, &str> = [
        ("Q4_0", "4-bit"),
        ("Q4_1", "4-bit"),
        ("Q4_K", "4-bit"),
        ("Q8_0", "8-bit"),
        ("Q5_0", "8-bit"),
        ("IQ4_NL", "8-bit"),
        ("IQ4_XS", "8-bit"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(native_kinds, expect);
    for ty in [
        "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL",
        "IQ4_XS", "F16", "BF16", "F32",
    ] {
        assert!(checked.contains(ty), "the fixture has no {ty} blocks");
    }
}
