//! # retroprop-gradcheck
//!
//! Proves gradients by central finite differences in `f64`: for any [`Layer`] (its `dL/dx` and
//! every parameter gradient), any scalar function of a batch (a loss), and any function
//! `ℝⁿ → ℝ`. Each check returns a [`Report`] — how many entries were checked, the worst
//! absolute and relative errors, where they occurred — and passes or fails against a
//! [`Tolerance`] you can set.
//!
//! [`conformance`] checks, in one call, everything the `Layer` contract promises: gradients,
//! batch = sum of examples, `zero_grad`, accumulation, and the error for `backward` before
//! `forward`. Write a layer, call it, done.
//!
//! It sits on `retroprop-layers` (it knows the `Layer` trait) and is used by their tests, by the
//! crates above, and by `cargo xtask verify`.
//!
//! ```
//! use nalgebra::DMatrix;
//! use retroprop_gradcheck::{Config, check_layer};
//! use retroprop_layers::{Dense, Init, LayerError, Softplus};
//!
//! # fn main() -> Result<(), LayerError> {
//! let x = DMatrix::from_fn(6, 3, |i, j| (i as f64 - 3.0) * 0.4 + j as f64 * 0.2);
//! let mut dense = Dense::<f64>::new(6, 4, Init::XavierUniform { seed: 2 })?;
//! assert!(check_layer(&mut dense, &x, &Config::default())?.passed());
//! assert!(check_layer(&mut Softplus::new(), &x, &Config::default())?.passed());
//! # Ok(())
//! # }
//! ```
//!
//! ## The finite difference
//!
//! ```text
//! ∂L/∂θᵢ ≈ (L(θ + h eᵢ) − L(θ − h eᵢ)) / 2h,    h = ε^(1/3) · max(1, |θᵢ|) ≈ 6·10⁻⁶ · max(1, |θᵢ|)
//! ```
//!
//! `h ∝ ε^(1/3)` balances truncation (`O(h²)`) against rounding (`O(ε/h)`); see [`STEP`]. An
//! entry that fails is retried with `h/10` and `h/100` ([`RETRY_DIVISORS`]): that rescues
//! perturbations that happen to cross a kink (ReLU at 0, a max-pool switch) and never rescues a
//! wrong formula, which fails at every step.
#![deny(missing_docs)]

mod diff;
mod layer;
pub mod planted;
mod suite;

pub use diff::{
    Config, Entry, RETRY_DIVISORS, Report, STEP, TensorReport, Tolerance, check_batch_gradient,
    check_gradient, derivative,
};
pub use layer::{Clause, Conformance, check_layer, check_with_loss, conformance, upstream};
pub use retroprop_layers::Layer;
pub use suite::{Check, CheckResult, Outcome, Suite, SuiteReport};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
