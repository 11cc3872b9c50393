//! # retroprop-layers
//!
//! Every layer the homework uses, behind one [`Layer`] trait with `forward` and `backward`,
//! each gradient derived by hand (parts 2 and 3 of `devoir3-theorique.md`):
//!
//! | layer | forward | backward |
//! |---|---|---|
//! | [`Dense`] | `hᵃ = W x + b` (2a/2b) | `dW = δ xᵀ`, `db = δ 1`, `dx = Wᵀ δ` (2m–2p) |
//! | [`Softplus`] | `hˢ = φ(hᵃ)` | `σ(hᵃ) ⊙ g` (2q/2r) |
//! | [`Softmax`] | `oˢ = S(oᵃ)` per column | `S ⊙ (g − ⟨g, S⟩)` (1j/1k) |
//! | [`Sigmoid`], [`Tanh`], [`Relu`] | element-wise | `φ'(x) ⊙ g` |
//! | [`Conv2d`] | cross-correlation, direct products on the padded input (3a/3b) | `dW = δ xᵀ` over positions, `dx = Wᵀ δ` (a transposed convolution) |
//! | [`MaxPool2d`] | window maximum (3a) | gradient to the arg-max (first on ties) |
//! | [`Flatten`] | `C×H×W → C·H·W` (bookkeeping) | identity |
//! | [`Standardize`] | `(x − μ)/σ`, fixed | `g/σ` |
//! | [`LeakyRelu`], [`Gelu`] | element-wise | `φ'(x) ⊙ g` |
//! | [`Dropout`] | `x ⊙ m`, inverted, seeded | `g ⊙ m` |
//! | [`AvgPool2d`] | window mean (PyTorch's `count_include_pad`) | `g / window` to each tap |
//! | [`BatchNorm`] (1d, 2d) | `γ (x − μ_B)/√(σ²_B + ε) + β`; running `μ̄, σ̄²` in `infer` | through the batch statistics |
//! | [`LayerNorm`] | the same per example | through the example's statistics |
//! | [`Residual`] | `f(x) + x` or `f(x) + P(x)` | `J_fᵀ g + J_Pᵀ g` |
//!
//! plus [`convolve1d`], the flipped 1-D convolution of question 3c in numpy's full/same/valid
//! modes.
//!
//! A batch is a `DMatrix` with one column per example (images in C×H×W order). Layers sit on
//! `retroprop-activations` and below `retroprop-losses`, `retroprop-optim` and
//! `retroprop-models`; `retroprop-gradcheck` proves them against finite differences.
//!
//! ```
//! use nalgebra::DMatrix;
//! use retroprop_layers::{Dense, Init, Layer, LayerError, Softplus};
//!
//! # fn main() -> Result<(), LayerError> {
//! // The hidden layer of part 2: hᵃ = W⁽¹⁾ x + b⁽¹⁾, hˢ = softplus(hᵃ)
//! let mut dense = Dense::<f64>::new(4, 3, Init::XavierUniform { seed: 1 })?;
//! let mut phi = Softplus::new();
//! let x = DMatrix::from_element(4, 2, 0.1);
//! let h_s = phi.forward(&dense.forward(&x)?)?;
//! let grad_h_s = DMatrix::from_element(3, 2, 1.0);          // dL/dhˢ from above
//! let grad_h_a = phi.backward(&grad_h_s)?;                   // σ(hᵃ) ⊙ dL/dhˢ
//! let grad_x = dense.backward(&grad_h_a)?;                   // W⁽¹⁾ᵀ dL/dhᵃ
//! assert_eq!((h_s.shape(), grad_x.shape()), ((3, 2), (4, 2)));
//! assert_eq!(dense.weight().grad().shape(), (3, 4));         // shaped like W⁽¹⁾
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod activation;
mod avgpool;
mod batchnorm;
mod buffer;
mod builtin;
mod conv1d;
mod conv2d;
mod dense;
mod dropout;
mod error;
mod flatten;
mod gelu;
mod init;
mod layer;
mod layernorm;
mod leaky_relu;
mod linalg;
mod maxpool;
mod param;
mod registry;
mod residual;
mod shape;
mod spec;
mod standardize;
mod state_dict;

/// The nalgebra this crate is built with (see `retroprop_core::nalgebra`).
pub use retroprop_core::nalgebra;

pub use activation::{Relu, Sigmoid, Softmax, Softplus, Tanh};
pub use avgpool::{AvgPool2d, AvgPool2dConfig};
pub use batchnorm::{BatchNorm, BatchNorm1dConfig, BatchNorm2dConfig, BatchNormConfig};
pub use buffer::Buffer;
pub use builtin::{
    FlattenConfig, ReluConfig, SigmoidConfig, SoftmaxConfig, SoftplusConfig, StandardizeConfig,
    TanhConfig,
};
pub use conv1d::{ConvMode, convolve1d};
pub use conv2d::{Bias, Conv2d, Conv2dConfig, Hw, output_size};
pub use dense::{Dense, DenseConfig};
pub use dropout::{Dropout, DropoutConfig};
pub use error::LayerError;
pub use flatten::Flatten;
pub use gelu::{Gelu, GeluApproximation, GeluConfig};
pub use init::Init;
pub use layer::Layer;
pub use layernorm::{LayerNorm, LayerNormConfig};
pub use leaky_relu::{LeakyRelu, LeakyReluConfig};
pub use maxpool::{MaxPool2d, MaxPool2dConfig};
pub use param::{Param, ParamKind};
pub use registry::{LayerConfig, build, param_shapes, register, registered_kinds};
pub use residual::{Residual, ResidualConfig};
pub use retroprop_core::Scalar;
pub use shape::{MAX_VALUES, Shape};
pub use spec::LayerSpec;
pub use standardize::Standardize;
pub use state_dict::{StateDict, load_state_dict, state_dict};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
