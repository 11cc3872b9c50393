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
