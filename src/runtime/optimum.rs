//! Running an existing ONNX decoder exported by Hugging Face Optimum
//! (`input_ids`, `attention_mask`, `position_ids`, `past_key_values.N.key/value`
//! → `logits`, `present.N.key/value`). Prompts are left-padded; each step feeds
//! the previous step's present as the next past.

use super::session::{Sampling, SessionOptions, TokenOutput};
use crate::error::{Error, Result};
use ort::session::Session;
use ort::value::{DynValue, Tensor};
use std::path::Path;
use std::sync::Mutex;

pub struct OptimumSession {
    session: Mutex<Session>,
    n_layers: usize,
    kv_heads: usize,
    head_dim: usize,
    has_position_ids: bool,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: u32,
}

impl OptimumSession {
    pub fn open(
        path: &Path,
        eos_token_ids: Vec<u32>,
        pad_token_id: u32,
        options: &SessionOptions,
    ) -> Result<Self> {
        let session = super::env::open_session(path, options.device, options.threads, true)?;
        let names: Vec<String> = session
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .collect();
        for need in ["input_ids", "attention_mask"] {
            if !names.iter().any(|n| n == need) {
                return Err(Error::file(
                    path,
                    format!(
                        "not an Optimum decoder export: no input `{need}` (inputs: {})",
                        names.join(", ")
                    ),
                ));
            }
        }
        let n_layers = names
            .iter()
            .filter(|n| n.starts_with("past_key_values.") && n.ends_with(".key"))
            .count();
        if n_layers == 0 {
            return Err(Error::file(
                path,
                "the export has no past_key_values inputs: export it with past (`--task text-generation-with-past`)",
            ));
        }
        // KV heads and head size come from the declared input shape [B, kv, past, hd].
        let first = session
            .inputs()
            .iter()
            .find(|i| i.name() == "past_key_values.0.key")
            .ok_or_else(|| Error::file(path, "no input past_key_values.0.key"))?;
        let shape: Vec<i64> = match first.dtype() {
            ort::value::ValueType::Tensor { shape, .. } => shape.iter().copied().collect(),
            _ => Vec::new(),
        };
        if shape.len() != 4 || shape[1] <= 0 || shape[3] <= 0 {
            return Err(Error::file(
                path,
                format!(
                    "past_key_values.0.key has shape {shape:?}; expected [batch, kv_heads, past, head_dim] with fixed heads and size"
                ),
            ));
        }
        Ok(OptimumSession {
            session: Mutex::new(session),
            n_layers,
            kv_heads: shape[1] as usize,
            head_dim: shape[3] as usize,
            has_position_ids: names.iter().any(|n| n == "position_ids"),
            eos_token_ids,
            pad_token_id,
        })
    }

    /// One forward pass; returns logits `[B, S, V]` flattened with V, and the presents.
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn step(
        &self,
        session: &mut Session,
        ids: Vec<i64>,
        b: usize,
        s: usize,
        mask: Vec<i64>,
        total: usize,
        positions: Vec<i64>,
        past: Vec<DynValue>,
    ) -> Result<(Vec<f32>, usize, Vec<DynValue>)> {
        let mut inputs: Vec<(String, DynValue)> = vec![
            (
                "input_ids".into(),
                Tensor::from_array(([b, s], ids))?.into_dyn(),
            ),
            (
                "attention_mask".into(),
                Tensor::from_array(([b, total], mask))?.into_dyn(),
            ),
        ];
        if self.has_position_ids {
            inputs.push((
                "position_ids".into(),
                Tensor::from_array(([b, s], positions))?.into_dyn(),
            ));
        }
        for (i, v) in past.into_iter().enumerate() {
            let kind = if i % 2 == 0 { "key" } else { "value" };
            inputs.push((format!("past_key_values.{}.{kind}", i / 2), v));
        }
        let mut outputs = session.run(inputs)?;
        let logits = outputs
            .remove("logits")
            .ok_or_else(|| Error::Runtime("the model returned no logits".into()))?;
        let (shape, data) = logits.try_extract_tensor::<f32>()?;
        let vocab = *shape.last().unwrap_or(&0) as usize;
        let data = data.to_vec();
        let mut presents = Vec::with_capacity(self.n_layers * 2);
        for l in 0..self.n_layers {
            for kind in ["key", "value"] {
                let name = format!("present.{l}.{kind}");
                presents.push(
                    outputs
                        .remove(name.as_str())
                        .ok_or_else(|| Error::Runtime(format!("the model returned no {name}")))?,
                );
            }
        }
        Ok((data, vocab, presents))
    }

