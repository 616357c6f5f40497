//! ggml tensor types: block sizes, dequantisation to f32 and quantisers for
//! the simple formats (used by the GGUF writer). Block layouts follow ggml's
//! `ggml-common.h`; all multi-byte fields are little-endian.

use crate::error::{Error, Result};
use half::{bf16, f16};
use rayon::prelude::*;

/// Elements per K-quant super-block.
pub const QK_K: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    BF16,
    /// 4-bit codes through a fixed non-linear table (llama.cpp's `IQ4_NL`), blocks of 32.
    Iq4Nl,
    /// `IQ4_NL`'s table in 256-value super-blocks with 6-bit sub-block scales.
    Iq4Xs,
    /// Any other ggml type id (IQ formats, integer tensors, ...).
    Other(u32),
}

/// Types mscr can dequantise: every type llama.cpp's common quantisations
/// (`Q2_K` … `Q8_0`, `IQ4_NL`, `IQ4_XS`) write, plus the float types.
pub const SUPPORTED: [GgmlType; 15] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::Iq4Nl,
    GgmlType::Iq4Xs,
];

/// `IQ4_NL`/`IQ4_XS`'s 16 code values (ggml's `kvalues_iq4nl`).
pub const IQ4NL_VALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

impl GgmlType {
    pub fn from_id(id: u32) -> GgmlType {
        match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            9 => GgmlType::Q8_1,
            10 => GgmlType::Q2K,
            11 => GgmlType::Q3K,
            12 => GgmlType::Q4K,
            13 => GgmlType::Q5K,
            14 => GgmlType::Q6K,
            15 => GgmlType::Q8K,
            20 => GgmlType::Iq4Nl,
            23 => GgmlType::Iq4Xs,
            30 => GgmlType::BF16,
            other => GgmlType::Other(other),
        }
    }

    pub fn id(&self) -> u32 {
        match *self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q8_1 => 9,
            GgmlType::Q2K => 10,
            GgmlType::Q3K => 11,
            GgmlType::Q4K => 12,
            GgmlType::Q5K => 13,
            GgmlType::Q6K => 14,
            GgmlType::Q8K => 15,
            GgmlType::BF16 => 30,
            GgmlType::Iq4Nl => 20,
            GgmlType::Iq4Xs => 23,
            GgmlType::Other(id) => id,
        }
    }

    pub fn name(&self) -> String {
        match *self {
            GgmlType::F32 => "F32".into(),
            GgmlType::F16 => "F16".into(),
            GgmlType::Q4_0 => "Q4_0".into(),
            GgmlType::Q4_1 => "Q4_1".into(),
            GgmlType::Q5_0 => "Q5_0".into(),
            GgmlType::Q5_1 => "Q5_1".into(),
            GgmlType::Q8_0 => "Q8_0".into(),
            GgmlType::Q8_1 => "Q8_1".into(),
            GgmlType::Q2K => "Q2_K".into(),
            GgmlType::Q3K => "Q3_K".into(),
            GgmlType::Q4K => "Q4_K".into(),
            GgmlType::Q5K => "Q5_K".into(),
            GgmlType::Q6K => "Q6_K".into(),
            GgmlType::Q8K => "Q8_K".into(),
            GgmlType::BF16 => "BF16".into(),
            GgmlType::Iq4Nl => "IQ4_NL".into(),
            GgmlType::Iq4Xs => "IQ4_XS".into(),
            GgmlType::Other(id) => format!("ggml type {id}"),
        }
    }

    /// `(elements per block, bytes per block)`; `None` for types whose layout mscr does not know.
    pub fn block(&self) -> Option<(usize, usize)> {
        Some(match self {
            GgmlType::F32 => (1, 4),
            GgmlType::F16 | GgmlType::BF16 => (1, 2),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q5_0 => (32, 22),
            GgmlType::Q5_1 => (32, 24),
            GgmlType::Q8_0 => (32, 34),
            GgmlType::Q8_1 => (32, 36),
            GgmlType::Q2K => (QK_K, 84),
            GgmlType::Q3K => (QK_K, 110),
            GgmlType::Q4K => (QK_K, 144),
            GgmlType::Q5K => (QK_K, 176),
            GgmlType::Q6K => (QK_K, 210),
            GgmlType::Q8K => (QK_K, 292),
            GgmlType::Iq4Nl => (32, 18),
            GgmlType::Iq4Xs => (QK_K, 136),
            GgmlType::Other(_) => return None,
        })
    }

    pub fn is_supported(&self) -> bool {
        SUPPORTED.contains(self)
    }

    /// Bytes needed for `n` elements (n a multiple of the block size).
    pub fn bytes_for(&self, n: usize) -> Option<usize> {
        let (b, s) = self.block()?;
        n.is_multiple_of(b).then_some(n / b * s)
    }
}

