//! Saving a transformed model as a Hugging Face style folder and reading it back.
//!
//! Layout (`DIR/`):
//! - `config.json`: the usual Llama/Qwen2 keys plus an `"mscr"` object with
//!   `format_version`, `source_digest`, `transforms` (the cache-key strings) and
//!   `layers`: per layer `num_attention_heads`, `num_key_value_heads` and
//!   `ranks` (projection → rank for factorised ones).
//! - `model.safetensors` (f32): Hugging Face tensor names
//!   (`model.layers.{i}.self_attn.q_proj.weight`, `mlp.down_proj.weight`, ...). A
//!   factorised projection `W ≈ U V` is stored as `...q_proj.weight_u` `[out, r]`
//!   and `...q_proj.weight_v` `[r, in]` instead of `...q_proj.weight`.
//! - `record.json`: the list of transform records that produced it (written
//!   and read by `crate::transform`, which owns their type).
//! - tokenizer files copied from the source model by the caller.

use super::{Arch, Layer, Linear, Matrix, Model, ModelConfig, RopeScaling};
use crate::error::{Error, Result};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// The file that marks a folder as a transformed model.
pub const RECORD_FILE: &str = "record.json";
const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MscrSection {
    format_version: u32,
    source_digest: String,
    transforms: Vec<String>,
    layers: Vec<LayerShape>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerShape {
    num_attention_heads: usize,
    num_key_value_heads: usize,
    #[serde(default)]
    ranks: BTreeMap<String, usize>,
}

const PROJ: [(&str, &str); 7] = [
    ("q", "self_attn.q_proj"),
    ("k", "self_attn.k_proj"),
    ("v", "self_attn.v_proj"),
    ("o", "self_attn.o_proj"),
    ("gate", "mlp.gate_proj"),
    ("up", "mlp.up_proj"),
    ("down", "mlp.down_proj"),
];

fn proj<'a>(l: &'a Layer, name: &str) -> &'a Linear {
    match name {
        "q" => &l.q,
        "k" => &l.k,
        "v" => &l.v,
        "o" => &l.o,
        "gate" => &l.gate,
        "up" => &l.up,
        _ => &l.down,
    }
}

