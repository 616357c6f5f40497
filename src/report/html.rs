//! The self-contained `report.html`: inline CSS, plots as base64 PNG, no
//! script. Every piece of text from data (questions, outputs, names) goes
//! through `html-escape`, and a Content-Security-Policy forbids scripts, so a
//! question holding markup is shown as text and can never run.

use super::plots::Plot;
use super::{CampaignSummary, CellResults, perturbed_runs};
use crate::attack::Outcome;
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
.partial{border:2px solid #c00;background:#fff0f0;padding:.5rem .8rem;border-radius:4px}
";

fn esc(s: &str) -> String {
    text(s).into_owned()
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
    if let Some(notice) = super::partial_notice(summary) {
        let _ = writeln!(
            h,
            "<p class=\"partial\"><strong>{}</strong></p>",
            esc(&notice)
        );
    }

    for t in super::tables::all(summary) {
        let _ = write!(
            h,
            "<h2>{}</h2>\n<p>{}</p>\n<table id=\"{}\">\n<thead><tr>",
            esc(t.title),
            esc(t.intro),
            attr(t.id)
        );
        for c in &t.columns {
            let _ = write!(
                h,
                "<th{}>{}</th>",
                if c.left { " class=\"l\"" } else { "" },
                esc(c.name)
            );
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for r in &t.rows {
            h.push_str(if r.muted {
                "<tr class=\"baseline\">"
            } else {
                "<tr>"
            });
            for (v, c) in r.cells.iter().zip(&t.columns) {
                let class = match (c.left, v == "–") {
                    (true, _) => " class=\"l\"",
                    (false, true) => " class=\"muted\"",
                    _ => "",
                };
                let _ = write!(h, "<td{class}>{}</td>", esc(v));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody>\n</table>\n");
    }

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
                esc(&super::tables::display_cell(
                    &c.summary.cell,
                    &c.key.transform
                )),
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
