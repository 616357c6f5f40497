//! GGUF writer, and tiny random-weight models for tests and benchmarks: any
//! [`Model`] can be written as a llama.cpp-style GGUF (Q/K rows permuted for
//! llama, as llama.cpp's converter does) with a small byte-level BPE tokenizer
//! and ChatML template in its metadata.

use crate::error::{Error, Result};
use crate::model::chat::CHATML;
use crate::model::gguf::{Value, permute_rows};
use crate::model::quant::{self, GgmlType};
use crate::model::weights::{Arch, Layer, Linear, Matrix, Model, ModelConfig};
use rand::{RngExt, SeedableRng};
use std::io::Write;
use std::path::Path;

const ALIGNMENT: usize = 32;

/// Collects metadata and tensors, then writes a GGUF v3 file.
#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) a metadata key.
    pub fn set(&mut self, key: &str, value: Value) {
        if let Some(slot) = self.metadata.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        } else {
            self.metadata.push((key.to_string(), value));
        }
    }

    /// Adds a tensor with ggml dims (`dims[0]` innermost), quantising `data` to `ty`.
    pub fn add_tensor(
        &mut self,
        name: &str,
        dims: &[u64],
        ty: GgmlType,
        data: &[f32],
    ) -> Result<()> {
        let n: u64 = dims.iter().product();
        if n as usize != data.len() {
            return Err(Error::Other(format!(
                "tensor {name}: dims {dims:?} do not match {} values",
                data.len()
            )));
        }
        let bytes =
            quant::quantize(ty, data).map_err(|e| Error::Other(format!("tensor {name}: {e}")))?;
        self.tensors
            .push((name.to_string(), dims.to_vec(), ty, bytes));
        Ok(())
    }

    /// Adds a tensor from already-encoded bytes (any type whose block layout is known).
    pub fn add_raw_tensor(
        &mut self,
        name: &str,
        dims: &[u64],
        ty: GgmlType,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let n: u64 = dims.iter().product();
        if ty.bytes_for(n as usize) != Some(bytes.len()) {
            return Err(Error::Other(format!(
                "tensor {name}: {} bytes do not hold {n} {} values",
                bytes.len(),
                ty.name()
            )));
        }
        self.tensors
            .push((name.to_string(), dims.to_vec(), ty, bytes));
        Ok(())
    }

    /// Adds a `[rows, cols]` matrix (ggml dims `[cols, rows]`).
    pub fn add_matrix(&mut self, name: &str, m: &Matrix, ty: GgmlType) -> Result<()> {
        self.add_tensor(name, &[m.cols as u64, m.rows as u64], ty, &m.data)
    }

    pub fn add_vector(&mut self, name: &str, v: &[f32]) -> Result<()> {
        self.add_tensor(name, &[v.len() as u64], GgmlType::F32, v)
    }

    /// Writes the file.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut out, k);
            out.extend_from_slice(&v.type_id().to_le_bytes());
            put_value(&mut out, v)?;
        }
        let mut offset = 0usize;
        for (name, dims, ty, bytes) in &self.tensors {
            put_str(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.id().to_le_bytes());
            out.extend_from_slice(&(offset as u64).to_le_bytes());
            offset += bytes.len().div_ceil(ALIGNMENT) * ALIGNMENT;
        }
        out.resize(out.len().div_ceil(ALIGNMENT) * ALIGNMENT, 0);
        for (_, _, _, bytes) in &self.tensors {
            out.extend_from_slice(bytes);
            out.resize(out.len().div_ceil(ALIGNMENT) * ALIGNMENT, 0);
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        f.write_all(&out).map_err(|e| Error::io(path, e))?;
        Ok(())
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) -> Result<()> {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => put_str(out, s),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Array(items) => {
            let elem = items.first().map_or(4, Value::type_id);
            if items.iter().any(|i| i.type_id() != elem) {
                return Err(Error::Other("GGUF arrays must hold one value type".into()));
            }
            out.extend_from_slice(&elem.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for i in items {
                put_value(out, i)?;
            }
        }
    }
    Ok(())
}

