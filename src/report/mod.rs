//! Robustness reports from a campaign folder: `summary.json`, `results.csv`,
//! `results.jsonl`, plots (PNG + SVG), `report.md` and a self-contained
//! `report.html`; and the CI gate over two `summary.json` files.

pub mod gate;
mod html;
mod markdown;
pub mod plots;
mod tables;

use crate::attack::{AttackRecord, Summary, record::write_csv, record::write_jsonl};
use crate::campaign::store::{CellKey, ModelProfile, Store};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One cell's results as `summary.json` holds them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellSummary {
    /// `model | transform | dataset | attack`.
    pub cell: String,
    pub model: String,
    pub transform: String,
    pub dataset: String,
    pub attack: String,
    /// True for the random-replacement baseline's own cells.
    pub baseline: bool,
    /// True for a cell read from an `mscr eval` summary: clean accuracy only,
    /// nothing attacked (`attack` is [`CLEAN_ONLY_ATTACK`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clean_only: bool,
    pub summary: Summary,
    /// The random baseline on the same model, transform and dataset, when the campaign ran one.
    pub random_baseline: Option<Summary>,
    /// Mean response tokens over all questions, clean.
    pub mean_clean_tokens: f64,
    /// Mean response tokens of the attacked answers (successes and failures).
    pub mean_attacked_tokens: f64,
    /// Size and measured speed of the model + transform, when the campaign recorded them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ModelProfile>,
    /// Ids of the questions this cell finished, sorted: the gate compares
    /// them with the baseline's.
    #[serde(default)]
    pub item_ids: Vec<String>,
    /// Planned questions the run did not finish (stopped by Ctrl-C or an
    /// error): the cell is partial when this is not empty.
    #[serde(default)]
    pub missing_item_ids: Vec<String>,
}

/// The whole of `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignSummary {
    pub campaign: String,
    pub generated_by: String,
    /// `true` when every cell finished every planned question, `false` for a
    /// run stopped part-way (each cell's `missing_item_ids` says what is
    /// missing), `null` for a store written before mscr recorded its plan.
    #[serde(default)]
    pub complete: Option<bool>,
    pub cells: Vec<CellSummary>,
}

impl CampaignSummary {
    /// Cells with planned questions left, with how many, for messages.
    pub fn partial_cells(&self) -> Vec<(&str, usize)> {
        self.cells
            .iter()
            .filter(|c| !c.missing_item_ids.is_empty())
            .map(|c| (c.cell.as_str(), c.missing_item_ids.len()))
            .collect()
    }

    /// Finished and planned question counts over all cells.
    pub fn progress(&self) -> (usize, usize) {
        let done: usize = self.cells.iter().map(|c| c.summary.questions).sum();
        let missing: usize = self.cells.iter().map(|c| c.missing_item_ids.len()).sum();
        (done, done + missing)
    }

