//! `lora:path=DIR`: merges a PEFT LoRA adapter folder (`adapter_config.json`,
//! `adapter_model.safetensors`) into the base weights before the graph build,
//! the way PEFT (0.22) applies it:
//!
//! - which modules: PEFT's `check_target_module_exists` on the module names of
//!   the Hugging Face model (`model.layers.N.self_attn.q_proj`, ...):
//!   `exclude_modules` first, then `target_modules` as a full-match regex (a
//!   string) or as names matched exactly or as a `.`-suffix (a list; then
//!   `layers_to_transform` / `layers_pattern` restrict the layer); `all-linear`
//!   is the seven projections; `null` is PEFT's Llama/Qwen default (q, v).
//! - rank and alpha per module: the first `rank_pattern` / `alpha_pattern` key
//!   `k` (in file order) with `re.match(r"(.*\.)?(k)$", name)`, else `r` /
//!   `lora_alpha`; scale `alpha / r`, or `alpha / √r` with `use_rslora`.
//! - merge `W' = W + s·B·A`; DoRA (`use_dora`) `W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖`
//!   with the norm of each output row (PEFT's `torch.linalg.norm(weight, dim=1)`
//!   of the `[out, in]` weight), the bias untouched.
//! - `fan_in_fan_out`: every projection of these models is a `torch.nn.Linear`,
//!   for which PEFT resets the flag to false (with a warning); so does this.
//!
//! The in-memory model holds Hugging Face layouts whichever file it came from
//! (GGUF Q/K rows are un-permuted at import), so one adapter fits both.
//! Refused with an error naming the file and key: keys other than
//! `lora_A`/`lora_B`/`lora_magnitude_vector` on the seven projections (LoRA on
//! embeddings or `lm_head`, `modules_to_save`, trained biases), config options
//! that change the forward pass beyond LoRA/DoRA, shapes that do not fit the
//! base model, and TopLoRA adapters (`lora_lambda` keys), which need `toplora:`.

use super::{Calibration, LayerRecord, ProjectionRecord, Transform, TransformRecord};
use crate::error::{Error, Result};
use crate::model::{Linear, Matrix, Model};
use crate::transform::low_rank::Projection;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// `lora:path=DIR`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    /// The adapter folder PEFT's `save_pretrained` wrote.
    pub path: PathBuf,
}

impl LoraConfig {
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::Config(
                "lora: path is empty; name the adapter folder PEFT wrote (lora:path=DIR)".into(),
            ));
        }
        Ok(())
    }
}

/// The HF module name of a projection of layer `layer`.
fn module_name(layer: usize, p: Projection) -> String {
    let (block, name) = hf_name(p);
    format!("model.layers.{layer}.{block}.{name}")
}

fn hf_name(p: Projection) -> (&'static str, &'static str) {
    match p {
        Projection::Q => ("self_attn", "q_proj"),
        Projection::K => ("self_attn", "k_proj"),
        Projection::V => ("self_attn", "v_proj"),
        Projection::O => ("self_attn", "o_proj"),
        Projection::Gate => ("mlp", "gate_proj"),
        Projection::Up => ("mlp", "up_proj"),
        Projection::Down => ("mlp", "down_proj"),
    }
}