/// Shape of a tiny test model. The vocabulary is the tiny tokenizer's
/// ([`tiny_vocab`]); `hidden`, `intermediate` and `n_heads * head_dim` must be
/// multiples of 32 for the block-quantised types.
#[derive(Clone, Debug, PartialEq)]
pub struct TinyConfig {
    pub hidden: usize,
    pub intermediate: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub max_position: usize,
    pub rope_theta: f32,
    pub rms_eps: f32,
    pub tie_embeddings: bool,
    /// Type of the projection matrices (and of `output` when untied).
    pub weight_type: GgmlType,
    /// Type of `token_embd`.
    pub embed_type: GgmlType,
}

impl Default for TinyConfig {
    fn default() -> Self {
        TinyConfig {
            hidden: 64,
            intermediate: 128,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 16,
            max_position: 256,
            rope_theta: 10000.0,
            rms_eps: 1e-5,
            tie_embeddings: true,
            weight_type: GgmlType::F32,
            embed_type: GgmlType::F32,
        }
    }
}

/// Special tokens of the tiny tokenizer, ids 0, 1, 2.
pub const TINY_SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Merges of the tiny tokenizer (GPT-2 byte-level symbols; `Ġ` is a space).
const TINY_MERGES: [(&str, &str); 27] = [
    ("Ġ", "t"),
    ("h", "e"),
    ("Ġt", "he"),
    ("i", "n"),
    ("a", "n"),
    ("Ġ", "a"),
    ("e", "r"),
    ("o", "n"),
    ("Ġ", "s"),
    ("r", "e"),
    ("Ġ", "w"),
    ("a", "t"),
    ("e", "n"),
    ("Ġ", "o"),
    ("i", "s"),
    ("Ġ", "c"),
    ("o", "r"),
    ("e", "s"),
    ("Ġ", "b"),
    ("Ġ", "m"),
    ("a", "r"),
    ("Ġ", "h"),
    ("in", "g"),
    ("Ġ", "i"),
    // Digit merges, so pre-tokenizers that split digits differently give different ids.
    ("1", "2"),
    ("12", "3"),
    ("4", "5"),
];

/// GPT-2's byte → printable character map used by byte-level BPE vocabularies.
pub fn byte_to_unicode() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        map[b as usize] = if printable {
            char::from_u32(b).unwrap_or('?')
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap_or('?')
        };
    }
    map
}

/// The tiny tokenizer's tokens (specials, 256 bytes, merge results) and merges.
pub fn tiny_vocab() -> (Vec<String>, Vec<String>) {
    let mut tokens: Vec<String> = TINY_SPECIALS.iter().map(|s| s.to_string()).collect();
    tokens.extend(byte_to_unicode().iter().map(|c| c.to_string()));
    let mut merges = Vec::new();
    for (a, b) in TINY_MERGES {
        tokens.push(format!("{a}{b}"));
        merges.push(format!("{a} {b}"));
    }
    (tokens, merges)
}

/// Puts the tiny byte-level BPE tokenizer and ChatML template into `w`'s metadata.
pub fn set_tiny_tokenizer(w: &mut GgufWriter, arch: Arch) {
    let (tokens, merges) = tiny_vocab();
    let types: Vec<Value> = (0..tokens.len())
        .map(|i| Value::I32(if i < TINY_SPECIALS.len() { 3 } else { 1 }))
        .collect();
    w.set("tokenizer.ggml.model", Value::String("gpt2".into()));
    let pre = match arch {
        Arch::Llama => "smollm",
        Arch::Qwen2 | Arch::Qwen3 => "qwen2",
    };
    w.set("tokenizer.ggml.pre", Value::String(pre.into()));
    w.set(
        "tokenizer.ggml.tokens",
        Value::Array(tokens.into_iter().map(Value::String).collect()),
    );
    w.set("tokenizer.ggml.token_type", Value::Array(types));
    w.set(
        "tokenizer.ggml.merges",
        Value::Array(merges.into_iter().map(Value::String).collect()),
    );
    w.set("tokenizer.ggml.bos_token_id", Value::U32(1));
    w.set("tokenizer.ggml.eos_token_id", Value::U32(2));
    w.set("tokenizer.ggml.padding_token_id", Value::U32(0));
    w.set("tokenizer.ggml.add_bos_token", Value::Bool(false));
    w.set("tokenizer.chat_template", Value::String(CHATML.into()));
}

