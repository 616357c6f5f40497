//! A GGUF's quantised weights kept in their own blocks, for graphs that compute
//! with the file's exact values instead of re-quantising dequantised floats.
//!
//! - 4-bit formats (Q4_0, Q4_1, Q4_K) become [`Blocks4`]: blocks of 32 values
//!   `w = scale·q + min` with 4-bit codes `q`, the codes packed as ONNX Runtime's
//!   MatMulNBits wants them. Q4_0 is `d·(q − 8)` (min = −8d); Q4_1 `d·q + m`;
//!   Q4_K's 32-value sub-blocks `d·sc·q − dmin·m`.
//! - Signed-code formats become [`Blocks8`]: `w = d·q`, q a signed byte. Q8_0 as
//!   it is; Q5_0 as `q − 16`; IQ4_NL and IQ4_XS with each 4-bit index replaced by
//!   its table value (IQ4_XS's per-32 scale `d·(ls − 32)` as the block scale).
//!
//! Other types have no entry (Q5_1 has a block minimum the 8-bit blocks cannot
//! hold; the other K-quants scale 16-value sub-blocks; F16 has no blocks); the
//! graph builder falls back to its own 8-bit blocks for them.

use crate::error::Result;
use crate::model::gguf::{GgufFile, TensorInfo};
use crate::model::quant::{GgmlType, IQ4NL_VALUES, QK_K, iq4xs_scale, scale_min_k4};
use crate::model::weights::{Arch, Matrix, ModelConfig};
use half::f16;
use std::collections::BTreeMap;

/// Values per block.
pub const BLOCK: usize = 32;

/// A `[rows, cols]` matrix in 4-bit blocks of 32 along `cols`: `w = scale·q + min`.
#[derive(Clone, Debug, PartialEq)]
pub struct Blocks4 {
    pub rows: usize,
    pub cols: usize,
    /// `[rows, cols/32, 16]`: value `2j` of a block in the low nibble of byte `j`,
    /// value `2j + 1` in the high nibble (MatMulNBits' layout).
    pub codes: Vec<u8>,
    /// `[rows, cols/32]`.
    pub scales: Vec<f32>,
    /// `[rows, cols/32]`.
    pub mins: Vec<f32>,
}

/// A `[rows, cols]` matrix in signed 8-bit blocks of 32 along `cols`: `w = scale·q`.
#[derive(Clone, Debug, PartialEq)]
pub struct Blocks8 {
    pub rows: usize,
    pub cols: usize,
    /// `[rows, cols]`.
    pub codes: Vec<i8>,
    /// `[rows, cols/32]`.
    pub scales: Vec<f32>,
}

/// One matrix in its file's own blocks.
#[derive(Clone, Debug, PartialEq)]
pub enum Native {
    Q4(Blocks4),
    Q8(Blocks8),
}

fn h(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

impl Blocks4 {
    pub fn blocks_per_row(&self) -> usize {
        self.cols / BLOCK
    }

    /// The values, computed as ggml dequantises them (bit for bit).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        for (b, y) in out.chunks_exact_mut(BLOCK).enumerate() {
            let (s, m) = (self.scales[b], self.mins[b]);
            let codes = &self.codes[b * BLOCK / 2..(b + 1) * BLOCK / 2];
            for (j, &c) in codes.iter().enumerate() {
                y[2 * j] = s * (c & 0xF) as f32 + m;
                y[2 * j + 1] = s * (c >> 4) as f32 + m;
            }
        }
        out
    }

    /// Keeps the listed rows, in order.
    pub fn select_rows(&self, rows: &[usize]) -> Blocks4 {
        let (cb, kb) = (self.cols / 2, self.blocks_per_row());
        let mut out = Blocks4 {
            rows: rows.len(),
            cols: self.cols,
            codes: Vec::with_capacity(rows.len() * cb),
            scales: Vec::with_capacity(rows.len() * kb),
            mins: Vec::with_capacity(rows.len() * kb),
        };
        for &r in rows {
            out.codes
                .extend_from_slice(&self.codes[r * cb..(r + 1) * cb]);
            out.scales
                .extend_from_slice(&self.scales[r * kb..(r + 1) * kb]);
            out.mins.extend_from_slice(&self.mins[r * kb..(r + 1) * kb]);
        }
        out
    }

    /// Stacks matrices with the same `cols` row-wise (for packed projections).
    pub fn stack(parts: &[&Blocks4]) -> Option<Blocks4> {
        let cols = parts.first()?.cols;
        if parts.iter().any(|p| p.cols != cols) {
            return None;
        }
        let mut out = Blocks4 {
            rows: 0,
            cols,
            codes: Vec::new(),
            scales: Vec::new(),
            mins: Vec::new(),
        };
        for p in parts {
            out.rows += p.rows;
            out.codes.extend_from_slice(&p.codes);
            out.scales.extend_from_slice(&p.scales);
            out.mins.extend_from_slice(&p.mins);
        }
        Some(out)
    }
}

