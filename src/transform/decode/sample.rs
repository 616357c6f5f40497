//! `sample`: each question is answered by n sampled answers (temperature,
//! top-p, seed). With n = 1 (the default) this is plain sampled decoding.
//! With more samples the figures average over them: a question's credit is the
//! share of right samples (pass@1), the attack goal is met when no sample of
//! the perturbed question is right, and the chance reported under attack is
//! that of one sampled answer being wrong.

use super::pass_at_k::decide_pass_at_k;
use super::{
    DecideBatch, Decision, DecodingTransform, Sampling, default_temperature, default_top_p,
};
use crate::error::Result;
use crate::lm::Generation;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleConfig {
    /// Samples per question.
    pub n: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            n: 1,
            temperature: default_temperature(),
            top_p: default_top_p(),
            seed: 0,
        }
    }
}

impl SampleConfig {
    pub fn validate(&self) -> Result<()> {
        self.sampling().validate("sample")
    }
}

impl DecodingTransform for SampleConfig {
    fn kind(&self) -> &'static str {
        "sample"
    }
    fn sampling(&self) -> Sampling {
        Sampling {
            n: self.n,
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
        }
    }
    fn k(&self) -> Option<usize> {
        Some(1)
    }
    fn decide(&self, batch: &DecideBatch, samples: Vec<Vec<Generation>>) -> Result<Vec<Decision>> {
        Ok(decide_pass_at_k(batch, samples, 1))
    }
}
