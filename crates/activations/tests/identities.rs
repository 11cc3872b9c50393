//! Property tests: every identity of part 1 of the homework (questions 1a–1m), over wide random
//! ranges, in f64 with stated tolerances and in f32 where meaningful. Derivatives are checked
//! against central finite differences, never against the formula they implement.

use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use retroprop_activations::{
    heaviside, indicator, log_softmax, log_softmax_vjp, relu, relu_prime, sigmoid, sigmoid_prime,
    sign, softmax, softmax_jacobian, softmax_vjp, softplus, softplus_prime, steep_logistic,
    tanh_prime, vector,
};

/// Central-difference step for f64: `ε^(1/3) ≈ 6·10⁻⁶`, scaled to the point, balancing the
/// truncation error `O(h²)` against the rounding error `O(ε/h)`.
const FD_STEP: f64 = 6.055_454_452_393_343e-6;
/// Tolerance for a derivative from central differences of a smooth function of O(1) size:
/// truncation ~h²·|f'''| ≈ 4·10⁻¹¹, rounding ~ε/h ≈ 4·10⁻¹¹; 1e-8 leaves a wide margin.
const FD_TOL: f64 = 1e-8;

fn step(x: f64) -> f64 {
    FD_STEP * x.abs().max(1.0)
}

/// `f'(x)` by central differences.
fn fd(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    let h = step(x);
    (f(x + h) - f(x - h)) / (2.0 * h)
}

/// Jacobian `∂f(x)ᵢ/∂xⱼ` of a vector map by central differences.
fn fd_jacobian(f: impl Fn(&DVector<f64>) -> DVector<f64>, x: &DVector<f64>) -> DMatrix<f64> {
    let m = f(x).len();
    let mut j = DMatrix::zeros(m, x.len());
    for k in 0..x.len() {
        let h = step(x[k]);
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[k] += h;
        xm[k] -= h;
        j.set_column(k, &((f(&xp) - f(&xm)) / (2.0 * h)));
    }
    j
}

/// Gradient of a scalar function of a vector by central differences.
fn fd_gradient(f: impl Fn(&DVector<f64>) -> f64, x: &DVector<f64>) -> DVector<f64> {
    let g = fd_jacobian(|v| DVector::from_element(1, f(v)), x);
    g.row(0).transpose()
}

#[track_caller]
fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    let scale = want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tol * scale,
        "{what}: got {got}, want {want}, |diff| {} > {tol} (scaled by {scale})",
        (got - want).abs()
    );
}

#[track_caller]
fn assert_mat_close(got: &DMatrix<f64>, want: &DMatrix<f64>, tol: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    for (g, w) in got.iter().zip(want.iter()) {
        assert_close(*g, *w, tol, what);
    }
}

/// Relative tolerance for `S(x + c) = S(x)` in a type with machine epsilon `eps`.
///
/// Error analysis: each `xᵢ + c` is rounded to within `ε/2·(|c| + max|x|)` (half an ulp of the
/// largest possible sum). `Sᵢ = exp(xᵢ − LSE(x))` depends on the differences `xᵢ − xⱼ`, and a
/// perturbation `δ` of the inputs moves `ln Sᵢ` by `δᵢ − Σⱼ Sⱼ δⱼ`, at most `2·max|δ|`: so the
/// shift alone moves `Sᵢ` by at most `ε·(|c| + max|x|)` relatively. Evaluating the softmax twice
/// adds a few ε each time (the exponential, the sum of up to ten terms, the division): 16 ε
/// covers both. The bound is doubled for safety: near `|c| + max|x| ≈ 1050` one ulp of f32 is
/// `1.2·10⁻⁴`, which is why a fixed `1e-4` failed in about 2 % of runs.
fn shift_tolerance<T: Into<f64>>(eps: T, c: T, x_max: T) -> f64 {
    let (eps, c, x_max) = (eps.into(), c.into(), x_max.into());
    eps * (2.0 * (c.abs() + x_max) + 16.0)
}

/// Entries of `S` below the normal range (`e^−100` underflows f32's normal range) carry an
/// absolute error of a few of the smallest subnormals, not a relative one: 16 smallest normal
/// numbers bound it.
const SUBNORMAL_SLACK_F64: f64 = 16.0 * f64::MIN_POSITIVE;
/// The same for f32 (`f32::MIN_POSITIVE ≈ 1.2·10⁻³⁸`).
const SUBNORMAL_SLACK_F32: f32 = 16.0 * f32::MIN_POSITIVE;

/// Failing cases are saved in the crate's `proptest-regressions/` (committed) and replayed first.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/identities.txt",
        ))),
        ..ProptestConfig::default()
    }
}

