//! Builds an ONNX decoder graph from the in-memory [`Model`], with ORT's fused
//! operators: SimplifiedLayerNormalization / SkipSimplifiedLayerNormalization,
//! GroupQueryAttention with rotary embedding and a shared-buffer KV cache, and
//! MatMulNBits for 4-bit weights (the wiring onnxruntime-genai's model builder uses).
//!
//! Graph interface:
//! - inputs: `input_ids` int64 `[B, S]`; `seqlens_k` int32 `[B]` (each row's total
//!   length after this step − 1); `total_sequence_length` int32 scalar (the batch
//!   maximum); `logits_index` int64 `[N]` (flat `b*S + s` positions whose logits are
//!   wanted); `past_key_L` / `past_value_L` f32 `[B, kv_heads, max_len, head_dim]`.
//! - outputs: `logits` f32 `[N, vocab]`; `present_key_L` / `present_value_L`, bound
//!   to the same buffers as the past (ORT then writes only the new rows).

use super::onnx::{Attr, DType, Dim, GraphBuilder, MS_DOMAIN};
use super::quant;
use crate::error::{Error, Result};
use crate::model::{Linear, Matrix, Model};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Bumped whenever the emitted graph changes, so cached graphs are rebuilt.
pub const BUILDER_VERSION: u32 = 3;

/// How projection weights are stored in the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WeightFormat {
    /// 8-bit blocks (MatMulNBits, accuracy level 4). The default: a 4-bit GGUF
    /// (Q4_1, Q4_K) passes through it almost losslessly, where re-quantising to
    /// ORT's 4-bit grid would round every weight a second time.
    #[default]
    Int8,
    /// 4-bit blocks (MatMulNBits, accuracy level 4: int8 activations): about
    /// half the memory traffic of int8, at the cost of a second rounding.
    Int4,
    /// 4-bit blocks computed in f32 (accuracy level 0): slower, closer to the float model.
    Int4Exact,
    /// Plain f32 MatMul: reference precision.
    F32,
}

impl WeightFormat {
    pub fn name(&self) -> &'static str {
        match self {
            WeightFormat::Int8 => "int8",
            WeightFormat::Int4 => "int4",
            WeightFormat::Int4Exact => "int4-exact",
            WeightFormat::F32 => "f32",
        }
    }
}

impl std::str::FromStr for WeightFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "int8" => Ok(WeightFormat::Int8),
            "int4" => Ok(WeightFormat::Int4),
            "int4-exact" => Ok(WeightFormat::Int4Exact),
            "f32" => Ok(WeightFormat::F32),
            _ => Err(Error::Config(format!(
                "unknown weight format {s:?}: use int8, int4, int4-exact or f32"
            ))),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct BuildOptions {
    pub format: WeightFormat,
    /// Longest sequence the rotary caches cover (capped by the model's context).
    pub max_positions: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            format: WeightFormat::Int8,
            max_positions: 4096,
        }
    }
}

/// Shape facts the session needs to drive a built graph (stored beside it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphInfo {
    pub builder_version: u32,
    pub format: WeightFormat,
    pub n_layers: usize,
    /// KV heads per layer (may differ between layers after pruning).
    pub kv_heads: Vec<usize>,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub max_positions: usize,
    pub eos_token_ids: Vec<u32>,
    pub bos_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    /// Parameters of the model the graph was built from (after transforms).
    #[serde(default)]
    pub params: u64,
    /// Matrix FLOPs per generated token (see `Model::flops_per_token`).
    #[serde(default)]
    pub flops_per_token: u64,
}

/// Where a model's graph lives in the cache.
pub fn cache_dir(model: &Model, options: &BuildOptions) -> PathBuf {
    cache_dir_for(&model.cache_key(), model.config.max_position, options)
}