/// Random weights for `arch` with the tiny tokenizer's vocabulary,
/// deterministic by `seed`, in the HF (rotate_half) Q/K layout.
pub fn random_model(arch: Arch, cfg: &TinyConfig, seed: u64) -> Model {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let vocab = tiny_vocab().0.len();
    let mut mat = |rows: usize, cols: usize, scale: f32| -> Matrix {
        let data = (0..rows * cols)
            .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale)
            .collect();
        Matrix::new(rows, cols, data)
    };
    let h = cfg.hidden;
    let q_out = cfg.n_heads * cfg.head_dim;
    let kv_out = cfg.n_kv_heads * cfg.head_dim;
    let s_in = 1.0 / (h as f32).sqrt();
    let embed = mat(vocab, h, 1.0);
    let mut layers = Vec::new();
    for _ in 0..cfg.n_layers {
        let bias = |m: &mut dyn FnMut(usize, usize, f32) -> Matrix, n: usize| {
            (arch == Arch::Qwen2).then(|| m(1, n, 0.1).data)
        };
        let q = mat(q_out, h, s_in);
        let qb = bias(&mut mat, q_out);
        let k = mat(kv_out, h, s_in);
        let kb = bias(&mut mat, kv_out);
        let v = mat(kv_out, h, s_in);
        let vb = bias(&mut mat, kv_out);
        let o = mat(h, q_out, 1.0 / (q_out as f32).sqrt());
        let attn_norm = mat(1, h, 0.2).data.iter().map(|x| 1.0 + x).collect();
        let mlp_norm = mat(1, h, 0.2).data.iter().map(|x| 1.0 + x).collect();
        let mut head_norm = || -> Option<Vec<f32>> {
            (arch == Arch::Qwen3).then(|| {
                let v = mat(1, cfg.head_dim, 0.2).data;
                v.iter().map(|x| 1.0 + x).collect()
            })
        };
        let (q_norm, k_norm) = (head_norm(), head_norm());
        layers.push(Layer {
            n_heads: cfg.n_heads,
            n_kv_heads: cfg.n_kv_heads,
            attn_norm,
            q: Linear::Dense { w: q, bias: qb },
            k: Linear::Dense { w: k, bias: kb },
            v: Linear::Dense { w: v, bias: vb },
            o: Linear::dense(o),
            q_norm,
            k_norm,
            mlp_norm,
            gate: Linear::dense(mat(cfg.intermediate, h, s_in)),
            up: Linear::dense(mat(cfg.intermediate, h, s_in)),
            down: Linear::dense(mat(
                h,
                cfg.intermediate,
                1.0 / (cfg.intermediate as f32).sqrt(),
            )),
        });
    }
    let final_norm = mat(1, h, 0.2).data.iter().map(|x| 1.0 + x).collect();
    let lm_head = (!cfg.tie_embeddings).then(|| mat(vocab, h, s_in));
    Model {
        config: ModelConfig {
            arch,
            vocab_size: vocab,
            hidden: h,
            intermediate: cfg.intermediate,
            n_layers: cfg.n_layers,
            n_heads: cfg.n_heads,
            n_kv_heads: cfg.n_kv_heads,
            head_dim: cfg.head_dim,
            rope_theta: cfg.rope_theta,
            rope_scaling: None,
            rms_eps: cfg.rms_eps,
            max_position: cfg.max_position,
            tie_embeddings: cfg.tie_embeddings,
            bos_token_id: Some(1),
            eos_token_ids: vec![2, 0],
            pad_token_id: Some(0),
        },
        embed,
        layers,
        final_norm,
        lm_head,
        source_digest: format!("tiny-{}-{seed}", arch.name()),
        transforms: Vec::new(),
        adapters: Default::default(),
    }
}

