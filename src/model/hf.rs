//! Hugging Face folder import: `config.json` (llama, qwen2), `*.safetensors`
//! (single or sharded through `model.safetensors.index.json`; F32/F16/BF16),
//! `tokenizer.json`, `tokenizer_config.json` (chat template, special tokens)
//! and `generation_config.json` (eos ids). HF checkpoints already use the
//! rotate_half Q/K layout, so no permutation is needed.

use crate::error::{Error, Result};
use crate::model::chat::ChatTemplate;
use crate::model::tokenizer::Tokenizer;
use crate::model::weights::{Arch, Layer, Linear, Matrix, Model, ModelConfig, RopeScaling};
use half::{bf16, f16};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

fn read_json(path: &Path) -> Result<Json> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path, format!("invalid JSON: {e}")))
}

fn read_json_opt(path: &Path) -> Result<Option<Json>> {
    if path.exists() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Ids from a field that is an integer or a list of integers.
fn ids(v: Option<&Json>) -> Vec<u32> {
    match v {
        Some(Json::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|x| x as u32)
            .collect(),
        _ => Vec::new(),
    }
}

/// The `config.json` of a decoder folder as a [`ModelConfig`].
pub fn read_config(dir: &Path) -> Result<ModelConfig> {
    let path = dir.join("config.json");
    let c = read_json(&path)?;
    let model_type = c.get("model_type").and_then(Json::as_str).unwrap_or("");
    let arch = match model_type {
        "llama" => Arch::Llama,
        "qwen2" => Arch::Qwen2,
        "qwen3" => Arch::Qwen3,
        other => {
            return Err(Error::Unsupported(format!(
                "{}: model_type {other:?} is not a supported decoder (llama — including Llama 3.x —, qwen2 and qwen3 are)",
                path.display()
            )));
        }
    };
    let num = |key: &str| -> Result<usize> {
        c.get(key)
            .and_then(Json::as_u64)
            .map(|v| v as usize)
            .ok_or_else(|| Error::file(&path, format!("{key} is missing or not an integer")))
    };
    let hidden = num("hidden_size")?;
    let n_heads = num("num_attention_heads")?;
    let n_kv_heads = c
        .get("num_key_value_heads")
        .and_then(Json::as_u64)
        .map_or(n_heads, |v| v as usize);
    if n_heads == 0 || n_kv_heads == 0 || !n_heads.is_multiple_of(n_kv_heads) {
        return Err(Error::file(
            &path,
            format!("invalid head counts: {n_heads} attention heads, {n_kv_heads} key/value heads"),
        ));
    }
    let head_dim = c
        .get("head_dim")
        .and_then(Json::as_u64)
        .map_or(hidden / n_heads, |v| v as usize);
    let rope_scaling = match c.get("rope_scaling") {
        None | Some(Json::Null) => None,
        Some(rs) => {
            let kind = rs
                .get("rope_type")
                .or_else(|| rs.get("type"))
                .and_then(Json::as_str)
                .unwrap_or("");
            if kind == "default" {
                None
            } else if kind != "llama3" {
                return Err(Error::Unsupported(format!(
                    "{}: rope_scaling type {kind:?} is not supported (llama3 is)",
                    path.display()
                )));
            } else {
                let f = |k: &str, d: f64| rs.get(k).and_then(Json::as_f64).unwrap_or(d) as f32;
                Some(RopeScaling {
                    factor: f("factor", 8.0),
                    low_freq_factor: f("low_freq_factor", 1.0),
                    high_freq_factor: f("high_freq_factor", 4.0),
                    original_max_position: rs
                        .get("original_max_position_embeddings")
                        .and_then(Json::as_u64)
                        .unwrap_or(8192) as usize,
                })
            }
        }
    };
    let gen_cfg = read_json_opt(&dir.join("generation_config.json"))?;
    let mut eos = gen_cfg
        .as_ref()
        .map(|g| ids(g.get("eos_token_id")))
        .unwrap_or_default();
    for id in ids(c.get("eos_token_id")) {
        if !eos.contains(&id) {
            eos.push(id);
        }
    }
    let bos = ids(c.get("bos_token_id")).first().copied().or_else(|| {
        gen_cfg
            .as_ref()
            .and_then(|g| ids(g.get("bos_token_id")).first().copied())
    });
    Ok(ModelConfig {
        arch,
        vocab_size: num("vocab_size")?,
        hidden,
        intermediate: num("intermediate_size")?,
        n_layers: num("num_hidden_layers")?,
        n_heads,
        n_kv_heads,
        head_dim,
        rope_theta: c
            .get("rope_theta")
            .and_then(Json::as_f64)
            .unwrap_or(10000.0) as f32,
        rope_scaling,
        rms_eps: c.get("rms_norm_eps").and_then(Json::as_f64).unwrap_or(1e-6) as f32,
        max_position: c
            .get("max_position_embeddings")
            .and_then(Json::as_u64)
            .unwrap_or(2048) as usize,
        tie_embeddings: c
            .get("tie_word_embeddings")
            .and_then(Json::as_bool)
            .unwrap_or(false),
        bos_token_id: bos,
        eos_token_ids: eos,
        pad_token_id: ids(c.get("pad_token_id")).first().copied(),
    })
}

/// Memory-mapped safetensors shards and which shard holds each tensor.
pub struct SafetensorsSet {
    shards: Vec<(PathBuf, Mmap)>,
    index: BTreeMap<String, usize>,
}

impl SafetensorsSet {
    /// Opens `model.safetensors`, or the shards `model.safetensors.index.json` lists,
    /// or every `*.safetensors` in the folder.
    pub fn open(dir: &Path) -> Result<Self> {
        let index_path = dir.join("model.safetensors.index.json");
        let mut files: Vec<PathBuf> = if index_path.exists() {
            let idx = read_json(&index_path)?;
            let map = idx
                .get("weight_map")
                .and_then(Json::as_object)
                .ok_or_else(|| {
                    Error::file(
                        &index_path,
                        "weight_map is missing; the index is not a safetensors index",
                    )
                })?;
            let mut f: Vec<PathBuf> = map
                .values()
                .filter_map(Json::as_str)
                .map(|s| dir.join(s))
                .collect();
            f.sort();
            f.dedup();
            f
        } else if dir.join("model.safetensors").exists() {
            vec![dir.join("model.safetensors")]
        } else {
            let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            let mut f: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                .collect();
            f.sort();
            f
        };
        if files.is_empty() {
            return Err(Error::file(
                dir,
                "no *.safetensors weights in this folder; download the model's safetensors files",
            ));
        }
        files.dedup();
        let mut shards = Vec::new();
        let mut index = BTreeMap::new();
        for (i, path) in files.into_iter().enumerate() {
            let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
            // SAFETY: read-only map; see gguf.rs.
            let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
            let st = SafeTensors::deserialize(&mmap).map_err(|e| {
                Error::file(
                    &path,
                    format!("not a valid safetensors file ({e}); it is truncated or corrupt — re-download it"),
                )
            })?;
            for name in st.names() {
                index.insert(name.to_string(), i);
            }
            shards.push((path, mmap));
        }
        Ok(SafetensorsSet { shards, index })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// A tensor as f32 with its shape.
    pub fn get(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let &i = self.index.get(name).ok_or_else(|| {
            Error::Other(format!(
                "tensor {name:?} is missing from the safetensors weights"
            ))
        })?;
        let (path, mmap) = &self.shards[i];
        let st = SafeTensors::deserialize(mmap)
            .map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
        let t = st
            .tensor(name)
            .map_err(|e| Error::file(path, format!("tensor {name:?}: {e}")))?;
        let data = tensor_f32(path, name, &t)?;
        Ok((t.shape().to_vec(), data))
    }

    /// A 2-D tensor as a matrix of the expected shape.
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        let (shape, data) = self.get(name)?;
        if shape != [rows, cols] {
            return Err(Error::Other(format!(
                "tensor {name:?} has shape {shape:?}, expected [{rows}, {cols}] from config.json"
            )));
        }
        Ok(Matrix::new(rows, cols, data))
    }

    pub fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let (shape, data) = self.get(name)?;
        if shape != [len] {
            return Err(Error::Other(format!(
                "tensor {name:?} has shape {shape:?}, expected [{len}]"
            )));
        }
        Ok(data)
    }

    /// Digest over shard headers and sizes (cheap, stable).
    pub fn digest(&self, config: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(config);
        for (_, m) in &self.shards {
            h.update((m.len() as u64).to_le_bytes());
            let n = m
                .get(..8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
                .unwrap_or(0);
            h.update(&m[..(8 + n).min(m.len())]);
            // A sample of the data so re-trained weights with the same layout differ.
            let mut pos = 8 + n;
            while pos < m.len() {
                h.update(&m[pos..(pos + 4096).min(m.len())]);
                pos += 4 << 20;
            }
        }
        hex::encode(h.finalize())
    }
}

/// Loads the decoder weights of a HF folder.
pub fn load_model(dir: &Path) -> Result<Model> {
    // A folder written by `mscr transform` carries its per-layer shapes.
    if dir.join(super::persist::RECORD_FILE).is_file() {
        return super::persist::load_transformed(dir);
    }
    let config = read_config(dir)?;
    let st = SafetensorsSet::open(dir)?;
    let ctx = |e: Error| match e {
        Error::Other(m) => Error::file(dir, m),
        e => e,
    };
    let h = config.hidden;
    let q_out = config.n_heads * config.head_dim;
    let kv_out = config.n_kv_heads * config.head_dim;
    let bias = |name: &str, len: usize| -> Result<Option<Vec<f32>>> {
        if st.contains(name) {
            st.vector(name, len).map(Some)
        } else {
            Ok(None)
        }
    };
    let linear = |p: &str, rows: usize, cols: usize| -> Result<Linear> {
        Ok(Linear::Dense {
            w: st.matrix(&format!("{p}.weight"), rows, cols)?,
            bias: bias(&format!("{p}.bias"), rows)?,
        })
    };
    // Qwen3's per-head query/key norms.
    let qk_norm = |name: &str| -> Result<Option<Vec<f32>>> {
        if config.arch == Arch::Qwen3 {
            Ok(Some(st.vector(name, config.head_dim)?))
        } else {
            Ok(None)
        }
    };
    let build = || -> Result<Model> {
        let embed = st.matrix("model.embed_tokens.weight", config.vocab_size, h)?;
        let mut layers = Vec::with_capacity(config.n_layers);
        for i in 0..config.n_layers {
            let p = format!("model.layers.{i}");
            layers.push(Layer {
                n_heads: config.n_heads,
                n_kv_heads: config.n_kv_heads,
                attn_norm: st.vector(&format!("{p}.input_layernorm.weight"), h)?,
                q: linear(&format!("{p}.self_attn.q_proj"), q_out, h)?,
                k: linear(&format!("{p}.self_attn.k_proj"), kv_out, h)?,
                v: linear(&format!("{p}.self_attn.v_proj"), kv_out, h)?,
                o: linear(&format!("{p}.self_attn.o_proj"), h, q_out)?,
                q_norm: qk_norm(&format!("{p}.self_attn.q_norm.weight"))?,
                k_norm: qk_norm(&format!("{p}.self_attn.k_norm.weight"))?,
                mlp_norm: st.vector(&format!("{p}.post_attention_layernorm.weight"), h)?,
                gate: linear(&format!("{p}.mlp.gate_proj"), config.intermediate, h)?,
                up: linear(&format!("{p}.mlp.up_proj"), config.intermediate, h)?,
                down: linear(&format!("{p}.mlp.down_proj"), h, config.intermediate)?,
            });
        }
        let lm_head = if config.tie_embeddings || !st.contains("lm_head.weight") {
            None
        } else {
            Some(st.matrix("lm_head.weight", config.vocab_size, h)?)
        };
        let cfg_bytes = std::fs::read(dir.join("config.json")).unwrap_or_default();
        Ok(Model {
            embed,
            layers,
            final_norm: st.vector("model.norm.weight", h)?,
            source_digest: st.digest(&cfg_bytes),
            lm_head,
            transforms: Vec::new(),
            adapters: Default::default(),
            config: ModelConfig {
                tie_embeddings: config.tie_embeddings || !st.contains("lm_head.weight"),
                ..config.clone()
            },
        })
    };
    build().map_err(ctx)
}

/// A special token given as a string or as `{"content": ...}`.
fn token_text(v: Option<&Json>) -> Option<String> {
    match v? {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content").and_then(Json::as_str).map(str::to_string),
        _ => None,
    }
}

/// The tokenizer of a HF folder, with bos/eos from the config files.
pub fn load_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let path = dir.join("tokenizer.json");
    if !path.exists() {
        return Err(Error::file(
            dir,
            "tokenizer.json is missing; mscr needs the fast tokenizer file of the model",
        ));
    }
    let tc = read_json_opt(&dir.join("tokenizer_config.json"))?;
    let cfg = read_json_opt(&dir.join("config.json"))?;
    let gen_cfg = read_json_opt(&dir.join("generation_config.json"))?;
    let probe = Tokenizer::from_json_file(&path, None, Vec::new())?;
    let lookup = |key: &str| {
        tc.as_ref()
            .and_then(|t| token_text(t.get(key)))
            .and_then(|s| probe.token_to_id(&s))
    };
    let mut eos = gen_cfg
        .as_ref()
        .map(|g| ids(g.get("eos_token_id")))
        .unwrap_or_default();
    for id in cfg
        .as_ref()
        .map(|c| ids(c.get("eos_token_id")))
        .unwrap_or_default()
        .into_iter()
        .chain(lookup("eos_token"))
    {
        if !eos.contains(&id) {
            eos.push(id);
        }
    }
    let bos = lookup("bos_token").or_else(|| {
        cfg.as_ref()
            .and_then(|c| ids(c.get("bos_token_id")).first().copied())
    });
    Tokenizer::from_json_file(&path, bos, eos)
}

