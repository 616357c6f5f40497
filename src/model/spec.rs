//! Model specs: the MODEL string users pass. An alias (see [`aliases`]), a
//! `.gguf` path, a Hugging Face folder, an `.onnx` path (an Optimum-exported
//! decoder, run by the runtime), or `openai:http://HOST:PORT/v1#MODEL`.

use crate::error::{Error, Result};
use crate::model::chat::ChatTemplate;
use crate::model::gguf::GgufFile;
use crate::model::hf;
use crate::model::hub;
use crate::model::tokenizer::Tokenizer;
use crate::model::weights::{Model, ModelConfig};
use crate::paths;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The model used when none is named.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// What an alias is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A causal LM that answers questions.
    Decoder,
    /// A BERT-style masked LM (the attack's `mlm` source).
    MaskedLm,
    /// A sentence embedder (the similarity filter).
    SentenceEmbedding,
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Decoder => "causal LM",
            Role::MaskedLm => "masked LM",
            Role::SentenceEmbedding => "sentence embedding",
        }
    }
}

/// Where an alias's files come from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// Installed by `mscr setup` at this path under the models directory.
    Setup { path: &'static str },
    /// Downloaded from the hub on first use into `models_dir()/<alias>`.
    Hub {
        repo: &'static str,
        revision: &'static str,
        files: &'static [&'static str],
        optional: &'static [&'static str],
    },
}

#[derive(Clone, Copy, Debug)]
pub struct Alias {
    pub name: &'static str,
    pub role: Role,
    pub description: &'static str,
    pub source: Source,
}

const HF_DECODER_FILES: &[&str] = &["config.json", "tokenizer.json", "tokenizer_config.json"];
const HF_DECODER_OPTIONAL: &[&str] = &[
    "generation_config.json",
    "model.safetensors.index.json",
    "model.safetensors",
];

const ALIASES: &[Alias] = &[
    Alias {
        name: "smollm2-135m-instruct",
        role: Role::Decoder,
        description: "SmolLM2-135M-Instruct, GGUF Q4_1 (default model)",
        source: Source::Setup {
            path: "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
        },
    },
    Alias {
        name: "qwen2.5-coder-0.5b-instruct",
        role: Role::Decoder,
        description: "Qwen2.5-Coder-0.5B-Instruct, GGUF Q5_0/Q8_0/Q4_K/Q6_K (answers math)",
        source: Source::Setup {
            path: "qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct.gguf",
        },
    },
    Alias {
        name: "all-minilm-l6-v2",
        role: Role::SentenceEmbedding,
        description: "all-MiniLM-L6-v2 sentence embeddings (fp32)",
        source: Source::Setup {
            path: "all-minilm-l6-v2",
        },
    },
    Alias {
        name: "bert-tiny-mlm",
        role: Role::MaskedLm,
        description: "2-layer BERT masked LM (weak; for tests — use bert-base-uncased for attacks)",
        source: Source::Setup {
            path: "bert-tiny-mlm",
        },
    },
    Alias {
        name: "qwen2.5-0.5b-instruct",
        role: Role::Decoder,
        description: "Qwen2.5-0.5B-Instruct (safetensors, bf16)",
        source: Source::Hub {
            repo: "Qwen/Qwen2.5-0.5B-Instruct",
            revision: "main",
            files: HF_DECODER_FILES,
            optional: HF_DECODER_OPTIONAL,
        },
    },
    Alias {
        name: "qwen2.5-math-1.5b-instruct",
        role: Role::Decoder,
        description: "Qwen2.5-Math-1.5B-Instruct (safetensors, bf16)",
        source: Source::Hub {
            repo: "Qwen/Qwen2.5-Math-1.5B-Instruct",
            revision: "main",
            files: HF_DECODER_FILES,
            optional: HF_DECODER_OPTIONAL,
        },
    },
    Alias {
        name: "bert-base-uncased",
        role: Role::MaskedLm,
        description: "BERT base uncased masked LM (safetensors)",
        source: Source::Hub {
            repo: "google-bert/bert-base-uncased",
            revision: "main",
            files: &["config.json", "model.safetensors", "tokenizer.json"],
            optional: &["tokenizer_config.json", "vocab.txt"],
        },
    },
];

/// Every alias mscr knows.
pub fn aliases() -> &'static [Alias] {
    ALIASES
}

pub fn find_alias(name: &str) -> Option<&'static Alias> {
    ALIASES.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

impl Alias {
    /// Where the alias lives locally (a file or folder), present or not.
    pub fn local_path(&self) -> PathBuf {
        match self.source {
            Source::Setup { path } => paths::models_dir().join(path),
            Source::Hub { .. } => paths::models_dir().join(self.name),
        }
    }

    pub fn is_present(&self) -> bool {
        match self.source {
            Source::Setup { .. } => self.local_path().exists(),
            Source::Hub { .. } => self.local_path().join(".complete").exists(),
        }
    }

