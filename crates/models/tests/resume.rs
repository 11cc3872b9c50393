//! Stopping a run and resuming it from its checkpoint gives the run that never stopped, bit
//! for bit: the shuffles, the schedule and the optimizer state all come back.

use std::ops::ControlFlow;

use nalgebra::DMatrix;
use retroprop_layers::{Init, Layer};
use retroprop_losses::CrossEntropy;
use retroprop_models::checkpoint::{self, TrainingState};
use retroprop_models::{BatchSize, FitConfig, InMemory, ModelError, Sequential, fit, mlp};
use retroprop_optim::{Momentum, Optimizer, Sgd, StepDecay, WeightDecay};

fn data() -> InMemory<f32> {
    let x = DMatrix::from_fn(4, 90, |i, j| ((i * 5 + j * 7) % 11) as f32 / 5.0 - 1.0);
    let labels = (0..90).map(|j| (j * 7 % 11) % 3).collect();
    InMemory::new(x, labels, 3).unwrap()
}

fn sgd() -> Sgd<f32> {
    Sgd::new(0.2)
        .unwrap()
        .with_momentum(Momentum::Nesterov { mu: 0.9 })
        .unwrap()
        .with_weight_decay(WeightDecay::homework(1e-3).unwrap())
}

fn config(epochs: usize, batch: BatchSize) -> FitConfig {
    FitConfig::new(epochs, batch).seed(11).schedule(StepDecay {
        step: 2,
        gamma: 0.5,
    })
}

fn train(net: &mut Sequential<f32>, opt: &mut Sgd<f32>, config: &FitConfig) -> Vec<(f64, f64)> {
    let report = fit(
        net,
        &data(),
        &CrossEntropy::default(),
        opt,
        config,
        |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    report
        .epochs
        .iter()
        .map(|e| (e.train_loss, e.learning_rate))
        .collect()
}

#[test]
fn a_resumed_run_is_the_run_that_never_stopped() {
    for batch in [BatchSize::Mini(16), BatchSize::Full] {
        let init = Init::XavierUniform { seed: 3 };
        // five epochs in one go
        let mut whole = mlp::<f32>(4, 6, 3, init).unwrap();
        let mut opt = sgd();
        let one_go = train(&mut whole, &mut opt, &config(5, batch));
        let whole_bytes = checkpoint::to_bytes_with(
            &whole,
            Some(&TrainingState {
                optimizer: opt.state(),
                epochs_done: 5,
                settings: String::new(),
            }),
        )
        .unwrap();

        // two epochs, saved with their training state
        let mut first = mlp::<f32>(4, 6, 3, init).unwrap();
        let mut opt = sgd();
        let mut metrics = train(&mut first, &mut opt, &config(2, batch));
        let saved = checkpoint::to_bytes_with(
            &first,
            Some(&TrainingState {
                optimizer: opt.state(),
                epochs_done: 2,
                settings: String::new(),
            }),
        )
        .unwrap();
        // then a new process: the model and the optimizer come from the file
        let (mut resumed, state) = checkpoint::from_bytes_with::<f32>(&saved).unwrap();
        let state = state.expect("saved with its training state");
        let mut opt = sgd();
        opt.restore(state.optimizer).unwrap();
        metrics.extend(train(
            &mut resumed,
            &mut opt,
            &config(5, batch).resume_after(state.epochs_done),
        ));
        let resumed_bytes = checkpoint::to_bytes_with(
            &resumed,
            Some(&TrainingState {
                optimizer: opt.state(),
                epochs_done: 5,
                settings: String::new(),
            }),
        )
        .unwrap();
        assert_eq!(
            metrics, one_go,
            "{batch:?}: the same losses and learning rates"
        );
        assert!(
            resumed_bytes == whole_bytes,
            "{batch:?}: the same checkpoint, byte for byte"
        );
    }
}

#[test]
fn a_resumed_run_with_dropout_draws_the_masks_of_the_run_that_never_stopped() {
    use retroprop_layers::{Dense, Dropout, Shape, Softplus};
    let net = || {
        Sequential::<f32>::new(Shape::Flat(4))
            .push(Dense::new(4, 8, Init::XavierUniform { seed: 1 }).unwrap())
            .unwrap()
            .push(Softplus::new())
            .unwrap()
            .push(Dropout::new(0.4).unwrap())
            .unwrap()
            .push(Dense::new(8, 3, Init::XavierUniform { seed: 2 }).unwrap())
            .unwrap()
    };
    let mut whole = net();
    let mut opt = sgd();
    let one_go = train(&mut whole, &mut opt, &config(4, BatchSize::Mini(16)));
    let mut part = net();
    let mut opt2 = sgd();
    let mut metrics = train(&mut part, &mut opt2, &config(1, BatchSize::Mini(16)));
    let saved = checkpoint::to_bytes(&part).unwrap();
    let mut resumed = checkpoint::from_bytes::<f32>(&saved).unwrap();
    metrics.extend(train(
        &mut resumed,
        &mut opt2,
        &config(4, BatchSize::Mini(16)).resume_after(1),
    ));
    assert_eq!(metrics, one_go);
    let x = DMatrix::from_fn(4, 5, |i, j| (i + j) as f32 * 0.1);
    assert_eq!(resumed.infer(&x).unwrap(), whole.infer(&x).unwrap());
    // and dropout changed the training: without it the run differs
    let mut plain = mlp::<f32>(4, 8, 3, Init::XavierUniform { seed: 3 }).unwrap();
    let plain_metrics = train(&mut plain, &mut sgd(), &config(4, BatchSize::Mini(16)));
    assert_ne!(plain_metrics, one_go);
}

#[test]
fn resuming_a_finished_run_says_to_ask_for_more_epochs() {
    let mut net = mlp::<f32>(4, 6, 3, Init::Zeros).unwrap();
    let err = fit(
        &mut net,
        &data(),
        &CrossEntropy::default(),
        &mut sgd(),
        &config(3, BatchSize::Mini(8)).resume_after(3),
        |_, _| ControlFlow::Continue(()),
    )
    .unwrap_err();
    assert_eq!(err, ModelError::NothingToResume { done: 3, epochs: 3 });
    assert!(err.to_string().contains("more epochs than 3"), "{err}");
}
