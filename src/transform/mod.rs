//! Model transforms. Weight transforms edit the in-memory [`Model`] before the
//! graph is built: attention-head pruning with closed-form distillation, and
//! low-rank factorisation (plain SVD, activation-aware, IMPACT-style
//! importance-weighted). Inference transforms leave the weights alone and act
//! when the model is asked: prompt transforms ([`prompt`]: `self-doubt`, `cot`,
//! `concise`, `prompt-template`) choose the prompt, decoding transforms
//! ([`decode`]: `sample`, `self-consistency`, `best-of-n`, `pass@k`) draw
//! several answers and decide among them. A chain may hold weight steps, then
//! at most one prompt step, then at most one decoding step ([`Stage`]).
//!
//! A transform is named by a serde-tagged [`TransformSpec`] (TOML
//! `[[transforms]] kind = "prune-heads" ratio = 0.3`, or the CLI form
//! `prune-heads:ratio=0.3,scope=per-layer`), takes calibration token sequences
//! ([`Calibration`]) where it needs activations, and returns the new model plus
//! a [`TransformRecord`]. Each applied transform appends a stable string to
//! `model.transforms`, so built graphs are cached per chain.

pub mod brep;
pub mod calib;
pub mod decode;
pub mod load;
pub mod lora;
pub mod loreft;
pub mod low_rank;
pub mod prompt;
pub mod prune_heads;
pub mod pth;
pub mod toplora;

pub use crate::model::persist::{RECORD_FILE, load_transformed};
pub use brep::BrepConfig;
pub use calib::Calibration;
pub use lora::LoraConfig;
pub use loreft::LoreftConfig;
pub use low_rank::{LowRankConfig, LowRankMethod, Projection};
pub use prune_heads::{Distill, GqaMode, PruneHeadsConfig, Scope};
pub use toplora::TopLoraConfig;

use crate::error::{Error, Result};
use crate::model::Model;

/// Writes a transformed model and the records that produced it (the folder
/// format is the importer's: [`crate::model::persist`]).
pub fn save_transformed(
    model: &Model,
    records: &[TransformRecord],
    extra_files: &[(String, Vec<u8>)],
    dir: &std::path::Path,
) -> Result<()> {
    crate::model::persist::save_transformed(model, records, extra_files, dir)
}

/// Reading back what [`save_transformed`] wrote.
pub mod persist {
    use super::TransformRecord;
    use crate::error::Result;

    /// The records stored beside a transformed model.
    pub fn load_records(dir: &std::path::Path) -> Result<Vec<TransformRecord>> {
        crate::model::persist::load_records(dir)
    }
}
use serde::{Deserialize, Serialize};

/// One model transform.
pub trait Transform {
    /// Stable name with settings (becomes part of the graph cache key).
    fn name(&self) -> String;
    fn apply(&self, model: &Model, calib: &Calibration) -> Result<(Model, TransformRecord)>;
}

/// A transform as configured in a campaign spec or on the command line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TransformSpec {
    /// Leaves the model as it is (the baseline row of a comparison).
    Identity {},
    PruneHeads(PruneHeadsConfig),
    LowRank(LowRankConfig),
    /// A PEFT LoRA/DoRA adapter merged into the weights (`lora:path=DIR`).
    Lora(LoraConfig),
    /// A TopLoRA adapter, computed by the graph (`toplora:path=DIR`).
    #[serde(rename = "toplora")]
    TopLora(TopLoraConfig),
    /// A BREP scale-and-bias adapter, computed by the graph (`brep:path=DIR`).
    Brep(BrepConfig),
    /// A pyreft LoReFT intervention, computed by the graph (`loreft:path=DIR`).
    Loreft(LoreftConfig),
    // Prompt transforms (src/transform/prompt/).
    SelfDoubt(prompt::SelfDoubtConfig),
    Cot(prompt::CotConfig),
    Concise(prompt::ConciseConfig),
    PromptTemplate(prompt::PromptTemplateConfig),
    // Decoding transforms (src/transform/decode/).
    Sample(decode::SampleConfig),
    SelfConsistency(decode::SelfConsistencyConfig),
    BestOfN(decode::BestOfNConfig),
    #[serde(rename = "pass@k", alias = "pass-at-k")]
    PassAtK(decode::PassAtKConfig),
}

/// Where a transform acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// On the in-memory weights, before the graph is built.
    Weights,
    /// On the prompt the question is asked with.
    Prompt,
    /// On how answers are drawn from the model and decided.
    Decoding,
}

impl Stage {
    pub fn name(&self) -> &'static str {
        match self {
            Stage::Weights => "weight",
            Stage::Prompt => "prompt",
            Stage::Decoding => "decoding",
        }
    }
}

