//! BERT-family checkpoints (Hugging Face folder: config.json + model.safetensors)
//! turned into ONNX graphs with standard operators, cached on disk.

use crate::error::{Error, Result};
use crate::runtime::onnx::{Attr, DType, Dim, GraphBuilder};
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Bumped whenever the graph layout changes, so stale cached graphs are rebuilt.
pub const BUILDER_VERSION: u32 = 1;

/// The parts of a BERT `config.json` the graph needs. Unknown keys are allowed:
/// Hugging Face configs carry many training-only fields.
#[derive(Clone, Debug, Deserialize)]
pub struct BertConfig {
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub model_type: Option<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_max_pos() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f32 {
    1e-12
}

impl BertConfig {
    /// Reads and checks `dir/config.json`.
    pub fn load(dir: &Path) -> Result<(Self, String)> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::file(
                    &path,
                    "config.json is missing: a Hugging Face model folder needs config.json, \
                     model.safetensors and tokenizer.json",
                )
            } else {
                Error::io(&path, e)
            }
        })?;
        let cfg: BertConfig = serde_json::from_str(&text)
            .map_err(|e| Error::file(&path, format!("not a valid BERT config: {e}")))?;
        if let Some(t) = cfg.model_type.as_deref()
            && t != "bert"
        {
            return Err(Error::file(
                &path,
                format!(
                    "model_type {t:?} is not supported by the encoder backend (only \"bert\"); \
                     export the model to ONNX and pass the .onnx path instead"
                ),
            ));
        }
        if cfg.hidden_act != "gelu" {
            return Err(Error::file(
                &path,
                format!(
                    "hidden_act {:?} is not supported (only the exact erf \"gelu\")",
                    cfg.hidden_act
                ),
            ));
        }
        if let Some(p) = cfg.position_embedding_type.as_deref()
            && p != "absolute"
        {
            return Err(Error::file(
                &path,
                format!("position_embedding_type {p:?} is not supported (only \"absolute\")"),
            ));
        }
        if cfg.num_attention_heads == 0
            || cfg.hidden_size == 0
            || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
        {
            return Err(Error::file(
                &path,
                format!(
                    "hidden_size {} is not a multiple of num_attention_heads {}",
                    cfg.hidden_size, cfg.num_attention_heads
                ),
            ));
        }
        Ok((cfg, text))
    }
}

/// What the graph computes after the encoder stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// MLM logits only at the rows listed in the extra input `masked_index`
    /// (flat indices `batch * seq + position`): output `mask_logits` `[n, vocab]`.
    MaskedLogits,
    /// Attention-mask-weighted mean of the last hidden states, L2-normalised:
    /// output `embeddings` `[batch, hidden]`.
    Pooled,
    /// The Optimum export layout: `last_hidden_state` `[batch, seq, hidden]`.
    Hidden,
    /// The Optimum export layout: MLM `logits` `[batch, seq, vocab]`.
    FullLogits,
}

impl Head {
    fn tag(self) -> &'static str {
        match self {
            Head::MaskedLogits => "masked",
            Head::Pooled => "pooled",
            Head::Hidden => "hidden",
            Head::FullLogits => "logits",
        }
    }
}

/// Memory-mapped safetensors file with name lookup that tolerates the `bert.`
/// prefix and the old `gamma`/`beta` LayerNorm names.
struct Weights<'a> {
    path: &'a Path,
    st: SafeTensors<'a>,
}

impl<'a> Weights<'a> {
    fn candidates(name: &str) -> Vec<String> {
        let mut names = vec![name.to_string()];
        if let Some(stem) = name.strip_suffix("LayerNorm.weight") {
            names.push(format!("{stem}LayerNorm.gamma"));
        }
        if let Some(stem) = name.strip_suffix("LayerNorm.bias") {
            names.push(format!("{stem}LayerNorm.beta"));
        }
        let mut all = Vec::new();
        for n in names {
            all.push(format!("bert.{n}"));
            all.push(n);
        }
        all
    }

    fn find(&self, name: &str) -> Option<String> {
        Self::candidates(name)
            .into_iter()
            .find(|n| self.st.tensor(n).is_ok())
    }

