//! The model tokenizer: a wrapper around the `tokenizers` crate, loaded from a
//! Hugging Face `tokenizer.json` or synthesised from GGUF metadata (byte-level
//! BPE with the pre-tokenizer llama.cpp names in `tokenizer.ggml.pre`).

use crate::error::{Error, Result};
use crate::model::gguf::{GgufFile, Value};
use serde_json::{Value as Json, json};
use std::path::Path;

/// ggml token types (`tokenizer.ggml.token_type`).
const TOKEN_CONTROL: i64 = 3;
const TOKEN_USER_DEFINED: i64 = 4;

/// Control tokens that end a turn even when the file names another eos id
/// (llama.cpp treats them as end-of-generation the same way).
const END_OF_TURN: [&str; 7] = [
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "<end_of_turn>",
    "<|eom_id|>",
];

/// Pre-tokenizer split regexes (the ones llama.cpp and the HF tokenizer.json files use).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Vec<u32>,
    pad: Option<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .finish()
    }
}

fn tk_err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("tokenizer: {what}: {e}"))
}

impl Tokenizer {
    /// Wraps a `tokenizers` tokenizer. `eos` lists every id that ends generation.
    pub fn new(
        mut inner: tokenizers::Tokenizer,
        bos: Option<u32>,
        eos: Vec<u32>,
        pad: Option<u32>,
    ) -> Self {
        inner.with_padding(None);
        inner.with_truncation(None).ok();
        Tokenizer {
            inner,
            bos,
            eos,
            pad,
        }
    }

