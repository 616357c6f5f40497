//! The evaluation loop: prompts every item of a dataset through a model in
//! batches, checks each answer and aggregates accuracy (with a 95% Wilson
//! interval), extraction failures, response lengths and, for MATH500, the
//! breakdown by subject and level.

use crate::data::{Dataset, Item, prompt::PromptTemplate};
use crate::error::{Error, Result};
use crate::lm::{Decoding, FinishReason, LanguageModel, Prompt};
use crate::score::{AnswerStyle, check};
use crate::transform::decode::Answerer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// How to run an evaluation.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub prompt: PromptTemplate,
    pub decoding: Decoding,
    /// Prompts per `generate` call.
    pub batch_size: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// A decoding transform (self-consistency, best-of-n, pass@k, sample)
    /// that decides each answer from its samples; None: one plain generation.
    pub answerer: Option<Answerer>,
    /// The transform chain's label, recorded in the summary.
    pub transform: Option<String>,
    /// `--limit` and the model as the user named it, recorded in the
    /// summary's `settings` (the rest of them come from the fields above).
    pub limit: Option<usize>,
    pub model_spec: Option<String>,
}

/// Every setting of an evaluation, recorded in `summary.json` so a result can
/// be reproduced and compared (as lm-evaluation-harness records its config).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalSettings {
    /// The model as given (also `summary.model`; `summary.model_id` is its resolved label).
    pub model_spec: Option<String>,
    pub limit: Option<usize>,
    pub max_tokens: usize,
    pub batch_size: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
    pub stop: Vec<String>,
    pub prompt: String,
    pub transform: Option<String>,
    /// `mscr X.Y.Z`.
    pub version: String,
}

/// One judged item (one line of `items.jsonl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    pub id: String,
    /// The prompt exactly as the model saw it.
    pub prompt: String,
    pub output: String,
    pub extracted: Option<String>,
    pub gold: String,
    pub correct: bool,
    /// Response tokens.
    pub tokens: usize,
    /// Why generation stopped (`length`: the answer hit `--max-tokens`);
    /// absent under a decoding transform (many samples per item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// Numeric datasets: correct under lm-evaluation-harness's strict match
    /// (`#### N` / `The answer is N`) alone, without the flexible fall-backs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_correct: Option<bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// Under a decoding transform: the chance the decision is right (the
    /// pass@k estimate for pass@k and sample, else 0 or 1), the samples drawn
    /// and the tokens generated over all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_tokens: Option<usize>,
    /// The checker failed on this output (recorded, never fatal): `correct`
    /// is false and the item is counted in the summary's `judging_errors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judging_error: Option<String>,
}

/// Accuracy of a group of items.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub n: usize,
    pub correct: usize,
    pub accuracy: f64,
    /// 95% Wilson score interval.
    pub ci_low: f64,
    pub ci_high: f64,
}

impl Accuracy {
    pub fn new(correct: usize, n: usize) -> Self {
        let (ci_low, ci_high) = wilson(correct, n, 1.959964);
        Accuracy {
            n,
            correct,
            accuracy: if n == 0 {
                0.0
            } else {
                correct as f64 / n as f64
            },
            ci_low,
            ci_high,
        }
    }
}

/// What `summary.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The model as given (`--model`), as campaigns label models.
    pub model: String,
    /// The model's resolved label (`SPEC@WEIGHTS-HASH-FORMAT` for in-process models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    pub dataset: String,
    pub prompt: String,
    pub style: AnswerStyle,
    #[serde(flatten)]
    pub overall: Accuracy,
    /// `accuracy` under the name attack and campaign summaries give it.
    #[serde(default)]
    pub clean_accuracy: f64,
    /// `true`: every selected item was evaluated (eval writes no summary
    /// otherwise); read by `mscr gate` as campaigns' `complete` (absent in
    /// summaries of an older mscr).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    /// Ids of the evaluated items, in order: the gate compares them.
    #[serde(default)]
    pub item_ids: Vec<String>,
    /// Outputs where no final answer could be found.
    pub extraction_failures: usize,
    pub extraction_failure_rate: f64,
    /// Mean response tokens (the name attack and campaign summaries use).
    #[serde(alias = "mean_tokens")]
    pub mean_response_tokens: f64,
    pub median_tokens: f64,
    /// Numeric datasets: accuracy under the strict match only (lm-evaluation-harness
    /// `strict-match`); `overall` is the flexible one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<Accuracy>,
    /// Malformed dataset lines skipped under `--skip-invalid`.
    pub skipped_lines: usize,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_subject: BTreeMap<String, Accuracy>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_level: BTreeMap<String, Accuracy>,
    /// The transform chain the model was evaluated under (`mscr eval --transform`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    /// Under a decoding transform: the mean credit over items (pass@k for
    /// pass@k and sample; equal to the accuracy for self-consistency and
    /// best-of-n), and the mean tokens generated per question over all samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_credit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_question: Option<f64>,
    /// Items whose output the checker failed on (recorded per item).
    #[serde(default)]
    pub judging_errors: usize,
    /// Items whose answer stopped at `--max-tokens` (`finish_reason: length`):
    /// possibly cut off before their final answer.
    #[serde(default)]
    pub max_tokens_hits: usize,
    /// The run's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<EvalSettings>,
}