/// Writes `model` (and its records) into `dir`, plus `extra_files`
/// (name, bytes) such as the source model's tokenizer.json.
pub fn save_transformed<R: Serialize>(
    model: &Model,
    records: &[R],
    extra_files: &[(String, Vec<u8>)],
    dir: &Path,
) -> Result<()> {
    if !model.adapters.is_empty() {
        // The folder format holds weights only: the branches would be lost.
        return Err(Error::Unsupported(
            "this model carries adapter branches the graph computes (toplora, loreft, brep), which \
             a saved model folder cannot hold; save the base model and apply the adapter \
             transform when the model is loaded (--transform)"
                .into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let c = &model.config;
    let layers: Vec<LayerShape> = model
        .layers
        .iter()
        .map(|l| LayerShape {
            num_attention_heads: l.n_heads,
            num_key_value_heads: l.n_kv_heads,
            ranks: PROJ
                .iter()
                .filter_map(|(n, _)| match proj(l, n) {
                    Linear::LowRank { u, .. } => Some((n.to_string(), u.cols)),
                    Linear::Dense { .. } => None,
                })
                .collect(),
        })
        .collect();
    let mscr = MscrSection {
        format_version: FORMAT_VERSION,
        source_digest: model.source_digest.clone(),
        transforms: model.transforms.clone(),
        layers,
    };
    let (arch_name, model_type) = match c.arch {
        Arch::Llama => ("LlamaForCausalLM", "llama"),
        Arch::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
        Arch::Qwen3 => ("Qwen3ForCausalLM", "qwen3"),
    };
    let config = json!({
        "architectures": [arch_name],
        "model_type": model_type,
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden,
        "intermediate_size": c.intermediate,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "head_dim": c.head_dim,
        "rope_theta": c.rope_theta,
        "rope_scaling": c.rope_scaling.as_ref().map(|s| json!({
            "rope_type": "llama3",
            "factor": s.factor,
            "low_freq_factor": s.low_freq_factor,
            "high_freq_factor": s.high_freq_factor,
            "original_max_position_embeddings": s.original_max_position,
        })),
        "rms_norm_eps": c.rms_eps,
        "max_position_embeddings": c.max_position,
        "tie_word_embeddings": c.tie_embeddings,
        "bos_token_id": c.bos_token_id,
        "eos_token_id": c.eos_token_ids,
        "pad_token_id": c.pad_token_id,
        "torch_dtype": "float32",
        "mscr": mscr,
    });
    write(
        &dir.join("config.json"),
        &serde_json::to_vec_pretty(&config).map_err(|e| Error::Other(e.to_string()))?,
    )?;

    // Tensors as little-endian f32 bytes.
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut put = |name: String, shape: Vec<usize>, data: &[f32]| {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((name, shape, bytes));
    };
    let mat = |m: &Matrix| vec![m.rows, m.cols];
    put(
        "model.embed_tokens.weight".into(),
        mat(&model.embed),
        &model.embed.data,
    );
    put(
        "model.norm.weight".into(),
        vec![model.final_norm.len()],
        &model.final_norm,
    );
    if let Some(h) = &model.lm_head {
        put("lm_head.weight".into(), mat(h), &h.data);
    }
    for (i, l) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        put(
            format!("{p}.input_layernorm.weight"),
            vec![l.attn_norm.len()],
            &l.attn_norm,
        );
        put(
            format!("{p}.post_attention_layernorm.weight"),
            vec![l.mlp_norm.len()],
            &l.mlp_norm,
        );
        for (n, v) in [("q_norm", &l.q_norm), ("k_norm", &l.k_norm)] {
            if let Some(v) = v {
                put(format!("{p}.self_attn.{n}.weight"), vec![v.len()], v);
            }
        }
        for (n, hf) in PROJ {
            let lin = proj(l, n);
            match lin {
                Linear::Dense { w, .. } => put(format!("{p}.{hf}.weight"), mat(w), &w.data),
                Linear::LowRank { u, v, .. } => {
                    put(format!("{p}.{hf}.weight_u"), mat(u), &u.data);
                    put(format!("{p}.{hf}.weight_v"), mat(v), &v.data);
                }
            }
            if let Some(b) = lin.bias() {
                put(format!("{p}.{hf}.bias"), vec![b.len()], b);
            }
        }
    }
    let views = tensors
        .iter()
        .map(|(n, s, b)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Other(format!("safetensors: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let st = dir.join("model.safetensors");
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(meta), &st)
        .map_err(|e| Error::file(&st, format!("cannot write: {e}")))?;

    write(
        &dir.join(RECORD_FILE),
        &serde_json::to_vec_pretty(records).map_err(|e| Error::Other(e.to_string()))?,
    )?;
    for (name, bytes) in extra_files {
        write(&dir.join(name), bytes)?;
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// Reads back a folder written by [`save_transformed`].
pub fn load_transformed(dir: &Path) -> Result<Model> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
    let cfg: Value = serde_json::from_str(&text)
        .map_err(|e| Error::file(&cfg_path, format!("not valid JSON: {e}")))?;
    let bad = |m: String| Error::file(&cfg_path, m);
    let mscr: MscrSection = serde_json::from_value(cfg.get("mscr").cloned().ok_or_else(|| {
        bad("no \"mscr\" section: this folder was not written by `mscr transform`".into())
    })?)
    .map_err(|e| bad(format!("\"mscr\" section: {e}")))?;
    if mscr.format_version != FORMAT_VERSION {
        return Err(bad(format!(
            "format_version {} is not {FORMAT_VERSION}: re-run `mscr transform` with this version",
            mscr.format_version
        )));
    }
    let num = |k: &str| -> Result<usize> {
        cfg.get(k)
            .and_then(Value::as_u64)
            .map(|v| v as usize)
            .ok_or_else(|| bad(format!("missing or non-integer \"{k}\"")))
    };
    let float = |k: &str| -> Result<f32> {
        cfg.get(k)
            .and_then(Value::as_f64)
            .map(|v| v as f32)
            .ok_or_else(|| bad(format!("missing or non-numeric \"{k}\"")))
    };
    let arch = match cfg.get("model_type").and_then(Value::as_str) {
        Some("llama") => Arch::Llama,
        Some("qwen2") => Arch::Qwen2,
        Some("qwen3") => Arch::Qwen3,
        other => {
            return Err(bad(format!(
                "model_type {other:?}: expected llama, qwen2 or qwen3"
            )));
        }
    };
    let rope_scaling = match cfg.get("rope_scaling") {
        Some(Value::Object(o)) => {
            let f = |k: &str| {
                o.get(k)
                    .and_then(Value::as_f64)
                    .ok_or_else(|| bad(format!("rope_scaling.{k} missing")))
            };
            Some(RopeScaling {
                factor: f("factor")? as f32,
                low_freq_factor: f("low_freq_factor")? as f32,
                high_freq_factor: f("high_freq_factor")? as f32,
                original_max_position: f("original_max_position_embeddings")? as usize,
            })
        }
        _ => None,
    };
    let opt_id = |k: &str| cfg.get(k).and_then(Value::as_u64).map(|v| v as u32);
    let eos: Vec<u32> = match cfg.get("eos_token_id") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_u64)
            .map(|v| v as u32)
            .collect(),
        Some(v) => v.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
        None => Vec::new(),
    };
    let config = ModelConfig {
        arch,
        vocab_size: num("vocab_size")?,
        hidden: num("hidden_size")?,
        intermediate: num("intermediate_size")?,
        n_layers: num("num_hidden_layers")?,
        n_heads: num("num_attention_heads")?,
        n_kv_heads: num("num_key_value_heads")?,
        head_dim: num("head_dim")?,
        rope_theta: float("rope_theta")?,
        rope_scaling,
        rms_eps: float("rms_norm_eps")?,
        max_position: num("max_position_embeddings")?,
        tie_embeddings: cfg
            .get("tie_word_embeddings")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        bos_token_id: opt_id("bos_token_id"),
        eos_token_ids: eos,
        pad_token_id: opt_id("pad_token_id"),
    };
    if mscr.layers.len() != config.n_layers {
        return Err(bad(format!(
            "mscr.layers has {} entries but num_hidden_layers is {}",
            mscr.layers.len(),
            config.n_layers
        )));
    }

    let st_path = dir.join("model.safetensors");
    let bytes = std::fs::read(&st_path).map_err(|e| Error::io(&st_path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::file(&st_path, format!("not a valid safetensors file: {e}")))?;
    let tensor = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let t = st.tensor(name).map_err(|_| {
            Error::file(
                &st_path,
                format!("tensor {name} is missing; re-run `mscr transform`"),
            )
        })?;
        if t.dtype() != Dtype::F32 {
            return Err(Error::file(
                &st_path,
                format!("tensor {name} is {:?}, expected F32", t.dtype()),
            ));
        }
        if t.shape() != shape {
            return Err(Error::file(
                &st_path,
                format!(
                    "tensor {name} has shape {:?}, config.json implies {shape:?}",
                    t.shape()
                ),
            ));
        }
        Ok(t.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let has = |name: &str| st.tensor(name).is_ok();
    let (h, inter, hd, vocab) = (
        config.hidden,
        config.intermediate,
        config.head_dim,
        config.vocab_size,
    );
    let embed = Matrix::new(vocab, h, tensor("model.embed_tokens.weight", &[vocab, h])?);
    let final_norm = tensor("model.norm.weight", &[h])?;
    let lm_head = if has("lm_head.weight") {
        Some(Matrix::new(
            vocab,
            h,
            tensor("lm_head.weight", &[vocab, h])?,
        ))
    } else if config.tie_embeddings {
        None
    } else {
        return Err(Error::file(
            &st_path,
            "lm_head.weight is missing and embeddings are not tied",
        ));
    };
    let mut layers = Vec::with_capacity(config.n_layers);
    for (i, shape) in mscr.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        let (nh, nkv) = (shape.num_attention_heads, shape.num_key_value_heads);
        if nkv == 0 || nh % nkv != 0 {
            return Err(bad(format!(
                "layer {i}: {nh} attention heads are not a multiple of {nkv} key/value heads"
            )));
        }
        let dims = |n: &str| -> (usize, usize) {
            match n {
                "q" => (nh * hd, h),
                "k" | "v" => (nkv * hd, h),
                "o" => (h, nh * hd),
                "gate" | "up" => (inter, h),
                _ => (h, inter),
            }
        };
        // Qwen3's per-head query/key norms.
        let head_norm = |n: &str| -> Result<Option<Vec<f32>>> {
            let name = format!("{p}.self_attn.{n}.weight");
            if config.arch == Arch::Qwen3 {
                Ok(Some(tensor(&name, &[hd])?))
            } else {
                Ok(None)
            }
        };
        let lin = |n: &str, hf: &str| -> Result<Linear> {
            let (out_f, in_f) = dims(n);
            let bias_name = format!("{p}.{hf}.bias");
            let bias = if has(&bias_name) {
                Some(tensor(&bias_name, &[out_f])?)
            } else {
                None
            };
            Ok(match shape.ranks.get(n) {
                Some(&r) => Linear::LowRank {
                    u: Matrix::new(
                        out_f,
                        r,
                        tensor(&format!("{p}.{hf}.weight_u"), &[out_f, r])?,
                    ),
                    v: Matrix::new(r, in_f, tensor(&format!("{p}.{hf}.weight_v"), &[r, in_f])?),
                    bias,
                },
                None => Linear::Dense {
                    w: Matrix::new(
                        out_f,
                        in_f,
                        tensor(&format!("{p}.{hf}.weight"), &[out_f, in_f])?,
                    ),
                    bias,
                },
            })
        };
        layers.push(Layer {
            n_heads: nh,
            n_kv_heads: nkv,
            attn_norm: tensor(&format!("{p}.input_layernorm.weight"), &[h])?,
            q: lin("q", PROJ[0].1)?,
            k: lin("k", PROJ[1].1)?,
            v: lin("v", PROJ[2].1)?,
            o: lin("o", PROJ[3].1)?,
            q_norm: head_norm("q_norm")?,
            k_norm: head_norm("k_norm")?,
            mlp_norm: tensor(&format!("{p}.post_attention_layernorm.weight"), &[h])?,
            gate: lin("gate", PROJ[4].1)?,
            up: lin("up", PROJ[5].1)?,
            down: lin("down", PROJ[6].1)?,
        });
    }
    Ok(Model {
        config,
        embed,
        layers,
        final_norm,
        lm_head,
        source_digest: mscr.source_digest,
        transforms: mscr.transforms,
        adapters: Default::default(),
    })
}

/// The records stored beside a transformed model.
pub fn load_records<R: serde::de::DeserializeOwned>(dir: &Path) -> Result<Vec<R>> {
    let p = dir.join(RECORD_FILE);
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    serde_json::from_str(&text).map_err(|e| Error::file(&p, format!("not a transform record: {e}")))
}
