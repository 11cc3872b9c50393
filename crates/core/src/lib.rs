//! # retroprop-core
//!
//! The numeric runtime at the bottom of retroprop, with nothing of the course in it:
//!
//! - [`Scalar`] — the one numeric bound (`f32` to train, `f64` to check), with its sealed
//!   per-type [`Kernels`]: byte encoding, the vectorised bulk functions, and GEMM
//!   ([`Kernels::gemm_raw`], matrixmultiply's `sgemm`/`dgemm` by type);
//! - [`gemm`] — checked strided GEMM (transposes by strides, no copies) and its two-core split;
//!   [`direct`] — the convolutions' products on rows read in place (no im2col, no packing),
//!   compiled for AVX-512, AVX2 + FMA and the baseline, and on them a dense layer's forward
//!   product ([`direct::affine`]); [`transpose`] — out-of-place
//!   transposes;
//! - [`simd`] — run-time CPU dispatch: the hot generic loops compiled for x86-64-v3 as well as
//!   the baseline, so no build needs a CPU flag;
//! - [`Normalize`] — the fixed standardisation `(x − μ)/σ`, shared by the `Standardize` layer
//!   and the data loaders that apply it while loading;
//! - [`rng`] — the seeded generator every initialiser and shuffle uses (same seed, same bits);
//! - [`team`] — the spinning helper threads (one per extra thread) that take parts of a product,
//!   and [`split`] — the one helper (and the one threshold) by which element-wise work is cut for
//!   them.
//!
//! `retroprop-activations` builds the functions of part 1 on it; every other crate takes its
//! scalar type from here.
#![deny(missing_docs)]

pub mod direct;
mod fast;
pub mod gemm;
mod normalize;
pub mod rng;
mod scalar;
pub mod simd;
pub mod split;
pub mod team;
pub mod transpose;

pub use nalgebra;
pub use normalize::Normalize;
pub use scalar::{Kernels, RawOperand, RawOutput, Scalar};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
