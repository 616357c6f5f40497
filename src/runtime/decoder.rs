//! Builds an ONNX decoder graph from the in-memory [`Model`], with ORT's fused
//! operators: SimplifiedLayerNormalization / SkipSimplifiedLayerNormalization,
//! GroupQueryAttention with rotary embedding and a shared-buffer KV cache, and
//! MatMulNBits for 4- and 8-bit weights (the wiring onnxruntime-genai's model
//! builder uses). The native formats take a GGUF's own 4-bit blocks as they are
//! (see [`WeightFormat::Q4`] and `model::native`).
//!
//! Graph interface:
//! - inputs: `input_ids` int64 `[B, S]`; `seqlens_k` int32 `[B]` (each row's total
//!   length after this step − 1); `total_sequence_length` int32 scalar (the batch
//!   maximum); `logits_index` int64 `[N]` (flat `b*S + s` positions whose logits are
//!   wanted); `past_key_L` / `past_value_L` f32 `[B, kv_heads, max_len, head_dim]`;
//!   only when the model carries a position-dependent adapter (BREP, LoReFT):
//!   `position_ids` int64 `[B, S]` and `prompt_lens` int64 `[B]`.
//! - unmergeable adapters (`model.adapters`) are extra branches: TopLoRA's
//!   gated low-rank term is added to its projection's output, BREP's scale and
//!   bias act on `up_proj`'s output where the position is below the row's
//!   prompt length plus `n_prefix`, LoReFT edits a layer's output (the
//!   residual stream, then re-normalised afresh) at its prompt positions.
//! - outputs: `logits` f32 `[N, vocab]`; `present_key_L` / `present_value_L`, bound
//!   to the same buffers as the past (ORT then writes only the new rows).

use super::onnx::{Attr, DType, Dim, GraphBuilder, MS_DOMAIN};
use super::quant;
use crate::error::{Error, Result};
use crate::model::native::{Blocks4, Native, NativeWeights};
use crate::model::{Linear, Matrix, Model};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Bumped whenever the emitted graph changes, so cached graphs are rebuilt.
pub const BUILDER_VERSION: u32 = 5;

/// How projection weights are stored in the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WeightFormat {
    /// 8-bit blocks (MatMulNBits, accuracy level 4). The default: a 4-bit GGUF
    /// (Q4_1, Q4_K) passes through it almost losslessly, and on the default
    /// model it decodes as fast as `q4` (benchmarks/RESULTS.md) while keeping
    /// clean accuracy where `q4`'s int8 activations on 4-bit codes lost some.
    #[default]
    Int8,
    /// 4-bit blocks (MatMulNBits, accuracy level 4: int8 activations): about
    /// half the memory traffic of int8, at the cost of a second rounding.
    Int4,
    /// 4-bit blocks computed in f32 (accuracy level 0): slower, closer to the float model.
    Int4Exact,
    /// `int4` with the lm_head at 4 bits too (the embedding lookup stays 8-bit):
    /// the fastest CPU decode, and the least faithful (benchmarks/RESULTS.md).
    Int4All,
    /// Plain f32 MatMul: reference precision.
    F32,
    /// A GGUF's own blocks, without a second rounding: Q4_0 / Q4_1 / Q4_K
    /// projections as 4-bit MatMulNBits with the file's codes and scales (the
    /// block minimum added exactly by a small f32 product of block sums), Q8_0
    /// tensors as exact 8-bit blocks; other types, and weights a transform
    /// changed, as `int8`. Accuracy level 4 (int8 activations).
    Q4,
    /// [`WeightFormat::Q4`] computed in f32 (accuracy level 0): slower, exact.
    Q4Exact,
}

