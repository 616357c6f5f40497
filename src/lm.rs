//! The language-model interface: the vocabulary every layer speaks.
//!
//! [`LanguageModel`] (and the encoder traits [`MaskFiller`], [`SentenceEmbedder`])
//! with [`Prompt`], [`ChatMessage`], [`Decoding`], [`Generation`] and
//! [`FinishReason`]. It depends on nothing else in the crate but the error
//! type: datasets, the importer, the checker, the attack and the campaign use
//! it; `runtime/` (ONNX Runtime, HTTP) implements it.

use crate::error::Result;
use serde::{Deserialize, Serialize};

/// How to decode. Greedy when `temperature == 0`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Decoding {
    /// `max_tokens` also reads, the name the command-line options use.
    #[serde(alias = "max_tokens")]
    pub max_new_tokens: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
    pub stop: Vec<String>,
}

impl Default for Decoding {
    fn default() -> Self {
        Decoding {
            max_new_tokens: 384,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            stop: Vec::new(),
        }
    }
}

impl Decoding {
    /// Checks the settings once, where they enter (command line, spec file):
    /// `what` names their origin in the message (`--temperature`, a file).
    /// NaN or negative temperature, top_p outside (0, 1] and a zero token
    /// budget would otherwise generate garbage or nothing, silently.
    pub fn validate(&self, what: &str) -> crate::error::Result<()> {
        let bad = |m: String| Err(crate::error::Error::Config(format!("{what}: {m}")));
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad(format!(
                "temperature {} must be a finite number ≥ 0 (0 = greedy, e.g. 0.7 to sample)",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!(
                "top_p {} must be in (0, 1] (1 = no nucleus cut)",
                self.top_p
            ));
        }
        if self.max_new_tokens == 0 {
            return bad("max tokens 0 generates nothing: give at least 1".into());
        }
        Ok(())
    }

    /// A stable string for cache keys.
    pub fn key(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// End-of-sequence token.
    Eos,
    /// A stop string matched.
    Stop,
    /// `max_new_tokens` reached.
    Length,
}

/// One completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish_reason: FinishReason,
    /// Log-probability of each generated token under the model (before sampling
    /// temperature); empty when the backend does not report them.
    #[serde(default)]
    pub logprobs: Vec<f32>,
}

/// A prompt: raw text, or chat messages rendered with the model's own template.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Prompt {
    Text { text: String },
    Chat { messages: Vec<ChatMessage> },
}

impl Prompt {
    pub fn text(t: impl Into<String>) -> Self {
        Prompt::Text { text: t.into() }
    }

    /// A one-turn chat with an optional system message.
    pub fn user(system: Option<&str>, user: impl Into<String>) -> Self {
        let mut messages = Vec::new();
        if let Some(s) = system {
            messages.push(ChatMessage {
                role: "system".into(),
                content: s.into(),
            });
        }
        messages.push(ChatMessage {
            role: "user".into(),
            content: user.into(),
        });
        Prompt::Chat { messages }
    }

    /// A stable string for cache keys.
    pub fn key(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// Size and cost of a model, for reports that compare transforms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    pub params: u64,
    /// Matrix FLOPs per generated token (projections and lm_head).
    pub flops_per_token: u64,
}

/// A text generator the attack and evaluator can query. Implementations batch
/// internally: callers pass every prompt of a step at once.
pub trait LanguageModel: Send + Sync {
    /// Parameters and FLOPs, where the backend knows them (not over HTTP).
    fn stats(&self) -> Option<ModelStats> {
        None
    }

    /// A stable identity (model + weights + transforms) for cache keys.
    fn id(&self) -> String;

    /// Completes each prompt.
    fn generate(&self, prompts: &[Prompt], decoding: &Decoding) -> Result<Vec<Generation>>;

    /// Teacher-forced `log p(continuation | prompt)`, summed over the
    /// continuation's tokens, one per pair, in one batched pass where possible.
    fn score(&self, pairs: &[(Prompt, String)]) -> Result<Vec<f32>>;

    /// The prompt exactly as the model sees it (chat template applied).
    fn render(&self, prompt: &Prompt) -> Result<String>;

    /// Number of tokens `text` encodes to.
    fn count_tokens(&self, text: &str) -> Result<usize>;
}

/// Fills a `[MASK]` position with whole words (the attack's `mlm` source).
pub trait MaskFiller: Send + Sync {
    /// For each text, which holds exactly one mask token (see [`MaskFiller::mask_token`]),
    /// the `top_k` most likely whole-word fillers with their probabilities, best first.
    fn fill(&self, texts: &[String], top_k: usize) -> Result<Vec<Vec<(String, f32)>>>;

    /// The literal mask token to put in texts, e.g. `[MASK]`.
    fn mask_token(&self) -> &str;
}

/// Sentence embeddings (mean-pooled, L2-normalised), for the similarity filter.
pub trait SentenceEmbedder: Send + Sync {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;

    /// A word in its sentence: for each `(text, byte range)`, the mean of the
    /// last hidden states of the tokens inside the range, L2-normalised (the
    /// `synonym` filter's in-context evidence). Encoders without token-level
    /// outputs say so.
    fn embed_spans(&self, spans: &[(String, std::ops::Range<usize>)]) -> Result<Vec<Vec<f32>>> {
        let _ = spans;
        Err(crate::error::Error::Config(
            "this sentence encoder gives no token-level vectors; use all-MiniLM-L6-v2 or a BERT folder"
                .into(),
        ))
    }
}
