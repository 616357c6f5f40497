//! 4-bit block quantisation in ONNX Runtime's MatMulNBits layout: for a weight
//! `[N, K]` (out × in), blocks of 32 along K, two values per byte (even k in the
//! low nibble), one f32 scale and one 4-bit zero point per block.

/// Values per quantisation block.
pub const BLOCK: usize = 32;

/// A `[N, K]` matrix quantised for MatMulNBits / GatherBlockQuantized.
pub struct Q4 {
    pub n: usize,
    pub k: usize,
    /// `[N, K/32, 16]` packed nibbles (K padded up to a whole block).
    pub blob: Vec<u8>,
    /// `[N, K/32]` scales.
    pub scales: Vec<f32>,
    /// `[N, ceil((K/32)/2)]` packed 4-bit zero points.
    pub zero_points: Vec<u8>,
}

impl Q4 {
    pub fn blocks_per_row(&self) -> usize {
        self.k.div_ceil(BLOCK)
    }

    pub fn zp_bytes_per_row(&self) -> usize {
        self.blocks_per_row().div_ceil(2)
    }

    /// The f32 values the kernels will see (for reference forwards and tests).
    pub fn dequantize(&self) -> Vec<f32> {
        let kb = self.blocks_per_row();
        let zpb = self.zp_bytes_per_row();
        let mut out = vec![0.0; self.n * self.k];
        for r in 0..self.n {
            for b in 0..kb {
                let scale = self.scales[r * kb + b];
                let zb = self.zero_points[r * zpb + b / 2];
                let zp = (if b % 2 == 0 { zb & 0x0f } else { zb >> 4 }) as f32;
                for i in 0..BLOCK {
                    let c = b * BLOCK + i;
                    if c >= self.k {
                        break;
                    }
                    let byte = self.blob[(r * kb + b) * (BLOCK / 2) + i / 2];
                    let q = if i % 2 == 0 { byte & 0x0f } else { byte >> 4 } as f32;
                    out[r * self.k + c] = (q - zp) * scale;
                }
            }
        }
        out
    }
}

/// Asymmetric round-to-nearest quantisation of each block: the zero point is
/// chosen so that the block's min and max are both representable.
pub fn quantize(data: &[f32], n: usize, k: usize) -> Q4 {
    assert_eq!(data.len(), n * k);
    let kb = k.div_ceil(BLOCK);
    let zpb = kb.div_ceil(2);
    let mut blob = vec![0u8; n * kb * (BLOCK / 2)];
    let mut scales = vec![0f32; n * kb];
    let mut zero_points = vec![0u8; n * zpb];
    for r in 0..n {
        let row = &data[r * k..(r + 1) * k];
        for b in 0..kb {
            let vals = &row[b * BLOCK..((b + 1) * BLOCK).min(k)];
            // Zero must be inside the range so padding (and exact zeros) stay exact.
            let mn = vals.iter().cloned().fold(0.0f32, f32::min);
            let mx = vals.iter().cloned().fold(0.0f32, f32::max);
            let mut scale = (mx - mn) / 15.0;
            if scale <= 0.0 || !scale.is_finite() {
                scale = 1.0;
            }
            let zp = (-mn / scale).round().clamp(0.0, 15.0);
            scales[r * kb + b] = scale;
            let zp_u = zp as u8;
            let zi = r * zpb + b / 2;
            if b % 2 == 0 {
                zero_points[zi] |= zp_u;
            } else {
                zero_points[zi] |= zp_u << 4;
            }
            let base = (r * kb + b) * (BLOCK / 2);
            for i in 0..BLOCK {
                let q = match vals.get(i) {
                    Some(v) => (v / scale + zp).round().clamp(0.0, 15.0) as u8,
                    None => zp_u,
                };
                if i % 2 == 0 {
                    blob[base + i / 2] |= q;
                } else {
                    blob[base + i / 2] |= q << 4;
                }
            }
        }
    }
    Q4 {
        n,
        k,
        blob,
        scales,
        zero_points,
    }
}