/// Writes `model`'s architecture metadata and weights into `w` (matrices as
/// `weight_type`, the embedding as `embed_type`, norms and biases F32).
/// Low-rank projections are multiplied out; heads must be uniform across layers.
pub fn add_model(
    w: &mut GgufWriter,
    model: &Model,
    weight_type: GgmlType,
    embed_type: GgmlType,
) -> Result<()> {
    let c = &model.config;
    let a = c.arch.name();
    w.set("general.architecture", Value::String(a.into()));
    w.set("general.name", Value::String(format!("mscr tiny {a}")));
    w.set(
        &format!("{a}.context_length"),
        Value::U32(c.max_position as u32),
    );
    w.set(
        &format!("{a}.embedding_length"),
        Value::U32(c.hidden as u32),
    );
    w.set(
        &format!("{a}.feed_forward_length"),
        Value::U32(c.intermediate as u32),
    );
    w.set(&format!("{a}.block_count"), Value::U32(c.n_layers as u32));
    w.set(
        &format!("{a}.attention.head_count"),
        Value::U32(c.n_heads as u32),
    );
    w.set(
        &format!("{a}.attention.head_count_kv"),
        Value::U32(c.n_kv_heads as u32),
    );
    w.set(
        &format!("{a}.attention.key_length"),
        Value::U32(c.head_dim as u32),
    );
    w.set(
        &format!("{a}.attention.value_length"),
        Value::U32(c.head_dim as u32),
    );
    w.set(
        &format!("{a}.rope.dimension_count"),
        Value::U32(c.head_dim as u32),
    );
    w.set(&format!("{a}.rope.freq_base"), Value::F32(c.rope_theta));
    w.set(
        &format!("{a}.attention.layer_norm_rms_epsilon"),
        Value::F32(c.rms_eps),
    );
    w.set(&format!("{a}.vocab_size"), Value::U32(c.vocab_size as u32));
    if let Some(rs) = &c.rope_scaling {
        // llama.cpp stores Llama 3 rope scaling as per-frequency divisors.
        let f = crate::model::gguf::llama3_rope_factors(rs, c.head_dim, c.rope_theta);
        w.add_vector("rope_freqs.weight", &f)?;
        w.set(
            &format!("{a}.rope.scaling.original_context_length"),
            Value::U32(rs.original_max_position as u32),
        );
    }
    w.add_matrix("token_embd.weight", &model.embed, embed_type)?;
    for (i, l) in model.layers.iter().enumerate() {
        if l.n_heads != c.n_heads || l.n_kv_heads != c.n_kv_heads {
            return Err(Error::Unsupported(format!(
                "writing GGUF: layer {i} has {} heads, the config {} (GGUF holds one head count)",
                l.n_heads, c.n_heads
            )));
        }
        let p = format!("blk.{i}");
        w.add_vector(&format!("{p}.attn_norm.weight"), &l.attn_norm)?;
        w.add_vector(&format!("{p}.ffn_norm.weight"), &l.mlp_norm)?;
        if let Some(v) = &l.q_norm {
            w.add_vector(&format!("{p}.attn_q_norm.weight"), v)?;
        }
        if let Some(v) = &l.k_norm {
            w.add_vector(&format!("{p}.attn_k_norm.weight"), v)?;
        }
        let projections: [(&str, &Linear, usize); 7] = [
            ("attn_q", &l.q, c.n_heads),
            ("attn_k", &l.k, c.n_kv_heads),
            ("attn_v", &l.v, 0),
            ("attn_output", &l.o, 0),
            ("ffn_gate", &l.gate, 0),
            ("ffn_up", &l.up, 0),
            ("ffn_down", &l.down, 0),
        ];
        for (name, lin, heads) in projections {
            let mut m = lin.to_dense();
            let mut bias = lin.bias().cloned();
            if c.arch == Arch::Llama && heads > 0 {
                // Store as llama.cpp's converter does (interleaved rotary halves).
                m = permute_rows(&m, heads);
                bias = bias.map(|b| permute_rows(&Matrix::new(b.len(), 1, b), heads).data);
            }
            w.add_matrix(&format!("{p}.{name}.weight"), &m, weight_type)?;
            if let Some(b) = bias {
                w.add_vector(&format!("{p}.{name}.bias"), &b)?;
            }
        }
    }
    w.add_vector("output_norm.weight", &model.final_norm)?;
    if let Some(head) = &model.lm_head {
        w.add_matrix("output.weight", head, weight_type)?;
    }
    Ok(())
}

/// Writes a tiny random-weight `arch` model (deterministic by `seed`) with the
/// tiny byte-level BPE tokenizer and a ChatML template.
pub fn write_tiny_model(path: &Path, arch: Arch, cfg: &TinyConfig, seed: u64) -> Result<()> {
    let model = random_model(arch, cfg, seed);
    let mut w = GgufWriter::new();
    add_model(&mut w, &model, cfg.weight_type, cfg.embed_type)?;
    set_tiny_tokenizer(&mut w, arch);
    w.write(path)
}
