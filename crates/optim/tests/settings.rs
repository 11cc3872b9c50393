//! The adaptive optimizers' and clipping's settings: defaults, validation, and the learning
//! rate a schedule sets (`fit` calls `set_learning_rate` every epoch).

use retroprop_layers::Dense;
use retroprop_layers::nalgebra::DMatrix;
use retroprop_optim::{
    Adam, AdamDecay, OptimError, Optimizer, RmsProp, clip_grad_norm, clip_grad_value,
};

/// A 1→2 dense layer with weights 1, 2, biases −1, 0.5 and the given gradients.
fn layer(grads: [f64; 4]) -> Dense<f64> {
    let mut d = Dense::from_params(
        DMatrix::from_column_slice(2, 1, &[1.0, 2.0]),
        DMatrix::from_column_slice(2, 1, &[-1.0, 0.5]),
    )
    .unwrap();
    d.weight_mut().grad_mut().copy_from_slice(&grads[..2]);
    d.bias_mut().grad_mut().copy_from_slice(&grads[2..]);
    d
}

fn values(d: &Dense<f64>) -> Vec<f64> {
    d.weight()
        .value()
        .iter()
        .chain(d.bias().value().iter())
        .copied()
        .collect()
}

fn invalid(r: Result<impl Sized, OptimError>) -> bool {
    matches!(r, Err(OptimError::InvalidHyperparameter { .. }))
}

#[test]
fn adamw_defaults_to_decay_0_01_and_adam_to_none() {
    // with zero gradients the Adam step is 0/(0 + ε) = 0: only the decoupled decay moves θ
    let mut d = layer([0.0; 4]);
    let mut adamw = Adam::adamw(0.1).unwrap();
    assert_eq!(adamw.decay(), AdamDecay::Decoupled);
    adamw.step(&mut d).unwrap();
    let shrink = 1.0 - 0.1 * 0.01;
    assert_eq!(values(&d), [shrink, 2.0 * shrink, -shrink, 0.5 * shrink]);
    let mut e = layer([0.0; 4]);
    let mut adam = Adam::new(0.1).unwrap();
    assert_eq!(adam.decay(), AdamDecay::Coupled);
    adam.step(&mut e).unwrap();
    assert_eq!(values(&e), [1.0, 2.0, -1.0, 0.5]);
}

#[test]
fn a_new_learning_rate_is_the_one_the_next_step_uses() {
    for mut opt in [
        Box::new(Adam::new(0.1).unwrap()) as Box<dyn Optimizer<f64>>,
        Box::new(Adam::adamw(0.1).unwrap()),
        Box::new(RmsProp::new(0.1).unwrap()),
    ] {
        assert_eq!(opt.learning_rate(), 0.1);
        opt.set_learning_rate(0.5).unwrap();
        assert_eq!(opt.learning_rate(), 0.5);
        assert!(invalid(opt.set_learning_rate(0.0)));
        assert!(invalid(opt.set_learning_rate(f64::NAN)));
        assert_eq!(opt.learning_rate(), 0.5, "a refused rate changes nothing");
        // the first Adam step moves each entry by η (m̂/√v̂ = ±1; AdamW's decay adds η·0.01·θ);
        // RMSprop's by η/√(1−α) = 10η
        let mut d = layer([1.0, -1.0, 2.0, -2.0]);
        opt.step(&mut d).unwrap();
        let moved = (values(&d)[0] - 1.0).abs();
        assert!(
            (moved - 0.5).abs() < 0.01 || (moved - 5.0).abs() < 1e-6,
            "moved by {moved}, not by the new rate"
        );
        let mut fresh = layer([1.0, -1.0, 2.0, -2.0]);
        opt.set_learning_rate(0.25).unwrap();
        let before = values(&fresh);
        opt.step(&mut fresh).unwrap();
        assert_ne!(values(&fresh), before);
    }
}

#[test]
fn hyperparameters_outside_their_domain_are_refused() {
    let adam = || Adam::<f64>::new(0.1).unwrap();
    assert!(invalid(Adam::<f64>::new(-0.1)));
    assert!(invalid(adam().with_eps(0.0)));
    assert!(invalid(adam().with_eps(f64::INFINITY)));
    assert!(invalid(adam().with_eps(-1e-8)));
    assert!(adam().with_eps(1e-8).is_ok());
    assert!(invalid(adam().with_weight_decay(-0.1)));
    assert!(invalid(adam().with_weight_decay(f64::NAN)));
    assert!(adam().with_weight_decay(0.0).is_ok());
    assert!(invalid(adam().with_betas(1.0, 0.9)));
    assert!(invalid(adam().with_betas(0.9, -0.1)));
    let rms = || RmsProp::<f64>::new(0.1).unwrap();
    assert!(invalid(rms().with_alpha(1.0)));
    assert!(invalid(rms().with_eps(0.0)));
    assert!(invalid(rms().with_weight_decay(-1.0)));
    assert!(invalid(rms().with_momentum(1.0)));
    assert!(rms().with_eps(1e-6).is_ok());
    // no momentum, no momentum buffer in the saved state
    let names = |r: RmsProp<f64>| r.state().slot_names;
    assert_eq!(names(rms().with_momentum(0.0).unwrap()), ["square_avg"]);
    assert_eq!(
        names(rms().with_momentum(0.9).unwrap()),
        ["square_avg", "momentum_buffer"]
    );
    let mut d = layer([3.0, 4.0, 0.0, 0.0]);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(invalid(clip_grad_norm(&mut d, bad)), "{bad}");
        assert!(invalid(clip_grad_value(&mut d, bad)), "{bad}");
    }
    // a norm below the bound is left alone; above it, scaled to the bound
    assert_eq!(clip_grad_norm(&mut d, 10.0).unwrap(), 5.0);
    assert_eq!(d.weight().grad().as_slice(), &[3.0, 4.0]);
    assert_eq!(clip_grad_norm(&mut d, 1.0).unwrap(), 5.0);
    let g = d.weight().grad();
    assert!(
        (g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6,
        "{g}"
    );
    clip_grad_value(&mut d, 0.7).unwrap();
    assert_eq!(d.weight().grad()[1], 0.7);
}
