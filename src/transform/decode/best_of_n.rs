//! `best-of-n`: n sampled solutions, and the one a verifier scores highest is
//! the answer. The verifier is any model spec (`self` = the attacked model,
//! transforms included) scoring each candidate solution without ever seeing
//! the gold answer:
//!
//! - `method = "log-likelihood"`: the verifier's log-probability of the
//!   solution given the question's prompt, averaged per token (`normalize =
//!   false` sums instead);
//! - `method = "judge"`: a judge prompt (`attacks/prompts/verifier.toml`, or
//!   `template = "..."`) shows the question and the solution and asks whether
//!   it is correct; the score is log p("Yes") − log p("No") as the reply.
//!
//! Both are teacher-forced scoring passes, so the verifier generates nothing
//! and its cost is not counted as queries. Ties go to the earlier sample.

use super::{
    DecideBatch, Decision, DecodingTransform, Sampling, decision_from, default_temperature,
    default_top_p, judge_samples,
};
use crate::error::{Error, Result};
use crate::lm::{ChatMessage, Generation, LanguageModel, Prompt};
use crate::runtime::LoadOptions;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

const JUDGE_BUILTIN: &str = include_str!("../../../attacks/prompts/verifier.toml");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BestOfNConfig {
    /// Samples per question.
    pub n: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
    pub verifier: VerifierConfig,
}

impl Default for BestOfNConfig {
    fn default() -> Self {
        BestOfNConfig {
            n: 4,
            temperature: default_temperature(),
            top_p: default_top_p(),
            seed: 0,
            verifier: VerifierConfig::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifierMethod {
    /// Log-probability of the solution given the question's prompt.
    #[default]
    LogLikelihood,
    /// log p("Yes") − log p("No") after a judge prompt.
    Judge,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifierConfig {
    /// A model spec, or `self` for the attacked model.
    pub model: String,
    pub method: VerifierMethod,
    /// `log-likelihood`: average over the solution's tokens (else the sum,
    /// which favours short solutions).
    pub normalize: bool,
    /// `judge`: a template file with `{question}` and `{solution}` (in a
    /// campaign: relative to the spec file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<PathBuf>,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            model: "self".into(),
            method: VerifierMethod::LogLikelihood,
            normalize: true,
            template: None,
        }
    }
}

impl VerifierConfig {
    pub fn is_self(&self) -> bool {
        self.model.trim() == "self"
    }
}

/// The judge prompt: `{question}` and `{solution}` filled in one pass.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeTemplate {
    pub name: String,
    #[serde(default)]
    pub system: Option<String>,
    pub user: String,
    #[serde(default = "yes")]
    pub chat: bool,
}

fn yes() -> bool {
    true
}

impl JudgeTemplate {
    pub fn builtin() -> JudgeTemplate {
        Self::parse(JUDGE_BUILTIN, "attacks/prompts/verifier.toml")
            .expect("built-in judge template")
    }

    pub fn from_file(path: &std::path::Path) -> Result<JudgeTemplate> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, path: &str) -> Result<JudgeTemplate> {
        let t: JudgeTemplate = toml::from_str(text)
            .map_err(|e| Error::file(path, format!("invalid judge template: {}", e.message())))?;
        for p in ["{question}", "{solution}"] {
            if !t.user.contains(p) {
                return Err(Error::file(
                    path,
                    format!("the judge template's `user` text has no `{p}` placeholder"),
                ));
            }
        }
        Ok(t)
    }

    /// The judge prompt for one candidate.
    pub fn render(&self, question: &str, solution: &str) -> Prompt {
        let mut text = String::with_capacity(self.user.len() + question.len() + solution.len());
        let mut rest = self.user.as_str();
        while let Some(i) = rest.find('{') {
            text.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(t) = tail.strip_prefix("{question}") {
                text.push_str(question);
                rest = t;
            } else if let Some(t) = tail.strip_prefix("{solution}") {
                text.push_str(solution);
                rest = t;
            } else {
                text.push('{');
                rest = &tail[1..];
            }
        }
        text.push_str(rest);
        if self.chat {
            let mut messages = Vec::new();
            if let Some(s) = &self.system {
                messages.push(ChatMessage {
                    role: "system".into(),
                    content: s.clone(),
                });
            }
            messages.push(ChatMessage {
                role: "user".into(),
                content: text,
            });
            Prompt::Chat { messages }
        } else {
            Prompt::text(text)
        }
    }
}

