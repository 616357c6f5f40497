//! Decoding transforms: how a question's answer is drawn from the model and
//! decided. One file per transform, one arm of [`crate::transform::TransformSpec`]:
//!
//! - `sample` ([`sample`]): n sampled answers (temperature, top-p, seed); the
//!   figures average over them (with n = 1, plain sampled decoding);
//! - `self-consistency` ([`self_consistency`]): the majority answer of n samples;
//! - `best-of-n` ([`best_of_n`]): the sample a verifier model scores highest;
//! - `pass@k` ([`pass_at_k`]): the unbiased pass@k estimate from n samples.
//!
//! Every transform draws its samples the same way ([`draw`]): sample `j` of
//! every question is generated with its own seed ([`Sampling::decoding`]), all
//! questions of a step in one batch, so a backend that derives randomness from
//! the request seed alone (an OpenAI-compatible server) still returns n
//! different samples, and the same seed gives the same samples again.
//!
//! The attack sees a transform through [`Answerer`]: the clean answer and
//! every perturbed question's answer are [`Decision`]s (the majority answer,
//! the best-of-n pick, ...), and every sample counts as one query.

pub mod best_of_n;
pub mod pass_at_k;
pub mod sample;
pub mod self_consistency;

pub use best_of_n::{BestOfN, BestOfNConfig, VerifierConfig, VerifierMethod};
pub use pass_at_k::{PassAtKConfig, pass_at_k};
pub use sample::SampleConfig;
pub use self_consistency::{SelfConsistencyConfig, vote};

use crate::error::{Error, Result};
use crate::lm::{Decoding, Generation, LanguageModel, Prompt};
use crate::score::{AnswerStyle, check};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The sampling settings every decoding transform shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Samples per question.
    pub n: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
}

/// Most samples per question a transform may ask for.
pub const MAX_SAMPLES: usize = 256;

pub(crate) fn default_temperature() -> f32 {
    0.7
}
pub(crate) fn default_top_p() -> f32 {
    0.95
}

impl Sampling {
    /// Checks the settings; `kind` names the transform in the message.
    pub fn validate(&self, kind: &str) -> Result<()> {
        if self.n == 0 || self.n > MAX_SAMPLES {
            return Err(Error::Config(format!(
                "{kind}: n = {} samples; use 1 to {MAX_SAMPLES}",
                self.n
            )));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(Error::Config(format!(
                "{kind}: temperature = {} makes every sample the greedy answer; \
                 set temperature > 0 (e.g. 0.7), or drop the transform for greedy decoding",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::Config(format!(
                "{kind}: top_p = {} must be in (0, 1]",
                self.top_p
            )));
        }
        Ok(())
    }

    /// The seed of sample `j`: distinct per sample, fixed by the transform's seed.
    pub fn sample_seed(&self, j: usize) -> u64 {
        crate::runtime::session::splitmix64(self.seed.wrapping_add(j as u64))
    }

    /// The decoding of sample `j`: the campaign's length and stop strings,
    /// this transform's temperature and top-p, and sample `j`'s own seed.
    pub fn decoding(&self, base: &Decoding, j: usize) -> Decoding {
        Decoding {
            max_new_tokens: base.max_new_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.sample_seed(j),
            stop: base.stop.clone(),
        }
    }
}

/// Draws `s.n` samples for every prompt: one generate call per sample index,
/// holding every prompt, so each call is one batch. Returns `out[prompt][sample]`.
pub fn draw(
    model: &dyn LanguageModel,
    prompts: &[Prompt],
    base: &Decoding,
    s: &Sampling,
) -> Result<Vec<Vec<Generation>>> {
    let mut out: Vec<Vec<Generation>> = prompts.iter().map(|_| Vec::with_capacity(s.n)).collect();
    if prompts.is_empty() {
        return Ok(out);
    }
    for j in 0..s.n {
        let gens = model.generate(prompts, &s.decoding(base, j))?;
        if gens.len() != prompts.len() {
            return Err(Error::Runtime(format!(
                "model {} returned {} generations for {} prompts (sample {} of {})",
                model.id(),
                gens.len(),
                prompts.len(),
                j + 1,
                s.n
            )));
        }
        for (slot, g) in out.iter_mut().zip(gens) {
            slot.push(g);
        }
    }
    Ok(out)
}

/// What a decoding transform decided for one question, as records store it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The answer extracted from each sample, in sample order.
    pub answers: Vec<Option<String>>,
    /// Completion tokens of each sample.
    pub tokens: Vec<usize>,
    /// Samples whose answer matches the gold (pass@k's c).
    pub correct: usize,
    /// The sample whose output stands for the decision.
    pub chosen: usize,
    /// `self-consistency`: votes of the winning answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub votes: Option<usize>,
    /// `best-of-n`: the verifier's score of each sample.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<f32>,
    /// The decision's chance of being right: 1 or 0 for one decided answer,
    /// the pass@k estimate for `pass@k` and `sample`.
    pub credit: f64,
}

impl DecisionRecord {
    /// Completion tokens over every sample: what answering cost.
    pub fn total_tokens(&self) -> usize {
        self.tokens.iter().sum()
    }
}

/// A decoding transform's part of an attack record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecodingRecord {
    /// The transform's kind (`self-consistency`, `best-of-n`, `pass@k`, `sample`).
    pub kind: String,
    /// Samples per question.
    pub samples: usize,
    /// pass@k's k (1 for `sample`); absent for transforms that decide one answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    pub clean: DecisionRecord,
    /// The decision on the perturbed question the attack settled on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attacked: Option<DecisionRecord>,
}

