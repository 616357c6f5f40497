use mscr::runtime::{Decoding, LoadOptions, Prompt};
fn main() {
    let spec = std::env::args().nth(1).unwrap();
    let m = mscr::runtime::load_model(
        &spec,
        &LoadOptions {
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let ds = mscr::data::load("../shared/data/gsm8k_test.jsonl", &Default::default()).unwrap();
    let pairs: Vec<(Prompt, String)> = ds
        .items
        .iter()
        .take(12)
        .map(|i| {
            let raw = std::fs::read_to_string("../shared/data/gsm8k_test.jsonl").unwrap();
            let _ = raw;
            (
                Prompt::user(None, i.question.clone()),
                format!("{}", i.gold),
            )
        })
        .collect();
    let s = m.score(&pairs).unwrap();
    println!(
        "{spec}: sum logp of gold answers {:?}",
        s.iter()
            .map(|v| (v * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
    let d = Decoding {
        max_new_tokens: 60,
        ..Default::default()
    };
    let g = m.generate(&[Prompt::user(None, "Seven red apples and two green apples are in the basket. How many apples are in the basket?\nSolve step by step and end with 'The answer is N.'")], &d).unwrap();
    println!("{}", g[0].text);
}
