//! `report.md`: the same tables as the HTML, and examples. Text from data is
//! HTML-escaped (Markdown viewers render inline HTML) and table pipes escaped.

use super::plots::Plot;
use super::{CampaignSummary, CellResults, perturbed_runs};
use crate::attack::Outcome;
use std::fmt::Write;

fn cell(s: &str) -> String {
    html_escape::encode_text(s)
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

pub fn render(summary: &CampaignSummary, results: &[CellResults], plots: &[Plot]) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# mscr robustness report — {}\n",
        cell(&summary.campaign)
    );
    let _ = writeln!(
        m,
        "{} · {} cells\n",
        summary.generated_by,
        summary.cells.len()
    );
    if let Some(notice) = super::partial_notice(summary) {
        let _ = writeln!(m, "> **{}**\n", cell(&notice));
    }
    for t in super::tables::all(summary) {
        let _ = writeln!(m, "## {}\n\n{}\n", t.title, t.intro);
        let names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        let _ = writeln!(m, "| {} |", names.join(" | "));
        let aligns: Vec<&str> = t
            .columns
            .iter()
            .map(|c| if c.left { "---" } else { "---:" })
            .collect();
        let _ = writeln!(m, "|{}|", aligns.join("|"));
        for r in &t.rows {
            let cells: Vec<String> = r.cells.iter().map(|c| cell(c)).collect();
            let _ = writeln!(m, "| {} |", cells.join(" | "));
        }
        m.push('\n');
    }
    m.push_str("## Plots\n\n");
    for p in plots {
        let _ = writeln!(
            m,
            "![{}](plots/{}.png)\n\n{} ([SVG](plots/{}.svg))\n",
            p.title, p.name, p.caption, p.name
        );
    }
    m.push_str("## Examples of successful attacks\n\n");
    let mut shown = 0;
    for c in results.iter().filter(|c| !c.baseline) {
        for r in c
            .records
            .iter()
            .filter(|r| r.result == Outcome::Success)
            .take(5)
        {
            shown += 1;
            let perturbed: String = perturbed_runs(r)
                .into_iter()
                .map(|(t, changed)| {
                    if changed {
                        format!("**{}**", cell(&t))
                    } else {
                        cell(&t)
                    }
                })
                .collect();
            let _ = writeln!(
                m,
                "- *{}*, item `{}` — gold {}, clean answer {}, attacked answer {}, {} queries\n  - original: {}\n  - perturbed: {}\n",
                cell(&super::tables::display_cell(
                    &c.summary.cell,
                    &c.key.transform
                )),
                r.id.replace('`', "'"),
                cell(&r.gold),
                cell(r.clean_answer.as_deref().unwrap_or("(none)")),
                cell(r.attacked_answer.as_deref().unwrap_or("(none)")),
                r.queries,
                cell(&r.original_question),
                perturbed
            );
        }
    }
    if shown == 0 {
        m.push_str("No successful attacks.\n");
    }
    m
}
