//! The homework, question by question: one check per question with a checkable result, its id
//! the question's (1a … 3d). See docs/homework.md for the answers and the code.

use nalgebra::{DMatrix, DVector};
use retroprop_activations as act;
use retroprop_activations::vector;
use retroprop_gradcheck::{
    Config, Outcome, Suite, check_batch_gradient, check_gradient, check_with_loss,
};
use retroprop_layers::{ConvMode, Init, Layer, Shape, convolve1d};
use retroprop_losses::{BceWithLogits, CrossEntropy, Loss, Reduction, SigmoidMse, Target};
use retroprop_models::{Summary, homework_cnn, mlp};
use retroprop_optim::{Optimizer, Sgd, WeightDecay};

use super::{ce_gradient, labels, random};

const P1: &str = "homework part 1 (derivatives and usual functions)";
const P2: &str = "homework part 2 (the MLP's gradients)";
const P3: &str = "homework part 3 (convolutional network)";

/// Central-difference step for f64, `ε^(1/3)` scaled to the point.
fn fd(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    let h = retroprop_gradcheck::STEP * x.abs().max(1.0);
    (f(x + h) - f(x - h)) / ((x + h) - (x - h))
}

/// A dense grid with extremes: 0, ±tiny, ±huge, and a geometric sweep in between.
fn grid() -> Vec<f64> {
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

fn max_abs(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, |m, v| {
        if v.is_nan() {
            f64::INFINITY
        } else {
            m.max(v.abs())
        }
    })
}

/// `|a − b| / max(1, |b|)`.
fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1.0)
}

/// Tolerance for a derivative by central differences of an O(1) function.
const FD_TOL: f64 = 1e-8;

/// Two summation orders of `m` products of magnitude at most 1 (`|δₖ| ≤ 1`, `|W| ≤ 1` here)
/// differ by at most `2(m − 1)·ε·Σ|terms| ≤ 2m²ε`: the layer's GEMM and the check's loop sum in
/// different orders.
fn sum_tol(m: usize) -> f64 {
    let m = m as f64;
    2.0 * m * m * f64::EPSILON
}

/// A function against its definition evaluated directly, where both are a handful of correctly
/// rounded operations: 8 ε relative.
const DEFINITION_TOL: f64 = 8.0 * f64::EPSILON;

