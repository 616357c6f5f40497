//! The campaign spec: models × transform chains × datasets × attacks, read from TOML.
//!
//! Every table is `deny_unknown_fields`, and every parse error is re-raised
//! naming the spec file, so a typo reads "quickstart.toml: unknown field
//! `limt`, expected one of ...".

use crate::data::DatasetSpec;
use crate::data::prompt::PromptTemplate;
use crate::error::{Error, Result};
use crate::lm::Decoding;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Keys accepted at the top level of a spec (kept in step with [`RawSpec`]).
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "name",
    "models",
    "transforms",
    "datasets",
    "attacks",
    "limit",
    "shuffle",
    "seed",
    "decoding",
    "prompt",
    "out",
    "threads",
];

/// The `kind`s a transform step may name (kept in step with [`TransformStep`]).
pub const TRANSFORM_KINDS: &[&str] = crate::transform::KINDS;

use crate::transform::Stage;
/// One step of a transform chain: a weight, prompt or decoding transform
/// (`crate::transform`). New transforms are new variants there; the spec
/// format does not change.
pub use crate::transform::TransformSpec as TransformStep;

/// Short label for cache keys and reports, e.g. `prune-heads{"ratio":0.3}`;
/// prompt and decoding transforms show only the settings they change
/// (`self-doubt`, `self-consistency{"n":9}`).
pub fn step_label(step: &TransformStep) -> String {
    match step {
        TransformStep::Identity {} => "identity".into(),
        other if other.stage() != Stage::Weights => {
            let s = other.changed_settings();
            if s.as_object().is_some_and(|o| o.is_empty()) {
                other.kind().to_string()
            } else {
                format!("{}{s}", other.kind())
            }
        }
        other => format!("{}{}", other.kind(), other.settings()),
    }
}

/// A chain's name as readers see it in reports and plots: each generated step
/// label (`kind{settings}`) cut to the settings that differ from the kind's
/// defaults, written `kind key=value ...`. Names a user gave come back as they are.
pub fn display_label(name: &str) -> String {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, ch) in name.char_indices() {
        match ch {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            '+' if depth == 0 => {
                parts.push(&name[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&name[start..]);
    parts
        .iter()
        .map(|p| display_step(p).unwrap_or_else(|| p.to_string()))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn display_step(part: &str) -> Option<String> {
    let brace = part.find('{')?;
    let (kind, json) = part.split_at(brace);
    let serde_json::Value::Object(mut o) = serde_json::from_str(json).ok()? else {
        return None;
    };
    o.insert("kind".into(), kind.into());
    let step: TransformStep = serde_json::from_value(o.into()).ok()?;
    let shown: Vec<String> = step
        .non_default_settings()
        .into_iter()
        .map(|(k, v)| format!("{k}={}", plain(&v)))
        .collect();
    Some(if shown.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} {}", shown.join(" "))
    })
}

fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A chain of transform steps applied in order. The identity chain is empty
/// or holds only `identity` steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformChain {
    pub name: String,
    pub steps: Vec<TransformStep>,
}

impl TransformChain {
    pub fn identity() -> Self {
        TransformChain {
            name: "identity".into(),
            steps: vec![TransformStep::Identity {}],
        }
    }

    pub fn is_identity(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s, TransformStep::Identity {}))
    }

    /// The weight steps, in order (what the built graph depends on).
    pub fn weight_steps(&self) -> Vec<TransformStep> {
        self.steps
            .iter()
            .filter(|s| s.stage() == Stage::Weights)
            .cloned()
            .collect()
    }

    /// True when the chain leaves the weights as they are (prompt and
    /// decoding steps aside).
    pub fn weights_unchanged(&self) -> bool {
        self.steps
            .iter()
            .all(|s| s.stage() != Stage::Weights || matches!(s, TransformStep::Identity {}))
    }

    /// The chain's prompt step, if any.
    pub fn prompt_step(&self) -> Option<&TransformStep> {
        self.steps.iter().find(|s| s.stage() == Stage::Prompt)
    }

    /// The chain's decoding step, if any.
    pub fn decoding_step(&self) -> Option<&TransformStep> {
        self.steps.iter().find(|s| s.stage() == Stage::Decoding)
    }

    /// The label cached generations are stored under: the name, plus the
    /// inference steps' settings, so outputs of different prompt or decoding
    /// transforms never mix even under a reused name. Weight-only chains keep
    /// their name alone (the key of caches written before inference transforms).
    pub fn cache_label(&self) -> String {
        let inference: Vec<String> = self
            .steps
            .iter()
            .filter(|s| s.stage() != Stage::Weights)
            .map(|s| serde_json::to_string(s).unwrap_or_default())
            .collect();
        if inference.is_empty() {
            self.name.clone()
        } else {
            format!("{}|{}", self.name, inference.join("|"))
        }
    }
}

