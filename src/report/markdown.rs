//! `report.md`: the same tables as the HTML, and examples. Text from data is
//! HTML-escaped (Markdown viewers render inline HTML) and table pipes escaped.

use super::plots::Plot;
use super::{
    CampaignSummary, CellResults, if_attacked, length_increase, pct, pct_vs, perturbed_runs,
    tokens, tokens_vs, transform_rows,
};
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
    m.push_str("## Robustness\n\n");
    m.push_str("| model | transform | dataset | attack | questions | clean acc. | attacked acc. | drop | success rate | length increase | response tokens | tokens / question | random: attacked acc. | random: success rate |\n");
    m.push_str("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for c in &summary.cells {
        let s = &c.summary;
        let (ba, bs) = match &c.random_baseline {
            Some(b) => (pct(b.attacked_accuracy), pct(b.success_rate)),
            None => ("–".into(), "–".into()),
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&c.model),
            cell(&c.transform),
            cell(&c.dataset),
            cell(&c.attack),
            if c.baseline { " (baseline)" } else { "" },
            s.questions,
            pct(s.clean_accuracy),
            pct(s.attacked_accuracy),
            pct(s.accuracy_drop),
            pct(s.success_rate),
            length_increase(s),
            tokens(s.mean_response_tokens),
            tokens(s.tokens_per_question),
            ba,
            bs
        );
    }
    let rows = transform_rows(summary);
    if !rows.is_empty() {
        m.push_str("\n## Transforms\n\nEach transform chain beside the untransformed model (`identity`) on the same model, dataset and attack; differences in points (accuracy) or as a ratio (tokens). *Response tokens*: mean length of one clean response; *tokens / question*: tokens generated to answer one clean question, every sample included (the cost); *samples*: answers drawn per question (each a query). For `pass@k` and `sample` rows the accuracies are pass@k estimates and the success rate is the mean chance that none of k samples of the attacked question is right.\n\n");
        m.push_str("| model | dataset | attack | transform | samples | clean acc. | attacked acc. | success rate | response tokens | tokens / question | queries / attacked question |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &rows {
            let s = &r.cell.summary;
            let b = r.reference.map(|c| &c.summary);
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
                cell(&r.cell.model),
                cell(&r.cell.dataset),
                cell(&r.cell.attack),
                cell(&r.cell.transform),
                s.samples_per_question,
                pct_vs(s.clean_accuracy, b.map(|b| b.clean_accuracy)),
                pct_vs(s.attacked_accuracy, b.map(|b| b.attacked_accuracy)),
                if_attacked(
                    s,
                    pct_vs(
                        s.success_rate,
                        b.filter(|b| b.successes + b.failures > 0)
                            .map(|b| b.success_rate)
                    )
                ),
                tokens_vs(s.mean_response_tokens, b.map(|b| b.mean_response_tokens)),
                tokens_vs(s.tokens_per_question, b.map(|b| b.tokens_per_question)),
                if_attacked(s, format!("{:.1}", s.mean_queries)),
            );
        }
    }
    m.push_str("\n## Attack details\n\n| cell | success | failed | skipped | queries / success | words changed | mean similarity | successes per source | unique to source |\n|---|---:|---:|---:|---:|---:|---:|---|---|\n");
    for c in &summary.cells {
        let s = &c.summary;
        let src = |map: &std::collections::BTreeMap<String, usize>| {
            map.iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {:.1} | {:.2} | {:.3} | {} | {} |",
            cell(&c.cell),
            s.successes,
            s.failures,
            s.skipped,
            s.queries_per_success,
            s.perturbed_words,
            s.mean_similarity,
            cell(&src(&s.successes_per_source)),
            cell(&src(&s.unique_per_source)),
        );
    }
    m.push_str("\n## Plots\n\n");
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
                cell(&c.summary.cell),
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