/// A JSON object read in file order (PEFT's pattern dicts are searched in
/// insertion order; serde_json's map would sort them).
#[derive(Clone, Debug, Default)]
struct Ordered(Vec<(String, Json)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object or null")
            }
            fn visit_unit<E>(self) -> std::result::Result<Ordered, E> {
                Ok(Ordered::default())
            }
            fn visit_none<E>(self) -> std::result::Result<Ordered, E> {
                Ok(Ordered::default())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Ordered, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<String, Json>()? {
                    v.push((k, val));
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or a list of strings (`target_modules`, `exclude_modules`, `layers_pattern`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Names {
    One(String),
    Many(Vec<String>),
}

/// An integer or a list of integers (`layers_to_transform`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Layers {
    One(i64),
    Many(Vec<i64>),
}

/// The fields of `adapter_config.json` that decide the merge (others are ignored
/// or refused in [`refuse_options`]).
#[derive(Debug, Deserialize)]
pub(super) struct AdapterConfig {
    #[serde(default = "eight")]
    r: usize,
    #[serde(default = "eight_f")]
    lora_alpha: f64,
    #[serde(default)]
    pub(super) use_rslora: bool,
    #[serde(default)]
    pub(super) use_dora: bool,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    target_modules: Option<Names>,
    #[serde(default)]
    exclude_modules: Option<Names>,
    #[serde(default)]
    modules_to_save: Option<Vec<String>>,
    #[serde(default)]
    layers_to_transform: Option<Layers>,
    #[serde(default)]
    layers_pattern: Option<Names>,
    #[serde(default)]
    rank_pattern: Ordered,
    #[serde(default)]
    alpha_pattern: Ordered,
    #[serde(default)]
    pub(super) base_model_name_or_path: Option<String>,
}

fn eight() -> usize {
    8
}
fn eight_f() -> f64 {
    8.0
}

/// Options that change PEFT's forward pass beyond a mergeable LoRA/DoRA
/// update: refused when set, with what they do.
const REFUSED_OPTIONS: &[(&str, &str)] = &[
    (
        "alora_invocation_tokens",
        "activated LoRA acts only after the invocation tokens",
    ),
    (
        "use_qalora",
        "QA-LoRA pools the input before lora_A (quantisation-aware)",
    ),
    ("lora_bias", "lora_B carries a bias"),
    (
        "layer_replication",
        "layers are duplicated before the adapter applies",
    ),
    (
        "target_parameters",
        "the adapter targets raw parameters (MoE experts)",
    ),
    (
        "trainable_token_indices",
        "embedding rows are trained separately",
    ),
    ("use_bdlora", "block-diagonal LoRA"),
    ("arrow_config", "Arrow routes among several adapters"),
    ("velora_config", "VeLoRA changes the adapter's input"),
    ("monteclora_config", "MonteCLoRA samples the adapter"),
    ("kasa_config", "KaSA changes the adapter's form"),
];

/// True when a JSON value sets an option (not null, false, 0, "" or empty).
fn is_set(v: &Json) -> bool {
    match v {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64() != Some(0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Object(o) => !o.is_empty(),
    }
}

/// A compiled Python regex that must match the whole of a name.
fn full_regex(path: &Path, field: &str, pattern: &str) -> Result<Regex> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        Error::file(
            path,
            format!(
                "{field} {pattern:?} is not a regex this reader accepts ({e}); \
                 look-around and back-references are not supported — list the module names instead"
            ),
        )
    })
}

/// PEFT's module matching (`check_target_module_exists`) for this adapter.
struct Targets {
    exclude: Option<Matcher>,
    modules_to_save: Vec<Regex>,
    target: Matcher,
    /// `layers_to_transform` (applies to list targets only, as in PEFT).
    layers: Option<Vec<i64>>,
    /// Regexes that take the layer index from a module name.
    layer_index: Vec<Regex>,
}

enum Matcher {
    Regex(Regex),
    Names(Vec<String>),
}

impl Matcher {
    fn new(path: &Path, field: &str, n: &Names) -> Result<Self> {
        Ok(match n {
            Names::One(s) if field == "target_modules" && s == "all-linear" => Matcher::Names(
                Projection::ALL
                    .iter()
                    .map(|p| hf_name(*p).1.into())
                    .collect(),
            ),
            Names::One(s) => Matcher::Regex(full_regex(path, field, s)?),
            Names::Many(v) => Matcher::Names(v.clone()),
        })
    }

    fn matches(&self, key: &str) -> bool {
        match self {
            Matcher::Regex(r) => r.is_match(key),
            Matcher::Names(v) => v
                .iter()
                .any(|t| key == t || key.ends_with(&format!(".{t}"))),
        }
    }
}

