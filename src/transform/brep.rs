//! `brep:path=DIR[,n_prefix=N]`: a BREP adapter (LiangThree/BREP, `model.py`,
//! `op_position = "ffn_up"`): RED-style scale and bias on each layer's
//! `up_proj` output, `u = up(x) ⊙ s_l + b_l`, then `down(act(gate(x)) ⊙ u)`.
//! As the reference applies it: on the prompt pass (every prompt position) and
//! on the first `n_prefix` generated tokens only (BREP's point: steer the
//! start of the answer, then let the model go on); `n_prefix = -1` acts at
//! every position, `0` never. Teacher-forced scoring takes the scored prefix
//! as the prompt. The graph computes it ([`crate::model::adapters::UpScaleBias`]),
//! masked by each token's position and its row's prompt length.
//!
//! On disk: `DIR/ffn_up/delta_vector.pth` (or `DIR/delta_vector.pth`, or the
//! file itself), a `torch.save` dict of `[1, intermediate]` tensors
//! `model.layers.{i}.mlp.up_proj.delta_vector.activation_scaling` /
//! `.activation_bias` (bf16 in BREP). Layers without keys are left alone
//! (BREP's `exclude_layers`); a layer with only one of the two is BREP's
//! `layer_type` `scaling` or `bias`. Refused with an error naming the file and
//! key: `activation_ln` (`layer_type = "ln"`), interventions on other modules,
//! and shapes or layers the base model does not have.

use super::pth::read_tensors;
use super::{Calibration, LayerRecord, Transform, TransformRecord};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::adapters::{ScaleBias, UpScaleBias};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `brep:path=DIR,n_prefix=8`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrepConfig {
    /// The folder BREP saved (holding `ffn_up/delta_vector.pth`), or the file.
    pub path: PathBuf,
    /// Generated tokens the intervention still acts on (BREP's default 8;
    /// -1 = every token, 0 = never).
    #[serde(default = "default_n_prefix")]
    pub n_prefix: i64,
}

fn default_n_prefix() -> i64 {
    8
}

impl BrepConfig {
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::Config(
                "brep: path is empty; name the folder BREP saved (brep:path=DIR)".into(),
            ));
        }
        if self.n_prefix < -1 {
            return Err(Error::Config(format!(
                "brep: n_prefix {} is not allowed: use -1 (every token), 0 (never) or a count",
                self.n_prefix
            )));
        }
        Ok(())
    }

    /// The `.pth` file this config names.
    fn file(&self) -> Result<PathBuf> {
        let p = &self.path;
        if p.is_file() {
            return Ok(p.clone());
        }
        for c in [
            p.join("ffn_up").join("delta_vector.pth"),
            p.join("delta_vector.pth"),
        ] {
            if c.is_file() {
                return Ok(c);
            }
        }
        Err(Error::file(
            p,
            "no BREP adapter here: expected ffn_up/delta_vector.pth (what BREP's save_model \
             writes for op_position ffn_up) in this folder, or the .pth file itself",
        ))
    }
}

/// Reads the per-layer scale and bias of `file` for a model of `n_layers`
/// layers with `inter` intermediate units.
fn read(file: &Path, n_layers: usize, inter: usize) -> Result<Vec<Option<ScaleBias>>> {
    let tensors = read_tensors(file)?;
    let key_re = Regex::new(
        r"^(?:base_model\.)?model\.layers\.(\d+)\.mlp\.up_proj\.delta_vector\.(activation_scaling|activation_bias)$",
    )
    .expect("fixed regex");
    let mut layers: Vec<Option<ScaleBias>> = vec![None; n_layers];
    for (key, t) in &tensors {
        let Some(c) = key_re.captures(key) else {
            let why = if key.contains("activation_ln") {
                "a LayerNorm after the scale and bias (BREP's layer_type \"ln\") is not supported"
            } else if key.contains("delta_vector") {
                "an intervention on a module other than mlp.up_proj (op_position other than \
                 ffn_up) is not supported"
            } else {
                "not a BREP delta_vector weight"
            };
            return Err(Error::file(
                file,
                format!(
                    "unsupported key {key:?}: {why}; `brep:` reads \
                     model.layers.N.mlp.up_proj.delta_vector.activation_scaling / activation_bias"
                ),
            ));
        };
        let li: usize = c[1].parse().unwrap_or(usize::MAX);
        if li >= n_layers {
            return Err(Error::file(
                file,
                format!(
                    "{key:?} is for layer {}, but the base model has {n_layers} layers: the \
                     adapter was trained on another model",
                    &c[1]
                ),
            ));
        }
        if t.data.len() != inter || !matches!(t.shape.as_slice(), [1, n] | [n] if *n == inter) {
            return Err(Error::file(
                file,
                format!(
                    "{key:?} has shape {:?} but up_proj has {inter} outputs here: expected \
                     [1, {inter}]; the base model does not match the adapter",
                    t.shape
                ),
            ));
        }
        let entry = layers[li].get_or_insert_with(|| (vec![1.0; inter], vec![0.0; inter]));
        if &c[2] == "activation_scaling" {
            entry.0 = t.data.clone();
        } else {
            entry.1 = t.data.clone();
        }
    }
    if layers.iter().all(Option::is_none) {
        return Err(Error::file(
            file,
            "holds no BREP weights (model.layers.N.mlp.up_proj.delta_vector.*); is this the file \
             BREP's save_model wrote?",
        ));
    }
    Ok(layers)
}

impl Transform for BrepConfig {
    fn name(&self) -> String {
        format!("brep{}", serde_json::to_string(self).unwrap_or_default())
    }

    fn apply(&self, model: &Model, _calib: &Calibration) -> Result<(Model, TransformRecord)> {
        self.validate()?;
        let file = self.file()?;
        let inter = model
            .layers
            .first()
            .map_or(model.config.intermediate, |l| l.up.out_features());
        let layers = read(&file, model.layers.len(), inter)?;
        if model.adapters.up_scale_bias.is_some() {
            return Err(Error::Config(
                "the chain already holds a brep adapter; apply one per model".into(),
            ));
        }
        let bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
        let digest = {
            use sha2::{Digest, Sha256};
            hex::encode(Sha256::digest(&bytes))[..16].to_string()
        };
        let settings = serde_json::to_value(self).map_err(|e| Error::Other(e.to_string()))?;
        let mut rec = TransformRecord::start("brep", settings, model);
        let mut out = model.clone();
        let touched = layers.iter().flatten().count();
        rec.layers = model
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerRecord::unchanged(i, l))
            .collect();
        if self.n_prefix == 0 {
            rec.notes.push(
                "n_prefix 0: BREP never intervenes (as its reference code does); the model is \
                 unchanged"
                    .into(),
            );
        } else {
            out.adapters.up_scale_bias = Some(UpScaleBias {
                layers,
                n_prefix: self.n_prefix,
            });
        }
        rec.notes.push(format!(
            "scale and bias on up_proj in {touched} of {} layers from {} (sha256 {digest}), on \
             the prompt and {}",
            model.layers.len(),
            file.display(),
            match self.n_prefix {
                -1 => "every generated token".to_string(),
                n => format!("the first {n} generated tokens"),
            }
        ));
        rec.finish(
            &mut out,
            format!("brep@adapter={digest},n_prefix={}", self.n_prefix),
        );
        Ok((out, rec))
    }
}
