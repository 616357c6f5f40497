//! Attack benchmark: candidates per second per source on real GSM8K questions,
//! and the filters' throughput. Run: `cargo bench --bench attack` (release) or
//! `cargo test --bench attack` (dev profile, our crate at opt-level 1).
//!
//! Sources measured now: WordNet (real WordNet 3.0) and the embedding top-k
//! over a matrix of SmolLM2-135M's shape (49,152 × 576, seeded random values:
//! the cost of the top-k does not depend on the values). The MLM source and a
//! real embedding matrix are measured once their loaders are wired.

use mscr::attack::config::AttackConfig;
use mscr::attack::embedding::EmbeddingIndex;
use mscr::attack::filters::{FilterConfig, Filters};
use mscr::attack::search::SearchConfig;
use mscr::attack::search::single_word::SingleWordConfig;
use mscr::attack::sources::SourceConfig;
use mscr::attack::sources::gather;
use mscr::attack::words::{Stopwords, split_words};
use mscr::attack::{Attacker, Labels, Outcome, Resources, Summary, WordNet, load_resources};
use mscr::data::Item;
use mscr::data::prompt::PromptTemplate;
use mscr::lm::Decoding;
use mscr::model::Matrix;
use mscr::runtime::LoadOptions;
use mscr::score::AnswerStyle;
use rand::{RngExt, SeedableRng};
use std::io::BufRead;
use std::sync::Arc;
use std::time::Instant;

fn gsm8k(n: usize) -> Vec<String> {
    let Some(dir) = mscr::paths::shared_data_dir() else {
        eprintln!("benchmark needs ../shared/data (or MSCR_SHARED_DATA) with gsm8k_test.jsonl");
        std::process::exit(2);
    };
    let f = std::fs::File::open(dir.join("gsm8k_test.jsonl")).expect("gsm8k_test.jsonl");
    std::io::BufReader::new(f)
        .lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.expect("line")).expect("json");
            v["question"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

fn letters_name(mut i: usize) -> String {
    let mut s = String::from(" ");
    loop {
        s.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
        if i == 0 {
            break;
        }
    }
    s.push('x');
    s
}

fn main() {
    let questions = gsm8k(200);
    let stop = Stopwords::default_english();
    let t = Instant::now();
    let mut n_words = 0;
    let mut attackable = 0;
    for q in &questions {
        let w = split_words(q, &stop);
        n_words += w.len();
        attackable += w.iter().filter(|w| w.attackable()).count();
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "words: {} questions, {n_words} words ({attackable} attackable) split in {:.1} ms ({:.0} questions/s)",
        questions.len(),
        dt * 1e3,
        questions.len() as f64 / dt
    );

    let t = Instant::now();
    let wn = Arc::new(WordNet::load_default().expect("WordNet (run `mscr setup`)"));
    println!(
        "wordnet: loaded {} lemmas in {:.2} s",
        wn.lemma_count(),
        t.elapsed().as_secs_f64()
    );

    // Embedding index of SmolLM2-135M's shape.
    let (rows, dim) = (49_152, 576);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let data: Vec<f32> = (0..rows * dim).map(|_| rng.random::<f32>() - 0.5).collect();
    let mut vocab: Vec<String> = (0..rows).map(letters_name).collect();
    // Put the questions' words into the vocabulary so lookups hit.
    let mut k = 0;
    for q in &questions {
        for w in split_words(q, &stop).into_iter().filter(|w| w.attackable()) {
            if k < rows {
                vocab[k] = format!(" {}", w.text.to_lowercase());
                k += 1;
            }
        }
    }
    let t = Instant::now();
    let index = Arc::new(EmbeddingIndex::new(vocab, Matrix::new(rows, dim, data)).expect("index"));
    println!(
        "embedding: index of {} whole words × {dim} built in {:.2} s",
        index.len(),
        t.elapsed().as_secs_f64()
    );

    let resources = Resources {
        wordnet: Some(wn),
        embeddings: Some(index),
        ..Resources::default()
    };
    for (name, toml_text) in [
        ("wordnet", "kind = \"wordnet\"\nmax = 30"),
        (
            "embedding",
            "kind = \"embedding\"\nk = 30\nmin_cosine = -1.0",
        ),
    ] {
        let cfg: SourceConfig = toml::from_str(toml_text).expect("config");
        let sources = vec![cfg.build(&resources).expect("source")];
        let t = Instant::now();
        let mut cands = 0;
        let mut positions = 0;
        for q in &questions {
            let w = split_words(q, &stop);
            let targets: Vec<usize> = w
                .iter()
                .filter(|w| w.attackable())
                .map(|w| w.index)
                .collect();
            positions += targets.len();
            cands += gather(&sources, q, &w, &targets)
                .expect("gather")
                .iter()
                .map(|s| s.len())
                .sum::<usize>();
        }
        let dt = t.elapsed().as_secs_f64();
        println!(
            "source {name}: {cands} candidates for {positions} words of {} questions in {:.2} s: \
             {:.0} candidates/s, {:.0} words/s, {:.1} ms/question",
            questions.len(),
            dt,
            cands as f64 / dt,
            positions as f64 / dt,
            dt * 1e3 / questions.len() as f64
        );
    }

    // Cheap filters on WordNet candidates (no sentence encoder yet).
    let cfg: SourceConfig = toml::from_str("kind = \"wordnet\"").expect("config");
    let sources = vec![cfg.build(&resources).expect("source")];
    let filters = Filters::new(
        vec![
            FilterConfig::Differs,
            FilterConfig::SamePos,
            FilterConfig::Numbers,
            FilterConfig::WordSimilarity { min_cosine: -1.0 },
        ],
        &resources,
    )
    .expect("filters");
    let mut judged = 0;
    let t = Instant::now();
    for q in &questions {
        let w = split_words(q, &stop);
        let targets: Vec<usize> = w
            .iter()
            .filter(|w| w.attackable())
            .map(|w| w.index)
            .collect();
        let slots = gather(&sources, q, &w, &targets).expect("gather");
        judged += filters
            .judge(q, &w, &targets, slots, true)
            .expect("judge")
            .iter()
            .map(|s| s.len())
            .sum::<usize>();
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "wordnet + filters (differs, same-pos, numbers, word-similarity): {judged} candidates judged in {:.2} s: {:.0} candidates/s",
        dt,
        judged as f64 / dt
    );

    model_figures();
}

/// ASDiv-A items (the default model answers ~10% of them).
fn asdiv(n: usize) -> Vec<Item> {
    let Some(dir) = mscr::paths::shared_data_dir() else {
        return Vec::new();
    };
    let Ok(f) = std::fs::File::open(dir.join("asdiv_a.jsonl")) else {
        return Vec::new();
    };
    std::io::BufReader::new(f)
        .lines()
        .take(n)
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.ok()?).ok()?;
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            Some(Item {
                id: s("ID"),
                question: format!("{} {}", s("Body"), s("Question")),
                gold: s("Answer").split_whitespace().next()?.to_string(),
                meta: Default::default(),
            })
        })
        .collect()
}

