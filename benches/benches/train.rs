//! Training on MNIST with the peer benchmark's settings, so regressions show and the figures
//! compare with `../shared/bench/peers/python/torch_bench.py --threads 2 --workloads
//! mlp,mlp_full,mnist_cnn` run on the same machine:
//!
//! - `train/mlp_epoch/n128`: one epoch of the homework MLP 784 → 256 softplus → 10, batch 128,
//!   SGD η 0.1, no momentum, PyTorch weight decay 1e-4 (λ = 5e-5 in the homework's R̂ + λ‖θ‖²);
//! - `train/mlp_full_step`: one full-batch gradient-descent step over all 60 000 images;
//! - `train/mnist_cnn/100_steps/n64`: 100 steps of the MNIST CNN at batch 64, η 0.05 (an epoch
//!   is 938 steps);
//! - `train/resnet/20_steps/n128`: 20 steps of the residual CNN of `retroprop train --model
//!   resnet` at batch 128 with its augmentation (an epoch is 469 steps).
//!
//! The networks include the `Standardize` layer of `retroprop train` (PyTorch's script feeds raw
//! pixels); it costs one pass over the batch.

use std::ops::ControlFlow;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use retroprop_data::Augmentation;
use retroprop_data::mnist;
use retroprop_data::{Images, Mnist};
use retroprop_layers::Init;
use retroprop_losses::CrossEntropy;
use retroprop_models::{
    BatchSize, FitConfig, ResNetOptions, Sequential, Standardization, cnn_classifier, fit,
    mlp_classifier, resnet_classifier,
};
use retroprop_optim::{Sgd, WeightDecay};

fn mnist() -> Mnist {
    Mnist::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")).expect("shipped MNIST")
}

fn run(net: &mut Sequential<f32>, data: &Images, lr: f64, decay: f64, batch: BatchSize) {
    run_with(net, data, lr, decay, FitConfig::new(1, batch));
}

fn run_with(net: &mut Sequential<f32>, data: &Images, lr: f64, decay: f64, config: FitConfig) {
    let mut sgd = Sgd::new(lr)
        .unwrap()
        .with_weight_decay(WeightDecay::homework(decay).unwrap());
    fit(
        net,
        data,
        &CrossEntropy::default(),
        &mut sgd,
        &config,
        |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
}

/// The program's MLP: MNIST's standardisation, 784 → 256 softplus → 10.
fn mnist_mlp() -> Sequential<f32> {
    let standardize = Standardization {
        mean: mnist::MEAN,
        std: mnist::STD,
    };
    mlp_classifier(
        784,
        256,
        10,
        Some(standardize),
        Init::XavierUniform { seed: 1 },
    )
    .unwrap()
}

fn train(c: &mut Criterion) {
    let data = mnist();
    let mut group = c.benchmark_group("train");
    group.sample_size(10);
    let mut mlp = mnist_mlp();
    group.bench_function("mlp_epoch/n128", |b| {
        b.iter(|| run(&mut mlp, &data.train, 0.1, 5e-5, BatchSize::Mini(128)));
    });
    let mut full = mnist_mlp();
    group.bench_function("mlp_full_step", |b| {
        b.iter(|| run(&mut full, &data.train, 0.05, 5e-5, BatchSize::Full));
    });
    let subset = data.train.take(6400);
    let mut cnn = cnn_classifier::<f32>(
        mnist::IMAGE,
        10,
        Some(Standardization {
            mean: mnist::MEAN,
            std: mnist::STD,
        }),
        Init::HeUniform { seed: 1 },
    )
    .unwrap();
    group.bench_function("mnist_cnn/100_steps/n64", |b| {
        b.iter(|| run(&mut cnn, &subset, 0.05, 0.0, BatchSize::Mini(64)));
    });
    let standardize = Some(Standardization {
        mean: mnist::MEAN,
        std: mnist::STD,
    });
    let mut resnet = resnet_classifier::<f32>(
        mnist::IMAGE,
        10,
        standardize,
        ResNetOptions::default(),
        Init::HeNormal { seed: 1 },
    )
    .unwrap();
    let steps = data.train.take(20 * 128);
    let augment = Augmentation::new(mnist::IMAGE, 2, 10.0).unwrap();
    group.bench_function("resnet/20_steps/n128", |b| {
        b.iter(|| {
            let config = FitConfig::new(1, BatchSize::Mini(128)).augment(augment);
            run_with(&mut resnet, &steps, 0.05, 5e-5, config);
        });
    });
    group.finish();
}

criterion_group!(benches, train);
criterion_main!(benches);