/// The chat template of a HF folder (`tokenizer_config.json`, or a
/// `chat_template.jinja` / `chat_template.json` beside it), else ChatML.
pub fn load_chat_template(dir: &Path, tok: &Tokenizer) -> Result<ChatTemplate> {
    let tc_path = dir.join("tokenizer_config.json");
    let tc = read_json_opt(&tc_path)?;
    let bos = tc
        .as_ref()
        .and_then(|t| token_text(t.get("bos_token")))
        .unwrap_or_default();
    let eos = tc
        .as_ref()
        .and_then(|t| token_text(t.get("eos_token")))
        .or_else(|| tok.eos_ids().first().and_then(|&i| tok.id_to_token(i)))
        .unwrap_or_default();
    let from_field = |v: &Json| -> Option<String> {
        match v {
            Json::String(s) => Some(s.clone()),
            // A list of named templates: take "default".
            Json::Array(a) => a
                .iter()
                .find(|t| t.get("name").and_then(Json::as_str) == Some("default"))
                .or_else(|| a.first())
                .and_then(|t| t.get("template"))
                .and_then(Json::as_str)
                .map(str::to_string),
            _ => None,
        }
    };
    let mut source = tc
        .as_ref()
        .and_then(|t| t.get("chat_template"))
        .and_then(from_field);
    if source.is_none() {
        let jinja = dir.join("chat_template.jinja");
        if jinja.exists() {
            source = Some(std::fs::read_to_string(&jinja).map_err(|e| Error::io(&jinja, e))?);
        } else if let Some(j) = read_json_opt(&dir.join("chat_template.json"))? {
            source = j.get("chat_template").and_then(from_field);
        }
    }
    match source {
        Some(s) => {
            ChatTemplate::new(&s, &bos, &eos).map_err(|e| Error::file(&tc_path, e.to_string()))
        }
        None => Ok(ChatTemplate::chatml()),
    }
}