    /// The tensor as f32, checked against `shape`.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let Some(found) = self.find(name) else {
            return Err(Error::file(
                self.path,
                format!("tensor {name:?} is missing: is this a BERT checkpoint?"),
            ));
        };
        self.read(&found, shape)
    }

    fn read(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self
            .st
            .tensor(name)
            .map_err(|e| Error::file(self.path, format!("tensor {name:?}: {e}")))?;
        if view.shape() != shape {
            return Err(Error::file(
                self.path,
                format!(
                    "tensor {name:?} has shape {:?}, config.json implies {shape:?}",
                    view.shape()
                ),
            ));
        }
        let b = view.data();
        Ok(match view.dtype() {
            Dtype::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => b
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::file(
                    self.path,
                    format!(
                        "tensor {name:?} has dtype {other:?}; only F32, F16 and BF16 are supported"
                    ),
                ));
            }
        })
    }
}

fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

/// Finds the weights file of a Hugging Face folder.
pub fn weights_path(dir: &Path) -> Result<PathBuf> {
    let p = dir.join("model.safetensors");
    if p.is_file() {
        return Ok(p);
    }
    Err(Error::file(
        &p,
        "model.safetensors is missing (sharded or PyTorch .bin checkpoints are not supported \
         for encoders): convert the model to a single safetensors file",
    ))
}

/// Builds (or reuses) the cached graph for `dir` with `head`; returns the
/// path of `model.onnx` under [`crate::paths::graphs_dir`].
pub fn cached_graph(dir: &Path, head: Head) -> Result<PathBuf> {
    cached_graph_in(dir, head, &crate::paths::graphs_dir())
}

pub fn cached_graph_in(dir: &Path, head: Head, root: &Path) -> Result<PathBuf> {
    let (cfg, cfg_text) = BertConfig::load(dir)?;
    let wpath = weights_path(dir)?;
    let file = std::fs::File::open(&wpath).map_err(|e| Error::io(&wpath, e))?;
    // SAFETY: the file is opened read-only; a concurrent writer would be a user error
    // that safetensors' own bounds checks turn into an error, not UB in our reads.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&wpath, e))?;
    let mut h = Sha256::new();
    h.update(format!("encoder-v{BUILDER_VERSION}-{}\n", head.tag()).as_bytes());
    h.update(cfg_text.as_bytes());
    h.update(&mmap[..]);
    let digest = hex::encode(h.finalize());
    let key = format!("bert-{}-{}", head.tag(), &digest[..24]);
    let final_dir = root.join(&key);
    let model = final_dir.join("model.onnx");
    if model.is_file() {
        return Ok(model);
    }
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    // Build in a private directory, then rename it into place: two processes
    // building at once never see each other's half-written files.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tmp = root.join(format!(".{key}.tmp-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let built = (|| {
        let st = SafeTensors::deserialize(&mmap).map_err(|e| {
            Error::file(
                &wpath,
                format!("not a valid safetensors file ({e}); the download may be truncated: fetch it again"),
            )
        })?;
        let w = Weights { path: &wpath, st };
        build_graph(&cfg, &w, head, &tmp.join("model.onnx"))
    })();
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if std::fs::rename(&tmp, &final_dir).is_err() {
        // Another process won the race; its graph is identical.
        let _ = std::fs::remove_dir_all(&tmp);
        if !model.is_file() {
            return Err(Error::file(
                &final_dir,
                "could not move the built graph into the cache; check permissions",
            ));
        }
    }
    Ok(model)
}