fn h(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Dequantises `n` elements of type `ty` from `bytes`.
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Result<Vec<f32>> {
    let (block, bsize) = ty
        .block()
        .filter(|_| ty.is_supported())
        .ok_or_else(|| Error::Unsupported(format!("dequantising {}", ty.name())))?;
    if !n.is_multiple_of(block) || bytes.len() != n / block * bsize {
        return Err(Error::Other(format!(
            "{} data of {} bytes does not hold {n} elements",
            ty.name(),
            bytes.len()
        )));
    }
    let mut out = vec![0f32; n];
    // Work in chunks of whole blocks so rayon can spread big tensors over cores.
    let blocks_per_chunk = (65536 / block).max(1);
    out.par_chunks_mut(blocks_per_chunk * block)
        .zip(bytes.par_chunks(blocks_per_chunk * bsize))
        .for_each(|(y, x)| {
            for (y, x) in y.chunks_exact_mut(block).zip(x.chunks_exact(bsize)) {
                dequant_block(ty, x, y);
            }
        });
    Ok(out)
}

/// Dequantises one block `x` into `y` (`y.len()` = the type's block size).
pub fn dequant_block(ty: GgmlType, x: &[u8], y: &mut [f32]) {
    match ty {
        GgmlType::F32 => y[0] = f32::from_le_bytes([x[0], x[1], x[2], x[3]]),
        GgmlType::F16 => y[0] = h(x, 0),
        GgmlType::BF16 => y[0] = bf16::from_le_bytes([x[0], x[1]]).to_f32(),
        GgmlType::Q8_0 => {
            let d = h(x, 0);
            for (y, &q) in y.iter_mut().zip(&x[2..34]) {
                *y = d * (q as i8) as f32;
            }
        }
        GgmlType::Q4_0 => {
            // Low nibbles hold elements 0..16, high nibbles 16..32; zero point 8.
            let d = h(x, 0);
            for (j, &q) in x[2..18].iter().enumerate() {
                y[j] = d * ((q & 0xF) as i32 - 8) as f32;
                y[j + 16] = d * ((q >> 4) as i32 - 8) as f32;
            }
        }
        GgmlType::Q4_1 => {
            let d = h(x, 0);
            let m = h(x, 2);
            for (j, &q) in x[4..20].iter().enumerate() {
                y[j] = d * (q & 0xF) as f32 + m;
                y[j + 16] = d * (q >> 4) as f32 + m;
            }
        }
        GgmlType::Q5_0 | GgmlType::Q5_1 => {
            // Low nibbles as Q4_0/Q4_1, the fifth bit of value j in bit j of qh.
            let (d, m, qh_at) = if ty == GgmlType::Q5_0 {
                (h(x, 0), 0.0, 2)
            } else {
                (h(x, 0), h(x, 2), 4)
            };
            let qh = u32::from_le_bytes([x[qh_at], x[qh_at + 1], x[qh_at + 2], x[qh_at + 3]]);
            let qs = &x[qh_at + 4..qh_at + 20];
            for (j, &q) in qs.iter().enumerate() {
                let lo = (q & 0xF) as i32 | ((((qh >> j) & 1) as i32) << 4);
                let hi = (q >> 4) as i32 | ((((qh >> (j + 16)) & 1) as i32) << 4);
                if ty == GgmlType::Q5_0 {
                    y[j] = d * (lo - 16) as f32;
                    y[j + 16] = d * (hi - 16) as f32;
                } else {
                    y[j] = d * lo as f32 + m;
                    y[j + 16] = d * hi as f32 + m;
                }
            }
        }
        GgmlType::Q2K => {
            // 16 sub-blocks of 16: 4-bit scale and min per sub-block, 2-bit codes
            // packed four to a byte (each 128-value half: byte l, shift 2s → value 32s + l).
            let scales = &x[0..16];
            let qs = &x[16..80];
            let (d, dmin) = (h(x, 80), h(x, 82));
            for (e, y) in y.iter_mut().enumerate() {
                let (half, shift, l) = (e / 128, (e % 128) / 32, e % 32);
                let q = (qs[32 * half + l] >> (2 * shift)) & 3;
                let sc = scales[e / 16];
                let dl = d * (sc & 0xF) as f32;
                let ml = dmin * (sc >> 4) as f32;
                *y = dl * q as f32 - ml;
            }
        }
        GgmlType::Q3K => {
            // 2 low bits as Q2_K, the third from hmask (bit e/32 of byte e%32;
            // a clear bit subtracts 4); 16 signed 6-bit scales offset by 32.
            let hmask = &x[0..32];
            let qs = &x[32..96];
            let sc = &x[96..108];
            let d = h(x, 108);
            for (e, y) in y.iter_mut().enumerate() {
                let j = e / 16;
                let low = if j < 8 { sc[j] & 0xF } else { sc[j - 8] >> 4 };
                let high = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
                let scale = (low | (high << 4)) as i32 - 32;
                let (half, shift, l) = (e / 128, (e % 128) / 32, e % 32);
                let mut q = ((qs[32 * half + l] >> (2 * shift)) & 3) as i32;
                if (hmask[l] >> (e / 32)) & 1 == 0 {
                    q -= 4;
                }
                *y = (d * scale as f32) * q as f32;
            }
        }
        GgmlType::Iq4Nl => {
            let d = h(x, 0);
            for (j, &q) in x[2..18].iter().enumerate() {
                y[j] = d * IQ4NL_VALUES[(q & 0xF) as usize] as f32;
                y[j + 16] = d * IQ4NL_VALUES[(q >> 4) as usize] as f32;
            }
        }
        GgmlType::Iq4Xs => {
            for (ib, y) in y.chunks_exact_mut(32).enumerate() {
                let dl = iq4xs_scale(x, ib);
                let qs = &x[8 + 16 * ib..8 + 16 * ib + 16];
                for (j, &q) in qs.iter().enumerate() {
                    y[j] = dl * IQ4NL_VALUES[(q & 0xF) as usize] as f32;
                    y[j + 16] = dl * IQ4NL_VALUES[(q >> 4) as usize] as f32;
                }
            }
        }
        GgmlType::Q4K => {
            let d = h(x, 0);
            let dmin = h(x, 2);
            let scales = &x[4..16];
            let qs = &x[16..144];
            for j in 0..4 {
                // Each 64-element group: 32 bytes, low nibbles then high nibbles,
                // each half with its own 6-bit scale and min.
                let (s1, m1) = scale_min_k4(2 * j, scales);
                let (s2, m2) = scale_min_k4(2 * j + 1, scales);
                let (d1, o1) = (d * s1 as f32, dmin * m1 as f32);
                let (d2, o2) = (d * s2 as f32, dmin * m2 as f32);
                let q = &qs[32 * j..32 * j + 32];
                let y = &mut y[64 * j..64 * j + 64];
                for l in 0..32 {
                    y[l] = d1 * (q[l] & 0xF) as f32 - o1;
                    y[l + 32] = d2 * (q[l] >> 4) as f32 - o2;
                }
            }
        }
        GgmlType::Q5K => {
            let d = h(x, 0);
            let dmin = h(x, 2);
            let scales = &x[4..16];
            let qh = &x[16..48];
            let qs = &x[48..176];
            for j in 0..4 {
                let (s1, m1) = scale_min_k4(2 * j, scales);
                let (s2, m2) = scale_min_k4(2 * j + 1, scales);
                let (d1, o1) = (d * s1 as f32, dmin * m1 as f32);
                let (d2, o2) = (d * s2 as f32, dmin * m2 as f32);
                // The fifth bit of group j's halves sits in bits 2j and 2j+1 of qh.
                let (u1, u2) = (1u8 << (2 * j), 2u8 << (2 * j));
                let q = &qs[32 * j..32 * j + 32];
                let y = &mut y[64 * j..64 * j + 64];
                for l in 0..32 {
                    let hi1 = if qh[l] & u1 != 0 { 16 } else { 0 };
                    let hi2 = if qh[l] & u2 != 0 { 16 } else { 0 };
                    y[l] = d1 * ((q[l] & 0xF) + hi1) as f32 - o1;
                    y[l + 32] = d2 * ((q[l] >> 4) + hi2) as f32 - o2;
                }
            }
        }
        GgmlType::Q6K => {
            let ql_all = &x[0..128];
            let qh_all = &x[128..192];
            let sc_all = &x[192..208];
            let d = h(x, 208);
            for n in 0..2 {
                let ql = &ql_all[64 * n..64 * n + 64];
                let qh = &qh_all[32 * n..32 * n + 32];
                let sc = &sc_all[8 * n..8 * n + 8];
                let y = &mut y[128 * n..128 * n + 128];
                for l in 0..32 {
                    let is = l / 16;
                    let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                    let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                    let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                    let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                    y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
                    y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
                    y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
                    y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
                }
            }
        }
        // `dequantize` filters unsupported types before reaching here.
        _ => y.fill(f32::NAN),
    }
}

/// The scale of 32-value sub-block `ib` (0..8) of an IQ4_XS block: `d·(ls − 32)`
/// with a 6-bit `ls` (4 low bits in `scales_l`, 2 high bits in `scales_h`).
pub fn iq4xs_scale(x: &[u8], ib: usize) -> f32 {
    let scales_h = u16::from_le_bytes([x[2], x[3]]);
    let lo = (x[4 + ib / 2] >> (4 * (ib % 2))) & 0xF;
    let hi = ((scales_h >> (2 * ib)) & 3) as u8;
    h(x, 0) * ((lo | (hi << 4)) as i32 - 32) as f32
}

/// 6-bit scale and min number `j` (0..8) of a Q4_K/Q5_K block's 12 scale bytes:
/// the first four pairs use the low 6 bits of bytes 0..8; the last four take
/// 4 bits from bytes 8..12 and their top 2 bits from the high bits of bytes 0..8.
pub fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Types the writer can produce.
pub const WRITABLE: [GgmlType; 7] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q4K,
];