    /// Reads a `summary.json` of `mscr campaign run`, `mscr attack` or
    /// `mscr eval` (read as one clean-only cell, see [`Self::from_eval`]);
    /// every problem names the file.
    pub fn from_file(path: &Path) -> Result<CampaignSummary> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::file(path, format!("not valid JSON: {e}")))?;
        let wrong = |e: serde_json::Error| {
            Error::file(
                path,
                format!(
                    "not a summary.json of mscr ({e}); pass the summary.json that `mscr campaign run`, \
                     `mscr attack` or `mscr eval` writes"
                ),
            )
        };
        if value.get("cells").is_none() && value.get("extraction_failures").is_some() {
            let eval: crate::eval::Summary = serde_json::from_value(value).map_err(wrong)?;
            return Ok(Self::from_eval(&eval));
        }
        serde_json::from_value(value).map_err(wrong)
    }

    /// An `mscr eval` summary as a campaign summary: one cell, `model |
    /// transform | dataset | none`, holding the clean accuracy and response
    /// tokens; nothing was attacked, so the gate checks clean accuracy only.
    pub fn from_eval(e: &crate::eval::Summary) -> CampaignSummary {
        let key = CellKey {
            model: e.model.clone(),
            transform: e.transform.clone().unwrap_or_else(|| "identity".into()),
            dataset: e.dataset.clone(),
            attack: CLEAN_ONLY_ATTACK.into(),
        };
        let mut item_ids = e.item_ids.clone();
        item_ids.sort();
        CampaignSummary {
            campaign: format!("eval {} on {}", e.model, e.dataset),
            generated_by: e
                .settings
                .as_ref()
                .map(|s| s.version.clone())
                .unwrap_or_else(|| "mscr eval".into()),
            complete: e.complete,
            cells: vec![CellSummary {
                cell: key.id(),
                model: key.model,
                transform: key.transform,
                dataset: key.dataset,
                attack: key.attack,
                baseline: false,
                clean_only: true,
                summary: Summary {
                    questions: e.overall.n,
                    clean_accuracy: e.overall.accuracy,
                    mean_response_tokens: e.mean_response_tokens,
                    tokens_per_question: e.tokens_per_question.unwrap_or(e.mean_response_tokens),
                    ..Summary::default()
                },
                random_baseline: None,
                mean_clean_tokens: e.mean_response_tokens,
                mean_attacked_tokens: 0.0,
                profile: None,
                item_ids,
                missing_item_ids: vec![],
            }],
        }
    }
}

/// The attack name of a cell read from an `mscr eval` summary (nothing attacked).
pub const CLEAN_ONLY_ATTACK: &str = "none";

/// A cell with its records, as the report draws it.
pub struct CellResults {
    pub key: CellKey,
    pub baseline: bool,
    pub records: Vec<AttackRecord>,
    pub summary: CellSummary,
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { s / n as f64 }
}

/// Model profiles by `(model, transform)`.
pub type Profiles = std::collections::HashMap<(String, String), ModelProfile>;

/// The questions each cell was to answer (the store's plan).
pub type Plans = std::collections::HashMap<CellKey, Vec<String>>;

/// Builds the per-cell summaries from records (baselines paired by cell),
/// taking the records as the whole run (`complete: true`).
pub fn summarise(
    name: &str,
    cells: Vec<(CellKey, bool, Vec<AttackRecord>)>,
    profiles: &Profiles,
) -> (CampaignSummary, Vec<CellResults>) {
    summarise_planned(name, cells, profiles, None)
}