/// An `[N, K]` matrix in 8-bit blocks of 32 (one byte per value), with one
/// scale and one 8-bit zero point per block: for the embedding and lm_head,
/// which GGUF files keep at 8 bits (Q8_0) because logits are sensitive to them.
pub struct Q8 {
    pub n: usize,
    pub k: usize,
    /// `[N, K/32 · 32]` bytes (K padded to whole blocks).
    pub blob: Vec<u8>,
    pub scales: Vec<f32>,
    /// `[N, K/32]`.
    pub zero_points: Vec<u8>,
}

impl Q8 {
    pub fn blocks_per_row(&self) -> usize {
        self.k.div_ceil(BLOCK)
    }

    /// A file's signed 8-bit blocks (GGUF Q8_0, `w = d·q`) exactly: byte `q + 128`
    /// with zero point 128.
    pub fn from_native(b: &crate::model::native::Blocks8) -> Q8 {
        Q8 {
            n: b.rows,
            k: b.cols,
            blob: b.codes.iter().map(|&q| (q as u8) ^ 0x80).collect(),
            scales: b.scales.clone(),
            zero_points: vec![128; b.rows * b.blocks_per_row()],
        }
    }

    pub fn dequantize(&self) -> Vec<f32> {
        let kb = self.blocks_per_row();
        let mut out = vec![0.0; self.n * self.k];
        for r in 0..self.n {
            for c in 0..self.k {
                let b = c / BLOCK;
                let q = self.blob[r * kb * BLOCK + c] as f32;
                let zp = self.zero_points[r * kb + b] as f32;
                out[r * self.k + c] = (q - zp) * self.scales[r * kb + b];
            }
        }
        out
    }
}

pub fn quantize8(data: &[f32], n: usize, k: usize) -> Q8 {
    assert_eq!(data.len(), n * k);
    let kb = k.div_ceil(BLOCK);
    let mut blob = vec![0u8; n * kb * BLOCK];
    let mut scales = vec![0f32; n * kb];
    let mut zero_points = vec![0u8; n * kb];
    for r in 0..n {
        let row = &data[r * k..(r + 1) * k];
        for b in 0..kb {
            let vals = &row[b * BLOCK..((b + 1) * BLOCK).min(k)];
            let mn = vals.iter().cloned().fold(0.0f32, f32::min);
            let mx = vals.iter().cloned().fold(0.0f32, f32::max);
            let mut scale = (mx - mn) / 255.0;
            if scale <= 0.0 || !scale.is_finite() {
                scale = 1.0;
            }
            let zp = (-mn / scale).round().clamp(0.0, 255.0);
            scales[r * kb + b] = scale;
            zero_points[r * kb + b] = zp as u8;
            for i in 0..BLOCK {
                blob[(r * kb + b) * BLOCK + i] = match vals.get(i) {
                    Some(v) => (v / scale + zp).round().clamp(0.0, 255.0) as u8,
                    None => zp as u8,
                };
            }
        }
    }
    Q8 {
        n,
        k,
        blob,
        scales,
        zero_points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_error_is_within_half_a_step() {
        let n = 3;
        let k = 70; // not a multiple of the block: exercises padding
        let data: Vec<f32> = (0..n * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let q = quantize(&data, n, k);
        let back = q.dequantize();
        for r in 0..n {
            for c in 0..k {
                let b = c / BLOCK;
                let step = q.scales[r * q.blocks_per_row() + b];
                let err = (back[r * k + c] - data[r * k + c]).abs();
                assert!(err <= step * 0.5 + 1e-5, "r{r} c{c}: err {err} step {step}");
            }
        }
    }

    #[test]
    fn zeros_stay_zero() {
        let data = vec![0.0f32; 64];
        let q = quantize(&data, 1, 64);
        assert!(q.dequantize().iter().all(|v| *v == 0.0));
    }
}
