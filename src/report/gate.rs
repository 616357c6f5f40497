//! The CI gate: compares two `summary.json` files cell by cell and fails when
//! robustness regressed beyond the given bounds (vLLM-style
//! `measured ≥ expected − tolerance`).

use super::CampaignSummary;
use crate::error::{Error, Result};
use std::fmt::Write;
use std::path::Path;

/// Bounds, all in fractions (0.05 = 5 points).
#[derive(Clone, Debug, PartialEq)]
pub struct GateBounds {
    /// Largest allowed rise of the attack success rate.
    pub max_asr_increase: f64,
    /// Largest allowed fall of clean accuracy.
    pub max_clean_drop: f64,
    /// Smallest allowed accuracy under attack, when set.
    pub min_robust_accuracy: Option<f64>,
}

impl Default for GateBounds {
    fn default() -> Self {
        GateBounds {
            max_asr_increase: 0.05,
            max_clean_drop: 0.05,
            min_robust_accuracy: None,
        }
    }
}

impl GateBounds {
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("--max-asr-increase", Some(self.max_asr_increase)),
            ("--max-clean-drop", Some(self.max_clean_drop)),
            ("--min-robust-accuracy", self.min_robust_accuracy),
        ] {
            if let Some(v) = v
                && !(0.0..=1.0).contains(&v)
            {
                return Err(Error::Config(format!(
                    "{name} {v}: give a fraction between 0 and 1 (0.05 = 5 points)"
                )));
            }
        }
        Ok(())
    }
}

/// One check on one cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub cell: String,
    /// `attack success rate`, `clean accuracy`, `robust accuracy`, `present`.
    pub metric: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// The bound, phrased for the table (e.g. `≤ +5.0 pts`).
    pub bound: String,
    pub passed: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GateResult {
    pub checks: Vec<Check>,
}

impl GateResult {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// A plain-text table of every check, regressions first.
    pub fn table(&self) -> String {
        let mut rows: Vec<&Check> = self.checks.iter().collect();
        rows.sort_by_key(|c| c.passed);
        let f = |v: Option<f64>| {
            v.map(|x| format!("{:.1}%", 100.0 * x))
                .unwrap_or_else(|| "–".into())
        };
        let delta = |c: &Check| match (c.baseline, c.current) {
            (Some(b), Some(a)) => format!("{:+.1} pts", 100.0 * (a - b)),
            _ => "–".into(),
        };
        let w = rows
            .iter()
            .map(|c| c.cell.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<6} {:<w$}  {:<20} {:>9} {:>9} {:>10}  bound",
            "status", "cell", "metric", "baseline", "current", "change"
        );
        for c in rows {
            let _ = writeln!(
                s,
                "{:<6} {:<w$}  {:<20} {:>9} {:>9} {:>10}  {}",
                if c.passed { "ok" } else { "FAIL" },
                c.cell,
                c.metric,
                f(c.baseline),
                f(c.current),
                delta(c),
                c.bound
            );
        }
        s
    }

    /// JUnit XML: one test suite, one test case per check.
    pub fn junit(&self) -> String {
        let a = |s: &str| html_escape::encode_double_quoted_attribute(s).into_owned();
        let failures = self.checks.iter().filter(|c| !c.passed).count();
        let mut x = String::new();
        let _ = writeln!(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        let _ = writeln!(
            x,
            "<testsuites name=\"mscr gate\" tests=\"{}\" failures=\"{failures}\">\n<testsuite name=\"mscr gate\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">",
            self.checks.len(),
            self.checks.len()
        );
        for c in &self.checks {
            let _ = write!(
                x,
                "<testcase classname=\"{}\" name=\"{}\"",
                a(&c.cell),
                a(&c.metric)
            );
            if c.passed {
                x.push_str("/>\n");
            } else {
                let f = |v: Option<f64>| {
                    v.map(|x| format!("{:.4}", x))
                        .unwrap_or_else(|| "none".into())
                };
                let msg = format!(
                    "{} moved from {} to {}; bound {}",
                    c.metric,
                    f(c.baseline),
                    f(c.current),
                    c.bound
                );
                let _ = writeln!(
                    x,
                    "><failure message=\"{}\" type=\"regression\">{}</failure></testcase>",
                    a(&msg),
                    html_escape::encode_text(&msg)
                );
            }
        }
        x.push_str("</testsuite>\n</testsuites>\n");
        x
    }
}

/// A few ids for a message: `a, b, c and 4 more`.
fn some_ids<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    let ids: Vec<&String> = ids.collect();
    let shown: Vec<&str> = ids.iter().take(3).map(|s| s.as_str()).collect();
    match ids.len().saturating_sub(3) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// Why one summary cannot be gated on its own: it is partial, or it does not