/// Quantises `x` (length a multiple of the block size) to `ty`, following
/// ggml's reference quantisers (Q4_K with plain min/max sub-block ranges, not
/// ggml's iterative search: a valid Q4_K file for tests, not an optimal one).
pub fn quantize(ty: GgmlType, x: &[f32]) -> Result<Vec<u8>> {
    let (block, bsize) = ty
        .block()
        .filter(|_| WRITABLE.contains(&ty))
        .ok_or_else(|| Error::Unsupported(format!("writing {} tensors", ty.name())))?;
    if !x.len().is_multiple_of(block) {
        return Err(Error::Other(format!(
            "{} elements do not fill whole {} blocks of {block}",
            x.len(),
            ty.name()
        )));
    }
    let mut out = Vec::with_capacity(x.len() / block * bsize);
    for b in x.chunks_exact(block) {
        match ty {
            GgmlType::F32 => out.extend_from_slice(&b[0].to_le_bytes()),
            GgmlType::F16 => out.extend_from_slice(&f16::from_f32(b[0]).to_le_bytes()),
            GgmlType::BF16 => out.extend_from_slice(&bf16::from_f32(b[0]).to_le_bytes()),
            GgmlType::Q8_0 => {
                let amax = b.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend(b.iter().map(|v| (v * id).round() as i8 as u8));
            }
            GgmlType::Q4_0 => {
                // Scale from the value of largest magnitude, so it maps to -8 exactly.
                let max = b
                    .iter()
                    .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                for j in 0..16 {
                    let q0 = ((b[j] * id + 8.5) as i8).clamp(0, 15) as u8;
                    let q1 = ((b[j + 16] * id + 8.5) as i8).clamp(0, 15) as u8;
                    out.push(q0 | (q1 << 4));
                }
            }
            GgmlType::Q4_1 => {
                let min = b.iter().cloned().fold(f32::INFINITY, f32::min);
                let max = b.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
                for j in 0..16 {
                    let q0 = (((b[j] - min) * id + 0.5) as u8).min(15);
                    let q1 = (((b[j + 16] - min) * id + 0.5) as u8).min(15);
                    out.push(q0 | (q1 << 4));
                }
            }
            GgmlType::Q4K => quantize_q4k(b, &mut out),
            _ => unreachable!("filtered above"),
        }
    }
    Ok(out)
}