impl Targets {
    fn new(path: &Path, c: &AdapterConfig) -> Result<Self> {
        let exclude = c
            .exclude_modules
            .as_ref()
            .map(|n| Matcher::new(path, "exclude_modules", n))
            .transpose()?;
        let modules_to_save = c
            .modules_to_save
            .iter()
            .flatten()
            .map(|m| {
                Regex::new(&format!(r"^(?:^|.*\.)(?:{m})(?:$|\..*)"))
                    .map_err(|e| Error::file(path, format!("modules_to_save {m:?}: {e}")))
            })
            .collect::<Result<_>>()?;
        // PEFT's default targets for llama, qwen2 and qwen3 models.
        let default = Names::Many(vec!["q_proj".into(), "v_proj".into()]);
        let target = Matcher::new(
            path,
            "target_modules",
            c.target_modules.as_ref().unwrap_or(&default),
        )?;
        let layers = match &c.layers_to_transform {
            None => None,
            Some(Layers::One(i)) => Some(vec![*i]),
            Some(Layers::Many(v)) if v.is_empty() => None,
            Some(Layers::Many(v)) => Some(v.clone()),
        };
        let patterns: Vec<String> = match &c.layers_pattern {
            None => Vec::new(),
            Some(Names::One(s)) if s.is_empty() => Vec::new(),
            Some(Names::One(s)) => vec![s.clone()],
            Some(Names::Many(v)) => v.clone(),
        };
        let layer_index = if patterns.is_empty() {
            vec![Regex::new(r"^.*?\.[^.]*\.(\d+)\.").expect("fixed regex")]
        } else {
            patterns
                .iter()
                .map(|p| {
                    Regex::new(&format!(r"^(?:|.*?\.)(?:{p})\.(\d+)\."))
                        .map_err(|e| Error::file(path, format!("layers_pattern {p:?}: {e}")))
                })
                .collect::<Result<_>>()?
        };
        Ok(Targets {
            exclude,
            modules_to_save,
            target,
            layers,
            layer_index,
        })
    }

    fn targets(&self, key: &str) -> bool {
        if self.exclude.as_ref().is_some_and(|e| e.matches(key)) {
            return false;
        }
        if self.modules_to_save.iter().any(|r| r.is_match(key)) {
            return false;
        }
        match &self.target {
            Matcher::Regex(r) => r.is_match(key),
            Matcher::Names(v) if v.iter().any(|t| t == key) => true,
            m => {
                if !m.matches(key) {
                    return false;
                }
                let Some(layers) = &self.layers else {
                    return true;
                };
                let index = self
                    .layer_index
                    .iter()
                    .find_map(|r| r.captures(key))
                    .and_then(|c| c[1].parse::<i64>().ok());
                index.is_some_and(|i| layers.contains(&i))
            }
        }
    }
}

/// PEFT's `get_pattern_key`: the first pattern key `k` with
/// `re.match(r"(.*\.)?(k)$", name)`.
fn pattern_value(path: &Path, field: &str, pattern: &Ordered, name: &str) -> Result<Option<f64>> {
    for (k, v) in &pattern.0 {
        let r = Regex::new(&format!(r"^(?:.*\.)?(?:{k})$"))
            .map_err(|e| Error::file(path, format!("{field} key {k:?}: {e}")))?;
        if r.is_match(name) {
            return v
                .as_f64()
                .map(Some)
                .ok_or_else(|| Error::file(path, format!("{field}[{k:?}] = {v} is not a number")));
        }
    }
    Ok(None)
}

/// Reads `adapter_config.json` (`path` names it in errors), refusing what
/// PEFT refuses and options beyond a mergeable LoRA/DoRA.
fn parse_config(path: &Path, bytes: &[u8]) -> Result<AdapterConfig> {
    let raw: Json = serde_json::from_slice(bytes)
        .map_err(|e| Error::file(path, format!("invalid JSON: {e}")))?;
    match raw.get("peft_type").and_then(Json::as_str) {
        None | Some("LORA") => {}
        Some(other) => {
            return Err(Error::file(
                path,
                format!("peft_type is {other:?}; `lora:` reads LORA adapters only"),
            ));
        }
    }
    for (field, what) in REFUSED_OPTIONS {
        if raw.get(*field).is_some_and(is_set) {
            return Err(Error::file(
                path,
                format!(
                    "{field} is set ({what}); `lora:` merges plain LoRA, rsLoRA and DoRA only — \
                     re-train without it or merge the adapter in PEFT (merge_and_unload) and load the merged model"
                ),
            ));
        }
    }
    // From the text, not from `raw`: a Value's map is sorted, and the
    // pattern dicts must keep their file order.
    let config: AdapterConfig = serde_json::from_slice(bytes)
        .map_err(|e| Error::file(path, format!("not a PEFT LoRA config: {e}")))?;
    if config.r == 0 {
        return Err(Error::file(path, "r is 0; the adapter has no rank"));
    }
    // Combinations PEFT's config refuses.
    let string_target = matches!(config.target_modules, Some(Names::One(_)));
    let refused = if string_target && config.layers_to_transform.is_some() {
        Some("layers_to_transform cannot be used when target_modules is a string (a regex)")
    } else if string_target && config.layers_pattern.is_some() {
        Some("layers_pattern cannot be used when target_modules is a string (a regex)")
    } else if config.layers_pattern.as_ref().is_some_and(|p| match p {
        Names::One(s) => !s.is_empty(),
        Names::Many(v) => !v.is_empty(),
    }) && config.layers_to_transform.is_none()
    {
        Some("layers_pattern is set without layers_to_transform")
    } else {
        None
    };
    if let Some(why) = refused {
        return Err(Error::file(
            path,
            format!("{why}; PEFT refuses this config too — fix adapter_config.json"),
        ));
    }

    Ok(config)
}

