//! `toplora:path=DIR`: a TopLoRA adapter (Leopold1423/toplora-neurips25),
//! saved in PEFT's LoRA layout with two extra keys per module:
//! `...<proj>.lora_lambda.weight` (Θ, `[in, r]`) and
//! `...<proj>.lora_lambda.rms_norm.weight` (gain `[r]`). Each adapted
//! projection computes
//!
//! `y = W₀x + s·B((A x) ⊙ exp(RMSNorm_g(x Θ)))`, `s = α/r` (`α/√r` with rsLoRA),
//!
//! with the RMS norm's epsilon `torch.finfo(float32).eps`. The gate depends on
//! the token, so the update cannot be merged: the branch goes to the graph
//! ([`crate::model::adapters::GatedLora`]). Module matching, ranks and alphas
//! are PEFT's, as for `lora:` ([`super::lora`]); refused with an error naming
//! the file and key: DoRA, a targeted module without its Θ or gain, shapes
//! that do not fit the base model, and a plain LoRA adapter (no `lora_lambda`
//! at all: load it with `lora:`).

use super::lora::{PREFIX, plan, read_adapter};
use super::{Calibration, LayerRecord, ProjectionRecord, Transform, TransformRecord};
use crate::error::{Error, Result};
use crate::model::adapters::GatedLora;
use crate::model::{Matrix, Model};
use crate::transform::low_rank::Projection;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `toplora:path=DIR`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopLoraConfig {
    /// The adapter folder (`adapter_config.json`, `adapter_model.safetensors`).
    pub path: PathBuf,
}

impl TopLoraConfig {
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::Config(
                "toplora: path is empty; name the adapter folder (toplora:path=DIR)".into(),
            ));
        }
        Ok(())
    }
}

/// The RMS norm's epsilon in TopLoRA's float32 forward.
const EPS: f32 = f32::EPSILON;

impl Transform for TopLoraConfig {
    fn name(&self) -> String {
        format!("toplora{}", serde_json::to_string(self).unwrap_or_default())
    }

