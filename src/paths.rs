//! Where things live: the cache directory (`MSCR_HOME`, default under the user's
//! cache dir) and the files the setup puts there.

use std::path::PathBuf;

/// Root of everything the setup downloads and the tool caches (built graphs,
/// models, data). `MSCR_HOME` overrides the default `~/.cache/mscr`.
pub fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("MSCR_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("mscr")
}

pub fn ort_dir() -> PathBuf {
    home().join("ort")
}

pub fn models_dir() -> PathBuf {
    home().join("models")
}

pub fn data_dir() -> PathBuf {
    home().join("data")
}

pub fn wheels_dir() -> PathBuf {
    home().join("wheels")
}

/// Built ONNX graphs, keyed by weights + transforms + builder version.
pub fn graphs_dir() -> PathBuf {
    home().join("graphs")
}

/// WordNet 3.0 dictionary files (`data.noun`, `index.noun`, `noun.exc`, ...).
/// `MSCR_WORDNET` overrides Debian's `/usr/share/wordnet`.
pub fn wordnet_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("MSCR_WORDNET").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    PathBuf::from("/usr/share/wordnet")
}

/// The test data shipped beside the project checkout (`../shared/data`), if present.
/// `MSCR_SHARED_DATA` overrides it.
pub fn shared_data_dir() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("MSCR_SHARED_DATA").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(h));
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let p = manifest.join("..").join("shared").join("data");
    p.is_dir().then_some(p)
}
