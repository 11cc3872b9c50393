//! Part 2: the MLP's gradients (2a–2r).

use super::*;

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
                DOT_ORDER,
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
                DOT_ORDER,
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
            Outcome::within(err, FEW_ROUNDINGS, "abs", "40 pairs of logits")
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
                        SATURATED,
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
                LOG_FORMS,
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
                bad += usize::from((mean - sum / 5.0).abs() > FEW_ROUNDINGS);
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
                Outcome::within(err, FEW_ROUNDINGS, "abs", "formula oˢ − onehot(y)"),
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
        Outcome::within(err, FEW_ROUNDINGS, "abs", "against the closed form"),
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
        FEW_ROUNDINGS,
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
                ONE_ROUNDING,
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
                ONE_ROUNDING,
                "abs",
                format!(
                    "δ hˢᵀ is {m}×{d_h} like W⁽²⁾; the answer key's 1 1ᵀ δ and Σ_k δ_k [hˢ … hˢ] are both (Σδ)·… = 0"
                ),
            );
            // the answer key's all-ones ∂oᵃ/∂b⁽²⁾ gives 1 1ᵀ δ = (Σ δ) 1 = 0, and its identical
            // blocks [hˢ … hˢ] give a weight gradient (Σ δ)[hˢ … hˢ] = 0: both provably wrong
            o.passed &= delta.sum().abs() < FEW_ROUNDINGS
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