/// The cache folder for a graph of weights with `key` (see `model::weights::cache_key`).
pub fn cache_dir_for(key: &str, max_position: usize, options: &BuildOptions) -> PathBuf {
    crate::paths::graphs_dir().join(format!(
        "{}-{}-v{}-p{}",
        key,
        options.format.name(),
        BUILDER_VERSION,
        options.max_positions.min(max_position.max(1)),
    ))
}

/// A previously built graph in `dir`, if complete.
pub fn cached(dir: &Path) -> Option<GraphInfo> {
    let text = std::fs::read_to_string(dir.join("graph.json")).ok()?;
    let info: GraphInfo = serde_json::from_str(&text).ok()?;
    // Graphs cached before sizes were recorded are rebuilt, so reports have them.
    (dir.join("model.onnx").is_file() && info.params > 0).then_some(info)
}

/// Builds the graph into `dir` (`model.onnx`, `model.onnx.data`, `graph.json`)
/// unless it is already there. Returns the graph info.
pub fn build_cached(model: &Model, options: &BuildOptions) -> Result<(PathBuf, GraphInfo)> {
    let dir = cache_dir(model, options);
    if let Some(info) = cached(&dir) {
        return Ok((dir, info));
    }
    // Build in a private folder, then rename: concurrent builders never see half a graph.
    // Unique per process and per call: threads of one process may build at once.
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.with_extension(format!("tmp{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let info = build(model, options, &tmp.join("model.onnx"))?;
    let text = serde_json::to_string_pretty(&info).map_err(|e| Error::Other(e.to_string()))?;
    std::fs::write(tmp.join("graph.json"), text).map_err(|e| Error::io(&tmp, e))?;
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    } else if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join("graph.json").is_file() {
            return Err(Error::io(&dir, e));
        }
    }
    Ok((dir, info))
}

