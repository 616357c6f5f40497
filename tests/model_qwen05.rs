//! The real Qwen2.5-Coder-0.5B-Instruct GGUF (alias `qwen2.5-coder-0.5b-instruct`,
//! from `mscr setup`): its shape, that every tensor type it holds dequantises,
//! and how many of its matrices the `q4` weight format keeps in their own blocks.
//! Skips with a message when the setup has not fetched it.

use mscr::model::gguf::GgufFile;
use mscr::model::native::{Native, NativeWeights};
use mscr::model::spec::find_alias;

#[test]
fn qwen05_imports_and_keeps_its_blocks_in_q4() {
    let alias = find_alias("qwen2.5-coder-0.5b-instruct").unwrap();
    let path = alias.local_path();
    if !path.exists() {
        eprintln!("skipping: {} missing (run `mscr setup`)", path.display());
        return;
    }
    let g = GgufFile::open(&path).unwrap();
    assert_eq!(g.file_len(), 491_400_064);
    let c = g.config().unwrap();
    assert_eq!(c.arch, mscr::model::Arch::Qwen2);
    assert_eq!(
        (c.n_layers, c.hidden, c.n_heads, c.n_kv_heads),
        (24, 896, 14, 2)
    );
    assert_eq!(c.vocab_size, 151_936);
    assert!(!c.tie_embeddings);
    let types = g.type_counts();
    for ty in ["F32", "Q4_K", "Q5_0", "Q6_K", "Q8_0"] {
        assert!(types.contains_key(ty), "{types:?}");
    }
    // Every tensor dequantises (Q5_0 was refused before), to finite values.
    for t in &g.tensors {
        let (rows, _) = t.matrix_shape();
        if rows > 1024 {
            // Big matrices: the first rows are enough to exercise the type.
            let (block, bytes) = t.ty.block().unwrap();
            let n = 1024 * t.dims[0] as usize;
            let raw = &g.tensor_bytes(t).unwrap()[..n / block * bytes];
            let v = mscr::model::quant::dequantize(t.ty, raw, n).unwrap();
            assert!(v.iter().all(|x| x.is_finite()), "{}", t.name);
        } else {
            let v = g.dequantize(t).unwrap();
            assert!(v.iter().all(|x| x.is_finite()), "{}", t.name);
        }
    }
    // The q4 format's own blocks: everything but the Q6_K ffn_down matrices.
    let native = NativeWeights::from_gguf(&g, &c).unwrap();
    let total = 2 + 7 * c.n_layers;
    let q8 = native
        .tensors
        .values()
        .filter(|n| matches!(n, Native::Q8(_)))
        .count();
    let q4 = native.tensors.len() - q8;
    eprintln!(
        "q4 format on Qwen2.5-Coder-0.5B: {} of {total} matrices in their own blocks ({q4} 4-bit, {q8} 8-bit)",
        native.tensors.len()
    );
    let q6k = g
        .tensors
        .iter()
        .filter(|t| t.name.ends_with("ffn_down.weight") && t.ty.name() == "Q6_K")
        .count();
    assert_eq!(native.tensors.len(), total - q6k);
}
