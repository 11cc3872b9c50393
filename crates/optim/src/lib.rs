//! # retroprop-optim
//!
//! Gradient descent for the networks of `retroprop-layers` (question 2j), with L2 weight decay
//! exactly as question 2k, PyTorch-style momentum, and learning-rate schedules.
//!
//! ```text
//! gradient descent (2j)        θ ← θ − η ∇R̂(θ)
//! with R̂_reg = R̂ + λ‖θ‖² (2k)  θ ← θ − η ∇R̂(θ) − 2ηλ θ
//! ```
//!
//! One [`Optimizer`] trait walks a model's parameters through `Layer::visit_params_mut`. The
//! same [`Sgd`] is *full-batch* gradient descent when the gradient it is given is over the
//! whole dataset, and *mini-batch* SGD when it is over a batch; the training loop of
//! `retroprop-models` decides which.
//!
//! It sits on `retroprop-layers` (it knows `Layer` and `Param`) and below `retroprop-models`.
//!
//! ```
//! use nalgebra::DMatrix;
//! use retroprop_layers::{Dense, Init, Layer};
//! use retroprop_optim::{Optimizer, OptimError, Sgd, WeightDecay};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut layer = Dense::<f64>::new(2, 1, Init::Zeros)?;
//! layer.weight_mut().set_value(DMatrix::from_row_slice(1, 2, &[1.0, -2.0]))?;
//! layer.forward(&DMatrix::from_column_slice(2, 1, &[1.0, 1.0]))?;
//! layer.backward(&DMatrix::from_element(1, 1, 0.5))?;     // dL/dW = [0.5, 0.5], dL/db = 0.5
//! // θ ← θ − η(∇R̂ + 2λθ) with η = 0.1, λ = 0.01 (homework convention)
//! let mut sgd = Sgd::new(0.1)?.with_weight_decay(WeightDecay::homework(0.01)?);
//! sgd.step(&mut layer)?;
//! let w = layer.weight().value();
//! assert!((w[(0, 0)] - (1.0 - 0.1 * (0.5 + 2.0 * 0.01 * 1.0))).abs() < 1e-15);
//! assert!((w[(0, 1)] - (-2.0 - 0.1 * (0.5 + 2.0 * 0.01 * -2.0))).abs() < 1e-15);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod adam;
mod clip;
mod optimizer;
mod rmsprop;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamDecay};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use optimizer::{OptimError, Optimizer, OptimizerState, ParamStates, SlotState};
pub use rmsprop::RmsProp;
pub use schedule::{Constant, Cosine, Exponential, OneCycle, Schedule, StepDecay};
pub use sgd::{Biases, DecayConvention, GradientDescent, Momentum, Sgd, WeightDecay};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
