//! # retroprop-losses
//!
//! The losses of part 2 of the homework (`devoir3-theorique.md`), each returning its value and
//! its gradient with respect to the network's output — the `dL/dy` that starts backpropagation:
//!
//! | loss | formula | gradient |
//! |---|---|---|
//! | [`CrossEntropy`] | `L = log Σⱼ exp(oᵃⱼ) − oᵃ_y` (2h), soft targets `−Σ cᵢ log yᵢ` (1m) | `oˢ − onehot(y)` (2l) |
//! | [`SigmoidMse`] | `(σ(oᵃ) − y)²` (2e) | `2(σ − y) σ(1 − σ)` |
//! | [`BceWithLogits`] | `−[y log σ + (1−y) log(1−σ)] = softplus(oᵃ) − y oᵃ` (2f) | `σ(oᵃ) − y` |
//! | [`BinaryCrossEntropy`] | the same on probabilities (PyTorch's `BCELoss`) | `(p − y)/(p(1 − p))` |
//! | [`Mse`] | `(1/m)‖p − t‖²` | `(2/m)(p − t)` |
//!
//! Batches have one column per example. [`Reduction::Mean`] — the empirical risk `R̂` of
//! question 2i — is the default; `Sum` and per-example (`None`) are there too, and
//! [`LossOutput::grad`] is always the gradient of [`LossOutput::value`]. Targets are
//! [`Target::Labels`] or [`Target::Dense`]; a label out of range, a count mismatch or a
//! non-finite target is a [`LossError`] naming the example.
//!
//! It sits beside `retroprop-layers` on top of `retroprop-activations`; `retroprop-models`
//! trains with it.
//!
//! ```
//! use nalgebra::DMatrix;
//! use retroprop_losses::{CrossEntropy, Loss, LossError, Target};
//!
//! # fn main() -> Result<(), LossError> {
//! // two examples, three classes
//! let o_a = DMatrix::from_column_slice(3, 2, &[2.0_f64, 0.5, -1.0, 0.0, 0.0, 3.0]);
//! let out = CrossEntropy::default().evaluate(&o_a, Target::Labels(&[0, 2]))?;
//! assert_eq!(out.per_example.len(), 2);
//! assert_eq!(out.grad.shape(), (3, 2));               // dR̂/doᵃ, ready for backward
//! let bad = CrossEntropy::default().evaluate(&o_a, Target::Labels(&[0, 3]));
//! assert!(matches!(bad, Err(LossError::LabelOutOfRange { index: 1, label: 3, .. })));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod binary;
mod cross_entropy;
mod error;
mod target;

pub use binary::{BceWithLogits, BinaryCrossEntropy, Mse, SigmoidMse};
pub use cross_entropy::CrossEntropy;
pub use error::LossError;
pub use target::{Loss, LossOutput, Reduction, Target};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