/// `[[transforms]] name = "..." steps = [ {kind = ...}, ... ]` (the chain form).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    name: Option<String>,
    steps: Vec<TransformStep>,
}

/// Where an attack's configuration comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttackSource {
    /// A TOML file (resolved against the spec's folder).
    File(PathBuf),
    /// An inline table: the attack configuration's own keys.
    Inline(String),
}

/// One attack of the campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackSpec {
    /// Label in records and reports.
    pub name: String,
    /// True for the random-replacement baseline reported beside the others.
    pub baseline: bool,
    pub source: AttackSource,
}

/// Keys the campaign itself reads from an `[[attacks]]` table; every other key
/// of an inline table belongs to the attack configuration.
const ATTACK_REF_KEYS: &[&str] = &["name", "config", "baseline"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttackRef {
    name: Option<String>,
    config: PathBuf,
    #[serde(default)]
    baseline: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Option<String>,
    models: Vec<String>,
    #[serde(default)]
    transforms: Vec<toml::Value>,
    datasets: Vec<toml::Value>,
    attacks: Vec<toml::Table>,
    limit: Option<usize>,
    #[serde(default)]
    shuffle: bool,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    decoding: Decoding,
    prompt: Option<toml::Value>,
    out: Option<PathBuf>,
    #[serde(default)]
    threads: usize,
}

/// A parsed, validated campaign spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignSpec {
    pub name: String,
    /// Model specs (aliases, paths, `openai:` URLs), as `runtime::load_model` takes them.
    pub models: Vec<String>,
    pub transforms: Vec<TransformChain>,
    /// Dataset names, paths or URLs, as `data::load` takes them, each with
    /// its load options (format, field mapping, skip_invalid, sha256).
    pub datasets: Vec<DatasetSpec>,
    pub attacks: Vec<AttackSpec>,
    /// Questions per dataset (before sharding); all when `None`.
    pub limit: Option<usize>,
    /// Take a seeded random sample of `limit` questions instead of the first ones.
    pub shuffle: bool,
    pub seed: u64,
    pub decoding: Decoding,
    pub prompt: PromptTemplate,
    /// Output folder (relative paths resolve against the spec's folder).
    pub out: PathBuf,
    /// Intra-op threads for in-process models; 0 = runtime default.
    pub threads: usize,
    /// Where in-process models run (`--device`; not part of the spec file,
    /// nor of what `--resume` compares: results do not depend on it).
    #[serde(skip)]
    pub device: crate::runtime::env::Device,
    /// The folder the spec file lives in.
    pub base_dir: PathBuf,
}

/// Re-words serde/TOML errors: the TOML crate reports the span, serde the key
/// and the valid alternatives; we add the file.
fn toml_err(path: &Path, e: toml::de::Error) -> Error {
    Error::file(path, e.to_string().trim_end().to_string())
}

fn keys_list(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl CampaignSpec {
    pub fn from_file(path: &Path) -> Result<CampaignSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Self::from_toml_str(&text, path, &base)
    }

    /// Parses `text`; `path` names the file in errors; `base` resolves relative paths.
    pub fn from_toml_str(text: &str, path: &Path, base: &Path) -> Result<CampaignSpec> {
        // Check top-level keys first so the message lists every valid key.
        let table: toml::Table = toml::from_str(text).map_err(|e| toml_err(path, e))?;
        for k in table.keys() {
            if !TOP_LEVEL_KEYS.contains(&k.as_str()) {
                return Err(Error::file(
                    path,
                    format!(
                        "unknown key `{k}` at the top level; valid keys: {}",
                        keys_list(TOP_LEVEL_KEYS)
                    ),
                ));
            }
        }
        let raw: RawSpec = toml::from_str(text).map_err(|e| toml_err(path, e))?;
        let file_stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "campaign".into());

        if raw.models.is_empty() {
            return Err(Error::file(
                path,
                "`models` is empty: name at least one model",
            ));
        }
        if raw.datasets.is_empty() {
            return Err(Error::file(
                path,
                "`datasets` is empty: name at least one dataset",
            ));
        }
        if raw.attacks.is_empty() {
            return Err(Error::file(
                path,
                "no `[[attacks]]`: add one, e.g. `[[attacks]] config = \"mscr.toml\"`",
            ));
        }
        if raw.limit == Some(0) {
            return Err(Error::file(
                path,
                "`limit = 0` selects no question; remove it or raise it",
            ));
        }

        raw.decoding
            .validate("[decoding]")
            .map_err(|e| Error::file(path, e.to_string()))?;
        let transforms = parse_transforms(&raw.transforms, path)?;
        let datasets = parse_datasets(&raw.datasets, path, base)?;
        let attacks = parse_attacks(&raw.attacks, path)?;
        let prompt = parse_prompt(raw.prompt.as_ref(), path, base)?;

        let out = raw
            .out
            .map(|o| if o.is_absolute() { o } else { base.join(o) })
            .unwrap_or_else(|| base.join("runs").join(&file_stem));

        Ok(CampaignSpec {
            name: raw.name.unwrap_or(file_stem),
            models: raw.models,
            transforms,
            datasets,
            attacks,
            limit: raw.limit,
            shuffle: raw.shuffle,
            seed: raw.seed,
            decoding: raw.decoding,
            prompt,
            out,
            threads: raw.threads,
            device: Default::default(),
            base_dir: base.to_path_buf(),
        })
    }

    /// The attack the report sets beside the others, if any.
    pub fn baseline_attack(&self) -> Option<&AttackSpec> {
        self.attacks.iter().find(|a| a.baseline)
    }
}