/// As [`summarise`], checking each cell's records against its plan: a cell
/// missing planned questions makes the run partial; a cell without a plan
/// (a store from before plans were kept) makes completeness unknown.
pub fn summarise_planned(
    name: &str,
    cells: Vec<(CellKey, bool, Vec<AttackRecord>)>,
    profiles: &Profiles,
    plans: Option<&Plans>,
) -> (CampaignSummary, Vec<CellResults>) {
    let mut complete = Some(true);
    let baseline_attack: Option<String> = cells
        .iter()
        .find(|(_, b, _)| *b)
        .map(|(k, _, _)| k.attack.clone());
    let summaries: Vec<(CellKey, Summary)> = cells
        .iter()
        .map(|(k, _, r)| (k.clone(), Summary::from_records(r)))
        .collect();
    let mut out = Vec::new();
    for (key, baseline, records) in cells {
        let summary = Summary::from_records(&records);
        let mut item_ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        item_ids.sort();
        let missing_item_ids: Vec<String> = match plans.map(|p| p.get(&key)) {
            None => Vec::new(),
            Some(None) => {
                complete = None;
                Vec::new()
            }
            Some(Some(plan)) => {
                let done: std::collections::HashSet<&str> =
                    records.iter().map(|r| r.id.as_str()).collect();
                plan.iter()
                    .filter(|id| !done.contains(id.as_str()))
                    .cloned()
                    .collect()
            }
        };
        if !missing_item_ids.is_empty() && complete.is_some() {
            complete = Some(false);
        }
        let random_baseline = match (&baseline_attack, baseline) {
            (Some(b), false) => {
                let bk = key.with_attack(b);
                summaries
                    .iter()
                    .find(|(k, _)| *k == bk)
                    .map(|(_, s)| s.clone())
            }
            _ => None,
        };
        let cs = CellSummary {
            cell: key.id(),
            model: key.model.clone(),
            transform: key.transform.clone(),
            dataset: key.dataset.clone(),
            attack: key.attack.clone(),
            baseline,
            clean_only: false,
            summary,
            random_baseline,
            mean_clean_tokens: mean(records.iter().map(|r| r.clean_tokens as f64)),
            mean_attacked_tokens: mean(
                records
                    .iter()
                    .filter_map(|r| r.attacked_tokens.map(|t| t as f64)),
            ),
            profile: profiles
                .get(&(key.model.clone(), key.transform.clone()))
                .cloned(),
            item_ids,
            missing_item_ids,
        };
        out.push(CellResults {
            key,
            baseline,
            records,
            summary: cs,
        });
    }
    let summary = CampaignSummary {
        campaign: name.into(),
        generated_by: format!("mscr {}", env!("CARGO_PKG_VERSION")),
        complete,
        cells: out.iter().map(|c| c.summary.clone()).collect(),
    };
    (summary, out)
}

/// The files a report consists of.
#[derive(Debug)]
pub struct ReportFiles {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Writes every report file for the campaign in `dir` (its `campaign.sqlite`).
pub fn write_report(dir: &Path) -> Result<ReportFiles> {
    if !dir.join(crate::campaign::store::DB_FILE).is_file()
        && dir.join("items.jsonl").is_file()
        && dir.join("summary.json").is_file()
    {
        return Err(Error::file(
            dir,
            "holds an `mscr eval` run (summary.json, items.jsonl), not a campaign: its figures are \
             in summary.json, which `mscr gate` takes as it is (clean accuracy); `mscr report` writes \
             the report of an `mscr campaign run` or `mscr attack` folder — run \
             `mscr attack --model MODEL --dataset DATASET --out DIR` to attack the model and report it",
        ));
    }
    let store = Store::open_existing(dir)?;
    let name = store.meta("name")?.unwrap_or_else(|| {
        dir.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "campaign".into())
    });
    let mut cells = Vec::new();
    let mut profiles = Profiles::new();
    let mut plans = Plans::new();
    for c in store.cells()? {
        let records = store.records(&c.key)?;
        if let Some(plan) = store.plan(&c.key)? {
            plans.insert(c.key.clone(), plan);
        }
        let mt = (c.key.model.clone(), c.key.transform.clone());
        if !profiles.contains_key(&mt)
            && let Some(p) = store.model_profile(&mt.0, &mt.1)?
        {
            profiles.insert(mt, p);
        }
        cells.push((c.key, c.baseline, records));
    }
    write_report_planned(dir, &name, cells, &profiles, Some(&plans))
}

/// Writes the report for records already in memory (what `write_report` reads
/// from the store), taking them as the whole run.
pub fn write_report_from(
    dir: &Path,
    name: &str,
    cells: Vec<(CellKey, bool, Vec<AttackRecord>)>,
    profiles: &Profiles,
) -> Result<ReportFiles> {
    write_report_planned(dir, name, cells, profiles, None)
}