/// Every `kind` a transform may name, weight transforms first.
pub const KINDS: &[&str] = &[
    "identity",
    "prune-heads",
    "low-rank",
    "lora",
    "toplora",
    "loreft",
    "brep",
    "self-doubt",
    "cot",
    "concise",
    "prompt-template",
    "sample",
    "self-consistency",
    "best-of-n",
    "pass@k",
];

impl TransformSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            TransformSpec::Identity {} => "identity",
            TransformSpec::PruneHeads(_) => "prune-heads",
            TransformSpec::LowRank(_) => "low-rank",
            TransformSpec::Lora(_) => "lora",
            TransformSpec::TopLora(_) => "toplora",
            TransformSpec::Brep(_) => "brep",
            TransformSpec::Loreft(_) => "loreft",
            TransformSpec::SelfDoubt(_) => "self-doubt",
            TransformSpec::Cot(_) => "cot",
            TransformSpec::Concise(_) => "concise",
            TransformSpec::PromptTemplate(_) => "prompt-template",
            TransformSpec::Sample(_) => "sample",
            TransformSpec::SelfConsistency(_) => "self-consistency",
            TransformSpec::BestOfN(_) => "best-of-n",
            TransformSpec::PassAtK(_) => "pass@k",
        }
    }

    pub fn stage(&self) -> Stage {
        match self {
            TransformSpec::Identity {}
            | TransformSpec::PruneHeads(_)
            | TransformSpec::LowRank(_)
            | TransformSpec::Lora(_)
            | TransformSpec::TopLora(_)
            | TransformSpec::Brep(_)
            | TransformSpec::Loreft(_) => Stage::Weights,
            TransformSpec::SelfDoubt(_)
            | TransformSpec::Cot(_)
            | TransformSpec::Concise(_)
            | TransformSpec::PromptTemplate(_) => Stage::Prompt,
            TransformSpec::Sample(_)
            | TransformSpec::SelfConsistency(_)
            | TransformSpec::BestOfN(_)
            | TransformSpec::PassAtK(_) => Stage::Decoding,
        }
    }

    /// Checks the settings of any kind of transform.
    pub fn validate(&self) -> Result<()> {
        match self {
            TransformSpec::Identity {} => Ok(()),
            TransformSpec::PruneHeads(c) => c.validate(),
            TransformSpec::LowRank(c) => c.validate(),
            TransformSpec::Lora(c) => c.validate(),
            TransformSpec::TopLora(c) => c.validate(),
            TransformSpec::Brep(c) => c.validate(),
            TransformSpec::Loreft(c) => c.validate(),
            TransformSpec::SelfDoubt(_)
            | TransformSpec::Cot(_)
            | TransformSpec::Concise(_)
            | TransformSpec::PromptTemplate(_) => Ok(()),
            TransformSpec::Sample(c) => c.validate(),
            TransformSpec::SelfConsistency(c) => c.validate(),
            TransformSpec::BestOfN(c) => c.validate(),
            TransformSpec::PassAtK(c) => c.validate(),
        }
    }

    /// The prompt transform this spec names (`None` for other stages).
    pub fn prompt(&self) -> Option<&dyn prompt::PromptTransform> {
        match self {
            TransformSpec::SelfDoubt(c) => Some(c),
            TransformSpec::Cot(c) => Some(c),
            TransformSpec::Concise(c) => Some(c),
            TransformSpec::PromptTemplate(c) => Some(c),
            _ => None,
        }
    }

    /// The prompt transform this spec names, to edit its settings.
    pub fn prompt_mut(&mut self) -> Option<&mut dyn prompt::PromptTransform> {
        match self {
            TransformSpec::SelfDoubt(c) => Some(c),
            TransformSpec::Cot(c) => Some(c),
            TransformSpec::Concise(c) => Some(c),
            TransformSpec::PromptTemplate(c) => Some(c),
            _ => None,
        }
    }

    /// Builds the decoding transform this spec names (`None` for other
    /// stages); a verifier model other than `self` is loaded here.
    pub fn build_decoding(
        &self,
        options: &crate::runtime::LoadOptions,
    ) -> Result<Option<std::sync::Arc<dyn decode::DecodingTransform>>> {
        self.validate()?;
        Ok(match self {
            TransformSpec::Sample(c) => Some(std::sync::Arc::new(c.clone())),
            TransformSpec::SelfConsistency(c) => Some(std::sync::Arc::new(c.clone())),
            TransformSpec::BestOfN(c) => Some(std::sync::Arc::new(c.build(options)?)),
            TransformSpec::PassAtK(c) => Some(std::sync::Arc::new(c.clone())),
            _ => None,
        })
    }

    /// The settings of an inference transform that differ from its defaults
    /// (all settings for weight transforms and for kinds without defaults),
    /// for short labels: `self-consistency{"n":9}`.
    pub fn changed_settings(&self) -> serde_json::Value {
        let mut v = self.settings();
        if self.stage() == Stage::Weights {
            return v;
        }
        let mut t = toml::Table::new();
        t.insert("kind".into(), toml::Value::String(self.kind().into()));
        let default: Option<TransformSpec> = toml::Value::Table(t).try_into().ok();
        if let (Some(d), Some(o)) = (default.map(|d| d.settings()), v.as_object_mut()) {
            o.retain(|k, val| d.get(k) != Some(val));
        }
        v
    }

    /// The settings that differ from the kind's defaults, for labels people
    /// read; a setting with no default (a required one) is always kept.
    pub fn non_default_settings(&self) -> serde_json::Map<String, serde_json::Value> {
        let all = self.settings();
        let Some(o) = all.as_object() else {
            return serde_json::Map::new();
        };
        o.iter()
            .filter(|(k, val)| {
                let mut without = o.clone();
                without.remove(*k);
                without.insert("kind".into(), self.kind().into());
                let default = serde_json::from_value::<TransformSpec>(without.into())
                    .ok()
                    .map(|d| d.settings());
                default.as_ref().and_then(|d| d.get(*k)) != Some(*val)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The settings as JSON (without the kind), with defaults filled in.
    pub fn settings(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.remove("kind");
        }
        v
    }

    /// The weight transform this spec names. Prompt and decoding transforms
    /// act at inference, not on weights: for them this is an error saying so.
    pub fn build(&self) -> Result<Box<dyn Transform>> {
        Ok(match self {
            TransformSpec::Identity {} => Box::new(Identity),
            TransformSpec::PruneHeads(c) => {
                c.validate()?;
                Box::new(c.clone())
            }
            TransformSpec::LowRank(c) => {
                c.validate()?;
                Box::new(c.clone())
            }
            TransformSpec::Lora(c) => {
                c.validate()?;
                Box::new(c.clone())
            }
            TransformSpec::TopLora(c) => {
                c.validate()?;
                Box::new(c.clone())
            }
            TransformSpec::Brep(c) => {
                c.validate()?;
                Box::new(c.clone())
            }
            TransformSpec::Loreft(c) => {
                c.validate()?;
                Box::new(c.clone())
            }
            other => {
                return Err(Error::Config(format!(
                    "`{}` is a {} transform: it acts when the model is asked, not on its weights, \
                     so it cannot be applied here; name it in a campaign's `[[transforms]]` \
                     (weight transforms: identity, prune-heads, low-rank, lora, toplora, loreft, brep)",
                    other.kind(),
                    other.stage().name()
                )));
            }
        })
    }

    /// Parses the CLI form `KIND[:key=value,...]`. Values are read as TOML
    /// scalars (numbers, booleans, else strings); lists are joined with `+`
    /// (`targets=q+k+v`). Unknown keys are an error naming the key.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let (kind, rest) = match text.split_once(':') {
            Some((k, r)) => (k.trim(), r.trim()),
            None => (text, ""),
        };
        if kind.is_empty() {
            return Err(Error::Config(format!(
                "transform {text:?}: missing kind; use one of {}",
                KINDS.join(", ")
            )));
        }
        let mut table = toml::Table::new();
        table.insert("kind".into(), toml::Value::String(kind.to_string()));
        for pair in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                Error::Config(format!(
                    "transform {text:?}: {pair:?} is not key=value (e.g. prune-heads:ratio=0.3)"
                ))
            })?;
            let (key, value) = (key.trim(), value.trim());
            let v = if key == "targets" {
                toml::Value::Array(
                    value
                        .split('+')
                        .map(|s| toml::Value::String(s.trim().to_string()))
                        .collect(),
                )
            } else {
                scalar(value)
            };
            table.insert(key.to_string(), v);
        }
        let spec: TransformSpec =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    Error::Config(format!("transform {text:?}: {}", e.message()))
                })?;
        spec.validate()?; // validate settings now, not at apply time
        Ok(spec)
    }
}