pub fn part1(s: &mut Suite) {
    s.add(
        "1a",
        P1,
        "sign(x) = 1_{x>0}(x) − 1_{x<0}(x) on the grid",
        || {
            let bad = grid()
                .into_iter()
                .filter(|&x| {
                    let by_cases = if x > 0.0 {
                        1.0
                    } else if x < 0.0 {
                        -1.0
                    } else {
                        0.0
                    };
                    act::sign(x) != by_cases
                        || act::sign(x)
                            != act::indicator(x, |v| v > 0.0) - act::indicator(x, |v| v < 0.0)
                })
                .count();
            Outcome::exact(bad, "values where sign differs from the indicator form")
        },
    );
    s.add(
        "1b",
        P1,
        "ReLU'(x) = H(x) for x ≠ 0 (finite differences)",
        || {
            let xs = grid()
                .into_iter()
                .filter(|x| x.abs() > 1e-4 && x.abs() < 1e6);
            let err = max_abs(xs.map(|x| fd(act::relu, x) - act::heaviside(x)));
            Outcome::within(
                err,
                FD_TOL,
                "abs",
                "max |ReLU'(x) − H(x)| away from the kink",
            )
        },
    );
    s.add(
        "1c",
        P1,
        "ReLU(x) = x·H(x) = ∫_{−∞}^x H(t) dt",
        || {
            let mut worst: f64 = 0.0;
            for x in grid().into_iter().filter(|x| x.abs() <= 100.0) {
                worst = worst.max((act::relu(x) - x * act::heaviside(x)).abs());
                // midpoint rule from a point below 0; H is piecewise constant, only one cell errs
                let (a, n) = (x.min(0.0) - 1.0, 4000);
                let w = (x - a) / f64::from(n);
                let integral: f64 = (0..n)
                    .map(|i| act::heaviside(a + (f64::from(i) + 0.5) * w) * w)
                    .sum();
                worst = worst.max(((integral - act::relu(x)).abs() - w).max(0.0));
            }
            Outcome::within(
                worst,
                1e-9,
                "abs",
                "both forms against max(0, x) (integral within one cell)",
            )
        },
    );
    s.add(
        "1d",
        P1,
        "a_k(x) = 1/(1+e^(−kx)) → H(x): monotone, a_k(0) = 1/2",
        || {
            let mut violations = 0;
            let mut final_gap: f64 = 0.0;
            for x in grid()
                .into_iter()
                .filter(|x| x.abs() >= 1e-6 && x.abs() <= 1e3)
            {
                let mut last = f64::INFINITY;
                let mut k = 1.0;
                while k <= 1e12 {
                    let gap = (act::steep_logistic(k, x) - act::heaviside(x)).abs();
                    if gap > last {
                        violations += 1;
                    }
                    last = gap;
                    k *= 4.0;
                }
                final_gap = final_gap.max(last);
            }
            if act::steep_logistic(1e300, 0.0) != 0.5 {
                violations += 1;
            }
            // the definition itself at finite k, where 1/(1 + e^(−kx)) is evaluated directly
            // without overflow (|kx| ≤ 50): a k/2 or a 2k would be off by far more than 4 ε
            let mut definition_gap: f64 = 0.0;
            for k in [0.25, 0.5, 1.0, 2.0, 3.0, 10.0] {
                for i in -100..=100 {
                    let x = f64::from(i) * 0.05;
                    let direct = 1.0 / (1.0 + (-k * x).exp());
                    let got = act::steep_logistic(k, x);
                    definition_gap = definition_gap.max((got - direct).abs() / direct);
                }
            }
            let mut o = Outcome::within(
                final_gap,
                1e-12,
                "abs",
                "gap at k = 4¹⁹·… for |x| ≥ 1e-6; non-monotone steps; definition at finite k",
            );
            o.passed &= violations == 0 && definition_gap <= DEFINITION_TOL;
            o.detail = format!(
                "{}; {violations} non-monotone steps; max rel. gap to 1/(1+e^(−kx)) {definition_gap:.1e} (tol {DEFINITION_TOL:.0e})",
                o.detail
            );
            o
        },
    );
    s.add(
        "1e",
        P1,
        "σ' = σ(1 − σ); Jacobian of element-wise σ = diag (FD)",
        || {
            let xs: Vec<f64> = grid().into_iter().filter(|x| x.abs() < 40.0).collect();
            let err = max_abs(
                xs.iter()
                    .map(|&x| fd(act::sigmoid, x) - act::sigmoid_prime(x)),
            );
            let x = DVector::from_vec(vec![-3.0, -0.2, 0.0, 1.5, 7.0]);
            let j = vector::sigmoid_jacobian(&x);
            let mut jerr: f64 = 0.0;
            for c in 0..5 {
                for r in 0..5 {
                    let numeric = fd(
                        |v| {
                            let mut y = x.clone();
                            y[c] = v;
                            act::sigmoid(y[r])
                        },
                        x[c],
                    );
                    jerr = jerr.max((j[(r, c)] - numeric).abs());
                }
            }
            Outcome::within(
                err.max(jerr),
                FD_TOL,
                "abs",
                "σ' on the grid and the 5×5 Jacobian (off-diagonal 0)",
            )
        },
    );
    s.add(
        "1f",
        P1,
        "ln σ(x) = −softplus(−x) on [−700, 700]",
        || {
            let err = max_abs(
                grid()
                    .into_iter()
                    .filter(|x| x.abs() <= 700.0)
                    .map(|x| rel(act::sigmoid(x).ln(), -act::softplus(-x))),
            );
            Outcome::within(
                err,
                4.0 * f64::EPSILON,
                "rel",
                "beyond −745 only the softplus side is representable",
            )
        },
    );
    s.add(
        "1g",
        P1,
        "softplus(x) − softplus(−x) = x; softplus' = σ (FD)",
        || {
            let id = max_abs(
                grid()
                    .into_iter()
                    .filter(|x| x.abs() < 1e6)
                    .map(|x| rel(act::softplus(x) - act::softplus(-x), x)),
            );
            let d = max_abs(
                grid()
                    .into_iter()
                    .filter(|x| x.abs() < 40.0)
                    .map(|x| fd(act::softplus, x) - act::sigmoid(x)),
            );
            Outcome::within(
                id.max(d),
                FD_TOL,
                "rel",
                format!("identity {id:.1e}, derivative {d:.1e}"),
            )
        },
    );
    s.add("1h", P1, "S(x + c) = S(x), c up to ±1000", || {
        let mut worst: f64 = 0.0;
        for seed in 0..50 {
            let x = DVector::from_column_slice(random(6, 1, -30.0, 30.0, seed).as_slice());
            let c = (seed as f64 - 25.0) * 40.0;
            let (a, b) = (act::softmax(&x), act::softmax(&x.add_scalar(c)));
            worst = worst.max(max_abs(
                a.iter().zip(b.iter()).map(|(p, q)| (p - q) / p.max(1e-300)),
            ));
        }
        Outcome::within(worst, 1e-11, "rel", "50 random vectors, shifts −1000…960")
    });
    s.add(
        "1i",
        P1,
        "α > 1 sharpens S(αx), 0 < α < 1 flattens it; α = 0 is uniform; α < 0 reverses the order",
        || {
            let neg_entropy = |p: &DVector<f64>| {
                p.iter()
                    .filter(|&&v| v > 0.0)
                    .map(|&v| v * v.ln())
                    .sum::<f64>()
            };
            let mut bad = 0;
            for seed in 0..50 {
                let x = DVector::from_column_slice(random(5, 1, -5.0, 5.0, 100 + seed).as_slice());
                let s1 = act::softmax(&x);
                for alpha in [0.1, 0.5, 2.0, 10.0] {
                    let sa = act::softmax(&(&x * alpha));
                    let sharper = sa.max() >= s1.max() - 1e-15
                        && neg_entropy(&sa) >= neg_entropy(&s1) - 1e-12;
                    let flatter = sa.max() <= s1.max() + 1e-15
                        && neg_entropy(&sa) <= neg_entropy(&s1) + 1e-12;
                    if (alpha > 1.0 && !sharper)
                        || (alpha < 1.0 && !flatter)
                        || sa.argmax().0 != x.argmax().0
                    {
                        bad += 1;
                    }
                }
                // α = 0: every logit becomes 0, the output is uniform (there is no arg-max)
                let s0 = act::softmax(&(&x * 0.0));
                if s0.iter().any(|&p| (p - 0.2).abs() > 1e-16) {
                    bad += 1;
                }
                // α < 0: S(αx) = S(|α|·(−x)), the order is reversed: the predicted class is the
                // arg-min of x, and α = −10 is sharper than α = −1 (towards that class)
                let (s_m1, s_m10) = (act::softmax(&(-&x)), act::softmax(&(&x * -10.0)));
                if s_m1.argmax().0 != x.argmin().0
                    || s_m10.argmax().0 != x.argmin().0
                    || s_m10.max() < s_m1.max() - 1e-15
                {
                    bad += 1;
                }
            }
            // the example of the document: x = [1, 2] predicts class 1; with α = −1, class 0
            let x = DVector::from_vec(vec![1.0, 2.0]);
            if act::softmax(&x).argmax().0 != 1 || act::softmax(&(-&x)).argmax().0 != 0 {
                bad += 1;
            }
            Outcome::exact(
                bad,
                "α ∈ {0.1, 0.5, 2, 10}: class kept; α = 0: uniform; α ∈ {−1, −10}: arg-min wins; x = [1, 2] flips",
            )
        },
    );
    s.add(
        "1j",
        P1,
        "∂S_i/∂x_j = S_i(δ_ij − S_j) (FD, every entry)",
        || {
            let x = DVector::from_vec(vec![0.3, -1.2, 2.0, 0.0, -0.7]);
            let s = act::softmax(&x);
            let mut worst: f64 = 0.0;
            for j in 0..5 {
                for i in 0..5 {
                    let numeric = fd(
                        |v| {
                            let mut y = x.clone();
                            y[j] = v;
                            act::softmax(&y)[i]
                        },
                        x[j],
                    );
                    let delta = if i == j { 1.0 } else { 0.0 };
                    worst = worst.max((numeric - s[i] * (delta - s[j])).abs());
                }
            }
            Outcome::within(worst, FD_TOL, "abs", "25 partial derivatives")
        },
    );
    s.add(
        "1k",
        P1,
        "∂S/∂x = diag(S) − S Sᵀ, and Jᵀg = S ⊙ (g − ⟨g,S⟩)",
        || {
            let x = DVector::from_vec(vec![1000.0, 1001.5, 999.0, 1000.2]);
            let s = act::softmax(&x);
            let j = vector::softmax_jacobian(&x);
            let form = (&j - (vector::diag(&s) - &s * s.transpose())).amax();
            let g = DVector::from_vec(vec![0.5, -1.0, 2.0, 0.25]);
            let vjp = act::softmax_vjp(&s, &g)
                .map(|v| (v - j.transpose() * &g).amax())
                .unwrap_or(f64::INFINITY);
            Outcome::within(
                form.max(vjp),
                1e-15,
                "abs",
                "at logits near 1000; matrix-free product equals Jᵀg",
            )
        },
    );
    s.add(
        "1l",
        P1,
        "∇_u log S(x(u))_i = ∇x_i − E_{j∼S}[∇x_j] (linear and non-linear x)",
        || {
            let a = random(4, 3, -1.0, 1.0, 1);
            let b = random(4, 3, -1.0, 1.0, 2);
            let u = random(3, 1, -1.0, 1.0, 3);
            let mut reports = Vec::new();
            for linear in [true, false] {
                let x_of = |u: &[f64]| {
                    let u = DVector::from_column_slice(u);
                    if linear {
                        &a * u
                    } else {
                        (&a * &u).map(f64::tanh) + &b * &u
                    }
                };
                let jx = if linear {
                    a.clone()
                } else {
                    DMatrix::from_diagonal(&(&a * u.column(0)).map(act::tanh_prime)) * &a + &b
                };
                for i in 0..4 {
                    let s = act::softmax(&x_of(u.as_slice()));
                    let rhs = jx.row(i).transpose() - jx.transpose() * &s;
                    let f = |v: &[f64]| act::log_softmax(&x_of(v))[i];
                    reports.push(Outcome::from_report(&check_gradient(
                        f,
                        u.as_slice(),
                        rhs.as_slice(),
                        &Config::default(),
                    )));
                }
            }
            Outcome::all(reports)
        },
    );
    s.add(
        "1m",
        P1,
        "∇ₓ(−Σ cᵢ log S(x)ᵢ) = S(x) − c for one-hot c (FD)",
        || {
            let x = [0.4, -2.0, 3.1, 0.0, 1.0];
            let mut reports = Vec::new();
            for label in 0..5 {
                let s = act::softmax(&DVector::from_column_slice(&x));
                let mut want = s.clone();
                want[label] -= 1.0;
                let f = |v: &[f64]| -act::log_softmax(&DVector::from_column_slice(v))[label];
                reports.push(Outcome::from_report(&check_gradient(
                    f,
                    &x,
                    want.as_slice(),
                    &Config::default(),
                )));
            }
            Outcome::all(reports)
        },
    );
}

