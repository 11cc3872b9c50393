//! The homework, question by question: one check per question with a checkable result, its id
//! the question's (1a … 3d), one file per part. See docs/homework.md for the answers and the
//! code.

mod part1;
mod part2;
mod part3;

pub use part1::part1;
pub use part2::part2;
pub use part3::part3;

// What the three parts share: the crates they check, and the helpers and tolerances below.
pub(super) use nalgebra::{DMatrix, DVector};
pub(super) use retroprop_activations as act;
pub(super) use retroprop_activations::vector;
pub(super) use retroprop_gradcheck::{
    Config, Outcome, Suite, check_batch_gradient, check_gradient, check_with_loss,
};
pub(super) use retroprop_layers::{ConvMode, Init, Layer, Shape, convolve1d};
pub(super) use retroprop_losses::{
    BceWithLogits, CrossEntropy, Loss, Reduction, SigmoidMse, Target,
};
pub(super) use retroprop_models::{Summary, homework_cnn, mlp};
pub(super) use retroprop_optim::{Optimizer, Sgd, WeightDecay};

pub(super) use super::{ce_gradient, labels, random};

pub(super) const P1: &str = "homework part 1 (derivatives and usual functions)";
pub(super) const P2: &str = "homework part 2 (the MLP's gradients)";
pub(super) const P3: &str = "homework part 3 (convolutional network)";

/// `f'(x)` by gradcheck's central difference (the one every gradient check uses).
pub(super) fn fd(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    retroprop_gradcheck::derivative(f, x)
}

/// A dense grid with extremes: 0, ±tiny, ±huge, and a geometric sweep in between.
pub(super) fn grid() -> Vec<f64> {
    let mut xs = vec![
        0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, 700.0, -700.0, 1000.0, -1000.0,
    ];
    let mut x = 1e-8;
    while x < 1e4 {
        xs.push(x);
        xs.push(-x);
        x *= 1.07;
    }
    xs
}

pub(super) fn max_abs(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, |m, v| {
        if v.is_nan() {
            f64::INFINITY
        } else {
            m.max(v.abs())
        }
    })
}

/// `|a − b| / max(1, |b|)`.
pub(super) fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1.0)
}

/// Tolerance for a derivative by central differences of an O(1) function.
pub(super) const FD_TOL: f64 = 1e-8;

/// Two summation orders of `m` products of magnitude at most 1 (`|δₖ| ≤ 1`, `|W| ≤ 1` here)
/// differ by at most `2(m − 1)·ε·Σ|terms| ≤ 2m²ε`: the layer's GEMM and the check's loop sum in
/// different orders.
pub(super) fn sum_tol(m: usize) -> f64 {
    let m = m as f64;
    2.0 * m * m * f64::EPSILON
}

/// A function against its definition evaluated directly, where both are a handful of correctly
/// rounded operations: 8 ε relative.
pub(super) const DEFINITION_TOL: f64 = 8.0 * f64::EPSILON;

// The tolerances of the checks below, each a multiple of f64's ε with the reason for it (the
// finite-difference ones, FD_TOL and gradcheck's Tolerance, are not rounding but truncation).

/// Two computations of the same product of values of magnitude ≤ 1 by one multiplication each:
/// half an ulp of 1.
pub(super) const ONE_ROUNDING: f64 = f64::EPSILON / 2.0;
/// The same value of magnitude ≤ 1 by a few correctly rounded operations in another order.
pub(super) const FEW_ROUNDINGS: f64 = 5.0 * f64::EPSILON;
/// A dot product of a few terms of magnitude ≤ 1, summed in another order than the layer's GEMM.
pub(super) const DOT_ORDER: f64 = 45.0 * f64::EPSILON;
/// `−log S(o)_y` against `LSE(o) − o_y` for logits up to 30: each log-sum-exp rounds by a few ε
/// times the logits' magnitude.
pub(super) const LOG_FORMS: f64 = 450.0 * f64::EPSILON;
/// `S(x + c)` against `S(x)` for `|x + c| ≤ 1030`: the shift rounds each exponent by up to
/// `1030 ε`, which moves `S` by twice that relatively (numerator and normaliser); doubled again.
pub(super) const SHIFTED_SOFTMAX: f64 = 4.0 * 1030.0 * f64::EPSILON;
/// The midpoint sum of 4000 cells of H over `|x| ≤ 101`: 4000 additions of terms up to 101/4000,
/// each rounding by ε of the partial sum (≤ 101).
pub(super) const MIDPOINT_SUM: f64 = 4000.0 * 101.0 * f64::EPSILON;
/// a_k against H(x) at k = 4¹⁹ for `|x| ≥ 10⁻⁶`: `e^(−kx)` is below `e^(−2.7·10⁵)`, so only the
/// rounding of a few operations on values ≤ 1 remains (generously: 4 500 ε ≈ 10⁻¹²).
pub(super) const STEEP_LIMIT_GAP: f64 = 4500.0 * f64::EPSILON;
/// The negative entropy `Σ p ln p` of a few probabilities with `ln p` down to about −700: each
/// term rounds by a few ε times 700.
pub(super) const ENTROPY_ROUNDING: f64 = 4500.0 * f64::EPSILON;
/// The threshold of 2g's claim (not a rounding tolerance): at `oᵃ = −10, y = 1` the MSE
/// gradient `2σ(1 − σ)·(σ − 1)` is below 10⁻⁴ while the cross-entropy's is near −1.
pub(super) const SATURATED: f64 = 1e-4;
