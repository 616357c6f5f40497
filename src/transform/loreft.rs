//! `loreft:path=DIR[,first=7,last=7]`: a LoReFT intervention saved by
//! pyreft / pyvene (`ReftModel.save`): `DIR/config.json` (pyvene's
//! `IntervenableConfig`: `representations` as `[layer, component, unit,
//! max_number_of_units, low_rank_dimension, …]`, `intervention_types`) and one
//! `torch.save` file per intervention, `intkey_layer_{l}_comp_block_output_unit_pos_nunit_1#{k}.bin`
//! with `weight` `[r, d]`, `bias` `[r]` and `rotate_layer` `[d, r]`.
//!
//! Each acts on its layer's output `h` (the residual stream after the block)
//! as `h + (W h + b − R h) Rᵀ` (pyreft's `LoreftIntervention`, linear act),
//! at the prompt positions pyreft's `get_intervention_locations` gives for
//! `first_n = first`, `last_n = last`: the first `min(L/2, first)` and the
//! last `min(L/2, last)` of a prompt of `L` tokens. With pyreft's default
//! separate weights (its `train.py` lists every layer twice), the first half
//! of the interventions act on the first positions and the second half on the
//! last; otherwise (`share_weights`, or `first` or `last` 0) each acts on both.
//! Generated tokens see the change only through the KV cache (pyreft's
//! `intervene_on_prompt`); teacher-forced scoring takes the scored prefix as
//! the prompt. Not reproduced: the pad token pyreft's datasets prepend (with
//! `pad_mode = "first"`) as a sink for the positions missing in prompts
//! shorter than `2·max(first, last)` — here such prompts get the clamped
//! positions only.
//!
//! Refused with an error naming the file: other intervention types (NoReFT,
//! DiReFT, …), components other than `block_output`, units other than one
//! position, missing or extra tensors, and shapes or layers the base model
//! does not have.

use super::pth::read_tensors;
use super::{Calibration, LayerRecord, Transform, TransformRecord};
use crate::error::{Error, Result};
use crate::model::adapters::{Reft, ReftPositions, ReftUnit};
use crate::model::{Matrix, Model};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::path::PathBuf;

/// `loreft:path=DIR,first=7,last=7`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoreftConfig {
    /// The folder `ReftModel.save` wrote (`config.json`, `intkey_*.bin`).
    pub path: PathBuf,
    /// Prompt positions from the start (pyreft's `f7`); not stored in the folder.
    #[serde(default = "seven")]
    pub first: usize,
    /// Prompt positions from the end (pyreft's `l7`).
    #[serde(default = "seven")]
    pub last: usize,
}

fn seven() -> usize {
    7
}