pub fn part2(s: &mut Suite) {
    // one MLP instance per question keeps checks independent
    let (d, d_h, m) = (7, 5, 4);
    let net = move || mlp::<f64>(d, d_h, m, Init::XavierUniform { seed: 11 }).expect("valid sizes");
    s.add(
        "2a",
        P2,
        "b⁽¹⁾ ∈ ℝ^{d_h}; hᵃ = W⁽¹⁾x + b⁽¹⁾, hᵃ_j = Σᵢ W_ji xᵢ + b_j; hˢ = φ(hᵃ)",
        move || {
            let mut n = net();
            let x = random(d, 3, -1.0, 1.0, 1);
            let layers = n.layers_mut();
            let h_a = match layers[0].forward(&x) {
                Ok(h) => h,
                Err(e) => return Outcome::error(e.to_string()),
            };
            let h_s = layers[1]
                .forward(&h_a)
                .unwrap_or_else(|_| DMatrix::zeros(0, 0));
            let (mut w, mut b) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
            layers[0].visit_params(&mut |p, v| {
                if p == "weight" {
                    w = v.value().clone()
                } else {
                    b = v.value().clone()
                }
            });
            let shapes_ok = w.shape() == (d_h, d) && b.shape() == (d_h, 1);
            let mut err: f64 = 0.0;
            for col in 0..3 {
                for jj in 0..d_h {
                    let by_element: f64 =
                        (0..d).map(|i| w[(jj, i)] * x[(i, col)]).sum::<f64>() + b[jj];
                    err = err.max((h_a[(jj, col)] - by_element).abs());
                    err = err.max((h_s[(jj, col)] - act::softplus(by_element)).abs());
                }
            }
            let mut o = Outcome::within(
                err,
                1e-14,
                "abs",
                format!(
                    "W⁽¹⁾ {}×{}, b⁽¹⁾ {}×1 (d_h = {d_h}, d = {d})",
                    w.nrows(),
                    w.ncols(),
                    b.nrows()
                ),
            );
            o.passed &= shapes_ok;
            o
        },
    );
    s.add(
        "2b",
        P2,
        "W⁽²⁾ ∈ ℝ^{m×d_h}, b⁽²⁾ ∈ ℝ^m; oᵃ_k = Σ_{j≤d_h} W_kj hˢ_j + b_k",
        move || {
            let mut n = net();
            let h_s = random(d_h, 2, 0.0, 2.0, 2);
            let layer = &mut n.layers_mut()[2];
            let o_a = match layer.forward(&h_s) {
                Ok(o) => o,
                Err(e) => return Outcome::error(e.to_string()),
            };
            let (mut w, mut b) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
            layer.visit_params(&mut |p, v| {
                if p == "weight" {
                    w = v.value().clone()
                } else {
                    b = v.value().clone()
                }
            });
            let mut err: f64 = 0.0;
            for col in 0..2 {
                for k in 0..m {
                    let by_element: f64 =
                        (0..d_h).map(|jj| w[(k, jj)] * h_s[(jj, col)]).sum::<f64>() + b[k];
                    err = err.max((o_a[(k, col)] - by_element).abs());
                }
            }
            let mut o = Outcome::within(
                err,
                1e-14,
                "abs",
                format!(
                    "W⁽²⁾ {}×{} (m×d_h), sum over j = 1…d_h, not 1…m",
                    w.nrows(),
                    w.ncols()
                ),
            );
            o.passed &= w.shape() == (m, d_h) && b.shape() == (m, 1);
            o
        },
    );
    s.add(
        "2c",
        P2,
        "oˢ_k = e^{oᵃ_k}/Σⱼ e^{oᵃ_j} > 0 and Σ_k oˢ_k = 1, even at ±1000",
        || {
            let mut worst: f64 = 0.0;
            let mut nonpositive = 0;
            for seed in 0..30 {
                let o_a =
                    DVector::from_column_slice(random(5, 1, -1000.0, 1000.0, seed).as_slice());
                let o_s = act::softmax(&o_a);
                worst = worst.max((o_s.sum() - 1.0).abs());
                nonpositive += o_s.iter().filter(|&&p| p.is_nan() || p < 0.0).count();
            }
            let mut o = Outcome::within(
                worst,
                4.0 * f64::EPSILON,
                "abs",
                "|Σ oˢ − 1| over 30 vectors in [−1000, 1000]",
            );
            o.passed &= nonpositive == 0;
            o
        },
    );
    s.add(
        "2d",
        P2,
        "binary softmax = sigmoid: S(o)₁ = σ(o₁ − o₂)",
        || {
            let o = random(2, 40, -30.0, 30.0, 3);
            let err = max_abs(
                (0..40).map(|c| act::softmax(o.column(c))[0] - act::sigmoid(o[(0, c)] - o[(1, c)])),
            );
            Outcome::within(err, 1e-15, "abs", "40 pairs of logits")
        },
    );
    s.add(
        "2e",
        P2,
        "∂(σ(oᵃ) − y)²/∂oᵃ = 2(σ − y)σ(1 − σ) (FD)",
        || {
            let o_a = random(1, 12, -8.0, 8.0, 4);
            let y = labels(12, 2, 5);
            loss_grad(
                &SigmoidMse {
                    reduction: Reduction::Sum,
                },
                &o_a,
                &y,
                |o, y| {
                    let s = act::sigmoid(o);
                    2.0 * (s - y) * s * (1.0 - s)
                },
            )
        },
    );
    s.add("2f", P2, "∂L_CE/∂oᵃ = σ(oᵃ) − y (FD)", || {
        let o_a = random(1, 12, -8.0, 8.0, 6);
        let y = labels(12, 2, 7);
        loss_grad(
            &BceWithLogits {
                reduction: Reduction::Sum,
            },
            &o_a,
            &y,
            |o, y| act::sigmoid(o) - y,
        )
    });
    s.add(
        "2g",
        P2,
        "confident mistake (oᵃ = −10, y = 1): MSE gradient vanishes, CE's does not",
        || {
            let o = DMatrix::from_element(1, 1, -10.0_f64);
            let mse = SigmoidMse::default()
                .evaluate(&o, Target::Labels(&[1]))
                .map(|out| out.grad[0]);
            let ce = BceWithLogits::default()
                .evaluate(&o, Target::Labels(&[1]))
                .map(|out| out.grad[0]);
            match (mse, ce) {
                (Ok(g_mse), Ok(g_ce)) => {
                    let mut o = Outcome::within(
                        g_mse.abs(),
                        1e-4,
                        "abs",
                        format!(
                            "|∂MSE/∂oᵃ| = {:.2e} vs |∂CE/∂oᵃ| = {:.4}",
                            g_mse.abs(),
                            g_ce.abs()
                        ),
                    );
                    o.passed &= g_ce.abs() > 0.99;
                    o
                }
                (Err(e), _) | (_, Err(e)) => Outcome::error(e.to_string()),
            }
        },
    );
    s.add(
        "2h",
        P2,
        "L = −log oˢ_y = log Σⱼ e^{oᵃ_j} − oᵃ_y, finite at 1000",
        || {
            let o_a = random(5, 6, -10.0, 10.0, 8);
            let y = labels(6, 5, 9);
            let out = match CrossEntropy::new(Reduction::None).evaluate(&o_a, Target::Labels(&y)) {
                Ok(o) => o,
                Err(e) => return Outcome::error(e.to_string()),
            };
            let err = max_abs(
                (0..6).map(|c| out.per_example[c] - (-act::softmax(o_a.column(c))[y[c]].ln())),
            );
            let big = DMatrix::from_column_slice(3, 1, &[1000.0_f64, 1001.0, 1002.0]);
            let finite = CrossEntropy::default()
                .evaluate(&big, Target::Labels(&[0]))
                .is_ok_and(|o| o.value.is_finite());
            let mut o = Outcome::within(
                err,
                1e-13,
                "abs",
                "against −log of the softmax on moderate logits",
            );
            o.passed &= finite;
            o
        },
    );
    s.add(
        "2i",
        P2,
        "n_θ = d_h·d + d_h + m·d_h + m; R̂ = (1/n) Σ L",
        || {
            let mut bad = 0;
            for (d, d_h, m) in [(784, 256, 10), (3, 5, 2), (1, 1, 1), (100, 7, 13)] {
                let n_theta = mlp::<f64>(d, d_h, m, Init::Zeros)
                    .map(|n| n.param_count())
                    .unwrap_or(0);
                bad += usize::from(n_theta != d_h * d + d_h + m * d_h + m);
            }
            let o_a = random(4, 5, -3.0, 3.0, 10);
            let y = labels(5, 4, 11);
            let mean = CrossEntropy::default()
                .evaluate(&o_a, Target::Labels(&y))
                .map(|o| o.value);
            let sum = CrossEntropy::new(Reduction::Sum)
                .evaluate(&o_a, Target::Labels(&y))
                .map(|o| o.value);
            if let (Ok(mean), Ok(sum)) = (mean, sum) {
                bad += usize::from((mean - sum / 5.0).abs() > 1e-15);
            }
            Outcome::exact(
                bad,
                "4 architectures (784-256-10: 203 530 parameters) and the mean reduction",
            )
        },
    );
    s.add(
        "2j",
        P2,
        "gradient descent: θ ← θ − η∇R̂(θ)",
        move || gd_step(net(), WeightDecay::none(), 0.0),
    );
    s.add(
        "2k",
        P2,
        "with R̂ + λ‖θ‖²: θ ← θ − η∇R̂ − 2ηλθ",
        move || {
            gd_step(
                net(),
                WeightDecay::homework(0.02).expect("valid"),
                2.0 * 0.02,
            )
        },
    );
    s.add(
        "2l",
        P2,
        "∂L/∂oᵃ = oˢ − onehot(y) (FD and formula)",
        || {
            let o_a = random(6, 4, -5.0, 5.0, 12);
            let y = labels(4, 6, 13);
            let ce = CrossEntropy::new(Reduction::Sum);
            let out = match ce.evaluate(&o_a, Target::Labels(&y)) {
                Ok(o) => o,
                Err(e) => return Outcome::error(e.to_string()),
            };
            let mut err: f64 = 0.0;
            for c in 0..4 {
                let mut want = act::softmax(o_a.column(c));
                want[y[c]] -= 1.0;
                err = err.max((out.grad.column(c) - want).amax());
            }
            let value = |p: &DMatrix<f64>| {
                ce.evaluate(p, Target::Labels(&y))
                    .map_or(f64::NAN, |o| o.value)
            };
            let fd = Outcome::from_report(&check_batch_gradient(
                value,
                &o_a,
                &out.grad,
                &Config::default(),
            ));
            Outcome::all([
                fd,
                Outcome::within(err, 1e-15, "abs", "formula oˢ − onehot(y)"),
            ])
        },
    );
    // 2m–2r: the gradients of the whole MLP through the cross-entropy, each against its formula
    // from the quantities of the forward pass, and against finite differences
    for (id, description) in [
        (
            "2m",
            "∂L/∂W⁽²⁾_kj = δ_k hˢ_j, ∂L/∂b⁽²⁾_k = δ_k (δ = ∂L/∂oᵃ)",
        ),
        (
            "2n",
            "∂L/∂W⁽²⁾ = δ hˢᵀ (m×d_h), ∂L/∂b⁽²⁾ = δ (m) — ∂oᵃ/∂b⁽²⁾ = I, not 1 1ᵀ",
        ),
        ("2o", "∂L/∂hˢ_j = Σ_k δ_k W⁽²⁾_kj"),
        ("2p", "∂L/∂hˢ = W⁽²⁾ᵀ δ (d_h), with the transpose"),
        ("2q", "φ'(z) = softplus'(z) = σ(z)"),
        (
            "2r",
            "∂L/∂hᵃ = σ(hᵃ) ⊙ W⁽²⁾ᵀ δ; every gradient of the MLP by FD",
        ),
    ] {
        s.add(id, P2, description, move || backprop_question(id, net()));
    }
}

