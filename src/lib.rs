//! mscr — adversarial robustness evaluation of math-reasoning language models.
//!
//! Data flows one way: dataset → prompt → model → answer check, with the attack
//! (words → candidates → filters → search) proposing perturbed questions and the
//! campaign runner storing every result in SQLite for reports and CI gates.

pub mod attack;
pub mod campaign;
pub mod data;
pub mod error;
pub mod eval;
pub mod lm;
pub mod model;
pub mod paths;
pub mod progress;
pub mod report;
pub mod runtime;
pub mod score;
pub mod serve;
pub mod setup;
pub mod transform;

pub use error::{Error, Result};