/// What an adapter config does to one projection.
#[derive(Clone, Debug, PartialEq)]
pub struct ModulePlan {
    /// The Hugging Face module name (`model.layers.3.mlp.up_proj`).
    pub name: String,
    /// Whether PEFT would adapt it.
    pub targeted: bool,
    /// Its rank and alpha (`r` / `rank_pattern`, `lora_alpha` / `alpha_pattern`).
    pub r: usize,
    pub alpha: f64,
}

/// PEFT's decisions for every projection of an `n_layers` decoder under the
/// `adapter_config.json` text `config` (layer-major, q k v o gate up down).
pub fn module_plan(config: &str, n_layers: usize) -> Result<Vec<ModulePlan>> {
    let path = Path::new(CONFIG_FILE);
    let c = parse_config(path, config.as_bytes())?;
    plan(path, &c, n_layers)
}

pub(super) fn plan(path: &Path, c: &AdapterConfig, n_layers: usize) -> Result<Vec<ModulePlan>> {
    let targets = Targets::new(path, c)?;
    let mut out = Vec::with_capacity(n_layers * Projection::ALL.len());
    for layer in 0..n_layers {
        for p in Projection::ALL {
            let name = module_name(layer, p);
            let r = pattern_value(path, "rank_pattern", &c.rank_pattern, &name)?
                .map_or(c.r, |v| v as usize);
            let alpha = pattern_value(path, "alpha_pattern", &c.alpha_pattern, &name)?
                .unwrap_or(c.lora_alpha);
            out.push(ModulePlan {
                targeted: targets.targets(&name),
                name,
                r,
                alpha,
            });
        }
    }
    Ok(out)
}

/// One tensor of an adapter file: shape, values, key.
pub(super) type Tensor = (Vec<usize>, Vec<f32>, String);

/// The tensors of one adapted module.
#[derive(Default)]
pub(super) struct ModuleTensors {
    pub a: Option<Tensor>,
    pub b: Option<Tensor>,
    pub m: Option<Tensor>,
    /// TopLoRA's Θ (`lora_lambda.weight`) and its RMS-norm gain.
    pub lambda: Option<Tensor>,
    pub gain: Option<Tensor>,
}

/// A parsed adapter: its config and tensors grouped by (layer, projection).
pub(super) struct Adapter {
    pub config_path: PathBuf,
    pub weights_path: PathBuf,
    pub config: AdapterConfig,
    pub modules: BTreeMap<(usize, usize), ModuleTensors>,
    pub digest: String,
}

pub(super) const PREFIX: &str = "base_model.model.";

