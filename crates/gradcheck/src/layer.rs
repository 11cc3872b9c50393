//! Gradient checks of layers, and the conformance check of the `Layer` contract.

use std::fmt;

use nalgebra::DMatrix;
use retroprop_core::rng::Rng;
use retroprop_layers::{Layer, LayerError};
use serde::Serialize;

use crate::diff::{Config, Report, check_tensor, sample};

/// The random upstream gradient `G` (entries uniform in `[−1, 1)`) that turns a layer into the
/// scalar function `L(x, θ) = ⟨G, f(x; θ)⟩` checked by [`check_layer`].
pub fn upstream(rows: usize, cols: usize, rng: &mut Rng) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |_, _| rng.uniform(-1.0, 1.0))
}

/// Proves a layer's backward pass against central finite differences, in f64.
///
/// With a seeded random upstream gradient `G`, the layer defines `L(x, θ) = ⟨G, f(x; θ)⟩`, whose
/// gradients are exactly what `backward(G)` must return (`dL/dx`) and accumulate (`dL/dθ`). The
/// report has one tensor for the input and one per parameter (named by its path).
///
/// The layer is left with its parameters unchanged, its gradients holding `dL/dθ` for `G`, and
/// the cache of the last evaluation.
///
/// ```
/// use nalgebra::DMatrix;
/// use retroprop_gradcheck::{Config, check_layer};
/// use retroprop_layers::{Dense, Init, LayerError};
///
/// # fn main() -> Result<(), LayerError> {
/// let mut dense = Dense::<f64>::new(5, 3, Init::XavierUniform { seed: 1 })?;
/// let x = DMatrix::from_fn(5, 4, |i, j| (i as f64 - 2.0) * 0.3 + j as f64 * 0.1);
/// let report = check_layer(&mut dense, &x, &Config::default())?;
/// assert!(report.passed(), "{report}");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// The layer's own error if it rejects `x` or its gradient.
pub fn check_layer(
    layer: &mut dyn Layer<f64>,
    x: &DMatrix<f64>,
    config: &Config,
) -> Result<Report, LayerError> {
    let mut rng = Rng::new(config.seed);
    let y = layer.infer(x)?;
    let g = upstream(y.nrows(), y.ncols(), &mut rng);
    check_with_loss(layer, x, |y| (y.dot(&g), g.clone()), config)
}

/// Proves a network end to end through a loss: `L(x, θ) = loss(f(x; θ))`, where
/// `loss(y)` returns the loss value and its gradient `dL/dy` (what a loss crate returns). The
/// report covers `dL/dx` and every parameter gradient — the whole backward pass from the loss
/// down to the input.
///
/// ```
/// use nalgebra::DMatrix;
/// use retroprop_gradcheck::{Config, check_with_loss};
/// use retroprop_layers::{Dense, Init, LayerError};
///
/// # fn main() -> Result<(), LayerError> {
/// let mut dense = Dense::<f64>::new(3, 2, Init::XavierUniform { seed: 4 })?;
/// let x = DMatrix::from_fn(3, 5, |i, j| (i + 2 * j) as f64 * 0.1 - 0.4);
/// // L = ½‖y‖², dL/dy = y
/// let report = check_with_loss(&mut dense, &x, |y| (0.5 * y.norm_squared(), y.clone()), &Config::default())?;
/// assert!(report.passed(), "{report}");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// The layer's own error if it rejects `x` or the gradient.
pub fn check_with_loss(
    layer: &mut dyn Layer<f64>,
    x: &DMatrix<f64>,
    mut loss: impl FnMut(&DMatrix<f64>) -> (f64, DMatrix<f64>),
    config: &Config,
) -> Result<Report, LayerError> {
    let mut rng = Rng::new(config.seed ^ 0xC0FF_EE00);
    let y = layer.forward(x)?;
    let (_, grad_y) = loss(&y);
    layer.zero_grad();
    let grad_x = layer.backward(&grad_y)?;
    let mut params: Vec<(String, DMatrix<f64>, DMatrix<f64>)> = Vec::new();
    layer.visit_params(&mut |path, p| {
        params.push((path.to_string(), p.value().clone(), p.grad().clone()));
    });
    let mut value = |layer: &mut dyn Layer<f64>, x: &DMatrix<f64>| -> Result<f64, LayerError> {
        Ok(loss(&layer.forward(x)?).0)
    };

    let tol = config.tolerance;
    let mut tensors = Vec::with_capacity(1 + params.len());
    let mut point = x.clone();
    let indices = sample(x.len(), config.max_entries, &mut rng);
    tensors.push(check_tensor(
        "input".to_string(),
        x.shape(),
        x.as_slice(),
        grad_x.as_slice(),
        &indices,
        &tol,
        |i, v| {
            point[i] = v;
            let l = value(layer, &point);
            point[i] = x[i];
            l
        },
    )?);

    for (k, (path, theta, grad)) in params.iter().enumerate() {
        let indices = sample(theta.len(), config.max_entries, &mut rng);
        let set = |layer: &mut dyn Layer<f64>, i: usize, v: f64| {
            let mut seen = 0;
            layer.visit_params_mut(&mut |_, p| {
                if seen == k {
                    p.value_mut()[i] = v;
                }
                seen += 1;
            });
        };
        tensors.push(check_tensor(
            path.clone(),
            theta.shape(),
            theta.as_slice(),
            grad.as_slice(),
            &indices,
            &tol,
            |i, v| {
                set(layer, i, v);
                let l = value(layer, x);
                set(layer, i, theta[i]);
                l
            },
        )?);
    }
    Ok(Report {
        tolerance: tol,
        tensors,
    })
}