    /// Loads a Hugging Face `tokenizer.json`; special ids come from the caller
    /// (tokenizer_config.json / generation_config.json, see `hf.rs`).
    pub fn from_json_file(path: &Path, bos: Option<u32>, eos: Vec<u32>) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let inner = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| Error::file(path, format!("cannot read this tokenizer.json: {e}")))?;
        Ok(Tokenizer::new(inner, bos, eos, None))
    }

    /// Synthesises the tokenizer a GGUF file describes.
    pub fn from_gguf(g: &GgufFile) -> Result<Self> {
        let path = g.path();
        let model = g.get_str("tokenizer.ggml.model").ok_or_else(|| {
            Error::file(
                path,
                "metadata tokenizer.ggml.model is missing; the file carries no tokenizer",
            )
        })?;
        if model != "gpt2" {
            return Err(Error::Unsupported(format!(
                "{}: tokenizer model {model:?} is not supported (byte-level BPE \"gpt2\" is); use the model's Hugging Face folder instead",
                path.display()
            )));
        }
        let tokens = string_array(g, "tokenizer.ggml.tokens")?;
        let merges = string_array(g, "tokenizer.ggml.merges")?;
        let types: Vec<i64> = match g.get("tokenizer.ggml.token_type") {
            Some(Value::Array(a)) => a.iter().map(|v| v.as_i64().unwrap_or(1)).collect(),
            _ => vec![1; tokens.len()],
        };
        let pre = g.get_str("tokenizer.ggml.pre").unwrap_or("default");
        let pre_tokenizer = pre_tokenizer_json(pre).ok_or_else(|| {
            Error::Unsupported(format!(
                "{}: pre-tokenizer {pre:?} is not supported (smollm, gpt2, default, qwen2, llama-bpe are)",
                path.display()
            ))
        })?;
        let normalizer = if pre == "qwen2" {
            json!({"type": "NFC"})
        } else {
            Json::Null
        };
        let id = |key: &str| {
            g.get_u64(key)
                .filter(|&v| (v as usize) < tokens.len())
                .map(|v| v as u32)
        };
        let bos = id("tokenizer.ggml.bos_token_id");
        let eos_id = id("tokenizer.ggml.eos_token_id");
        let add_bos = g
            .get("tokenizer.ggml.add_bos_token")
            .and_then(Value::as_bool)
            .unwrap_or(false);

        let mut vocab = serde_json::Map::with_capacity(tokens.len());
        let mut added = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            vocab.entry(t.clone()).or_insert(json!(i));
            let ty = types.get(i).copied().unwrap_or(1);
            if ty == TOKEN_CONTROL || ty == TOKEN_USER_DEFINED {
                added.push(json!({
                    "id": i, "content": t, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": ty == TOKEN_USER_DEFINED,
                    "special": ty == TOKEN_CONTROL,
                }));
            }
        }
        let post_processor = match (add_bos, bos) {
            (true, Some(b)) => {
                let bt = &tokens[b as usize];
                json!({
                    "type": "TemplateProcessing",
                    "single": [{"SpecialToken": {"id": bt, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                    "pair": [{"SpecialToken": {"id": bt, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                             {"SpecialToken": {"id": bt, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                    "special_tokens": {bt: {"id": bt, "ids": [b], "tokens": [bt]}},
                })
            }
            _ => Json::Null,
        };
        let spec = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": normalizer,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": post_processor,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {
                "type": "BPE", "dropout": null, "unk_token": null,
                "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": false, "byte_fallback": false,
                // llama-bpe (Llama 3) looks whole words up before merging.
                "ignore_merges": pre == "llama-bpe" || pre == "llama3",
                "vocab": vocab, "merges": merges,
            },
        });
        let inner: tokenizers::Tokenizer = serde_json::from_value(spec).map_err(|e| {
            Error::file(
                path,
                format!("cannot build a tokenizer from the GGUF metadata: {e}"),
            )
        })?;
        let mut eos: Vec<u32> = eos_id.into_iter().collect();
        for (i, t) in tokens.iter().enumerate() {
            if types.get(i) == Some(&TOKEN_CONTROL)
                && END_OF_TURN.contains(&t.as_str())
                && !eos.contains(&(i as u32))
            {
                eos.push(i as u32);
            }
        }
        let pad = id("tokenizer.ggml.padding_token_id");
        Ok(Tokenizer::new(inner, bos, eos, pad))
    }

    /// Token ids of `text`. `add_special` adds what the model's post-processor
    /// adds (e.g. a BOS token); special-token text such as `<|im_start|>` is
    /// always recognised.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, add_special)
            .map_err(|e| tk_err("encoding", e))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| tk_err("decoding", e))
    }

    /// Ids that end generation.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token's raw vocabulary string (e.g. `Ġthe`).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Surface text of every token, indexed by id (`" the"` for `Ġthe`);
    /// partial UTF-8 sequences decode to U+FFFD.
    pub fn vocab(&self) -> Vec<String> {
        (0..self.vocab_size() as u32)
            .map(|id| self.inner.decode(&[id], false).unwrap_or_default())
            .collect()
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// A decoder that turns generated ids into text piece by piece.
    pub fn stream(&self, skip_special: bool) -> StreamDecoder {
        StreamDecoder {
            ids: Vec::new(),
            prefix: 0,
            read: 0,
            skip_special,
        }
    }
}

/// Incremental decoding: each step returns the text that the new token
/// completes, holding back incomplete UTF-8 (byte-level tokens can split a
/// character) until a later token finishes it. Concatenated pieces equal
/// `decode(all ids)`.
#[derive(Clone, Debug)]
pub struct StreamDecoder {
    ids: Vec<u32>,
    prefix: usize,
    read: usize,
    skip_special: bool,
}

impl StreamDecoder {
    pub fn step(&mut self, tok: &Tokenizer, id: u32) -> Result<String> {
        self.ids.push(id);
        // Decode with some left context so decoders that strip a leading space
        // (or join pieces) see the same neighbourhood as a full decode.
        let before = tok.decode(&self.ids[self.prefix..self.read], self.skip_special)?;
        let now = tok.decode(&self.ids[self.prefix..], self.skip_special)?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') && now.starts_with(&before) {
            let piece = now[before.len()..].to_string();
            self.prefix = self.read;
            self.read = self.ids.len();
            Ok(piece)
        } else {
            Ok(String::new())
        }
    }

    /// Text still held back (an unfinished character) at the end of generation.
    pub fn flush(&mut self, tok: &Tokenizer) -> Result<String> {
        let before = tok.decode(&self.ids[self.prefix..self.read], self.skip_special)?;
        let now = tok.decode(&self.ids[self.prefix..], self.skip_special)?;
        self.prefix = self.ids.len();
        self.read = self.ids.len();
        Ok(now.strip_prefix(&before).unwrap_or(&now).to_string())
    }

    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
}

fn string_array(g: &GgufFile, key: &str) -> Result<Vec<String>> {
    match g.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::file(g.path(), format!("metadata {key} holds non-strings"))),
        _ => Err(Error::file(
            g.path(),
            format!("metadata {key} is missing; the file carries no complete tokenizer"),
        )),
    }
}

/// The pre-tokenizer for a llama.cpp `tokenizer.ggml.pre` name.
fn pre_tokenizer_json(pre: &str) -> Option<Json> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |re: &str| json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
    Some(match pre {
        // SmolLM2's tokenizer.json: every digit on its own, then GPT-2 byte level.
        "smollm" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        "gpt2" | "gpt-2" | "default" => byte_level(true),
        "qwen2" | "deepseek-r1-qwen" => {
            json!({"type": "Sequence", "pretokenizers": [split(QWEN2_SPLIT), byte_level(false)]})
        }
        "llama-bpe" | "llama3" => {
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_SPLIT), byte_level(false)]})
        }
        _ => return None,
    })
}
