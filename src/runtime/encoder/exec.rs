//! One ORT session for an encoder graph (ours or an Optimum export), and the
//! tokenizer feeding it padded batches.

use crate::error::{Error, Result};
use crate::runtime::LoadOptions;
use ndarray::Array2;
use ort::session::Session;
use ort::value::Tensor;
use std::path::Path;
use std::sync::Mutex;
use tokenizers::Tokenizer;

/// Opens `model` on the device and thread count of `options`.
pub fn open_session(model: &Path, options: &LoadOptions) -> Result<Session> {
    // Encoder calls alternate with the language model's: idle threads spinning
    // after each run would steal its cores.
    crate::runtime::env::open_session(model, options.device, options.threads, false)
}

/// Loads `tokenizer.json` with padding and truncation off: batches are padded
/// here, and over-long inputs are reported rather than silently cut.
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    if !path.is_file() {
        return Err(Error::file(
            path,
            "tokenizer.json is missing: the encoder needs the model's tokenizer.json beside its weights",
        ));
    }
    let mut t = Tokenizer::from_file(path)
        .map_err(|e| Error::file(path, format!("not a valid tokenizer.json: {e}")))?;
    t.with_padding(None);
    t.with_truncation(None)
        .map_err(|e| Error::file(path, format!("could not disable truncation: {e}")))?;
    Ok(t)
}

/// A tokenized, right-padded batch.
pub struct Batch {
    pub ids: Array2<i64>,
    pub mask: Array2<i64>,
    pub types: Array2<i64>,
    /// Real (unpadded) length of each row.
    pub lens: Vec<usize>,
}

impl Batch {
    pub fn seq(&self) -> usize {
        self.ids.ncols()
    }
}

/// One tokenized text: ids and token type ids.
pub struct Row {
    pub ids: Vec<i64>,
    pub types: Vec<i64>,
}

/// Tokenizes `texts` with special tokens. Rows longer than `max_len` are cut
/// to `max_len` when `truncate`, else an error naming the text.
pub fn tokenize(
    tok: &Tokenizer,
    texts: &[String],
    max_len: usize,
    truncate: bool,
) -> Result<Vec<Row>> {
    let mut rows = Vec::with_capacity(texts.len());
    // One at a time: the tokenizer's parallel batch mode would compete with
    // ORT's threads for the same cores, for little gain on short texts.
    for (i, text) in texts.iter().enumerate() {
        let enc = tok
            .encode(text.as_str(), true)
            .map_err(|e| Error::Other(format!("text {i}: the tokenizer failed: {e}")))?;
        let mut ids: Vec<i64> = enc.get_ids().iter().map(|&x| x as i64).collect();
        let mut types: Vec<i64> = enc.get_type_ids().iter().map(|&x| x as i64).collect();
        if ids.len() > max_len {
            if !truncate {
                return Err(Error::Other(format!(
                    "text {i} is {} tokens long, more than the model's {max_len} positions: shorten it",
                    ids.len()
                )));
            }
            // Keep the closing special token (e.g. [SEP]) as the models were trained.
            let last = ids[ids.len() - 1];
            ids.truncate(max_len);
            types.truncate(max_len);
            if let Some(l) = ids.last_mut() {
                *l = last;
            }
        }
        rows.push(Row { ids, types });
    }
    Ok(rows)
}

/// Pads `rows` on the right with `pad_id` into one batch.
pub fn pad(rows: &[&Row], pad_id: i64) -> Batch {
    let seq = rows.iter().map(|r| r.ids.len()).max().unwrap_or(0).max(1);
    let n = rows.len();
    let mut ids = Array2::from_elem((n, seq), pad_id);
    let mut mask = Array2::zeros((n, seq));
    let mut types = Array2::zeros((n, seq));
    let mut lens = Vec::with_capacity(n);
    for (r, row) in rows.iter().enumerate() {
        for (c, (&a, &b)) in row.ids.iter().zip(&row.types).enumerate() {
            ids[[r, c]] = a;
            mask[[r, c]] = 1;
            types[[r, c]] = b;
        }
        lens.push(row.ids.len());
    }
    Batch {
        ids,
        mask,
        types,
        lens,
    }
}

/// Chunks of at most `chunk` text indices, grouped by token length so each
/// padded batch wastes little compute on padding.
pub fn length_groups(rows: &[Row], chunk: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rows[i].ids.len());
    order.chunks(chunk.max(1)).map(<[usize]>::to_vec).collect()
}

/// A session plus what its inputs look like.
pub struct Runner {
    session: Mutex<Session>,
    has_token_types: bool,
    pub outputs: Vec<String>,
    pub model_path: std::path::PathBuf,
}

impl Runner {
    pub fn new(model: &Path, options: &LoadOptions) -> Result<Self> {
        let session = open_session(model, options)?;
        let inputs: Vec<String> = session
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .collect();
        for need in ["input_ids", "attention_mask"] {
            if !inputs.iter().any(|i| i == need) {
                return Err(Error::file(
                    model,
                    format!("this ONNX encoder has no {need:?} input (inputs: {inputs:?})"),
                ));
            }
        }
        let outputs = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        Ok(Runner {
            has_token_types: inputs.iter().any(|i| i == "token_type_ids"),
            session: Mutex::new(session),
            outputs,
            model_path: model.to_path_buf(),
        })
    }

    /// Runs one batch (plus optional `masked_index`) and returns `output` as
    /// (shape, data).
    pub fn run(
        &self,
        batch: &Batch,
        masked_index: Option<Vec<i64>>,
        output: &str,
    ) -> Result<(Vec<usize>, Vec<f32>)> {
        let mut inputs = ort::inputs![
            "input_ids" => Tensor::from_array(batch.ids.clone())?,
            "attention_mask" => Tensor::from_array(batch.mask.clone())?,
        ];
        if self.has_token_types {
            inputs.push((
                "token_type_ids".into(),
                Tensor::from_array(batch.types.clone())?.into(),
            ));
        }
        if let Some(m) = masked_index {
            let n = m.len();
            inputs.push((
                "masked_index".into(),
                Tensor::from_array(([n], m.into_boxed_slice()))?.into(),
            ));
        }
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Runtime("an earlier encoder run panicked".into()))?;
        let out = session.run(inputs)?;
        let value = out.get(output).ok_or_else(|| {
            Error::file(
                &self.model_path,
                format!("the graph has no output {output:?}"),
            )
        })?;
        let (shape, data) = value.try_extract_tensor::<f32>()?;
        Ok((
            shape.iter().map(|&d| d.max(0) as usize).collect(),
            data.to_vec(),
        ))
    }
}