/// Emits the graph for `model` to `path`.
pub fn build(model: &Model, options: &BuildOptions, path: &Path) -> Result<GraphInfo> {
    let c = &model.config;
    let hd = c.head_dim;
    if !hd.is_multiple_of(16) {
        return Err(Error::Unsupported(format!(
            "head_dim {hd}: the fused attention kernel needs a multiple of 16"
        )));
    }
    let max_pos = options.max_positions.min(c.max_position.max(1));
    let mut g = GraphBuilder::new("mscr-decoder");
    let fmt = options.format;

    g.input("input_ids", DType::I64, &["batch".into(), "seq".into()]);
    g.input("seqlens_k", DType::I32, &["batch".into()]);
    g.input("total_sequence_length", DType::I32, &[]);
    g.input("logits_index", DType::I64, &["n_logits".into()]);
    g.output(
        "logits",
        DType::F32,
        &["n_logits".into(), Dim::Fixed(c.vocab_size as i64)],
    );

    // Embedding at 8 bits (tied lm_head reuses the same blob): logits are
    // sensitive to it, and GGUF files keep it at 8 bits too.
    let embed_q = match fmt {
        WeightFormat::F32 => None,
        _ => Some(quant::quantize8(
            &model.embed.data,
            model.embed.rows,
            model.embed.cols,
        )),
    };
    let mut x = match &embed_q {
        None => {
            let w = g.init_f32(
                "embed.weight",
                &[c.vocab_size as i64, c.hidden as i64],
                &model.embed.data,
            );
            g.op("Gather", &[&w, "input_ids"], &[("axis", Attr::Int(0))])
        }
        Some(q) => {
            let (blob, scales, zp) = q8_inits(&mut g, "embed", q);
            let out = g.fresh("embed_out");
            g.node(
                "GatherBlockQuantized",
                MS_DOMAIN,
                &[&blob, "input_ids", &scales, &zp],
                &[&out],
                &[
                    ("bits", Attr::Int(8)),
                    ("block_size", Attr::Int(quant::BLOCK as i64)),
                    ("gather_axis", Attr::Int(0)),
                    ("quantize_axis", Attr::Int(1)),
                ],
            );
            out
        }
    };

    let (cos, sin) = rotary_caches(model, max_pos);
    let cos = g.init_f32("cos_cache", &[max_pos as i64, (hd / 2) as i64], &cos);
    let sin = g.init_f32("sin_cache", &[max_pos as i64, (hd / 2) as i64], &sin);

    let mut residual: Option<String> = None;
    let mut pending: Option<String> = None; // output of the last MLP, not yet added
    let mut kv_heads = Vec::with_capacity(model.layers.len());
    for (i, layer) in model.layers.iter().enumerate() {
        let p = format!("l{i}");
        // Pre-attention norm (fused with the residual add from the previous layer).
        let norm_w = g.init_f32(
            &format!("{p}.attn_norm"),
            &[c.hidden as i64],
            &layer.attn_norm,
        );
        let prev = residual.clone();
        let h = norm(
            &mut g,
            &x,
            pending.as_deref(),
            prev.as_deref(),
            &norm_w,
            c.rms_eps,
            &mut residual,
        );
        if pending.is_none() {
            residual = Some(x.clone());
        }

        // Packed QKV projection.
        let qkv = stack_linears(&[&layer.q, &layer.k, &layer.v]);
        let qkv_out = linear(&mut g, &format!("{p}.qkv"), &h, &qkv, fmt);
        let past_k = format!("past_key_{i}");
        let past_v = format!("past_value_{i}");
        let pres_k = format!("present_key_{i}");
        let pres_v = format!("present_value_{i}");
        let kv_dims: Vec<Dim> = vec![
            "batch".into(),
            Dim::Fixed(layer.n_kv_heads as i64),
            "max_len".into(),
            Dim::Fixed(hd as i64),
        ];
        g.input(&past_k, DType::F32, &kv_dims);
        g.input(&past_v, DType::F32, &kv_dims);
        g.output(&pres_k, DType::F32, &kv_dims);
        g.output(&pres_v, DType::F32, &kv_dims);
        kv_heads.push(layer.n_kv_heads);
        let attn = g.fresh(&format!("{p}.attn"));
        g.node(
            "GroupQueryAttention",
            MS_DOMAIN,
            &[
                &qkv_out,
                "",
                "",
                &past_k,
                &past_v,
                "seqlens_k",
                "total_sequence_length",
                &cos,
                &sin,
            ],
            &[&attn, &pres_k, &pres_v],
            &[
                ("num_heads", Attr::Int(layer.n_heads as i64)),
                ("kv_num_heads", Attr::Int(layer.n_kv_heads as i64)),
                ("do_rotary", Attr::Int(1)),
                ("rotary_interleaved", Attr::Int(0)),
                ("scale", Attr::Float(1.0 / (hd as f32).sqrt())),
            ],
        );
        let o = linear(&mut g, &format!("{p}.o"), &attn, &layer.o, fmt);

        // Post-attention norm with the residual add.
        let mlp_norm_w = g.init_f32(
            &format!("{p}.mlp_norm"),
            &[c.hidden as i64],
            &layer.mlp_norm,
        );
        let prev = residual.clone();
        let h2 = norm(
            &mut g,
            &x,
            Some(&o),
            prev.as_deref(),
            &mlp_norm_w,
            c.rms_eps,
            &mut residual,
        );

        let gate = linear(&mut g, &format!("{p}.gate"), &h2, &layer.gate, fmt);
        let up = linear(&mut g, &format!("{p}.up"), &h2, &layer.up, fmt);
        let sig = g.op("Sigmoid", &[&gate], &[]);
        let silu = g.op("Mul", &[&gate, &sig], &[]);
        let act = g.op("Mul", &[&silu, &up], &[]);
        let down = linear(&mut g, &format!("{p}.down"), &act, &layer.down, fmt);
        pending = Some(down);
        x = String::new(); // the stream now lives in `residual` + `pending`
    }

    // Final norm.
    let final_w = g.init_f32("final_norm", &[c.hidden as i64], &model.final_norm);
    let hf = match (&pending, &residual) {
        (Some(p), Some(r)) => {
            let out = g.fresh("final_norm_out");
            g.node(
                "SkipSimplifiedLayerNormalization",
                MS_DOMAIN,
                &[p, r, &final_w],
                &[&out],
                &[("epsilon", Attr::Float(c.rms_eps))],
            );
            out
        }
        _ => simplified_norm(&mut g, &x, &final_w, c.rms_eps),
    };

    // Only the requested positions go through the (large) lm_head.
    let flat_shape = g.const_i64(&[-1, c.hidden as i64]);
    let flat = g.op("Reshape", &[&hf, &flat_shape], &[]);
    let picked = g.op(
        "Gather",
        &[&flat, "logits_index"],
        &[("axis", Attr::Int(0))],
    );
    let head = model.lm_head();
    match (&model.lm_head, &embed_q) {
        // Tied: reuse the embedding's 8-bit blob.
        (None, Some(q)) => {
            let blob3 = g.const_i64(&[q.n as i64, q.blocks_per_row() as i64, quant::BLOCK as i64]);
            let blob_r = g.op("Reshape", &["embed.q8.blob", &blob3], &[]);
            matmul_nbits(
                &mut g,
                &picked,
                &blob_r,
                "embed.q8.scales",
                "embed.q8.zp",
                (q.n, q.k),
                8,
                fmt,
                "logits",
            );
        }
        (Some(h), Some(_)) => {
            let q = quant::quantize8(&h.data, h.rows, h.cols);
            let (blob, scales, zp) = q8_inits(&mut g, "lm_head", &q);
            let blob3 = g.const_i64(&[q.n as i64, q.blocks_per_row() as i64, quant::BLOCK as i64]);
            let blob_r = g.op("Reshape", &[&blob, &blob3], &[]);
            matmul_nbits(
                &mut g,
                &picked,
                &blob_r,
                &scales,
                &zp,
                (q.n, q.k),
                8,
                fmt,
                "logits",
            );
        }
        _ => {
            let lin = Linear::dense(head.clone());
            let out = linear(&mut g, "lm_head", &picked, &lin, fmt);
            g.node("Identity", "", &[&out], &["logits"], &[]);
        }
    }

    let info = GraphInfo {
        builder_version: BUILDER_VERSION,
        format: fmt,
        n_layers: model.layers.len(),
        kv_heads,
        head_dim: hd,
        vocab_size: c.vocab_size,
        max_positions: max_pos,
        eos_token_ids: c.eos_token_ids.clone(),
        bos_token_id: c.bos_token_id,
        pad_token_id: c.pad_token_id,
        params: model.params() as u64,
        flops_per_token: model.flops_per_token() as u64,
    };
    g.metadata(
        "mscr.graph_info",
        &serde_json::to_string(&info).unwrap_or_default(),
    );
    g.save(path, &[("", 17), (MS_DOMAIN, 1)])?;
    Ok(info)
}

