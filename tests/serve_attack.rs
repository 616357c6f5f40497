//! The MSCR attack on three ASDiv-A questions through the HTTP client against
//! `mscr serve` (the real binary, a child process on 127.0.0.1 with an
//! ephemeral port, loading the default model itself) gives the same records
//! as the attack run in-process: same outcome, clean and attacked outputs,
//! perturbed question, changes, similarity, answers, token counts and query
//! count.
//!
//! The default model (SmolLM2-135M-Instruct) answers these three correctly
//! when clean (greedy, asserted below), so each is really attacked: clean
//! generation, leave-one-out importance and the log-prob pre-screen (`score`,
//! which for chat prompts goes through `/v1/chat/completions` echo scoring),
//! then one batch of 2 perturbed questions. The server batches concurrent
//! requests differently from the in-process calls (leave-one-out and
//! pre-screen scores arrive in batches whose make-up depends on timing, each
//! padded to its own longest row); the records still match exactly, because a
//! row's numbers do not depend on the other rows of its batch. Only the target
//! model is served: the attack's other parts (embeddings, WordNet, the masked
//! LM, MiniLM) run in the test process both times. Needs `mscr setup`.

#[path = "serve_support/mod.rs"]
mod serve_support;
use mscr::attack::{AttackConfig, AttackRecord, Attacker, Labels, Outcome, load_resources};
use mscr::data::Item;
use mscr::data::prompt::PromptTemplate;
use mscr::lm::Decoding;
use mscr::runtime::LoadOptions;
use mscr::runtime::http::HttpModel;
use mscr::score::AnswerStyle;
use std::sync::Arc;
use std::time::Instant;

const MODEL: &str = "smollm2-135m-instruct";

/// How many ASDiv-A questions the default model answers correctly when clean
/// are attacked (greedy, zero-shot CoT chat prompt, 128 new tokens). They are
/// picked by asking the model, not listed: greedy text differs between CPUs
/// (ONNX Runtime's int8 kernels per instruction set), and so does which
/// questions it gets right.
const ATTACKED: usize = 3;
/// Questions tried, from the start of the file, to find them.
const TRIED: usize = 16;

/// attacks/quickstart-mscr.toml (all three sources, MiniLM window filter,
/// importance order, log-prob pre-screen) with fewer candidates per source and
/// one batch of 2: the pre-screen's teacher-forced scoring of every candidate
/// is most of the attack's time on 2 cores.
const CONFIG: &str = r#"
name = "mscr"
seed = 0
[budget]
max_queries = 3
batch = 2
[[sources]]
kind = "embedding"
k = 2
min_cosine = 0.3
[[sources]]
kind = "wordnet"
max = 2
[[sources]]
kind = "mlm"
k = 2
min_prob = 0.005
[[filters]]
kind = "differs"
[[filters]]
kind = "same-pos"
[[filters]]
kind = "numbers"
[[filters]]
kind = "sentence-similarity"
min_cosine = 0.90
window = 7
[[filters]]
kind = "max-words"
max = 1
[search]
kind = "single-word"
importance = true
prescreen = true
"#;

/// The first questions the model answers correctly when clean.
fn items(model: &dyn mscr::lm::LanguageModel) -> Vec<Item> {
    let tried: Vec<Item> = asdiv_a().into_iter().take(TRIED).collect();
    let prompt = PromptTemplate::zero_shot_cot();
    let prompts: Vec<_> = tried.iter().map(|it| prompt.render(&it.question)).collect();
    let decoding = Decoding {
        max_new_tokens: 128,
        ..Decoding::default()
    };
    let outputs = model.generate(&prompts, &decoding).unwrap();
    let right: Vec<Item> = tried
        .into_iter()
        .zip(&outputs)
        .filter(|(it, g)| mscr::score::check(&g.text, &it.gold, AnswerStyle::Numeric).equivalent)
        .map(|(it, _)| it)
        .take(ATTACKED)
        .collect();
    assert_eq!(
        right.len(),
        ATTACKED,
        "the default model answers fewer than {ATTACKED} of the first {TRIED} ASDiv-A questions"
    );
    right
}