/// A loss's gradient against its formula and against finite differences.
fn loss_grad(
    loss: &dyn Loss<f64>,
    o_a: &DMatrix<f64>,
    y: &[usize],
    formula: impl Fn(f64, f64) -> f64,
) -> Outcome {
    let out = match loss.evaluate(o_a, Target::Labels(y)) {
        Ok(o) => o,
        Err(e) => return Outcome::error(e.to_string()),
    };
    let err = max_abs((0..o_a.ncols()).map(|c| out.grad[c] - formula(o_a[c], y[c] as f64)));
    let value = |p: &DMatrix<f64>| {
        loss.evaluate(p, Target::Labels(y))
            .map_or(f64::NAN, |o| o.value)
    };
    let fd = Outcome::from_report(&check_batch_gradient(
        value,
        o_a,
        &out.grad,
        &Config::default(),
    ));
    Outcome::all([
        fd,
        Outcome::within(err, 1e-15, "abs", "against the closed form"),
    ])
}

/// One gradient-descent step against `θ − η(∇R̂ + kθ)` computed by hand.
fn gd_step(mut net: retroprop_models::Sequential<f64>, decay: WeightDecay, k: f64) -> Outcome {
    let lr = 0.3;
    let x = random(7, 6, -1.0, 1.0, 14);
    let y = labels(6, 4, 15);
    if let Err(e) = ce_gradient(&mut net, &x, &y) {
        return Outcome::error(e);
    }
    let mut want = Vec::new();
    net.visit_params(&mut |_, p| {
        want.extend(
            p.value()
                .iter()
                .zip(p.grad().iter())
                .map(|(t, g)| t - lr * (g + k * t)),
        );
    });
    let stepped = Sgd::new(lr)
        .map(|s| s.with_weight_decay(decay))
        .and_then(|mut s| s.step(&mut net));
    if let Err(e) = stepped {
        return Outcome::error(e.to_string());
    }
    let mut got = Vec::new();
    net.visit_params(&mut |_, p| got.extend(p.value().iter().copied()));
    let err = max_abs(got.iter().zip(&want).map(|(a, b)| a - b));
    Outcome::within(
        err,
        1e-15,
        "abs",
        format!("{} parameters, η = {lr}, k = {k}", got.len()),
    )
}

