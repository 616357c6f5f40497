//! Encoder models on ONNX Runtime for the attack: a BERT masked LM that fills a
//! `[MASK]` with whole words ([`MaskedLm`], the `mlm` candidate source) and
//! sentence embeddings ([`SentenceEncoder`], the similarity filter).
//!
//! Both load a Hugging Face folder (config.json, model.safetensors,
//! tokenizer.json), build an ONNX graph once (cached under
//! [`crate::paths::graphs_dir`]), or take an existing `.onnx` export (Hugging
//! Face Optimum layout) with tokenizer.json beside it.

mod bert;
mod exec;

pub use bert::{BUILDER_VERSION, BertConfig, Head as GraphHead};

use crate::error::{Error, Result};
use crate::lm::{MaskFiller, SentenceEmbedder};
use crate::runtime::LoadOptions;
use exec::{Batch, Runner, length_groups, load_tokenizer, pad, tokenize};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// Texts per ORT run: large enough to amortise the call, small enough that a
/// long batch's padding stays cheap.
pub const CHUNK: usize = 32;

/// Cosine similarity; 0 when either vector is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    dot / (na.sqrt() * nb.sqrt())
}

/// Writes an Optimum-layout ONNX graph for the checkpoint in `dir` to `out`:
/// [`GraphHead::Hidden`] (`last_hidden_state`) or [`GraphHead::FullLogits`]
/// (`logits`). Put tokenizer.json beside it to load it with `load`.
pub fn export_onnx(dir: &Path, head: GraphHead, out: &Path) -> Result<()> {
    bert::export(dir, head, out)
}

/// Where a model comes from: our graph built from a folder, or a given `.onnx`.
struct Source {
    dir: PathBuf,
    onnx: Option<PathBuf>,
}

impl Source {
    fn of(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Ok(Source {
                dir: path.to_path_buf(),
                onnx: None,
            });
        }
        if path.extension().is_some_and(|e| e == "onnx") {
            if !path.is_file() {
                return Err(Error::file(path, "the ONNX file does not exist"));
            }
            let dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            return Ok(Source {
                dir,
                onnx: Some(path.to_path_buf()),
            });
        }
        Err(Error::file(
            path,
            "expected a Hugging Face model folder (config.json, model.safetensors, tokenizer.json) \
             or an .onnx file with tokenizer.json beside it",
        ))
    }

    /// Positions the model accepts and the pad id, from config.json when present.
    fn limits(&self) -> Result<(usize, i64)> {
        if self.onnx.is_none() {
            let (cfg, _) = BertConfig::load(&self.dir)?;
            return Ok((cfg.max_position_embeddings, cfg.pad_token_id.unwrap_or(0)));
        }
        let path = self.dir.join("config.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok((512, 0));
        };
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::file(&path, format!("not valid JSON: {e}")))?;
        let max = v["max_position_embeddings"].as_u64().unwrap_or(512) as usize;
        let pad = v["pad_token_id"].as_i64().unwrap_or(0);
        Ok((max, pad))
    }
}