impl BestOfNConfig {
    pub fn validate(&self) -> Result<()> {
        self.sampling().validate("best-of-n")?;
        if self.verifier.model.trim().is_empty() {
            return Err(Error::Config(
                "best-of-n: verifier.model is empty; use \"self\" or a model spec".into(),
            ));
        }
        if self.verifier.method != VerifierMethod::Judge && self.verifier.template.is_some() {
            return Err(Error::Config(
                "best-of-n: verifier.template is only used with method = \"judge\"".into(),
            ));
        }
        Ok(())
    }

    fn sampling(&self) -> Sampling {
        Sampling {
            n: self.n,
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
        }
    }

    /// The transform, with its verifier model loaded (unless `self`) and its
    /// judge template read.
    pub fn build(&self, options: &LoadOptions) -> Result<BestOfN> {
        self.validate()?;
        let verifier = if self.verifier.is_self() {
            None
        } else {
            Some(crate::runtime::load_model(&self.verifier.model, options)?)
        };
        let judge = match (&self.verifier.method, &self.verifier.template) {
            (VerifierMethod::Judge, Some(p)) => Some(JudgeTemplate::from_file(p)?),
            (VerifierMethod::Judge, None) => Some(JudgeTemplate::builtin()),
            _ => None,
        };
        Ok(BestOfN {
            config: self.clone(),
            verifier,
            judge,
        })
    }
}

/// `best-of-n`, ready to run.
#[derive(Clone)]
pub struct BestOfN {
    pub config: BestOfNConfig,
    /// `None`: the attacked model verifies its own samples.
    verifier: Option<Arc<dyn LanguageModel>>,
    judge: Option<JudgeTemplate>,
}

impl BestOfN {
    /// The verifier's score of every candidate of every question, in one
    /// scoring call.
    fn scores(&self, batch: &DecideBatch, samples: &[Vec<Generation>]) -> Result<Vec<Vec<f32>>> {
        let model: &dyn LanguageModel = match &self.verifier {
            Some(m) => m.as_ref(),
            None => batch.model,
        };
        let mut pairs: Vec<(Prompt, String)> = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            for g in s {
                match &self.judge {
                    None => pairs.push((batch.prompts[i].clone(), g.text.clone())),
                    Some(t) => {
                        let p = t.render(&batch.questions[i], g.text.trim());
                        pairs.push((p.clone(), "Yes".into()));
                        pairs.push((p, "No".into()));
                    }
                }
            }
        }
        let raw = model.score(&pairs)?;
        if raw.len() != pairs.len() {
            return Err(Error::Runtime(format!(
                "verifier {} returned {} scores for {} candidates",
                model.id(),
                raw.len(),
                pairs.len()
            )));
        }
        let mut it = raw.into_iter();
        let mut out = Vec::with_capacity(samples.len());
        for s in samples {
            let mut row = Vec::with_capacity(s.len());
            for g in s {
                let v = match &self.judge {
                    None => {
                        let lp = it.next().unwrap_or(f32::NEG_INFINITY);
                        if self.config.verifier.normalize {
                            // The sample's own token count when the model verifies
                            // itself; another verifier counts with its tokenizer.
                            let n = if self.verifier.is_none() && g.completion_tokens > 0 {
                                g.completion_tokens
                            } else {
                                model.count_tokens(&g.text)?
                            };
                            lp / n.max(1) as f32
                        } else {
                            lp
                        }
                    }
                    Some(_) => {
                        let yes = it.next().unwrap_or(f32::NEG_INFINITY);
                        let no = it.next().unwrap_or(f32::NEG_INFINITY);
                        yes - no
                    }
                };
                // A NaN score never wins.
                row.push(if v.is_nan() { f32::NEG_INFINITY } else { v });
            }
            out.push(row);
        }
        Ok(out)
    }
}

/// The index of the highest score; ties go to the earliest.
pub fn pick(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    best
}