/// One question's answer after decoding.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The output that stands for the decision (shown as the model's output).
    pub output: String,
    pub answer: Option<String>,
    /// The attack's view: the decided answer is right. For `pass@k` and
    /// `sample`: at least one sample is right.
    pub correct: bool,
    /// Completion tokens of `output`.
    pub tokens: usize,
    /// Samples drawn (queries spent).
    pub samples: usize,
    /// Absent for plain decoding (one generation, no transform).
    pub record: Option<DecisionRecord>,
    /// The checker failed on this output (it never panics; see
    /// `crate::score::Verdict::error`): the verdict is not to be trusted.
    pub judging_error: Option<String>,
}

impl Decision {
    /// Plain decoding: the one generation is the answer.
    pub fn plain(g: Generation, gold: &str, style: AnswerStyle) -> Decision {
        let v = check(&g.text, gold, style);
        Decision {
            output: g.text,
            answer: v.extracted,
            correct: v.equivalent,
            tokens: g.completion_tokens,
            samples: 1,
            record: None,
            judging_error: v.error,
        }
    }

    /// The chance the decision is right (the pass@k estimate where it applies).
    pub fn credit(&self) -> f64 {
        match &self.record {
            Some(r) => r.credit,
            None => f64::from(u8::from(self.correct)),
        }
    }

    /// The chance the attack's goal is met on this answer: 1 − credit.
    pub fn damage(&self) -> f64 {
        1.0 - self.credit()
    }
}

/// The samples of one call, with what a transform needs to decide.
pub struct DecideBatch<'a> {
    /// The attacked model (the verifier when `best-of-n` says `self`).
    pub model: &'a dyn LanguageModel,
    /// The question text of each prompt (for judge prompts).
    pub questions: &'a [String],
    pub prompts: &'a [Prompt],
    /// Each prompt's gold answer; only used to mark samples right or wrong
    /// after deciding, never by the decision itself.
    pub golds: &'a [&'a str],
    pub style: AnswerStyle,
}

/// A decoding transform.
pub trait DecodingTransform: Send + Sync {
    /// The kind as specs name it.
    fn kind(&self) -> &'static str;

    fn sampling(&self) -> Sampling;

    /// pass@k's k, for transforms whose figure is a pass@k estimate.
    fn k(&self) -> Option<usize> {
        None
    }

    /// Decides each question from its samples (`samples[i]` belongs to `batch.prompts[i]`).
    fn decide(&self, batch: &DecideBatch, samples: Vec<Vec<Generation>>) -> Result<Vec<Decision>>;
}

/// The extracted answer of each sample and how many match the gold.
pub(crate) fn judge_samples(
    samples: &[Generation],
    gold: &str,
    style: AnswerStyle,
) -> (Vec<Option<String>>, Vec<bool>) {
    samples
        .iter()
        .map(|g| {
            let v = check(&g.text, gold, style);
            (v.extracted, v.equivalent)
        })
        .unzip()
}