fn scalar(s: &str) -> toml::Value {
    if let Ok(i) = s.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = s.parse::<f64>() {
        toml::Value::Float(f)
    } else if let Ok(b) = s.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(s.to_string())
    }
}

/// What a transform did, for reports and `record.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformRecord {
    pub kind: String,
    pub settings: serde_json::Value,
    /// The string appended to `model.transforms`.
    pub key: String,
    pub params_before: usize,
    pub params_after: usize,
    pub flops_per_token_before: usize,
    pub flops_per_token_after: usize,
    /// Calibration tokens the transform saw (0 when it needs none).
    pub calibration_tokens: usize,
    pub layers: Vec<LayerRecord>,
    /// Approximations made and other things a reader must know.
    pub notes: Vec<String>,
}

/// Per-layer details; fields a transform does not touch stay empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub layer: usize,
    pub heads_before: usize,
    pub heads_after: usize,
    pub kv_heads_before: usize,
    pub kv_heads_after: usize,
    /// Original indices of the query heads removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heads_removed: Vec<usize>,
    /// Importance of every original query head (higher = kept first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub head_importance: Vec<f64>,
    /// Relative attention-block output error on calibration activations,
    /// ‖Y_teacher − Y‖² / ‖Y_teacher‖², before and after the refit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_error_pruned: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_error_refit: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projections: Vec<ProjectionRecord>,
}