/// `datasets = ["gsm8k", { path = "my.jsonl", mapping = "my-mapping.toml" }]`:
/// a bare spec, or a table with the options `--dataset` takes beside it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataset {
    /// A built-in name, a file (relative to the spec) or a URL.
    path: String,
    format: Option<String>,
    /// A mapping file (relative to the spec) or an inline table.
    mapping: Option<toml::Value>,
    #[serde(default)]
    skip_invalid: bool,
    sha256: Option<String>,
}

/// Keys of a dataset entry table (kept in step with [`RawDataset`]).
pub const DATASET_KEYS: &[&str] = &["path", "format", "mapping", "skip_invalid", "sha256"];

fn parse_datasets(values: &[toml::Value], path: &Path, base: &Path) -> Result<Vec<DatasetSpec>> {
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let entry = match v {
            toml::Value::String(s) => DatasetSpec::plain(s),
            toml::Value::Table(t) => {
                let raw: RawDataset = v.clone().try_into().map_err(|e: toml::de::Error| {
                    let keys = t
                        .keys()
                        .find(|k| !DATASET_KEYS.contains(&k.as_str()))
                        .map(|k| {
                            format!("unknown key `{k}`; valid keys: {}", keys_list(DATASET_KEYS))
                        })
                        .unwrap_or_else(|| e.to_string().trim_end().to_string());
                    Error::file(path, format!("datasets[{i}]: {keys}"))
                })?;
                let mapping = match &raw.mapping {
                    None => None,
                    Some(toml::Value::String(f)) => {
                        let file = base.join(f);
                        Some(crate::data::FieldMapping::from_file(&file)?)
                    }
                    Some(m @ toml::Value::Table(_)) => {
                        Some(m.clone().try_into().map_err(|e: toml::de::Error| {
                            Error::file(
                                path,
                                format!("datasets[{i}].mapping: {}", e.to_string().trim_end()),
                            )
                        })?)
                    }
                    Some(_) => {
                        return Err(Error::file(
                            path,
                            format!(
                                "datasets[{i}].mapping: give a mapping file (`mapping = \"fields.toml\"`) \
                                 or a table (`mapping = {{ question = \"q\", answer = \"a\" }}`)"
                            ),
                        ));
                    }
                };
                DatasetSpec {
                    spec: raw.path,
                    options: crate::data::LoadOptions {
                        skip_invalid: raw.skip_invalid,
                        format: raw.format,
                        mapping,
                        sha256: raw.sha256,
                        ..Default::default()
                    },
                }
            }
            _ => {
                return Err(Error::file(
                    path,
                    format!(
                        "datasets[{i}]: expected a dataset name or path (`\"gsm8k\"`) or a table \
                         (`{{ path = \"my.jsonl\", mapping = \"fields.toml\" }}`)"
                    ),
                ));
            }
        };
        out.push(entry);
    }
    Ok(out)
}

