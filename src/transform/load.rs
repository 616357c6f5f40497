//! Loading a model under a chain of weight transforms: import, calibrate,
//! transform, then hand the edited weights to the runtime's graph builder.

use crate::error::Result;
use crate::model::gguf::GgufFile;
use crate::model::spec::ResolvedModel;
use crate::runtime::LoadOptions;
use crate::runtime::load::{native_weights, open_model, parse_options};
use crate::runtime::ort_model::OrtModel;

/// Calibration questions for weight transforms: GSM8K *train* questions from
/// the setup's data (never the test questions a campaign attacks).
pub const CALIBRATION_ITEMS: usize = 16;
pub const CALIBRATION_DATASET: &str = "gsm8k-train";

/// Loads a decoder, applies weight transforms (calibrated on GSM8K train
/// questions), and builds (or reuses) its graph.
pub fn load_with_transforms(
    spec: &str,
    steps: &[super::TransformSpec],
    options: &LoadOptions,
) -> Result<OrtModel> {
    let so = parse_options(spec)?;
    let resolved = crate::model::spec::resolve(&so.target)?;
    let (model, tokenizer, chat) = crate::model::spec::load_decoder(&resolved)?;
    let texts = crate::data::questions(
        CALIBRATION_DATASET,
        CALIBRATION_ITEMS,
        &crate::data::LoadOptions::default(),
    )?;
    let calib = super::calib::Calibration::from_texts(&texts, 128, |t| tokenizer.encode(t, true))?;
    let (model, _records) = super::apply_chain(&model, steps, &calib)?;
    // Projections a transform left untouched keep the file's own blocks.
    let native = match &resolved {
        ResolvedModel::Gguf { path } if so.build.format.is_native() => {
            native_weights(&GgufFile::open(path)?, &model, &so.build)?
        }
        _ => None,
    };
    open_model(
        model,
        native.as_ref(),
        tokenizer,
        chat,
        &so.target,
        &so.build,
        options,
    )
}