impl Blocks8 {
    pub fn blocks_per_row(&self) -> usize {
        self.cols / BLOCK
    }

    /// The values, computed as ggml dequantises Q8_0 (bit for bit).
    pub fn dequantize(&self) -> Vec<f32> {
        self.codes
            .chunks_exact(BLOCK)
            .zip(&self.scales)
            .flat_map(|(q, &d)| q.iter().map(move |&q| d * q as f32))
            .collect()
    }

    pub fn select_rows(&self, rows: &[usize]) -> Blocks8 {
        let kb = self.blocks_per_row();
        let mut out = Blocks8 {
            rows: rows.len(),
            cols: self.cols,
            codes: Vec::with_capacity(rows.len() * self.cols),
            scales: Vec::with_capacity(rows.len() * kb),
        };
        for &r in rows {
            out.codes
                .extend_from_slice(&self.codes[r * self.cols..(r + 1) * self.cols]);
            out.scales
                .extend_from_slice(&self.scales[r * kb..(r + 1) * kb]);
        }
        out
    }

    pub fn stack(parts: &[&Blocks8]) -> Option<Blocks8> {
        let cols = parts.first()?.cols;
        if parts.iter().any(|p| p.cols != cols) {
            return None;
        }
        let mut out = Blocks8 {
            rows: 0,
            cols,
            codes: Vec::new(),
            scales: Vec::new(),
        };
        for p in parts {
            out.rows += p.rows;
            out.codes.extend_from_slice(&p.codes);
            out.scales.extend_from_slice(&p.scales);
        }
        Some(out)
    }
}