/// Builds the decision whose output is sample `chosen`.
pub(crate) fn decision_from(
    samples: Vec<Generation>,
    answers: Vec<Option<String>>,
    right: &[bool],
    chosen: usize,
    correct: bool,
    credit: f64,
) -> Decision {
    let tokens: Vec<usize> = samples.iter().map(|g| g.completion_tokens).collect();
    let n = samples.len();
    let g = samples
        .into_iter()
        .nth(chosen)
        .expect("chosen sample exists");
    Decision {
        answer: answers.get(chosen).cloned().flatten(),
        output: g.text,
        correct,
        tokens: g.completion_tokens,
        samples: n,
        record: Some(DecisionRecord {
            answers,
            tokens,
            correct: right.iter().filter(|r| **r).count(),
            chosen,
            votes: None,
            scores: Vec::new(),
            credit,
        }),
        judging_error: None,
    }
}

/// Answers questions for the attack: plain decoding (one generation per
/// question) or a decoding transform.
#[derive(Clone, Default)]
pub struct Answerer {
    transform: Option<Arc<dyn DecodingTransform>>,
}

impl std::fmt::Debug for Answerer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Answerer({})", self.kind())
    }
}

impl Answerer {
    /// Plain decoding with the campaign's settings.
    pub fn plain() -> Self {
        Answerer { transform: None }
    }

    pub fn new(transform: Arc<dyn DecodingTransform>) -> Self {
        Answerer {
            transform: Some(transform),
        }
    }

