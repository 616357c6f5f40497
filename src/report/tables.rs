//! The report's tables as plain text cells, built once and rendered by both
//! `report.md` and `report.html` (each escapes the cells for its format).

use super::{
    CampaignSummary, TransformRow, attacked_n, if_attacked, length_increase, pct, pct_vs, rate,
    tokens, tokens_vs, transform_rows,
};
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

/// A cell's name (`model | transform | dataset | attack`) with its transform
/// shown as readers see it ([`crate::campaign::spec::display_label`]).
pub fn display_cell(cell: &str, transform: &str) -> String {
    cell.replace(transform, &crate::campaign::spec::display_label(transform))
}

/// All tables, in report order (the transform table only when a cell has a profile).
pub fn all(summary: &CampaignSummary) -> Vec<Table> {
    let mut t = vec![robustness(summary)];
    if let Some(tr) = transforms(summary) {
        t.push(tr);
    }
    t.push(validity(summary));
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
                Some(b) => (
                    rate(b.attacked_accuracy, b.questions),
                    rate(b.success_rate, attacked_n(b)),
                ),
                None => (DASH.into(), DASH.into()),
            };
            Row {
                cells: vec![
                    c.model.clone(),
                    crate::campaign::spec::display_label(&c.transform),
                    c.dataset.clone(),
                    format!(
                        "{}{}",
                        c.attack,
                        if c.baseline { " (baseline)" } else { "" }
                    ),
                    s.questions.to_string(),
                    rate(s.clean_accuracy, s.questions),
                    rate(s.attacked_accuracy, s.questions),
                    pct(s.accuracy_drop),
                    rate(s.success_rate, attacked_n(s)),
                    length_increase(s),
                    tokens(s.mean_response_tokens),
                    tokens(s.tokens_per_question),
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
        intro: "Accuracy on clean questions, accuracy under attack, their drop, the attack success rate (successes / questions answered correctly when clean) and the change in response length of successful attacks. Each rate shows its count and 95% Wilson interval in brackets (k/n; low–high %): with a few dozen questions the interval is wide, and two rows whose intervals overlap may not differ. The random-replacement baseline with the same budget stands beside each row.",
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
            ("response tokens", false),
            ("tokens / question", false),
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
                    display_cell(&c.cell, &c.transform),
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

/// What backs the successes' validity, per cell: how similar the perturbed
/// questions are to the originals, how much less fluent, and what a judge
/// model said of them where one ran.
pub fn validity(summary: &CampaignSummary) -> Table {
    let rows = summary
        .cells
        .iter()
        .map(|c| {
            let s: &Summary = &c.summary;
            let won = s.successes;
            let some = |text: String| if won == 0 { DASH.into() } else { text };
            Row {
                cells: vec![
                    display_cell(&c.cell, &c.transform),
                    won.to_string(),
                    some(format!("{:.3}", s.mean_similarity)),
                    match s.mean_fluency_delta {
                        Some(d) if won > 0 => format!("{d:+.2}"),
                        _ => DASH.into(),
                    },
                    if s.judged == 0 {
                        "no judge".into()
                    } else {
                        rate(s.judge_confirmed as f64 / s.judged as f64, s.judged)
                    },
                    s.judge_rejected.to_string(),
                ],
                muted: c.baseline,
            }
        })
        .collect();
    Table {
        id: "validity",
        title: "Validity of the successful perturbations",
        intro: "A success counts only if the perturbed question asks what the original asked. Per cell: the successful perturbations counted in the success rate, their mean sentence similarity to the original (all-MiniLM-L6-v2 over the window the filter uses), the mean change in fluency (log-probability of the perturbed question minus the original's under the fluency filter's model, nats; negative is less fluent), and the share a judge model confirmed as the same problem with the same answer, where a judge ran. The examples below are for reading: a person is the final check.",
        columns: cols(&[
            ("cell", true),
            ("successes", false),
            ("mean similarity", false),
            ("mean fluency Δ", false),
            ("judge confirmed", false),
            ("judge rejected", false),
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

fn speed_vs(x: Option<f64>, reference: Option<f64>) -> String {
    match (x, reference) {
        (Some(x), Some(r)) if r > 0.0 => format!("{x:.1} (×{:.2})", x / r),
        (Some(x), _) => format!("{x:.1}"),
        _ => DASH.into(),
    }
}

/// Transform chains side by side, in the form of the compression papers'
/// tables: per model, dataset and attack, each chain beside the untransformed
/// model (`identity`) — parameters, FLOPs per token and measured decode speed,
/// samples per question, clean accuracy and robustness (differences in
/// points), response length and tokens per question (ratios: the cost). With a
/// single chain the table still shows its size and speed when they were measured.
pub fn transforms(summary: &CampaignSummary) -> Option<Table> {
    let mut rows: Vec<TransformRow> = transform_rows(summary);
    if rows.is_empty() {
        if summary.cells.iter().all(|c| c.profile.is_none()) {
            return None;
        }
        rows = summary
            .cells
            .iter()
            .filter(|c| !c.baseline)
            .map(|cell| TransformRow {
                cell,
                reference: None,
            })
            .collect();
    }
    let rows = rows
        .iter()
        .map(|r| {
            let c = r.cell;
            let s = &c.summary;
            let b = r.reference.map(|b| &b.summary);
            let p = c.profile.clone().unwrap_or_default();
            let rp = r
                .reference
                .and_then(|b| b.profile.clone())
                .unwrap_or_default();
            Row {
                cells: vec![
                    c.model.clone(),
                    c.dataset.clone(),
                    c.attack.clone(),
                    crate::campaign::spec::display_label(&c.transform),
                    count_vs(p.params, rp.params),
                    count_vs(p.flops_per_token, rp.flops_per_token),
                    speed_vs(p.decode_tokens_per_s, rp.decode_tokens_per_s),
                    format!("{:.0}", s.samples_per_question),
                    pct_vs(s.clean_accuracy, b.map(|b| b.clean_accuracy)),
                    pct_vs(s.attacked_accuracy, b.map(|b| b.attacked_accuracy)),
                    if_attacked(
                        s,
                        pct_vs(
                            s.success_rate,
                            b.filter(|b| b.successes + b.failures > 0)
                                .map(|b| b.success_rate),
                        ),
                    ),
                    tokens_vs(s.mean_response_tokens, b.map(|b| b.mean_response_tokens)),
                    tokens_vs(s.tokens_per_question, b.map(|b| b.tokens_per_question)),
                    if_attacked(s, format!("{:.1}", s.mean_queries)),
                ],
                muted: false,
            }
        })
        .collect();
    Some(Table {
        id: "transforms",
        title: "Transforms",
        intro: "Each transform chain beside the untransformed model (identity) on the same model, dataset and attack; differences in points (accuracy) or as a ratio (tokens, speed). Params and FLOPs / token: the weights after the chain's weight transforms (matrix FLOPs per generated token). Decode tok/s: batch-1 greedy generation speed measured once when the campaign loaded the model (a short run on the campaign's machine, not a benchmark). Samples: answers drawn per question (each a query). Response tokens: mean length of one clean response; tokens / question: tokens generated to answer one clean question, every sample included (the cost). For pass@k and sample rows the accuracies are pass@k estimates and the success rate is the mean chance that none of k samples of the attacked question is right.",
        columns: cols(&[
            ("model", true),
            ("dataset", true),
            ("attack", true),
            ("transform", true),
            ("params", false),
            ("FLOPs / token", false),
            ("decode tok/s", false),
            ("samples", false),
            ("clean acc.", false),
            ("attacked acc.", false),
            ("success rate", false),
            ("response tokens", false),
            ("tokens / question", false),
            ("queries / attacked question", false),
        ]),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::store::ModelProfile;
    use crate::report::CellSummary;

    fn cell(transform: &str, params: u64, speed: f64, baseline: bool) -> CellSummary {
        CellSummary {
            cell: format!("m | {transform} | d | a"),
            model: "m".into(),
            transform: transform.into(),
            dataset: "d".into(),
            attack: if baseline { "random" } else { "mscr" }.into(),
            baseline,
            clean_only: false,
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
            item_ids: vec![],
            missing_item_ids: vec![],
        }
    }

    #[test]
    fn transform_rows_compare_with_the_untransformed_model() {
        let mut s = CampaignSummary {
            campaign: "c".into(),
            generated_by: "t".into(),
            complete: Some(true),
            cells: vec![
                cell("prune-heads", 90_000_000, 250.0, false),
                cell("identity", 100_000_000, 200.0, false),
                cell("identity", 100_000_000, 200.0, true),
            ],
        };
        let t = transforms(&s).unwrap();
        assert_eq!(t.rows.len(), 2, "baseline cells are left out");
        let identity = &t.rows[0].cells;
        assert_eq!(identity[3], "identity", "the untransformed row comes first");
        assert_eq!(identity[4..7], ["100.0M", "200.0M", "200.0"]);
        let pruned = &t.rows[1].cells;
        assert_eq!(pruned[4], "90.0M (-10.0%)");
        assert_eq!(pruned[5], "180.0M (-10.0%)");
        assert_eq!(pruned[6], "250.0 (×1.25)");
        assert_eq!(pruned[8..10], ["50.0% (+0.0)", "25.0% (+0.0)"]);
        assert_eq!(pruned[10], "–", "no question attacked in this summary");
        // One chain: the table shows its size and speed; without profiles, no table.
        s.cells.remove(0);
        assert_eq!(transforms(&s).unwrap().rows.len(), 1);
        for c in &mut s.cells {
            c.profile = None;
        }
        assert!(transforms(&s).is_none());
        assert_eq!(all(&s).len(), 3, "robustness, validity, details");
    }
}