fn parse_transforms(values: &[toml::Value], path: &Path) -> Result<Vec<TransformChain>> {
    if values.is_empty() {
        return Ok(vec![TransformChain::identity()]);
    }
    let mut chains = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let ctx = |e: toml::de::Error| {
            Error::file(
                path,
                format!(
                    "transforms[{i}]: {} (transform kinds: {}; `identity` takes no settings)",
                    e.to_string().trim_end(),
                    keys_list(TRANSFORM_KINDS)
                ),
            )
        };
        let table = v.as_table().ok_or_else(|| {
            Error::file(
                path,
                format!("transforms[{i}]: expected a table (`[[transforms]] kind = \"identity\"`)"),
            )
        })?;
        // A table with `steps` is a chain; otherwise the table is one step.
        let chain = if table.contains_key("steps") {
            let raw: RawChain = v.clone().try_into().map_err(ctx)?;
            if raw.steps.is_empty() {
                return Err(Error::file(
                    path,
                    format!("transforms[{i}]: `steps` is empty"),
                ));
            }
            let name = raw.name.unwrap_or_else(|| {
                raw.steps
                    .iter()
                    .map(step_label)
                    .collect::<Vec<_>>()
                    .join("+")
            });
            TransformChain {
                name,
                steps: raw.steps,
            }
        } else {
            let step: TransformStep = v.clone().try_into().map_err(ctx)?;
            TransformChain {
                name: step_label(&step),
                steps: vec![step],
            }
        };
        let chain = check_chain(chain, i, path)?;
        if chains.iter().any(|c: &TransformChain| c.name == chain.name) {
            return Err(Error::file(
                path,
                format!(
                    "transforms[{i}]: a chain named `{}` already exists; give it a `name`",
                    chain.name
                ),
            ));
        }
        chains.push(chain);
    }
    Ok(chains)
}

/// Checks a chain's stage order (weights, then one prompt, then one decoding
/// step) and each step's settings.
fn check_stages(steps: &[TransformStep]) -> std::result::Result<(), String> {
    let mut last = Stage::Weights;
    let mut seen: Vec<(Stage, &'static str)> = Vec::new();
    for step in steps {
        let stage = step.stage();
        if stage < last {
            return Err(format!(
                "the {} transform `{}` comes after a {} transform; order a chain's steps as \
                 weight transforms, then one prompt transform, then one decoding transform",
                stage.name(),
                step.kind(),
                last.name()
            ));
        }
        if stage != Stage::Weights
            && let Some((_, other)) = seen.iter().find(|(s, _)| *s == stage)
        {
            return Err(format!(
                "two {} transforms (`{other}` and `{}`); a chain takes at most one — \
                 run the other on its own (in a campaign: its own `[[transforms]]` entry)",
                stage.name(),
                step.kind()
            ));
        }
        seen.push((stage, step.kind()));
        last = stage;
        step.validate().map_err(|e| e.to_string())?;
    }
    Ok(())
}

impl TransformChain {
    /// A chain from the command line's `KIND[:key=value,...]` steps (as
    /// `mscr transform` takes them), checked like a spec's chain.
    pub fn from_cli(texts: &[String]) -> Result<Self> {
        let steps = texts
            .iter()
            .map(|t| TransformStep::parse(t))
            .collect::<Result<Vec<_>>>()?;
        let name = steps.iter().map(step_label).collect::<Vec<_>>().join("+");
        check_stages(&steps).map_err(|m| {
            Error::Config(format!("--transform {}: {m}", texts.join(" --transform ")))
        })?;
        Ok(TransformChain { name, steps })
    }
}

/// Checks a chain's stages and settings, and resolves the files its steps
/// name against the spec's folder.
fn check_chain(mut chain: TransformChain, i: usize, path: &Path) -> Result<TransformChain> {
    let err = |m: String| Error::file(path, format!("transforms[{i}] (`{}`): {m}", chain.name));
    check_stages(&chain.steps).map_err(err)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    for step in &mut chain.steps {
        if let Some(p) = step.prompt_mut()
            && let Some(f) = p.file().map(resolve)
        {
            p.set_file(f);
        }
        match step {
            TransformStep::Lora(c) => c.path = resolve(&c.path),
            TransformStep::TopLora(c) => c.path = resolve(&c.path),
            TransformStep::Brep(c) => c.path = resolve(&c.path),
            TransformStep::Loreft(c) => c.path = resolve(&c.path),
            _ => {}
        }
        if let TransformStep::BestOfN(c) = step {
            if let Some(t) = c.verifier.template.as_deref().map(resolve) {
                c.verifier.template = Some(t);
            }
            // A verifier given as a file or folder is relative to the spec, like `models`.
            let m = c.verifier.model.clone();
            let is_path = m.ends_with(".gguf") || m.ends_with(".onnx") || m.contains('/');
            if is_path && !m.starts_with("openai:") && !Path::new(&m).is_absolute() {
                c.verifier.model = base.join(&m).to_string_lossy().into_owned();
            }
        }
    }
    Ok(chain)
}

fn parse_attacks(tables: &[toml::Table], path: &Path) -> Result<Vec<AttackSpec>> {
    let mut out: Vec<AttackSpec> = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let ctx = |e: toml::de::Error| {
            Error::file(path, format!("attacks[{i}]: {}", e.to_string().trim_end()))
        };
        let spec = if t.contains_key("config") {
            for k in t.keys() {
                if !ATTACK_REF_KEYS.contains(&k.as_str()) {
                    return Err(Error::file(
                        path,
                        format!(
                            "attacks[{i}]: unknown key `{k}` beside `config`; valid keys: {} (put attack settings in the config file, or drop `config` and write them inline)",
                            keys_list(ATTACK_REF_KEYS)
                        ),
                    ));
                }
            }
            let r: RawAttackRef = toml::Value::Table(t.clone()).try_into().map_err(ctx)?;
            let name = r.name.unwrap_or_else(|| {
                r.config
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| format!("attack{i}"))
            });
            let file = if r.config.is_absolute() {
                r.config
            } else {
                path.parent().unwrap_or(Path::new(".")).join(r.config)
            };
            AttackSpec {
                name,
                baseline: r.baseline,
                source: AttackSource::File(file),
            }
        } else {
            let mut inner = t.clone();
            // `name` stays in the table too: it is also the attack config's own name.
            let name = match inner.get("name") {
                Some(toml::Value::String(s)) => s.clone(),
                Some(_) => {
                    return Err(Error::file(
                        path,
                        format!("attacks[{i}]: `name` must be a string"),
                    ));
                }
                None => {
                    return Err(Error::file(
                        path,
                        format!(
                            "attacks[{i}]: an inline attack needs a `name` (or use `config = \"FILE.toml\"`)"
                        ),
                    ));
                }
            };
            let baseline = match inner.remove("baseline") {
                Some(toml::Value::Boolean(b)) => b,
                None => false,
                Some(_) => {
                    return Err(Error::file(
                        path,
                        format!("attacks[{i}]: `baseline` must be true or false"),
                    ));
                }
            };
            let text = toml::to_string(&inner)
                .map_err(|e| Error::file(path, format!("attacks[{i}]: {e}")))?;
            AttackSpec {
                name,
                baseline,
                source: AttackSource::Inline(text),
            }
        };
        if out.iter().any(|a| a.name == spec.name) {
            return Err(Error::file(
                path,
                format!(
                    "attacks[{i}]: two attacks are named `{}`; give each a distinct `name`",
                    spec.name
                ),
            ));
        }
        out.push(spec);
    }
    if out.iter().filter(|a| a.baseline).count() > 1 {
        return Err(Error::file(
            path,
            "more than one attack has `baseline = true`; mark only one",
        ));
    }
    Ok(out)
}

