//! Adapter branches the decoder graph computes beside the weights: adapters
//! that cannot be merged into them (TopLoRA's token-wise gates; BREP's and
//! LoReFT's position-dependent interventions). Transforms fill them
//! (`crate::transform`); the graph builder (`runtime::decoder`) emits them.
//! The types live in `weights.rs` beside the `Model` that holds them.

pub use super::weights::{
    Adapters, GatedLora, Reft, ReftPositions, ReftUnit, ScaleBias, UpScaleBias,
};
