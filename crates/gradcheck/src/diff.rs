//! Central finite differences and the report they produce.

use std::convert::Infallible;
use std::fmt;

use nalgebra::DMatrix;
use retroprop_core::rng::Rng;
use serde::Serialize;

/// Base step of the central difference, relative to the entry's magnitude:
/// `h = STEP · max(1, |θᵢ|)`, with `STEP = ε^(1/3) ≈ 6.06·10⁻⁶` for f64.
///
/// The central difference `(f(θ + h) − f(θ − h)) / 2h` errs by `h² |f'''| / 6` (truncation) plus
/// about `ε |f| / h` (rounding); `h ∝ ε^(1/3)` balances the two, leaving an error near
/// `ε^(2/3) ≈ 4·10⁻¹¹` for a well-scaled function.
pub const STEP: f64 = 6.055_454_452_393_343e-6;

/// Smaller steps tried, in order, when an entry fails with [`STEP`]: a perturbation that
/// crosses a kink (ReLU at 0, a max-pool tie) spoils the difference only for steps larger than
/// the distance to the kink, while a wrong gradient fails at every step.
pub const RETRY_DIVISORS: [f64; 2] = [10.0, 100.0];

/// The two points of the central difference at `x` with step `STEP · max(1, |x|) / divisor`.
fn points(x: f64, divisor: f64) -> (f64, f64) {
    let h = STEP * x.abs().max(1.0) / divisor;
    (x + h, x - h)
}

/// `f'(x)` by the central difference this crate checks with: `(f(x + h) − f(x − h)) /
/// ((x + h) − (x − h))`, `h = STEP · max(1, |x|)` (the divisor is the step actually taken).
///
/// ```
/// let d = retroprop_gradcheck::derivative(f64::sin, 0.5);
/// assert!((d - 0.5f64.cos()).abs() < 1e-10);
/// ```
pub fn derivative(mut f: impl FnMut(f64) -> f64, x: f64) -> f64 {
    let (xp, xm) = points(x, 1.0);
    (f(xp) - f(xm)) / (xp - xm)
}

/// When an entry passes: `|analytic − numeric| ≤ abs + rel · max(|analytic|, |numeric|)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Tolerance {
    /// Absolute part, for entries near zero.
    pub abs: f64,
    /// Relative part.
    pub rel: f64,
}

impl Default for Tolerance {
    /// `abs = 1e-7`, `rel = 1e-5`: a hundred times the expected error of a central difference
    /// on a well-scaled f64 function (see [`STEP`]), and orders of magnitude below the error of
    /// any wrong formula (a dropped transpose or factor errs by O(1)).
    fn default() -> Self {
        Self {
            abs: 1e-7,
            rel: 1e-5,
        }
    }
}

impl Tolerance {
    /// The largest error allowed for this pair.
    pub fn allowed(&self, analytic: f64, numeric: f64) -> f64 {
        self.abs + self.rel * analytic.abs().max(numeric.abs())
    }
}

/// How a check runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Config {
    /// Pass/fail threshold per entry.
    pub tolerance: Tolerance,
    /// At most this many entries of each tensor are checked (a seeded random sample beyond it).
    pub max_entries: usize,
    /// Seed of the random upstream gradient and of the sample.
    pub seed: u64,
}

impl Default for Config {
    /// Default tolerance, up to 1024 entries per tensor, seed 0.
    fn default() -> Self {
        Self {
            tolerance: Tolerance::default(),
            max_entries: 1024,
            seed: 0,
        }
    }
}

/// One checked entry.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// `(row, column)` in the tensor.
    pub index: (usize, usize),
    /// The gradient the code computed.
    pub analytic: f64,
    /// The central-difference estimate (the best of the steps tried).
    pub numeric: f64,
    /// `|analytic − numeric|`.
    pub abs_error: f64,
    /// `|analytic − numeric| / max(|analytic|, |numeric|)` (0 if both are 0).
    pub rel_error: f64,
    /// Error over the allowed error: the entry passes when this is ≤ 1.
    pub ratio: f64,
}