/// Loads a HF decoder folder: weights, tokenizer and chat template.
pub fn load_hf(dir: &Path) -> Result<(Model, Tokenizer, ChatTemplate)> {
    let mut model = load_model(dir)?;
    let tok = load_tokenizer(dir)?;
    for &id in tok.eos_ids() {
        if !model.config.eos_token_ids.contains(&id) {
            model.config.eos_token_ids.push(id);
        }
    }
    if model.config.bos_token_id.is_none() {
        model.config.bos_token_id = tok.bos_id();
    }
    let chat = load_chat_template(dir, &tok)?;
    Ok((model, tok, chat))
}

/// The embedding matrix only (`model.embed_tokens.weight`).
pub fn load_embeddings(dir: &Path) -> Result<Matrix> {
    let st = SafetensorsSet::open(dir)?;
    let name = st
        .names()
        .find(|n| n.ends_with("embed_tokens.weight") || n.ends_with("word_embeddings.weight"))
        .map(str::to_string)
        .ok_or_else(|| Error::file(dir, "no token embedding tensor in the safetensors weights"))?;
    let (shape, data) = st.get(&name)?;
    if shape.len() != 2 {
        return Err(Error::file(
            dir,
            format!("{name} has shape {shape:?}, expected 2-D"),
        ));
    }
    Ok(Matrix::new(shape[0], shape[1], data))
}

