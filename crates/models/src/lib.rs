//! # retroprop-models
//!
//! Networks built from `retroprop-layers`, trained with `retroprop-losses` and
//! `retroprop-optim`: the top of the retroprop stack.
//!
//! - [`Sequential`] — layers in order, itself a `Layer`, so custom networks compose and nest;
//!   shapes are checked as layers are added.
//! - Builders for the homework's networks: [`mlp`] (part 2), [`homework_cnn`] (part 3), and
//!   classifiers for any input shape and class count: [`mlp_classifier`], [`cnn_classifier`].
//! - [`Summary`] — the layer table with output shapes and parameter counts (`n_θ`, 2i).
//! - [`fit`] and [`evaluate`] — training over a [`Source`] of labelled examples (from
//!   `retroprop-data`), with a callback
//!   per step and per epoch (progress, logging, early stopping); loss, accuracy and confusion
//!   matrix. Same seeds, same result, bit for bit.
//! - [`checkpoint`] — save and load with serde + bincode, atomic and checked.
//!
//! ```
//! use std::ops::ControlFlow;
//! use nalgebra::DMatrix;
//! use retroprop_layers::Init;
//! use retroprop_losses::CrossEntropy;
//! use retroprop_models::{BatchSize, FitConfig, InMemory, Summary, evaluate, fit, mlp};
//! use retroprop_optim::{Sgd, WeightDecay};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // the MLP of part 2 with d = 2, d_h = 16, m = 2, on two separable classes
//! let x = DMatrix::from_fn(2, 64, |i, j| (j as f64 * 0.37 + i as f64).sin() + if j % 2 == 0 { 2.0 } else { -2.0 });
//! let labels: Vec<usize> = (0..64).map(|j| j % 2).collect();
//! let data = InMemory::new(x, labels, 2)?;
//! let mut net = mlp::<f64>(2, 16, 2, Init::XavierUniform { seed: 3 })?;
//! println!("{}", Summary::of(&net));
//! let mut sgd = Sgd::new(0.2)?.with_weight_decay(WeightDecay::homework(1e-4)?);
//! fit(&mut net, &data, &CrossEntropy::default(), &mut sgd,
//!     &FitConfig::new(10, BatchSize::Mini(16)).seed(7), |_, _| ControlFlow::Continue(()))?;
//! let eval = evaluate(&net, &data, &CrossEntropy::default())?;
//! assert_eq!(eval.accuracy, 1.0);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod builders;
pub mod checkpoint;
pub mod collective;
mod early_stopping;
mod error;
mod evaluation;
mod guard;
mod lanes;
pub mod memory;
mod resnet;
pub mod safetensors;
mod sequential;
mod summary;
mod train;

pub use builders::{Standardization, cnn_classifier, homework_cnn, mlp, mlp_classifier};
pub use checkpoint::{CheckpointError, TrainingState};
pub use early_stopping::{EarlyStopping, Verdict};
/// The nalgebra this crate is built with: `retroprop_models::nalgebra::DMatrix` is the matrix
/// type of every retroprop API, without a matching version pin in the user's manifest.
pub use retroprop_core::nalgebra;

pub use error::ModelError;
pub use evaluation::{ConfusionMatrix, Evaluation, evaluate};
pub use memory::MemoryEstimate;
pub use resnet::{ResNetOptions, resnet_classifier};
/// The data a model trains on, from `retroprop-data` (below this crate).
pub use retroprop_data::{InMemory, Source};
pub use retroprop_layers::{Init, Layer, Shape};
pub use sequential::{Sequential, SequentialConfig, register};
pub use summary::{Summary, SummaryRow};
pub use train::{BatchSize, Clip, EpochStats, Event, FitConfig, FitReport, fit};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
