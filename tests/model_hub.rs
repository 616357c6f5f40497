//! Hub downloads against an HTTP server on 127.0.0.1 that the test runs:
//! plain download, resume of an interrupted download via Range, 404, corrupt
//! data (sha256 mismatch), and `resolve` of a hub alias end to end.

use mscr::model::hub::{download_file, download_repo, file_url};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A served file: bytes, sha256 to report, cut the first response after this many bytes.
type File = (Vec<u8>, Option<String>, Option<usize>);

#[derive(Clone, Default)]
struct Served {
    files: HashMap<String, File>,
}

/// Requests seen: (path, Range header).
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

fn serve(served: Served) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let log2 = log.clone();
    let served = Arc::new(Mutex::new(served));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut range = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':')
                    && k.eq_ignore_ascii_case("range")
                {
                    range = Some(v.trim().to_string());
                }
            }
            log2.lock().unwrap().push((path.clone(), range.clone()));
            let mut s = served.lock().unwrap();
            let Some((body, sha, cut)) = s.files.get_mut(&path) else {
                let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
                continue;
            };
            let start = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok())
                .unwrap_or(0);
            let (status, part) = if start > 0 {
                (
                    format!(
                        "206 Partial Content\r\nContent-Range: bytes {start}-{}/{}",
                        body.len() - 1,
                        body.len()
                    ),
                    &body[start..],
                )
            } else {
                ("200 OK".to_string(), &body[..])
            };
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                part.len()
            );
            if let Some(sha) = sha {
                head.push_str(&format!("X-Linked-Etag: \"{sha}\"\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            // Simulate a dropped connection once: send only the first `cut` bytes.
            let send = match cut.take() {
                Some(n) => &part[..n.min(part.len())],
                None => part,
            };
            let _ = stream.write_all(send);
        }
    });
    (format!("http://{addr}"), log)
}

fn sha(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(b))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir()
        .join(format!("mscr-model-hub-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn blob(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn download_resumes_after_an_interrupted_transfer() {
    let big = blob(300_000);
    let mut s = Served::default();
    s.files.insert(
        "/org/m/resolve/main/w.bin".into(),
        (big.clone(), Some(sha(&big)), Some(100_000)),
    );
    let (base, log) = serve(s);
    let dir = tmp("resume");
    let dest = dir.join("w.bin");
    let url = file_url(&base, "org/m", "main", "w.bin");
    let err = download_file(&url, &dest).unwrap_err().to_string();
    assert!(err.contains("run the command again to resume"), "{err}");
    assert!(!dest.exists());
    let part = dir.join("w.bin.part");
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 100_000);
    download_file(&url, &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), big);
    assert!(!part.exists());
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[1].1.as_deref(),
        Some("bytes=100000-"),
        "second request resumes"
    );
}

#[test]
fn missing_and_corrupt_files_are_errors() {
    let good = blob(5000);
    let mut s = Served::default();
    s.files.insert(
        "/org/m/resolve/main/bad.bin".into(),
        (good.clone(), Some(sha(b"something else")), None),
    );
    s.files.insert(
        "/org/m/resolve/main/ok.bin".into(),
        (good.clone(), None, None),
    );
    let (base, _) = serve(s);
    let dir = tmp("errors");
    let err = download_file(
        &file_url(&base, "org/m", "main", "nope.bin"),
        &dir.join("nope.bin"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("404") && err.contains("nope.bin"), "{err}");
    let err = download_file(
        &file_url(&base, "org/m", "main", "bad.bin"),
        &dir.join("bad.bin"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("corrupt"), "{err}");
    assert!(!dir.join("bad.bin").exists() && !dir.join("bad.bin.part").exists());
    // Optional files may be missing; required ones may not.
    download_repo(
        &base,
        "org/m",
        "main",
        &["ok.bin"],
        &["nope.bin"],
        &dir.join("repo"),
    )
    .unwrap();
    assert!(dir.join("repo/.complete").exists());
    assert!(
        download_repo(
            &base,
            "org/m",
            "main",
            &["nope.bin"],
            &[],
            &dir.join("repo2")
        )
        .is_err()
    );
    // Nothing listening: a network error naming the URL.
    let err = download_file("http://127.0.0.1:9/x.bin", &dir.join("x.bin"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:9/x.bin"), "{err}");
}

/// `resolve("qwen2.5-0.5b-instruct")` downloads a (tiny, sharded) HF folder from
/// the endpoint in MSCR_HF_ENDPOINT into MSCR_HOME and loads it.
#[test]
fn resolve_downloads_a_hub_alias() {
    use mscr::model::gguf_write::{TinyConfig, random_model, write_tiny_model};
    use mscr::model::spec::{ResolvedModel, describe, load_decoder, resolve};
    let work = tmp("alias");
    let g = work.join("tiny.gguf");
    let cfg = TinyConfig::default();
    write_tiny_model(&g, mscr::model::Arch::Qwen2, &cfg, 5).unwrap();
    let (_, tok, _) = mscr::model::spec::load_gguf(&g).unwrap();
    let model = random_model(mscr::model::Arch::Qwen2, &cfg, 5);
    let src = work.join("src");
    mscr::model::hf::save_hf(
        &src,
        &model,
        &tok,
        Some(mscr::model::chat::CHATML),
        safetensors::Dtype::BF16,
        2,
    )
    .unwrap();
    let mut s = Served::default();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        s.files.insert(
            format!("/Qwen/Qwen2.5-0.5B-Instruct/resolve/main/{name}"),
            (std::fs::read(&p).unwrap(), None, None),
        );
    }
    let (base, log) = serve(s);
    let home = work.join("home");
    // SAFETY: the only test in this binary that touches the environment.
    unsafe {
        std::env::set_var("MSCR_HOME", &home);
        std::env::set_var("MSCR_HF_ENDPOINT", &base);
    }
    let r = resolve("qwen2.5-0.5b-instruct").unwrap();
    let ResolvedModel::HfFolder { dir } = &r else {
        panic!("{r:?}")
    };
    assert!(dir.starts_with(&home));
    assert!(dir.join("model-00002-of-00002.safetensors").exists());
    let (m, _, chat) = load_decoder(&r).unwrap();
    assert_eq!(m.config.arch, mscr::model::Arch::Qwen2);
    assert_eq!(m.layers.len(), 2);
    assert!(!chat.is_fallback());
    let info = describe(&r).unwrap();
    assert_eq!(info.params as usize, model.params());
    // Second resolve: nothing downloaded again.
    let n = log.lock().unwrap().len();
    resolve("qwen2.5-0.5b-instruct").unwrap();
    assert_eq!(log.lock().unwrap().len(), n);
    // Setup aliases that are missing ask for `mscr setup`.
    let err = resolve("smollm2-135m-instruct").unwrap_err().to_string();
    assert!(err.contains("mscr setup"), "{err}");
}
