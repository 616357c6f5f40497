//! Downloading a dataset from a URL pinned by sha256 into the cache.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest dataset file accepted (bytes).
const MAX_BYTES: u64 = 2 << 30;

/// Where a pinned URL is cached: `<data_dir>/url/<sha256>/<file name>`.
pub fn cache_path(url: &str, sha256: &str) -> PathBuf {
    let name = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        })
        .unwrap_or("data.jsonl");
    crate::paths::data_dir().join("url").join(sha256).join(name)
}

fn check_pin(sha256: &str) -> Result<String> {
    let s = sha256.trim().to_ascii_lowercase();
    if s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::Config(format!(
            "`{sha256}` is not a sha256 (64 hex digits); pin the URL's content with --sha256"
        )));
    }
    Ok(s)
}

/// Downloads `url` to `dest` unless a file with the pinned hash is already there.
/// A content mismatch is an error and leaves nothing behind.
pub fn fetch_pinned(url: &str, sha256: &str, dest: &Path) -> Result<PathBuf> {
    let want = check_pin(sha256)?;
    if dest.is_file() && crate::setup::sha256_file(dest)? == want {
        return Ok(dest.to_path_buf());
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .map_err(|e| Error::Network(format!("{url}: {e}")))?;
    let resp = client
        .get(url)
        .send()
        .map_err(|e| Error::Network(format!("{url}: {e}; check the URL and your connection")))?;
    if !resp.status().is_success() {
        return Err(Error::Network(format!("{url}: HTTP {}", resp.status())));
    }
    let mut body = Vec::new();
    resp.take(MAX_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| Error::Network(format!("{url}: reading the body: {e}")))?;
    let got = hex::encode(Sha256::digest(&body));
    if got != want {
        return Err(Error::Network(format!(
            "{url}: checksum mismatch: expected sha256 {want}, got {got}; the file changed upstream or the pin is wrong"
        )));
    }
    let dir = dest
        .parent()
        .ok_or_else(|| Error::file(dest, "no parent directory"))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // Write then rename, so an interrupted download never looks complete.
    let tmp = dest.with_extension("part");
    std::fs::write(&tmp, &body).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))?;
    Ok(dest.to_path_buf())
}
