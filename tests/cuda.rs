//! The CUDA path, on a machine with an NVIDIA GPU: `make test-cuda`. Opt-in:
//! these tests do their work only with `MSCR_TEST_CUDA=1`, and load the CUDA
//! build of ONNX Runtime that `mscr setup --cuda` installs (or the one
//! `ORT_DYLIB_PATH` names) for both devices, with the CUDA 13 and cuDNN 9
//! libraries on the loader path; CI machines have no GPU, so elsewhere each test
//! says why it did nothing. Run them one at a time (`--test-threads=1`): the
//! placement test sets `MSCR_ORT_PROFILE`.
//!
//! What they show: graphs opened on `cuda` give the CPU graph's log-probs and
//! greedy tokens on tiny random-weight models of each architecture, batched
//! generation on the GPU equals one-by-one, ONNX Runtime really placed nodes on
//! the CUDA provider (its profile names the provider of every node), and a GPU
//! that does not exist is a clear error, not a silent fall-back to the CPU.

mod common;

use common::*;
use mscr::model::Arch;
use mscr::runtime::decoder::WeightFormat;
use mscr::runtime::env::Device;
use mscr::runtime::session::{DecoderSession, Sampling, SessionOptions};

fn enabled(test: &str) -> bool {
    let on = std::env::var("MSCR_TEST_CUDA").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("{test}: not run (set MSCR_TEST_CUDA=1 on a machine with a CUDA GPU)");
        return false;
    }
    // One ONNX Runtime library serves the process: the CUDA build, so the CPU
    // sessions compared against run in it too.
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        // SAFETY: every test sets the same value before opening any session.
        unsafe { std::env::set_var("ORT_DYLIB_PATH", mscr::setup::ort_library(true)) };
    }
    true
}

fn open(
    m: &mscr::model::Model,
    format: WeightFormat,
    device: Device,
) -> mscr::Result<DecoderSession> {
    open_graph(m, format, &SessionOptions { device, threads: 2 })
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
fn cuda_graphs_match_the_cpu_graphs() {
    if !enabled("cuda_graphs_match_the_cpu_graphs") {
        return;
    }
    let tokens: Vec<u32> = vec![5, 17, 33, 8, 90, 41, 12, 3, 77];
    let prompts: Vec<Vec<u32>> = vec![vec![5, 6, 7], vec![9, 10, 11, 12, 13, 14, 15], vec![40]];
    for (arch, tied) in [(Arch::Llama, true), (Arch::Qwen2, false)] {
        let m = tiny_model(
            &Tiny {
                arch,
                tied,
                ..Default::default()
            },
            7,
        );
        // f32 agrees to TF32 rounding (ORT's CUDA provider lets cuBLAS use
        // TF32 on Ampere and later: 5e-3 seen on an H200); the block-quantised
        // formats run other kernels on the GPU (activations not quantised to
        // int8), so their log-probs may move by the CPU's activation rounding.
        for (fmt, tol) in [
            (WeightFormat::F32, 2e-2),
            (WeightFormat::Int8, 0.2),
            (WeightFormat::Int4, 0.2),
        ] {
            let cpu = open(&m, fmt, Device::Cpu).unwrap();
            let gpu = open(&m, fmt, Device::Cuda(0)).unwrap();
            let a = cpu.score(&[(tokens.clone(), 1)]).unwrap();
            let b = gpu.score(&[(tokens.clone(), 1)]).unwrap();
            let d = max_abs_diff(&a[0], &b[0]);
            eprintln!("{arch:?} {}: max |Δ log p| cpu vs cuda {d:.2e}", fmt.name());
            assert!(
                d < tol,
                "{arch:?} {}: cpu vs cuda differ by {d}",
                fmt.name()
            );

            let batched = gpu
                .generate(&prompts, &greedy(10), &mut |_, _| false)
                .unwrap();
            for (i, p) in prompts.iter().enumerate() {
                let one = gpu
                    .generate(std::slice::from_ref(p), &greedy(10), &mut |_, _| false)
                    .unwrap();
                assert_eq!(
                    batched[i].tokens,
                    one[0].tokens,
                    "{arch:?} {}: row {i} batched vs alone on cuda",
                    fmt.name()
                );
            }
            if fmt == WeightFormat::F32 {
                let on_cpu = cpu
                    .generate(&prompts, &greedy(10), &mut |_, _| false)
                    .unwrap();
                for i in 0..prompts.len() {
                    assert_eq!(
                        batched[i].tokens, on_cpu[i].tokens,
                        "{arch:?} f32: row {i} cuda vs cpu greedy tokens"
                    );
                }
            }
        }
    }
}

#[test]
fn cuda_sessions_place_nodes_on_the_gpu() {
    if !enabled("cuda_sessions_place_nodes_on_the_gpu") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: set before any session of this test is opened; the file's tests
    // are run one at a time (see the header).
    unsafe { std::env::set_var("MSCR_ORT_PROFILE", dir.path().join("prof")) };
    let m = tiny_model(&Tiny::default(), 3);
    let gpu = open(&m, WeightFormat::Int4, Device::Cuda(0)).unwrap();
    gpu.generate(&[vec![5, 6, 7]], &greedy(4), &mut |_, _| false)
        .unwrap();
    let profile = gpu.end_profiling().unwrap();
    unsafe { std::env::remove_var("MSCR_ORT_PROFILE") };
    let text = std::fs::read_to_string(&profile).unwrap();
    let events: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let mut by_provider = std::collections::BTreeMap::<String, Vec<String>>::new();
    for e in &events {
        if let (Some(p), Some(op)) = (
            e["args"]["provider"].as_str(),
            e["args"]["op_name"].as_str(),
        ) {
            let ops = by_provider.entry(p.to_string()).or_default();
            if !ops.iter().any(|o| o == op) {
                ops.push(op.to_string());
            }
        }
    }
    eprintln!("ops by execution provider: {by_provider:?}");
    let on_gpu = by_provider
        .get("CUDAExecutionProvider")
        .cloned()
        .unwrap_or_default();
    assert!(
        on_gpu.iter().any(|o| o == "MatMulNBits"),
        "no MatMulNBits ran on CUDA: {by_provider:?}"
    );
}

#[test]
fn a_missing_gpu_is_a_clear_error() {
    if !enabled("a_missing_gpu_is_a_clear_error") {
        return;
    }
    let m = tiny_model(&Tiny::default(), 5);
    let err = open(&m, WeightFormat::F32, Device::Cuda(63))
        .err()
        .expect("CUDA device 63 should not open")
        .to_string();
    eprintln!("{err}");
    assert!(err.contains("CUDA device 63"), "{err}");
    assert!(err.contains("--device cpu"), "{err}");
}
