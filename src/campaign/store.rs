//! The campaign's SQLite store (`campaign.sqlite` in the output folder): a
//! generation cache and the per-question records.
//!
//! WAL mode with one transaction per question: a process killed at any moment
//! leaves every finished question on disk and no half-written one, so a
//! resumed run skips exactly the finished questions.

use crate::attack::AttackRecord;
use crate::error::{Error, Result};
use crate::lm::{Decoding, FinishReason, Generation, LanguageModel, Prompt};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const DB_FILE: &str = "campaign.sqlite";

/// One cell: model × transform chain × dataset × attack.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CellKey {
    pub model: String,
    pub transform: String,
    pub dataset: String,
    pub attack: String,
}

impl CellKey {
    /// The key as stored and shown: `model | transform | dataset | attack`.
    pub fn id(&self) -> String {
        format!(
            "{} | {} | {} | {}",
            self.model, self.transform, self.dataset, self.attack
        )
    }

    /// The same cell under another attack (used to find the baseline).
    pub fn with_attack(&self, attack: &str) -> CellKey {
        CellKey {
            attack: attack.into(),
            ..self.clone()
        }
    }
}

/// A cell as registered in the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellInfo {
    pub key: CellKey,
    /// True when this cell's attack is the campaign's random baseline.
    pub baseline: bool,
}

/// The store. Cheap to share: clone the `Arc`.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::file(path, format!("SQLite: {e}"))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    cell TEXT PRIMARY KEY, model TEXT NOT NULL, transform TEXT NOT NULL,
    dataset TEXT NOT NULL, attack TEXT NOT NULL, baseline INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    cell TEXT NOT NULL, item TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (cell, item));
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, transform TEXT NOT NULL,
    prompt TEXT NOT NULL, decoding TEXT NOT NULL, text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    finish_reason TEXT NOT NULL, logprobs TEXT NOT NULL);
";