/// One clause of the [`conformance`] check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Clause {
    /// What is checked.
    pub name: &'static str,
    /// `true` if the layer honours the clause.
    pub passed: bool,
    /// The largest deviation measured (0 for yes/no clauses).
    pub worst_error: f64,
    /// What was observed, for a person reading a failure.
    pub detail: String,
}

/// The result of [`conformance`]: the gradient check and each clause of the `Layer` contract.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conformance {
    /// Finite-difference check of `dL/dx` and every parameter gradient.
    pub gradients: Report,
    /// The contract's other clauses.
    pub clauses: Vec<Clause>,
}

impl Conformance {
    /// `true` if the gradients pass and every clause holds.
    pub fn passed(&self) -> bool {
        self.gradients.passed() && self.clauses.iter().all(|c| c.passed)
    }
}

impl fmt::Display for Conformance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gradients {}", self.gradients)?;
        for c in &self.clauses {
            writeln!(
                f,
                "{} {}: {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            )?;
        }
        Ok(())
    }
}

/// Tolerance for identities that hold exactly in real arithmetic and differ only by rounding
/// (a batch's gradient against the sum of per-example gradients: GEMM sums in another order).
const REASSOCIATION_TOL: f64 = 1e-10;

fn param_grads(layer: &dyn Layer<f64>) -> Vec<DMatrix<f64>> {
    let mut out = Vec::new();
    layer.visit_params(&mut |_, p| out.push(p.grad().clone()));
    out
}

/// Largest `|a − b| / max(1, |a|, |b|)` over matching entries.
fn max_deviation<'a>(
    a: impl IntoIterator<Item = &'a f64>,
    b: impl IntoIterator<Item = &'a f64>,
) -> f64 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()).max(1.0))
        .fold(
            0.0,
            |m, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
        )
}