/// The answer key's weight gradient of 2m/2n: every `∂oᵃ_k/∂W⁽²⁾` is the same matrix whose `m`
/// columns are `hˢ` (`d_h × m`), so `Σ_k δ_k [hˢ … hˢ] = (Σ_k δ_k)[hˢ … hˢ]`.
fn answer_key_weight_gradient(delta: &DMatrix<f64>, h_s: &DMatrix<f64>, m: usize) -> DMatrix<f64> {
    let block = DMatrix::from_fn(h_s.nrows(), m, |j, _| h_s[j]);
    let mut sum = DMatrix::zeros(h_s.nrows(), m);
    for k in 0..m {
        sum += delta[k] * &block;
    }
    sum
}

/// `Σδ = 0` (the softmax's outputs and the one-hot both sum to 1), so the answer key's weight
/// gradient is zero up to rounding, while the true one, `δ hˢᵀ`, is not.
fn answer_key_weight_gradient_vanishes(
    delta: &DMatrix<f64>,
    h_s: &DMatrix<f64>,
    m: usize,
    true_gradient: &DMatrix<f64>,
) -> bool {
    let zero_scale = 4.0 * f64::EPSILON * (m as f64) * delta.amax() * h_s.amax();
    answer_key_weight_gradient(delta, h_s, m).amax() <= zero_scale && true_gradient.amax() > 1e-3
}

