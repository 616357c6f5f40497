//! `mscr candidates`: every word of a text, whether it is protected and why,
//! its candidates with sources, and each filter's verdict.

use super::Resources;
use super::attacker::{build_parts, prepare};
use super::config::AttackConfig;
use super::filters::Judged;
use super::words::Word;
use crate::error::Result;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Clone, Debug, Serialize)]
pub struct WordReport {
    #[serde(flatten)]
    pub word: Word,
    /// Why the word is never replaced (`number`, `stopword`, ...), if protected.
    pub reason: Option<String>,
    pub candidates: Vec<Judged>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CandidateReport {
    pub text: String,
    pub sources: Vec<String>,
    pub filters: Vec<String>,
    pub words: Vec<WordReport>,
}

/// Builds the report for `text` with the configured sources and filters
/// (every filter judged on every candidate).
pub fn candidates_report(
    text: &str,
    resources: &Resources,
    config: &AttackConfig,
) -> Result<CandidateReport> {
    let (sources, filters, stopwords) = build_parts(config, resources)?;
    let p = prepare(&sources, &filters, &stopwords, text, true)?;
    let mut judged = p.judged.into_iter();
    let words = p
        .words
        .into_iter()
        .map(|w| {
            let candidates = if w.attackable() {
                judged.next().unwrap_or_default()
            } else {
                Vec::new()
            };
            WordReport {
                reason: w.protected.map(|r| r.as_str().to_string()),
                word: w,
                candidates,
            }
        })
        .collect();
    Ok(CandidateReport {
        text: text.to_string(),
        sources: config
            .sources
            .iter()
            .map(|s| s.name().to_string())
            .collect(),
        filters: config
            .filters
            .iter()
            .map(|f| f.name().to_string())
            .collect(),
        words,
    })
}

impl CandidateReport {
    /// A plain-text rendering for terminals.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "sources: {}   filters: {}",
            self.sources.join(", "),
            self.filters.join(", ")
        );
        for w in &self.words {
            match &w.reason {
                Some(r) => {
                    let _ = writeln!(s, "{:>3} {:<16} protected ({r})", w.word.index, w.word.text);
                }
                None => {
                    let kept = w.candidates.iter().filter(|c| c.passed).count();
                    let _ = writeln!(
                        s,
                        "{:>3} {:<16} {} candidates, {} pass",
                        w.word.index,
                        w.word.text,
                        w.candidates.len(),
                        kept
                    );
                    for c in &w.candidates {
                        let verdicts: Vec<String> = c
                            .verdicts
                            .iter()
                            .map(|v| {
                                let mark = if v.passed { "ok" } else { "FAIL" };
                                match (v.value, &v.note) {
                                    (Some(x), _) => format!("{}={mark}({x:.3})", v.filter),
                                    (None, Some(n)) if !v.passed => {
                                        format!("{}={mark}({n})", v.filter)
                                    }
                                    _ => format!("{}={mark}", v.filter),
                                }
                            })
                            .collect();
                        let _ = writeln!(
                            s,
                            "      {} {:<18} [{}] {}",
                            if c.passed { "+" } else { "-" },
                            c.candidate.text,
                            c.candidate.sources.join("+"),
                            verdicts.join(" ")
                        );
                        if let (true, Some(sense)) = (c.passed, &c.evidence.sense) {
                            let _ = writeln!(
                                s,
                                "          {} {sense}: {}",
                                c.evidence.relation.as_deref().unwrap_or("related"),
                                c.evidence.gloss.as_deref().unwrap_or("")
                            );
                        }
                    }
                }
            }
        }
        s
    }
}