/// Reads a PEFT adapter folder; `toplora` accepts TopLoRA's `lora_lambda`
/// keys (otherwise they are refused: merging would drop them silently).
pub(super) fn read_adapter(dir: &Path, toplora: bool) -> Result<Adapter> {
    let config_path = dir.join(CONFIG_FILE);
    let weights_path = dir.join(WEIGHTS_FILE);
    if !dir.is_dir() {
        return Err(Error::file(
            dir,
            "no such adapter folder; give the folder PEFT's save_pretrained wrote (lora:path=DIR)",
        ));
    }
    if !config_path.is_file() {
        return Err(Error::file(
            &config_path,
            "missing: a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors",
        ));
    }
    if !weights_path.is_file() {
        let hint = if dir.join("adapter_model.bin").is_file() {
            "only adapter_model.bin (a pickle) is there; re-save the adapter with \
             save_pretrained(..., safe_serialization=True)"
        } else {
            "missing: a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors"
        };
        return Err(Error::file(&weights_path, hint));
    }
    let config_bytes = std::fs::read(&config_path).map_err(|e| Error::io(&config_path, e))?;
    let config = parse_config(&config_path, &config_bytes)?;

    let bytes = std::fs::read(&weights_path).map_err(|e| Error::io(&weights_path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        Error::file(
            &weights_path,
            format!("not a valid safetensors file ({e}); it is truncated or corrupt"),
        )
    })?;
    let mut names: Vec<&str> = st.names();
    names.sort();
    if let Some(k) = names
        .iter()
        .find(|k| k.contains("lora_lambda"))
        .filter(|_| !toplora)
    {
        return Err(Error::file(
            &weights_path,
            format!(
                "{k:?} is a TopLoRA weight: this is a TopLoRA adapter, which cannot be merged and \
                 would lose its token-wise gates under `lora:`; load it with `toplora:path=DIR`"
            ),
        ));
    }
    let key_re = Regex::new(
        r"^model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z]+_proj)\.(lora_A\.weight|lora_B\.weight|lora_magnitude_vector|lora_magnitude_vector\.weight|lora_lambda\.weight|lora_lambda\.rms_norm\.weight)$",
    )
    .expect("fixed regex");
    let mut modules: BTreeMap<(usize, usize), ModuleTensors> = BTreeMap::new();
    for &key in &names {
        let unsupported = |why: &str| {
            Error::file(
                &weights_path,
                format!(
                    "unsupported key {key:?}: {why}; `lora:` reads lora_A.weight, lora_B.weight and \
                     lora_magnitude_vector of model.layers.N.self_attn.{{q,k,v,o}}_proj and \
                     model.layers.N.mlp.{{gate,up,down}}_proj"
                ),
            )
        };
        let Some(rest) = key.strip_prefix(PREFIX) else {
            return Err(unsupported(&format!(
                "PEFT names adapter weights {PREFIX}<module>.lora_A.weight"
            )));
        };
        let Some(c) = key_re.captures(rest) else {
            let why = if rest.contains("lora_embedding") {
                "LoRA on an embedding is not supported"
            } else if rest.contains("lm_head") || rest.contains("embed_tokens") {
                "the embedding and lm_head cannot be adapted here"
            } else if rest.contains("modules_to_save") || !rest.contains("lora_") {
                "a fully trained module (modules_to_save or a bias) is not supported"
            } else {
                "not a LoRA or DoRA weight of a decoder projection"
            };
            return Err(unsupported(why));
        };
        let layer: usize = c[1]
            .parse()
            .map_err(|_| unsupported("layer index out of range"))?;
        let Some(pi) = Projection::ALL
            .iter()
            .position(|p| hf_name(*p) == (&c[2], &c[3]))
        else {
            return Err(unsupported("no such projection in a llama/qwen decoder"));
        };
        let t = st
            .tensor(key)
            .map_err(|e| Error::file(&weights_path, format!("tensor {key:?}: {e}")))?;
        let entry = (
            t.shape().to_vec(),
            crate::model::hf::tensor_f32(&weights_path, key, &t)?,
            key.to_string(),
        );
        let m = modules.entry((layer, pi)).or_default();
        match &c[4] {
            "lora_A.weight" => m.a = Some(entry),
            "lora_B.weight" => m.b = Some(entry),
            "lora_lambda.weight" => m.lambda = Some(entry),
            "lora_lambda.rms_norm.weight" => m.gain = Some(entry),
            _ => m.m = Some(entry),
        }
    }
    if modules.is_empty() {
        return Err(Error::file(
            &weights_path,
            "holds no LoRA weights; is this the adapter folder PEFT wrote?",
        ));
    }
    let digest = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(&config_bytes);
        h.update(b"\0");
        h.update(&bytes);
        hex::encode(h.finalize())[..16].to_string()
    };
    Ok(Adapter {
        config_path,
        weights_path,
        config,
        modules,
        digest,
    })
}