fn vec_strategy(lo: f64, hi: f64, max_len: usize) -> impl Strategy<Value = DVector<f64>> {
    prop::collection::vec(lo..hi, 1..=max_len).prop_map(DVector::from_vec)
}

/// Finite or wide values, including exact zeros and signed zeros.
fn wide_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        -1e300..1e300_f64,
        -1e3..1e3_f64,
        -1e-300..1e-300_f64,
    ]
}

proptest! {
    #![proptest_config(config())]
    // 1a: sign(x) = 1_{x>0}(x) − 1_{x<0}(x), against the homework's case definition.
    #[test]
    fn q1a_sign_is_a_difference_of_indicators(x in wide_f64()) {
        let by_cases = if x > 0.0 { 1.0 } else if x < 0.0 { -1.0 } else { 0.0 };
        prop_assert_eq!(sign(x), by_cases);
        prop_assert_eq!(sign(x), indicator(x, |v| v > 0.0) - indicator(x, |v| v < 0.0));
        let xf = x as f32; // may round to ±0
        let by_cases_f32 = if xf > 0.0 { 1.0 } else if xf < 0.0 { -1.0 } else { 0.0 };
        prop_assert_eq!(sign(xf), by_cases_f32);
    }

    // 1b: where ReLU is differentiable (x ≠ 0) its derivative is H(x).
    #[test]
    fn q1b_relu_derivative_is_heaviside(x in prop_oneof![-1e6..-1e-3_f64, 1e-3..1e6_f64]) {
        let numeric = fd(relu, x);
        prop_assert!((numeric - heaviside(x)).abs() < FD_TOL, "fd {numeric} vs H {}", heaviside(x));
        prop_assert_eq!(relu_prime(x), heaviside(x));
    }

    // 1c: two definitions of ReLU through H: g(x) = x·H(x) and g(x) = ∫_{−∞}^{x} H(t) dt.
    #[test]
    fn q1c_relu_through_heaviside(x in -1e3..1e3_f64) {
        prop_assert_eq!(relu(x), x * heaviside(x));
        prop_assert_eq!(relu(x), x.max(0.0));
        // ∫_{−∞}^{x} H = ∫_{a}^{x} H for any a < min(x, 0) since H = 0 below 0: midpoint rule
        // with N cells; H is piecewise constant, so only the cell holding 0 errs, by ≤ width.
        let a = x.min(0.0) - 1.0;
        let n = 20_000;
        let w = (x - a) / f64::from(n);
        let integral: f64 = (0..n).map(|i| heaviside(a + (f64::from(i) + 0.5) * w) * w).sum();
        prop_assert!((integral - relu(x)).abs() <= w * (1.0 + 1e-9) + 1e-9 * x.abs(),
            "∫H = {integral}, relu = {}", relu(x));
    }

    // 1d: a_k(x) = 1/(1 + e^(−kx)) → H(x) as k → ∞: monotone for x ≠ 0, a_k(0) = 1/2.
    #[test]
    fn q1d_steep_logistic_tends_to_heaviside(x in prop_oneof![-1e2..-1e-6_f64, 1e-6..1e2_f64]) {
        let mut last = f64::INFINITY;
        let mut k = 1.0;
        while k < 1e12 {
            let gap = (steep_logistic(k, x) - heaviside(x)).abs();
            prop_assert!(gap <= last, "not monotone at k = {k}: {gap} > {last}");
            last = gap;
            k *= 2.0;
        }
        // k|x| ≥ 10⁶ · 10⁻⁶ · … : by k = 2⁴⁰ the gap is e^(−k|x|) < 10⁻³⁰⁰ or exactly 0.
        prop_assert!(last < 1e-12, "gap {last} at k = {k}");
        prop_assert_eq!(steep_logistic(k, 0.0), 0.5);
    }

    // 1d: at finite k, a_k is the definition 1/(1 + e^(−kx)) itself (not σ(kx/2), not σ(2kx)),
    // where the definition can be evaluated directly (|kx| ≤ 50: no overflow, no cancellation).
    #[test]
    fn q1d_steep_logistic_is_its_definition(k in 0.01..10.0_f64, x in -5.0..5.0_f64) {
        let direct = 1.0 / (1.0 + (-k * x).exp());
        let got = steep_logistic(k, x);
        // a few correctly rounded operations on each side
        prop_assert!((got - direct).abs() <= 8.0 * f64::EPSILON * direct, "a_{k}({x}) = {got}, definition {direct}");
        let (kf, xf) = (k as f32, x as f32);
        let direct_f32 = 1.0 / (1.0 + (-kf * xf).exp());
        prop_assert!((steep_logistic(kf, xf) - direct_f32).abs() <= 8.0 * f32::EPSILON * direct_f32);
    }

    // 1e: σ' = σ(1 − σ) against finite differences, f64 and f32.
    #[test]
    fn q1e_sigmoid_derivative(x in -40.0..40.0_f64) {
        let s = sigmoid(x);
        // the homework's form σ(1 − σ): equal to within the absolute rounding of 1 − σ (2 ε);
        // relatively, σ'(x) = σ(x)σ(−x) to a few ulps (the form without cancellation)
        prop_assert!((sigmoid_prime(x) - s * (1.0 - s)).abs() <= 2.0 * f64::EPSILON);
        let product = s * sigmoid(-x);
        prop_assert!((sigmoid_prime(x) - product).abs() <= 8.0 * f64::EPSILON * product);
        prop_assert!((fd(sigmoid, x) - sigmoid_prime(x)).abs() < FD_TOL);
        let xf = x as f32;
        let sf = sigmoid(xf);
        prop_assert!((sigmoid_prime(xf) - sf * (1.0 - sf)).abs() < 1e-7);
        prop_assert!((f64::from(sigmoid_prime(xf)) - sigmoid_prime(f64::from(xf))).abs() < 1e-7);
    }

    // 1e: the Jacobian of the element-wise logistic is diagonal: J = δ_{i=j} σ(xᵢ)(1 − σ(xᵢ)).
    #[test]
    fn q1e_sigmoid_jacobian_is_diagonal(x in vec_strategy(-20.0, 20.0, 8)) {
        let numeric = fd_jacobian(|v| vector::sigmoid(v), &x);
        let analytic = vector::sigmoid_jacobian(&x);
        assert_mat_close(&analytic, &numeric, FD_TOL, "σ Jacobian");
        for i in 0..x.len() {
            for j in 0..x.len() {
                if i != j {
                    prop_assert_eq!(analytic[(i, j)], 0.0);
                }
            }
        }
    }

    // 1f: ln σ(x) = −softplus(−x). (Where σ(x) underflows, x < −745, only the right-hand side is
    // representable: that is why losses use it.)
    #[test]
    fn q1f_log_sigmoid_is_minus_softplus(x in -700.0..700.0_f64) {
        assert_close(sigmoid(x).ln(), -softplus(-x), 4.0 * f64::EPSILON, "ln σ(x)");
        let xf = (x / 10.0) as f32;
        let lhs = f64::from(sigmoid(xf).ln());
        let rhs = f64::from(-softplus(-xf));
        assert_close(lhs, rhs, 4.0 * f64::from(f32::EPSILON), "ln σ(x) f32");
    }

    // 1g: softplus(x) − softplus(−x) = x, and softplus' = σ (finite differences).
    #[test]
    fn q1g_softplus_identity_and_derivative(x in prop_oneof![-1e6..1e6_f64, -50.0..50.0_f64]) {
        let d = softplus(x) - softplus(-x);
        // each softplus is within 1 ulp of its magnitude; the difference is within 2 ulps
        // of max(|x|, ln 2)
        prop_assert!((d - x).abs() <= 4.0 * f64::EPSILON * x.abs().max(1.0), "{d} vs {x}");
        if x.abs() < 50.0 {
            prop_assert!((fd(softplus, x) - softplus_prime(x)).abs() < FD_TOL);
            prop_assert_eq!(softplus_prime(x), sigmoid(x));
        }
        let xf = x as f32;
        let df = softplus(xf) - softplus(-xf);
        prop_assert!((df - xf).abs() <= 4.0 * f32::EPSILON * xf.abs().max(1.0));
    }

    // 1h: S(x + c) = S(x); 2c: the outputs are positive and sum to 1.
    #[test]
    fn q1h_softmax_is_shift_invariant(x in vec_strategy(-50.0, 50.0, 10), c in -1e3..1e3_f64) {
        let s = softmax(&x);
        let shifted = softmax(&x.add_scalar(c));
        let tol = shift_tolerance(f64::EPSILON, c, x.amax());
        for (a, b) in s.iter().zip(shifted.iter()) {
            prop_assert!((a - b).abs() <= tol * a + SUBNORMAL_SLACK_F64, "{a} vs {b}, tol {tol}");
        }
        prop_assert!(s.iter().all(|&p| p >= 0.0));
        prop_assert!((s.sum() - 1.0).abs() < 1e-14);
        // f32: same property at f32 precision, with the tolerance of f32's ε
        let xf = x.map(|v| v as f32);
        let cf = c as f32;
        let (sf, shf) = (softmax(&xf), softmax(&xf.add_scalar(cf)));
        let tol = shift_tolerance(f32::EPSILON, cf, xf.amax());
        for (a, b) in sf.iter().zip(shf.iter()) {
            let (a, b) = (f64::from(*a), f64::from(*b));
            prop_assert!((a - b).abs() <= tol * a + f64::from(SUBNORMAL_SLACK_F32), "f32 {a} vs {b}, tol {tol}");
        }
    }

    // 1i: scaling by α > 1 sharpens S (max probability and negative entropy do not decrease),
    // 0 < α < 1 flattens it; for α > 0 the arg-max (the predicted class) never changes. (For
    // α < 0 it does, and α = 0 gives the uniform distribution: the next test.)
    #[test]
    fn q1i_softmax_temperature(x in vec_strategy(-10.0, 10.0, 8), alpha in 0.01..10.0_f64) {
        let s = softmax(&x);
        let t = softmax(&(&x * alpha));
        let neg_entropy = |p: &DVector<f64>| p.iter().filter(|&&v| v > 0.0).map(|&v| v * v.ln()).sum::<f64>();
        let slack = 1e-12;
        if alpha >= 1.0 {
            prop_assert!(t.max() >= s.max() - slack);
            prop_assert!(neg_entropy(&t) >= neg_entropy(&s) - slack);
        } else {
            prop_assert!(t.max() <= s.max() + slack);
            prop_assert!(neg_entropy(&t) <= neg_entropy(&s) + slack);
        }
        prop_assert_eq!(x.argmax().0, t.argmax().0);
    }

    // 1i, "plus petit que 1" includes α ≤ 0: α = 0 maps every logit to 0 (uniform output, no
    // arg-max); α < 0 reverses the order, so the predicted class becomes the arg-min of x.
    #[test]
    fn q1i_non_positive_scaling(x in vec_strategy(-10.0, 10.0, 8), alpha in -10.0..-0.01_f64) {
        let n = x.len() as f64;
        prop_assert!(softmax(&(&x * 0.0)).iter().all(|&p| (p - 1.0 / n).abs() <= f64::EPSILON));
        let scaled = &x * alpha;
        let t = softmax(&scaled);
        // where the largest scaled logit is unique, it is the smallest logit's
        if scaled.iter().filter(|&&v| v == scaled.max()).count() == 1 {
            prop_assert_eq!(t.argmax().0, x.argmin().0);
        }
    }

    // 1j/1k: every entry of the softmax Jacobian against finite differences, and it equals
    // diag(S) − S Sᵀ; the matrix-free product equals Jᵀ g.
    #[test]
    fn q1jk_softmax_jacobian(x in vec_strategy(-10.0, 10.0, 8), g in vec_strategy(-3.0, 3.0, 8)) {
        let numeric = fd_jacobian(|v| softmax(v), &x);
        let analytic = softmax_jacobian(&x);
        assert_mat_close(&analytic, &numeric, FD_TOL, "softmax Jacobian");
        let s = softmax(&x);
        for i in 0..x.len() {
            for j in 0..x.len() {
                let delta = if i == j { 1.0 } else { 0.0 };
                assert_close(analytic[(i, j)], s[i] * (delta - s[j]), 1e-15, "S_i(δ_ij − S_j)");
            }
        }
        assert_mat_close(&analytic, &(vector::diag(&s) - &s * s.transpose()), 1e-15, "diag(S) − SSᵀ");
        let n = x.len().min(g.len());
        let (x, g) = (x.rows(0, n).into_owned(), g.rows(0, n).into_owned());
        let (s, jac) = (softmax(&x), softmax_jacobian(&x));
        let vjp = softmax_vjp(&s, &g).unwrap();
        let jtg = jac.transpose() * &g;
        for k in 0..n {
            assert_close(vjp[k], jtg[k], 1e-14, "Jᵀg");
        }
    }
}