impl Store {
    /// Opens (creating if needed) `DIR/campaign.sqlite`.
    pub fn open_dir(dir: &Path) -> Result<Arc<Store>> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Self::open(&dir.join(DB_FILE))
    }

    /// Opens an existing store read/write; errors when the file is missing.
    pub fn open_existing(dir: &Path) -> Result<Arc<Store>> {
        let path = dir.join(DB_FILE);
        if !path.is_file() {
            return Err(Error::file(
                &path,
                "no campaign database here: pass the output folder of `mscr campaign run`",
            ));
        }
        Self::open(&path)
    }

    pub fn open(path: &Path) -> Result<Arc<Store>> {
        let conn = Connection::open(path).map_err(|e| db_err(path, e))?;
        // WAL + synchronous=NORMAL: commits survive a killed process (only an OS
        // crash can lose the last commits), and readers never block the writer.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| db_err(path, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| db_err(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| db_err(path, e))?;
        conn.execute_batch(SCHEMA).map_err(|e| db_err(path, e))?;
        Ok(Arc::new(Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions
        // roll back on drop), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        db_err(&self.path, e)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.lock()
            .execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.lock()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    fn meta_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let conn = self.lock();
        let mut st = conn
            .prepare(
                "SELECT key, value FROM meta WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Records which questions a cell is to answer, so a report can tell a
    /// finished cell from one a run left part-way (Ctrl-C, an error).
    pub fn set_plan(&self, cell: &CellKey, items: &[String]) -> Result<()> {
        let json = serde_json::to_string(items).map_err(|e| Error::Other(e.to_string()))?;
        self.set_meta(&plan_key(cell), &json)
    }

    /// The questions `set_plan` recorded for a cell; `None` for a store
    /// written before plans were recorded.
    pub fn plan(&self, cell: &CellKey) -> Result<Option<Vec<String>>> {
        let Some(json) = self.meta(&plan_key(cell))? else {
            return Ok(None);
        };
        serde_json::from_str(&json).map(Some).map_err(|e| {
            Error::file(
                &self.path,
                format!("question plan of cell `{}` is unreadable ({e})", cell.id()),
            )
        })
    }

    /// Records the size and measured speed of a model + transform (kept on resume).
    pub fn put_model_profile(&self, model: &str, transform: &str, p: &ModelProfile) -> Result<()> {
        let json = serde_json::to_string(p).map_err(|e| Error::Other(e.to_string()))?;
        self.set_meta(&profile_key(model, transform), &json)
    }

    /// The profile `put_model_profile` stored, if any.
    pub fn model_profile(&self, model: &str, transform: &str) -> Result<Option<ModelProfile>> {
        let Some(json) = self.meta(&profile_key(model, transform))? else {
            return Ok(None);
        };
        serde_json::from_str(&json).map(Some).map_err(|e| {
            Error::file(
                &self.path,
                format!("model profile of {model} | {transform} is unreadable ({e})"),
            )
        })
    }

    pub fn register_cell(&self, cell: &CellInfo) -> Result<()> {
        let k = &cell.key;
        self.lock()
            .execute(
                "INSERT INTO cells(cell, model, transform, dataset, attack, baseline)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(cell) DO UPDATE SET baseline = excluded.baseline",
                params![
                    k.id(),
                    k.model,
                    k.transform,
                    k.dataset,
                    k.attack,
                    cell.baseline
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn cells(&self) -> Result<Vec<CellInfo>> {
        let conn = self.lock();
        let mut st = conn
            .prepare("SELECT model, transform, dataset, attack, baseline FROM cells ORDER BY rowid")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(CellInfo {
                    key: CellKey {
                        model: r.get(0)?,
                        transform: r.get(1)?,
                        dataset: r.get(2)?,
                        attack: r.get(3)?,
                    },
                    baseline: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Item ids already finished in a cell.
    pub fn done_items(&self, cell: &CellKey) -> Result<std::collections::HashSet<String>> {
        let conn = self.lock();
        let mut st = conn
            .prepare("SELECT item FROM records WHERE cell = ?1")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([cell.id()], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Stores one finished question in its own transaction. A record already
    /// present for the same cell and item is an error: a resumed run must
    /// never repeat a question.
    pub fn put_record(&self, cell: &CellKey, record: &AttackRecord) -> Result<()> {
        let json = serde_json::to_string(record).map_err(|e| Error::Other(e.to_string()))?;
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO records(cell, item, record) VALUES (?1, ?2, ?3)",
            params![cell.id(), record.id, json],
        )
        .map_err(|e| {
            Error::file(
                &self.path,
                format!("storing item `{}` of cell `{}`: {e}", record.id, cell.id()),
            )
        })?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Every record of a cell, in insertion order.
    pub fn records(&self, cell: &CellKey) -> Result<Vec<AttackRecord>> {
        let conn = self.lock();
        let mut st = conn
            .prepare("SELECT item, record FROM records WHERE cell = ?1 ORDER BY rowid")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([cell.id()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (item, json) = row.map_err(|e| self.err(e))?;
            out.push(serde_json::from_str(&json).map_err(|e| {
                Error::file(
                    &self.path,
                    format!(
                        "record of item `{item}` in cell `{}` is not valid JSON: {e}",
                        cell.id()
                    ),
                )
            })?);
        }
        Ok(out)
    }

    pub fn record_count(&self) -> Result<usize> {
        self.lock()
            .query_row("SELECT COUNT(*) FROM records", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(|e| self.err(e))
    }

    pub fn generation_count(&self) -> Result<usize> {
        self.lock()
            .query_row("SELECT COUNT(*) FROM generations", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as usize)
            .map_err(|e| self.err(e))
    }

    fn get_generation(&self, key: &str) -> Result<Option<Generation>> {
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT text, prompt_tokens, completion_tokens, finish_reason, logprobs
                 FROM generations WHERE key = ?1",
                [key],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((text, pt, ct, fr, lp)) = row else {
            return Ok(None);
        };
        let finish_reason: FinishReason = serde_json::from_str(&fr)
            .map_err(|e| Error::file(&self.path, format!("cached generation {key}: {e}")))?;
        let logprobs: Vec<f32> = serde_json::from_str(&lp).unwrap_or_default();
        Ok(Some(Generation {
            text,
            prompt_tokens: pt as usize,
            completion_tokens: ct as usize,
            finish_reason,
            logprobs,
        }))
    }

    fn put_generations(&self, rows: &[(String, &GenKeyParts, &Generation)]) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for (key, parts, g) in rows {
            tx.execute(
                "INSERT OR IGNORE INTO generations
                 (key, model, transform, prompt, decoding, text, prompt_tokens,
                  completion_tokens, finish_reason, logprobs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    key,
                    parts.model,
                    parts.transform,
                    parts.prompt,
                    parts.decoding,
                    g.text,
                    g.prompt_tokens as i64,
                    g.completion_tokens as i64,
                    serde_json::to_string(&g.finish_reason).unwrap_or_default(),
                    serde_json::to_string(&g.logprobs).unwrap_or_default(),
                ],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Copies every cell, record and cached generation of `other` into this
    /// store. A record for the same cell and item that differs from ours is a
    /// conflict: nothing is written and the error names it.
    pub fn merge_from(&self, other: &Store) -> Result<MergeStats> {
        let other_cells = other.cells()?;
        let mut stats = MergeStats::default();
        // Read everything first so the write transaction below is all-or-nothing.
        let mut incoming = Vec::new();
        for c in &other_cells {
            let conn = other.lock();
            let mut st = conn
                .prepare("SELECT item, record FROM records WHERE cell = ?1 ORDER BY rowid")
                .map_err(|e| other.err(e))?;
            let rows = st
                .query_map([c.key.id()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(|e| other.err(e))?;
            for row in rows {
                let (item, json) = row.map_err(|e| other.err(e))?;
                incoming.push((c.key.id(), item, json));
            }
        }
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for c in &other_cells {
            let k = &c.key;
            tx.execute(
                "INSERT INTO cells(cell, model, transform, dataset, attack, baseline)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(cell) DO NOTHING",
                params![
                    k.id(),
                    k.model,
                    k.transform,
                    k.dataset,
                    k.attack,
                    c.baseline
                ],
            )
            .map_err(|e| self.err(e))?;
        }
        for (cell, item, json) in &incoming {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT record FROM records WHERE cell = ?1 AND item = ?2",
                    params![cell, item],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            match existing {
                Some(mine) if same_record(&mine, json) => stats.duplicates += 1,
                Some(_) => {
                    return Err(Error::Other(format!(
                        "merge conflict: item `{item}` of cell `{cell}` differs between {} and {}; \
                         these are not shards of the same campaign (or were run with different settings)",
                        self.path.display(),
                        other.path.display()
                    )));
                }
                None => {
                    tx.execute(
                        "INSERT INTO records(cell, item, record) VALUES (?1, ?2, ?3)",
                        params![cell, item, json],
                    )
                    .map_err(|e| self.err(e))?;
                    stats.records += 1;
                }
            }
        }
        {
            let oconn = other.lock();
            let mut st = oconn
                .prepare(
                    "SELECT key, model, transform, prompt, decoding, text, prompt_tokens,
                     completion_tokens, finish_reason, logprobs FROM generations",
                )
                .map_err(|e| other.err(e))?;
            let mut rows = st.query([]).map_err(|e| other.err(e))?;
            while let Some(r) = rows.next().map_err(|e| other.err(e))? {
                let vals: Vec<rusqlite::types::Value> = (0..10)
                    .map(|i| r.get(i))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| other.err(e))?;
                stats.generations += tx
                    .execute(
                        "INSERT OR IGNORE INTO generations
                         (key, model, transform, prompt, decoding, text, prompt_tokens,
                          completion_tokens, finish_reason, logprobs)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        rusqlite::params_from_iter(vals),
                    )
                    .map_err(|e| self.err(e))?;
            }
        }
        for (key, value) in other.meta_with_prefix(PROFILE_PREFIX)? {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
                [key, value],
            )
            .map_err(|e| self.err(e))?;
        }
        // Shards plan disjoint shares of each cell: the merged plan is their union.
        for (key, value) in other.meta_with_prefix(PLAN_PREFIX)? {
            let theirs: Vec<String> = serde_json::from_str(&value).map_err(|e| {
                Error::file(
                    &other.path,
                    format!("question plan `{key}` is unreadable ({e})"),
                )
            })?;
            let mine: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|e| self.err(e))?;
            let mut all: Vec<String> = match mine {
                Some(m) => serde_json::from_str(&m).map_err(|e| {
                    Error::file(
                        &self.path,
                        format!("question plan `{key}` is unreadable ({e})"),
                    )
                })?,
                None => Vec::new(),
            };
            for id in theirs {
                if !all.contains(&id) {
                    all.push(id);
                }
            }
            let json = serde_json::to_string(&all).map_err(|e| Error::Other(e.to_string()))?;
            tx.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, json],
            )
            .map_err(|e| self.err(e))?;
        }
        if let Some(spec) = other.meta("spec")? {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ('spec', ?1) ON CONFLICT(key) DO NOTHING",
                [spec],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(stats)
    }
}

/// Two records are the same question's result when they agree on everything
/// but the wall time.
fn same_record(a: &str, b: &str) -> bool {
    let parse = |s: &str| serde_json::from_str::<AttackRecord>(s).ok();
    match (parse(a), parse(b)) {
        (Some(mut x), Some(mut y)) => {
            x.seconds = 0.0;
            y.seconds = 0.0;
            x == y
        }
        _ => a == b,
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MergeStats {
    pub records: usize,
    pub duplicates: usize,
    pub generations: usize,
}

/// Merges shard output folders into `out` (created if needed).
pub fn merge_dirs(inputs: &[PathBuf], out: &Path) -> Result<MergeStats> {
    if inputs.is_empty() {
        return Err(Error::Config(
            "merge: name at least one campaign folder".into(),
        ));
    }
    let dest = Store::open_dir(out)?;
    let mut total = MergeStats::default();
    for dir in inputs {
        let src = Store::open_existing(dir)?;
        if src.path().canonicalize().ok() == dest.path().canonicalize().ok() {
            return Err(Error::file(
                dir,
                "is the merge output itself; choose another --out",
            ));
        }
        let s = dest.merge_from(&src)?;
        total.records += s.records;
        total.duplicates += s.duplicates;
        total.generations += s.generations;
    }
    Ok(total)
}

struct GenKeyParts {
    model: String,
    transform: String,
    prompt: String,
    decoding: String,
}

impl GenKeyParts {
    fn key(&self) -> String {
        let mut h = Sha256::new();
        for part in [&self.model, &self.transform, &self.prompt, &self.decoding] {
            // Length-prefixed so no two different tuples hash the same text.
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// A [`LanguageModel`] that answers from the store's generation cache and
/// sends only the misses, as one batch, to the inner model.
const PROFILE_PREFIX: &str = "profile\t";
const PLAN_PREFIX: &str = "plan\t";

fn plan_key(cell: &CellKey) -> String {
    format!("{PLAN_PREFIX}{}", cell.id())
}

fn profile_key(model: &str, transform: &str) -> String {
    format!("{PROFILE_PREFIX}{model}\t{transform}")
}

/// Size, cost and measured speed of one model + transform, for the report's
/// transform table. Fields a backend cannot give (sizes over HTTP) are absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelProfile {
    pub params: Option<u64>,
    pub flops_per_token: Option<u64>,
    /// Batch-1 greedy generation speed (new tokens per second, prompt included in the time).
    pub decode_tokens_per_s: Option<f64>,
}

pub struct CachedModel {
    inner: Arc<dyn LanguageModel>,
    store: Arc<Store>,
    transform: String,
}

impl CachedModel {
    /// `transform` is the chain label; it is part of every cache key.
    pub fn new(inner: Arc<dyn LanguageModel>, store: Arc<Store>, transform: &str) -> Self {
        CachedModel {
            inner,
            store,
            transform: transform.into(),
        }
    }

    fn parts(&self, prompt: &Prompt, decoding: &Decoding) -> Result<GenKeyParts> {
        Ok(GenKeyParts {
            model: self.inner.id(),
            transform: self.transform.clone(),
            // The rendered prompt, so two prompts the model sees identically share an entry.
            prompt: self.inner.render(prompt)?,
            decoding: decoding.key(),
        })
    }
}

impl LanguageModel for CachedModel {
    fn id(&self) -> String {
        self.inner.id()
    }

    fn stats(&self) -> Option<crate::lm::ModelStats> {
        self.inner.stats()
    }

    fn generate(&self, prompts: &[Prompt], decoding: &Decoding) -> Result<Vec<Generation>> {
        let parts: Vec<GenKeyParts> = prompts
            .iter()
            .map(|p| self.parts(p, decoding))
            .collect::<Result<_>>()?;
        let mut keys: Vec<String> = parts.iter().map(GenKeyParts::key).collect();
        if decoding.temperature > 0.0 {
            // Sampling: the k-th copy of a prompt in a batch is its own sample
            // (self-consistency asks for n of them), so number the copies.
            let mut seen: std::collections::HashMap<String, usize> = Default::default();
            for k in keys.iter_mut() {
                let n = seen.entry(k.clone()).or_insert(0);
                *n += 1;
                if *n > 1 {
                    *k = format!("{k}#{n}");
                }
            }
        }
        let mut out: Vec<Option<Generation>> = keys
            .iter()
            .map(|k| self.store.get_generation(k))
            .collect::<Result<_>>()?;
        // Duplicate prompts inside one batch are generated once.
        let mut miss_idx: Vec<usize> = Vec::new();
        for (i, g) in out.iter().enumerate() {
            if g.is_none() && !miss_idx.iter().any(|&j| keys[j] == keys[i]) {
                miss_idx.push(i);
            }
        }
        if !miss_idx.is_empty() {
            let miss_prompts: Vec<Prompt> = miss_idx.iter().map(|&i| prompts[i].clone()).collect();
            let fresh = self.inner.generate(&miss_prompts, decoding)?;
            if fresh.len() != miss_prompts.len() {
                return Err(Error::Other(format!(
                    "model {} returned {} generations for {} prompts",
                    self.inner.id(),
                    fresh.len(),
                    miss_prompts.len()
                )));
            }
            let rows: Vec<(String, &GenKeyParts, &Generation)> = miss_idx
                .iter()
                .zip(&fresh)
                .map(|(&i, g)| (keys[i].clone(), &parts[i], g))
                .collect();
            self.store.put_generations(&rows)?;
            for (&i, g) in miss_idx.iter().zip(&fresh) {
                for (j, slot) in out.iter_mut().enumerate() {
                    if slot.is_none() && keys[j] == keys[i] {
                        *slot = Some(g.clone());
                    }
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|g| g.expect("every slot filled"))
            .collect())
    }

    fn score(&self, pairs: &[(Prompt, String)]) -> Result<Vec<f32>> {
        self.inner.score(pairs)
    }

    fn render(&self, prompt: &Prompt) -> Result<String> {
        self.inner.render(prompt)
    }

    fn count_tokens(&self, text: &str) -> Result<usize> {
        self.inner.count_tokens(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::Outcome;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A tiny deterministic generator (the test's own model): echoes the
    /// prompt's length and counts how many prompts reached it.
    struct Echo {
        calls: AtomicUsize,
        prompts: AtomicUsize,
    }

    impl LanguageModel for Echo {
        fn id(&self) -> String {
            "echo".into()
        }
        fn generate(&self, prompts: &[Prompt], d: &Decoding) -> Result<Vec<Generation>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.prompts.fetch_add(prompts.len(), Ordering::SeqCst);
            prompts
                .iter()
                .map(|p| {
                    let r = self.render(p)?;
                    Ok(Generation {
                        text: format!("{} chars, max {}", r.len(), d.max_new_tokens),
                        prompt_tokens: r.len(),
                        completion_tokens: 3,
                        finish_reason: FinishReason::Eos,
                        logprobs: vec![-0.5, -1.0, -0.25],
                    })
                })
                .collect()
        }
        fn score(&self, pairs: &[(Prompt, String)]) -> Result<Vec<f32>> {
            Ok(pairs.iter().map(|_| 0.0).collect())
        }
        fn render(&self, prompt: &Prompt) -> Result<String> {
            Ok(match prompt {
                Prompt::Text { text } => text.clone(),
                Prompt::Chat { messages } => messages.iter().map(|m| m.content.as_str()).collect(),
            })
        }
        fn count_tokens(&self, text: &str) -> Result<usize> {
            Ok(text.len())
        }
    }

    fn record(id: &str) -> AttackRecord {
        AttackRecord {
            id: id.into(),
            dataset: "d".into(),
            model: "m".into(),
            transform: "identity".into(),
            attack: "mscr".into(),
            gold: "3".into(),
            original_question: "What is 1 + 2?".into(),
            perturbed_question: "What is 1 + 2?".into(),
            changes: vec![],
            sentence_similarity: None,
            fluency_delta: None,
            clean_output: "The answer is 3.".into(),
            clean_answer: Some("3".into()),
            clean_correct: true,
            clean_tokens: 5,
            attacked_output: None,
            attacked_answer: None,
            attacked_tokens: None,
            queries: 1,
            result: Outcome::Failed,
            judge: None,
            seconds: 0.1,
            decoding: None,
        }
    }

    fn cell(attack: &str) -> CellKey {
        CellKey {
            model: "m".into(),
            transform: "identity".into(),
            dataset: "d".into(),
            attack: attack.into(),
        }
    }

    #[test]
    fn cache_sends_only_misses_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let echo = Arc::new(Echo {
            calls: AtomicUsize::new(0),
            prompts: AtomicUsize::new(0),
        });
        let d = Decoding::default();
        let p = |s: &str| Prompt::text(s);
        {
            let store = Store::open_dir(dir.path()).unwrap();
            let m = CachedModel::new(echo.clone(), store.clone(), "identity");
            let a = m.generate(&[p("a"), p("bb")], &d).unwrap();
            assert_eq!(echo.prompts.load(Ordering::SeqCst), 2);
            // One hit, one miss, one duplicate of the miss: one prompt reaches the model.
            let b = m.generate(&[p("bb"), p("ccc"), p("ccc")], &d).unwrap();
            assert_eq!(echo.prompts.load(Ordering::SeqCst), 3);
            assert_eq!(b[0], a[1]);
            assert_eq!(b[1], b[2]);
            assert_eq!(b[1].logprobs, vec![-0.5, -1.0, -0.25]);
            // Another decoding or transform is another key.
            let d2 = Decoding {
                max_new_tokens: 7,
                ..Decoding::default()
            };
            m.generate(&[p("a")], &d2).unwrap();
            CachedModel::new(echo.clone(), store.clone(), "pruned")
                .generate(&[p("a")], &d)
                .unwrap();
            assert_eq!(echo.prompts.load(Ordering::SeqCst), 5);
            // Sampled decoding: copies of a prompt are separate samples, each cached.
            let hot = Decoding {
                temperature: 0.7,
                ..Decoding::default()
            };
            m.generate(&[p("s"), p("s"), p("s")], &hot).unwrap();
            assert_eq!(echo.prompts.load(Ordering::SeqCst), 8);
            m.generate(&[p("s"), p("s"), p("s")], &hot).unwrap();
            assert_eq!(echo.prompts.load(Ordering::SeqCst), 8);
        }
        // A new process (here: a new connection) answers from disk.
        let store = Store::open_dir(dir.path()).unwrap();
        assert_eq!(store.generation_count().unwrap(), 8);
        let calls = echo.calls.load(Ordering::SeqCst);
        let m = CachedModel::new(echo.clone(), store, "identity");
        let again = m.generate(&[p("a"), p("bb"), p("ccc")], &d).unwrap();
        assert_eq!(echo.calls.load(Ordering::SeqCst), calls);
        assert_eq!(again[0].text, "1 chars, max 384");
    }

    #[test]
    fn records_are_unique_per_cell_and_merge_refuses_conflicts() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let sa = Store::open_dir(a.path()).unwrap();
        let sb = Store::open_dir(b.path()).unwrap();
        for s in [&sa, &sb] {
            s.register_cell(&CellInfo {
                key: cell("mscr"),
                baseline: false,
            })
            .unwrap();
        }
        sa.put_record(&cell("mscr"), &record("q1")).unwrap();
        let dup = sa
            .put_record(&cell("mscr"), &record("q1"))
            .unwrap_err()
            .to_string();
        assert!(dup.contains("q1"), "{dup}");
        let mut same = record("q1");
        same.seconds = 9.0; // wall time differs: still the same result
        sb.put_record(&cell("mscr"), &same).unwrap();
        sb.put_record(&cell("mscr"), &record("q2")).unwrap();
        let profile = ModelProfile {
            params: Some(7),
            flops_per_token: Some(14),
            decode_tokens_per_s: Some(3.5),
        };
        sb.put_model_profile("m", "identity", &profile).unwrap();
        assert_eq!(sa.model_profile("m", "identity").unwrap(), None);
        let stats = merge_dirs(&[a.path().into(), b.path().into()], out.path()).unwrap();
        assert_eq!(
            stats,
            MergeStats {
                records: 2,
                duplicates: 1,
                generations: 0
            }
        );
        let merged = Store::open_existing(out.path()).unwrap();
        let ids: Vec<String> = merged
            .records(&cell("mscr"))
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["q1", "q2"]);
        assert_eq!(
            merged.model_profile("m", "identity").unwrap(),
            Some(profile),
            "profiles travel with a merge"
        );

        let c = tempfile::tempdir().unwrap();
        let sc = Store::open_dir(c.path()).unwrap();
        sc.register_cell(&CellInfo {
            key: cell("mscr"),
            baseline: false,
        })
        .unwrap();
        let mut other = record("q2");
        other.clean_answer = Some("4".into());
        sc.put_record(&cell("mscr"), &other).unwrap();
        let e = merge_dirs(&[c.path().into()], out.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("conflict") && e.contains("q2"), "{e}");
        // All-or-nothing: the conflicting merge wrote nothing.
        assert_eq!(merged.record_count().unwrap(), 2);
    }
}
