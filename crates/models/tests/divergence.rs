//! The divergence guard of `fit`: a run that blows up returns `ModelError::Diverged` with the
//! model put back to its last good epoch, a schedule that reaches 0 or ∞ is refused before the
//! first step, and a model whose outputs do not match the classes is refused before evaluation.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

use nalgebra::DMatrix;
use retroprop_core::rng::Rng;
use retroprop_layers::{Init, Layer};
use retroprop_losses::{CrossEntropy, Loss, LossError, LossOutput, Reduction, Target};
use retroprop_models::{
    BatchSize, ConfusionMatrix, FitConfig, InMemory, ModelError, Sequential, evaluate, fit, mlp,
};
use retroprop_optim::{Sgd, StepDecay, WeightDecay};

/// 64 examples of 3 features in 2 classes.
fn blobs<T: retroprop_core::Scalar>() -> InMemory<T> {
    let mut rng = Rng::new(5);
    let labels: Vec<usize> = (0..64).map(|j| j % 2).collect();
    let x = DMatrix::from_fn(3, 64, |_, j| {
        T::lit(rng.uniform(-1.0, 1.0) + if j % 2 == 0 { 1.5 } else { -1.5 })
    });
    InMemory::new(x, labels, 2).unwrap()
}

fn keep_going<T: retroprop_core::Scalar>(
    _: &retroprop_models::Event<'_>,
    _: &Sequential<T>,
) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

fn params<T: retroprop_core::Scalar>(net: &Sequential<T>) -> Vec<T> {
    let mut all = Vec::new();
    net.visit_params(&mut |_, p| all.extend(p.value().iter().copied()));
    all
}

/// Cross-entropy that reports a NaN loss from its `nan_at`-th call on (counting from 1).
struct NanAfter {
    calls: AtomicUsize,
    nan_at: usize,
}

impl Loss<f64> for NanAfter {
    fn name(&self) -> &'static str {
        "NanAfter"
    }
    fn reduction(&self) -> Reduction {
        Reduction::Mean
    }
    fn evaluate(
        &self,
        prediction: &DMatrix<f64>,
        target: Target<'_, f64>,
    ) -> Result<LossOutput<f64>, LossError> {
        let mut out = CrossEntropy::default().evaluate(prediction, target)?;
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 >= self.nan_at {
            out.per_example[0] = f64::NAN;
        }
        Ok(out)
    }
}

#[test]
fn a_nan_loss_stops_training_and_restores_the_last_good_epoch() {
    let data = blobs::<f64>();
    let config = || FitConfig::new(3, BatchSize::Mini(16)).seed(2);
    // the reference: one good epoch
    let mut reference = mlp::<f64>(3, 4, 2, Init::XavierUniform { seed: 1 }).unwrap();
    let mut sgd = Sgd::new(0.1).unwrap();
    let one_epoch = FitConfig::new(1, BatchSize::Mini(16)).seed(2);
    fit(
        &mut reference,
        &data,
        &CrossEntropy::default(),
        &mut sgd,
        &one_epoch,
        keep_going,
    )
    .unwrap();
    // the same run, whose loss turns NaN at the 7th batch: epoch 2, step 3 (4 steps an epoch)
    let mut net = mlp::<f64>(3, 4, 2, Init::XavierUniform { seed: 1 }).unwrap();
    let mut sgd = Sgd::new(0.1).unwrap();
    let loss = NanAfter {
        calls: AtomicUsize::new(0),
        nan_at: 7,
    };
    let err = fit(&mut net, &data, &loss, &mut sgd, &config(), keep_going).unwrap_err();
    match &err {
        ModelError::Diverged {
            epoch,
            step,
            what,
            value,
            restored_epoch,
            report,
        } => {
            assert_eq!((*epoch, *step, *restored_epoch), (2, 3, 1));
            assert_eq!(what, "the loss");
            assert!(value.is_nan());
            assert_eq!(report.epochs.len(), 1);
        }
        other => panic!("expected Diverged, got {other:?}"),
    }
    // bit for bit the parameters after epoch 1, and the message says what to do
    assert_eq!(params(&net), params(&reference));
    let message = err.to_string();
    assert!(
        message.contains("epoch 2, step 3")
            && message.contains("NaN")
            && message.contains("after epoch 1")
            && message.contains("learning rate"),
        "{message}"
    );
}