    /// `plain`, or the transform's kind.
    pub fn kind(&self) -> &'static str {
        self.transform.as_ref().map_or("plain", |t| t.kind())
    }

    /// Queries one question costs (samples drawn per question).
    pub fn samples(&self) -> usize {
        self.transform.as_ref().map_or(1, |t| t.sampling().n)
    }

    /// Generates every sample the prompts need, without deciding (fills a
    /// generation cache in large batches).
    pub fn warm(
        &self,
        model: &dyn LanguageModel,
        prompts: &[Prompt],
        decoding: &Decoding,
    ) -> Result<()> {
        match &self.transform {
            None => model.generate(prompts, decoding).map(|_| ()),
            Some(t) => draw(model, prompts, decoding, &t.sampling()).map(|_| ()),
        }
    }

    /// Answers each prompt; `questions[i]` is the question inside `prompts[i]`
    /// and `golds[i]` its gold answer.
    pub fn answer(
        &self,
        model: &dyn LanguageModel,
        questions: &[String],
        prompts: &[Prompt],
        decoding: &Decoding,
        golds: &[&str],
        style: AnswerStyle,
    ) -> Result<Vec<Decision>> {
        if questions.len() != prompts.len() || golds.len() != prompts.len() {
            return Err(Error::Other(format!(
                "{} questions and {} gold answers for {} prompts",
                questions.len(),
                golds.len(),
                prompts.len()
            )));
        }
        let out = match &self.transform {
            None => {
                let gens = model.generate(prompts, decoding)?;
                if gens.len() != prompts.len() {
                    return Err(Error::Runtime(format!(
                        "model returned {} generations for {} prompts",
                        gens.len(),
                        prompts.len()
                    )));
                }
                gens.into_iter()
                    .zip(golds)
                    .map(|(g, gold)| Decision::plain(g, gold, style))
                    .collect()
            }
            Some(t) => {
                let samples = draw(model, prompts, decoding, &t.sampling())?;
                let batch = DecideBatch {
                    model,
                    questions,
                    prompts,
                    golds,
                    style,
                };
                t.decide(&batch, samples)?
            }
        };
        if out.len() != prompts.len() {
            return Err(Error::Other(format!(
                "{} decided {} answers for {} prompts",
                self.kind(),
                out.len(),
                prompts.len()
            )));
        }
        Ok(out)
    }

    /// The record of a clean decision (`None` for plain decoding).
    pub fn record(&self, clean: &Decision) -> Option<DecodingRecord> {
        let t = self.transform.as_ref()?;
        Some(DecodingRecord {
            kind: t.kind().to_string(),
            samples: t.sampling().n,
            k: t.k(),
            clean: clean.record.clone()?,
            attacked: None,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lm::FinishReason;
    use std::sync::Mutex;

    /// A scripted model: the answer of sample `seed` to a prompt is looked
    /// up by the seed's position in the seeds it was asked with; it records
    /// every call.
    pub struct Scripted {
        /// Output text per sample index, cycled.
        pub outputs: Vec<&'static str>,
        pub seeds: Mutex<Vec<u64>>,
        pub calls: Mutex<Vec<usize>>,
    }

    impl Scripted {
        pub fn new(outputs: &[&'static str]) -> Self {
            Scripted {
                outputs: outputs.to_vec(),
                seeds: Mutex::new(Vec::new()),
                calls: Mutex::new(Vec::new()),
            }
        }
    }

    impl LanguageModel for Scripted {
        fn id(&self) -> String {
            "scripted".into()
        }
        fn generate(&self, prompts: &[Prompt], d: &Decoding) -> Result<Vec<Generation>> {
            self.calls.lock().unwrap().push(prompts.len());
            let mut seeds = self.seeds.lock().unwrap();
            if !seeds.contains(&d.seed) {
                seeds.push(d.seed);
            }
            let j = seeds.iter().position(|s| *s == d.seed).unwrap();
            Ok(prompts
                .iter()
                .map(|_| Generation {
                    text: self.outputs[j % self.outputs.len()].to_string(),
                    prompt_tokens: 4,
                    completion_tokens: 10 + j,
                    finish_reason: FinishReason::Eos,
                    logprobs: vec![],
                })
                .collect())
        }
        fn score(&self, pairs: &[(Prompt, String)]) -> Result<Vec<f32>> {
            // Longer continuations score lower; "Yes" beats "No".
            Ok(pairs
                .iter()
                .map(|(_, c)| match c.as_str() {
                    "Yes" => -0.5,
                    "No" => -1.0,
                    c => -(c.len() as f32),
                })
                .collect())
        }
        fn render(&self, p: &Prompt) -> Result<String> {
            Ok(p.key())
        }
        fn count_tokens(&self, text: &str) -> Result<usize> {
            Ok(text.split_whitespace().count())
        }
    }

    #[test]
    fn samples_get_distinct_fixed_seeds_and_one_batch_per_sample() {
        let s = Sampling {
            n: 4,
            temperature: 0.7,
            top_p: 0.9,
            seed: 3,
        };
        let seeds: Vec<u64> = (0..4).map(|j| s.sample_seed(j)).collect();
        let mut uniq = seeds.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 4);
        let base = Decoding {
            max_new_tokens: 77,
            stop: vec!["Q:".into()],
            ..Decoding::default()
        };
        let d = s.decoding(&base, 2);
        assert_eq!((d.max_new_tokens, d.temperature, d.top_p), (77, 0.7, 0.9));
        assert_eq!(d.stop, base.stop);
        assert_eq!(d.seed, seeds[2]);
        let m = Scripted::new(&["a", "b", "c", "d"]);
        let prompts = vec![Prompt::text("x"), Prompt::text("y"), Prompt::text("z")];
        let out = draw(&m, &prompts, &base, &s).unwrap();
        assert_eq!(*m.calls.lock().unwrap(), vec![3, 3, 3, 3]);
        assert_eq!(*m.seeds.lock().unwrap(), seeds);
        for per in &out {
            let texts: Vec<&str> = per.iter().map(|g| g.text.as_str()).collect();
            assert_eq!(texts, ["a", "b", "c", "d"]);
        }
    }

    #[test]
    fn sampling_settings_are_checked() {
        let ok = Sampling {
            n: 5,
            temperature: 0.7,
            top_p: 1.0,
            seed: 0,
        };
        assert!(ok.validate("x").is_ok());
        let e = Sampling {
            temperature: 0.0,
            ..ok
        }
        .validate("self-consistency")
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("self-consistency") && e.contains("temperature"),
            "{e}"
        );
        assert!(Sampling { n: 0, ..ok }.validate("x").is_err());
        assert!(Sampling { top_p: 1.5, ..ok }.validate("x").is_err());
    }
}