/// One Q4_K super-block of 256 values: eight 32-value sub-blocks, each
/// `d·sc·q − dmin·m` with 6-bit `sc`, `m` and 4-bit `q`.
fn quantize_q4k(x: &[f32], out: &mut Vec<u8>) {
    let mut scale = [0f32; 8];
    let mut minv = [0f32; 8];
    for (j, s) in x.chunks_exact(32).enumerate() {
        let mn = s.iter().cloned().fold(0f32, f32::min);
        let mx = s.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        scale[j] = (mx - mn) / 15.0;
        minv[j] = -mn;
    }
    let d = f16::from_f32(scale.iter().cloned().fold(0f32, f32::max) / 63.0);
    let dmin = f16::from_f32(minv.iter().cloned().fold(0f32, f32::max) / 63.0);
    let (df, dminf) = (d.to_f32(), dmin.to_f32());
    let six = |v: f32, unit: f32| {
        if unit > 0.0 {
            (v / unit).round().clamp(0.0, 63.0) as u8
        } else {
            0
        }
    };
    // Round the sub-block scale up so the block's range still fits in 0..=15.
    let sc: Vec<u8> = scale
        .iter()
        .map(|&s| {
            if df > 0.0 {
                ((s / df).ceil()).clamp(0.0, 63.0) as u8
            } else {
                0
            }
        })
        .collect();
    let m: Vec<u8> = minv.iter().map(|&v| six(v, dminf)).collect();
    out.extend_from_slice(&d.to_le_bytes());
    out.extend_from_slice(&dmin.to_le_bytes());
    let mut scales = [0u8; 12];
    for j in 0..4 {
        scales[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        scales[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        scales[j + 8] = (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4);
    }
    out.extend_from_slice(&scales);
    let mut q = [0u8; 256];
    for (j, s) in x.chunks_exact(32).enumerate() {
        let step = df * sc[j] as f32;
        let off = dminf * m[j] as f32;
        let inv = if step > 0.0 { 1.0 / step } else { 0.0 };
        for (l, v) in s.iter().enumerate() {
            q[32 * j + l] = ((v + off) * inv).round().clamp(0.0, 15.0) as u8;
        }
    }
    for g in 0..4 {
        for l in 0..32 {
            out.push(q[64 * g + l] | (q[64 * g + 32 + l] << 4));
        }
    }
}
