//! Adapters the graph computes beside the weights, against their reference
//! formulas: each fixture case (tiny random Llama / Qwen2 models of
//! tests/fixtures/peft and adapters written by `scripts/compare-peft-unmerged.py`,
//! with the reference forward's logits) goes through mscr's HF importer, the
//! transform and the ONNX Runtime graph. Bad adapters give one clear error
//! naming the file.

mod common;

use common::*;
use mscr::model::Model;
use mscr::runtime::decoder::WeightFormat;
use mscr::runtime::session::{Sampling, SessionOptions};
use mscr::transform::{Calibration, TransformSpec, apply_chain};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/peft")
}

fn unmerged() -> PathBuf {
    fixtures().join("unmerged")
}

fn spec(kind: &str, dir: &Path, extra: &str) -> TransformSpec {
    TransformSpec::parse(&format!("{kind}:path={}{extra}", dir.display())).unwrap()
}

fn apply(m: &Model, s: TransformSpec) -> mscr::Result<Model> {
    apply_chain(m, &[s], &Calibration::none()).map(|(m, _)| m)
}

fn base(arch: &str) -> Model {
    mscr::model::hf::load_model(&fixtures().join(arch)).unwrap()
}

fn cases() -> Vec<Json> {
    let text = std::fs::read_to_string(unmerged().join("cases.json")).unwrap();
    let v: Json = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn tokens(v: &Json) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect()
}

fn expected(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(unmerged().join("expected.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    t.data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Max |Δ| of the graph's logits (every position, the whole sequence as the
/// prompt) against the reference, and of the base model's.
fn logits_parity(case: &Json, adapted: &Model, plain: &Model) -> (f32, f32) {
    let name = case["name"].as_str().unwrap();
    let s = open_graph(adapted, WeightFormat::F32, &SessionOptions::default()).unwrap();
    let b = open_graph(plain, WeightFormat::F32, &SessionOptions::default()).unwrap();
    let (mut worst, mut moved) = (0f32, 0f32);
    for (i, seq) in case["tokens"].as_array().unwrap().iter().enumerate() {
        let t = tokens(seq);
        let want = expected(&format!("{name}.{i}"));
        let flat = |l: Vec<Vec<f32>>| l.into_iter().flatten().collect::<Vec<f32>>();
        let got = flat(s.logits(&t).unwrap());
        assert_eq!(got.len(), want.len(), "{name}: logit counts differ");
        worst = worst.max(max_abs_diff(&got, &want));
        moved = moved.max(max_abs_diff(&flat(b.logits(&t).unwrap()), &want));
    }
    (worst, moved)
}

#[test]
fn toplora_logits_equal_the_reference_formula() {
    let mut n = 0;
    for case in cases().iter().filter(|c| c["kind"] == "toplora") {
        let name = case["name"].as_str().unwrap();
        let plain = base(case["model"].as_str().unwrap());
        let dir = unmerged().join(case["adapter"].as_str().unwrap());
        let adapted = apply(&plain, spec("toplora", &dir, "")).unwrap();
        // Nothing is merged: the weights stay, the branches go to the graph.
        assert_eq!(adapted.layers, plain.layers);
        assert!(!adapted.adapters.gated.is_empty());
        assert!(adapted.params() > plain.params());
        let (worst, moved) = logits_parity(case, &adapted, &plain);
        println!("toplora parity {name}: max |Δ| {worst:.2e} (base model off by {moved:.2})");
        assert!(worst < 1e-3, "{name}: mscr's logits differ by {worst}");
        assert!(
            moved > 1000.0 * worst.max(1e-4),
            "{name}: the adapter barely changes the logits ({moved}); the case tests nothing"
        );
        n += 1;
    }
    assert_eq!(n, 2);
}

/// A copy of fixture adapter `case` in a fresh folder, its safetensors edited.
fn edited_toplora(
    case: &str,
    tag: &str,
    edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>),
) -> PathBuf {
    let src = unmerged().join(case);
    let dir = std::env::temp_dir()
        .join(format!("mscr-transform-unmerged-{}", std::process::id()))
        .join(tag);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        src.join("adapter_config.json"),
        dir.join("adapter_config.json"),
    )
    .unwrap();
    let bytes = std::fs::read(src.join("adapter_model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            let d = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (n, t.shape().to_vec(), d)
        })
        .collect();
    edit(&mut tensors);
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, s, d)| (n, s, d.iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, TensorView)> = raw
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("adapter_model.safetensors")).unwrap();
    dir
}

