//! Validity of perturbations (issue 13): precision and recall of the attack
//! configuration's filters on a hand-labelled set of candidates.
//!
//! Run: `cargo bench --bench validity` (or `cargo test --bench validity` for
//! the dev profile). Reads `benchmarks/data/perturbation_validity_dev.jsonl`
//! (GSM8K-style), its MATH500 part `perturbation_validity_dev_math500.jsonl`
//! and the held-out `perturbation_validity_heldout.jsonl`, each reported on
//! its own (one file: `VALIDITY_SET=path`), and `attacks/mscr.toml` (override
//! with `VALIDITY_CONFIG=path`). Fluency scores are kept in
//! `target/validity-fluency-scores.jsonl` (`VALIDITY_NO_CACHE=1` rescores);
//! `VALIDITY_DUMP=dir` writes every item's verdicts. Each line is one candidate at one word of one
//! question, labelled `valid` by a person (same meaning in this sentence,
//! natural English, same answer) with a one-line reason.
//!
//! Printed: precision (valid among passed) and recall (passed among valid)
//! with n and a 95% Wilson interval, for the whole filter chain, per source,
//! and with each filter removed in turn (ablation); then the fluency
//! deltas, so the `fluency` threshold is read off the labels, not guessed.

use mscr::attack::Resources;
use mscr::attack::config::AttackConfig;
use mscr::attack::filters::{FilterConfig, Filters, Judged};
use mscr::attack::resources::load_parts;
use mscr::attack::sources::Candidate;
use mscr::attack::wordnet::Relation;
use mscr::attack::words::split_words;
use mscr::lm::{Decoding, Generation, LanguageModel, Prompt};
use mscr::runtime::LoadOptions;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The fluency model with its scores kept on disk (one JSON line per scored
/// text, keyed by model id, prompt and continuation), so re-running the
/// bench after a change to a cheap filter does not score the same
/// perturbed questions again. `VALIDITY_NO_CACHE=1` scores afresh.
struct CachedScores {
    inner: Arc<dyn LanguageModel>,
    path: std::path::PathBuf,
    memo: Mutex<HashMap<String, f32>>,
}

impl CachedScores {
    fn new(inner: Arc<dyn LanguageModel>, path: std::path::PathBuf) -> Self {
        let mut memo = HashMap::new();
        if std::env::var_os("VALIDITY_NO_CACHE").is_none()
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            for line in text.lines() {
                if let Ok((k, v)) = serde_json::from_str::<(String, f32)>(line) {
                    memo.insert(k, v);
                }
            }
        }
        CachedScores {
            inner,
            path,
            memo: Mutex::new(memo),
        }
    }

    fn key(&self, prompt: &Prompt, continuation: &str) -> String {
        serde_json::to_string(&(self.inner.id(), prompt, continuation)).expect("key")
    }
}

impl LanguageModel for CachedScores {
    fn id(&self) -> String {
        self.inner.id()
    }
    fn generate(&self, prompts: &[Prompt], decoding: &Decoding) -> mscr::Result<Vec<Generation>> {
        self.inner.generate(prompts, decoding)
    }
    fn score(&self, pairs: &[(Prompt, String)]) -> mscr::Result<Vec<f32>> {
        let keys: Vec<String> = pairs.iter().map(|(p, c)| self.key(p, c)).collect();
        let missing: Vec<usize> = {
            let memo = self.memo.lock().expect("memo");
            (0..pairs.len())
                .filter(|&i| !memo.contains_key(&keys[i]))
                .collect()
        };
        if !missing.is_empty() {
            let todo: Vec<(Prompt, String)> = missing.iter().map(|&i| pairs[i].clone()).collect();
            let scores = self.inner.score(&todo)?;
            let mut memo = self.memo.lock().expect("memo");
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .ok();
            for (&i, s) in missing.iter().zip(scores) {
                if let Some(f) = file.as_mut() {
                    let _ = writeln!(f, "{}", serde_json::json!([keys[i], s]));
                }
                memo.insert(keys[i].clone(), s);
            }
        }
        let memo = self.memo.lock().expect("memo");
        Ok(keys.iter().map(|k| memo[k]).collect())
    }
    fn render(&self, prompt: &Prompt) -> mscr::Result<String> {
        self.inner.render(prompt)
    }
    fn count_tokens(&self, text: &str) -> mscr::Result<usize> {
        self.inner.count_tokens(text)
    }
}

#[derive(Deserialize)]
struct Item {
    id: String,
    question: String,
    /// Character offset of the replaced word.
    start: usize,
    original: String,
    candidate: String,
    sources: Vec<String>,
    valid: bool,
    #[allow(dead_code)]
    reason: String,
}