/// RMS norm of `x`, or of `pending + residual` fused with the residual add
/// (then `residual` is updated to the sum).
fn norm(
    g: &mut GraphBuilder,
    x: &str,
    pending: Option<&str>,
    prev_residual: Option<&str>,
    weight: &str,
    eps: f32,
    residual: &mut Option<String>,
) -> String {
    match (pending, prev_residual) {
        (Some(p), Some(r)) => {
            let out = g.fresh("norm_out");
            let sum = g.fresh("residual");
            g.node(
                "SkipSimplifiedLayerNormalization",
                MS_DOMAIN,
                &[p, r, weight],
                &[&out, "", "", &sum],
                &[("epsilon", Attr::Float(eps))],
            );
            *residual = Some(sum);
            out
        }
        _ => simplified_norm(g, x, weight, eps),
    }
}

fn simplified_norm(g: &mut GraphBuilder, x: &str, weight: &str, eps: f32) -> String {
    // SimplifiedLayerNormalization is registered by ORT in the default domain.
    g.op(
        "SimplifiedLayerNormalization",
        &[x, weight],
        &[
            ("axis", Attr::Int(-1)),
            ("epsilon", Attr::Float(eps)),
            ("stash_type", Attr::Int(1)),
        ],
    )
}

/// Stacks projections sharing an input into one (for the packed QKV MatMul).
fn stack_linears(parts: &[&Linear]) -> Linear {
    let mats: Vec<Matrix> = parts.iter().map(|l| l.to_dense()).collect();
    let cols = mats[0].cols;
    let rows: usize = mats.iter().map(|m| m.rows).sum();
    let mut data = Vec::with_capacity(rows * cols);
    for m in &mats {
        data.extend_from_slice(&m.data);
    }
    let bias = if parts.iter().any(|l| l.bias().is_some()) {
        let mut b = Vec::with_capacity(rows);
        for (l, m) in parts.iter().zip(&mats) {
            match l.bias() {
                Some(v) => b.extend_from_slice(v),
                None => b.extend(std::iter::repeat_n(0.0, m.rows)),
            }
        }
        Some(b)
    } else {
        None
    };
    Linear::Dense {
        w: Matrix::new(rows, cols, data),
        bias,
    }
}

