//! Part 1: derivatives and usual functions (1a–1m).

use super::*;

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
                MIDPOINT_SUM,
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
                STEEP_LIMIT_GAP,
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
        Outcome::within(
            worst,
            SHIFTED_SOFTMAX,
            "rel",
            "50 random vectors, shifts −1000…960",
        )
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
                    let sharper = sa.max() >= s1.max() - FEW_ROUNDINGS
                        && neg_entropy(&sa) >= neg_entropy(&s1) - ENTROPY_ROUNDING;
                    let flatter = sa.max() <= s1.max() + FEW_ROUNDINGS
                        && neg_entropy(&sa) <= neg_entropy(&s1) + ENTROPY_ROUNDING;
                    if (alpha > 1.0 && !sharper)
                        || (alpha < 1.0 && !flatter)
                        || sa.argmax().0 != x.argmax().0
                    {
                        bad += 1;
                    }
                }
                // α = 0: every logit becomes 0, the output is uniform (there is no arg-max)
                let s0 = act::softmax(&(&x * 0.0));
                if s0.iter().any(|&p| (p - 0.2).abs() > ONE_ROUNDING) {
                    bad += 1;
                }
                // α < 0: S(αx) = S(|α|·(−x)), the order is reversed: the predicted class is the
                // arg-min of x, and α = −10 is sharper than α = −1 (towards that class)
                let (s_m1, s_m10) = (act::softmax(&(-&x)), act::softmax(&(&x * -10.0)));
                if s_m1.argmax().0 != x.argmin().0
                    || s_m10.argmax().0 != x.argmin().0
                    || s_m10.max() < s_m1.max() - FEW_ROUNDINGS
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
                FEW_ROUNDINGS,
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