/// A random non-linear map x(u) = tanh(A u) + B u and its Jacobian, for question 1l.
fn nonlinear_map(a: &DMatrix<f64>, b: &DMatrix<f64>, u: &DVector<f64>) -> DVector<f64> {
    (a * u).map(f64::tanh) + b * u
}

fn nonlinear_jacobian(a: &DMatrix<f64>, b: &DMatrix<f64>, u: &DVector<f64>) -> DMatrix<f64> {
    let d = (a * u).map(tanh_prime);
    DMatrix::from_diagonal(&d) * a + b
}

fn fixed_vec(len: usize) -> impl Strategy<Value = DVector<f64>> {
    prop::collection::vec(-2.0..2.0_f64, len).prop_map(DVector::from_vec)
}

fn matrix_strategy(rows: usize, cols: usize) -> impl Strategy<Value = DMatrix<f64>> {
    prop::collection::vec(-2.0..2.0_f64, rows * cols)
        .prop_map(move |v| DMatrix::from_vec(rows, cols, v))
}

proptest! {
    #![proptest_config(config())]
    // 1l: ∇_u log S(x(u))ᵢ = ∇_u x(u)ᵢ − E_{j∼S}[∇_u x(u)ⱼ], for a linear and a non-linear x(u).
    #[test]
    fn q1l_gradient_of_log_softmax(
        a in matrix_strategy(5, 3),
        b in matrix_strategy(5, 3),
        c in fixed_vec(5),
        u in fixed_vec(3),
        i in 0usize..5,
        linear in any::<bool>(),
    ) {
        let x_of = |u: &DVector<f64>| if linear { &a * u + &c } else { nonlinear_map(&a, &b, u) };
        let jx = if linear { a.clone() } else { nonlinear_jacobian(&a, &b, &u) };
        let numeric = fd_gradient(|u| log_softmax(&x_of(u))[i], &u);
        let s = softmax(&x_of(&u));
        // right-hand side: ∇x_i − Σ_j S_j ∇x_j, with ∇x_j the j-th row of the Jacobian
        let expectation = jx.transpose() * &s;
        let rhs = jx.row(i).transpose() - expectation;
        for k in 0..3 {
            assert_close(numeric[k], rhs[k], FD_TOL, "1l");
        }
        // the matrix-free product gives the same
        let mut e_i = DVector::zeros(5);
        e_i[i] = 1.0;
        let via_vjp = jx.transpose() * log_softmax_vjp(&s, &e_i).unwrap();
        for k in 0..3 {
            assert_close(via_vjp[k], rhs[k], 1e-14, "1l vjp");
        }
    }

    // 1m: for L = −Σᵢ cᵢ log S(x)ᵢ with c one-hot, ∇ₓ L = S(x) − c.
    #[test]
    fn q1m_cross_entropy_gradient(x in vec_strategy(-20.0, 20.0, 10), label in 0usize..10) {
        let label = label % x.len();
        let mut c = DVector::zeros(x.len());
        c[label] = 1.0;
        let loss = |v: &DVector<f64>| -c.dot(&log_softmax(v));
        let numeric = fd_gradient(loss, &x);
        let s = softmax(&x);
        let want = &s - &c;
        for k in 0..x.len() {
            assert_close(numeric[k], want[k], FD_TOL, "1m");
        }
        let via_vjp = log_softmax_vjp(&s, &(-&c)).unwrap();
        for k in 0..x.len() {
            assert_close(via_vjp[k], want[k], 1e-15, "1m vjp");
        }
    }
}