impl LoreftConfig {
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::Config(
                "loreft: path is empty; name the folder pyreft saved (loreft:path=DIR)".into(),
            ));
        }
        if self.first == 0 && self.last == 0 {
            return Err(Error::Config(
                "loreft: first and last are both 0, so it would act nowhere; give the positions \
                 the adapter was trained with (e.g. first=7,last=7 for pyreft's f7+l7)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// One representation of pyvene's config: layer, component, unit, units, rank.
fn representation(v: &Json) -> Option<(usize, String, String, u64, Option<u64>)> {
    let field = |i: usize, name: &str| v.get(i).or_else(|| v.get(name));
    Some((
        field(0, "layer")?.as_u64()? as usize,
        field(1, "component")?.as_str()?.to_string(),
        field(2, "unit")?.as_str()?.to_string(),
        field(3, "max_number_of_units")?.as_u64()?,
        field(4, "low_rank_dimension").and_then(Json::as_u64),
    ))
}

impl Transform for LoreftConfig {
    fn name(&self) -> String {
        format!("loreft{}", serde_json::to_string(self).unwrap_or_default())
    }

    fn apply(&self, model: &Model, _calib: &Calibration) -> Result<(Model, TransformRecord)> {
        self.validate()?;
        let dir = &self.path;
        let cp = dir.join("config.json");
        if !cp.is_file() {
            return Err(Error::file(
                &cp,
                "missing: a pyreft adapter folder holds config.json and intkey_*.bin \
                 (what ReftModel.save writes)",
            ));
        }
        let text = std::fs::read(&cp).map_err(|e| Error::io(&cp, e))?;
        let config: Json = serde_json::from_slice(&text)
            .map_err(|e| Error::file(&cp, format!("invalid JSON: {e}")))?;
        let reps = config
            .get("representations")
            .and_then(Json::as_array)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                Error::file(&cp, "no representations: not a pyvene intervention config")
            })?;
        let types: Vec<&str> = config
            .get("intervention_types")
            .and_then(Json::as_array)
            .map(|t| t.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        if types.len() != reps.len() {
            return Err(Error::file(
                &cp,
                format!(
                    "{} representations but {} intervention_types; the config is incomplete",
                    reps.len(),
                    types.len()
                ),
            ));
        }
        if let Some(t) = types.iter().find(|t| !t.contains(".LoreftIntervention'")) {
            return Err(Error::file(
                &cp,
                format!(
                    "intervention type {t:?}: `loreft:` applies pyreft's LoreftIntervention only"
                ),
            ));
        }
        let n_layers = model.layers.len();
        let hidden = model.config.hidden;
        let mut parsed = Vec::with_capacity(reps.len());
        for r in reps {
            let Some((layer, comp, unit, n_units, rank)) = representation(r) else {
                return Err(Error::file(
                    &cp,
                    format!("representation {r} is not understood"),
                ));
            };
            if comp != "block_output" || unit != "pos" || n_units != 1 {
                return Err(Error::file(
                    &cp,
                    format!(
                        "representation on {comp} (unit {unit}, {n_units} units): `loreft:` \
                         applies interventions on block_output at single positions only"
                    ),
                ));
            }
            if layer >= n_layers {
                return Err(Error::file(
                    &cp,
                    format!(
                        "intervenes on layer {layer}, but the base model has {n_layers} layers: \
                         the adapter was trained on another model"
                    ),
                ));
            }
            parsed.push((layer, comp, unit, n_units, rank));
        }
        // pyreft's train.py lists the layers twice for separate first/last weights.
        let n = parsed.len();
        let layers: Vec<usize> = parsed.iter().map(|p| p.0).collect();
        let separate =
            self.first > 0 && self.last > 0 && n % 2 == 0 && layers[..n / 2] == layers[n / 2..];
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        let mut units = Vec::with_capacity(n);
        let mut hasher = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(&text);
            h
        };
        for (i, (layer, comp, unit, n_units, rank)) in parsed.iter().enumerate() {
            let key = format!("layer_{layer}_comp_{comp}_unit_{unit}_nunit_{n_units}");
            let count = seen.entry(key.clone()).or_default();
            let file = dir.join(format!("intkey_{key}#{count}.bin"));
            *count += 1;
            if !file.is_file() {
                return Err(Error::file(
                    &file,
                    format!(
                        "missing: {} lists this intervention; the folder is incomplete",
                        cp.display()
                    ),
                ));
            }
            {
                use sha2::Digest;
                let bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
                hasher.update(b"\0");
                hasher.update(&bytes);
            }
            let mut t = read_tensors(&file)?;
            if let Some(k) = t
                .keys()
                .find(|k| !["weight", "bias", "rotate_layer"].contains(&k.as_str()))
            {
                return Err(Error::file(
                    &file,
                    format!(
                        "unsupported key {k:?}: a LoreftIntervention holds weight, bias and \
                         rotate_layer"
                    ),
                ));
            }
            let mut take = |name: &str| {
                t.remove(name).ok_or_else(|| {
                    Error::file(
                        &file,
                        format!("{name:?} is missing; the file is incomplete"),
                    )
                })
            };
            let (rot, w, b) = (take("rotate_layer")?, take("weight")?, take("bias")?);
            let r = rot.shape.get(1).copied().unwrap_or(0);
            let fits = rot.shape == [hidden, r]
                && w.shape == [r, hidden]
                && b.shape == [r]
                && r > 0
                && rank.is_none_or(|k| k as usize == r);
            if !fits {
                return Err(Error::file(
                    &file,
                    format!(
                        "shapes rotate_layer {:?}, weight {:?}, bias {:?} do not fit: expected \
                         [{hidden}, r], [r, {hidden}], [r] with r the low_rank_dimension{} — the \
                         base model (hidden size {hidden}) does not match the adapter",
                        rot.shape,
                        w.shape,
                        b.shape,
                        rank.map(|k| format!(" {k}")).unwrap_or_default()
                    ),
                ));
            }
            units.push(ReftUnit {
                layer: *layer,
                positions: match (separate, i < n / 2) {
                    (false, _) => ReftPositions::Both,
                    (true, true) => ReftPositions::First,
                    (true, false) => ReftPositions::Last,
                },
                rotate: Matrix::new(hidden, r, rot.data),
                weight: Matrix::new(r, hidden, w.data),
                bias: b.data,
            });
        }
        if model.adapters.reft.is_some() {
            return Err(Error::Config(
                "the chain already holds a loreft adapter; apply one per model".into(),
            ));
        }
        let digest = {
            use sha2::Digest;
            hex::encode(hasher.finalize())[..16].to_string()
        };
        let settings = serde_json::to_value(self).map_err(|e| Error::Other(e.to_string()))?;
        let mut rec = TransformRecord::start("loreft", settings, model);
        let mut out = model.clone();
        out.adapters.reft = Some(Reft {
            first: self.first,
            last: self.last,
            units,
        });
        rec.layers = model
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerRecord::unchanged(i, l))
            .collect();
        rec.notes.push(format!(
            "{n} LoReFT interventions from {} (sha256 {digest}) on layers {layers:?}, at the first \
             {} and last {} prompt positions ({}), computed by the graph",
            dir.display(),
            self.first,
            self.last,
            if separate {
                "separate weights: first half of the interventions on the first positions"
            } else {
                "each intervention on both groups"
            }
        ));
        rec.finish(
            &mut out,
            format!(
                "loreft@adapter={digest},first={},last={}",
                self.first, self.last
            ),
        );
        Ok((out, rec))
    }
}