/// `y = x Wᵀ (+ b)` in the chosen format; factorised weights become two MatMuls.
fn linear(g: &mut GraphBuilder, name: &str, x: &str, lin: &Linear, fmt: WeightFormat) -> String {
    let y = match lin {
        Linear::Dense { w, .. } => matmul(g, name, x, w, fmt),
        Linear::LowRank { u, v, .. } => {
            let mid = matmul(g, &format!("{name}.v"), x, v, fmt);
            matmul(g, &format!("{name}.u"), &mid, u, fmt)
        }
    };
    match lin.bias() {
        Some(b) => {
            let bn = g.init_f32(&format!("{name}.bias"), &[b.len() as i64], b);
            g.op("Add", &[&y, &bn], &[])
        }
        None => y,
    }
}

fn matmul(g: &mut GraphBuilder, name: &str, x: &str, w: &Matrix, fmt: WeightFormat) -> String {
    match fmt {
        WeightFormat::F32 => {
            let wt = w.transpose(); // MatMul wants [in, out]
            let wn = g.init_f32(
                &format!("{name}.weight"),
                &[wt.rows as i64, wt.cols as i64],
                &wt.data,
            );
            g.op("MatMul", &[x, &wn], &[])
        }
        _ => {
            if fmt == WeightFormat::Int8 {
                let q = quant::quantize8(&w.data, w.rows, w.cols);
                let (blob, scales, zp) = q8_inits(g, name, &q);
                let blob3 =
                    g.const_i64(&[q.n as i64, q.blocks_per_row() as i64, quant::BLOCK as i64]);
                let blob_r = g.op("Reshape", &[&blob, &blob3], &[]);
                let out = g.fresh(&format!("{name}_out"));
                return matmul_nbits(g, x, &blob_r, &scales, &zp, (q.n, q.k), 8, fmt, &out);
            }
            let q = quant::quantize(&w.data, w.rows, w.cols);
            let (blob, scales, zp) = q4_inits(g, name, &q);
            let out = g.fresh(&format!("{name}_out"));
            matmul_nbits(g, x, &blob, &scales, &zp, (q.n, q.k), 4, fmt, &out)
        }
    }
}

/// `MatMulNBits` over a `[N, K]` weight stored in `bits`-bit blocks.
#[allow(clippy::too_many_arguments)]
fn matmul_nbits(
    g: &mut GraphBuilder,
    x: &str,
    blob: &str,
    scales: &str,
    zp: &str,
    (n, k): (usize, usize),
    bits: i64,
    fmt: WeightFormat,
    out: &str,
) -> String {
    let level = if matches!(fmt, WeightFormat::Int4 | WeightFormat::Int8) {
        4
    } else {
        0
    };
    g.node(
        "MatMulNBits",
        MS_DOMAIN,
        &[x, blob, scales, zp],
        &[out],
        &[
            ("K", Attr::Int(k as i64)),
            ("N", Attr::Int(n as i64)),
            ("bits", Attr::Int(bits)),
            ("block_size", Attr::Int(quant::BLOCK as i64)),
            ("accuracy_level", Attr::Int(level)),
        ],
    )
}

