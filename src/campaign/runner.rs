//! Runs a campaign's cells question by question into the store, with resume,
//! sharding, progress bars and a clean stop on Ctrl-C.

use super::store::{CellInfo, CellKey, Store};
use crate::attack::AttackRecord;
use crate::data::Item;
use crate::error::{Error, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// `--shard I/N`: this process runs shard `I` (1-based) of `N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = Error;
    fn from_str(s: &str) -> Result<Shard> {
        let bad = || {
            Error::Config(format!(
                "shard `{s}`: expected I/N with 1 ≤ I ≤ N, e.g. `--shard 2/4`"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether an item id belongs to this shard: by a stable hash of the id,
    /// so shards never depend on file order or on which other items exist.
    pub fn owns(&self, id: &str) -> bool {
        stable_hash(id) % self.count as u64 == (self.index - 1) as u64
    }
}

/// A hash that is the same on every machine and every run.
pub fn stable_hash(s: &str) -> u64 {
    let d = Sha256::digest(s.as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("sha256 has 32 bytes"))
}

/// The questions a cell runs: the first `limit` (or a seeded sample of
/// `limit` when `shuffle`), then this shard's share of them.
pub fn select_items(
    items: &[Item],
    limit: Option<usize>,
    shuffle: bool,
    seed: u64,
    shard: Option<Shard>,
) -> Vec<Item> {
    let mut chosen: Vec<&Item> = items.iter().collect();
    if shuffle {
        // Seeded order by hash of (seed, id): stable and independent of file order.
        chosen.sort_by_key(|it| (stable_hash(&format!("{seed}\u{0}{}", it.id)), it.id.clone()));
    }
    if let Some(l) = limit {
        chosen.truncate(l);
    }
    chosen
        .into_iter()
        .filter(|it| shard.is_none_or(|s| s.owns(&it.id)))
        .cloned()
        .collect()
}

/// Answers one question of one cell: the attack on one item.
pub trait QuestionRunner {
    fn run(&self, item: &Item) -> Result<AttackRecord>;

    /// Called with a cell's pending items before they run one by one, so work
    /// that batches well (clean generations) can go to the model together.
    fn prepare(&self, _items: &[&Item]) -> Result<()> {
        Ok(())
    }
}

/// One cell and the items it runs.
pub struct CellPlan {
    pub info: CellInfo,
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Continue a campaign folder that already holds results.
    pub resume: bool,
    /// Draw progress bars (hidden anyway when stderr is not a terminal).
    pub progress: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Questions answered by this run.
    pub ran: usize,
    /// Questions skipped because an earlier run finished them.
    pub resumed: usize,
    /// True when Ctrl-C stopped the run early.
    pub interrupted: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);
static HANDLER: OnceLock<()> = OnceLock::new();

/// Installs the Ctrl-C handler once per process; a second Ctrl-C exits at once.
fn install_ctrlc() {
    HANDLER.get_or_init(|| {
        let _ = ctrlc::set_handler(|| {
            if STOP.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond interrupt: exiting now (finished questions are saved)");
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupt: stopping after the current question (Ctrl-C again to quit now)"
            );
        });
    });
}

/// Asks the runner to stop after the current question (what Ctrl-C does).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Runs every pending question of every cell into `store`. `make_runner`
/// builds a cell's runner (loading its model) only when the cell has work.
pub fn run_cells<'r>(
    store: &Arc<Store>,
    cells: &[CellPlan],
    mut make_runner: impl FnMut(&CellInfo) -> Result<Box<dyn QuestionRunner + 'r>>,
    options: &RunOptions,
) -> Result<RunStats> {
    let already = store.record_count()?;
    if already > 0 && !options.resume {
        return Err(Error::file(
            store.path(),
            format!(
                "already holds {already} finished questions; pass --resume to continue this campaign, or choose another --out"
            ),
        ));
    }
    install_ctrlc();
    STOP.store(false, Ordering::SeqCst);

    // Work out what is left before starting, for the overall bar and ETA.
    let mut pending: Vec<(usize, Vec<&Item>)> = Vec::new();
    let mut stats = RunStats::default();
    for (ci, cell) in cells.iter().enumerate() {
        store.register_cell(&cell.info)?;
        let planned: Vec<String> = cell.items.iter().map(|it| it.id.clone()).collect();
        store.set_plan(&cell.info.key, &planned)?;
        let done = store.done_items(&cell.info.key)?;
        let todo: Vec<&Item> = cell
            .items
            .iter()
            .filter(|it| !done.contains(&it.id))
            .collect();
        stats.resumed += cell.items.len() - todo.len();
        pending.push((ci, todo));
    }
    let total: usize = pending.iter().map(|(_, t)| t.len()).sum();

    let mp = if options.progress {
        MultiProgress::new()
    } else {
        MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
    };
    let overall = mp.add(ProgressBar::new(total as u64));
    overall.set_style(bar_style(
        "{prefix:>8} [{elapsed_precise}] {wide_bar} {pos}/{len} questions, ETA {eta}",
    ));
    overall.set_prefix("overall");
    // Bars draw nothing without a terminal; plain lines take their place there.
    let lines = crate::progress::Progress::with_lines(
        "campaign",
        "questions",
        total,
        options.progress && !std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );

    for (ci, todo) in &pending {
        if todo.is_empty() {
            continue;
        }
        if STOP.load(Ordering::SeqCst) {
            stats.interrupted = true;
            break;
        }
        let cell = &cells[*ci];
        let key: &CellKey = &cell.info.key;
        let bar = mp.insert_before(&overall, ProgressBar::new(todo.len() as u64));
        bar.set_style(bar_style("{msg} {wide_bar} {pos}/{len} ETA {eta}"));
        bar.set_message(key.id());
        lines.set_label(&format!("campaign, cell `{}`", key.id()));
        let runner = make_runner(&cell.info)?;
        bar.set_message(format!("{} (clean answers)", key.id()));
        runner.prepare(todo).map_err(|e| {
            Error::Other(format!(
                "cell `{}`, clean answers of {} questions (`{}` …): {e}\n{}",
                key.id(),
                todo.len(),
                todo[0].id,
                saved_hint(&stats)
            ))
        })?;
        bar.set_message(key.id());
        for item in todo {
            if STOP.load(Ordering::SeqCst) {
                stats.interrupted = true;
                break;
            }
            // A failed question is not stored, so `--resume` asks it again.
            let mut record = runner.run(item).map_err(|e| {
                Error::Other(format!(
                    "cell `{}`, item `{}`: {e}\n{}",
                    key.id(),
                    item.id,
                    saved_hint(&stats)
                ))
            })?;
            // The cell's labels are the campaign's names for its parts.
            record.id = item.id.clone();
            record.model = key.model.clone();
            record.transform = key.transform.clone();
            record.dataset = key.dataset.clone();
            record.attack = key.attack.clone();
            store.put_record(key, &record)?;
            stats.ran += 1;
            bar.inc(1);
            overall.inc(1);
            lines.inc(1);
        }
        bar.finish();
        if stats.interrupted {
            break;
        }
    }
    overall.finish();
    Ok(stats)
}

/// What a run that stops on an error leaves behind, and how to go on.
fn saved_hint(stats: &RunStats) -> String {
    let questions = |n: usize| format!("{n} question{}", if n == 1 { "" } else { "s" });
    format!(
        "{} finished by this run and {} by earlier runs are saved; once the cause is fixed (e.g. \
         the model server is back), run the same command with --resume to continue from this \
         question",
        questions(stats.ran),
        stats.resumed
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::Outcome;
    use std::cell::Cell;

    fn items(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| Item {
                id: format!("q{i}"),
                question: format!("What is {i} + 1?"),
                gold: format!("{}", i + 1),
                meta: Default::default(),
            })
            .collect()
    }

    #[test]
    fn shard_parse_and_errors() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        for bad in ["0/4", "5/4", "1/0", "a/b", "3"] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("I/N"), "{e}");
        }
    }

    #[test]
    fn shards_partition_the_limited_set() {
        let all = items(50);
        let base: Vec<String> = select_items(&all, Some(30), true, 7, None)
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(base.len(), 30);
        let mut union = Vec::new();
        for i in 1..=3 {
            let s = Shard { index: i, count: 3 };
            let part = select_items(&all, Some(30), true, 7, Some(s));
            assert!(!part.is_empty());
            union.extend(part.into_iter().map(|i| i.id));
        }
        union.sort();
        let mut b = base.clone();
        b.sort();
        assert_eq!(union, b);
    }

    #[test]
    fn limit_without_shuffle_takes_the_first_items() {
        let ids: Vec<String> = select_items(&items(10), Some(3), false, 0, None)
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["q0", "q1", "q2"]);
        let a = select_items(&items(10), Some(3), true, 1, None);
        let b = select_items(&items(10), Some(3), true, 2, None);
        assert_ne!(a, b, "different seeds should give different samples");
        assert_eq!(a, select_items(&items(10), Some(3), true, 1, None));
    }

    /// Answers each question with a skipped record (the attack's record for a
    /// question answered wrongly), counting the questions it saw; asks the
    /// runner to stop after `stop_after` of them, as Ctrl-C does.
    struct Counting<'a> {
        seen: &'a Cell<usize>,
        stop_after: usize,
    }

    impl QuestionRunner for Counting<'_> {
        fn run(&self, item: &Item) -> Result<AttackRecord> {
            self.seen.set(self.seen.get() + 1);
            if self.seen.get() == self.stop_after {
                request_stop();
            }
            Ok(AttackRecord {
                id: item.id.clone(),
                dataset: String::new(),
                model: String::new(),
                transform: String::new(),
                attack: String::new(),
                gold: item.gold.clone(),
                original_question: item.question.clone(),
                perturbed_question: item.question.clone(),
                changes: vec![],
                sentence_similarity: None,
                fluency_delta: None,
                clean_output: "The answer is 0.".into(),
                clean_answer: Some("0".into()),
                clean_correct: false,
                clean_tokens: 5,
                attacked_output: None,
                attacked_answer: None,
                attacked_tokens: None,
                queries: 1,
                result: Outcome::Skipped,
                judge: None,
                seconds: 0.0,
                decoding: None,
            })
        }
    }

    /// The runner's stop flag is process-wide: tests that run cells take turns.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn stop_then_resume_runs_each_question_once() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let cells: Vec<CellPlan> = ["mscr", "random"]
            .iter()
            .map(|a| CellPlan {
                info: CellInfo {
                    key: CellKey {
                        model: "m".into(),
                        transform: "identity".into(),
                        dataset: "d".into(),
                        attack: (*a).into(),
                    },
                    baseline: *a == "random",
                },
                items: items(5),
            })
            .collect();
        let seen = Cell::new(0);
        let opts = RunOptions::default();
        let make = |stop_after| {
            let seen = &seen;
            move |_: &CellInfo| -> Result<Box<dyn QuestionRunner + '_>> {
                Ok(Box::new(Counting { seen, stop_after }))
            }
        };
        let first = run_cells(&store, &cells, make(3), &opts).unwrap();
        assert_eq!(
            first,
            RunStats {
                ran: 3,
                resumed: 0,
                interrupted: true
            }
        );
        // A second run without --resume is refused.
        assert!(
            run_cells(&store, &cells, make(0), &opts)
                .unwrap_err()
                .to_string()
                .contains("--resume")
        );
        let resume = RunOptions {
            resume: true,
            ..RunOptions::default()
        };
        let second = run_cells(&store, &cells, make(0), &resume).unwrap();
        assert_eq!(
            second,
            RunStats {
                ran: 7,
                resumed: 3,
                interrupted: false
            }
        );
        assert_eq!(seen.get(), 10);
        for c in &cells {
            let recs = store.records(&c.info.key).unwrap();
            let ids: Vec<&str> = recs.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(ids, ["q0", "q1", "q2", "q3", "q4"]);
            assert!(
                recs.iter()
                    .all(|r| r.attack == c.info.key.attack && r.model == "m")
            );
        }
        let third = run_cells(&store, &cells, make(0), &resume).unwrap();
        assert_eq!(
            third,
            RunStats {
                ran: 0,
                resumed: 10,
                interrupted: false
            }
        );
    }

    /// Fails on one item (a model server that went away), answers the rest.
    struct FailOn<'a> {
        inner: Counting<'a>,
        fail: &'a Cell<Option<&'static str>>,
    }

    impl QuestionRunner for FailOn<'_> {
        fn run(&self, item: &Item) -> Result<AttackRecord> {
            if self.fail.get() == Some(item.id.as_str()) {
                return Err(Error::Network(
                    "openai:http://127.0.0.1:9/v1#m: prompt 1 of 1 failed: could not connect"
                        .into(),
                ));
            }
            self.inner.run(item)
        }
    }

    #[test]
    fn a_failed_question_is_not_stored_and_resume_asks_it_again() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let key = CellKey {
            model: "m".into(),
            transform: "identity".into(),
            dataset: "d".into(),
            attack: "mscr".into(),
        };
        let cells = vec![CellPlan {
            info: CellInfo {
                key: key.clone(),
                baseline: false,
            },
            items: items(5),
        }];
        let seen = Cell::new(0);
        let fail = Cell::new(Some("q2"));
        let make = |_: &CellInfo| -> Result<Box<dyn QuestionRunner + '_>> {
            Ok(Box::new(FailOn {
                inner: Counting {
                    seen: &seen,
                    stop_after: 0,
                },
                fail: &fail,
            }))
        };
        let e = run_cells(&store, &cells, make, &RunOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("item `q2`") && e.contains("127.0.0.1:9") && e.contains("--resume"),
            "{e}"
        );
        assert!(e.contains("2 questions finished by this run"), "{e}");
        let ids = |s: &Store| -> Vec<String> {
            s.records(&key).unwrap().into_iter().map(|r| r.id).collect()
        };
        assert_eq!(
            ids(&store),
            ["q0", "q1"],
            "the failed question is not stored"
        );

        fail.set(None);
        let resume = RunOptions {
            resume: true,
            ..RunOptions::default()
        };
        let stats = run_cells(&store, &cells, make, &resume).unwrap();
        assert_eq!(
            stats,
            RunStats {
                ran: 3,
                resumed: 2,
                interrupted: false
            }
        );
        assert_eq!(ids(&store), ["q0", "q1", "q2", "q3", "q4"]);
        assert_eq!(seen.get(), 5, "no finished question was asked again");
    }
}