fn err(m: &Model, s: TransformSpec) -> String {
    match apply(m, s) {
        Ok(_) => panic!("the adapter was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_toplora_adapters_give_one_clear_error() {
    let qwen = base("qwen2");
    let gain = "base_model.model.model.layers.1.self_attn.k_proj.lora_lambda.rms_norm.weight";
    // A missing gain.
    let dir = edited_toplora("toplora-qwen2", "no-gain", |t| t.retain(|x| x.0 != gain));
    let e = err(&qwen, spec("toplora", &dir, ""));
    assert!(e.contains("adapter_model.safetensors"), "{e}");
    assert!(e.contains(gain) && e.contains("missing"), "{e}");
    // A mis-shaped Θ.
    let theta = "base_model.model.model.layers.0.self_attn.v_proj.lora_lambda.weight";
    let dir = edited_toplora("toplora-qwen2", "theta-shape", |t| {
        let x = t.iter_mut().find(|x| x.0 == theta).unwrap();
        x.1 = vec![x.1[1], x.1[0]];
    });
    let e = err(&qwen, spec("toplora", &dir, ""));
    assert!(e.contains("adapter_model.safetensors"), "{e}");
    assert!(e.contains(theta) && e.contains("[in, r]"), "{e}");
    // A plain LoRA adapter (no lora_lambda at all).
    let e = err(&qwen, spec("toplora", &fixtures().join("qwen2-rslora"), ""));
    assert!(e.contains("adapter_model.safetensors"), "{e}");
    assert!(
        e.contains("plain LoRA adapter") && e.contains("lora:path=DIR"),
        "{e}"
    );
    // A base model that does not match (intermediate 128, the adapter's 96).
    let other = tiny_model(&Tiny::default(), 3);
    let e = err(
        &other,
        spec("toplora", &unmerged().join("toplora-llama"), ""),
    );
    assert!(e.contains("adapter_model.safetensors"), "{e}");
    assert!(e.contains("base model does not match"), "{e}");
    assert!(
        e.contains("tests/fixtures/peft/llama"),
        "names the adapter's base: {e}"
    );
    // And the TopLoRA folder is refused by `lora:`.
    let e = err(&qwen, spec("lora", &unmerged().join("toplora-qwen2"), ""));
    assert!(
        e.contains("lora_lambda") && e.contains("toplora:path=DIR"),
        "{e}"
    );
    // Pruning after a graph-computed adapter is refused (its activations
    // would not see the branch).
    let chain = [
        spec("toplora", &unmerged().join("toplora-qwen2"), ""),
        TransformSpec::parse("prune-heads:ratio=0.25").unwrap(),
    ];
    let e = apply_chain(&qwen, &chain, &Calibration::none())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("prune-heads") && e.contains("before the adapter"),
        "{e}"
    );
}

fn greedy(n: usize) -> Sampling {
    Sampling {
        max_new_tokens: n,
        temperature: 0.0,
        top_p: 1.0,
        seed: 0,
        ignore_eos: true,
    }
}

#[test]
fn brep_logits_and_generation_equal_the_reference() {
    let mut n = 0;
    for case in cases().iter().filter(|c| c["kind"] == "brep") {
        let name = case["name"].as_str().unwrap();
        let plain = base(case["model"].as_str().unwrap());
        let dir = unmerged().join(case["adapter"].as_str().unwrap());
        let n_prefix = case["n_prefix"].as_i64().unwrap();
        let adapted = apply(&plain, spec("brep", &dir, &format!(",n_prefix={n_prefix}"))).unwrap();
        assert_eq!(adapted.layers, plain.layers);
        // Prompt pass: every position is intervened.
        let (worst, moved) = logits_parity(case, &adapted, &plain);
        // Greedy decoding with the KV cache, all prompts in one right-padded
        // batch: the intervention stops n_prefix tokens after each row's prompt.
        let s = open_graph(&adapted, WeightFormat::F32, &SessionOptions::default()).unwrap();
        let prompts: Vec<Vec<u32>> = case["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(tokens)
            .collect();
        let outs = s.generate(&prompts, &greedy(8), &mut |_, _| false).unwrap();
        let mut gen_worst = 0f32;
        for (i, o) in outs.iter().enumerate() {
            assert_eq!(
                o.tokens,
                tokens(&case["generated"][i]),
                "{name}: greedy tokens of prompt {i} differ from the reference's"
            );
            gen_worst = gen_worst.max(max_abs_diff(
                &o.logprobs,
                &expected(&format!("{name}.gen.{i}")),
            ));
        }
        println!(
            "brep parity {name}: logits max |Δ| {worst:.2e} (base model off by {moved:.2}); \
             generation log-probs max |Δ| {gen_worst:.2e}"
        );
        assert!(worst < 1e-3, "{name}: logits differ by {worst}");
        assert!(
            gen_worst < 1e-3,
            "{name}: generation log-probs differ by {gen_worst}"
        );
        assert!(
            moved > 100.0 * worst.max(1e-4),
            "{name}: BREP barely changes the logits ({moved})"
        );
        if n_prefix >= 0 {
            // The cut-off matters: acting on every token gives other log-probs
            // after the first n_prefix steps (and the same before).
            let always = apply(&plain, spec("brep", &dir, ",n_prefix=-1")).unwrap();
            let s = open_graph(&always, WeightFormat::F32, &SessionOptions::default()).unwrap();
            let o = s
                .generate(&prompts[..1], &greedy(8), &mut |_, _| false)
                .unwrap();
            let want = expected(&format!("{name}.gen.0"));
            let k = n_prefix as usize;
            let (early, late) = (
                max_abs_diff(&o[0].logprobs[..=k], &want[..=k]),
                max_abs_diff(&o[0].logprobs[k + 1..], &want[k + 1..]),
            );
            assert!(early < 1e-3, "{name}: the first steps must agree ({early})");
            assert!(late > 1e-2, "{name}: n_prefix changes nothing ({late})");
        }
        n += 1;
    }
    assert_eq!(n, 2);
}

#[test]
fn bad_brep_adapters_give_one_clear_error() {
    let llama = base("llama");
    // layer_type "ln": refused naming the file and key.
    let e = err(&llama, spec("brep", &unmerged().join("brep-bad-ln"), ""));
    assert!(
        e.contains("delta_vector.pth") && e.contains("activation_ln"),
        "{e}"
    );
    // A base model that does not match (intermediate 128, the adapter's 96).
    let other = tiny_model(&Tiny::default(), 3);
    let e = err(&other, spec("brep", &unmerged().join("brep-llama"), ""));
    assert!(
        e.contains("delta_vector.pth") && e.contains("base model does not match"),
        "{e}"
    );
    // No adapter in the folder; a file that is not torch.save's.
    let e = err(&llama, spec("brep", &unmerged().join("toplora-llama"), ""));
    assert!(
        e.contains("toplora-llama") && e.contains("ffn_up/delta_vector.pth"),
        "{e}"
    );
    let bad = std::env::temp_dir().join(format!("mscr-brep-bad-{}.pth", std::process::id()));
    std::fs::write(&bad, "{}").unwrap();
    let e = err(&llama, spec("brep", &bad, ""));
    assert!(
        e.contains(&*bad.to_string_lossy()) && e.contains("torch.save"),
        "{e}"
    );
    // Settings.
    let e = TransformSpec::parse("brep:path=x,n_prefix=-2")
        .unwrap_err()
        .to_string();
    assert!(e.contains("n_prefix"), "{e}");
}

#[test]
fn loreft_logits_and_generation_equal_pyreft() {
    let mut n = 0;
    for case in cases().iter().filter(|c| c["kind"] == "loreft") {
        let name = case["name"].as_str().unwrap();
        let plain = base(case["model"].as_str().unwrap());
        let dir = unmerged().join(case["adapter"].as_str().unwrap());
        let (first, last) = (
            case["first"].as_u64().unwrap(),
            case["last"].as_u64().unwrap(),
        );
        let adapted = apply(
            &plain,
            spec("loreft", &dir, &format!(",first={first},last={last}")),
        )
        .unwrap();
        assert_eq!(adapted.layers, plain.layers);
        let (worst, moved) = logits_parity(case, &adapted, &plain);
        // Generation: the prompt is intervened, decode steps only see it
        // through the cache; all prompts in one right-padded batch.
        let s = open_graph(&adapted, WeightFormat::F32, &SessionOptions::default()).unwrap();
        let prompts: Vec<Vec<u32>> = case["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(tokens)
            .collect();
        let outs = s.generate(&prompts, &greedy(8), &mut |_, _| false).unwrap();
        let mut gen_worst = 0f32;
        for (i, o) in outs.iter().enumerate() {
            assert_eq!(
                o.tokens,
                tokens(&case["generated"][i]),
                "{name}: greedy tokens of prompt {i}"
            );
            gen_worst = gen_worst.max(max_abs_diff(
                &o.logprobs,
                &expected(&format!("{name}.gen.{i}")),
            ));
        }
        println!(
            "loreft parity {name}: logits max |Δ| {worst:.2e} (base model off by {moved:.2}); \
             generation log-probs max |Δ| {gen_worst:.2e}"
        );
        assert!(worst < 1e-3, "{name}: logits differ by {worst}");
        assert!(
            gen_worst < 1e-3,
            "{name}: generation log-probs differ by {gen_worst}"
        );
        assert!(
            moved > 100.0 * worst.max(1e-4),
            "{name}: LoReFT barely changes the logits ({moved})"
        );
        // The positions matter: other first/last give other logits.
        let other = apply(
            &plain,
            spec("loreft", &dir, &format!(",first={},last={last}", first + 1)),
        )
        .unwrap();
        let (w, _) = logits_parity(case, &other, &plain);
        assert!(
            w > 1e-2,
            "{name}: first={} changes nothing ({w})",
            first + 1
        );
        n += 1;
    }
    assert_eq!(n, 2);
}

/// A copy of a fixture LoReFT folder with its config edited.
fn edited_reft(case: &str, tag: &str, edit: impl FnOnce(&mut Json)) -> PathBuf {
    let src = unmerged().join(case);
    let dir = std::env::temp_dir()
        .join(format!("mscr-transform-unmerged-{}", std::process::id()))
        .join(tag);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    let mut cfg: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    dir
}

#[test]
fn bad_loreft_adapters_give_one_clear_error() {
    let qwen = base("qwen2");
    // Another intervention type.
    let dir = edited_reft("loreft-qwen2", "noreft", |c| {
        c["intervention_types"][1] = "<class 'pyreft.interventions.NoreftIntervention'>".into();
    });
    let e = err(&qwen, spec("loreft", &dir, ""));
    assert!(
        e.contains("config.json") && e.contains("NoreftIntervention"),
        "{e}"
    );
    // A missing intervention file.
    let dir = edited_reft("loreft-qwen2", "missing", |_| {});
    let f = dir.join("intkey_layer_1_comp_block_output_unit_pos_nunit_1#1.bin");
    std::fs::remove_file(&f).unwrap();
    let e = err(&qwen, spec("loreft", &dir, ""));
    assert!(
        e.contains("intkey_layer_1_comp_block_output_unit_pos_nunit_1#1.bin")
            && e.contains("missing"),
        "{e}"
    );
    // A base model that does not match: hidden 32 here, 64 in the adapter;
    // one layer here, an intervention on layer 1.
    let narrow = tiny_model(
        &Tiny {
            hidden: 32,
            heads: 2,
            kv_heads: 1,
            ..Tiny::default()
        },
        3,
    );
    let e = err(
        &narrow,
        spec("loreft", &unmerged().join("loreft-qwen2"), ""),
    );
    assert!(
        e.contains(".bin") && e.contains("base model (hidden size 32) does not match"),
        "{e}"
    );
    let shallow = tiny_model(
        &Tiny {
            layers: 1,
            ..Tiny::default()
        },
        3,
    );
    let e = err(
        &shallow,
        spec("loreft", &unmerged().join("loreft-llama"), ""),
    );
    assert!(e.contains("config.json") && e.contains("layer 1"), "{e}");
    // Settings.
    let e = TransformSpec::parse("loreft:path=x,first=0,last=0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("first and last"), "{e}");
}
