//! The in-process backend: a built decoder graph on ONNX Runtime, with the
//! model's tokenizer and chat template, behind [`LanguageModel`].

use super::session::{DecoderSession, Sampling};
use crate::error::Result;
use crate::lm::{Decoding, FinishReason, Generation, LanguageModel, Prompt};
use crate::model::chat::ChatTemplate;
use crate::model::tokenizer::Tokenizer;

/// Which kind of graph runs the model.
pub enum Backend {
    /// A graph built here, with fused operators and a shared KV buffer.
    Fused(DecoderSession),
    /// An Optimum export run as it is.
    Optimum(super::optimum::OptimumSession),
}

impl Backend {
    fn generate(
        &self,
        prompts: &[Vec<u32>],
        sampling: &Sampling,
        stop: &mut dyn FnMut(usize, &[u32]) -> bool,
    ) -> Result<Vec<super::session::TokenOutput>> {
        match self {
            Backend::Fused(s) => s.generate(prompts, sampling, stop),
            Backend::Optimum(s) => s.generate(prompts, sampling, stop),
        }
    }

    fn score(&self, seqs: &[(Vec<u32>, usize)]) -> Result<Vec<Vec<f32>>> {
        match self {
            Backend::Fused(s) => s.score(seqs),
            Backend::Optimum(s) => s.score(seqs),
        }
    }
}

pub struct OrtModel {
    backend: Backend,
    tokenizer: Tokenizer,
    chat: ChatTemplate,
    id: String,
    /// Rows per ORT batch (bounds the KV cache's memory).
    pub max_batch: usize,
}

impl OrtModel {
    pub fn new(
        session: DecoderSession,
        tokenizer: Tokenizer,
        chat: ChatTemplate,
        id: String,
    ) -> Self {
        Self::with_backend(Backend::Fused(session), tokenizer, chat, id)
    }

    pub fn with_backend(
        backend: Backend,
        tokenizer: Tokenizer,
        chat: ChatTemplate,
        id: String,
    ) -> Self {
        OrtModel {
            backend,
            tokenizer,
            chat,
            id,
            max_batch: 16,
        }
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The fused-graph session (None for Optimum exports).
    pub fn session(&self) -> Option<&DecoderSession> {
        match &self.backend {
            Backend::Fused(s) => Some(s),
            Backend::Optimum(_) => None,
        }
    }

    /// Token ids of a prompt as the model sees it.
    pub fn encode_prompt(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        match prompt {
            // Plain text gets the tokenizer's own special tokens (e.g. BOS).
            Prompt::Text { text } => self.tokenizer.encode(text, true),
            // A rendered chat template already holds its special tokens.
            Prompt::Chat { .. } => self.tokenizer.encode(&self.render(prompt)?, false),
        }
    }

    fn generate_chunk(&self, ids: &[Vec<u32>], decoding: &Decoding) -> Result<Vec<Generation>> {
        let sampling = Sampling {
            max_new_tokens: decoding.max_new_tokens,
            temperature: decoding.temperature,
            top_p: decoding.top_p,
            seed: decoding.seed,
            ignore_eos: false,
        };
        let stops = &decoding.stop;
        let tok = &self.tokenizer;
        let mut stop_fn = |_: usize, tokens: &[u32]| -> bool {
            if stops.is_empty() {
                return false;
            }
            // Only the tail can newly match; decode a window covering the longest stop string.
            let window = stops.iter().map(|s| s.len()).max().unwrap_or(0) + 8;
            let from = tokens.len().saturating_sub(window);
            match tok.decode(&tokens[from..], true) {
                Ok(text) => stops.iter().any(|s| text.contains(s.as_str())),
                Err(_) => false,
            }
        };
        let outs = self.backend.generate(ids, &sampling, &mut stop_fn)?;
        let mut gens = Vec::with_capacity(outs.len());
        for (p, o) in ids.iter().zip(outs) {
            let mut text = self.tokenizer.decode(&o.tokens, true)?;
            let mut finish = if o.hit_eos {
                FinishReason::Eos
            } else {
                FinishReason::Length
            };
            if let Some(cut) = stops.iter().filter_map(|s| text.find(s.as_str())).min() {
                text.truncate(cut);
                finish = FinishReason::Stop;
            }
            gens.push(Generation {
                text,
                prompt_tokens: p.len(),
                completion_tokens: o.tokens.len(),
                finish_reason: finish,
                logprobs: o.logprobs,
            });
        }
        Ok(gens)
    }
}

impl LanguageModel for OrtModel {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn stats(&self) -> Option<crate::lm::ModelStats> {
        let info = &self.session()?.info;
        (info.params > 0).then_some(crate::lm::ModelStats {
            params: info.params,
            flops_per_token: info.flops_per_token,
        })
    }

    fn generate(&self, prompts: &[Prompt], decoding: &Decoding) -> Result<Vec<Generation>> {
        let ids = prompts
            .iter()
            .map(|p| self.encode_prompt(p))
            .collect::<Result<Vec<_>>>()?;
        // Similar lengths together waste less padding; results do not depend on
        // batch composition (rows are independent), so order is restored after.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| (ids[i].len(), i));
        let mut out: Vec<Option<Generation>> = vec![None; ids.len()];
        for chunk in order.chunks(self.max_batch.max(1)) {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
            for (&i, g) in chunk.iter().zip(self.generate_chunk(&batch, decoding)?) {
                out[i] = Some(g);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    fn score(&self, pairs: &[(Prompt, String)]) -> Result<Vec<f32>> {
        let mut seqs = Vec::with_capacity(pairs.len());
        for (p, cont) in pairs {
            let mut ids = self.encode_prompt(p)?;
            let start = ids.len();
            ids.extend(self.tokenizer.encode(cont, false)?);
            seqs.push((ids, start));
        }
        let mut out = Vec::with_capacity(seqs.len());
        for chunk in seqs.chunks(self.max_batch.max(1)) {
            out.extend(
                self.backend
                    .score(chunk)?
                    .into_iter()
                    .map(|v| v.iter().sum::<f32>()),
            );
        }
        Ok(out)
    }

    fn render(&self, prompt: &Prompt) -> Result<String> {
        match prompt {
            Prompt::Text { text } => Ok(text.clone()),
            Prompt::Chat { messages } => self.chat.render(messages, true),
        }
    }

    fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(self.tokenizer.encode(text, false)?.len())
    }
}