/// 95% Wilson score interval of k successes in n.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n, z) = (k as f64, n as f64, 1.96f64);
    let p = k / n;
    let d = 1.0 + z * z / n;
    let c = (p + z * z / (2.0 * n)) / d;
    let h = z * ((p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt()) / d;
    ((c - h).max(0.0), (c + h).min(1.0))
}

fn rate(k: usize, n: usize) -> String {
    if n == 0 {
        return "   n/a (n=0)".into();
    }
    let (lo, hi) = wilson(k, n);
    format!(
        "{:.3} ({k}/{n}, 95% CI {lo:.2}–{hi:.2})",
        k as f64 / n as f64
    )
}

/// Precision and recall of `passed` against the labels.
fn pr(rows: &[(bool, bool)]) -> (String, String) {
    let passed = rows.iter().filter(|(p, _)| *p).count();
    let tp = rows.iter().filter(|(p, v)| *p && *v).count();
    let valid = rows.iter().filter(|(_, v)| *v).count();
    (rate(tp, passed), rate(tp, valid))
}

fn main() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The dev set (thresholds are read off it) and the held-out set (checked,
    // never tuned on), each reported on its own; VALIDITY_SET names one file.
    let sets: Vec<std::path::PathBuf> = match std::env::var("VALIDITY_SET") {
        Ok(one) => vec![one.into()],
        Err(_) => [
            "benchmarks/data/perturbation_validity_dev.jsonl",
            // MATH500 prose (issue 20): reported on its own, same targets.
            "benchmarks/data/perturbation_validity_dev_math500.jsonl",
            "benchmarks/data/perturbation_validity_heldout.jsonl",
        ]
        .iter()
        .map(|p| root.join(p))
        .filter(|p| p.is_file())
        .collect(),
    };
    let config_path = std::env::var("VALIDITY_CONFIG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("attacks/mscr.toml"));
    let mut config = AttackConfig::from_file(&config_path).expect("attack config");
    // Only the filters are judged; sources need not be loaded.
    config.sources.clear();
    let (mut resources, _) = load_parts(None, &config, &LoadOptions::default(), false)
        .expect("loading the filters' parts");
    if let Some(m) = resources.fluency.take() {
        let path = root.join("target/validity-fluency-scores.jsonl");
        resources.fluency = Some(Arc::new(CachedScores::new(m, path)));
    }
    for set in &sets {
        report(set, &config_path, &config, &resources);
    }
}

/// Judges one labelled set with the configuration's filters and prints
/// precision, recall, the ablation and the threshold sweeps.
fn report(
    set: &std::path::Path,
    config_path: &std::path::Path,
    config: &AttackConfig,
    resources: &Resources,
) {
    let text = std::fs::read_to_string(set)
        .unwrap_or_else(|e| panic!("{}: {e} (set VALIDITY_SET)", set.display()));
    let items: Vec<Item> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{} line {}: {e}", set.display(), i + 1))
        })
        .collect();
    let filters = Filters::new(config.filters.clone(), resources).expect("filters");
    let stopwords = config.words.stopwords().expect("stopwords");
    let names: Vec<&str> = config.filters.iter().map(FilterConfig::name).collect();
    println!(
        "\n===== validity: {} labelled candidates ({} valid) from {}; config {} (filters: {})",
        items.len(),
        items.iter().filter(|i| i.valid).count(),
        set.display(),
        config_path.display(),
        names.join(", ")
    );

    // Judge every item with every filter, one call per question.
    let mut by_question: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        by_question.entry(&it.question).or_default().push(i);
    }
    let t0 = std::time::Instant::now();
    let mut judged: Vec<Option<Judged>> = vec![None; items.len()];
    for (q, idx) in &by_question {
        let words = split_words(q, &stopwords);
        let mut targets = Vec::new();
        let mut slots = Vec::new();
        let mut whose = Vec::new();
        for &i in idx {
            let it = &items[i];
            // A word the word splitter protects is never attacked: not passed.
            let Some(w) = words.iter().find(|w| w.start == it.start && w.attackable()) else {
                continue;
            };
            assert_eq!(
                w.text, it.original,
                "{}: the word at {} is {:?}",
                it.id, it.start, w.text
            );
            targets.push(w.index);
            slots.push(vec![Candidate {
                text: it.candidate.clone(),
                sources: it.sources.clone(),
                scores: BTreeMap::new(),
            }]);
            whose.push(i);
        }
        let out = filters
            .judge(q, &words, &targets, slots, true)
            .expect("judging");
        for (i, mut slot) in whose.into_iter().zip(out) {
            judged[i] = slot.pop();
        }
    }
    let secs = t0.elapsed().as_secs_f64();

    let passes = |j: &Option<Judged>, without: Option<&str>| -> bool {
        j.as_ref().is_some_and(|j| {
            j.verdicts
                .iter()
                .filter(|v| Some(v.filter.as_str()) != without)
                .all(|v| v.passed)
        })
    };
    let rows = |without: Option<&str>, keep: &dyn Fn(&Item) -> bool| -> Vec<(bool, bool)> {
        items
            .iter()
            .zip(&judged)
            .filter(|(it, _)| keep(it))
            .map(|(it, j)| (passes(j, without), it.valid))
            .collect()
    };
    let all = |_: &Item| true;
    let (p, r) = pr(&rows(None, &all));
    println!("\nconfig as shipped ({secs:.1} s to judge):");
    println!("  precision {p}");
    println!("  recall    {r}");

    println!("\nper source (an item counts for every source that proposed it):");
    let mut sources: Vec<&str> = items
        .iter()
        .flat_map(|i| i.sources.iter().map(String::as_str))
        .collect();
    sources.sort();
    sources.dedup();
    for s in sources {
        let (p, r) = pr(&rows(None, &|i: &Item| i.sources.iter().any(|x| x == s)));
        println!("  {s:<10} precision {p}   recall {r}");
    }

    println!("\nablation (each filter removed in turn):");
    println!("  | removed | precision | recall |");
    println!("  |---|---|---|");
    for n in &names {
        let (p, r) = pr(&rows(Some(n), &all));
        println!("  | {n} | {p} | {r} |");
    }

    // The fluency threshold, read off the labels: precision and recall of
    // the chain without `fluency` plus `delta ≥ −t` for several t.
    let deltas: Vec<(f32, bool, bool)> = items
        .iter()
        .zip(&judged)
        .filter_map(|(it, j)| {
            let j = j.as_ref()?;
            let d = j.evidence.fluency_delta?;
            Some((d, it.valid, passes(&Some(j.clone()), Some("fluency"))))
        })
        .collect();
    if !deltas.is_empty() {
        println!(
            "\nfluency threshold sweep (other filters applied; delta = log p(perturbed) − log p(original), nats):"
        );
        for t in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 1e9] {
            let r: Vec<(bool, bool)> = deltas
                .iter()
                .map(|&(d, v, rest)| (rest && d >= -t, v))
                .collect();
            let valid_all = items.iter().filter(|i| i.valid).count();
            let tp = r.iter().filter(|(p, v)| *p && *v).count();
            let passed = r.iter().filter(|(p, _)| *p).count();
            println!(
                "  max_drop {:>5}: precision {}  recall {}",
                if t > 1e8 {
                    "inf".to_string()
                } else {
                    format!("{t}")
                },
                rate(tp, passed),
                rate(tp, valid_all)
            );
        }
        let med = |v: bool| {
            let mut d: Vec<f32> = deltas.iter().filter(|x| x.1 == v).map(|x| x.0).collect();
            d.sort_by(f32::total_cmp);
            d.get(d.len() / 2).copied().unwrap_or(f32::NAN)
        };
        println!(
            "  median delta: valid {:.2}, not valid {:.2}",
            med(true),
            med(false)
        );
    }

    // Variants of the synonym filter: re-judge with it alone (cheap) and
    // combine with the other filters' verdicts.
    let configured = config.filters.iter().find_map(|f| match f {
        FilterConfig::Synonym {
            min_share,
            relations,
            context,
            candidate_context,
            min_context_cosine,
            min_wordnet_context_cosine,
            ..
        } => Some((
            *min_share,
            relations.clone(),
            *context,
            *candidate_context,
            (*min_context_cosine, *min_wordnet_context_cosine),
        )),
        _ => None,
    });
    if let Some((share, relations, context, candidate_context, (context_cosine, wordnet_floor))) =
        configured
    {
        let rejudge = |f: FilterConfig| -> Vec<(bool, bool)> {
            let syn = Filters::new(vec![f], resources).expect("synonym filter");
            let mut r = Vec::new();
            for (q, idx) in &by_question {
                let words = split_words(q, &stopwords);
                for &i in idx {
                    let it = &items[i];
                    let Some(w) = words.iter().find(|w| w.start == it.start && w.attackable())
                    else {
                        r.push((false, it.valid));
                        continue;
                    };
                    let slot = vec![vec![Candidate {
                        text: it.candidate.clone(),
                        sources: it.sources.clone(),
                        scores: BTreeMap::new(),
                    }]];
                    let ok = syn
                        .judge(q, &words, &[w.index], slot, true)
                        .expect("judging")[0][0]
                        .passed;
                    r.push((ok && passes(&judged[i], Some("synonym")), it.valid));
                }
            }
            r
        };
        let synonym_with =
            |share: f32, relations: &[Relation], context: bool, candidate: bool, cosine| {
                FilterConfig::Synonym {
                    min_share: share,
                    min_candidate_share: share,
                    relations: relations.to_vec(),
                    context,
                    candidate_context: candidate,
                    min_context_cosine: cosine,
                    min_wordnet_context_cosine: wordnet_floor,
                }
            };
        let synonym = |share: f32, relations: &[Relation], context: bool, candidate: bool| {
            synonym_with(share, relations, context, candidate, context_cosine)
        };
        if resources.embedder.is_some() {
            println!(
                "\nin-context cosine sweep (synonym's min_context_cosine; other options as configured):"
            );
            for t in [
                None,
                Some(0.65f32),
                Some(0.7),
                Some(0.75),
                Some(0.8),
                Some(0.85),
            ] {
                let (p, rc) = pr(&rejudge(synonym_with(
                    share,
                    &relations,
                    context,
                    candidate_context,
                    t,
                )));
                let t = t.map_or("none".to_string(), |t| format!("{t}"));
                println!("  min_context_cosine {t:<5}: precision {p}  recall {rc}");
            }
            println!(
                "\nWordNet-evidence floor sweep (synonym's min_wordnet_context_cosine; other options as configured):"
            );
            for floor in [
                None,
                Some(0.4f32),
                Some(0.45),
                Some(0.5),
                Some(0.55),
                Some(0.6),
            ] {
                let f = FilterConfig::Synonym {
                    min_share: share,
                    min_candidate_share: share,
                    relations: relations.to_vec(),
                    context,
                    candidate_context,
                    min_context_cosine: context_cosine,
                    min_wordnet_context_cosine: floor,
                };
                let (p, rc) = pr(&rejudge(f));
                let t = floor.map_or("none".to_string(), |t| format!("{t}"));
                println!("  min_wordnet_context_cosine {t:<5}: precision {p}  recall {rc}");
            }
        }
        println!(
            "\nsynonym threshold sweep (other filters and synonym options as configured; min_share = min_candidate_share):"
        );
        for t in [0.0f32, 0.05, 0.1, 0.15, 0.2, 0.3] {
            let (p, rc) = pr(&rejudge(synonym(t, &relations, context, candidate_context)));
            println!("  share ≥ {t:<4}: precision {p}  recall {rc}");
        }
        use Relation::*;
        println!("\nsynonym variants (share {share}; other filters as configured):");
        println!("  | relations | context (original / candidate) | precision | recall |");
        println!("  |---|---|---|---|");
        let sets: [&[Relation]; 5] = [
            &[SimilarTo],
            &[SimilarTo, VerbGroup],
            &[SimilarTo, AlsoSee],
            &[SimilarTo, Hypernym],
            &[SimilarTo, Hypernym, VerbGroup],
        ];
        for rel in sets {
            for (c, cc) in [(false, false), (true, false), (true, true)] {
                let (p, rc) = pr(&rejudge(synonym(share, rel, c, cc)));
                let names: Vec<&str> = rel.iter().map(|r| r.name()).collect();
                println!(
                    "  | {} | {} / {} | {p} | {rc} |",
                    names.join(", "),
                    if c { "yes" } else { "no" },
                    if cc { "yes" } else { "no" }
                );
            }
        }
    }

    // Every item's verdicts and evidence, one JSON line each, for reading
    // the errors (VALIDITY_DUMP=folder; one file per set).
    if let Some(dir) = std::env::var_os("VALIDITY_DUMP") {
        let name = set.file_name().expect("set file name");
        let path = std::path::Path::new(&dir).join(name);
        let mut out = String::new();
        for (it, j) in items.iter().zip(&judged) {
            let row = serde_json::json!({
                "id": it.id, "valid": it.valid, "passed": passes(j, None),
                "original": it.original, "candidate": it.candidate, "sources": it.sources,
                "judged": j,
            });
            out.push_str(&row.to_string());
            out.push('\n');
        }
        std::fs::write(&path, out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    if std::env::var_os("VALIDITY_SHOW").is_some() {
        println!("\nerrors (id, passed, label, candidate, verdicts):");
        for (it, j) in items.iter().zip(&judged) {
            let p = passes(j, None);
            if p != it.valid {
                let v = j
                    .as_ref()
                    .map(|j| {
                        j.verdicts
                            .iter()
                            .map(|v| {
                                format!(
                                    "{}={}{}",
                                    v.filter,
                                    if v.passed { "ok" } else { "FAIL" },
                                    v.note
                                        .as_deref()
                                        .map(|n| format!("({n})"))
                                        .unwrap_or_default()
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_else(|| "protected".into());
                println!(
                    "  {} passed={p} valid={} {} -> {} [{}] {v}",
                    it.id,
                    it.valid,
                    it.original,
                    it.candidate,
                    it.sources.join("+")
                );
            }
        }
    }
}