impl Native {
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Native::Q4(b) => (b.rows, b.cols),
            Native::Q8(b) => (b.rows, b.cols),
        }
    }

    pub fn dequantize(&self) -> Vec<f32> {
        match self {
            Native::Q4(b) => b.dequantize(),
            Native::Q8(b) => b.dequantize(),
        }
    }

    pub fn select_rows(&self, rows: &[usize]) -> Native {
        match self {
            Native::Q4(b) => Native::Q4(b.select_rows(rows)),
            Native::Q8(b) => Native::Q8(b.select_rows(rows)),
        }
    }

    /// Row-wise stack of matrices of one kind; `None` when kinds or widths differ.
    pub fn stack(parts: &[&Native]) -> Option<Native> {
        if let Some(q4) = parts
            .iter()
            .map(|p| match p {
                Native::Q4(b) => Some(b),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
        {
            return Blocks4::stack(&q4).map(Native::Q4);
        }
        let q8 = parts
            .iter()
            .map(|p| match p {
                Native::Q8(b) => Some(b),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Blocks8::stack(&q8).map(Native::Q8)
    }

    /// Whether these blocks hold exactly `m`'s values (so a graph may use them in
    /// place of `m`; false once a transform has edited the weights).
    pub fn matches(&self, m: &Matrix) -> bool {
        self.shape() == (m.rows, m.cols) && self.dequantize() == m.data
    }

    /// A tensor's data in its own blocks, when its type has a native form.
    pub fn from_ggml(ty: GgmlType, bytes: &[u8], rows: usize, cols: usize) -> Option<Native> {
        if !cols.is_multiple_of(BLOCK) {
            return None;
        }
        match ty {
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q4K => {
                blocks4(ty, bytes, rows, cols).map(Native::Q4)
            }
            GgmlType::Q8_0 | GgmlType::Q5_0 | GgmlType::Iq4Nl | GgmlType::Iq4Xs => {
                blocks8(ty, bytes, rows, cols).map(Native::Q8)
            }
            _ => None,
        }
    }
}

/// Signed 8-bit blocks of 32 holding exactly a Q8_0 / Q5_0 / IQ4_NL / IQ4_XS
/// tensor's values (each value `scale·code` computed as ggml computes it).
fn blocks8(ty: GgmlType, bytes: &[u8], rows: usize, cols: usize) -> Option<Blocks8> {
    let n = rows * cols;
    if ty.bytes_for(n) != Some(bytes.len()) {
        return None;
    }
    let (block, size) = ty.block()?;
    let mut out = Blocks8 {
        rows,
        cols,
        codes: Vec::with_capacity(n),
        scales: Vec::with_capacity(n / BLOCK),
    };
    // Nibble `j` of the 16 bytes `qs` is value j (low) or j + 16 (high).
    let nibbles = |qs: &[u8], codes: &mut Vec<i8>, map: &dyn Fn(u8) -> i8| {
        codes.extend(qs.iter().map(|&q| map(q & 0xF)));
        codes.extend(qs.iter().map(|&q| map(q >> 4)));
    };
    let iq4 = |i: u8| IQ4NL_VALUES[i as usize];
    for b in bytes.chunks_exact(size) {
        match ty {
            GgmlType::Q8_0 => {
                out.scales.push(h(b, 0));
                out.codes.extend(b[2..34].iter().map(|&q| q as i8));
            }
            GgmlType::Q5_0 => {
                out.scales.push(h(b, 0));
                let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                let mut codes = [0i8; BLOCK];
                for (j, &q) in b[6..22].iter().enumerate() {
                    codes[j] = ((q & 0xF) | (((qh >> j) & 1) << 4) as u8) as i8 - 16;
                    codes[j + 16] = ((q >> 4) | (((qh >> (j + 16)) & 1) << 4) as u8) as i8 - 16;
                }
                out.codes.extend_from_slice(&codes);
            }
            GgmlType::Iq4Nl => {
                out.scales.push(h(b, 0));
                nibbles(&b[2..18], &mut out.codes, &iq4);
            }
            GgmlType::Iq4Xs => {
                for ib in 0..block / BLOCK {
                    out.scales.push(iq4xs_scale(b, ib));
                    nibbles(&b[8 + 16 * ib..24 + 16 * ib], &mut out.codes, &iq4);
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Packs 32 codes (one per value, 0..16) into MatMulNBits' 16 bytes.
fn pack(codes: &[u8; BLOCK], out: &mut Vec<u8>) {
    out.extend((0..BLOCK / 2).map(|j| codes[2 * j] | (codes[2 * j + 1] << 4)));
}

fn blocks4(ty: GgmlType, bytes: &[u8], rows: usize, cols: usize) -> Option<Blocks4> {
    let n = rows * cols;
    if ty.bytes_for(n) != Some(bytes.len()) {
        return None;
    }
    let mut out = Blocks4 {
        rows,
        cols,
        codes: Vec::with_capacity(n / 2),
        scales: Vec::with_capacity(n / BLOCK),
        mins: Vec::with_capacity(n / BLOCK),
    };
    let mut q = [0u8; BLOCK];
    match ty {
        GgmlType::Q4_0 | GgmlType::Q4_1 => {
            let size = if ty == GgmlType::Q4_0 { 18 } else { 20 };
            for b in bytes.chunks_exact(size) {
                let d = h(b, 0);
                let (m, qs) = if ty == GgmlType::Q4_0 {
                    (-8.0 * d, &b[2..18])
                } else {
                    (h(b, 2), &b[4..20])
                };
                // ggml: low nibbles hold values 0..16, high nibbles 16..32.
                for (j, &c) in qs.iter().enumerate() {
                    q[j] = c & 0xF;
                    q[j + 16] = c >> 4;
                }
                pack(&q, &mut out.codes);
                out.scales.push(d);
                out.mins.push(m);
            }
        }
        GgmlType::Q4K => {
            if !cols.is_multiple_of(QK_K) {
                return None;
            }
            for b in bytes.chunks_exact(144) {
                let (d, dmin) = (h(b, 0), h(b, 2));
                let sc = &b[4..16];
                let qs = &b[16..144];
                for j in 0..4 {
                    // 64 values per 32 bytes: low nibbles are sub-block 2j, high 2j + 1.
                    let group = &qs[32 * j..32 * j + 32];
                    for (half, shift) in [(0usize, 0u8), (1, 4)] {
                        let (s, m) = scale_min_k4(2 * j + half, sc);
                        for (l, &c) in group.iter().enumerate() {
                            q[l] = (c >> shift) & 0xF;
                        }
                        pack(&q, &mut out.codes);
                        out.scales.push(d * s as f32);
                        out.mins.push(-(dmin * m as f32));
                    }
                }
            }
        }
        _ => return None,
    }
    Some(out)
}

/// A model's projections (and embedding / lm_head) in their file's own blocks,
/// keyed like the graph builder names them: `embed`, `lm_head`, `l{i}.q`,
/// `l{i}.k`, `l{i}.v`, `l{i}.o`, `l{i}.gate`, `l{i}.up`, `l{i}.down`. Rows follow
/// the in-memory model's layout (llama's Q/K rows un-permuted as the importer does).
#[derive(Clone, Debug, Default)]
pub struct NativeWeights {
    pub tensors: BTreeMap<String, Native>,
}

impl NativeWeights {
    pub fn get(&self, key: &str) -> Option<&Native> {
        self.tensors.get(key)
    }

    /// Every tensor of `g` with a native form. Tensors of other types are left out.
    pub fn from_gguf(g: &GgufFile, config: &ModelConfig) -> Result<NativeWeights> {
        let mut tensors = BTreeMap::new();
        let mut add = |key: String, t: Option<&TensorInfo>, heads: usize| -> Result<()> {
            let Some(t) = t else { return Ok(()) };
            let (rows, cols) = t.matrix_shape();
            if let Some(n) = Native::from_ggml(t.ty, g.tensor_bytes(t)?, rows, cols) {
                let n = if heads > 0 && config.arch == Arch::Llama {
                    n.select_rows(&unpermute_order(rows, heads))
                } else {
                    n
                };
                tensors.insert(key, n);
            }
            Ok(())
        };
        add("embed".into(), g.tensor("token_embd.weight"), 0)?;
        add("lm_head".into(), g.tensor("output.weight"), 0)?;
        for i in 0..config.n_layers {
            let p = format!("blk.{i}");
            for (gg, key, heads) in [
                ("attn_q", "q", config.n_heads),
                ("attn_k", "k", config.n_kv_heads),
                ("attn_v", "v", 0),
                ("attn_output", "o", 0),
                ("ffn_gate", "gate", 0),
                ("ffn_up", "up", 0),
                ("ffn_down", "down", 0),
            ] {
                add(
                    format!("l{i}.{key}"),
                    g.tensor(&format!("{p}.{gg}.weight")),
                    heads,
                )?;
            }
        }
        Ok(NativeWeights { tensors })
    }
}

/// For each row of the un-permuted (HF layout) Q/K matrix, its row in the GGUF
/// (see [`crate::model::gguf::unpermute_rows`]).
fn unpermute_order(rows: usize, n_heads: usize) -> Vec<usize> {
    let hd = rows / n_heads;
    let half = hd / 2;
    let mut src = vec![0; rows];
    for h in 0..n_heads {
        for s in 0..2 {
            for i in 0..half {
                src[h * hd + s * half + i] = h * hd + 2 * i + s;
            }
        }
    }
    src
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::quant::{dequantize, quantize};

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.1)
            .collect()
    }

    #[test]
    fn native_blocks_dequantise_bit_for_bit_like_ggml() {
        let (rows, cols) = (3, 64);
        let x = values(rows * cols, 7);
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            let bytes = quantize(ty, &x).unwrap();
            let want = dequantize(ty, &bytes, x.len()).unwrap();
            let n = Native::from_ggml(ty, &bytes, rows, cols).unwrap();
            assert_eq!(n.dequantize(), want, "{}", ty.name());
        }
        // Q4_K from arbitrary bytes with sane f16 scales.
        let mut bytes = Vec::new();
        for b in 0..2u32 {
            bytes.extend_from_slice(&f16::from_f32(0.01 + b as f32 * 0.003).to_le_bytes());
            bytes.extend_from_slice(&f16::from_f32(0.02).to_le_bytes());
            bytes.extend((0..12).map(|i| (i * 37 + b * 11) as u8));
            bytes.extend((0..128).map(|i| (i * 101 + b * 7) as u8));
        }
        let want = dequantize(GgmlType::Q4K, &bytes, 512).unwrap();
        let n = Native::from_ggml(GgmlType::Q4K, &bytes, 2, 256).unwrap();
        assert_eq!(n.dequantize(), want);
        assert!(Native::from_ggml(GgmlType::Q6K, &[0; 210], 1, 256).is_none());
    }

    #[test]
    fn rows_select_and_stack() {
        let x = values(4 * 32, 3);
        let bytes = quantize(GgmlType::Q4_1, &x).unwrap();
        let n = Native::from_ggml(GgmlType::Q4_1, &bytes, 4, 32).unwrap();
        let all = n.dequantize();
        let picked = n.select_rows(&[2, 0]).dequantize();
        assert_eq!(&picked[..32], &all[64..96]);
        assert_eq!(&picked[32..], &all[..32]);
        let s = Native::stack(&[&n, &n.select_rows(&[1])]).unwrap();
        assert_eq!(s.shape(), (5, 32));
        assert_eq!(&s.dequantize()[128..], &all[32..64]);
        let q8 = Native::from_ggml(
            GgmlType::Q8_0,
            &quantize(GgmlType::Q8_0, &x).unwrap(),
            4,
            32,
        )
        .unwrap();
        assert!(Native::stack(&[&n, &q8]).is_none());
    }
}