/// say whether it finished.
fn unfinished(which: &str, s: &CampaignSummary) -> Option<String> {
    match s.complete {
        Some(true) => None,
        None => Some(format!(
            "the {which} summary does not say whether its run finished (written by an older \
             mscr); run it again with this mscr (a campaign or attack with --resume: finished \
             questions are not repeated) and gate the summary.json it writes"
        )),
        Some(false) => {
            let (done, planned) = s.progress();
            let cells: Vec<String> = s
                .cells
                .iter()
                .filter(|c| !c.missing_item_ids.is_empty())
                .map(|c| format!("`{}` lacks {}", c.cell, some_ids(c.missing_item_ids.iter())))
                .collect();
            Some(format!(
                "the {which} run is partial ({done} of {planned} planned questions finished; {}); \
                 finish it with `mscr campaign run SPEC --resume` before gating",
                cells.join("; ")
            ))
        }
    }
}

/// One part of a cell's key.
type Part = fn(&super::CellSummary) -> &str;

/// Checks that two summaries can be compared at all: both finished, and both
/// cover the same models, transforms, datasets, attacks and questions. The
/// error names the first difference found.
pub fn check_comparable(baseline: &CampaignSummary, current: &CampaignSummary) -> Result<()> {
    for (which, s) in [("current", current), ("baseline", baseline)] {
        if let Some(why) = unfinished(which, s) {
            return Err(Error::Other(why));
        }
    }
    let evals = |s: &CampaignSummary| s.cells.iter().any(|c| c.clean_only);
    if evals(baseline) != evals(current) {
        let kind = |s: &CampaignSummary| {
            if evals(s) {
                "an `mscr eval` summary (clean accuracy only)"
            } else {
                "an attack or campaign summary"
            }
        };
        return Err(Error::Other(format!(
            "the baseline is {} and the current run {}: gate two `mscr eval` summaries against \
             each other, or two attack/campaign summaries",
            kind(baseline),
            kind(current)
        )));
    }
    let parts: [(&str, Part); 4] = [
        ("models", |c| &c.model),
        ("transforms", |c| &c.transform),
        ("datasets", |c| &c.dataset),
        ("attacks", |c| &c.attack),
    ];
    for (what, get) in parts {
        fn set(s: &CampaignSummary, get: Part) -> std::collections::BTreeSet<&str> {
            s.cells.iter().map(get).collect()
        }
        let (b, c) = (set(baseline, get), set(current, get));
        if b != c {
            let only = |x: &std::collections::BTreeSet<&str>,
                        y: &std::collections::BTreeSet<&str>| {
                let v: Vec<String> = x.difference(y).map(|s| format!("`{s}`")).collect();
                if v.is_empty() {
                    "none".to_string()
                } else {
                    v.join(", ")
                }
            };
            return Err(Error::Other(format!(
                "the runs cover different {what}: only in the baseline: {}; only in the current \
                 run: {}. Gate runs of the same campaign spec",
                only(&b, &c),
                only(&c, &b)
            )));
        }
    }
    for b in &baseline.cells {
        let Some(c) = current.cells.iter().find(|c| c.cell == b.cell) else {
            continue;
        };
        if b.item_ids != c.item_ids {
            let bs: std::collections::BTreeSet<&String> = b.item_ids.iter().collect();
            let cs: std::collections::BTreeSet<&String> = c.item_ids.iter().collect();
            let only_b: Vec<&String> = bs.difference(&cs).copied().collect();
            let only_c: Vec<&String> = cs.difference(&bs).copied().collect();
            let side = |v: &[&String]| {
                if v.is_empty() {
                    "none".to_string()
                } else {
                    format!("{} ({})", v.len(), some_ids(v.iter().copied()))
                }
            };
            return Err(Error::Other(format!(
                "cell `{}` ran different questions: only in the baseline: {}; only in the \
                 current run: {}. Gate runs with the same datasets, `limit`, `shuffle` and `seed` \
                 (and no shard)",
                b.cell,
                side(&only_b),
                side(&only_c)
            )));
        }
    }
    Ok(())
}

