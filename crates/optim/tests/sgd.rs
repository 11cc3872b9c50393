//! Gradient descent with momentum and weight decay together, on small and on large parameters
//! (those are updated in two halves), against the formulas by hand; the accessors and the
//! learning-rate checks; the constant schedule.

use retroprop_layers::{Dense, Init, Layer};
use retroprop_optim::{Constant, Momentum, Optimizer, Schedule, Sgd, StepDecay, WeightDecay};

/// A dense layer with seeded weights and a fixed, deterministic gradient.
fn layer(d_in: usize, d_out: usize) -> Dense<f64> {
    let mut d = Dense::<f64>::new(d_in, d_out, Init::XavierUniform { seed: 3 }).unwrap();
    d.visit_params_mut(&mut |_, p| {
        let n = p.len();
        for (i, g) in p.grad_mut().iter_mut().enumerate() {
            *g = ((i * 7919) % 13) as f64 / 13.0 - 0.5 + 1.0 / (n as f64);
        }
    });
    d
}

fn flat(d: &Dense<f64>) -> (Vec<f64>, Vec<f64>) {
    let (mut theta, mut grad) = (Vec::new(), Vec::new());
    d.visit_params(&mut |_, p| {
        theta.extend(p.value().iter().copied());
        grad.extend(p.grad().iter().copied());
    });
    (theta, grad)
}

/// Three steps of `momentum` with the homework's decay `k = 2λ`, against the formulas:
/// heavy `b ← μb + (g + kθ)`, `θ ← θ − ηb`; Nesterov `θ ← θ − η((g + kθ) + μb)`.
#[track_caller]
fn assert_three_steps(d_in: usize, d_out: usize, momentum: Momentum) {
    let (lr, lambda) = (0.1, 0.05);
    let k = 2.0 * lambda;
    let mut net = layer(d_in, d_out);
    let (mut theta, grad) = flat(&net);
    let mut buf = vec![0.0; theta.len()];
    let mut sgd = Sgd::new(lr)
        .unwrap()
        .with_momentum(momentum)
        .unwrap()
        .with_weight_decay(WeightDecay::homework(lambda).unwrap());
    for step in 0..3 {
        sgd.step(&mut net).unwrap();
        for ((t, &g), b) in theta.iter_mut().zip(&grad).zip(buf.iter_mut()) {
            let d = g + k * *t;
            match momentum {
                Momentum::Heavy { mu } => {
                    *b = mu * *b + d;
                    *t -= lr * *b;
                }
                Momentum::Nesterov { mu } => {
                    *b = mu * *b + d;
                    *t -= lr * (d + mu * *b);
                }
                _ => *t -= lr * d,
            }
        }
        let (got, _) = flat(&net);
        let worst = got
            .iter()
            .zip(&theta)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst <= 1e-15, "{momentum:?}, step {step}: off by {worst}");
    }
}

#[test]
fn momentum_with_weight_decay_follows_the_formulas() {
    for momentum in [
        Momentum::None,
        Momentum::Heavy { mu: 0.9 },
        Momentum::Nesterov { mu: 0.8 },
    ] {
        assert_three_steps(3, 2, momentum);
    }
}

#[test]
fn a_large_parameter_is_updated_entirely_in_its_two_halves() {
    // 256 × 256 = 65 536 weights: past the size at which the update is split in two
    for momentum in [Momentum::None, Momentum::Heavy { mu: 0.9 }] {
        assert_three_steps(256, 256, momentum);
    }
}

#[test]
fn the_optimizer_reports_and_checks_its_settings() {
    let decay = WeightDecay::homework(0.01).unwrap();
    let mut sgd = Sgd::<f64>::new(0.3)
        .unwrap()
        .with_momentum(Momentum::Heavy { mu: 0.5 })
        .unwrap()
        .with_weight_decay(decay);
    assert_eq!(sgd.momentum(), Momentum::Heavy { mu: 0.5 });
    assert_eq!(sgd.weight_decay(), decay);
    assert_eq!(sgd.learning_rate(), 0.3);
    sgd.set_learning_rate(0.07).unwrap();
    assert_eq!(sgd.learning_rate(), 0.07);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(sgd.set_learning_rate(bad).is_err(), "η = {bad} accepted");
        assert_eq!(sgd.learning_rate(), 0.07, "a refused η changed the rate");
    }
    assert_eq!(WeightDecay::none().lambda, 0.0);
}

#[test]
fn a_momentum_buffer_exists_only_with_momentum() {
    // plain descent saves no state; momentum (heavy or Nesterov) saves one buffer, as PyTorch
    let slots = |momentum| {
        let sgd = Sgd::<f64>::new(0.1)
            .unwrap()
            .with_momentum(momentum)
            .unwrap();
        sgd.state().slot_names
    };
    assert!(slots(Momentum::None).is_empty());
    assert_eq!(slots(Momentum::Heavy { mu: 0.9 }), ["momentum_buffer"]);
    assert_eq!(slots(Momentum::Nesterov { mu: 0.9 }), ["momentum_buffer"]);
    // back to none after momentum: the buffer goes too
    let sgd = Sgd::<f64>::new(0.1)
        .unwrap()
        .with_momentum(Momentum::Heavy { mu: 0.9 })
        .unwrap()
        .with_momentum(Momentum::None)
        .unwrap();
    assert!(sgd.state().slot_names.is_empty());
}

#[test]
fn the_constant_schedule_keeps_the_base_rate_and_step_decay_multiplies_it() {
    for epoch in [0, 1, 7, 1000] {
        assert_eq!(Constant.rate(0.25, epoch), 0.25);
    }
    let decay = StepDecay {
        step: 2,
        gamma: 0.5,
    };
    assert_eq!(
        [0, 1, 2, 3, 4].map(|e| decay.rate(1.0, e)),
        [1.0, 1.0, 0.5, 0.5, 0.25]
    );
}