#[test]
fn exploding_weights_in_f32_are_caught_and_the_initial_model_comes_back() {
    // λ = 1e9: θ ← θ(1 − 2ηλ) grows by 2·10⁸ a step and overflows f32 within a few steps
    let data = blobs::<f32>();
    let mut net = mlp::<f32>(3, 4, 2, Init::XavierUniform { seed: 1 }).unwrap();
    let initial = params(&net);
    let exploding = |net: &mut Sequential<f32>, batch| {
        let mut sgd = Sgd::new(0.1)
            .unwrap()
            .with_weight_decay(WeightDecay::homework(1e9).unwrap());
        let config = FitConfig::new(40, batch);
        fit(
            net,
            &data,
            &CrossEntropy::default(),
            &mut sgd,
            &config,
            keep_going,
        )
        .unwrap_err()
    };
    let err = exploding(&mut net, BatchSize::Mini(16));
    assert!(
        matches!(
            err,
            ModelError::Diverged {
                epoch: 1,
                restored_epoch: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(params(&net), initial);
    // full batch too: one step an epoch, caught by the parameter check or the next loss
    let err = exploding(&mut net, BatchSize::Full);
    assert!(matches!(err, ModelError::Diverged { .. }), "{err:?}");
    assert!(params(&net).iter().all(|v| v.is_finite()));
}

#[test]
fn a_schedule_that_reaches_infinity_is_refused_before_the_first_step() {
    let data = blobs::<f64>();
    let mut net = mlp::<f64>(3, 4, 2, Init::XavierUniform { seed: 1 }).unwrap();
    let initial = params(&net);
    let mut sgd = Sgd::new(0.1).unwrap();
    let mut steps = 0;
    let config = FitConfig::new(3, BatchSize::Mini(16)).schedule(StepDecay {
        step: 1,
        gamma: 1e300,
    });
    let err = fit(
        &mut net,
        &data,
        &CrossEntropy::default(),
        &mut sgd,
        &config,
        |_, _| {
            steps += 1;
            ControlFlow::Continue(())
        },
    )
    .unwrap_err();
    // 0.1 · 1e300 is finite at epoch 2; 0.1 · 1e600 is ∞ at epoch 3
    assert!(
        matches!(err, ModelError::Schedule { epoch: 3, rate, .. } if rate.is_infinite()),
        "{err:?}"
    );
    assert_eq!(steps, 0, "no step may run");
    assert_eq!(params(&net), initial);
    assert!(err.to_string().contains("epoch 3"), "{err}");
}

#[test]
fn outputs_that_are_not_one_per_class_are_refused_before_evaluating() {
    let data = blobs::<f64>();
    // 20 outputs for 2 classes
    let net = mlp::<f64>(3, 4, 20, Init::XavierUniform { seed: 1 }).unwrap();
    let err = evaluate(&net, &data, &CrossEntropy::default()).unwrap_err();
    assert_eq!(
        err,
        ModelError::Classes {
            outputs: 20,
            classes: 2
        }
    );
    // an empty Sequential outputs its 3 inputs: refused as well
    let empty = Sequential::<f64>::new(retroprop_layers::Shape::flat(3));
    assert!(matches!(
        evaluate(&empty, &data, &CrossEntropy::default()),
        Err(ModelError::Classes {
            outputs: 3,
            classes: 2
        })
    ));
    // a confusion matrix does not read another cell for a class out of range
    let confusion = ConfusionMatrix::new(2);
    assert_eq!(confusion.get(0, 1), Some(0));
    assert_eq!(confusion.get(2, 0), None);
    assert_eq!(confusion.get(0, 2), None);
}

#[test]
fn a_save_removes_the_temporaries_of_dead_saves_only() {
    let dir = std::env::temp_dir().join(format!("retroprop-stale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // pid 4194305 is above Linux's largest pid: dead; pid 1 (init) is alive
    let dead = dir.join(".model.ckpt.tmp-4194305");
    let alive = dir.join(".model.ckpt.tmp-1");
    std::fs::write(&dead, b"killed midway").unwrap();
    std::fs::write(&alive, b"being written").unwrap();
    let net = mlp::<f32>(3, 4, 2, Init::XavierUniform { seed: 1 }).unwrap();
    retroprop_models::checkpoint::save(&net, dir.join("model.ckpt")).unwrap();
    if std::path::Path::new("/proc/self").exists() {
        assert!(!dead.exists(), "the dead save's temporary is left");
        assert!(alive.exists(), "a live process's temporary was removed");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