/// The test copy of ASDiv-A (`../shared/data`), read by the project's loader.
fn asdiv_a() -> Vec<Item> {
    let dir = mscr::paths::shared_data_dir().expect("../shared/data (test data) not found");
    let opts = mscr::data::LoadOptions {
        format: Some("asdiv".into()),
        ..Default::default()
    };
    mscr::data::load(dir.join("asdiv_a.jsonl").to_str().unwrap(), &opts)
        .unwrap()
        .items
}

fn attack(attacker: &Attacker, items: &[Item]) -> Vec<AttackRecord> {
    let decoding = Decoding {
        max_new_tokens: 128,
        ..Decoding::default()
    };
    let labels = Labels::identity("asdiv_a", MODEL);
    let prompt = PromptTemplate::zero_shot_cot();
    attacker
        .attack_all(items, AnswerStyle::Numeric, &prompt, &decoding, &labels)
        .unwrap()
}

/// The parts of a record that must match (not timings or the model label).
fn essentials(r: &AttackRecord) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "result": r.result.as_str(),
        "clean_output": r.clean_output,
        "clean_answer": r.clean_answer,
        "clean_correct": r.clean_correct,
        "clean_tokens": r.clean_tokens,
        "perturbed_question": r.perturbed_question,
        "changes": r.changes.iter()
            .map(|c| (c.start, c.end, &c.original, &c.replacement, &c.sources))
            .collect::<Vec<_>>(),
        "sentence_similarity": r.sentence_similarity,
        "attacked_output": r.attacked_output,
        "attacked_answer": r.attacked_answer,
        "attacked_tokens": r.attacked_tokens,
        "queries": r.queries,
    })
}

#[test]
fn mscr_attack_through_serve_equals_in_process() {
    let config = AttackConfig::from_toml_str(CONFIG, "serve_attack.rs").unwrap();

    let t0 = Instant::now();
    let resources = load_resources(MODEL, &config, &LoadOptions::default())
        .expect("load the default model and the attack's parts (run `mscr setup`)");
    eprintln!("loaded in {:.1} s", t0.elapsed().as_secs_f64());
    let items = items(resources.model.as_deref().expect("the attacked model"));

    let t = Instant::now();
    let local = attack(
        &Attacker::new(config.clone(), resources.clone()).unwrap(),
        &items,
    );
    eprintln!("in-process attack: {:.1} s", t.elapsed().as_secs_f64());

    // The server loads the model itself, as a user's `mscr serve` does.
    let t = Instant::now();
    let (server, base) = serve_support::serve(MODEL, "127.0.0.1:0", &[]);
    eprintln!("server started in {:.1} s", t.elapsed().as_secs_f64());
    // No retries, so every request is computed once; a long timeout, since on a
    // busy 2-core machine a request can wait behind several batches.
    let client =
        HttpModel::from_spec(&format!("openai:{base}#{MODEL}?timeout_s=600&retries=0")).unwrap();
    let mut remote_resources = resources.clone();
    remote_resources.model = Some(Arc::new(client));
    let t = Instant::now();
    let remote = attack(&Attacker::new(config, remote_resources).unwrap(), &items);
    eprintln!("attack through serve: {:.1} s", t.elapsed().as_secs_f64());
    drop(server);

    assert_eq!(local.len(), ATTACKED);
    assert_eq!(remote.len(), ATTACKED);
    for (l, r) in local.iter().zip(&remote) {
        assert!(
            l.clean_correct,
            "{} should be answered correctly when clean (pick other ids): {:?}",
            l.id, l.clean_output
        );
        assert_ne!(l.result, Outcome::Skipped);
        assert!(l.queries > 1, "{}: the search ran no queries", l.id);
        assert_eq!(
            essentials(l),
            essentials(r),
            "{}: the attack through serve differs from in-process",
            l.id
        );
    }
    eprintln!(
        "results: {:?}",
        local
            .iter()
            .map(|r| (r.id.as_str(), r.result.as_str(), r.queries))
            .collect::<Vec<_>>()
    );
}
