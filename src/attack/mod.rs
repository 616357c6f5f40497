//! The MSCR attack: words and protected spans, candidate sources, filters,
//! search strategies and the goal.

pub mod record;
pub mod summary;

pub use record::{AttackRecord, Change, JudgeVerdict, Outcome};
pub use summary::Summary;