/// As [`write_report_from`], with each cell's planned questions (see [`summarise_planned`]).
pub fn write_report_planned(
    dir: &Path,
    name: &str,
    cells: Vec<(CellKey, bool, Vec<AttackRecord>)>,
    profiles: &Profiles,
    plans: Option<&Plans>,
) -> Result<ReportFiles> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let (summary, results) = summarise_planned(name, cells, profiles, plans);
    let mut files = Vec::new();
    let write = |file: &str, bytes: &[u8], files: &mut Vec<PathBuf>| -> Result<()> {
        let p = dir.join(file);
        std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))?;
        files.push(p);
        Ok(())
    };
    let json = serde_json::to_string_pretty(&summary).map_err(|e| Error::Other(e.to_string()))?;
    write("summary.json", json.as_bytes(), &mut files)?;

    let all: Vec<AttackRecord> = results
        .iter()
        .flat_map(|c| c.records.iter().cloned())
        .collect();
    let mut csv = Vec::new();
    write_csv(&mut csv, &all)?;
    write("results.csv", &csv, &mut files)?;
    let mut jsonl = Vec::new();
    write_jsonl(&mut jsonl, &all)?;
    write("results.jsonl", &jsonl, &mut files)?;

    let plots = plots::draw_all(&results)?;
    let plot_dir = dir.join("plots");
    std::fs::create_dir_all(&plot_dir).map_err(|e| Error::io(&plot_dir, e))?;
    for p in &plots {
        write(&format!("plots/{}.png", p.name), &p.png, &mut files)?;
        write(
            &format!("plots/{}.svg", p.name),
            p.svg.as_bytes(),
            &mut files,
        )?;
    }
    write(
        "report.md",
        markdown::render(&summary, &results, &plots).as_bytes(),
        &mut files,
    )?;
    write(
        "report.html",
        html::render(&summary, &results, &plots).as_bytes(),
        &mut files,
    )?;
    Ok(ReportFiles {
        dir: dir.to_path_buf(),
        files,
    })
}

/// The report's warning about a run that did not finish, when it did not.
pub(crate) fn partial_notice(summary: &CampaignSummary) -> Option<String> {
    match summary.complete {
        Some(true) => None,
        None => Some(
            "Completeness unknown: this store was written by an mscr that did not record which \
             questions each cell was to answer. Run the same campaign with --resume (finished \
             questions are not repeated) to record it."
                .into(),
        ),
        Some(false) => {
            let (done, planned) = summary.progress();
            let cells: Vec<String> = summary
                .partial_cells()
                .iter()
                .map(|(c, n)| format!("{c} ({n} missing)"))
                .collect();
            Some(format!(
                "PARTIAL RUN: {done} of {planned} planned questions finished; the figures cover \
                 only those. Cells missing questions: {}. Continue with `mscr campaign run SPEC \
                 --resume`.",
                cells.join("; ")
            ))
        }
    }
}

/// Percent with one decimal, for tables.
pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// A rate with its number of trials and 95% Wilson interval:
/// `27.5% (11/40; 15.6–43.6)`; `n=N` stands for `k/N` when per-question
/// credit is fractional (pass@k), and `–` when nothing was counted.
pub(crate) fn rate(p: f64, n: usize) -> String {
    if n == 0 {
        return "–".into();
    }
    let (lo, hi) = crate::eval::wilson_p(p, n, 1.959964);
    let k = p * n as f64;
    let count = if (k - k.round()).abs() < 1e-6 {
        format!("{}/{n}", k.round() as usize)
    } else {
        format!("n={n}")
    };
    format!("{} ({count}; {:.1}–{:.1})", pct(p), 100.0 * lo, 100.0 * hi)
}

/// Questions the attack tried to break (answered correctly when clean).
pub(crate) fn attacked_n(s: &Summary) -> usize {
    s.successes + s.failures
}

/// Tokens with one decimal (response lengths, costs).
pub(crate) fn tokens(x: f64) -> String {
    format!("{x:.1}")
}

/// The name of the untransformed chain a transform row is compared with.
pub const UNTRANSFORMED: &str = "identity";

/// One row of the transform comparison: a cell, and the untransformed
/// model's cell with the same model, dataset and attack.
pub(crate) struct TransformRow<'a> {
    pub cell: &'a CellSummary,
    pub reference: Option<&'a CellSummary>,
}