/// Checks, in one call, that a layer honours the whole `Layer` contract:
///
/// 1. its gradients pass [`check_layer`] at `x`;
/// 2. a batch's gradients equal the sum of the per-example gradients (and its `dL/dx` the
///    per-example ones, column by column);
/// 3. `zero_grad` really zeroes every parameter gradient;
/// 4. calling `backward` twice after one `forward` accumulates twice;
/// 5. `backward` before any `forward` is `Err(LayerError::NoForwardCache)`;
/// 6. `infer(x)` equals `forward(x)` (the inference path computes the same function);
/// 7. `backward_params(g)` adds exactly the parameter gradients `backward(g)` adds (it may only
///    skip `dL/dx`).
///
/// `make` builds a fresh layer (or fails with the constructor's error); it is called twice and
/// must build the same layer each time (use a fixed seed). `x` should have at least two columns
/// for clause 2 to mean anything.
///
/// ```
/// use nalgebra::DMatrix;
/// use retroprop_gradcheck::{Config, conformance};
/// use retroprop_layers::{Dense, Init, LayerError};
///
/// # fn main() -> Result<(), LayerError> {
/// let x = DMatrix::from_fn(4, 3, |i, j| (i * 3 + j) as f64 * 0.1 - 0.5);
/// let result = conformance(|| Dense::new(4, 2, Init::XavierUniform { seed: 9 }), &x, &Config::default())?;
/// assert!(result.passed(), "{result}");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// The constructor's error, or the layer's own error if it rejects `x` (clause 5 expects an
/// error and reports otherwise).
pub fn conformance<L: Layer<f64>>(
    mut make: impl FnMut() -> Result<L, LayerError>,
    x: &DMatrix<f64>,
    config: &Config,
) -> Result<Conformance, LayerError> {
    let mut clauses = Vec::new();

    // 5. backward before forward
    let mut fresh = make()?;
    let probe_rows = fresh.infer(x)?.nrows();
    let early = fresh.backward(&DMatrix::zeros(probe_rows, x.ncols()));
    clauses.push(Clause {
        name: "backward before forward is NoForwardCache",
        passed: matches!(early, Err(LayerError::NoForwardCache { .. })),
        worst_error: 0.0,
        detail: format!("got {:?}", early.map(|m| m.shape())),
    });

    // 1. gradients
    let mut layer = make()?;
    let gradients = check_layer(&mut layer, x, config)?;

    // 2. batch = sum of examples
    let mut rng = Rng::new(config.seed ^ 0x5EED);
    let y = layer.forward(x)?;
    let g = upstream(y.nrows(), y.ncols(), &mut rng);
    layer.zero_grad();
    let batch_dx = layer.backward(&g)?;
    let batch_grads = param_grads(&layer);
    layer.zero_grad();
    let mut worst_dx: f64 = 0.0;
    for j in 0..x.ncols() {
        let xj = x.columns(j, 1).into_owned();
        layer.forward(&xj)?;
        let dxj = layer.backward(&g.columns(j, 1).into_owned())?;
        worst_dx = worst_dx.max(max_deviation(dxj.iter(), batch_dx.column(j).iter()));
    }
    let summed = param_grads(&layer);
    let worst_params = batch_grads
        .iter()
        .zip(&summed)
        .map(|(a, b)| max_deviation(a.iter(), b.iter()))
        .fold(0.0, f64::max);
    let worst = worst_dx.max(worst_params);
    clauses.push(Clause {
        name: "batch gradient = sum of per-example gradients",
        passed: worst <= REASSOCIATION_TOL,
        worst_error: worst,
        detail: format!(
            "{} examples; largest deviation {worst:.2e} (dL/dx {worst_dx:.2e}, parameters {worst_params:.2e})",
            x.ncols()
        ),
    });

    // 3. zero_grad zeroes
    layer.zero_grad();
    let nonzero: usize = param_grads(&layer)
        .iter()
        .map(|g| g.iter().filter(|&&v| v != 0.0).count())
        .sum();
    clauses.push(Clause {
        name: "zero_grad zeroes every gradient",
        passed: nonzero == 0,
        worst_error: nonzero as f64,
        detail: format!("{nonzero} non-zero gradient entries after zero_grad"),
    });

    // 4. two backward calls accumulate twice
    layer.forward(x)?;
    let dx1 = layer.backward(&g)?;
    let once = param_grads(&layer);
    let dx2 = layer.backward(&g)?;
    let twice = param_grads(&layer);
    let doubled: Vec<DMatrix<f64>> = once.iter().map(|m| m * 2.0).collect();
    let worst_acc = doubled
        .iter()
        .zip(&twice)
        .map(|(a, b)| max_deviation(a.iter(), b.iter()))
        .fold(max_deviation(dx1.iter(), dx2.iter()), f64::max);
    clauses.push(Clause {
        name: "backward twice accumulates twice",
        passed: worst_acc <= REASSOCIATION_TOL,
        worst_error: worst_acc,
        detail: format!("largest deviation of the second pass from 2× the first: {worst_acc:.2e}"),
    });

    // 6. infer = forward
    let inferred = layer.infer(x)?;
    let forwarded = layer.forward(x)?;
    let worst_infer = if inferred.shape() == forwarded.shape() {
        max_deviation(inferred.iter(), forwarded.iter())
    } else {
        f64::INFINITY
    };
    clauses.push(Clause {
        name: "infer equals forward",
        passed: worst_infer <= REASSOCIATION_TOL,
        worst_error: worst_infer,
        detail: format!(
            "infer {:?}, forward {:?}; largest deviation {worst_infer:.2e}",
            inferred.shape(),
            forwarded.shape()
        ),
    });

    // 7. backward_params adds the parameter gradients of backward
    layer.zero_grad();
    layer.forward(x)?;
    layer.backward(&g)?;
    let by_backward = param_grads(&layer);
    layer.zero_grad();
    layer.forward(x)?;
    layer.backward_params(&g)?;
    let by_params = param_grads(&layer);
    let worst_bp = if by_backward.len() == by_params.len() {
        by_backward
            .iter()
            .zip(&by_params)
            .map(|(a, b)| max_deviation(a.iter(), b.iter()))
            .fold(0.0, f64::max)
    } else {
        f64::INFINITY
    };
    clauses.push(Clause {
        name: "backward_params adds what backward adds",
        passed: worst_bp <= REASSOCIATION_TOL,
        worst_error: worst_bp,
        detail: format!("largest deviation of the parameter gradients: {worst_bp:.2e}"),
    });

    Ok(Conformance { gradients, clauses })
}

#[cfg(test)]
mod tests {
    use super::max_deviation;

    #[test]
    fn deviations_are_relative_above_one_and_absolute_below() {
        // 10⁶ against 10⁶ + 1: one part in a million, however large the values
        let d = max_deviation(&[1e6, 0.5], &[1e6 + 1.0, 0.5]);
        assert!((d - 1.0 / (1e6 + 1.0)).abs() < 1e-18, "{d}");
        // below 1 in magnitude the difference itself
        assert_eq!(max_deviation(&[0.25], &[0.5]), 0.25);
        // a NaN anywhere is the worst deviation
        assert_eq!(max_deviation(&[1.0, f64::NAN], &[1.0, 2.0]), f64::INFINITY);
        assert_eq!(max_deviation(&[], &[]), 0.0);
    }
}
