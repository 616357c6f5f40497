//! GGUF reader: header, metadata, tensor infos and memory-mapped tensor data;
//! dequantisation of the common ggml block formats; mapping of llama, qwen2 and qwen3
//! checkpoints onto the in-memory [`Model`].
//!
//! Every count read from the file is bounded by the bytes that remain, so a
//! lying header yields an error naming the file instead of a huge allocation.

use crate::error::{Error, Result};
use crate::model::quant::{self, GgmlType};
use crate::model::weights::{Arch, Layer, Linear, Matrix, Model, ModelConfig, RopeScaling};
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    /// The GGUF value type id.
    pub fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }

    /// Any integer value as u64 (negative values give `None`).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            Value::Bool(b) => Some(b as u64),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v as i64),
            Value::I16(v) => Some(v as i64),
            Value::I32(v) => Some(v as i64),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => self.as_u64().map(|v| v != 0),
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A short human-readable rendering (arrays summarised).
    pub fn summary(&self) -> String {
        match self {
            Value::String(s) if s.chars().count() > 60 => {
                let head: String = s.chars().take(57).collect();
                format!("{head:?}…")
            }
            Value::String(s) => format!("{s:?}"),
            Value::Array(a) => format!("[{} items]", a.len()),
            Value::F32(v) => v.to_string(),
            Value::F64(v) => v.to_string(),
            Value::Bool(v) => v.to_string(),
            other => other.as_i64().map(|v| v.to_string()).unwrap_or_default(),
        }
    }
}

/// One tensor's description. `dims[0]` is the innermost (contiguous) axis, as in
/// ggml: a linear weight `[out, in]` has `dims = [in, out]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// `(rows, cols)` of the tensor seen as a matrix: cols = dims[0], rows = the rest.
    pub fn matrix_shape(&self) -> (usize, usize) {
        let cols = self.dims.first().copied().unwrap_or(1) as usize;
        let rows = self.dims.iter().skip(1).product::<u64>() as usize;
        (rows, cols)
    }
}

/// An opened GGUF file: parsed header and metadata, memory-mapped data.
pub struct GgufFile {
    path: PathBuf,
    mmap: Mmap,
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    by_name: BTreeMap<String, usize>,
    data_offset: usize,
}

/// A bounds-checked cursor over the mapped bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn err(&self, what: &str) -> Error {
        Error::file(
            self.path,
            format!(
                "not a valid GGUF file: {what} at byte {} (file is {} bytes; truncated or corrupt — re-download it)",
                self.pos,
                self.buf.len()
            ),
        )
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(&format!("unexpected end of file reading {what}")));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(what)?;
        if len > self.remaining() as u64 {
            return Err(self.err(&format!("{what}: string length {len} exceeds the file")));
        }
        let bytes = self.take(len as usize, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.err(&format!("{what}: invalid UTF-8")))
    }

    fn value(&mut self, ty: u32, what: &str, depth: usize) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(self.array::<1>(what)?[0]),
            1 => Value::I8(self.array::<1>(what)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            4 => Value::U32(self.u32(what)?),
            5 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            7 => Value::Bool(self.array::<1>(what)?[0] != 0),
            8 => Value::String(self.string(what)?),
            9 => {
                if depth > 4 {
                    return Err(self.err(&format!("{what}: arrays nested too deeply")));
                }
                let elem = self.u32(what)?;
                let count = self.u64(what)?;
                // Every element takes at least one byte (strings at least eight).
                let min = match elem {
                    8 => 8,
                    9 => 12,
                    _ => value_size(elem).unwrap_or(1),
                };
                if count.saturating_mul(min as u64) > self.remaining() as u64 {
                    return Err(
                        self.err(&format!("{what}: array of {count} items exceeds the file"))
                    );
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(elem, what, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(what)?),
            11 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            other => return Err(self.err(&format!("{what}: unknown metadata value type {other}"))),
        })
    }
}

fn value_size(ty: u32) -> Option<usize> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