/// Writes an Optimum-style graph (`last_hidden_state` or `logits`) for `dir`
/// to `out`, next to which the caller puts tokenizer.json.
pub fn export(dir: &Path, head: Head, out: &Path) -> Result<()> {
    let (cfg, _) = BertConfig::load(dir)?;
    let wpath = weights_path(dir)?;
    let bytes = std::fs::read(&wpath).map_err(|e| Error::io(&wpath, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::file(&wpath, format!("not a valid safetensors file ({e})")))?;
    build_graph(&cfg, &Weights { path: &wpath, st }, head, out)
}

/// Graph-building helpers over [`GraphBuilder`].
struct G {
    b: GraphBuilder,
}

impl G {
    fn op(&mut self, op: &str, inputs: &[&str]) -> String {
        self.b.op(op, inputs, &[])
    }
    fn opa(&mut self, op: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        self.b.op(op, inputs, attrs)
    }
    fn scalar(&mut self, v: f32) -> String {
        let n = self.b.fresh("scalar");
        self.b.init_f32(&n, &[], &[v])
    }
    fn ints(&mut self, v: &[i64]) -> String {
        self.b.const_i64(v)
    }
    fn weight(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        self.b.init_f32(name, &dims, data)
    }
    /// `x @ W^T + b` with HF's `[out, in]` weight layout.
    fn linear(
        &mut self,
        w: &Weights,
        x: &str,
        name: &str,
        out: usize,
        inp: usize,
    ) -> Result<String> {
        let wt = transpose(&w.get(&format!("{name}.weight"), &[out, inp])?, out, inp);
        let bias = w.get(&format!("{name}.bias"), &[out])?;
        let wn = self.weight(&format!("{name}.weight_t"), &[inp, out], &wt);
        let bn = self.weight(&format!("{name}.bias"), &[out], &bias);
        let m = self.op("MatMul", &[x, &wn]);
        Ok(self.op("Add", &[&m, &bn]))
    }
    fn layer_norm(
        &mut self,
        w: &Weights,
        x: &str,
        name: &str,
        h: usize,
        eps: f32,
    ) -> Result<String> {
        let g = w.get(&format!("{name}.weight"), &[h])?;
        let b = w.get(&format!("{name}.bias"), &[h])?;
        let gn = self.weight(&format!("{name}.weight"), &[h], &g);
        let bn = self.weight(&format!("{name}.bias"), &[h], &b);
        Ok(self.opa(
            "LayerNormalization",
            &[x, &gn, &bn],
            &[("axis", Attr::Int(-1)), ("epsilon", Attr::Float(eps))],
        ))
    }
    /// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))`, in the pattern ORT fuses.
    fn gelu(&mut self, x: &str) -> String {
        let s2 = self.scalar(std::f32::consts::SQRT_2);
        let one = self.scalar(1.0);
        let half = self.scalar(0.5);
        let d = self.op("Div", &[x, &s2]);
        let e = self.op("Erf", &[&d]);
        let a = self.op("Add", &[&e, &one]);
        let m = self.op("Mul", &[x, &a]);
        self.op("Mul", &[&m, &half])
    }
}

fn build_graph(cfg: &BertConfig, w: &Weights, head: Head, out: &Path) -> Result<()> {
    let h = cfg.hidden_size;
    let nh = cfg.num_attention_heads;
    let hd = h / nh;
    let v = cfg.vocab_size;
    let eps = cfg.layer_norm_eps;
    let mut g = G {
        b: GraphBuilder::new("bert"),
    };
    g.b.metadata("mscr.encoder_head", head.tag());
    let bs: [Dim; 2] = ["batch".into(), "seq".into()];
    g.b.input("input_ids", DType::I64, &bs);
    g.b.input("attention_mask", DType::I64, &bs);
    g.b.input("token_type_ids", DType::I64, &bs);

    // Embeddings: word + position (0..seq) + token type, then LayerNorm.
    let we = w.get("embeddings.word_embeddings.weight", &[v, h])?;
    let pe = w.get(
        "embeddings.position_embeddings.weight",
        &[cfg.max_position_embeddings, h],
    )?;
    let te = w.get(
        "embeddings.token_type_embeddings.weight",
        &[cfg.type_vocab_size, h],
    )?;
    let wen = g.weight("embeddings.word_embeddings.weight", &[v, h], &we);
    let pen = g.weight(
        "embeddings.position_embeddings.weight",
        &[cfg.max_position_embeddings, h],
        &pe,
    );
    let ten = g.weight(
        "embeddings.token_type_embeddings.weight",
        &[cfg.type_vocab_size, h],
        &te,
    );
    let word = g.op("Gather", &[&wen, "input_ids"]);
    let typ = g.op("Gather", &[&ten, "token_type_ids"]);
    let shape = g.op("Shape", &["input_ids"]);
    let one_idx = g.ints(&[1]);
    let seq = g.opa("Gather", &[&shape, &one_idx], &[("axis", Attr::Int(0))]);
    let zero = g.ints(&[0]);
    let pos = g.op("Slice", &[&pen, &zero, &seq, &zero]);
    let x = g.op("Add", &[&word, &typ]);
    let x = g.op("Add", &[&x, &pos]);
    let mut x = g.layer_norm(w, &x, "embeddings.LayerNorm", h, eps)?;

    // Additive attention bias [batch, 1, 1, seq]: 0 for tokens, -1e4 for padding
    // (BERT's own constant; exp underflows to exactly 0 either way).
    let mf = g.opa(
        "Cast",
        &["attention_mask"],
        &[("to", Attr::Int(DType::F32 as i64))],
    );
    let one = g.scalar(1.0);
    let inv = g.op("Sub", &[&one, &mf]);
    let big = g.scalar(-10000.0);
    let bias = g.op("Mul", &[&inv, &big]);
    let axes12 = g.ints(&[1, 2]);
    let bias = g.op("Unsqueeze", &[&bias, &axes12]);
    let scale = g.scalar(1.0 / (hd as f32).sqrt());
    let split_shape = g.ints(&[0, 0, nh as i64, hd as i64]);
    let merge_shape = g.ints(&[0, 0, h as i64]);

    for l in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        let q = g.linear(w, &x, &format!("{p}.attention.self.query"), h, h)?;
        let k = g.linear(w, &x, &format!("{p}.attention.self.key"), h, h)?;
        let vv = g.linear(w, &x, &format!("{p}.attention.self.value"), h, h)?;
        let q = g.op("Reshape", &[&q, &split_shape]);
        let q = g.opa(
            "Transpose",
            &[&q],
            &[("perm", Attr::Ints(vec![0, 2, 1, 3]))],
        );
        let k = g.op("Reshape", &[&k, &split_shape]);
        let k = g.opa(
            "Transpose",
            &[&k],
            &[("perm", Attr::Ints(vec![0, 2, 3, 1]))],
        );
        let vv = g.op("Reshape", &[&vv, &split_shape]);
        let vv = g.opa(
            "Transpose",
            &[&vv],
            &[("perm", Attr::Ints(vec![0, 2, 1, 3]))],
        );
        let s = g.op("MatMul", &[&q, &k]);
        let s = g.op("Mul", &[&s, &scale]);
        let s = g.op("Add", &[&s, &bias]);
        let pr = g.opa("Softmax", &[&s], &[("axis", Attr::Int(-1))]);
        let c = g.op("MatMul", &[&pr, &vv]);
        let c = g.opa(
            "Transpose",
            &[&c],
            &[("perm", Attr::Ints(vec![0, 2, 1, 3]))],
        );
        let c = g.op("Reshape", &[&c, &merge_shape]);
        let a = g.linear(w, &c, &format!("{p}.attention.output.dense"), h, h)?;
        let a = g.op("Add", &[&a, &x]);
        x = g.layer_norm(w, &a, &format!("{p}.attention.output.LayerNorm"), h, eps)?;
        let f = g.linear(
            w,
            &x,
            &format!("{p}.intermediate.dense"),
            cfg.intermediate_size,
            h,
        )?;
        let f = g.gelu(&f);
        let o = g.linear(
            w,
            &f,
            &format!("{p}.output.dense"),
            h,
            cfg.intermediate_size,
        )?;
        let o = g.op("Add", &[&o, &x]);
        x = g.layer_norm(w, &o, &format!("{p}.output.LayerNorm"), h, eps)?;
    }

    match head {
        Head::Hidden => {
            g.op_named("Identity", &[&x], "last_hidden_state");
            g.b.output(
                "last_hidden_state",
                DType::F32,
                &["batch".into(), "seq".into(), (h as i64).into()],
            );
        }
        Head::Pooled => {
            let axes2 = g.ints(&[2]);
            let m = g.op("Unsqueeze", &[&mf, &axes2]);
            let xm = g.op("Mul", &[&x, &m]);
            let axes1 = g.ints(&[1]);
            let sum = g.opa("ReduceSum", &[&xm, &axes1], &[("keepdims", Attr::Int(0))]);
            let cnt = g.opa("ReduceSum", &[&m, &axes1], &[("keepdims", Attr::Int(0))]);
            let tiny = g.scalar(1e-9);
            let cnt = g.op("Max", &[&cnt, &tiny]);
            let mean = g.op("Div", &[&sum, &cnt]);
            let norm = g.opa(
                "ReduceL2",
                &[&mean],
                &[("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(1))],
            );
            let eps12 = g.scalar(1e-12);
            let norm = g.op("Max", &[&norm, &eps12]);
            g.op_named("Div", &[&mean, &norm], "embeddings");
            g.b.output(
                "embeddings",
                DType::F32,
                &["batch".into(), (h as i64).into()],
            );
        }
        Head::MaskedLogits | Head::FullLogits => {
            let rows = if head == Head::MaskedLogits {
                g.b.input("masked_index", DType::I64, &["masked".into()]);
                let flat_shape = g.ints(&[-1, h as i64]);
                let flat = g.op("Reshape", &[&x, &flat_shape]);
                g.opa(
                    "Gather",
                    &[&flat, "masked_index"],
                    &[("axis", Attr::Int(0))],
                )
            } else {
                x.clone()
            };
            let t = g.linear(w, &rows, "cls.predictions.transform.dense", h, h)?;
            let t = g.gelu(&t);
            let t = g.layer_norm(w, &t, "cls.predictions.transform.LayerNorm", h, eps)?;
            // The decoder is tied to the word embeddings unless the checkpoint
            // stores its own.
            let db = match w.find("cls.predictions.bias") {
                Some(n) => w.read(&n, &[v])?,
                None => w.get("cls.predictions.decoder.bias", &[v])?,
            };
            let dbn = g.weight("cls.predictions.bias", &[v], &db);
            let table = match w.find("cls.predictions.decoder.weight") {
                Some(n) => {
                    let d = w.read(&n, &[v, h])?;
                    g.weight("cls.predictions.decoder.weight", &[v, h], &d)
                }
                None => wen.clone(),
            };
            if head == Head::MaskedLogits {
                // Rows are 2-D here, so Gemm with transB reuses the [vocab, hidden]
                // table instead of storing a transposed copy.
                g.b.node(
                    "Gemm",
                    "",
                    &[&t, &table, &dbn],
                    &["mask_logits"],
                    &[("transB", Attr::Int(1))],
                );
                g.b.output(
                    "mask_logits",
                    DType::F32,
                    &["masked".into(), (v as i64).into()],
                );
            } else {
                let tt = g.opa("Transpose", &[&table], &[("perm", Attr::Ints(vec![1, 0]))]);
                let m = g.op("MatMul", &[&t, &tt]);
                g.op_named("Add", &[&m, &dbn], "logits");
                g.b.output(
                    "logits",
                    DType::F32,
                    &["batch".into(), "seq".into(), (v as i64).into()],
                );
            }
        }
    }
    g.b.save(out, &[("", 17)])
}

impl G {
    fn op_named(&mut self, op: &str, inputs: &[&str], out: &str) -> String {
        self.b.node(op, "", inputs, &[out], &[])
    }
}

/// Whether the checkpoint in `dir` carries an MLM head (reads the header only).
pub fn has_mlm_head(dir: &Path) -> Result<bool> {
    let path = weights_path(dir)?;
    let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    // SAFETY: read-only map; see `cached_graph_in`.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
    let (_, meta) = SafeTensors::read_metadata(&mmap).map_err(|e| {
        Error::file(
            &path,
            format!(
                "not a valid safetensors file ({e}); the download may be truncated: fetch it again"
            ),
        )
    })?;
    Ok(meta
        .tensors()
        .keys()
        .any(|k| k.ends_with("cls.predictions.transform.dense.weight")))
}