/// Writes `model` as a Hugging Face folder (config.json, safetensors split
/// into `shards` files with an index when more than one, tokenizer.json,
/// tokenizer_config.json, generation_config.json). `dtype` is F32, F16 or BF16.
/// Used by tests and benchmarks to make HF-format models.
pub fn save_hf(
    dir: &Path,
    model: &Model,
    tok: &Tokenizer,
    chat_template: Option<&str>,
    dtype: Dtype,
    shards: usize,
) -> Result<()> {
    use serde_json::json;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let c = &model.config;
    let write = |name: &str, v: &Json| -> Result<()> {
        let p = dir.join(name);
        let text = serde_json::to_string_pretty(v).map_err(|e| Error::Other(e.to_string()))?;
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
    };
    let mut config = json!({
        "architectures": [match c.arch { Arch::Llama => "LlamaForCausalLM", Arch::Qwen2 => "Qwen2ForCausalLM", Arch::Qwen3 => "Qwen3ForCausalLM" }],
        "model_type": c.arch.name(),
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden,
        "intermediate_size": c.intermediate,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "head_dim": c.head_dim,
        "rope_theta": c.rope_theta,
        "rms_norm_eps": c.rms_eps,
        "max_position_embeddings": c.max_position,
        "tie_word_embeddings": model.lm_head.is_none(),
        "bos_token_id": c.bos_token_id,
        "eos_token_id": c.eos_token_ids.first(),
        "torch_dtype": match dtype { Dtype::F16 => "float16", Dtype::BF16 => "bfloat16", _ => "float32" },
    });
    if let Some(rs) = &c.rope_scaling {
        config["rope_scaling"] = json!({
            "rope_type": "llama3", "factor": rs.factor, "low_freq_factor": rs.low_freq_factor,
            "high_freq_factor": rs.high_freq_factor,
            "original_max_position_embeddings": rs.original_max_position,
        });
    }
    write("config.json", &config)?;
    write(
        "generation_config.json",
        &json!({"eos_token_id": c.eos_token_ids, "bos_token_id": c.bos_token_id}),
    )?;
    let name_of = |id: Option<u32>| id.and_then(|i| tok.id_to_token(i));
    let mut tc = json!({
        "bos_token": name_of(c.bos_token_id),
        "eos_token": name_of(c.eos_token_ids.first().copied()),
    });
    if let Some(t) = chat_template {
        tc["chat_template"] = json!(t);
    }
    write("tokenizer_config.json", &tc)?;
    let tj = tok
        .inner()
        .to_string(false)
        .map_err(|e| Error::Other(e.to_string()))?;
    std::fs::write(dir.join("tokenizer.json"), tj)
        .map_err(|e| Error::io(dir.join("tokenizer.json"), e))?;

    // Tensors as (name, shape, f32 data).
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mat = |m: &Matrix| (vec![m.rows, m.cols], m.data.clone());
    let (s, d) = mat(&model.embed);
    tensors.push(("model.embed_tokens.weight".into(), s, d));
    for (i, l) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        tensors.push((
            format!("{p}.input_layernorm.weight"),
            vec![l.attn_norm.len()],
            l.attn_norm.clone(),
        ));
        for (n, v) in [("q_norm", &l.q_norm), ("k_norm", &l.k_norm)] {
            if let Some(v) = v {
                tensors.push((
                    format!("{p}.self_attn.{n}.weight"),
                    vec![v.len()],
                    v.clone(),
                ));
            }
        }
        tensors.push((
            format!("{p}.post_attention_layernorm.weight"),
            vec![l.mlp_norm.len()],
            l.mlp_norm.clone(),
        ));
        for (n, lin) in [
            ("self_attn.q_proj", &l.q),
            ("self_attn.k_proj", &l.k),
            ("self_attn.v_proj", &l.v),
            ("self_attn.o_proj", &l.o),
            ("mlp.gate_proj", &l.gate),
            ("mlp.up_proj", &l.up),
            ("mlp.down_proj", &l.down),
        ] {
            let (s, d) = mat(&lin.to_dense());
            tensors.push((format!("{p}.{n}.weight"), s, d));
            if let Some(b) = lin.bias() {
                tensors.push((format!("{p}.{n}.bias"), vec![b.len()], b.clone()));
            }
        }
    }
    tensors.push((
        "model.norm.weight".into(),
        vec![model.final_norm.len()],
        model.final_norm.clone(),
    ));
    if let Some(h) = &model.lm_head {
        let (s, d) = mat(h);
        tensors.push(("lm_head.weight".into(), s, d));
    }
    let encode = |d: &[f32]| -> Vec<u8> {
        match dtype {
            Dtype::F16 => d
                .iter()
                .flat_map(|v| f16::from_f32(*v).to_le_bytes())
                .collect(),
            Dtype::BF16 => d
                .iter()
                .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
                .collect(),
            _ => d.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    };
    let dtype = if matches!(dtype, Dtype::F16 | Dtype::BF16) {
        dtype
    } else {
        Dtype::F32
    };
    let shards = shards.clamp(1, tensors.len().max(1));
    let per = tensors.len().div_ceil(shards);
    let mut weight_map = serde_json::Map::new();
    for (k, chunk) in tensors.chunks(per).enumerate() {
        let file = if shards == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{:05}.safetensors", k + 1, shards)
        };
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = chunk
            .iter()
            .map(|(n, s, d)| (n.clone(), s.clone(), encode(d)))
            .collect();
        let views = bytes
            .iter()
            .map(|(n, s, b)| {
                safetensors::tensor::TensorView::new(dtype, s.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| Error::Other(format!("tensor {n}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let blob = safetensors::serialize(views, None).map_err(|e| Error::Other(e.to_string()))?;
        let p = dir.join(&file);
        std::fs::write(&p, blob).map_err(|e| Error::io(&p, e))?;
        for (n, _, _) in chunk {
            weight_map.insert(n.clone(), json!(file));
        }
    }
    if shards > 1 {
        write(
            "model.safetensors.index.json",
            &json!({"metadata": {}, "weight_map": weight_map}),
        )?;
    }
    Ok(())
}

/// A safetensors tensor's values as f32 (F32, F16 and BF16 stored).
pub fn tensor_f32(
    path: &Path,
    name: &str,
    t: &safetensors::tensor::TensorView,
) -> Result<Vec<f32>> {
    let b = t.data();
    Ok(match t.dtype() {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(Error::file(
                path,
                format!("tensor {name:?} has dtype {other:?}; F32, F16 and BF16 are supported"),
            ));
        }
    })
}