/// A string-or-`{"content": ...}` token entry of tokenizer_config.json.
fn config_token(dir: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("tokenizer_config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    match &v[key] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// A BERT masked language model filling one mask per text with whole words.
pub struct MaskedLm {
    runner: Runner,
    tok: Tokenizer,
    mask_token: String,
    mask_id: i64,
    pad_id: i64,
    max_len: usize,
    /// True for our graph (logits only at the masks), false for an Optimum
    /// export (full `[batch, seq, vocab]` logits, gathered here).
    in_graph_gather: bool,
    /// Token text per id, and whether it is a whole word worth proposing.
    vocab: Vec<String>,
    whole_word: Vec<bool>,
}

impl MaskedLm {
    /// Loads a `BertForMaskedLM` folder or an `.onnx` export with a `logits` output.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self> {
        let src = Source::of(path)?;
        let (max_len, pad_id) = src.limits()?;
        let tok = load_tokenizer(&src.dir.join("tokenizer.json"))?;
        let (model, in_graph_gather) = match &src.onnx {
            Some(p) => (p.clone(), false),
            None => {
                if !bert::has_mlm_head(&src.dir)? {
                    return Err(Error::file(
                        bert::weights_path(&src.dir)?,
                        "this checkpoint has no masked-LM head (cls.predictions.*): \
                         use a BertForMaskedLM model such as bert-base-uncased",
                    ));
                }
                (bert::cached_graph(&src.dir, GraphHead::MaskedLogits)?, true)
            }
        };
        let runner = Runner::new(&model, options)?;
        let want = if in_graph_gather {
            "mask_logits"
        } else {
            "logits"
        };
        if !runner.outputs.iter().any(|o| o == want) {
            return Err(Error::file(
                &model,
                format!(
                    "this ONNX model has no {want:?} output (outputs: {:?}): export it as a masked LM",
                    runner.outputs
                ),
            ));
        }
        let mask_token = config_token(&src.dir, "mask_token").unwrap_or_else(|| "[MASK]".into());
        let mask_id = tok.token_to_id(&mask_token).ok_or_else(|| {
            Error::file(
                src.dir.join("tokenizer.json"),
                format!("the mask token {mask_token:?} is not in the vocabulary"),
            )
        })? as i64;
        let size = tok.get_vocab_size(true);
        let mut vocab = vec![String::new(); size];
        for (t, id) in tok.get_vocab(true) {
            if let Some(slot) = vocab.get_mut(id as usize) {
                *slot = t;
            }
        }
        let special: std::collections::HashSet<u32> = tok
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| *id)
            .collect();
        let whole_word = vocab
            .iter()
            .enumerate()
            .map(|(id, t)| {
                !special.contains(&(id as u32))
                    && !t.is_empty()
                    && !t.starts_with("##")
                    && t.chars().all(char::is_alphabetic)
            })
            .collect();
        Ok(MaskedLm {
            runner,
            tok,
            mask_token,
            mask_id,
            pad_id,
            max_len,
            in_graph_gather,
            vocab,
            whole_word,
        })
    }

    /// The ONNX graph the session runs (the cached build, or the given file).
    pub fn model_path(&self) -> &Path {
        &self.runner.model_path
    }

    /// Vocabulary size (length of each row of [`MaskedLm::mask_logits`]).
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// Raw MLM logits at the mask of each text (one mask per text), batched
    /// in chunks of [`CHUNK`] texts of similar length.
    pub fn mask_logits(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let rows = tokenize(&self.tok, texts, self.max_len, false)?;
        let positions = self.mask_positions(&rows)?;
        let mut all = vec![Vec::new(); texts.len()];
        for group in length_groups(&rows, CHUNK) {
            let batch = pad(
                &group.iter().map(|&i| &rows[i]).collect::<Vec<_>>(),
                self.pad_id,
            );
            let seq = batch.seq();
            let flat: Vec<usize> = group
                .iter()
                .enumerate()
                .map(|(r, &i)| r * seq + positions[i])
                .collect();
            if self.in_graph_gather {
                let index = flat.iter().map(|&f| f as i64).collect();
                let (shape, data) = self.runner.run(&batch, Some(index), "mask_logits")?;
                let v = shape.get(1).copied().unwrap_or(0).max(1);
                for (&i, row) in group.iter().zip(data.chunks_exact(v)) {
                    all[i] = row.to_vec();
                }
            } else {
                let (shape, data) = self.runner.run(&batch, None, "logits")?;
                let v = shape.get(2).copied().unwrap_or(0);
                for (&i, &f) in group.iter().zip(&flat) {
                    let row = data.get(f * v..(f + 1) * v).ok_or_else(|| {
                        Error::file(
                            &self.runner.model_path,
                            format!(
                                "output logits has shape {shape:?}, expected [batch, seq, vocab]"
                            ),
                        )
                    })?;
                    all[i] = row.to_vec();
                }
            }
        }
        Ok(all)
    }

    /// The mask's position in each row; exactly one per text.
    fn mask_positions(&self, rows: &[exec::Row]) -> Result<Vec<usize>> {
        let mut out = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let hits: Vec<usize> = (0..row.ids.len())
                .filter(|&c| row.ids[c] == self.mask_id)
                .collect();
            if hits.len() != 1 {
                return Err(Error::Other(format!(
                    "text {i}: holds {} {} tokens, the masked LM needs exactly one",
                    hits.len(),
                    self.mask_token
                )));
            }
            out.push(hits[0]);
        }
        Ok(out)
    }
}

/// Softmax over the whole vocabulary, then the `top_k` whole-word ids, best first.
fn top_words(logits: &[f32], whole_word: &[bool], top_k: usize) -> Vec<(usize, f32)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let z: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
    let mut cands: Vec<(usize, f32)> = logits
        .iter()
        .enumerate()
        .filter(|(i, _)| whole_word.get(*i).copied().unwrap_or(false))
        .map(|(i, &l)| (i, (l - max).exp() / z))
        .collect();
    let by_prob = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if top_k < cands.len() {
        cands.select_nth_unstable_by(top_k, by_prob);
        cands.truncate(top_k);
    }
    cands.sort_by(by_prob);
    cands
}

