//! `pass@k`: n samples per question, scored with the unbiased estimator of
//! Chen et al. (2021): with c of the n samples right,
//! `pass@k = 1 − C(n−c, k) / C(n, k)`, the chance that at least one of k
//! samples drawn without replacement from the n is right. Computed as
//! `1 − ∏_{i=n−c+1}^{n} (1 − k/i)`, a product of numbers in [0, 1], so it
//! neither overflows nor loses precision for large n.
//!
//! Under attack the goal is met when no sample of the perturbed question is
//! right, and the figure reported per question is the chance that none of k
//! samples is right, `C(n−c, k) / C(n, k)`.

use super::{
    DecideBatch, Decision, DecodingTransform, Sampling, decision_from, default_temperature,
    default_top_p, judge_samples,
};
use crate::error::{Error, Result};
use crate::lm::Generation;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PassAtKConfig {
    /// Samples per question.
    pub n: usize,
    /// Samples the estimate is for (k ≤ n).
    pub k: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
}

impl Default for PassAtKConfig {
    fn default() -> Self {
        PassAtKConfig {
            n: 5,
            k: 1,
            temperature: default_temperature(),
            top_p: default_top_p(),
            seed: 0,
        }
    }
}

impl PassAtKConfig {
    pub fn validate(&self) -> Result<()> {
        self.sampling().validate("pass@k")?;
        if self.k == 0 || self.k > self.n {
            return Err(Error::Config(format!(
                "pass@k: k = {} must be between 1 and n = {}",
                self.k, self.n
            )));
        }
        Ok(())
    }
}

/// The unbiased pass@k estimate from `c` right answers among `n` samples.
/// Panics unless `c ≤ n` and `1 ≤ k ≤ n` (configs are validated first).
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    assert!(
        c <= n && k >= 1 && k <= n,
        "pass@k needs c ≤ n and 1 ≤ k ≤ n (n={n}, c={c}, k={k})"
    );
    if n - c < k {
        // Every k-subset holds a right sample.
        return 1.0;
    }
    let none_right: f64 = (n - c + 1..=n).map(|i| 1.0 - k as f64 / i as f64).product();
    1.0 - none_right
}

/// Decides a pass@k-style question: right when any sample is right; the
/// output shown is the first right sample (else the first); credit = pass@k.
pub(crate) fn decide_pass_at_k(
    batch: &DecideBatch,
    samples: Vec<Vec<Generation>>,
    k: usize,
) -> Vec<Decision> {
    samples
        .into_iter()
        .zip(batch.golds)
        .map(|(s, gold)| {
            let (answers, right) = judge_samples(&s, gold, batch.style);
            let c = right.iter().filter(|r| **r).count();
            let chosen = right.iter().position(|r| *r).unwrap_or(0);
            let credit = pass_at_k(s.len(), c, k.min(s.len()));
            decision_from(s, answers, &right, chosen, c > 0, credit)
        })
        .collect()
}

impl DecodingTransform for PassAtKConfig {
    fn kind(&self) -> &'static str {
        "pass@k"
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
        Some(self.k)
    }
    fn decide(&self, batch: &DecideBatch, samples: Vec<Vec<Generation>>) -> Result<Vec<Decision>> {
        Ok(decide_pass_at_k(batch, samples, self.k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C(n, k) exactly, for small numbers.
    fn choose(n: u64, k: u64) -> f64 {
        if k > n {
            return 0.0;
        }
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    #[test]
    fn hand_computed_values() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // One sample of five is right: a single draw finds it 1 time in 5.
        assert!(close(pass_at_k(5, 1, 1), 0.2));
        // c = 2, n = 5: k = 1 → 2/5; k = 2 → 1 − C(3,2)/C(5,2) = 1 − 3/10.
        assert!(close(pass_at_k(5, 2, 1), 0.4));
        assert!(close(pass_at_k(5, 2, 2), 0.7));
        // n = 10, c = 3, k = 5: 1 − C(7,5)/C(10,5) = 1 − 21/252.
        assert!(close(pass_at_k(10, 3, 5), 1.0 - 21.0 / 252.0));
        // k = n: any right sample is always among the k.
        assert!(close(pass_at_k(4, 1, 4), 1.0));
        assert!(close(pass_at_k(7, 7, 7), 1.0));
        // All wrong: 0 for every k, k = n included.
        for k in 1..=6 {
            assert_eq!(pass_at_k(6, 0, k), 0.0);
        }
        // All right.
        assert_eq!(pass_at_k(3, 3, 1), 1.0);
        // n − c < k: certain.
        assert_eq!(pass_at_k(10, 8, 3), 1.0);
    }

    #[test]
    fn matches_the_binomial_form_and_stays_stable() {
        for n in 1..=20u64 {
            for c in 0..=n {
                for k in 1..=n {
                    let want = 1.0 - choose(n - c, k) / choose(n, k);
                    let got = pass_at_k(n as usize, c as usize, k as usize);
                    assert!(
                        (got - want).abs() < 1e-9,
                        "n={n} c={c} k={k}: {got} vs {want}"
                    );
                }
            }
        }
        // Large n: C(2000, 100) overflows f64, the product does not.
        let p = pass_at_k(2000, 1, 100);
        assert!((p - 0.05).abs() < 1e-12, "{p}");
        let p = pass_at_k(2000, 20, 100);
        assert!(p.is_finite() && p > 0.6 && p < 0.7, "{p}");
    }

    #[test]
    fn k_must_fit_n() {
        let bad = PassAtKConfig {
            n: 3,
            k: 4,
            ..PassAtKConfig::default()
        };
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("k = 4") && e.contains("n = 3"), "{e}");
        assert!(PassAtKConfig::default().validate().is_ok());
    }
}