/// Rows comparing transform chains, grouped by model, dataset and attack
/// (the untransformed row first in each group); empty when the campaign ran
/// one chain only. Baseline cells are left out.
pub(crate) fn transform_rows(summary: &CampaignSummary) -> Vec<TransformRow<'_>> {
    let main: Vec<&CellSummary> = summary.cells.iter().filter(|c| !c.baseline).collect();
    let mut chains: Vec<&str> = main.iter().map(|c| c.transform.as_str()).collect();
    chains.sort();
    chains.dedup();
    if chains.len() < 2 {
        return Vec::new();
    }
    let mut groups: Vec<(&str, &str, &str)> = Vec::new();
    for c in &main {
        let g = (c.model.as_str(), c.dataset.as_str(), c.attack.as_str());
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let mut rows = Vec::new();
    for (m, d, a) in groups {
        let mut cells: Vec<&CellSummary> = main
            .iter()
            .copied()
            .filter(|c| c.model == m && c.dataset == d && c.attack == a)
            .collect();
        // The untransformed row first; the others keep campaign order.
        cells.sort_by_key(|c| c.transform != UNTRANSFORMED);
        let reference = cells.iter().copied().find(|c| c.transform == UNTRANSFORMED);
        for cell in cells {
            rows.push(TransformRow {
                cell,
                reference: reference.filter(|r| r.transform != cell.transform),
            });
        }
    }
    rows
}

/// A figure over attacked questions, or `–` when the cell attacked none.
pub(crate) fn if_attacked(s: &Summary, text: String) -> String {
    if s.successes + s.failures == 0 {
        "–".into()
    } else {
        text
    }
}

/// `value (±delta)` against the reference, in points, for accuracy-like figures.
pub(crate) fn pct_vs(value: f64, reference: Option<f64>) -> String {
    match reference {
        Some(r) => format!("{} ({:+.1})", pct(value), 100.0 * (value - r)),
        None => pct(value),
    }
}

/// `value (×ratio)` against the reference, for costs.
pub(crate) fn tokens_vs(value: f64, reference: Option<f64>) -> String {
    match reference {
        Some(r) if r > 0.0 => format!("{} (×{:.2})", tokens(value), value / r),
        _ => tokens(value),
    }
}

/// Response-length increase of successful attacks, as a signed percent.
pub(crate) fn length_increase(s: &Summary) -> String {
    if s.successes == 0 || s.length_ratio == 0.0 {
        "–".into()
    } else {
        format!("{:+.1}%", 100.0 * (s.length_ratio - 1.0))
    }
}

/// The attacked question split around the changed words, for highlighting:
/// `(text, changed)` runs over the perturbed question.
pub(crate) fn perturbed_runs(r: &AttackRecord) -> Vec<(String, bool)> {
    // Changes give offsets in the original question; walk the original and
    // emit replacements, which reproduces the perturbed text.
    let orig: Vec<char> = r.original_question.chars().collect();
    let mut changes: Vec<_> = r.changes.iter().collect();
    changes.sort_by_key(|c| c.start);
    let mut runs = Vec::new();
    let mut pos = 0usize;
    for c in changes {
        if c.start < pos || c.end > orig.len() || c.start > c.end {
            // Offsets that do not fit: show the perturbed text unhighlighted.
            return vec![(r.perturbed_question.clone(), false)];
        }
        runs.push((orig[pos..c.start].iter().collect(), false));
        runs.push((c.replacement.clone(), true));
        pos = c.end;
    }
    runs.push((orig[pos..].iter().collect(), false));
    let rebuilt: String = runs.iter().map(|(t, _)| t.as_str()).collect();
    if rebuilt != r.perturbed_question {
        return vec![(r.perturbed_question.clone(), false)];
    }
    runs.retain(|(t, _)| !t.is_empty());
    runs
}