impl Entry {
    fn new(index: (usize, usize), analytic: f64, numeric: f64, tol: &Tolerance) -> Self {
        let abs_error = (analytic - numeric).abs();
        let scale = analytic.abs().max(numeric.abs());
        let rel_error = if scale == 0.0 { 0.0 } else { abs_error / scale };
        let ratio = abs_error / tol.allowed(analytic, numeric);
        Self {
            index,
            analytic,
            numeric,
            abs_error,
            rel_error,
            // NaN anywhere must fail, not hide behind a comparison
            ratio: if ratio.is_nan() { f64::INFINITY } else { ratio },
        }
    }

    /// `true` if within tolerance.
    pub fn passed(&self) -> bool {
        self.ratio <= 1.0
    }
}

/// The check of one tensor (the input, or one parameter).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorReport {
    /// `"input"`, or the parameter's path (`"weight"`, `"2.bias"`).
    pub name: String,
    /// `(rows, columns)` of the tensor.
    pub shape: (usize, usize),
    /// Entries checked.
    pub checked: usize,
    /// Entries that passed only with a smaller step (near a kink).
    pub retried: usize,
    /// Entries that failed.
    pub failed: usize,
    /// The entry with the largest error ratio (the first of equals, in column-major order), if
    /// any was checked.
    pub worst: Option<Entry>,
}

/// The result of a gradient check: one [`TensorReport`] per tensor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The tolerance the entries were held to.
    pub tolerance: Tolerance,
    /// Per tensor, in order: input first, then parameters.
    pub tensors: Vec<TensorReport>,
}

impl Report {
    /// `true` if every checked entry is within tolerance.
    pub fn passed(&self) -> bool {
        self.tensors.iter().all(|t| t.failed == 0)
    }

    /// Entries checked in all.
    pub fn checked(&self) -> usize {
        self.tensors.iter().map(|t| t.checked).sum()
    }

    /// The worst entry over all tensors, with its tensor's name.
    pub fn worst(&self) -> Option<(&str, &Entry)> {
        self.tensors
            .iter()
            .filter_map(|t| t.worst.as_ref().map(|w| (t.name.as_str(), w)))
            .max_by(|a, b| a.1.ratio.total_cmp(&b.1.ratio))
    }

    /// Largest `|analytic − numeric|` over all entries checked.
    pub fn max_abs_error(&self) -> f64 {
        self.tensors
            .iter()
            .filter_map(|t| t.worst.map(|w| w.abs_error))
            .fold(0.0, f64::max)
    }

    /// Largest relative error of the worst entries.
    pub fn max_rel_error(&self) -> f64 {
        self.tensors
            .iter()
            .filter_map(|t| t.worst.map(|w| w.rel_error))
            .fold(0.0, f64::max)
    }
}

