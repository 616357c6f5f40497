//! The self-contained `report.html`: inline CSS, plots as base64 PNG, no
//! script. Every piece of text from data (questions, outputs, names) goes
//! through `html-escape`, and a Content-Security-Policy forbids scripts, so a
//! question holding markup is shown as text and can never run.

use super::plots::Plot;
use super::{
    CampaignSummary, CellResults, if_attacked, length_increase, pct, pct_vs, perturbed_runs,
    tokens, tokens_vs, transform_rows,
};
use crate::attack::{Outcome, Summary};
use base64::Engine;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use std::fmt::Write;

const CSS: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}.meta{color:#666;margin-top:0}
table{border-collapse:collapse;margin:1rem 0;font-size:.92rem}
th,td{border:1px solid #ccc;padding:.3rem .55rem;text-align:right;vertical-align:top}
th{background:#f0f0f0}td.l,th.l{text-align:left}
tr.baseline td{color:#666;background:#fafafa}
figure{margin:1.5rem 0}figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{color:#555;font-size:.9rem}
.example{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;margin:1rem 0}
.example .q{white-space:pre-wrap}mark{background:#ffe066;padding:0 .15em}
pre{white-space:pre-wrap;background:#f7f7f7;padding:.5rem;border-radius:4px;max-height:24rem;overflow:auto}
.muted{color:#777}
";

fn esc(s: &str) -> String {
    text(s).into_owned()
}

fn sources(map: &std::collections::BTreeMap<String, usize>) -> String {
    if map.is_empty() {
        return "–".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn baseline_cells(b: &Option<Summary>) -> String {
    match b {
        Some(b) => format!(
            "<td>{}</td><td>{}</td>",
            pct(b.attacked_accuracy),
            pct(b.success_rate)
        ),
        None => "<td class=\"muted\">–</td><td class=\"muted\">–</td>".into(),
    }
}

pub fn render(summary: &CampaignSummary, results: &[CellResults], plots: &[Plot]) -> String {
    let mut h = String::new();
    let title = format!("mscr robustness report — {}", summary.campaign);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p class=\"meta\">{} · {} cells · {} questions</p>\n",
        esc(&title),
        esc(&title),
        esc(&summary.generated_by),
        summary.cells.len(),
        summary
            .cells
            .iter()
            .map(|c| c.summary.questions)
            .sum::<usize>(),
    );

    // The seed-results table.
    h.push_str("<h2>Robustness</h2>\n<p>Accuracy on clean questions, accuracy under attack, their drop, the attack success rate (successes / questions answered correctly when clean) and the change in response length of successful attacks. The random-replacement baseline with the same budget stands beside each row.</p>\n");
    h.push_str("<table id=\"robustness\">\n<thead><tr><th class=\"l\">model</th><th class=\"l\">transform</th><th class=\"l\">dataset</th><th class=\"l\">attack</th><th>questions</th><th>clean acc.</th><th>attacked acc.</th><th>drop</th><th>success rate</th><th>length increase</th><th>response tokens</th><th>tokens / question</th><th>random: attacked acc.</th><th>random: success rate</th></tr></thead>\n<tbody>\n");
    for c in &summary.cells {
        let s = &c.summary;
        let _ = writeln!(
            h,
            "<tr{}><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            if c.baseline {
                " class=\"baseline\""
            } else {
                ""
            },
            esc(&c.model),
            esc(&c.transform),
            esc(&c.dataset),
            esc(&c.attack),
            if c.baseline { " (baseline)" } else { "" },
            s.questions,
            pct(s.clean_accuracy),
            pct(s.attacked_accuracy),
            pct(s.accuracy_drop),
            pct(s.success_rate),
            length_increase(s),
            tokens(s.mean_response_tokens),
            tokens(s.tokens_per_question),
            baseline_cells(&c.random_baseline),
        );
    }
    h.push_str("</tbody>\n</table>\n");

    let rows = transform_rows(summary);
    if !rows.is_empty() {
        h.push_str("<h2>Transforms</h2>\n<p>Each transform chain beside the untransformed model (<code>identity</code>) on the same model, dataset and attack; differences in points (accuracy) or as a ratio (tokens). <i>Response tokens</i>: mean length of one clean response; <i>tokens / question</i>: tokens generated to answer one clean question, every sample included (the cost); <i>samples</i>: answers drawn per question (each a query). For <code>pass@k</code> and <code>sample</code> rows the accuracies are pass@k estimates and the success rate is the mean chance that none of k samples of the attacked question is right.</p>\n");
        h.push_str("<table id=\"transforms\">\n<thead><tr><th class=\"l\">model</th><th class=\"l\">dataset</th><th class=\"l\">attack</th><th class=\"l\">transform</th><th>samples</th><th>clean acc.</th><th>attacked acc.</th><th>success rate</th><th>response tokens</th><th>tokens / question</th><th>queries / attacked question</th></tr></thead>\n<tbody>\n");
        for r in &rows {
            let s = &r.cell.summary;
            let b = r.reference.map(|c| &c.summary);
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.cell.model),
                esc(&r.cell.dataset),
                esc(&r.cell.attack),
                esc(&r.cell.transform),
                s.samples_per_question,
                esc(&pct_vs(s.clean_accuracy, b.map(|b| b.clean_accuracy))),
                esc(&pct_vs(s.attacked_accuracy, b.map(|b| b.attacked_accuracy))),
                esc(&if_attacked(
                    s,
                    pct_vs(
                        s.success_rate,
                        b.filter(|b| b.successes + b.failures > 0)
                            .map(|b| b.success_rate)
                    )
                )),
                esc(&tokens_vs(
                    s.mean_response_tokens,
                    b.map(|b| b.mean_response_tokens)
                )),
                esc(&tokens_vs(
                    s.tokens_per_question,
                    b.map(|b| b.tokens_per_question)
                )),
                esc(&if_attacked(s, format!("{:.1}", s.mean_queries))),
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }

    h.push_str("<h2>Attack details</h2>\n<table id=\"details\">\n<thead><tr><th class=\"l\">cell</th><th>success</th><th>failed</th><th>skipped</th><th>performance drop rate</th><th>queries / success</th><th>mean queries</th><th>words changed</th><th>mean similarity</th><th class=\"l\">successes per source</th><th class=\"l\">unique to source</th></tr></thead>\n<tbody>\n");
    for c in &summary.cells {
        let s = &c.summary;
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.2}</td><td>{:.3}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            esc(&c.cell),
            s.successes,
            s.failures,
            s.skipped,
            pct(s.performance_drop_rate),
            s.queries_per_success,
            s.mean_queries,
            s.perturbed_words,
            s.mean_similarity,
            esc(&sources(&s.successes_per_source)),
            esc(&sources(&s.unique_per_source)),
        );
    }
    h.push_str("</tbody>\n</table>\n");

    h.push_str("<h2>Plots</h2>\n");
    let b64 = base64::engine::general_purpose::STANDARD;
    for p in plots {
        let _ = writeln!(
            h,
            "<figure id=\"plot-{}\"><img src=\"data:image/png;base64,{}\" width=\"{}\" height=\"{}\" alt=\"{}\"><figcaption>{} (<code>plots/{}.svg</code>, <code>plots/{}.png</code>)</figcaption></figure>",
            attr(&p.name),
            b64.encode(&p.png),
            p.width,
            p.height,
            attr(&p.title),
            esc(&p.caption),
            esc(&p.name),
            esc(&p.name),
        );
    }

    h.push_str("<h2>Examples of successful attacks</h2>\n");
    let mut shown = 0;
    for c in results.iter().filter(|c| !c.baseline) {
        for r in c
            .records
            .iter()
            .filter(|r| r.result == Outcome::Success)
            .take(5)
        {
            shown += 1;
            let mut q = String::new();
            for (t, changed) in perturbed_runs(r) {
                if changed {
                    let _ = write!(q, "<mark>{}</mark>", esc(&t));
                } else {
                    q.push_str(&esc(&t));
                }
            }
            let words = r
                .changes
                .iter()
                .map(|ch| {
                    format!(
                        "{} → {} [{}]",
                        ch.original,
                        ch.replacement,
                        ch.sources.join("+")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let _ = writeln!(
                h,
                "<div class=\"example\"><p class=\"muted\">{} · item {}</p>\n<p><b>original:</b> <span class=\"q\">{}</span></p>\n<p><b>perturbed:</b> <span class=\"q\">{}</span></p>\n<p><b>changed:</b> {} · <b>gold:</b> {} · <b>clean answer:</b> {} · <b>attacked answer:</b> {} · <b>queries:</b> {}</p>\n<details><summary>model outputs</summary><p><b>clean</b></p><pre>{}</pre><p><b>attacked</b></p><pre>{}</pre></details></div>",
                esc(&c.summary.cell),
                esc(&r.id),
                esc(&r.original_question),
                q,
                esc(&words),
                esc(&r.gold),
                esc(r.clean_answer.as_deref().unwrap_or("(none)")),
                esc(r.attacked_answer.as_deref().unwrap_or("(none)")),
                r.queries,
                esc(&r.clean_output),
                esc(r.attacked_output.as_deref().unwrap_or("")),
            );
        }
    }
    if shown == 0 {
        h.push_str("<p class=\"muted\">No successful attacks.</p>\n");
    }
    h.push_str("<p class=\"muted\">Per-question results: <code>results.csv</code>, <code>results.jsonl</code>; figures: <code>summary.json</code>.</p>\n</body>\n</html>\n");
    h
}