/// Compares `current` against `baseline`. Cells are matched by their key; the
/// random-baseline cells are not gated (they measure chance, not the model).
/// Summaries that [`check_comparable`] refuses are an error, never a pass.
pub fn compare(
    baseline: &CampaignSummary,
    current: &CampaignSummary,
    bounds: &GateBounds,
) -> Result<GateResult> {
    bounds.validate()?;
    check_comparable(baseline, current)?;
    let mut checks = Vec::new();
    let mut matched = 0;
    for b in baseline.cells.iter().filter(|c| !c.baseline) {
        let Some(c) = current.cells.iter().find(|c| c.cell == b.cell) else {
            checks.push(Check {
                cell: b.cell.clone(),
                metric: "present".into(),
                baseline: None,
                current: None,
                bound: "cell must be in the current run".into(),
                passed: false,
            });
            continue;
        };
        matched += 1;
        let (bs, cs) = (&b.summary, &c.summary);
        // A tiny epsilon so equal figures written through JSON never fail.
        const EPS: f64 = 1e-9;
        let clean_check = Check {
            cell: b.cell.clone(),
            metric: "clean accuracy".into(),
            baseline: Some(bs.clean_accuracy),
            current: Some(cs.clean_accuracy),
            bound: format!("≥ {:+.1} pts", -100.0 * bounds.max_clean_drop),
            passed: bs.clean_accuracy - cs.clean_accuracy <= bounds.max_clean_drop + EPS,
        };
        if b.clean_only || c.clean_only {
            // An `mscr eval` cell: nothing was attacked, clean accuracy is all there is.
            checks.push(clean_check);
            continue;
        }
        checks.push(Check {
            cell: b.cell.clone(),
            metric: "attack success rate".into(),
            baseline: Some(bs.success_rate),
            current: Some(cs.success_rate),
            bound: format!("≤ {:+.1} pts", 100.0 * bounds.max_asr_increase),
            passed: cs.success_rate - bs.success_rate <= bounds.max_asr_increase + EPS,
        });
        checks.push(clean_check);
        if let Some(min) = bounds.min_robust_accuracy {
            checks.push(Check {
                cell: b.cell.clone(),
                metric: "robust accuracy".into(),
                baseline: Some(bs.attacked_accuracy),
                current: Some(cs.attacked_accuracy),
                bound: format!("≥ {:.1}%", 100.0 * min),
                passed: cs.attacked_accuracy + EPS >= min,
            });
        }
    }
    if matched == 0 {
        return Err(Error::Config(
            "the two summaries share no attacked cell (model | transform | dataset | attack); \
             gate runs of the same campaign spec"
                .into(),
        ));
    }
    Ok(GateResult { checks })
}

/// Reads both files and compares them; `junit` receives the XML when given.
pub fn run(
    baseline: &Path,
    current: &Path,
    bounds: &GateBounds,
    junit: Option<&Path>,
) -> Result<GateResult> {
    let b = CampaignSummary::from_file(baseline)?;
    let c = CampaignSummary::from_file(current)?;
    bounds.validate()?;
    check_comparable(&b, &c).map_err(|e| {
        Error::Other(format!(
            "{e} (baseline {}, current {})",
            baseline.display(),
            current.display()
        ))
    })?;
    let result = compare(&b, &c, bounds)?;
    if let Some(j) = junit {
        std::fs::write(j, result.junit()).map_err(|e| Error::io(j, e))?;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::Summary;
    use crate::report::CellSummary;

    fn summary(cells: &[(&str, f64, f64, f64)]) -> CampaignSummary {
        CampaignSummary {
            campaign: "t".into(),
            generated_by: "test".into(),
            complete: Some(true),
            cells: cells
                .iter()
                .map(|(name, clean, attacked, asr)| CellSummary {
                    cell: name.to_string(),
                    model: "m".into(),
                    transform: "identity".into(),
                    dataset: "d".into(),
                    attack: "mscr".into(),
                    baseline: false,
                    clean_only: false,
                    summary: Summary {
                        clean_accuracy: *clean,
                        attacked_accuracy: *attacked,
                        success_rate: *asr,
                        ..Summary::default()
                    },
                    random_baseline: None,
                    mean_clean_tokens: 0.0,
                    mean_attacked_tokens: 0.0,
                    profile: None,
                    item_ids: vec![],
                    missing_item_ids: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn within_bounds_passes_and_regression_fails() {
        let base = summary(&[("a", 0.5, 0.3, 0.4)]);
        let same = compare(
            &base,
            &summary(&[("a", 0.48, 0.3, 0.43)]),
            &GateBounds::default(),
        )
        .unwrap();
        assert!(same.passed(), "{}", same.table());
        let worse = compare(
            &base,
            &summary(&[("a", 0.5, 0.2, 0.6)]),
            &GateBounds::default(),
        )
        .unwrap();
        assert!(!worse.passed());
        let t = worse.table();
        assert!(
            t.starts_with("status") && t.contains("FAIL") && t.contains("+20.0 pts"),
            "{t}"
        );
        let j = worse.junit();
        assert!(
            j.contains("<failure") && j.contains("failures=\"1\""),
            "{j}"
        );
    }

    #[test]
    fn min_robust_accuracy_and_missing_cells() {
        let base = summary(&[("a", 0.5, 0.3, 0.4), ("b", 0.5, 0.3, 0.4)]);
        let cur = summary(&[("a", 0.5, 0.3, 0.4)]);
        let b = GateBounds {
            min_robust_accuracy: Some(0.35),
            ..GateBounds::default()
        };
        let r = compare(&base, &cur, &b).unwrap();
        let failed: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.metric.as_str())
            .collect();
        assert_eq!(failed, ["robust accuracy", "present"]);
        assert!(compare(&base, &summary(&[("z", 0.1, 0.1, 0.1)]), &b).is_err());
        let bad = GateBounds {
            max_asr_increase: 5.0,
            ..GateBounds::default()
        };
        assert!(
            compare(&base, &cur, &bad)
                .unwrap_err()
                .to_string()
                .contains("--max-asr-increase")
        );
    }
}
