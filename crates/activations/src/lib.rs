//! # retroprop-activations
//!
//! The functions of part 1 of the homework (`devoir3-theorique.md`, questions 1a–1m) — sigmoid,
//! tanh, softplus, sign, Heaviside, the indicator, ReLU, diag, softmax, log-softmax and
//! log-sum-exp — with their derivatives and Jacobians, numerically stable, generic over `f32`
//! and `f64` through one bound, [`Scalar`].
//!
//! It is the bottom of the retroprop stack: layers, losses and models are built on it, and it
//! depends on nalgebra only.
//!
//! - scalar functions at the crate root: [`sigmoid`], [`softplus`], [`relu_prime`], …;
//! - the same on vectors, plus `diag` and Jacobians, in [`vector`] (softmax and friends are
//!   re-exported here);
//! - allocation-free kernels on slices (one batch column each) in [`mod@slice`], vectorised for
//!   `f32`.
//!
//! ```
//! use nalgebra::dvector;
//! use retroprop_activations::{ActivationError, log_sum_exp, softmax, softplus, vector};
//!
//! # fn main() -> Result<(), ActivationError> {
//! // Stable at the extremes: no overflow, no NaN.
//! assert_eq!(softplus(1000.0_f64), 1000.0);
//! let s = softmax(&dvector![1000.0_f64, 1001.0, 1002.0]);
//! assert!((s.sum() - 1.0).abs() < 1e-15);
//! assert!((log_sum_exp(&dvector![1000.0_f64, 1000.0])? - (1000.0 + 2.0_f64.ln())).abs() < 1e-12);
//!
//! // Question 1k: the softmax Jacobian is diag(S) − S Sᵀ.
//! let x = dvector![0.3_f64, -1.2, 2.0];
//! let j = vector::softmax_jacobian(&x);
//! let s = softmax(&x);
//! assert!((j - (vector::diag(&s) - &s * s.transpose())).amax() < 1e-15);
//! # Ok(())
//! # }
//! ```
//!
//! Conventions: column vectors; `NaN` in gives `NaN` out and never a panic; functions whose
//! result is undefined on their input (log-sum-exp of nothing) return [`ActivationError`].
#![deny(missing_docs)]

mod error;
mod pointwise;
pub mod slice;
pub mod vector;

/// The nalgebra this crate is built with: `retroprop_core::nalgebra::DMatrix` is the
/// matrix type every retroprop API takes, so a downstream crate needs no matching pin of its
/// own.
pub use nalgebra;

pub use error::ActivationError;
pub use pointwise::{
    RELU_PRIME_AT_ZERO, heaviside, indicator, log_sigmoid, relu, relu_prime, sigmoid,
    sigmoid_prime, sign, softplus, softplus_prime, steep_logistic, tanh, tanh_prime,
};
/// The numeric bound and the seeded generator live in `retroprop-core`; they are re-exported
/// here for code that uses only this crate.
pub use retroprop_core::{Kernels, Scalar, rng};
pub use vector::{
    log_softmax, log_softmax_vjp, log_sum_exp, softmax, softmax_jacobian, softmax_vjp,
};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// `true` for NaN (`x ≠ x`), for any [`Scalar`].
#[inline]
#[allow(clippy::eq_op)]
pub fn is_nan<T: Scalar>(x: T) -> bool {
    x != x
}