#[test]
fn extremes_of_the_issue() {
    // softplus(1000) = 1000 exactly; softplus(−1000) = e^−1000, which rounds to 0 (not NaN).
    assert_eq!(softplus(1000.0_f64), 1000.0);
    assert_eq!(softplus(-1000.0_f64), 0.0);
    assert_eq!(softplus(1000.0_f32), 1000.0);
    assert_eq!(softplus(-1000.0_f32), 0.0);
    // σ(±1000) is 1 and 0.
    assert_eq!((sigmoid(1000.0_f64), sigmoid(-1000.0_f64)), (1.0, 0.0));
    // log-softmax of [1000, 1001, 1002] = [0, 1, 2] − LSE([0, 1, 2]), finite
    let x = DVector::from_vec(vec![1000.0_f64, 1001.0, 1002.0]);
    let ls = log_softmax(&x);
    let lse012 = (1.0 + 1.0_f64.exp() + 2.0_f64.exp()).ln();
    for (k, v) in ls.iter().enumerate() {
        assert!((v - (k as f64 - lse012)).abs() < 1e-12, "{ls}");
    }
    // f32 too: softmax of large inputs is finite
    let sf = softmax(&DVector::from_vec(vec![1000.0_f32, 1001.0, 1002.0]));
    assert!(sf.iter().all(|v| v.is_finite()));
    assert!((sf.sum() - 1.0).abs() < 1e-6);
}

#[test]
fn nan_in_nan_out() {
    let x = DVector::from_vec(vec![f64::NAN, 1.0]);
    assert!(softmax(&x).iter().all(|v| v.is_nan()));
    assert!(log_softmax(&x).iter().all(|v| v.is_nan()));
    assert!(vector::softplus(&x)[0].is_nan());
    assert!(vector::sigmoid(&x)[0].is_nan());
    assert!(vector::relu(&x)[0].is_nan());
}