impl MaskFiller for MaskedLm {
    fn fill(&self, texts: &[String], top_k: usize) -> Result<Vec<Vec<(String, f32)>>> {
        let logits = self.mask_logits(texts)?;
        Ok(logits
            .iter()
            .map(|row| {
                top_words(row, &self.whole_word, top_k)
                    .into_iter()
                    .map(|(id, p)| (self.vocab[id].clone(), p))
                    .collect()
            })
            .collect())
    }

    fn mask_token(&self) -> &str {
        &self.mask_token
    }
}

/// Mean-pooled, L2-normalised sentence embeddings (all-MiniLM-L6-v2 style).
pub struct SentenceEncoder {
    runner: Runner,
    tok: Tokenizer,
    pad_id: i64,
    max_len: usize,
    /// Our graph pools in-graph (`embeddings`); an Optimum export gives
    /// `last_hidden_state`, pooled here.
    pooled_in_graph: bool,
    /// Token-level states for [`SentenceEmbedder::embed_spans`]: the same
    /// session for an Optimum export, else a `last_hidden_state` graph built
    /// on first use (most attacks never ask).
    hidden: std::sync::Mutex<Option<std::sync::Arc<Runner>>>,
    dir: PathBuf,
    options: LoadOptions,
}

impl SentenceEncoder {
    /// Loads a BERT folder (`BertModel` or `BertForMaskedLM`; the head is
    /// ignored) or an `.onnx` export with a `last_hidden_state` output.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self> {
        let src = Source::of(path)?;
        let (mut max_len, pad_id) = src.limits()?;
        // sentence-transformers truncates to its own max_seq_length (256 for MiniLM).
        if let Ok(text) = std::fs::read_to_string(src.dir.join("sentence_bert_config.json"))
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(m) = v["max_seq_length"].as_u64()
        {
            max_len = max_len.min(m as usize);
        }
        let tok = load_tokenizer(&src.dir.join("tokenizer.json"))?;
        let model = match &src.onnx {
            Some(p) => p.clone(),
            None => bert::cached_graph(&src.dir, GraphHead::Pooled)?,
        };
        let runner = Runner::new(&model, options)?;
        let pooled_in_graph = runner.outputs.iter().any(|o| o == "embeddings");
        if !pooled_in_graph && !runner.outputs.iter().any(|o| o == "last_hidden_state") {
            return Err(Error::file(
                &model,
                format!(
                    "this ONNX model has neither an \"embeddings\" nor a \"last_hidden_state\" output (outputs: {:?})",
                    runner.outputs
                ),
            ));
        }
        Ok(SentenceEncoder {
            runner,
            tok,
            pad_id,
            max_len,
            pooled_in_graph,
            hidden: std::sync::Mutex::new(None),
            dir: src.dir.clone(),
            options: options.clone(),
        })
    }
}

impl SentenceEncoder {
    /// The ONNX graph the session runs (the cached build, or the given file).
    pub fn model_path(&self) -> &Path {
        &self.runner.model_path
    }

    /// The session giving `last_hidden_state`, built once.
    fn hidden_runner(&self) -> Result<Option<std::sync::Arc<Runner>>> {
        if !self.pooled_in_graph {
            return Ok(None); // the main session already gives token states
        }
        let mut slot = self
            .hidden
            .lock()
            .map_err(|_| Error::Runtime("an earlier encoder run panicked".into()))?;
        if slot.is_none() {
            let graph = bert::cached_graph(&self.dir, GraphHead::Hidden)?;
            *slot = Some(std::sync::Arc::new(Runner::new(&graph, &self.options)?));
        }
        Ok(slot.clone())
    }
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

impl SentenceEmbedder for SentenceEncoder {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let rows = tokenize(&self.tok, texts, self.max_len, true)?;
        let mut all = vec![Vec::new(); texts.len()];
        for group in length_groups(&rows, CHUNK) {
            let batch: Batch = pad(
                &group.iter().map(|&i| &rows[i]).collect::<Vec<_>>(),
                self.pad_id,
            );
            if self.pooled_in_graph {
                let (shape, data) = self.runner.run(&batch, None, "embeddings")?;
                let h = shape.get(1).copied().unwrap_or(1).max(1);
                for (&i, v) in group.iter().zip(data.chunks_exact(h)) {
                    all[i] = v.to_vec();
                }
            } else {
                let (shape, data) = self.runner.run(&batch, None, "last_hidden_state")?;
                let (s, h) = (batch.seq(), shape.get(2).copied().unwrap_or(0));
                if shape.len() != 3 || data.len() != batch.lens.len() * s * h {
                    return Err(Error::file(
                        &self.runner.model_path,
                        format!(
                            "last_hidden_state has shape {shape:?}, expected [batch, seq, hidden]"
                        ),
                    ));
                }
                for (r, (&i, &len)) in group.iter().zip(&batch.lens).enumerate() {
                    let mut v = vec![0f32; h];
                    for c in 0..len {
                        let row = &data[(r * s + c) * h..(r * s + c + 1) * h];
                        v.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                    }
                    v.iter_mut().for_each(|a| *a /= len.max(1) as f32);
                    normalise(&mut v);
                    all[i] = v;
                }
            }
        }
        Ok(all)
    }