impl GgufFile {
    /// Opens and parses a GGUF file (tensor data stays mapped, not read).
    pub fn open(path: &Path) -> Result<GgufFile> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; a file changed underneath us while mapped
        // can only give wrong weights, which the caller cannot guard against anyway.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let mut r = Reader {
            buf: &mmap,
            pos: 0,
            path,
        };
        let magic = r.take(4, "magic")?;
        if magic != MAGIC {
            return Err(Error::file(
                path,
                "not a GGUF file (it does not start with \"GGUF\"); pass a .gguf model file",
            ));
        }
        let version = r.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(Error::file(
                path,
                format!(
                    "GGUF version {version} is not supported (2 and 3 are); re-convert the model with a current llama.cpp"
                ),
            ));
        }
        let n_tensors = r.u64("tensor count")?;
        let n_kv = r.u64("metadata count")?;
        // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info 8 + 4 + 4 + 8.
        if n_kv.saturating_mul(13) > r.remaining() as u64 {
            return Err(r.err(&format!("metadata count {n_kv} exceeds the file")));
        }
        if n_tensors.saturating_mul(24) > r.remaining() as u64 {
            return Err(r.err(&format!("tensor count {n_tensors} exceeds the file")));
        }
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = r.string("metadata key")?;
            let ty = r.u32("metadata type")?;
            let value = r.value(ty, &format!("metadata {key:?}"), 0)?;
            metadata.insert(key, value);
        }
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        let mut by_name = BTreeMap::new();
        for i in 0..n_tensors {
            let name = r.string("tensor name")?;
            let n_dims = r.u32("tensor dims")?;
            if n_dims == 0 || n_dims > 4 {
                return Err(r.err(&format!(
                    "tensor {name:?} has {n_dims} dimensions (1 to 4 allowed)"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.u64("tensor shape")?);
            }
            let ty = GgmlType::from_id(r.u32("tensor type")?);
            let offset = r.u64("tensor offset")?;
            by_name.insert(name.clone(), i as usize);
            tensors.push(TensorInfo {
                name,
                dims,
                ty,
                offset,
            });
        }
        let alignment = metadata
            .get("general.alignment")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_ALIGNMENT)
            .max(1);
        let data_offset = (r.pos as u64).div_ceil(alignment) * alignment;
        let file_len = mmap.len() as u64;
        if data_offset > file_len {
            return Err(Error::file(
                path,
                "truncated GGUF file: it ends before the tensor data; re-download it",
            ));
        }
        let data_len = file_len - data_offset;
        for t in &tensors {
            let n = t
                .dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .ok_or_else(|| {
                    Error::file(
                        path,
                        format!("tensor {:?}: shape {:?} overflows", t.name, t.dims),
                    )
                })?;
            if let Some((block, bytes)) = t.ty.block() {
                if !t.dims[0].is_multiple_of(block as u64) {
                    return Err(Error::file(
                        path,
                        format!(
                            "tensor {:?}: row length {} is not a multiple of the {} block size {block}",
                            t.name,
                            t.dims[0],
                            t.ty.name()
                        ),
                    ));
                }
                let size = (n / block as u64).saturating_mul(bytes as u64);
                if t.offset.checked_add(size).is_none_or(|end| end > data_len) {
                    return Err(Error::file(
                        path,
                        format!(
                            "truncated or corrupt GGUF file: tensor {:?} ({} bytes at data offset {}) runs past the end of the file ({} data bytes); re-download it",
                            t.name, size, t.offset, data_len
                        ),
                    ));
                }
            }
        }
        Ok(GgufFile {
            path: path.to_path_buf(),
            mmap,
            version,
            metadata,
            tensors,
            by_name,
            data_offset: data_offset as usize,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file_len(&self) -> u64 {
        self.mmap.len() as u64
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// The raw bytes of a tensor (validated against the file size at open).
    pub fn tensor_bytes(&self, t: &TensorInfo) -> Result<&[u8]> {
        let (block, bytes) = t.ty.block().ok_or_else(|| self.unsupported(t))?;
        let size = (t.n_elements() / block as u64) as usize * bytes;
        let start = self.data_offset + t.offset as usize;
        Ok(&self.mmap[start..start + size])
    }

    fn unsupported(&self, t: &TensorInfo) -> Error {
        Error::Unsupported(format!(
            "{}: tensor {:?} has type {}, which mscr cannot dequantise (supported: {}); use a GGUF with one of those types",
            self.path.display(),
            t.name,
            t.ty.name(),
            quant::SUPPORTED
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// Dequantises a tensor to f32, flattened in ggml order (`dims[0]` fastest).
    pub fn dequantize(&self, t: &TensorInfo) -> Result<Vec<f32>> {
        if !t.ty.is_supported() {
            return Err(self.unsupported(t));
        }
        let bytes = self.tensor_bytes(t)?;
        quant::dequantize(t.ty, bytes, t.n_elements() as usize)
            .map_err(|e| Error::file(&self.path, format!("tensor {:?}: {e}", t.name)))
    }

    /// A named tensor as a `[rows, cols]` matrix (`cols = dims[0]`).
    pub fn matrix(&self, name: &str) -> Result<Matrix> {
        let t = self.require(name)?;
        let (rows, cols) = t.matrix_shape();
        Ok(Matrix::new(rows, cols, self.dequantize(t)?))
    }

    /// A named 1-D tensor.
    pub fn vector(&self, name: &str) -> Result<Vec<f32>> {
        let t = self.require(name)?;
        self.dequantize(t)
    }

    fn require(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor(name).ok_or_else(|| {
            Error::file(
                &self.path,
                format!(
                    "tensor {name:?} is missing; the file is not a complete llama/qwen2/qwen3 model"
                ),
            )
        })
    }

    /// Tensor types present, with counts (for `models info`).
    pub fn type_counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for t in &self.tensors {
            *m.entry(t.ty.name()).or_insert(0) += 1;
        }
        m
    }

    /// A cheap stable identity: sha256 over the header, the file size and
    /// 4 KiB samples every 4 MiB of the data (hashing all of a multi-GB file on
    /// every load would cost seconds).
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(&self.mmap[..self.data_offset]);
        h.update(self.file_len().to_le_bytes());
        let mut pos = self.data_offset;
        while pos < self.mmap.len() {
            let end = (pos + 4096).min(self.mmap.len());
            h.update(&self.mmap[pos..end]);
            pos += 4 << 20;
        }
        let tail = self.mmap.len().saturating_sub(4096).max(self.data_offset);
        h.update(&self.mmap[tail..]);
        hex::encode(h.finalize())
    }

    fn arch(&self) -> Result<Arch> {
        match self.architecture() {
            Some("llama") => Ok(Arch::Llama),
            Some("qwen2") => Ok(Arch::Qwen2),
            Some("qwen3") => Ok(Arch::Qwen3),
            Some(other) => Err(Error::Unsupported(format!(
                "{}: architecture {other:?} is not supported (llama — including Llama 3.x —, qwen2 and qwen3 are); use a GGUF of one of those",
                self.path.display()
            ))),
            None => Err(Error::file(
                &self.path,
                "metadata general.architecture is missing; the file is not a model GGUF",
            )),
        }
    }

    fn need_u64(&self, key: &str) -> Result<u64> {
        self.get_u64(key).ok_or_else(|| {
            Error::file(
                &self.path,
                format!("metadata {key} is missing or not an integer"),
            )
        })
    }

    /// The architecture config from `<arch>.*` metadata and tensor shapes.
    pub fn config(&self) -> Result<ModelConfig> {
        let arch = self.arch()?;
        let a = arch.name();
        let hidden = self.need_u64(&format!("{a}.embedding_length"))? as usize;
        let n_heads = self.need_u64(&format!("{a}.attention.head_count"))? as usize;
        let n_kv_heads = self
            .get_u64(&format!("{a}.attention.head_count_kv"))
            .unwrap_or(n_heads as u64) as usize;
        if n_heads == 0 || n_kv_heads == 0 || !n_heads.is_multiple_of(n_kv_heads) {
            return Err(Error::file(
                &self.path,
                format!("invalid head counts: {n_heads} query heads, {n_kv_heads} key/value heads"),
            ));
        }
        let head_dim = self
            .get_u64(&format!("{a}.attention.key_length"))
            .unwrap_or((hidden / n_heads) as u64) as usize;
        let embd = self.require("token_embd.weight")?;
        let vocab_size = embd.matrix_shape().0;
        let rope_theta = self
            .get_f64(&format!("{a}.rope.freq_base"))
            .unwrap_or(10000.0) as f32;
        let max_position = self.get_u64(&format!("{a}.context_length")).unwrap_or(2048) as usize;
        let rope_scaling = self.rope_scaling(a, head_dim, rope_theta)?;
        let eos = self
            .get_u64("tokenizer.ggml.eos_token_id")
            .map(|v| v as u32);
        let mut eos_token_ids: Vec<u32> = eos.into_iter().collect();
        if let Some(eot) = self.get_u64("tokenizer.ggml.eot_token_id")
            && !eos_token_ids.contains(&(eot as u32))
        {
            eos_token_ids.push(eot as u32);
        }
        Ok(ModelConfig {
            arch,
            vocab_size,
            hidden,
            intermediate: self.need_u64(&format!("{a}.feed_forward_length"))? as usize,
            n_layers: self.need_u64(&format!("{a}.block_count"))? as usize,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_theta,
            rope_scaling,
            rms_eps: self
                .get_f64(&format!("{a}.attention.layer_norm_rms_epsilon"))
                .unwrap_or(1e-6) as f32,
            max_position,
            tie_embeddings: self.tensor("output.weight").is_none(),
            bos_token_id: self
                .get_u64("tokenizer.ggml.bos_token_id")
                .map(|v| v as u32),
            eos_token_ids,
            pad_token_id: self
                .get_u64("tokenizer.ggml.padding_token_id")
                .map(|v| v as u32),
        })
    }

    /// Llama 3 rope scaling. llama.cpp stores it as per-frequency factors in a
    /// `rope_freqs.weight` tensor; the largest factor is the scaling factor and
    /// the Llama 3 defaults give the rest unless metadata says otherwise.
    fn rope_scaling(&self, a: &str, head_dim: usize, theta: f32) -> Result<Option<RopeScaling>> {
        let kind = self.get_str(&format!("{a}.rope.scaling.type"));
        if let Some(k) = kind
            && k != "none"
            && k != "llama3"
        {
            return Err(Error::Unsupported(format!(
                "{}: rope scaling type {k:?} is not supported (llama3 is)",
                self.path.display()
            )));
        }
        let Some(t) = self.tensor("rope_freqs.weight") else {
            return Ok(None);
        };
        let f = self.dequantize(t)?;
        if f.len() != head_dim / 2 {
            return Err(Error::file(
                &self.path,
                format!(
                    "rope_freqs.weight has {} values, expected {}",
                    f.len(),
                    head_dim / 2
                ),
            ));
        }
        let factor = f.iter().cloned().fold(1.0f32, f32::max);
        if factor <= 1.0 {
            return Ok(None);
        }
        let original = self
            .get_u64(&format!("{a}.rope.scaling.original_context_length"))
            .unwrap_or(8192) as usize;
        let scaling = RopeScaling {
            factor,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position: original,
        };
        // The defaults must reproduce the stored factors, else the graph would
        // silently use different rope frequencies.
        let expect = llama3_rope_factors(&scaling, head_dim, theta);
        if let Some((i, (got, want))) = f
            .iter()
            .zip(&expect)
            .enumerate()
            .find(|(_, (g, w))| (*g - *w).abs() > 1e-3 * w.abs().max(1.0))
        {
            return Err(Error::Unsupported(format!(
                "{}: rope_freqs.weight[{i}] = {got} does not match Llama 3 rope scaling (expected {want}); this rope scaling is not supported",
                self.path.display()
            )));
        }
        Ok(Some(scaling))
    }

    fn linear(&self, name: &str, expect: (usize, usize)) -> Result<Matrix> {
        let m = self.matrix(&format!("{name}.weight"))?;
        if (m.rows, m.cols) != expect {
            return Err(Error::file(
                &self.path,
                format!(
                    "tensor {name}.weight has shape [{}, {}], expected [{}, {}] from the metadata",
                    m.rows, m.cols, expect.0, expect.1
                ),
            ));
        }
        Ok(m)
    }

    fn bias(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>> {
        let key = format!("{name}.bias");
        if self.tensor(&key).is_none() {
            return Ok(None);
        }
        let b = self.vector(&key)?;
        if b.len() != len {
            return Err(Error::file(
                &self.path,
                format!("tensor {key} has {} values, expected {len}", b.len()),
            ));
        }
        Ok(Some(b))
    }

    /// Builds the in-memory model (all weights dequantised to f32).
    pub fn to_model(&self) -> Result<Model> {
        let config = self.config()?;
        let h = config.hidden;
        let hd = config.head_dim;
        let q_out = config.n_heads * hd;
        let kv_out = config.n_kv_heads * hd;
        let norm = |name: &str, len: usize| -> Result<Vec<f32>> {
            let v = self.vector(name)?;
            if v.len() != len {
                return Err(Error::file(
                    &self.path,
                    format!("tensor {name} has {} values, expected {len}", v.len()),
                ));
            }
            Ok(v)
        };
        let embed = self.linear("token_embd", (config.vocab_size, h))?;
        let mut layers = Vec::with_capacity(config.n_layers);
        for i in 0..config.n_layers {
            let p = format!("blk.{i}");
            let mut q = self.linear(&format!("{p}.attn_q"), (q_out, h))?;
            let mut k = self.linear(&format!("{p}.attn_k"), (kv_out, h))?;
            let mut qb = self.bias(&format!("{p}.attn_q"), q_out)?;
            let mut kb = self.bias(&format!("{p}.attn_k"), kv_out)?;
            if config.arch == Arch::Llama {
                // llama.cpp's converter interleaves each head's rotary halves;
                // the graph uses HF's rotate_half, so undo it.
                q = unpermute_rows(&q, config.n_heads);
                k = unpermute_rows(&k, config.n_kv_heads);
                qb = qb.map(|b| unpermute_vec(&b, config.n_heads));
                kb = kb.map(|b| unpermute_vec(&b, config.n_kv_heads));
            }
            let v = self.linear(&format!("{p}.attn_v"), (kv_out, h))?;
            let vb = self.bias(&format!("{p}.attn_v"), kv_out)?;
            let o = self.linear(&format!("{p}.attn_output"), (h, q_out))?;
            let ob = self.bias(&format!("{p}.attn_output"), h)?;
            let (q_norm, k_norm) = if config.arch == Arch::Qwen3 {
                (
                    Some(norm(&format!("{p}.attn_q_norm.weight"), hd)?),
                    Some(norm(&format!("{p}.attn_k_norm.weight"), hd)?),
                )
            } else {
                (None, None)
            };
            layers.push(Layer {
                n_heads: config.n_heads,
                n_kv_heads: config.n_kv_heads,
                attn_norm: norm(&format!("{p}.attn_norm.weight"), h)?,
                q: Linear::Dense { w: q, bias: qb },
                k: Linear::Dense { w: k, bias: kb },
                v: Linear::Dense { w: v, bias: vb },
                o: Linear::Dense { w: o, bias: ob },
                q_norm,
                k_norm,
                mlp_norm: norm(&format!("{p}.ffn_norm.weight"), h)?,
                gate: Linear::dense(
                    self.linear(&format!("{p}.ffn_gate"), (config.intermediate, h))?,
                ),
                up: Linear::dense(self.linear(&format!("{p}.ffn_up"), (config.intermediate, h))?),
                down: Linear::dense(
                    self.linear(&format!("{p}.ffn_down"), (h, config.intermediate))?,
                ),
            });
        }
        let lm_head = if config.tie_embeddings {
            None
        } else {
            Some(self.linear("output", (config.vocab_size, h))?)
        };
        Ok(Model {
            embed,
            layers,
            final_norm: norm("output_norm.weight", h)?,
            lm_head,
            source_digest: self.digest(),
            transforms: Vec::new(),
            adapters: Default::default(),
            config,
        })
    }
}

/// Per-frequency divisors of Llama 3 rope scaling (what llama.cpp stores in
/// `rope_freqs.weight`): 1 for short wavelengths, `factor` for long ones,
/// a smooth blend between.
pub fn llama3_rope_factors(s: &RopeScaling, head_dim: usize, theta: f32) -> Vec<f32> {
    let orig = s.original_max_position as f32;
    let low_wavelen = orig / s.low_freq_factor;
    let high_wavelen = orig / s.high_freq_factor;
    (0..head_dim / 2)
        .map(|i| {
            let freq = theta.powf(-((2 * i) as f32) / head_dim as f32);
            let wavelen = 2.0 * std::f32::consts::PI / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                s.factor
            } else {
                let smooth =
                    (orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                1.0 / ((1.0 - smooth) / s.factor + smooth)
            }
        })
        .collect()
}

/// Undoes llama.cpp's Q/K row permutation. Within each head of `hd` rows the
/// converter moved HF row `s*hd/2 + i` (half `s`, index `i`) to row `2*i + s`.
pub fn unpermute_rows(w: &Matrix, n_heads: usize) -> Matrix {
    let hd = w.rows / n_heads;
    let half = hd / 2;
    let mut out = Matrix::zeros(w.rows, w.cols);
    for h in 0..n_heads {
        for s in 0..2 {
            for i in 0..half {
                let dst = h * hd + s * half + i;
                let src = h * hd + 2 * i + s;
                out.row_mut(dst).copy_from_slice(w.row(src));
            }
        }
    }
    out
}

/// The inverse of [`unpermute_rows`]: HF layout → llama.cpp layout (used by the writer).
pub fn permute_rows(w: &Matrix, n_heads: usize) -> Matrix {
    let hd = w.rows / n_heads;
    let half = hd / 2;
    let mut out = Matrix::zeros(w.rows, w.cols);
    for h in 0..n_heads {
        for s in 0..2 {
            for i in 0..half {
                let hf = h * hd + s * half + i;
                let gg = h * hd + 2 * i + s;
                out.row_mut(gg).copy_from_slice(w.row(hf));
            }
        }
    }
    out
}

fn unpermute_vec(b: &[f32], n_heads: usize) -> Vec<f32> {
    unpermute_rows(&Matrix::new(b.len(), 1, b.to_vec()), n_heads).data
}

/// Dequantises only the token embedding matrix `[vocab, hidden]` (for the
/// attack's embedding-neighbour candidates, without loading the whole model).
pub fn load_embeddings(path: &Path) -> Result<Matrix> {
    GgufFile::open(path)?.matrix("token_embd.weight")
}