impl WeightFormat {
    pub fn name(&self) -> &'static str {
        match self {
            WeightFormat::Int8 => "int8",
            WeightFormat::Int4 => "int4",
            WeightFormat::Int4Exact => "int4-exact",
            WeightFormat::Int4All => "int4-all",
            WeightFormat::F32 => "f32",
            WeightFormat::Q4 => "q4",
            WeightFormat::Q4Exact => "q4-exact",
        }
    }

    /// Whether the format uses a GGUF's own blocks where it can.
    pub fn is_native(&self) -> bool {
        matches!(self, WeightFormat::Q4 | WeightFormat::Q4Exact)
    }

    /// MatMulNBits' accuracy level: 4 quantises activations to int8 (fast).
    fn accuracy_level(&self) -> i64 {
        match self {
            WeightFormat::Int4 | WeightFormat::Int4All | WeightFormat::Int8 | WeightFormat::Q4 => 4,
            _ => 0,
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
            "int4-all" => Ok(WeightFormat::Int4All),
            "f32" => Ok(WeightFormat::F32),
            "q4" | "gguf-native" => Ok(WeightFormat::Q4),
            "q4-exact" => Ok(WeightFormat::Q4Exact),
            _ => Err(Error::Config(format!(
                "unknown weight format {s:?}: use int8, q4, q4-exact, int4, int4-all, int4-exact or f32"
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
            format: WeightFormat::default(),
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
    /// The graph takes `position_ids` int64 `[B, S]` and `prompt_lens` int64
    /// `[B]` too (an adapter that acts on some positions only).
    #[serde(default)]
    pub positions: bool,
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
    build_cached_with(model, options, None)
}

/// [`build_cached`] with the weights' own blocks for the native formats.
pub fn build_cached_with(
    model: &Model,
    options: &BuildOptions,
    native: Option<&NativeWeights>,
) -> Result<(PathBuf, GraphInfo)> {
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
    let info = build_with(model, options, native, &tmp.join("model.onnx"))?;
    let text = serde_json::to_string_pretty(&info).map_err(|e| Error::Other(e.to_string()))?;
    std::fs::write(tmp.join("graph.json"), text).map_err(|e| Error::io(&tmp, e))?;
    if dir.exists() {
        if cached(&dir).is_some() {
            // Another builder finished first: keep its graph.
            let _ = std::fs::remove_dir_all(&tmp);
            return Ok((dir, info));
        }
        // An outdated or incomplete graph (e.g. cached before sizes were
        // recorded): move it aside so the new one replaces it, instead of
        // being rebuilt on every load.
        let old = dir.with_extension(format!("old{}-{n}", std::process::id()));
        let _ = std::fs::rename(&dir, &old);
        let _ = std::fs::remove_dir_all(&old);
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join("graph.json").is_file() {
            return Err(Error::io(&dir, e));
        }
    }
    Ok((dir, info))
}

/// Emits the graph for `model` to `path`.
pub fn build(model: &Model, options: &BuildOptions, path: &Path) -> Result<GraphInfo> {
    build_with(model, options, None, path)
}

/// Emits the graph for `model` to `path`. With a native format, `native` holds
/// the file's own blocks (see [`NativeWeights`]); each is used only where it
/// still holds exactly the model's weights.
pub fn build_with(
    model: &Model,
    options: &BuildOptions,
    native: Option<&NativeWeights>,
    path: &Path,
) -> Result<GraphInfo> {
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
    let mut cx = Ctx {
        fmt,
        native: native.filter(|_| fmt.is_native()),
        sums: HashMap::new(),
    };

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
        _ => Some(match cx.native_for("embed", &model.embed) {
            Some(Native::Q8(b)) => quant::Q8::from_native(&b),
            _ => quant::quantize8(&model.embed.data, model.embed.rows, model.embed.cols),
        }),
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

    let brep_mask = positions_mask(&mut g, model);
    let reft_masks = reft_masks(&mut g, model);

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
        let qkv_native = cx.native_stack(&[
            (&format!("{p}.q"), &layer.q),
            (&format!("{p}.k"), &layer.k),
            (&format!("{p}.v"), &layer.v),
        ]);
        let qkv_out = cx.linear(&mut g, &format!("{p}.qkv"), &h, &qkv, qkv_native, 3);
        let qkv_out = add_gated(
            &mut g,
            model,
            i,
            &h,
            qkv_out,
            &[("q", &layer.q), ("k", &layer.k), ("v", &layer.v)],
        );
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
        // Qwen3 normalises each query and key head before rotary, which GQA
        // applies itself: split the packed projection and pass Q, K, V apart.
        let (query, key, value) = match (&layer.q_norm, &layer.k_norm) {
            (Some(qn), Some(kn)) => {
                let sizes = g.const_i64(&[
                    (layer.n_heads * hd) as i64,
                    (layer.n_kv_heads * hd) as i64,
                    (layer.n_kv_heads * hd) as i64,
                ]);
                let (q, k, v) = (
                    g.fresh(&format!("{p}.q")),
                    g.fresh(&format!("{p}.k")),
                    g.fresh(&format!("{p}.v")),
                );
                g.node(
                    "Split",
                    "",
                    &[&qkv_out, &sizes],
                    &[&q, &k, &v],
                    &[("axis", Attr::Int(-1))],
                );
                let q = head_norm(&mut g, &format!("{p}.q_norm"), &q, qn, hd, c.rms_eps);
                let k = head_norm(&mut g, &format!("{p}.k_norm"), &k, kn, hd, c.rms_eps);
                (q, k, v)
            }
            _ => (qkv_out, String::new(), String::new()),
        };
        let attn = g.fresh(&format!("{p}.attn"));
        g.node(
            "GroupQueryAttention",
            MS_DOMAIN,
            &[
                &query,
                &key,
                &value,
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
        let o = cx.linear_keyed(&mut g, &format!("{p}.o"), &attn, &layer.o, 3);
        let o = add_gated(&mut g, model, i, &attn, o, &[("o", &layer.o)]);

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

        let (gate, up) = gate_up(&mut g, &mut cx, &p, &h2, layer);
        let gate = add_gated(&mut g, model, i, &h2, gate, &[("gate", &layer.gate)]);
        let up = add_gated(&mut g, model, i, &h2, up, &[("up", &layer.up)]);
        let up = match model
            .adapters
            .up_scale_bias
            .as_ref()
            .and_then(|u| u.layers[i].as_ref())
        {
            Some(sb) => scale_bias(&mut g, &p, &up, sb, brep_mask.as_deref()),
            None => up,
        };
        let sig = g.op("Sigmoid", &[&gate], &[]);
        let silu = g.op("Mul", &[&gate, &sig], &[]);
        let act = g.op("Mul", &[&silu, &up], &[]);
        let down = cx.linear_keyed(&mut g, &format!("{p}.down"), &act, &layer.down, 3);
        let down = add_gated(&mut g, model, i, &act, down, &[("down", &layer.down)]);
        pending = Some(down);
        x = String::new(); // the stream now lives in `residual` + `pending`
        if let (Some(reft), Some(masks)) = (&model.adapters.reft, &reft_masks) {
            let units: Vec<_> = reft.units.iter().filter(|u| u.layer == i).collect();
            if !units.is_empty() {
                // The block output, materialised: the next norm starts afresh from it.
                let mut h = g.op(
                    "Add",
                    &[
                        pending.as_deref().unwrap_or_default(),
                        residual.as_deref().unwrap_or_default(),
                    ],
                    &[],
                );
                for (k, u) in units.iter().enumerate() {
                    h = reft_unit(&mut g, &format!("{p}.reft{k}"), &h, u, masks);
                }
                x = h;
                pending = None;
                residual = None;
            }
        }
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
        // int4-all: a 4-bit head of its own (tied or not), through the dense path below.
        _ if fmt == WeightFormat::Int4All => {
            let lin = Linear::dense(head.clone());
            let out = cx.linear_keyed(&mut g, "lm_head", &picked, &lin, 2);
            g.node("Identity", "", &[&out], &["logits"], &[]);
        }
        // Tied: reuse the embedding's 8-bit blob.
        (None, Some(q)) => {
            let blob3 = g.const_i64(&[q.n as i64, q.blocks_per_row() as i64, quant::BLOCK as i64]);
            let blob_r = g.op("Reshape", &["embed.q8.blob", &blob3], &[]);
            matmul_nbits(
                &mut g,
                &picked,
                &blob_r,
                "embed.q8.scales",
                Some("embed.q8.zp"),
                (q.n, q.k),
                8,
                fmt,
                "logits",
            );
        }
        (Some(h), Some(_)) if !matches!(cx.native_for("lm_head", h), Some(Native::Q4(_))) => {
            let q = match cx.native_for("lm_head", h) {
                Some(Native::Q8(b)) => quant::Q8::from_native(&b),
                _ => quant::quantize8(&h.data, h.rows, h.cols),
            };
            let (blob, scales, zp) = q8_inits(&mut g, "lm_head", &q);
            let blob3 = g.const_i64(&[q.n as i64, q.blocks_per_row() as i64, quant::BLOCK as i64]);
            let blob_r = g.op("Reshape", &[&blob, &blob3], &[]);
            matmul_nbits(
                &mut g,
                &picked,
                &blob_r,
                &scales,
                Some(&zp),
                (q.n, q.k),
                8,
                fmt,
                "logits",
            );
        }
        _ => {
            let lin = Linear::dense(head.clone());
            let out = cx.linear_keyed(&mut g, "lm_head", &picked, &lin, 2);
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
        positions: model.adapters.needs_positions(),
    };
    g.metadata(
        "mscr.graph_info",
        &serde_json::to_string(&info).unwrap_or_default(),
    );
    g.save(path, &[("", 17), (MS_DOMAIN, 1)])?;
    Ok(info)
}

/// Adds the TopLoRA branches of `layer` on the projections `parts` (whose
/// outputs are stacked, in order, in `y`) to `y`; `x` is their input.
fn add_gated(
    g: &mut GraphBuilder,
    model: &Model,
    layer: usize,
    x: &str,
    y: String,
    parts: &[(&str, &Linear)],
) -> String {
    let total: usize = parts.iter().map(|(_, l)| l.out_features()).sum();
    let mut y = y;
    let mut offset = 0;
    for (name, lin) in parts {
        if let Some(gl) = model.adapters.gated_for(layer, name) {
            let p = format!("l{layer}.{name}.toplora");
            let (r, n_in) = (gl.a.rows, gl.a.cols);
            let a_t = g.init_f32(
                &format!("{p}.a"),
                &[n_in as i64, r as i64],
                &gl.a.transpose().data,
            );
            let theta = g.init_f32(
                &format!("{p}.theta"),
                &[n_in as i64, r as i64],
                &gl.theta.data,
            );
            let gain = g.init_f32(&format!("{p}.gain"), &[r as i64], &gl.gain);
            // Bᵀ placed at this projection's columns of the stacked output.
            let mut b_t = vec![0f32; r * total];
            for i in 0..gl.b.rows {
                for k in 0..r {
                    b_t[k * total + offset + i] = gl.b.data[i * r + k];
                }
            }
            let b_t = g.init_f32(&format!("{p}.b"), &[r as i64, total as i64], &b_t);
            let u = g.op("MatMul", &[x, &a_t], &[]);
            let z = g.op("MatMul", &[x, &theta], &[]);
            let n = simplified_norm(g, &z, &gain, gl.eps);
            let gate = g.op("Exp", &[&n], &[]);
            let v = g.op("Mul", &[&u, &gate], &[]);
            let d = g.op("MatMul", &[&v, &b_t], &[]);
            y = g.op("Add", &[&y, &d], &[]);
        }
        offset += lin.out_features();
    }
    y
}

/// BREP's positions: declares `position_ids` and `prompt_lens` and returns a
/// bool `[B, S, 1]` that is true where the intervention acts (`None` when
/// the model has no such adapter, or when it acts at every position).
fn positions_mask(g: &mut GraphBuilder, model: &Model) -> Option<String> {
    if !model.adapters.needs_positions() {
        return None;
    }
    g.input("position_ids", DType::I64, &["batch".into(), "seq".into()]);
    g.input("prompt_lens", DType::I64, &["batch".into()]);
    let n_prefix = model
        .adapters
        .up_scale_bias
        .as_ref()
        .filter(|u| u.n_prefix >= 0)?
        .n_prefix;
    let axis1 = g.const_i64(&[1]);
    let lens = g.op("Unsqueeze", &["prompt_lens", &axis1], &[]);
    let extra = g.const_i64(&[n_prefix]);
    let limit = g.op("Add", &[&lens, &extra], &[]);
    let mask = g.op("Less", &["position_ids", &limit], &[]);
    let axis2 = g.const_i64(&[-1]);
    Some(g.op("Unsqueeze", &[&mask, &axis2], &[]))
}

/// LoReFT's position masks (bool `[B, S, 1]`: first, last, either), as
/// pyreft's `get_intervention_locations` places them on a prompt of length
/// `L`: positions `< min(L/2, first)` and `[L − min(L/2, last), L)`.
fn reft_masks(g: &mut GraphBuilder, model: &Model) -> Option<[String; 3]> {
    let reft = model.adapters.reft.as_ref()?;
    let axis1 = g.const_i64(&[1]);
    let lens = g.op("Unsqueeze", &["prompt_lens", &axis1], &[]);
    let two = g.const_i64(&[2]);
    let half = g.op("Div", &[&lens, &two], &[]);
    let first = g.const_i64(&[reft.first as i64]);
    let last = g.const_i64(&[reft.last as i64]);
    let n_first = g.op("Min", &[&half, &first], &[]);
    let n_last = g.op("Min", &[&half, &last], &[]);
    let m_first = g.op("Less", &["position_ids", &n_first], &[]);
    let start = g.op("Sub", &[&lens, &n_last], &[]);
    let before = g.op("Less", &["position_ids", &start], &[]);
    let from = g.op("Not", &[&before], &[]);
    let inside = g.op("Less", &["position_ids", &lens], &[]);
    let m_last = g.op("And", &[&from, &inside], &[]);
    let m_both = g.op("Or", &[&m_first, &m_last], &[]);
    let axis2 = g.const_i64(&[-1]);
    let f = g.op("Unsqueeze", &[&m_first, &axis2], &[]);
    let l = g.op("Unsqueeze", &[&m_last, &axis2], &[]);
    let b = g.op("Unsqueeze", &[&m_both, &axis2], &[]);
    Some([f, l, b])
}

/// `h + (W h + b − R h) Rᵀ` where the unit's mask holds.
fn reft_unit(
    g: &mut GraphBuilder,
    p: &str,
    h: &str,
    u: &crate::model::adapters::ReftUnit,
    masks: &[String; 3],
) -> String {
    use crate::model::adapters::ReftPositions;
    let (d, r) = (u.rotate.rows as i64, u.rotate.cols as i64);
    let rot = g.init_f32(&format!("{p}.rotate"), &[d, r], &u.rotate.data);
    let rot_t = g.init_f32(
        &format!("{p}.rotate_t"),
        &[r, d],
        &u.rotate.transpose().data,
    );
    let w_t = g.init_f32(
        &format!("{p}.weight_t"),
        &[d, r],
        &u.weight.transpose().data,
    );
    let b = g.init_f32(&format!("{p}.bias"), &[r], &u.bias);
    let wh = g.op("MatMul", &[h, &w_t], &[]);
    let src = g.op("Add", &[&wh, &b], &[]);
    let rh = g.op("MatMul", &[h, &rot], &[]);
    let diff = g.op("Sub", &[&src, &rh], &[]);
    let delta = g.op("MatMul", &[&diff, &rot_t], &[]);
    let moved = g.op("Add", &[h, &delta], &[]);
    let mask = match u.positions {
        ReftPositions::First => &masks[0],
        ReftPositions::Last => &masks[1],
        ReftPositions::Both => &masks[2],
    };
    g.op("Where", &[mask, &moved, h], &[])
}

/// `up ⊙ scale + bias` where `mask` holds (everywhere without one), `up` elsewhere.
fn scale_bias(
    g: &mut GraphBuilder,
    p: &str,
    up: &str,
    layer: &(Vec<f32>, Vec<f32>),
    mask: Option<&str>,
) -> String {
    let n = layer.0.len() as i64;
    let s = g.init_f32(&format!("{p}.brep.scale"), &[n], &layer.0);
    let b = g.init_f32(&format!("{p}.brep.bias"), &[n], &layer.1);
    let scaled = g.op("Mul", &[up, &s], &[]);
    let moved = g.op("Add", &[&scaled, &b], &[]);
    match mask {
        Some(m) => g.op("Where", &[m, &moved, up], &[]),
        None => moved,
    }
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

/// RMS norm of every `hd`-wide head of `x` `[B, S, heads·hd]` with one shared
/// weight (Qwen3's q_norm / k_norm).
fn head_norm(
    g: &mut GraphBuilder,
    name: &str,
    x: &str,
    weight: &[f32],
    hd: usize,
    eps: f32,
) -> String {
    let w = g.init_f32(name, &[hd as i64], weight);
    let heads = g.const_i64(&[0, 0, -1, hd as i64]);
    let split = g.op("Reshape", &[x, &heads], &[]);
    let normed = simplified_norm(g, &split, &w, eps);
    let flat = g.const_i64(&[0, 0, -1]);
    g.op("Reshape", &[&normed, &flat], &[])
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

/// The gate and up projections: one MatMul over their stacked rows, split in two
/// (fewer, larger kernels), unless either is factorised.
fn gate_up(
    g: &mut GraphBuilder,
    cx: &mut Ctx,
    p: &str,
    h: &str,
    layer: &crate::model::Layer,
) -> (String, String) {
    let dense = |l: &Linear| matches!(l, Linear::Dense { .. });
    if !(dense(&layer.gate) && dense(&layer.up)) {
        let gate = cx.linear_keyed(g, &format!("{p}.gate"), h, &layer.gate, 3);
        let up = cx.linear_keyed(g, &format!("{p}.up"), h, &layer.up, 3);
        return (gate, up);
    }
    let both = stack_linears(&[&layer.gate, &layer.up]);
    let native = cx.native_stack(&[
        (&format!("{p}.gate"), &layer.gate),
        (&format!("{p}.up"), &layer.up),
    ]);
    let y = cx.linear(g, &format!("{p}.gate_up"), h, &both, native, 3);
    let sizes = g.const_i64(&[
        layer.gate.out_features() as i64,
        layer.up.out_features() as i64,
    ]);
    let gate = g.fresh(&format!("{p}.gate"));
    let up = g.fresh(&format!("{p}.up"));
    g.node(
        "Split",
        "",
        &[&y, &sizes],
        &[&gate, &up],
        &[("axis", Attr::Int(-1))],
    );
    (gate, up)
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

/// What the projections of one graph are emitted with.
struct Ctx<'a> {
    fmt: WeightFormat,
    /// The file's own blocks (native formats only).
    native: Option<&'a NativeWeights>,
    /// Block sums already computed, by input name (shared by projections of one input).
    sums: HashMap<String, String>,
}

impl Ctx<'_> {
    /// The file's blocks for `key`, if they still hold exactly `m`.
    fn native_for(&self, key: &str, m: &Matrix) -> Option<Native> {
        self.native?.get(key).filter(|n| n.matches(m)).cloned()
    }

    fn native_dense(&self, key: &str, lin: &Linear) -> Option<Native> {
        match lin {
            Linear::Dense { w, .. } => self.native_for(key, w),
            Linear::LowRank { .. } => None,
        }
    }

    /// Row-stacked blocks of several projections, when all have blocks of one kind.
    fn native_stack(&self, parts: &[(&str, &Linear)]) -> Option<Native> {
        let blocks = parts
            .iter()
            .map(|(k, l)| self.native_dense(k, l))
            .collect::<Option<Vec<_>>>()?;
        Native::stack(&blocks.iter().collect::<Vec<_>>())
    }

    /// [`Ctx::linear`] with the projection's own blocks looked up by its name.
    fn linear_keyed(
        &mut self,
        g: &mut GraphBuilder,
        name: &str,
        x: &str,
        lin: &Linear,
        rank: usize,
    ) -> String {
        let native = self.native_dense(name, lin);
        self.linear(g, name, x, lin, native, rank)
    }

    /// `y = x Wᵀ (+ b)` in the chosen format (from `native` blocks when given);
    /// factorised weights become two MatMuls. `rank` is `x`'s rank.
    fn linear(
        &mut self,
        g: &mut GraphBuilder,
        name: &str,
        x: &str,
        lin: &Linear,
        native: Option<Native>,
        rank: usize,
    ) -> String {
        let fmt = self.fmt;
        let y = match (native, lin) {
            (Some(Native::Q4(b)), _) => self.matmul_q4(g, name, x, &b, rank),
            (Some(Native::Q8(b)), _) => {
                let q = quant::Q8::from_native(&b);
                matmul_q8(g, name, x, &q, fmt)
            }
            (None, Linear::Dense { w, .. }) => matmul(g, name, x, w, fmt),
            (None, Linear::LowRank { u, v, .. }) => {
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

    /// A file's 4-bit blocks `w = s·q + m`: MatMulNBits on the codes with the
    /// default zero point 8 computes `Σ s·(q − 8)·x`; the rest, `Σ (m + 8s)·x`
    /// over each block, is the block sums of `x` times an f32 `[K/32, N]` matrix
    /// (left out when zero, as for Q4_0).
    fn matmul_q4(
        &mut self,
        g: &mut GraphBuilder,
        name: &str,
        x: &str,
        b: &Blocks4,
        rank: usize,
    ) -> String {
        let (n, kb) = (b.rows, b.blocks_per_row());
        let blob = g.init_raw(
            &format!("{name}.n4.blob"),
            DType::U8,
            &[n as i64, kb as i64, quant::BLOCK as i64 / 2],
            b.codes.clone(),
        );
        let scales = g.init_f32(
            &format!("{name}.n4.scales"),
            &[n as i64, kb as i64],
            &b.scales,
        );
        let out = g.fresh(&format!("{name}_out"));
        let y = matmul_nbits(g, x, &blob, &scales, None, (n, b.cols), 4, self.fmt, &out);
        // Offsets transposed to [K/32, N] for a plain MatMul.
        let mut offsets = vec![0f32; kb * n];
        for r in 0..n {
            for k in 0..kb {
                let i = r * kb + k;
                offsets[k * n + r] = b.mins[i] + 8.0 * b.scales[i];
            }
        }
        if offsets.iter().all(|v| *v == 0.0) {
            return y;
        }
        let offsets = g.init_f32(
            &format!("{name}.n4.offsets"),
            &[kb as i64, n as i64],
            &offsets,
        );
        let sums = self.block_sums(g, x, b.cols, rank);
        let extra = g.op("MatMul", &[&sums, &offsets], &[]);
        g.op("Add", &[&y, &extra], &[])
    }

    /// Sums of `x` over each block of 32 along its last axis (`[.., K/32]`).
    fn block_sums(&mut self, g: &mut GraphBuilder, x: &str, k: usize, rank: usize) -> String {
        if let Some(s) = self.sums.get(x) {
            return s.clone();
        }
        let mut shape = vec![0i64; rank - 1];
        shape.extend([(k / quant::BLOCK) as i64, quant::BLOCK as i64]);
        let shape = g.const_i64(&shape);
        let blocks = g.op("Reshape", &[x, &shape], &[]);
        let axes = g.const_i64(&[-1]);
        let sums = g.op(
            "ReduceSum",
            &[&blocks, &axes],
            &[("keepdims", Attr::Int(0))],
        );
        self.sums.insert(x.to_string(), sums.clone());
        sums
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
        WeightFormat::Int8 | WeightFormat::Q4 | WeightFormat::Q4Exact => {
            let q = quant::quantize8(&w.data, w.rows, w.cols);
            matmul_q8(g, name, x, &q, fmt)
        }
        WeightFormat::Int4 | WeightFormat::Int4Exact | WeightFormat::Int4All => {
            let q = quant::quantize(&w.data, w.rows, w.cols);
            let (blob, scales, zp) = q4_inits(g, name, &q);
            let out = g.fresh(&format!("{name}_out"));
            matmul_nbits(g, x, &blob, &scales, Some(&zp), (q.n, q.k), 4, fmt, &out)
        }
    }
}

fn matmul_q8(
    g: &mut GraphBuilder,
    name: &str,
    x: &str,
    q: &quant::Q8,
    fmt: WeightFormat,
) -> String {
    let (blob, scales, zp) = q8_inits(g, name, q);
    let blob3 = g.const_i64(&[q.n as i64, q.blocks_per_row() as i64, quant::BLOCK as i64]);
    let blob_r = g.op("Reshape", &[&blob, &blob3], &[]);
    let out = g.fresh(&format!("{name}_out"));
    matmul_nbits(g, x, &blob_r, &scales, Some(&zp), (q.n, q.k), 8, fmt, &out)
}

/// `MatMulNBits` over a `[N, K]` weight stored in `bits`-bit blocks (no zero
/// points: the default, 8 for 4 bits).
#[allow(clippy::too_many_arguments)]
fn matmul_nbits(
    g: &mut GraphBuilder,
    x: &str,
    blob: &str,
    scales: &str,
    zp: Option<&str>,
    (n, k): (usize, usize),
    bits: i64,
    fmt: WeightFormat,
    out: &str,
) -> String {
    let mut inputs = vec![x, blob, scales];
    inputs.extend(zp);
    g.node(
        "MatMulNBits",
        MS_DOMAIN,
        &inputs,
        &[out],
        &[
            ("K", Attr::Int(k as i64)),
            ("N", Attr::Int(n as i64)),
            ("bits", Attr::Int(bits)),
            ("block_size", Attr::Int(quant::BLOCK as i64)),
            ("accuracy_level", Attr::Int(fmt.accuracy_level())),
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
