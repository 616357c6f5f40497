//! Model transforms applied to the in-memory [`Model`] before the graph is
//! built: attention-head pruning with closed-form distillation, and low-rank
//! factorisation (plain SVD, activation-aware, IMPACT-style importance-weighted).
//!
//! A transform is named by a serde-tagged [`TransformSpec`] (TOML
//! `[[transforms]] kind = "prune-heads" ratio = 0.3`, or the CLI form
//! `prune-heads:ratio=0.3,scope=per-layer`), takes calibration token sequences
//! ([`Calibration`]) where it needs activations, and returns the new model plus
//! a [`TransformRecord`]. Each applied transform appends a stable string to
//! `model.transforms`, so built graphs are cached per chain.

pub mod calib;
pub mod low_rank;
pub mod persist;
pub mod prune_heads;

pub use calib::Calibration;
pub use low_rank::{LowRankConfig, LowRankMethod, Projection};
pub use persist::{RECORD_FILE, load_transformed, save_transformed};
pub use prune_heads::{Distill, GqaMode, PruneHeadsConfig, Scope};

use crate::error::{Error, Result};
use crate::model::Model;
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
}

impl TransformSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            TransformSpec::Identity {} => "identity",
            TransformSpec::PruneHeads(_) => "prune-heads",
            TransformSpec::LowRank(_) => "low-rank",
        }
    }

    /// The settings as JSON (without the kind), with defaults filled in.
    pub fn settings(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.remove("kind");
        }
        v
    }

    /// The transform this spec names.
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
                "transform {text:?}: missing kind; use identity, prune-heads or low-rank"
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
        spec.build()?; // validate settings now, not at apply time
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
            .map(|(i, l)| LayerRecord {
                layer: i,
                heads_before: l.n_heads,
                heads_after: l.n_heads,
                kv_heads_before: l.n_kv_heads,
                kv_heads_after: l.n_kv_heads,
                ..Default::default()
            })
            .collect();
        // The identity leaves the graph as it is: no key is appended, so the
        // untransformed model's cached graph is reused.
        rec.key = "identity".into();
        Ok((m, rec))
    }
}

/// Applies the transforms in order, each to the previous one's output.
pub fn apply_chain(
    model: &Model,
    specs: &[TransformSpec],
    calib: &Calibration,
) -> Result<(Model, Vec<TransformRecord>)> {
    let mut current = model.clone();
    let mut records = Vec::with_capacity(specs.len());
    for spec in specs {
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
        t.build()?;
    }
    Ok(list.transforms)
}
