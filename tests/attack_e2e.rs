//! End to end with the real default model (SmolLM2-135M-Instruct), WordNet,
//! the masked LM and all-MiniLM through `load_resources`. These need the
//! runtime and encoder backends wired in (`load_model`, `resources.rs`'s
//! `// WIRE:` spots); until then they fail with "not wired yet".

use mscr::attack::config::AttackConfig;
use mscr::attack::{AttackRecord, Attacker, Labels, Outcome, load_resources};
use mscr::data::Item;
use mscr::data::prompt::PromptTemplate;
use mscr::lm::Decoding;
use mscr::runtime::LoadOptions;
use mscr::score::AnswerStyle;

const MODEL: &str = "smollm2-135m-instruct";

/// ASDiv-A: the default model answers ~10% of it, so a few items get attacked.
fn asdiv_items(n: usize) -> Vec<Item> {
    let dir = mscr::paths::shared_data_dir().expect("../shared/data");
    let opts = mscr::data::LoadOptions {
        format: Some("asdiv".into()),
        limit: Some(n),
        ..Default::default()
    };
    mscr::data::load(dir.join("asdiv_a.jsonl").to_str().unwrap(), &opts)
        .unwrap()
        .items
}

// Small budgets and short answers keep this model-heavy test to a few minutes on 2 cores.
fn config() -> AttackConfig {
    let mut c = AttackConfig::default_mscr();
    c.budget.max_queries = 6;
    c
}

fn run(config: AttackConfig, items: &[Item]) -> Vec<AttackRecord> {
    let resources = load_resources(MODEL, &config, &LoadOptions::default())
        .expect("load the default model and attack parts");
    let attacker = Attacker::new(config, resources).unwrap();
    let decoding = Decoding {
        max_new_tokens: 160,
        ..Decoding::default()
    };
    let labels = Labels::identity("asdiv", MODEL);
    let prompt = PromptTemplate::zero_shot_cot();
    attacker
        .attack_all(items, AnswerStyle::Numeric, &prompt, &decoding, &labels)
        .unwrap()
}

#[test]
fn attacks_real_questions_within_budget_and_deterministically() {
    let items = asdiv_items(6);
    let config = config();
    let a = run(config.clone(), &items);
    assert_eq!(a.len(), items.len());
    for r in &a {
        assert!(
            r.queries <= config.budget.max_queries,
            "{} used {} queries",
            r.id,
            r.queries
        );
        assert_eq!(r.result == Outcome::Skipped, !r.clean_correct, "{}", r.id);
        match r.result {
            Outcome::Skipped => assert_eq!(r.queries, 1),
            Outcome::Success => {
                assert_eq!(r.changes.len(), 1, "single-word setting");
                let c = &r.changes[0];
                assert!(!c.sources.is_empty());
                assert_ne!(r.perturbed_question, r.original_question);
                let orig: Vec<char> = r.original_question.chars().collect();
                assert_eq!(orig[c.start..c.end].iter().collect::<String>(), c.original);
                assert!(
                    r.sentence_similarity.unwrap() >= 0.90,
                    "attacks/mscr.toml threshold"
                );
                assert_ne!(r.attacked_answer.as_deref(), Some(r.gold.as_str()));
            }
            Outcome::Failed => assert!(r.queries >= 2 || r.changes.is_empty()),
        }
    }
    // Same seed and config: same results (wall time aside).
    let b = run(config, &items);
    let strip = |v: &[AttackRecord]| {
        v.iter()
            .map(|r| AttackRecord {
                seconds: 0.0,
                ..r.clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a), strip(&b));
}

#[test]
fn random_baseline_runs_with_the_same_budget() {
    let items = asdiv_items(6);
    let mut c = AttackConfig::random_baseline();
    c.budget.max_queries = 6;
    for r in run(c, &items) {
        assert!(r.queries <= 6);
        assert_eq!(r.attack, "random");
    }
}