impl AttackSpec {
    /// Checks the attack configuration parses, before any work.
    pub fn check(&self) -> Result<()> {
        match &self.source {
            AttackSource::File(path) => {
                if !path.is_file() {
                    return Err(Error::file(
                        path,
                        format!(
                            "attack config of `{}` not found (paths are relative to the campaign spec)",
                            self.name
                        ),
                    ));
                }
                crate::attack::AttackConfig::from_file(path)?;
                Ok(())
            }
            AttackSource::Inline(text) => {
                crate::attack::AttackConfig::from_toml_str(text, &self.name)?;
                Ok(())
            }
        }
    }
}

const PROMPT_KEYS: &[&str] = &["name", "system", "user", "chat"];

fn parse_prompt(v: Option<&toml::Value>, path: &Path, base: &Path) -> Result<PromptTemplate> {
    match v {
        None => Ok(PromptTemplate::zero_shot_cot()),
        Some(toml::Value::String(s)) => {
            // A template file next to the spec, or a built-in name.
            let file = base.join(s);
            if file.is_file() {
                let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
                let t: toml::Table = toml::from_str(&text).map_err(|e| toml_err(&file, e))?;
                return parse_prompt(Some(&toml::Value::Table(t)), &file, base);
            }
            PromptTemplate::named(s).map_err(|e| Error::file(path, format!("prompt: {e}")))
        }
        Some(toml::Value::Table(t)) => {
            for k in t.keys() {
                if !PROMPT_KEYS.contains(&k.as_str()) {
                    return Err(Error::file(
                        path,
                        format!(
                            "[prompt]: unknown key `{k}`; valid keys: {}",
                            keys_list(PROMPT_KEYS)
                        ),
                    ));
                }
            }
            let mut t = t.clone();
            t.entry("name")
                .or_insert_with(|| toml::Value::String("custom".into()));
            let p: PromptTemplate =
                toml::Value::Table(t)
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        Error::file(path, format!("[prompt]: {}", e.to_string().trim_end()))
                    })?;
            if !p.user.contains("{question}") {
                return Err(Error::file(
                    path,
                    "[prompt]: `user` must contain `{question}`",
                ));
            }
            Ok(p)
        }
        Some(_) => Err(Error::file(
            path,
            "`prompt` must be a template name (e.g. \"cot\"), a template file, or a table",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CampaignSpec> {
        CampaignSpec::from_toml_str(text, Path::new("attacks/t.toml"), Path::new("attacks"))
    }

    const MIN: &str = r#"
models = ["smollm2-135m-instruct"]
datasets = ["asdiv"]
[[attacks]]
config = "mscr.toml"
"#;

    #[test]
    fn minimal_spec_gets_defaults() {
        let s = parse(MIN).unwrap();
        assert_eq!(s.name, "t");
        assert_eq!(s.transforms, vec![TransformChain::identity()]);
        assert_eq!(s.attacks[0].name, "mscr");
        assert_eq!(
            s.attacks[0].source,
            AttackSource::File("attacks/mscr.toml".into())
        );
        assert_eq!(s.out, PathBuf::from("attacks/runs/t"));
        assert_eq!(s.prompt, PromptTemplate::zero_shot_cot());
        assert_eq!(s.datasets, vec![DatasetSpec::plain("asdiv")]);
    }

    #[test]
    fn dataset_entries_take_a_format_or_a_field_mapping() {
        let s = parse(
            r#"
models = ["m"]
datasets = [
  "gsm8k",
  { path = "data/my.jsonl", mapping = { question = "q", answer = "a" }, skip_invalid = true },
  { path = "data/other.jsonl", format = "asdiv" },
]
[[attacks]]
config = "mscr.toml"
"#,
        )
        .unwrap();
        assert_eq!(s.datasets[0], DatasetSpec::plain("gsm8k"));
        let m = s.datasets[1].options.mapping.as_ref().unwrap();
        assert_eq!(
            (m.question.clone(), m.answer.as_str()),
            (vec!["q".to_string()], "a")
        );
        assert!(s.datasets[1].options.skip_invalid);
        assert_eq!(s.datasets[2].options.format.as_deref(), Some("asdiv"));
        let e = parse("models=[\"m\"]\ndatasets=[{path=\"x.jsonl\", mapin=\"f.toml\"}]\n[[attacks]]\nconfig=\"a.toml\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("datasets[0]: unknown key `mapin`") && e.contains("`mapping`"),
            "{e}"
        );
        let e = parse("models=[\"m\"]\ndatasets=[{path=\"x.jsonl\", mapping={question=\"q\"}}]\n[[attacks]]\nconfig=\"a.toml\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("datasets[0].mapping") && e.contains("answer"),
            "{e}"
        );
    }

    #[test]
    fn unknown_top_level_key_names_key_file_and_valid_keys() {
        let e = parse(&format!("limt = 3\n{MIN}")).unwrap_err().to_string();
        assert!(e.contains("attacks/t.toml"), "{e}");
        assert!(e.contains("`limt`"), "{e}");
        assert!(e.contains("`limit`") && e.contains("`datasets`"), "{e}");
    }

    #[test]
    fn display_labels_keep_only_settings_that_differ_from_defaults() {
        let s = parse(&format!(
            "{MIN}\n[[transforms]]\nkind = \"identity\"\n\
             [[transforms]]\nkind = \"prune-heads\"\nratio = 0.3\n\
             [[transforms]]\nkind = \"low-rank\"\nmethod = \"activation\"\nsize = 0.6\n\
             targets = [\"o\", \"down\"]\n\
             [[transforms]]\nname = \"mine\"\nsteps = [{{kind = \"prune-heads\", ratio = 0.1}}]\n"
        ))
        .unwrap();
        let shown: Vec<String> = s
            .transforms
            .iter()
            .map(|c| display_label(&c.name))
            .collect();
        assert!(
            s.transforms[1].name.contains("w_entropy"),
            "{}",
            s.transforms[1].name
        );
        assert_eq!(shown[1], "prune-heads ratio=0.3");
        // `method = "activation"` is low-rank's default, so it is not shown.
        assert_eq!(shown[2], "low-rank size=0.6 targets=o,down");
        assert_eq!(shown[3], "mine");
        assert_eq!(display_label("identity"), "identity");
        let chain = format!("{}+{}", s.transforms[1].name, s.transforms[2].name);
        assert_eq!(
            display_label(&chain),
            format!("{} + {}", shown[1], shown[2])
        );
    }

    #[test]
    fn unknown_transform_kind_lists_valid_kinds() {
        let e = parse(&format!("{MIN}\n[[transforms]]\nkind = \"prune\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("attacks/t.toml") && e.contains("prune") && e.contains("identity"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_in_transform_is_an_error() {
        let e = parse(&format!(
            "{MIN}\n[[transforms]]\nkind = \"identity\"\nratio = 0.3\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("ratio"), "{e}");
    }

    #[test]
    fn chains_and_inline_attacks() {
        let s = parse(
            r#"
models = ["m"]
datasets = ["d"]
limit = 5
[decoding]
max_new_tokens = 64
[[transforms]]
kind = "identity"
[[transforms]]
name = "twice"
steps = [{ kind = "identity" }, { kind = "identity" }]
[[attacks]]
config = "mscr.toml"
[[attacks]]
name = "random"
baseline = true
search = { kind = "random" }
"#,
        )
        .unwrap();
        assert_eq!(s.transforms.len(), 2);
        assert_eq!(s.transforms[1].name, "twice");
        assert_eq!(s.transforms[1].steps.len(), 2);
        assert_eq!(s.decoding.max_new_tokens, 64);
        assert_eq!(s.baseline_attack().unwrap().name, "random");
        match &s.attacks[1].source {
            AttackSource::Inline(t) => {
                assert!(
                    t.contains("search") && !t.contains("baseline") && t.contains("random"),
                    "{t}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn extra_key_beside_config_is_an_error() {
        let e =
            parse("models=[\"m\"]\ndatasets=[\"d\"]\n[[attacks]]\nconfig=\"a.toml\"\nbudget=3\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("`budget`") && e.contains("`config`"), "{e}");
    }

    #[test]
    fn unknown_decoding_key_is_an_error() {
        let e = parse(&format!("{MIN}\n[decoding]\nmax_tokenz = 3\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("max_tokenz") && e.contains("max_new_tokens"),
            "{e}"
        );
        // `max_tokens`, the command-line options' name, reads as max_new_tokens.
        let s = parse(&format!("{MIN}\n[decoding]\nmax_tokens = 3\n")).unwrap();
        assert_eq!(s.decoding.max_new_tokens, 3);
    }

    #[test]
    fn prompts_by_name_file_or_table() {
        let e = parse(&format!("prompt = \"nope\"\n{MIN}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("nope") && e.contains("cot") && e.contains("t.toml"),
            "{e}"
        );
        let t = parse(&format!(
            "prompt = {{ user = \"Q: {{question}}\", chat = false }}\n{MIN}"
        ))
        .unwrap();
        assert_eq!(t.prompt.user, "Q: {question}");
        assert!(!t.prompt.chat);
        let e = parse(&format!("prompt = {{ user = \"no placeholder\" }}\n{MIN}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("{question}"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("p.toml"),
            "name = \"mine\"\nuser = \"{question} Answer:\"\n",
        )
        .unwrap();
        let f = CampaignSpec::from_toml_str(
            &format!("prompt = \"p.toml\"\n{MIN}"),
            &dir.path().join("c.toml"),
            dir.path(),
        )
        .unwrap();
        assert_eq!(f.prompt.name, "mine");
    }

    #[test]
    fn prompt_and_decoding_transforms_chain_with_weight_transforms() {
        let s = parse(&format!(
            r#"{MIN}
[[transforms]]
kind = "identity"
[[transforms]]
kind = "self-doubt"
[[transforms]]
kind = "self-consistency"
n = 7
[[transforms]]
name = "pruned-concise-bon"
steps = [
  {{ kind = "prune-heads", ratio = 0.25 }},
  {{ kind = "concise" }},
  {{ kind = "best-of-n", n = 3, verifier = {{ method = "judge", template = "prompts/judge.toml" }} }},
]
[[transforms]]
kind = "pass@k"
n = 6
k = 3
[[transforms]]
kind = "prompt-template"
file = "prompts/mine.toml"
"#
        ))
        .unwrap();
        let names: Vec<&str> = s.transforms.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "identity",
                "self-doubt",
                "self-consistency{\"n\":7}",
                "pruned-concise-bon",
                "pass@k{\"k\":3,\"n\":6}",
                "prompt-template{\"file\":\"prompts/mine.toml\"}",
            ]
        );
        let sd = &s.transforms[1];
        assert!(
            sd.weights_unchanged() && sd.prompt_step().is_some() && sd.decoding_step().is_none()
        );
        let chain = &s.transforms[3];
        assert!(!chain.weights_unchanged());
        assert_eq!(chain.weight_steps().len(), 1);
        assert_eq!(chain.prompt_step().unwrap().kind(), "concise");
        // Files resolve against the spec's folder.
        match chain.decoding_step().unwrap() {
            TransformStep::BestOfN(c) => assert_eq!(
                c.verifier.template.as_deref(),
                Some(Path::new("attacks/prompts/judge.toml"))
            ),
            other => panic!("{other:?}"),
        }
        let file = s.transforms[5]
            .prompt_step()
            .unwrap()
            .prompt()
            .unwrap()
            .file();
        assert_eq!(file, Some(Path::new("attacks/prompts/mine.toml")));
        // The cache label separates inference transforms; weight-only chains keep their name.
        assert_eq!(s.transforms[0].cache_label(), "identity");
        assert_ne!(sd.cache_label(), sd.name);
        assert_ne!(s.transforms[2].cache_label(), s.transforms[4].cache_label());
    }

    #[test]
    fn chain_order_and_settings_are_checked() {
        let chain = |steps: &str| {
            parse(&format!(
                "{MIN}\n[[transforms]]\nname = \"c\"\nsteps = [{steps}]\n"
            ))
            .unwrap_err()
            .to_string()
        };
        let e = chain(r#"{ kind = "self-consistency" }, { kind = "self-doubt" }"#);
        assert!(
            e.contains("t.toml") && e.contains("`self-doubt`") && e.contains("order"),
            "{e}"
        );
        let e = chain(r#"{ kind = "cot" }, { kind = "concise" }"#);
        assert!(e.contains("two prompt transforms"), "{e}");
        let e = chain(r#"{ kind = "concise" }, { kind = "low-rank", rank = 8 }"#);
        assert!(e.contains("weight transform `low-rank`"), "{e}");
        let e = chain(r#"{ kind = "pass@k", n = 2, k = 3 }"#);
        assert!(e.contains("t.toml") && e.contains("k = 3"), "{e}");
        let e = chain(r#"{ kind = "sample", temperature = 0.0 }"#);
        assert!(e.contains("temperature"), "{e}");
        // Unknown keys name the key and the file, nested tables too.
        let e = parse(&format!(
            "{MIN}\n[[transforms]]\nkind = \"self-consistency\"\nsamples = 5\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("t.toml") && e.contains("samples") && e.contains("`n`"),
            "{e}"
        );
        let e = parse(&format!(
            "{MIN}\n[[transforms]]\nkind = \"best-of-n\"\nverifier = {{ modle = \"self\" }}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("t.toml") && e.contains("modle"), "{e}");
        let e = parse(&format!(
            "{MIN}\n[[transforms]]\nkind = \"self-doubt\"\nfle = \"x\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("fle") && e.contains("self-doubt"), "{e}");
        let e = parse(&format!("{MIN}\n[[transforms]]\nkind = \"majority\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("majority") && e.contains("self-consistency") && e.contains("pass@k"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_attack_names_rejected() {
        let e = parse(&format!(
            "{MIN}\n[[attacks]]\nconfig = \"other/mscr.toml\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("two attacks are named `mscr`"), "{e}");
    }
}

#[cfg(test)]
mod shipped {
    use super::*;

    /// Every spec shipped in attacks/ parses (its attack configs are the attack module's).
    #[test]
    fn shipped_specs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("attacks");
        for name in [
            "quickstart",
            "mscr-gsm8k",
            "mscr-math500",
            "ablation-sources",
            "ci-gate",
            "compression",
            "prompting",
        ] {
            let s = CampaignSpec::from_file(&dir.join(format!("{name}.toml")))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.name, name);
            assert!(!s.models.is_empty(), "{name}");
            for m in &s.models {
                assert!(
                    crate::model::spec::find_alias(m).is_some(),
                    "{name}: model {m} is no embedded alias"
                );
            }
        }
        let a = CampaignSpec::from_file(&dir.join("ablation-sources.toml")).unwrap();
        let names: Vec<&str> = a.attacks.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "all-sources",
                "random",
                "embedding-only",
                "wordnet-only",
                "mlm-only"
            ]
        );
        for single in &a.attacks[2..] {
            let AttackSource::Inline(t) = &single.source else {
                panic!()
            };
            let cfg: toml::Table = toml::from_str(t).unwrap();
            assert_eq!(
                cfg["sources"].as_array().unwrap().len(),
                1,
                "{}",
                single.name
            );
        }
        let p = CampaignSpec::from_file(&dir.join("prompting.toml")).unwrap();
        let chains: Vec<&str> = p.transforms.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(chains, ["identity", "self-doubt", "self-consistency"]);
        match p.transforms[2].decoding_step() {
            Some(TransformStep::SelfConsistency(c)) => assert_eq!(c.n, 5),
            other => panic!("{other:?}"),
        }
        for a in &p.attacks {
            a.check().unwrap();
        }
        let q = CampaignSpec::from_file(&dir.join("quickstart.toml")).unwrap();
        assert_eq!(q.limit, Some(32));
        assert_eq!(q.models, ["qwen2.5-coder-0.5b-instruct"]);
        assert_eq!(q.baseline_attack().unwrap().name, "quickstart-random");
        let c = CampaignSpec::from_file(&dir.join("compression.toml")).unwrap();
        let shown: Vec<String> = c
            .transforms
            .iter()
            .map(|t| display_label(&t.name))
            .collect();
        assert_eq!(
            shown,
            [
                "identity",
                "prune-heads ratio=0.1",
                "prune-heads ratio=0.3",
                "low-rank size=0.9 targets=down",
                "low-rank size=0.6 targets=o,down"
            ]
        );
    }
}