impl fmt::Display for Report {
    /// One line per tensor: name, entries checked, worst error; failing entries in full.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} entries checked, tolerance |Δ| ≤ {:e} + {:e}·max(|a|, |n|)",
            if self.passed() { "PASS" } else { "FAIL" },
            self.checked(),
            self.tolerance.abs,
            self.tolerance.rel
        )?;
        for t in &self.tensors {
            write!(
                f,
                "  {:<12} {:>4}×{:<5} {:>6} checked",
                t.name, t.shape.0, t.shape.1, t.checked
            )?;
            if let Some(w) = &t.worst {
                write!(f, ", worst rel {:.2e} abs {:.2e}", w.rel_error, w.abs_error)?;
                if t.failed > 0 {
                    write!(
                        f,
                        " — FAIL {} entries; at [{}, {}]: analytic {:.9e}, numeric {:.9e}",
                        t.failed, w.index.0, w.index.1, w.analytic, w.numeric
                    )?;
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// The flat (column-major) indices to check in a tensor of `total` entries: all of them, or a
/// seeded sample of `max` without repetition, in increasing order.
pub(crate) fn sample(total: usize, max: usize, rng: &mut Rng) -> Vec<usize> {
    let mut all: Vec<usize> = (0..total).collect();
    if total > max {
        // partial Fisher–Yates: the first `max` slots become a uniform sample
        for i in 0..max {
            let j = i + rng.below(total - i);
            all.swap(i, j);
        }
        all.truncate(max);
        all.sort_unstable();
    }
    all
}

/// Checks the entries `indices` of one tensor.
///
/// `values` and `analytic` are the tensor's value and claimed gradient (column-major,
/// `rows × cols`); `eval(i, v)` returns the scalar function with flat entry `i` set to `v` (and
/// must leave the point unchanged afterwards).
pub(crate) fn check_tensor<E>(
    name: String,
    (rows, cols): (usize, usize),
    values: &[f64],
    analytic: &[f64],
    indices: &[usize],
    tol: &Tolerance,
    mut eval: impl FnMut(usize, f64) -> Result<f64, E>,
) -> Result<TensorReport, E> {
    let mut report = TensorReport {
        name,
        shape: (rows, cols),
        checked: 0,
        retried: 0,
        failed: 0,
        worst: None,
    };
    for &i in indices {
        let x0 = values[i];
        let index = (i % rows.max(1), i / rows.max(1));
        let mut best: Option<Entry> = None;
        let mut retried = false;
        for divisor in std::iter::once(1.0).chain(RETRY_DIVISORS) {
            let (xp, xm) = points(x0, divisor);
            // xp − xm is exact here (Sterbenz), so the divisor is the step actually taken
            let numeric = (eval(i, xp)? - eval(i, xm)?) / (xp - xm);
            let entry = Entry::new(index, analytic[i], numeric, tol);
            let better = best.is_none_or(|b| entry.ratio < b.ratio);
            if better {
                best = Some(entry);
            }
            if entry.passed() {
                break;
            }
            retried = true;
        }
        let entry = best.expect("at least one step");
        report.checked += 1;
        if !entry.passed() {
            report.failed += 1;
        } else if retried {
            report.retried += 1;
        }
        if report.worst.is_none_or(|w| entry.ratio > w.ratio) {
            report.worst = Some(entry);
        }
    }
    Ok(report)
}

/// Checks a claimed gradient of any function `ℝⁿ → ℝ` at a point.
///
/// ```
/// use retroprop_gradcheck::{Config, check_gradient};
///
/// // f(x) = x₀² x₁, ∇f = (2 x₀ x₁, x₀²)
/// let f = |x: &[f64]| x[0] * x[0] * x[1];
/// let at = [3.0, -2.0];
/// let report = check_gradient(f, &at, &[2.0 * 3.0 * -2.0, 9.0], &Config::default());
/// assert!(report.passed(), "{report}");
/// let wrong = check_gradient(f, &at, &[-12.0, 3.0], &Config::default());
/// assert!(!wrong.passed());
/// ```
///
/// # Panics
/// If `analytic` and `at` differ in length.
pub fn check_gradient(
    mut f: impl FnMut(&[f64]) -> f64,
    at: &[f64],
    analytic: &[f64],
    config: &Config,
) -> Report {
    assert_eq!(
        at.len(),
        analytic.len(),
        "gradient and point differ in length"
    );
    let column = |v: &[f64]| DMatrix::from_column_slice(v.len(), 1, v);
    check_point(
        "x",
        |m| f(m.as_slice()),
        &column(at),
        &column(analytic),
        config,
    )
}

/// Checks the gradient of a scalar function of a batch matrix (a loss of predictions, say):
/// `analytic` must be `dL/dm` at `at`, same shape.
///
/// ```
/// use nalgebra::DMatrix;
/// use retroprop_gradcheck::{Config, check_batch_gradient};
///
/// // L(M) = ½‖M‖², dL/dM = M
/// let m = DMatrix::from_fn(3, 4, |i, j| i as f64 - j as f64 * 0.5);
/// let r = check_batch_gradient(|x| 0.5 * x.norm_squared(), &m, &m, &Config::default());
/// assert!(r.passed(), "{r}");
/// ```
///
/// # Panics
/// If `analytic` and `at` differ in shape.
pub fn check_batch_gradient(
    f: impl FnMut(&DMatrix<f64>) -> f64,
    at: &DMatrix<f64>,
    analytic: &DMatrix<f64>,
    config: &Config,
) -> Report {
    assert_eq!(
        at.shape(),
        analytic.shape(),
        "gradient and point differ in shape"
    );
    check_point("batch", f, at, analytic, config)
}

/// Checks `analytic` against central differences of `f` at `at` (same shapes).
fn check_point(
    name: &str,
    mut f: impl FnMut(&DMatrix<f64>) -> f64,
    at: &DMatrix<f64>,
    analytic: &DMatrix<f64>,
    config: &Config,
) -> Report {
    let mut rng = Rng::new(config.seed);
    let indices = sample(at.len(), config.max_entries, &mut rng);
    let mut point = at.clone();
    let Ok(tensor) = check_tensor::<Infallible>(
        name.to_string(),
        at.shape(),
        at.as_slice(),
        analytic.as_slice(),
        &indices,
        &config.tolerance,
        |i, v| {
            point[i] = v;
            let value = f(&point);
            point[i] = at[i];
            Ok(value)
        },
    );
    Report {
        tolerance: config.tolerance,
        tensors: vec![tensor],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_grows_with_the_entry() {
        // d(x³)/dx at 1000 is 3·10⁶: with h = STEP·|x| the rounding error ε|f|/h stays near
        // 10⁻¹⁰ relative; a step that did not grow with |x| (STEP/|x|) would err by ~10⁷
        for x in [1e3_f64, -2.5e4] {
            let d = derivative(|v| v * v * v, x);
            let want = 3.0 * x * x;
            assert!(
                ((d - want) / want).abs() < 1e-8,
                "x = {x}: {d} against {want}"
            );
        }
    }

    #[test]
    fn the_worst_entry_is_the_first_of_equally_wrong_ones() {
        // f = x₀ + x₁ + x₂ (gradient 1, 1, 1), claimed (1, 3, 3): entries 1 and 2 equally wrong
        let f = |x: &[f64]| x.iter().sum::<f64>();
        let report = check_gradient(f, &[0.5, 0.5, 0.5], &[1.0, 3.0, 3.0], &Config::default());
        let worst = report.tensors[0].worst.expect("three entries checked");
        assert_eq!((worst.index, worst.analytic), ((1, 0), 3.0));
        assert_eq!(report.tensors[0].failed, 2);
    }

    #[test]
    fn sample_is_all_or_a_sorted_subset() {
        let mut rng = Rng::new(1);
        assert_eq!(sample(5, 10, &mut rng), vec![0, 1, 2, 3, 4]);
        let s = sample(1000, 50, &mut rng);
        assert_eq!(s.len(), 50);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert!(s.iter().all(|&i| i < 1000));
    }

    #[test]
    fn a_kink_is_retried_with_smaller_steps() {
        // |x| at x = 2e-6: the base step crosses 0, the smaller ones do not
        let r = check_gradient(|x| x[0].abs(), &[2e-6], &[1.0], &Config::default());
        assert!(r.passed(), "{r}");
        assert_eq!(r.tensors[0].retried, 1);
    }

    #[test]
    fn nan_gradient_fails() {
        let r = check_gradient(|x| x[0] * 2.0, &[1.0], &[f64::NAN], &Config::default());
        assert!(!r.passed());
    }
}