/// Generations per successful attack with and without the pre-screen, and
/// wall time per attacked question, for the default model on CPU.
/// `MSCR_BENCH_ITEMS` sets the number of ASDiv-A items (default 40).
fn model_figures() {
    let model = "smollm2-135m-instruct";
    let n: usize = std::env::var("MSCR_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let items = asdiv(n);
    let decoding = Decoding {
        max_new_tokens: 256,
        ..Decoding::default()
    };
    let labels = Labels::identity("asdiv", model);
    // Batch 1 counts generations exactly (a batch stops after the batch that
    // succeeds); the last row is the shipped setting (batch 8) for wall time.
    for (prescreen, limit, batch) in [
        (false, None, 1),
        (true, Some(64), 1),
        (true, None, 1),
        (true, Some(64), 8),
    ] {
        let mut config = AttackConfig::default_mscr();
        config.search = SearchConfig::SingleWord(SingleWordConfig {
            importance: true,
            prescreen,
            prescreen_limit: limit,
        });
        config.budget.batch = batch;
        let resources = match load_resources(model, &config, &LoadOptions::default()) {
            Ok(r) => r,
            Err(e) => {
                println!("model figures skipped: {e}");
                return;
            }
        };
        let attacker = match Attacker::new(config, resources) {
            Ok(a) => a,
            Err(e) => {
                println!("model figures skipped: {e}");
                return;
            }
        };
        let t = Instant::now();
        let prompt = PromptTemplate::zero_shot_cot();
        let records =
            match attacker.attack_all(&items, AnswerStyle::Numeric, &prompt, &decoding, &labels) {
                Ok(r) => r,
                Err(e) => {
                    println!("model figures failed: {e}");
                    return;
                }
            };
        let wall = t.elapsed().as_secs_f64();
        let s = Summary::from_records(&records);
        let attacked: Vec<f64> = records
            .iter()
            .filter(|r| r.result != Outcome::Skipped)
            .map(|r| r.seconds)
            .collect();
        println!(
            "model {model}, prescreen {prescreen} (limit {limit:?}), batch {batch}: {} items, clean accuracy {:.3}, {} attacked, success rate {:.3}, \
             generations per success {:.1}, mean generations per attacked question {:.1}, \
             {:.1} s per attacked question, {:.0} s in all",
            records.len(),
            s.clean_accuracy,
            attacked.len(),
            s.success_rate,
            s.queries_per_success,
            s.mean_queries,
            attacked.iter().sum::<f64>() / attacked.len().max(1) as f64,
            wall
        );
    }
}