    fn apply(&self, model: &Model, _calib: &Calibration) -> Result<(Model, TransformRecord)> {
        self.validate()?;
        let ad = read_adapter(&self.path, true)?;
        let (c, cp, wp) = (&ad.config, &ad.config_path, &ad.weights_path);
        if c.use_dora {
            return Err(Error::file(
                cp,
                "use_dora is true; TopLoRA has no DoRA form — this is not a TopLoRA adapter \
                 (load a DoRA adapter with `lora:path=DIR`)",
            ));
        }
        if !ad.modules.values().any(|t| t.lambda.is_some()) {
            return Err(Error::file(
                wp,
                "holds no lora_lambda weights: this is a plain LoRA adapter; load it with \
                 `lora:path=DIR`",
            ));
        }
        let trained_on = || {
            c.base_model_name_or_path
                .as_deref()
                .map(|b| format!("; the adapter was trained on {b}"))
                .unwrap_or_default()
        };
        let n_layers = model.layers.len();
        if let Some(&(l, _)) = ad.modules.keys().find(|(l, _)| *l >= n_layers) {
            return Err(Error::file(
                wp,
                format!(
                    "has weights for layer {l}, but the base model has {n_layers} layers: the \
                     adapter was trained on another model{}",
                    trained_on()
                ),
            ));
        }
        let plan = plan(cp, c, n_layers)?;
        let n_proj = Projection::ALL.len();
        let settings = serde_json::to_value(self).map_err(|e| Error::Other(e.to_string()))?;
        let mut rec = TransformRecord::start("toplora", settings, model);
        let mut out = model.clone();
        let mut layer_recs: Vec<LayerRecord> = model
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerRecord::unchanged(i, l))
            .collect();
        for (&(li, pi), t) in &ad.modules {
            let mp = &plan[li * n_proj + pi];
            if !mp.targeted {
                let key = [&t.a, &t.b, &t.lambda, &t.gain, &t.m]
                    .into_iter()
                    .flatten()
                    .map(|x| x.2.clone())
                    .next()
                    .unwrap_or_default();
                return Err(Error::file(
                    wp,
                    format!(
                        "{key:?}: {} is not targeted by {} (target_modules, exclude_modules, \
                         layers_to_transform); the config and the weights do not belong together",
                        mp.name,
                        cp.display()
                    ),
                ));
            }
        }
        for (li, layer) in model.layers.iter().enumerate() {
            for (pi, p) in Projection::ALL.iter().enumerate() {
                let mp = &plan[li * n_proj + pi];
                if !mp.targeted {
                    continue;
                }
                let name = &mp.name;
                let missing = |what: &str| {
                    Error::file(
                        wp,
                        format!(
                            "{PREFIX}{name}.{what} is missing ({} targets {name}); the adapter \
                             file is incomplete or does not fit this model",
                            cp.display()
                        ),
                    )
                };
                let t = ad
                    .modules
                    .get(&(li, pi))
                    .ok_or_else(|| missing("lora_A.weight"))?;
                if let Some((_, _, k)) = &t.m {
                    return Err(Error::file(
                        wp,
                        format!("{k:?} is a DoRA magnitude; TopLoRA adapters have none"),
                    ));
                }
                let lin = p.get(layer);
                let (n_in, n_out, r) = (lin.in_features(), lin.out_features(), mp.r);
                let want: [(&str, Vec<usize>, &str); 4] = [
                    ("lora_A.weight", vec![r, n_in], "[r, in]"),
                    ("lora_B.weight", vec![n_out, r], "[out, r]"),
                    ("lora_lambda.weight", vec![n_in, r], "[in, r]"),
                    ("lora_lambda.rms_norm.weight", vec![r], "[r]"),
                ];
                let mut got = Vec::with_capacity(4);
                for ((what, shape, layout), slot) in
                    want.iter().zip([&t.a, &t.b, &t.lambda, &t.gain])
                {
                    let (s, data, key) = slot.as_ref().ok_or_else(|| missing(what))?;
                    if s != shape {
                        return Err(Error::file(
                            wp,
                            format!(
                                "{key:?} has shape {s:?} but {name} needs {shape:?} {layout} \
                                 (rank {r} from r / rank_pattern; {n_in} inputs and {n_out} \
                                 outputs here): the base model does not match the adapter{}",
                                trained_on()
                            ),
                        ));
                    }
                    got.push(data.clone());
                }
                let s = if c.use_rslora {
                    mp.alpha / (r as f64).sqrt()
                } else {
                    mp.alpha / r as f64
                };
                let gain = got.pop().unwrap_or_default();
                let theta = got.pop().unwrap_or_default();
                let b = got.pop().unwrap_or_default();
                let a = got.pop().unwrap_or_default();
                if out.adapters.gated_for(li, p.name()).is_some() {
                    return Err(Error::Config(format!(
                        "{name} already carries a TopLoRA branch from an earlier step of the \
                         chain; apply one toplora adapter per module"
                    )));
                }
                out.adapters.gated.push(GatedLora {
                    layer: li,
                    proj: p.name().to_string(),
                    a: Matrix::new(r, n_in, a),
                    b: Matrix::new(n_out, r, b.iter().map(|v| (*v as f64 * s) as f32).collect()),
                    theta: Matrix::new(n_in, r, theta),
                    gain,
                    eps: EPS,
                });
                layer_recs[li].projections.push(ProjectionRecord {
                    name: p.name().into(),
                    in_features: n_in,
                    out_features: n_out,
                    rank: Some(r),
                    kept_dense: None,
                    weight_error: 0.0,
                    activation_error: None,
                });
            }
        }
        rec.layers = layer_recs;
        rec.notes.push(format!(
            "{} TopLoRA branches from {} (scale {}; adapter sha256 {}), computed by the graph \
             beside the unchanged weights (weight_error 0: nothing is merged)",
            out.adapters.gated.len() - model.adapters.gated.len(),
            self.path.display(),
            if c.use_rslora { "α/√r" } else { "α/r" },
            ad.digest
        ));
        rec.finish(&mut out, format!("toplora@adapter={}", ad.digest));
        Ok((out, rec))
    }
}