/// Adds a quantised matrix's initializers. `gather` lays the blob out as
/// `[N, K/2]` (GatherBlockQuantized) instead of `[N, K/32, 16]` (MatMulNBits);
/// the bytes are the same.
fn q4_inits(g: &mut GraphBuilder, name: &str, q: &quant::Q4) -> (String, String, String) {
    let kb = q.blocks_per_row() as i64;
    let n = q.n as i64;
    let blob_dims: Vec<i64> = vec![n, kb, quant::BLOCK as i64 / 2];
    let blob = g.init_raw(
        &format!("{name}.q4.blob"),
        DType::U8,
        &blob_dims,
        q.blob.clone(),
    );
    let scales = g.init_f32(&format!("{name}.q4.scales"), &[n, kb], &q.scales);
    let zp = g.init_raw(
        &format!("{name}.q4.zp"),
        DType::U8,
        &[n, q.zp_bytes_per_row() as i64],
        q.zero_points.clone(),
    );
    (blob, scales, zp)
}

/// Inverse frequencies, with Llama 3 style scaling when configured.
pub fn inv_freq(model: &Model) -> Vec<f32> {
    let c = &model.config;
    let hd = c.head_dim;
    let mut f: Vec<f64> = (0..hd / 2)
        .map(|i| 1.0 / (c.rope_theta as f64).powf(2.0 * i as f64 / hd as f64))
        .collect();
    if let Some(s) = &c.rope_scaling {
        let low_wavelen = s.original_max_position as f64 / s.low_freq_factor as f64;
        let high_wavelen = s.original_max_position as f64 / s.high_freq_factor as f64;
        for v in &mut f {
            let wavelen = 2.0 * std::f64::consts::PI / *v;
            if wavelen > low_wavelen {
                *v /= s.factor as f64;
            } else if wavelen >= high_wavelen {
                let smooth = (s.original_max_position as f64 / wavelen - s.low_freq_factor as f64)
                    / (s.high_freq_factor as f64 - s.low_freq_factor as f64);
                *v = (1.0 - smooth) * *v / s.factor as f64 + smooth * *v;
            }
        }
    }
    f.into_iter().map(|v| v as f32).collect()
}

fn rotary_caches(model: &Model, max_pos: usize) -> (Vec<f32>, Vec<f32>) {
    let inv = inv_freq(model);
    let half = inv.len();
    let mut cos = Vec::with_capacity(max_pos * half);
    let mut sin = Vec::with_capacity(max_pos * half);
    for p in 0..max_pos {
        for f in &inv {
            let a = p as f64 * *f as f64;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    (cos, sin)
}

/// An 8-bit matrix's initializers: blob `[N, K]` (GatherBlockQuantized's layout;
/// reshaped to `[N, K/32, 32]` for MatMulNBits), scales and zero points `[N, K/32]`.
fn q8_inits(g: &mut GraphBuilder, name: &str, q: &quant::Q8) -> (String, String, String) {
    let kb = q.blocks_per_row() as i64;
    let n = q.n as i64;
    let blob = g.init_raw(
        &format!("{name}.q8.blob"),
        DType::U8,
        &[n, kb * quant::BLOCK as i64],
        q.blob.clone(),
    );
    let scales = g.init_f32(&format!("{name}.q8.scales"), &[n, kb], &q.scales);
    let zp = g.init_raw(
        &format!("{name}.q8.zp"),
        DType::U8,
        &[n, kb],
        q.zero_points.clone(),
    );
    (blob, scales, zp)
}