    /// Human-readable origin.
    pub fn origin(&self) -> String {
        match self.source {
            Source::Setup { .. } => "mscr setup (PyPI wheel)".to_string(),
            Source::Hub { repo, .. } => format!("hub: {repo}"),
        }
    }
}

/// A spec resolved to local files (or a server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolvedModel {
    Gguf { path: PathBuf },
    HfFolder { dir: PathBuf },
    Onnx { path: PathBuf },
    OpenAi { base_url: String, model: String },
}

impl ResolvedModel {
    pub fn kind(&self) -> &'static str {
        match self {
            ResolvedModel::Gguf { .. } => "gguf",
            ResolvedModel::HfFolder { .. } => "hf-folder",
            ResolvedModel::Onnx { .. } => "onnx",
            ResolvedModel::OpenAi { .. } => "openai",
        }
    }
}

/// Parses a spec without downloading: aliases map to their local path.
pub fn parse(spec: &str) -> Result<ResolvedModel> {
    let spec = spec.trim();
    if let Some(rest) = spec.strip_prefix("openai:") {
        let (url, model) = rest.split_once('#').ok_or_else(|| {
            Error::Config(format!(
                "model {spec:?}: an OpenAI-compatible spec is openai:http://HOST:PORT/v1#MODEL (the #MODEL part is missing)"
            ))
        })?;
        if !(url.starts_with("http://") || url.starts_with("https://")) || model.is_empty() {
            return Err(Error::Config(format!(
                "model {spec:?}: expected openai:http://HOST:PORT/v1#MODEL"
            )));
        }
        return Ok(ResolvedModel::OpenAi {
            base_url: url.trim_end_matches('/').to_string(),
            model: model.to_string(),
        });
    }
    if let Some(a) = find_alias(spec) {
        let p = a.local_path();
        return Ok(match a.source {
            Source::Setup { .. } if p.extension().is_some_and(|e| e == "gguf") => {
                ResolvedModel::Gguf { path: p }
            }
            _ => ResolvedModel::HfFolder { dir: p },
        });
    }
    let p = PathBuf::from(spec);
    let ext = p
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if p.is_dir() {
        if p.join("config.json").exists() {
            return Ok(ResolvedModel::HfFolder { dir: p });
        }
        return Err(Error::file(
            &p,
            "this folder has no config.json, so it is not a Hugging Face model folder",
        ));
    }
    match ext.as_deref() {
        Some("gguf") | Some("onnx") if !p.exists() => Err(Error::file(&p, "no such file")),
        Some("gguf") => Ok(ResolvedModel::Gguf { path: p }),
        Some("onnx") => Ok(ResolvedModel::Onnx { path: p }),
        _ => Err(Error::Config(format!(
            "model {spec:?} is not an alias ({}), a .gguf or .onnx file, a Hugging Face folder or openai:URL#MODEL",
            ALIASES
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Resolves a spec to local files, downloading hub aliases on first use.
pub fn resolve(spec: &str) -> Result<ResolvedModel> {
    let r = parse(spec)?;
    if let Some(a) = find_alias(spec.trim()) {
        match a.source {
            Source::Setup { .. } if !a.is_present() => {
                return Err(Error::Setup(format!(
                    "model {} is missing at {}; run `mscr setup` first",
                    a.name,
                    a.local_path().display()
                )));
            }
            Source::Hub {
                repo,
                revision,
                files,
                optional,
            } if !a.is_present() => {
                eprintln!(
                    "downloading {} ({repo}) into {}",
                    a.name,
                    a.local_path().display()
                );
                hub::download_repo(
                    &hub::endpoint(),
                    repo,
                    revision,
                    files,
                    optional,
                    &a.local_path(),
                )?;
            }
            _ => {}
        }
    }
    Ok(r)
}

/// Loads a decoder: weights, tokenizer and chat template.
pub fn load_decoder(resolved: &ResolvedModel) -> Result<(Model, Tokenizer, ChatTemplate)> {
    match resolved {
        ResolvedModel::Gguf { path } => load_gguf(path),
        ResolvedModel::HfFolder { dir } => hf::load_hf(dir),
        ResolvedModel::Onnx { path } => Err(Error::Unsupported(format!(
            "{}: an ONNX decoder runs as it is; it has no weights to import (load it through the runtime)",
            path.display()
        ))),
        ResolvedModel::OpenAi { base_url, model } => Err(Error::Unsupported(format!(
            "openai:{base_url}#{model}: a served model has no local weights"
        ))),
    }
}

/// Loads a GGUF checkpoint: model weights, its tokenizer and its chat template.
pub fn load_gguf(path: &Path) -> Result<(Model, Tokenizer, ChatTemplate)> {
    let g = GgufFile::open(path)?;
    let mut model = g.to_model()?;
    let tokenizer = Tokenizer::from_gguf(&g)?;
    // The tokenizer knows every end-of-turn token, not just the one eos id.
    model.config.eos_token_ids = tokenizer.eos_ids().to_vec();
    let template = ChatTemplate::from_gguf(&g, &tokenizer)?;
    Ok((model, tokenizer, template))
}

/// What `mscr models info` shows, read from metadata without dequantising.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub source: String,
    pub format: String,
    pub config: ModelConfig,
    pub params: u64,
    /// Query heads per layer (differ after pruning).
    pub heads_per_layer: Vec<usize>,
    /// Tensor storage types and how many tensors use each.
    pub types: BTreeMap<String, usize>,
    pub file_bytes: u64,
}

impl ModelInfo {
    /// From an in-memory model (after transforms).
    pub fn from_model(model: &Model, source: &str) -> ModelInfo {
        ModelInfo {
            source: source.to_string(),
            format: "in-memory f32".into(),
            config: model.config.clone(),
            params: model.params() as u64,
            heads_per_layer: model.layers.iter().map(|l| l.n_heads).collect(),
            types: BTreeMap::from([("F32".to_string(), 1)]),
            file_bytes: 0,
        }
    }
}

/// Describes a decoder from its files' metadata.
pub fn describe(resolved: &ResolvedModel) -> Result<ModelInfo> {
    match resolved {
        ResolvedModel::Gguf { path } => {
            let g = GgufFile::open(path)?;
            let config = g.config()?;
            Ok(ModelInfo {
                source: path.display().to_string(),
                format: format!("GGUF v{}", g.version),
                params: g.tensors.iter().map(|t| t.n_elements()).sum(),
                heads_per_layer: vec![config.n_heads; config.n_layers],
                types: g.type_counts(),
                file_bytes: g.file_len(),
                config,
            })
        }
        ResolvedModel::HfFolder { dir } => {
            let config = hf::read_config(dir)?;
            let (params, types, bytes) = safetensors_stats(dir)?;
            let heads_per_layer = transformed_heads(dir)
                .filter(|h| h.len() == config.n_layers)
                .unwrap_or_else(|| vec![config.n_heads; config.n_layers]);
            Ok(ModelInfo {
                source: dir.display().to_string(),
                format: "Hugging Face safetensors".into(),
                params,
                heads_per_layer,
                types,
                file_bytes: bytes,
                config,
            })
        }
        other => Err(Error::Unsupported(format!(
            "models info reads GGUF files and Hugging Face folders, not {} specs",
            other.kind()
        ))),
    }
}

/// The query heads of each layer of a folder written by `mscr transform`
/// (its config.json's `mscr.layers`, which head pruning makes differ), or
/// None for any other folder.
fn transformed_heads(dir: &Path) -> Option<Vec<usize>> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("mscr")?
        .get("layers")?
        .as_array()?
        .iter()
        .map(|l| l.get("num_attention_heads")?.as_u64().map(|n| n as usize))
        .collect()
}

/// `heads` as `mscr models info` prints it: `9 (every layer)`, or for a
/// pruned model the range and each layer's count.
pub fn heads_text(heads_per_layer: &[usize]) -> String {
    let (min, max) = (
        heads_per_layer.iter().copied().min().unwrap_or(0),
        heads_per_layer.iter().copied().max().unwrap_or(0),
    );
    if min == max {
        format!("{max} (every layer)")
    } else {
        let list: Vec<String> = heads_per_layer.iter().map(|h| h.to_string()).collect();
        format!(
            "{min}–{max} per layer (varies; layer 0 first: {})",
            list.join(" ")
        )
    }
}

fn safetensors_stats(dir: &Path) -> Result<(u64, BTreeMap<String, usize>, u64)> {
    let mut params = 0u64;
    let mut types = BTreeMap::new();
    let mut bytes = 0u64;
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    for p in files {
        let data = std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
        // SAFETY: read-only map of a file we only read.
        let mmap = unsafe { memmap2::Mmap::map(&data) }.map_err(|e| Error::io(&p, e))?;
        bytes += mmap.len() as u64;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&mmap)
            .map_err(|e| Error::file(&p, format!("not a valid safetensors file: {e}")))?;
        for (_, info) in meta.tensors() {
            params += info.shape.iter().product::<usize>() as u64;
            *types.entry(format!("{:?}", info.dtype)).or_insert(0) += 1;
        }
    }
    Ok((params, types, bytes))
}

/// The token embedding matrix `[vocab, hidden]` and the tokenizer of a decoder,
/// without loading the other weights (the attack's embedding-neighbour source).
pub fn load_embeddings(resolved: &ResolvedModel) -> Result<(crate::model::Matrix, Tokenizer)> {
    match resolved {
        ResolvedModel::Gguf { path } => {
            let g = GgufFile::open(path)?;
            Ok((g.matrix("token_embd.weight")?, Tokenizer::from_gguf(&g)?))
        }
        ResolvedModel::HfFolder { dir } => {
            Ok((hf::load_embeddings(dir)?, hf::load_tokenizer(dir)?))
        }
        other => Err(Error::Unsupported(format!(
            "token embeddings come from GGUF files and Hugging Face folders, not {} specs",
            other.kind()
        ))),
    }
}