impl DecodingTransform for BestOfN {
    fn kind(&self) -> &'static str {
        "best-of-n"
    }
    fn sampling(&self) -> Sampling {
        self.config.sampling()
    }
    fn decide(&self, batch: &DecideBatch, samples: Vec<Vec<Generation>>) -> Result<Vec<Decision>> {
        let scores = self.scores(batch, &samples)?;
        Ok(samples
            .into_iter()
            .zip(scores)
            .zip(batch.golds)
            .map(|((s, sc), gold)| {
                let (answers, right) = judge_samples(&s, gold, batch.style);
                let chosen = pick(&sc);
                let correct = right[chosen];
                let mut d = decision_from(
                    s,
                    answers,
                    &right,
                    chosen,
                    correct,
                    f64::from(u8::from(correct)),
                );
                if let Some(r) = d.record.as_mut() {
                    r.scores = sc;
                }
                d
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::Decoding;
    use crate::score::AnswerStyle;
    use crate::transform::decode::Answerer;
    use crate::transform::decode::tests::Scripted;

    #[test]
    fn picks_the_highest_score_first_on_ties() {
        assert_eq!(pick(&[-3.0, -1.0, -2.0]), 1);
        assert_eq!(pick(&[-1.0, -1.0, -0.5, -0.5]), 2);
        assert_eq!(pick(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
        assert_eq!(pick(&[0.0]), 0);
    }

    #[test]
    fn log_likelihood_verifier_never_sees_the_gold() {
        // Scripted scores a continuation by −(its length in bytes), and sample j
        // has 10 + j tokens: per token, the terse wrong answer wins over the
        // wordy right one.
        let m = Scripted::new(&[
            "Well, adding two and four, we get six. The answer is 6.",
            "The answer is 5.",
        ]);
        let cfg = BestOfNConfig {
            n: 2,
            ..BestOfNConfig::default()
        };
        let t = cfg.build(&LoadOptions::default()).unwrap();
        let ans = Answerer::new(Arc::new(t));
        let q = vec!["What is 2 + 4?".to_string()];
        let p = vec![Prompt::text("What is 2 + 4?")];
        let d = &ans
            .answer(
                &m,
                &q,
                &p,
                &Decoding::default(),
                &["6"],
                AnswerStyle::Numeric,
            )
            .unwrap()[0];
        let r = d.record.as_ref().unwrap();
        assert_eq!(r.scores.len(), 2);
        assert_eq!(r.chosen, pick(&r.scores));
        assert_eq!(d.answer.as_deref(), Some("5"));
        assert!(!d.correct);
        assert_eq!(
            r.correct, 1,
            "one sample was right, the verifier did not pick it"
        );
    }

    #[test]
    fn judge_prompt_scores_yes_over_no() {
        let m = Scripted::new(&["The answer is 6.", "The answer is 6."]);
        let cfg = BestOfNConfig {
            n: 2,
            verifier: VerifierConfig {
                method: VerifierMethod::Judge,
                ..VerifierConfig::default()
            },
            ..BestOfNConfig::default()
        };
        let t = cfg.build(&LoadOptions::default()).unwrap();
        let ans = Answerer::new(Arc::new(t));
        let q = vec!["What is 2 + 4?".to_string()];
        let p = vec![Prompt::text("What is 2 + 4?")];
        let d = &ans
            .answer(
                &m,
                &q,
                &p,
                &Decoding::default(),
                &["6"],
                AnswerStyle::Numeric,
            )
            .unwrap()[0];
        let r = d.record.as_ref().unwrap();
        assert_eq!(r.scores, vec![0.5, 0.5]);
        assert_eq!(r.chosen, 0);
        assert!(d.correct);
        // The judge prompt holds the question and the candidate, not the gold's source.
        let j = JudgeTemplate::builtin().render("Q {solution}?", "S {question}");
        let Prompt::Chat { messages } = j else {
            panic!()
        };
        let u = &messages.last().unwrap().content;
        assert!(
            u.contains("Q {solution}?") && u.contains("S {question}"),
            "{u}"
        );
    }

    #[test]
    fn settings_are_checked() {
        let bad = BestOfNConfig {
            verifier: VerifierConfig {
                template: Some("x.toml".into()),
                ..VerifierConfig::default()
            },
            ..BestOfNConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("judge"));
        let e = JudgeTemplate::parse("name = \"j\"\nuser = \"{question}\"\n", "j.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("j.toml") && e.contains("{solution}"), "{e}");
    }
}