/// Wilson score interval for `k` successes in `n` trials at normal quantile `z`.
pub fn wilson(k: usize, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    wilson_p(k as f64 / n as f64, n, z)
}

/// Wilson score interval for an observed proportion `p` over `n` trials
/// (a mean of per-question credits in 0..1 where pass@k makes it fractional).
pub fn wilson_p(p: f64, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (n, p) = (n as f64, p.clamp(0.0, 1.0));
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Median of a list of counts (mean of the middle two for even lengths).
pub fn median(values: &[usize]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m] as f64
    } else {
        (v[m - 1] + v[m]) as f64 / 2.0
    }
}

fn group_by(results: &[ItemResult], key: &str) -> BTreeMap<String, Accuracy> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in results {
        if let Some(v) = r.meta.get(key) {
            let e = counts.entry(v.clone()).or_default();
            e.0 += usize::from(r.correct);
            e.1 += 1;
        }
    }
    counts
        .into_iter()
        .map(|(k, (c, n))| (k, Accuracy::new(c, n)))
        .collect()
}

/// The mean of the values when every item has one (None otherwise, or when empty).
fn mean_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Option<Vec<f64>> = values.collect();
    v.filter(|v| !v.is_empty())
        .map(|v| v.iter().sum::<f64>() / v.len() as f64)
}

/// Aggregates judged items into a summary.
pub fn summarize(model: &str, dataset: &Dataset, prompt: &str, results: &[ItemResult]) -> Summary {
    let n = results.len();
    let correct = results.iter().filter(|r| r.correct).count();
    let failures = results.iter().filter(|r| r.extracted.is_none()).count();
    let tokens: Vec<usize> = results.iter().map(|r| r.tokens).collect();
    let overall = Accuracy::new(correct, n);
    Summary {
        model: model.to_string(),
        model_id: None,
        clean_accuracy: overall.accuracy,
        complete: Some(true),
        item_ids: results.iter().map(|r| r.id.clone()).collect(),
        dataset: dataset.name.clone(),
        prompt: prompt.to_string(),
        style: dataset.style,
        overall,
        extraction_failures: failures,
        judging_errors: results.iter().filter(|r| r.judging_error.is_some()).count(),
        max_tokens_hits: results
            .iter()
            .filter(|r| r.finish_reason == Some(FinishReason::Length))
            .count(),
        settings: None,
        extraction_failure_rate: if n == 0 {
            0.0
        } else {
            failures as f64 / n as f64
        },
        mean_response_tokens: if n == 0 {
            0.0
        } else {
            tokens.iter().sum::<usize>() as f64 / n as f64
        },
        median_tokens: median(&tokens),
        strict: (dataset.style == AnswerStyle::Numeric).then(|| {
            Accuracy::new(
                results
                    .iter()
                    .filter(|r| r.strict_correct == Some(true))
                    .count(),
                n,
            )
        }),
        skipped_lines: dataset.skipped,
        by_subject: group_by(results, "subject"),
        by_level: group_by(results, "level"),
        transform: None,
        mean_credit: mean_of(results.iter().map(|r| r.credit)),
        tokens_per_question: mean_of(results.iter().map(|r| r.sample_tokens.map(|t| t as f64))),
    }
}

/// Judges one model output against an item.
pub fn judge(
    item: &Item,
    style: AnswerStyle,
    prompt: String,
    output: String,
    tokens: usize,
) -> ItemResult {
    let v = check(&output, &item.gold, style);
    let strict_correct = (style == AnswerStyle::Numeric).then(|| {
        crate::score::extract::gsm8k_strict(&output)
            .is_some_and(|n| crate::score::equivalent(&n.canonical(), &item.gold, style))
    });
    ItemResult {
        id: item.id.clone(),
        prompt,
        output,
        extracted: v.extracted,
        gold: item.gold.clone(),
        correct: v.equivalent,
        tokens,
        finish_reason: None,
        strict_correct,
        meta: item.meta.clone(),
        credit: None,
        samples: None,
        sample_tokens: None,
        judging_error: v.error,
    }
}