impl LayerRecord {
    /// Layer `layer` with its heads as they were (a transform that keeps them).
    pub fn unchanged(layer: usize, l: &crate::model::Layer) -> Self {
        LayerRecord {
            layer,
            heads_before: l.n_heads,
            heads_after: l.n_heads,
            kv_heads_before: l.n_kv_heads,
            kv_heads_after: l.n_kv_heads,
            ..Default::default()
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectionRecord {
    pub name: String,
    pub in_features: usize,
    pub out_features: usize,
    /// Rank used; `None` when the projection was kept dense.
    pub rank: Option<usize>,
    /// Why it was kept dense, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_dense: Option<String>,
    /// ‖W − W̃‖_F / ‖W‖_F.
    pub weight_error: f64,
    /// ‖XWᵀ − XW̃ᵀ‖_F / ‖XWᵀ‖_F on calibration activations (when calibrated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_error: Option<f64>,
}

impl TransformRecord {
    pub(crate) fn start(spec_kind: &str, settings: serde_json::Value, model: &Model) -> Self {
        TransformRecord {
            kind: spec_kind.to_string(),
            settings,
            key: String::new(),
            params_before: model.params(),
            params_after: model.params(),
            flops_per_token_before: model.flops_per_token(),
            flops_per_token_after: model.flops_per_token(),
            calibration_tokens: 0,
            layers: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Fills the after-figures and stamps the model with this transform's key.
    pub(crate) fn finish(&mut self, model: &mut Model, key: String) {
        self.params_after = model.params();
        self.flops_per_token_after = model.flops_per_token();
        model.transforms.push(key.clone());
        self.key = key;
    }
}

/// The stable cache-key string for a transform: kind, settings, and the
/// calibration data digest when the result depends on it.
pub(crate) fn stable_key(name: &str, calib: Option<&Calibration>) -> String {
    match calib {
        Some(c) => format!("{name}@calib={}", c.digest()),
        None => name.to_string(),
    }
}

struct Identity;

impl Transform for Identity {
    fn name(&self) -> String {
        "identity".into()
    }
    fn apply(&self, model: &Model, _calib: &Calibration) -> Result<(Model, TransformRecord)> {
        let m = model.clone();
        let mut rec = TransformRecord::start("identity", serde_json::json!({}), model);
        rec.layers = model
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerRecord::unchanged(i, l))
            .collect();
        // The identity leaves the graph as it is: no key is appended, so the
        // untransformed model's cached graph is reused.
        rec.key = "identity".into();
        Ok((m, rec))
    }
}

/// Applies the weight transforms in order, each to the previous one's output.
/// Prompt and decoding steps are skipped: they act at inference.
pub fn apply_chain(
    model: &Model,
    specs: &[TransformSpec],
    calib: &Calibration,
) -> Result<(Model, Vec<TransformRecord>)> {
    let mut current = model.clone();
    let mut records = Vec::with_capacity(specs.len());
    for spec in specs.iter().filter(|s| s.stage() == Stage::Weights) {
        if !current.adapters.is_empty()
            && matches!(
                spec,
                TransformSpec::PruneHeads(_) | TransformSpec::LowRank(_)
            )
        {
            // They reshape or re-fit projections from activations that do not
            // see the adapter's graph branches.
            return Err(Error::Config(format!(
                "`{}` cannot follow an adapter the graph computes (toplora, loreft, brep) in a chain: \
                 put it before the adapter",
                spec.kind()
            )));
        }
        let t = spec.build()?;
        let (next, rec) = t.apply(&current, calib)?;
        current = next;
        records.push(rec);
    }
    Ok((current, records))
}

/// Loads a list of transforms from TOML (`[[transforms]] kind = ...`).
pub fn parse_toml_list(text: &str) -> Result<Vec<TransformSpec>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct List {
        #[serde(default)]
        transforms: Vec<TransformSpec>,
    }
    let list: List =
        toml::from_str(text).map_err(|e| Error::Config(format!("transforms: {}", e.message())))?;
    for t in &list.transforms {
        t.validate()?;
    }
    Ok(list.transforms)
}
