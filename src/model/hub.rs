//! Downloads from a Hugging Face–style hub: `{endpoint}/{repo}/resolve/{revision}/{file}`,
//! resumable (HTTP Range into a `.part` file), with a progress bar, verified
//! against the sha256 the hub reports for large files. `MSCR_HF_ENDPOINT`
//! overrides the endpoint (tests point it at a loopback server); `HF_TOKEN`
//! is sent for gated repositories.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The public Hugging Face endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// The hub endpoint: `MSCR_HF_ENDPOINT` or [`DEFAULT_ENDPOINT`].
pub fn endpoint() -> String {
    std::env::var("MSCR_HF_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
        .trim_end_matches('/')
        .to_string()
}

fn client() -> Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        // Model files take minutes; only stalls should fail.
        .timeout(None::<Duration>)
        .user_agent(concat!("mscr/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Network(format!("cannot start an HTTP client: {e}")))
}

/// What a finished download is checked against.
#[derive(Debug, Default)]
struct Expect {
    len: Option<u64>,
    sha256: Option<String>,
}

/// The sha256 a hub reports for LFS files (`X-Linked-Etag` / `ETag` holding 64 hex digits).
fn reported_sha256(h: &reqwest::header::HeaderMap) -> Option<String> {
    ["x-linked-etag", "etag"].iter().find_map(|k| {
        let v = h.get(*k)?.to_str().ok()?;
        let v = v
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_ascii_lowercase();
        (v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit())).then_some(v)
    })
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
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

/// Downloads `url` to `dest`, resuming a previous `dest.part`. Returns early
/// when `dest` already exists.
pub fn download_file(url: &str, dest: &Path) -> Result<()> {
    if dest.exists() {
        return Ok(());
    }
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let part = PathBuf::from(format!("{}.part", dest.display()));
    let client = client()?;
    let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut req = client.get(url);
    if have > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    if let Ok(token) = std::env::var("HF_TOKEN")
        && !token.is_empty()
    {
        req = req.bearer_auth(token);
    }
    let mut resp = req.send().map_err(|e| {
        Error::Network(format!(
            "{url}: {e}; check the connection (or MSCR_HF_ENDPOINT)"
        ))
    })?;
    let status = resp.status();
    if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
        // The part file is no prefix of the remote file (it changed): start over.
        fs::remove_file(&part).map_err(|e| Error::io(&part, e))?;
        return download_file(url, dest);
    }
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(Error::Network(format!(
            "{url}: not found (404); check the model name and revision"
        )));
    }
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(Error::Network(format!(
            "{url}: access denied ({status}); the repository may be gated — accept its licence and set HF_TOKEN"
        )));
    }
    if !status.is_success() {
        return Err(Error::Network(format!("{url}: server answered {status}")));
    }
    let resumed = status == reqwest::StatusCode::PARTIAL_CONTENT && have > 0;
    let start = if resumed { have } else { 0 };
    let expect = Expect {
        len: resp.content_length().map(|n| n + start),
        sha256: reported_sha256(resp.headers()),
    };
    let mut out = if resumed {
        OpenOptions::new().append(true).open(&part)
    } else {
        File::create(&part)
    }
    .map_err(|e| Error::io(&part, e))?;

    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let bar = match expect.len {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::no_length(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(name);
    bar.set_position(start);
    let mut buf = vec![0u8; 1 << 16];
    let mut done = start;
    loop {
        let n = match resp.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                bar.abandon();
                return Err(Error::Network(format!(
                    "{url}: download interrupted after {done} bytes ({e}); run the command again to resume"
                )));
            }
        };
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| Error::io(&part, e))?;
        done += n as u64;
        bar.set_position(done);
    }
    out.flush().map_err(|e| Error::io(&part, e))?;
    drop(out);
    bar.finish_and_clear();
    if let Some(n) = expect.len
        && done != n
    {
        return Err(Error::Network(format!(
            "{url}: download incomplete ({done} of {n} bytes); run the command again to resume"
        )));
    }
    if let Some(want) = &expect.sha256 {
        let got = sha256_file(&part)?;
        if &got != want {
            fs::remove_file(&part).map_err(|e| Error::io(&part, e))?;
            return Err(Error::Network(format!(
                "{url}: downloaded file is corrupt (sha256 {got}, the server reports {want}); it was deleted — run the command again"
            )));
        }
    }
    fs::rename(&part, dest).map_err(|e| Error::io(dest, e))?;
    Ok(())
}

/// The URL of a file in a hub repository.
pub fn file_url(endpoint: &str, repo: &str, revision: &str, file: &str) -> String {
    format!("{endpoint}/{repo}/resolve/{revision}/{file}")
}

/// Downloads `files` of `repo` into `dir`. `optional` files may be missing
/// (404). When a `model.safetensors.index.json` arrives, the shards it lists
/// are fetched too. Writes `dir/.complete` at the end.
pub fn download_repo(
    endpoint: &str,
    repo: &str,
    revision: &str,
    files: &[&str],
    optional: &[&str],
    dir: &Path,
) -> Result<()> {
    let marker = dir.join(".complete");
    if marker.exists() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for f in files {
        download_file(&file_url(endpoint, repo, revision, f), &dir.join(f))?;
    }
    for f in optional {
        match download_file(&file_url(endpoint, repo, revision, f), &dir.join(f)) {
            Err(Error::Network(m)) if m.contains("(404)") => {}
            other => other?,
        }
    }
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::file(&index, format!("invalid JSON: {e}")))?;
        let mut shards: Vec<String> = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .map(|m| {
                m.values()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        shards.sort();
        shards.dedup();
        for s in shards {
            if s.contains("..") || s.starts_with('/') {
                return Err(Error::file(
                    &index,
                    format!("shard name {s:?} leaves the model folder"),
                ));
            }
            download_file(&file_url(endpoint, repo, revision, &s), &dir.join(&s))?;
        }
    }
    fs::write(&marker, repo).map_err(|e| Error::io(&marker, e))?;
    Ok(())
}