/// Questions 2m–2r on one MLP: forward by hand, each formula against what the layers computed,
/// plus finite differences of the whole network.
fn backprop_question(id: &str, mut net: retroprop_models::Sequential<f64>) -> Outcome {
    let x = random(7, 1, -1.0, 1.0, 16);
    let y = [2usize];
    let ce = CrossEntropy::default();
    // forward, keeping hᵃ, hˢ, oᵃ
    let layers = net.layers_mut();
    let mut run = || -> Result<_, String> {
        let h_a = layers[0].forward(&x).map_err(|e| e.to_string())?;
        let h_s = layers[1].forward(&h_a).map_err(|e| e.to_string())?;
        let o_a = layers[2].forward(&h_s).map_err(|e| e.to_string())?;
        let out = ce
            .evaluate(&o_a, Target::Labels(&y))
            .map_err(|e| e.to_string())?;
        Ok((h_a, h_s, out.grad))
    };
    let (h_a, h_s, delta) = match run() {
        Ok(v) => v,
        Err(e) => return Outcome::error(e),
    };
    for l in layers.iter_mut() {
        l.zero_grad();
    }
    let mut backward = || -> Result<_, String> {
        let g_hs = layers[2].backward(&delta).map_err(|e| e.to_string())?;
        let g_ha = layers[1].backward(&g_hs).map_err(|e| e.to_string())?;
        layers[0].backward(&g_ha).map_err(|e| e.to_string())?;
        Ok((g_hs, g_ha))
    };
    let (g_hs, g_ha) = match backward() {
        Ok(v) => v,
        Err(e) => return Outcome::error(e),
    };
    let (mut w2, mut gw2, mut gb2) = (
        DMatrix::zeros(0, 0),
        DMatrix::zeros(0, 0),
        DMatrix::zeros(0, 0),
    );
    layers[2].visit_params(&mut |p, v| {
        if p == "weight" {
            w2 = v.value().clone();
            gw2 = v.grad().clone();
        } else {
            gb2 = v.grad().clone();
        }
    });
    let (m, d_h) = w2.shape();
    let formula = match id {
        "2m" => {
            let mut err: f64 = 0.0;
            for k in 0..m {
                for j in 0..d_h {
                    err = err.max((gw2[(k, j)] - delta[k] * h_s[j]).abs());
                }
                err = err.max((gb2[k] - delta[k]).abs());
            }
            // ∂oᵃ_k/∂W⁽²⁾ = e_k hˢᵀ (only row k is non-zero): Σ_k δ_k e_k hˢᵀ is the gradient
            let mut by_blocks = DMatrix::zeros(m, d_h);
            for k in 0..m {
                let mut e_k = DVector::zeros(m);
                e_k[k] = 1.0;
                by_blocks += delta[k] * (&e_k * h_s.column(0).transpose());
            }
            err = err.max((&by_blocks - &gw2).amax());
            let mut o = Outcome::within(
                err,
                1e-16,
                "abs",
                format!(
                    "element by element, and Σ_k δ_k e_k hˢᵀ; the answer key's [hˢ … hˢ] is {d_h}×{m}, not {m}×{d_h}, and gives {:.0e}",
                    answer_key_weight_gradient(&delta, &h_s, m).amax()
                ),
            );
            o.passed &= answer_key_weight_gradient_vanishes(&delta, &h_s, m, &gw2);
            o
        }
        "2n" => {
            let err = (&gw2 - &delta * h_s.transpose())
                .amax()
                .max((&gb2 - &delta).amax());
            let mut o = Outcome::within(
                err,
                1e-16,
                "abs",
                format!(
                    "δ hˢᵀ is {m}×{d_h} like W⁽²⁾; the answer key's 1 1ᵀ δ and Σ_k δ_k [hˢ … hˢ] are both (Σδ)·… = 0"
                ),
            );
            // the answer key's all-ones ∂oᵃ/∂b⁽²⁾ gives 1 1ᵀ δ = (Σ δ) 1 = 0, and its identical
            // blocks [hˢ … hˢ] give a weight gradient (Σ δ)[hˢ … hˢ] = 0: both provably wrong
            o.passed &= delta.sum().abs() < 1e-15
                && gb2.amax() > 1e-3
                && answer_key_weight_gradient_vanishes(&delta, &h_s, m, &gw2);
            o
        }
        "2o" => {
            let err = max_abs(
                (0..d_h).map(|j| g_hs[j] - (0..m).map(|k| delta[k] * w2[(k, j)]).sum::<f64>()),
            );
            Outcome::within(err, sum_tol(m), "abs", "sum over the m outputs")
        }
        "2p" => {
            let err = (&g_hs - w2.transpose() * &delta).amax();
            Outcome::within(
                err,
                sum_tol(m),
                "abs",
                format!(
                    "W⁽²⁾ᵀ δ is {d_h}×1; the answer key's W⁽²⁾ δ does not chain ({m}×{d_h} times {m}×1)"
                ),
            )
        }
        "2q" => {
            let err = max_abs(
                [-30.0, -3.0, -0.5, 0.0, 0.7, 4.0, 30.0]
                    .map(|z| fd(act::softplus, z) - act::sigmoid(z)),
            );
            Outcome::within(
                err,
                FD_TOL,
                "abs",
                "finite differences of softplus against σ",
            )
        }
        _ => {
            let err = (&g_ha
                - h_a
                    .map(act::sigmoid)
                    .component_mul(&(w2.transpose() * &delta)))
            .amax();
            Outcome::within(err, sum_tol(m), "abs", "diag(σ(hᵃ)) W⁽²⁾ᵀ δ")
        }
    };
    if id != "2r" {
        return formula;
    }
    // and every gradient of the network against finite differences
    let objective = |o: &DMatrix<f64>| match ce.evaluate(o, Target::Labels(&y)) {
        Ok(out) => (out.value, out.grad),
        Err(_) => (f64::NAN, DMatrix::zeros(o.nrows(), o.ncols())),
    };
    match check_with_loss(&mut net, &x, objective, &Config::default()) {
        Ok(r) => Outcome::all([formula, Outcome::from_report(&r)]),
        Err(e) => Outcome::error(e.to_string()),
    }
}