    fn embed_spans(&self, spans: &[(String, std::ops::Range<usize>)]) -> Result<Vec<Vec<f32>>> {
        let own = self.hidden_runner()?;
        let runner: &Runner = own.as_deref().unwrap_or(&self.runner);
        // Token rows plus, per text, which tokens fall inside its span.
        let mut rows = Vec::with_capacity(spans.len());
        let mut inside: Vec<Vec<usize>> = Vec::with_capacity(spans.len());
        for (i, (text, range)) in spans.iter().enumerate() {
            let enc = self
                .tok
                .encode(text.as_str(), true)
                .map_err(|e| Error::Other(format!("text {i}: the tokenizer failed: {e}")))?;
            let n = enc.get_ids().len().min(self.max_len);
            let toks: Vec<usize> = enc.get_offsets()[..n]
                .iter()
                .enumerate()
                .filter(|(k, (a, b))| {
                    b > a
                        && *a >= range.start
                        && *b <= range.end
                        && enc.get_special_tokens_mask()[*k] == 0
                })
                .map(|(k, _)| k)
                .collect();
            let mut ids: Vec<i64> = enc.get_ids()[..n].iter().map(|&x| x as i64).collect();
            let mut types: Vec<i64> = enc.get_type_ids()[..n].iter().map(|&x| x as i64).collect();
            if n < enc.get_ids().len()
                && let (Some(&last), Some(l), Some(t)) =
                    (enc.get_ids().last(), ids.last_mut(), types.last_mut())
            {
                // Cut like `tokenize`: keep the closing special token.
                *l = last as i64;
                *t = 0;
            }
            rows.push(exec::Row { ids, types });
            inside.push(toks);
        }
        let mut all = vec![Vec::new(); spans.len()];
        for group in length_groups(&rows, CHUNK) {
            let batch: Batch = pad(
                &group.iter().map(|&i| &rows[i]).collect::<Vec<_>>(),
                self.pad_id,
            );
            let (shape, data) = runner.run(&batch, None, "last_hidden_state")?;
            let (s, h) = (batch.seq(), shape.get(2).copied().unwrap_or(0));
            if shape.len() != 3 || data.len() != batch.lens.len() * s * h {
                return Err(Error::file(
                    &runner.model_path,
                    format!("last_hidden_state has shape {shape:?}, expected [batch, seq, hidden]"),
                ));
            }
            for (r, &i) in group.iter().enumerate() {
                // A span with no token inside (cut off by the length limit)
                // gets the zero vector: cosine 0, so no evidence.
                let mut v = vec![0f32; h];
                for &c in &inside[i] {
                    let row = &data[(r * s + c) * h..(r * s + c + 1) * h];
                    v.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                }
                if !inside[i].is_empty() {
                    normalise(&mut v);
                }
                all[i] = v;
            }
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_basics() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn top_words_filters_and_sorts() {
        let logits = [3.0, 2.0, 1.0, 0.5, 4.0];
        let whole = [true, false, true, true, false];
        let top = top_words(&logits, &whole, 2);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![0, 2]);
        assert!(top[0].1 > top[1].1);
        let z: f32 = logits.iter().map(|l: &f32| (l - 4.0).exp()).sum();
        assert!((top[0].1 - (-1.0f32).exp() / z).abs() < 1e-6);
        assert_eq!(top_words(&logits, &whole, 10).len(), 3);
    }
}