/// `B·A` scaled, added to `w` (`[out, in]`), in f64 then rounded once.
fn merged(w: &Matrix, a: &[f32], b: &[f32], r: usize, s: f64) -> Vec<f64> {
    let (rows, cols) = (w.rows, w.cols);
    let mut out: Vec<f64> = w.data.iter().map(|&v| v as f64).collect();
    for i in 0..rows {
        let row = &mut out[i * cols..(i + 1) * cols];
        for k in 0..r {
            let bik = b[i * r + k] as f64 * s;
            if bik == 0.0 {
                continue;
            }
            for (o, &akj) in row.iter_mut().zip(&a[k * cols..(k + 1) * cols]) {
                *o += bik * akj as f64;
            }
        }
    }
    out
}

impl Transform for LoraConfig {
    fn name(&self) -> String {
        format!("lora{}", serde_json::to_string(self).unwrap_or_default())
    }

    fn apply(&self, model: &Model, _calib: &Calibration) -> Result<(Model, TransformRecord)> {
        self.validate()?;
        let ad = read_adapter(&self.path, false)?;
        let c = &ad.config;
        let cp = &ad.config_path;
        let wp = &ad.weights_path;
        let n_layers = model.layers.len();
        let plan = plan(cp, c, n_layers)?;
        let n_proj = Projection::ALL.len();
        if let Some(&(l, _)) = ad.modules.keys().find(|(l, _)| *l >= n_layers) {
            return Err(Error::file(
                wp,
                format!(
                    "has weights for layer {l}, but the base model has {n_layers} layers: the adapter \
                     was trained on another model{}",
                    c.base_model_name_or_path
                        .as_deref()
                        .map(|b| format!(" ({b})"))
                        .unwrap_or_default()
                ),
            ));
        }
        // Weights for a module the config does not target: PEFT would drop them
        // with a warning; here they mean the config and weights do not belong together.
        for (&(li, pi), t) in &ad.modules {
            let ModulePlan { name, targeted, .. } = &plan[li * n_proj + pi];
            if !targeted {
                let key = [&t.a, &t.b, &t.m]
                    .into_iter()
                    .flatten()
                    .map(|x| x.2.clone())
                    .next()
                    .unwrap_or_default();
                return Err(Error::file(
                    wp,
                    format!(
                        "{key:?}: {name} is not targeted by {} (target_modules, exclude_modules, \
                         layers_to_transform); the config and the weights do not belong together",
                        cp.display()
                    ),
                ));
            }
        }
        let settings = serde_json::to_value(self).map_err(|e| Error::Other(e.to_string()))?;
        let mut rec = TransformRecord::start("lora", settings, model);
        let mut out = model.clone();
        let mut layer_recs: Vec<LayerRecord> = model
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerRecord::unchanged(i, l))
            .collect();
        let mut merged_count = 0;
        for (li, layer) in model.layers.iter().enumerate() {
            for (pi, p) in Projection::ALL.iter().enumerate() {
                let ModulePlan {
                    name,
                    targeted,
                    r: r_cfg,
                    alpha,
                } = plan[li * n_proj + pi].clone();
                let tensors = ad.modules.get(&(li, pi));
                let t = match (targeted, tensors) {
                    (false, None) => continue,
                    // Refused above.
                    (false, Some(_)) => continue,
                    (true, None) => {
                        return Err(Error::file(
                            wp,
                            format!(
                                "{} targets {name} but there is no {PREFIX}{name}.lora_A.weight: \
                                 the adapter does not fit this model (or the file is incomplete)",
                                cp.display()
                            ),
                        ));
                    }
                    (true, Some(t)) => t,
                };
                let lin = p.get(layer);
                let (n_in, n_out) = (lin.in_features(), lin.out_features());
                let missing = |what: &str| {
                    Error::file(
                        wp,
                        format!("{PREFIX}{name}.{what} is missing; the adapter file is incomplete"),
                    )
                };
                let (a_shape, a, a_key) = t.a.as_ref().ok_or_else(|| missing("lora_A.weight"))?;
                let (b_shape, b, b_key) = t.b.as_ref().ok_or_else(|| missing("lora_B.weight"))?;
                let mismatch = |key: &str, shape: &[usize], want: String| {
                    Error::file(
                        wp,
                        format!(
                            "{key:?} has shape {shape:?} but {want}: the base model does not match \
                             the adapter (hidden size {}, intermediate size {} here){}",
                            model.config.hidden,
                            model.config.intermediate,
                            c.base_model_name_or_path
                                .as_deref()
                                .map(|b| format!("; the adapter was trained on {b}"))
                                .unwrap_or_default()
                        ),
                    )
                };
                if a_shape.len() != 2 || a_shape[0] != r_cfg {
                    return Err(Error::file(
                        wp,
                        format!(
                            "{a_key:?} has shape {a_shape:?}, but {} gives {name} rank {r_cfg} \
                             (r / rank_pattern): expected [{r_cfg}, {n_in}]",
                            cp.display()
                        ),
                    ));
                }
                if a_shape[1] != n_in {
                    return Err(mismatch(
                        a_key,
                        a_shape,
                        format!("{name} takes {n_in} inputs here: expected [{r_cfg}, {n_in}]"),
                    ));
                }
                if b_shape != &[n_out, r_cfg] {
                    return Err(mismatch(
                        b_key,
                        b_shape,
                        format!("{name} has {n_out} outputs here: expected [{n_out}, {r_cfg}]"),
                    ));
                }
                let r = r_cfg;
                let s = if c.use_rslora {
                    alpha / (r as f64).sqrt()
                } else {
                    alpha / r as f64
                };
                let w0 = lin.to_dense();
                let mut w = merged(&w0, a, b, r, s);
                match (&t.m, c.use_dora) {
                    (Some((m_shape, m, m_key)), true) => {
                        if m_shape != &[n_out] {
                            return Err(mismatch(
                                m_key,
                                m_shape,
                                format!("{name} has {n_out} outputs here: expected [{n_out}]"),
                            ));
                        }
                        // PEFT: norm of each output row of W + s·B·A (dim=1 of [out, in]).
                        for (row, &mag) in w.chunks_exact_mut(n_in).zip(m) {
                            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
                            let f = mag as f64 / norm;
                            row.iter_mut().for_each(|v| *v *= f);
                        }
                    }
                    (None, true) => return Err(missing("lora_magnitude_vector")),
                    (Some((_, _, m_key)), false) => {
                        return Err(Error::file(
                            wp,
                            format!(
                                "{m_key:?} is a DoRA magnitude but {} has use_dora false; \
                                 the config and the weights do not belong together",
                                cp.display()
                            ),
                        ));
                    }
                    (None, false) => {}
                }
                let new = Matrix::new(n_out, n_in, w.iter().map(|&v| v as f32).collect());
                let (mut diff, mut base) = (0f64, 0f64);
                for (x, y) in new.data.iter().zip(&w0.data) {
                    diff += ((x - y) as f64).powi(2);
                    base += (*y as f64).powi(2);
                }
                *p.get_mut(&mut out.layers[li]) = Linear::Dense {
                    w: new,
                    bias: lin.bias().cloned(),
                };
                layer_recs[li].projections.push(ProjectionRecord {
                    name: p.name().into(),
                    in_features: n_in,
                    out_features: n_out,
                    rank: Some(r),
                    kept_dense: None,
                    weight_error: (diff / base.max(f64::MIN_POSITIVE)).sqrt(),
                    activation_error: None,
                });
                merged_count += 1;
            }
        }
        rec.layers = layer_recs;
        rec.notes.push(format!(
            "merged {merged_count} projections from {} ({}{}{}; adapter sha256 {}); \
             weight_error is ‖W′ − W‖/‖W‖",
            self.path.display(),
            if c.use_dora { "DoRA" } else { "LoRA" },
            if c.use_rslora {
                ", rsLoRA scale α/√r"
            } else {
                ", scale α/r"
            },
            c.base_model_name_or_path
                .as_deref()
                .map(|b| format!(", trained on {b}"))
                .unwrap_or_default(),
            ad.digest
        ));
        if c.fan_in_fan_out {
            rec.notes.push(
                "fan_in_fan_out is true, but these projections are torch.nn.Linear, for which PEFT \
                 sets it to false: applied as false"
                    .into(),
            );
        }
        // The adapter's content, not its path, keys the graph cache.
        let key = format!("lora@adapter={}", ad.digest);
        rec.finish(&mut out, key);
        Ok((out, rec))
    }
}