pub fn part3(s: &mut Suite) {
    s.add(
        "3a",
        P3,
        "3×128×128 → 32×64×64 → 32×32×32 → 64×32×32: 65 536 values",
        || {
            let net = match homework_cnn::<f32>(Init::HeUniform { seed: 1 }) {
                Ok(n) => n,
                Err(e) => return Outcome::error(e.to_string()),
            };
            let want = [
                Shape::image(32, 64, 64),
                Shape::image(32, 32, 32),
                Shape::image(64, 32, 32),
            ];
            let mut bad = net
                .shapes()
                .iter()
                .zip(&want)
                .filter(|(a, b)| a != b)
                .count();
            // and an actual forward pass produces that many values per image
            let y = net.infer(&DMatrix::from_element(3 * 128 * 128, 1, 0.5_f32));
            bad += usize::from(y.map_or(0, |y| y.nrows()) != 65_536);
            Outcome::exact(
                bad,
                "shapes by the formula ⌊(i + 2p − d(k−1) − 1)/s⌋ + 1 and by a forward pass",
            )
        },
    );
    s.add("3b", P3, "last layer: 3·3·32·64 = 18 432 weights (+ 64 biases)", || {
        match homework_cnn::<f32>(Init::Zeros) {
            Ok(net) => {
                let summary = Summary::of(&net);
                let last = &summary.rows[2];
                Outcome::exact(
                    usize::from(last.weights != 18_432) + usize::from(last.biases != 64),
                    format!("{} weights, {} biases (the answer key's 3·3·64 = 576 forgets the 32 input channels)", last.weights, last.biases),
                )
            }
            Err(e) => Outcome::error(e.to_string()),
        }
    });
    s.add(
        "3c",
        P3,
        "[1,1,4,4,4,1,1] * [¼,¼,¼,¼]: full, same, valid (kernel flipped)",
        || {
            let x = [1.0, 1.0, 4.0, 4.0, 4.0, 1.0, 1.0];
            let k = [0.25; 4];
            // numpy.convolve(x, k, mode), numpy 2.4
            let want: [(ConvMode, &[f64]); 3] = [
                (
                    ConvMode::Full,
                    &[0.25, 0.5, 1.5, 2.5, 3.25, 3.25, 2.5, 1.5, 0.5, 0.25],
                ),
                (ConvMode::Same, &[0.5, 1.5, 2.5, 3.25, 3.25, 2.5, 1.5]),
                (ConvMode::Valid, &[2.5, 3.25, 3.25, 2.5]),
            ];
            let mut err: f64 = 0.0;
            for (mode, w) in want {
                match convolve1d(&x, &k, mode) {
                    Ok(got) if got.len() == w.len() => {
                        err = err.max(max_abs(got.iter().zip(w).map(|(a, b)| a - b)))
                    }
                    _ => err = f64::INFINITY,
                }
            }
            Outcome::within(
                err,
                0.0,
                "abs",
                "exact in binary floating point; the answer key used a 3-tap kernel",
            )
        },
    );
    s.add(
        "3d",
        P3,
        "the kernel is a moving average: mass kept, variation and peak reduced",
        || {
            let x = [1.0, 1.0, 4.0, 4.0, 4.0, 1.0, 1.0];
            let full = convolve1d(&x, &[0.25; 4], ConvMode::Full).unwrap_or_default();
            let tv = |v: &[f64]| v.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>();
            let max_step = |v: &[f64]| {
                v.windows(2)
                    .map(|w| (w[1] - w[0]).abs())
                    .fold(0.0, f64::max)
            };
            let mass = (full.iter().sum::<f64>() - x.iter().sum::<f64>()).abs();
            let peak = full.iter().copied().fold(f64::MIN, f64::max);
            let mut o = Outcome::within(
                mass,
                0.0,
                "abs",
                format!(
                    "Σ kept (16); largest jump {} → {}; peak {} → {}; total variation {} → {}",
                    max_step(&x),
                    max_step(&full),
                    4.0,
                    peak,
                    tv(&x),
                    tv(&full)
                ),
            );
            o.passed &= max_step(&full) < max_step(&x) && peak < 4.0;
            o
        },
    );
}
