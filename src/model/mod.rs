//! Models: specs and aliases, import (GGUF, Hugging Face folders), the in-memory
//! model, tokenizer and chat template.

pub mod adapters;
pub mod chat;
pub mod gguf;
pub mod gguf_write;
pub mod hf;
pub mod hub;
pub mod native;
pub mod persist;
pub mod quant;
pub mod spec;
pub mod tokenizer;
pub mod weights;

pub use adapters::Adapters;
pub use weights::{Arch, Layer, Linear, Matrix, Model, ModelConfig, RopeScaling};