/// Runs every item through `model` in batches; `on_item` sees each result as it
/// is judged (to stream it to disk).
pub fn evaluate(
    model: &dyn LanguageModel,
    dataset: &Dataset,
    opts: &EvalOptions,
    mut on_item: impl FnMut(&ItemResult) -> Result<()>,
) -> Result<(Summary, Vec<ItemResult>)> {
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(dataset.items.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b.set_message(format!("eval {}", dataset.name));
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    // Bars draw nothing without a terminal; plain lines take their place there.
    let lines = crate::progress::Progress::with_lines(
        &format!("eval {}", dataset.name),
        "items",
        dataset.items.len(),
        opts.progress && !std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
    let mut decoding = opts.decoding.clone();
    for s in opts.prompt.stop_strings() {
        if !decoding.stop.contains(&s) {
            decoding.stop.push(s);
        }
    }
    let mut results = Vec::with_capacity(dataset.items.len());
    let mut correct = 0usize;
    for chunk in dataset.items.chunks(opts.batch_size.max(1)) {
        let prompts: Vec<Prompt> = chunk
            .iter()
            .map(|it| opts.prompt.render(&it.question))
            .collect();
        let judged = match &opts.answerer {
            None => plain_answers(model, &prompts, &decoding)?,
            Some(a) => transformed_answers(a, model, chunk, &prompts, &decoding, dataset.style)?,
        };
        for ((item, prompt), (output, tokens, finish, decided)) in
            chunk.iter().zip(&prompts).zip(judged)
        {
            let shown = model.render(prompt).unwrap_or_else(|_| match prompt {
                Prompt::Text { text } => text.clone(),
                Prompt::Chat { messages } => messages
                    .iter()
                    .map(|m| m.content.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            });
            let mut r = judge(item, dataset.style, shown, output, tokens);
            r.finish_reason = finish;
            if let Some(d) = decided {
                // The transform's decision stands: its answer (e.g. the
                // majority) and its verdict, not a re-reading of the output.
                r.extracted = d.answer;
                r.correct = d.correct;
                r.credit = Some(d.credit);
                r.samples = Some(d.samples);
                r.sample_tokens = Some(d.sample_tokens);
            }
            correct += usize::from(r.correct);
            on_item(&r)?;
            results.push(r);
            bar.inc(1);
            lines.inc(1);
        }
        bar.set_message(format!(
            "eval {} acc {:.1}%",
            dataset.name,
            100.0 * correct as f64 / results.len() as f64
        ));
    }
    bar.finish_and_clear();
    drop(lines);
    // Labelled as given, as campaigns label models; the resolved id beside it.
    let label = opts.model_spec.clone().unwrap_or_else(|| model.id());
    let mut summary = summarize(&label, dataset, &opts.prompt.name, &results);
    summary.model_id = Some(model.id());
    summary.transform = opts.transform.clone();
    summary.settings = Some(EvalSettings {
        model_spec: opts.model_spec.clone(),
        limit: opts.limit,
        max_tokens: opts.decoding.max_new_tokens,
        batch_size: opts.batch_size,
        temperature: decoding.temperature,
        top_p: decoding.top_p,
        seed: decoding.seed,
        stop: decoding.stop.clone(),
        prompt: opts.prompt.name.clone(),
        transform: opts.transform.clone(),
        version: format!("mscr {}", env!("CARGO_PKG_VERSION")),
    });
    Ok((summary, results))
}

/// What a decoding transform decided for one item.
struct Decided {
    answer: Option<String>,
    correct: bool,
    credit: f64,
    samples: usize,
    sample_tokens: usize,
}

/// One answer per prompt: (output shown, its tokens, why it stopped, the
/// transform's decision).
type Answers = Vec<(String, usize, Option<FinishReason>, Option<Decided>)>;

fn plain_answers(
    model: &dyn LanguageModel,
    prompts: &[Prompt],
    decoding: &Decoding,
) -> Result<Answers> {
    let gens = model.generate(prompts, decoding)?;
    if gens.len() != prompts.len() {
        return Err(Error::Other(format!(
            "model {} returned {} completions for {} prompts",
            model.id(),
            gens.len(),
            prompts.len()
        )));
    }
    Ok(gens
        .into_iter()
        .map(|g| (g.text, g.completion_tokens, Some(g.finish_reason), None))
        .collect())
}

fn transformed_answers(
    answerer: &Answerer,
    model: &dyn LanguageModel,
    items: &[Item],
    prompts: &[Prompt],
    decoding: &Decoding,
    style: AnswerStyle,
) -> Result<Answers> {
    let questions: Vec<String> = items.iter().map(|it| it.question.clone()).collect();
    let golds: Vec<&str> = items.iter().map(|it| it.gold.as_str()).collect();
    let decisions = answerer.answer(model, &questions, prompts, decoding, &golds, style)?;
    Ok(decisions
        .into_iter()
        .map(|d| {
            let decided = Decided {
                credit: d.credit(),
                sample_tokens: d.record.as_ref().map_or(d.tokens, |r| r.total_tokens()),
                answer: d.answer,
                correct: d.correct,
                samples: d.samples,
            };
            (d.output, d.tokens, None, Some(decided))
        })
        .collect())
}

/// Runs [`evaluate`] writing `items.jsonl` (streamed) and `summary.json` to `out`.
pub fn evaluate_to_dir(
    model: &dyn LanguageModel,
    dataset: &Dataset,
    opts: &EvalOptions,
    out: &Path,
) -> Result<Summary> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let items_path = out.join("items.jsonl");
    let f = std::fs::File::create(&items_path).map_err(|e| Error::io(&items_path, e))?;
    let mut w = std::io::BufWriter::new(f);
    let (summary, _) = evaluate(model, dataset, opts, |r| {
        let line = serde_json::to_string(r).map_err(|e| Error::Other(e.to_string()))?;
        writeln!(w, "{line}").map_err(|e| Error::io(&items_path, e))
    })?;
    w.flush().map_err(|e| Error::io(&items_path, e))?;
    let summary_path = out.join("summary.json");
    let text = serde_json::to_string_pretty(&summary).map_err(|e| Error::Other(e.to_string()))?;
    std::fs::write(&summary_path, text + "\n").map_err(|e| Error::io(&summary_path, e))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_reference_values() {
        // Reference values from the closed-form Wilson formula (statsmodels agrees).
        let (lo, hi) = wilson(6, 200, 1.959964);
        assert!(
            (lo - 0.013820).abs() < 1e-5 && (hi - 0.063894).abs() < 1e-5,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(0, 10, 1.959964);
        assert!(lo == 0.0 && (hi - 0.27753).abs() < 1e-4, "{lo} {hi}");
        let (lo, hi) = wilson(10, 10, 1.959964);
        assert!(
            (lo - 0.72247).abs() < 1e-4 && (hi - 1.0).abs() < 1e-12,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0, 1.96), (0.0, 1.0));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[5, 1, 3]), 3.0);
        assert_eq!(median(&[4, 1, 3, 2]), 2.5);
    }

    fn item(id: &str, gold: &str, subject: &str, level: &str) -> Item {
        let mut meta = BTreeMap::new();
        meta.insert("subject".to_string(), subject.to_string());
        meta.insert("level".to_string(), level.to_string());
        Item {
            id: id.into(),
            question: "q".into(),
            gold: gold.into(),
            meta,
        }
    }

    /// A numeric dataset of placeholder questions with these gold answers.
    fn numeric(name: &str, golds: &[&str]) -> Dataset {
        let items = golds
            .iter()
            .enumerate()
            .map(|(k, g)| Item {
                id: format!("g{k}"),
                question: "q".into(),
                gold: g.to_string(),
                meta: BTreeMap::new(),
            })
            .collect();
        Dataset {
            name: name.into(),
            style: AnswerStyle::Numeric,
            items,
            skipped: 0,
            source: "x".into(),
        }
    }

    /// Evaluates two questions (golds 9 and 4) under a decoding transform
    /// with a scripted model whose sample j answers `outputs[j]`.
    fn eval_under(transform: &str, outputs: &[&'static str]) -> (Summary, Vec<ItemResult>) {
        let model = crate::transform::decode::tests::Scripted::new(outputs);
        let t = crate::transform::TransformSpec::parse(transform)
            .unwrap()
            .build_decoding(&crate::runtime::LoadOptions::default())
            .unwrap()
            .unwrap();
        let ds = numeric("asdiv", &["9", "4"]);
        let opts = EvalOptions {
            prompt: PromptTemplate::named("cot").unwrap(),
            decoding: Decoding::default(),
            batch_size: 8,
            progress: false,
            limit: None,
            model_spec: None,
            answerer: Some(Answerer::new(t)),
            transform: Some(transform.into()),
        };
        evaluate(&model, &ds, &opts, |_| Ok(())).unwrap()
    }

    #[test]
    fn decoding_transforms_decide_the_answer_and_count_every_sample() {
        let outs = ["The answer is 9.", "The answer is 3.", "The answer is 9."];
        // Self-consistency: the majority (9) is the answer, whatever the shown
        // sample says; every sample's tokens count (10 + 11 + 12).
        let (s, r) = eval_under("self-consistency:n=3", &outs);
        assert_eq!((r[0].extracted.as_deref(), r[0].correct), (Some("9"), true));
        assert!(!r[1].correct, "gold 4 is in no sample");
        assert_eq!((r[0].samples, r[0].sample_tokens), (Some(3), Some(33)));
        assert_eq!((s.overall.correct, s.mean_credit), (1, Some(0.5)));
        assert_eq!(s.tokens_per_question, Some(33.0));
        assert_eq!(s.transform.as_deref(), Some("self-consistency:n=3"));
        // pass@1 over 3 samples with 2 right: credit 2/3 for the first item;
        // the decision view (any sample right) counts it correct.
        let (s, r) = eval_under("pass@k:n=3,k=1", &outs);
        assert!((r[0].credit.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r[1].credit, Some(0.0));
        assert!((s.mean_credit.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        // Plain evaluation keeps its old form: no credit fields.
        let plain = judge(
            &item("p", "9", "s", "1"),
            AnswerStyle::Numeric,
            "p".into(),
            outs[0].into(),
            5,
        );
        assert_eq!(
            (plain.credit, plain.samples, plain.sample_tokens),
            (None, None, None)
        );
    }

    #[test]
    fn strict_and_flexible_accuracy() {
        let ds = numeric("gsm8k", &["18", "5", "7"]);
        let items = ds.items.clone();
        let outs = ["So 18.\n#### 18", "She has 5 left.", "The answer is 8."];
        let results: Vec<ItemResult> = items
            .iter()
            .zip(outs)
            .map(|(it, o)| judge(it, ds.style, "p".into(), o.into(), 1))
            .collect();
        assert_eq!(
            results.iter().map(|r| r.strict_correct).collect::<Vec<_>>(),
            vec![Some(true), Some(false), Some(false)]
        );
        let s = summarize("m", &ds, "cot", &results);
        assert_eq!(s.overall.correct, 2);
        assert_eq!(s.strict.as_ref().map(|a| a.correct), Some(1));
    }

    #[test]
    fn aggregates_by_subject_and_level() {
        let items = vec![
            item("a", "\\frac{1}{2}", "Algebra", "1"),
            item("b", "3", "Algebra", "2"),
            item("c", "(1,2)", "Geometry", "2"),
            item("d", "x^2", "Geometry", "5"),
        ];
        let ds = Dataset {
            name: "math500".into(),
            style: AnswerStyle::Latex,
            items: items.clone(),
            skipped: 1,
            source: "x".into(),
        };
        let outputs = [
            ("so \\boxed{0.5}", 10),
            ("\\boxed{4}", 20),
            ("I give up.\nBye", 31),
            ("\\boxed{x\\cdot x}", 3),
        ];
        let results: Vec<ItemResult> = items
            .iter()
            .zip(outputs)
            .map(|(it, (o, t))| judge(it, ds.style, "p".into(), o.into(), t))
            .collect();
        assert_eq!(
            results.iter().map(|r| r.correct).collect::<Vec<_>>(),
            vec![true, false, false, true]
        );
        let s = summarize("m", &ds, "boxed", &results);
        assert_eq!((s.overall.correct, s.overall.n), (2, 4));
        assert!((s.overall.accuracy - 0.5).abs() < 1e-12);
        assert!(s.overall.ci_low < 0.5 && s.overall.ci_high > 0.5);
        assert_eq!(s.extraction_failures, 1);
        assert!((s.extraction_failure_rate - 0.25).abs() < 1e-12);
        assert!((s.mean_response_tokens - 16.0).abs() < 1e-12);
        assert_eq!(s.median_tokens, 15.0);
        assert_eq!(s.skipped_lines, 1);
        assert_eq!(s.by_subject["Algebra"].correct, 1);
        assert_eq!(s.by_subject["Geometry"].n, 2);
        assert_eq!(s.by_level["2"].correct, 0);
        assert_eq!(s.by_level["5"].correct, 1);
        assert!(s.strict.is_none());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["accuracy"], 0.5);
        assert!(json["by_subject"]["Algebra"]["ci_high"].is_number());
    }
}
