//! The report's tables as plain text cells, built once and rendered by both
//! `report.md` and `report.html` (each escapes the cells for its format).

use super::{CampaignSummary, CellSummary, length_increase, pct};
use crate::attack::Summary;
use std::collections::BTreeMap;

pub struct Column {
    pub name: &'static str,
    /// Text columns align left, numbers right.
    pub left: bool,
}

pub struct Row {
    pub cells: Vec<String>,
    /// Shown dimmed (the random baseline's own rows).
    pub muted: bool,
}

pub struct Table {
    /// HTML id and Markdown heading anchor.
    pub id: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

fn cols(spec: &[(&'static str, bool)]) -> Vec<Column> {
    spec.iter()
        .map(|&(name, left)| Column { name, left })
        .collect()
}

const DASH: &str = "–";

/// All tables, in report order (the transform table only when a cell has a profile).
pub fn all(summary: &CampaignSummary) -> Vec<Table> {
    let mut t = vec![robustness(summary)];
    if let Some(tr) = transforms(summary) {
        t.push(tr);
    }
    t.push(details(summary));
    t
}

/// The seed-results table: clean and attacked accuracy, drop, success rate,
/// length increase, with the random baseline beside each row.
pub fn robustness(summary: &CampaignSummary) -> Table {
    let rows = summary
        .cells
        .iter()
        .map(|c| {
            let s = &c.summary;
            let (ba, bs) = match &c.random_baseline {
                Some(b) => (pct(b.attacked_accuracy), pct(b.success_rate)),
                None => (DASH.into(), DASH.into()),
            };
            Row {
                cells: vec![
                    c.model.clone(),
                    c.transform.clone(),
                    c.dataset.clone(),
                    format!(
                        "{}{}",
                        c.attack,
                        if c.baseline { " (baseline)" } else { "" }
                    ),
                    s.questions.to_string(),
                    pct(s.clean_accuracy),
                    pct(s.attacked_accuracy),
                    pct(s.accuracy_drop),
                    pct(s.success_rate),
                    length_increase(s),
                    ba,
                    bs,
                ],
                muted: c.baseline,
            }
        })
        .collect();
    Table {
        id: "robustness",
        title: "Robustness",
        intro: "Accuracy on clean questions, accuracy under attack, their drop, the attack success rate (successes / questions answered correctly when clean) and the change in response length of successful attacks. The random-replacement baseline with the same budget stands beside each row.",
        columns: cols(&[
            ("model", true),
            ("transform", true),
            ("dataset", true),
            ("attack", true),
            ("questions", false),
            ("clean acc.", false),
            ("attacked acc.", false),
            ("drop", false),
            ("success rate", false),
            ("length increase", false),
            ("random: attacked acc.", false),
            ("random: success rate", false),
        ]),
        rows,
    }
}

fn sources(map: &BTreeMap<String, usize>) -> String {
    if map.is_empty() {
        return DASH.into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn details(summary: &CampaignSummary) -> Table {
    let rows = summary
        .cells
        .iter()
        .map(|c| {
            let s: &Summary = &c.summary;
            Row {
                cells: vec![
                    c.cell.clone(),
                    s.successes.to_string(),
                    s.failures.to_string(),
                    s.skipped.to_string(),
                    pct(s.performance_drop_rate),
                    format!("{:.1}", s.queries_per_success),
                    format!("{:.1}", s.mean_queries),
                    format!("{:.2}", s.perturbed_words),
                    format!("{:.3}", s.mean_similarity),
                    sources(&s.successes_per_source),
                    sources(&s.unique_per_source),
                ],
                muted: false,
            }
        })
        .collect();
    Table {
        id: "details",
        title: "Attack details",
        intro: "Per cell: outcomes, queries (generations, the clean one included), words changed, sentence similarity of the successful perturbations, and which candidate sources produced the successful words.",
        columns: cols(&[
            ("cell", true),
            ("success", false),
            ("failed", false),
            ("skipped", false),
            ("performance drop rate", false),
            ("queries / success", false),
            ("mean queries", false),
            ("words changed", false),
            ("mean similarity", false),
            ("successes per source", true),
            ("unique to source", true),
        ]),
        rows,
    }
}

/// Millions with one decimal, and the change against the reference.
fn count_vs(x: Option<u64>, reference: Option<u64>) -> String {
    match (x, reference) {
        (Some(x), Some(r)) if r > 0 && x != r => format!(
            "{:.1}M ({:+.1}%)",
            x as f64 / 1e6,
            100.0 * (x as f64 / r as f64 - 1.0)
        ),
        (Some(x), _) => format!("{:.1}M", x as f64 / 1e6),
        _ => DASH.into(),
    }
}

fn speed_vs(x: Option<f64>, reference: Option<f64>, is_reference: bool) -> String {
    match (x, reference) {
        (Some(x), Some(r)) if r > 0.0 && !is_reference => format!("{x:.1} (×{:.2})", x / r),
        (Some(x), _) => format!("{x:.1}"),
        _ => DASH.into(),
    }
}

/// The compression table of the seed paper: per model and transform,
/// parameters, FLOPs per token and measured decode speed (against the same
/// model untransformed in this campaign), with clean accuracy and robustness
/// under each (non-baseline) attack.
pub fn transforms(summary: &CampaignSummary) -> Option<Table> {
    if summary.cells.iter().all(|c| c.profile.is_none()) {
        return None;
    }
    let reference = |c: &CellSummary| {
        summary
            .cells
            .iter()
            .find(|r| r.model == c.model && r.transform == "identity" && r.profile.is_some())
            .and_then(|r| r.profile.clone())
    };
    let rows = summary
        .cells
        .iter()
        .filter(|c| !c.baseline)
        .map(|c| {
            let p = c.profile.clone().unwrap_or_default();
            let r = reference(c).unwrap_or_default();
            let is_ref = c.transform == "identity";
            let s = &c.summary;
            Row {
                cells: vec![
                    c.model.clone(),
                    c.transform.clone(),
                    c.dataset.clone(),
                    c.attack.clone(),
                    count_vs(p.params, r.params),
                    count_vs(p.flops_per_token, r.flops_per_token),
                    speed_vs(p.decode_tokens_per_s, r.decode_tokens_per_s, is_ref),
                    pct(s.clean_accuracy),
                    pct(s.attacked_accuracy),
                    pct(s.success_rate),
                ],
                muted: false,
            }
        })
        .collect();
    Some(Table {
        id: "transforms",
        title: "Transforms: size, speed and robustness",
        intro: "Parameters and matrix FLOPs per generated token of each transformed model (change against the same model untransformed), its batch-1 greedy generation speed in tokens/s measured once when the campaign loaded it (a short run on the campaign's machine, not a benchmark), and clean accuracy, accuracy under attack and attack success rate.",
        columns: cols(&[
            ("model", true),
            ("transform", true),
            ("dataset", true),
            ("attack", true),
            ("params", false),
            ("FLOPs / token", false),
            ("decode tok/s", false),
            ("clean acc.", false),
            ("attacked acc.", false),
            ("success rate", false),
        ]),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::store::ModelProfile;

    fn cell(transform: &str, params: u64, speed: f64, baseline: bool) -> CellSummary {
        CellSummary {
            cell: format!("m | {transform} | d | a"),
            model: "m".into(),
            transform: transform.into(),
            dataset: "d".into(),
            attack: if baseline { "random" } else { "mscr" }.into(),
            baseline,
            summary: Summary {
                clean_accuracy: 0.5,
                attacked_accuracy: 0.25,
                success_rate: 0.5,
                ..Summary::default()
            },
            random_baseline: None,
            mean_clean_tokens: 0.0,
            mean_attacked_tokens: 0.0,
            profile: Some(ModelProfile {
                params: Some(params),
                flops_per_token: Some(2 * params),
                decode_tokens_per_s: Some(speed),
            }),
        }
    }

    #[test]
    fn transform_rows_compare_with_the_untransformed_model() {
        let mut s = CampaignSummary {
            campaign: "c".into(),
            generated_by: "t".into(),
            cells: vec![
                cell("prune-heads", 90_000_000, 250.0, false),
                cell("identity", 100_000_000, 200.0, false),
                cell("identity", 100_000_000, 200.0, true),
            ],
        };
        let t = transforms(&s).unwrap();
        assert_eq!(t.rows.len(), 2, "baseline cells are left out");
        let pruned = &t.rows[0].cells;
        assert_eq!(pruned[4], "90.0M (-10.0%)");
        assert_eq!(pruned[5], "180.0M (-10.0%)");
        assert_eq!(pruned[6], "250.0 (×1.25)");
        assert_eq!(pruned[7..], ["50.0%", "25.0%", "50.0%"]);
        let identity = &t.rows[1].cells;
        assert_eq!(identity[4..7], ["100.0M", "200.0M", "200.0"]);
        // No profile anywhere (e.g. an old store): no table.
        for c in &mut s.cells {
            c.profile = None;
        }
        assert!(transforms(&s).is_none());
        assert_eq!(all(&s).len(), 2);
    }
}