    fn empty_past(&self, b: usize) -> Result<Vec<DynValue>> {
        (0..self.n_layers * 2)
            .map(|_| {
                Ok(
                    Tensor::from_array(([b, self.kv_heads, 0, self.head_dim], Vec::<f32>::new()))?
                        .into_dyn(),
                )
            })
            .collect()
    }

    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        sampling: &Sampling,
        stop: &mut dyn FnMut(usize, &[u32]) -> bool,
    ) -> Result<Vec<TokenOutput>> {
        let b = prompts.len();
        if b == 0 {
            return Ok(Vec::new());
        }
        let longest = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
        let pad = self.pad_token_id as i64;
        // Left padding: every row's last prompt token is in the last column.
        let mut ids = vec![pad; b * longest];
        let mut mask = vec![0i64; b * longest];
        let mut positions = vec![0i64; b * longest];
        for (r, p) in prompts.iter().enumerate() {
            let off = longest - p.len();
            for (j, t) in p.iter().enumerate() {
                ids[r * longest + off + j] = *t as i64;
                mask[r * longest + off + j] = 1;
                positions[r * longest + off + j] = j as i64;
            }
        }
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Runtime("session lock poisoned".into()))?;
        let past = self.empty_past(b)?;
        let (logits, vocab, mut past) = self.step(
            &mut session,
            ids,
            b,
            longest,
            mask.clone(),
            longest,
            positions,
            past,
        )?;
        let mut last: Vec<Vec<f32>> = (0..b)
            .map(|r| {
                let at = (r * longest + longest - 1) * vocab;
                logits[at..at + vocab].to_vec()
            })
            .collect();
        let mut rows = super::session::Rows::new(prompts, sampling);
        let mut lens: Vec<i64> = prompts.iter().map(|p| p.len() as i64).collect();
        let mut total = longest;
        while let Some(next) = rows.advance(|r| &last[r], sampling, &self.eos_token_ids, pad, stop)
        {
            total += 1;
            let mut new_mask = Vec::with_capacity(b * total);
            for r in 0..b {
                new_mask.extend_from_slice(&mask[r * (total - 1)..(r + 1) * (total - 1)]);
                new_mask.push(1);
            }
            mask = new_mask;
            let positions = lens.clone();
            for l in &mut lens {
                *l += 1;
            }
            let (logits, vocab, presents) = self.step(
                &mut session,
                next,
                b,
                1,
                mask.clone(),
                total,
                positions,
                past,
            )?;
            past = presents;
            last = (0..b)
                .map(|r| logits[r * vocab..(r + 1) * vocab].to_vec())
                .collect();
        }
        Ok(rows.outs)
    }

    /// Per-token log-probs of `tokens[start..]`, one full pass per sequence.
    pub fn score(&self, seqs: &[(Vec<u32>, usize)]) -> Result<Vec<Vec<f32>>> {
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Runtime("session lock poisoned".into()))?;
        let mut out = Vec::with_capacity(seqs.len());
        for (t, start) in seqs {
            if *start == 0 || *start > t.len() {
                return Err(Error::Config(
                    "scoring needs a non-empty prefix inside the sequence".into(),
                ));
            }
            let n = t.len();
            let ids: Vec<i64> = t.iter().map(|v| *v as i64).collect();
            let past = self.empty_past(1)?;
            let (logits, vocab, _) = self.step(
                &mut session,
                ids,
                1,
                n,
                vec![1; n],
                n,
                (0..n as i64).collect(),
                past,
            )?;
            out.push(
                (*start..n)
                    .map(|p| {
                        super::session::log_softmax_at(
                            &logits[(p - 1) * vocab..p * vocab],
                            t[p] as usize,
                        )
                    })
                    .collect(),
            );
        }
        Ok(out)
    }
}
