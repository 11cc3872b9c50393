//! Same seed, same bits, at any thread count: training the CNN and the MLP on 1, 2 and 3
//! threads gives bit-identical parameters (the reductions over examples use fixed chunks,
//! summed in order, whatever the number of threads).

use std::ops::ControlFlow;

use nalgebra::DMatrix;
use retroprop_core::rng::Rng;
use retroprop_layers::{Init, Layer};
use retroprop_losses::CrossEntropy;
use retroprop_models::{
    BatchSize, FitConfig, InMemory, Sequential, Standardization, cnn_classifier, fit,
    mlp_classifier,
};

const MNIST: Option<Standardization> = Some(Standardization {
    mean: 0.1307,
    std: 0.3081,
});
use retroprop_optim::{Momentum, Sgd, WeightDecay};

/// 48 seeded 28×28 "images" in [0, 1] with 10 labels.
fn images() -> InMemory<f32> {
    let mut rng = Rng::new(9);
    let x = DMatrix::from_fn(784, 48, |_, _| rng.uniform(0.0, 1.0) as f32);
    let labels = (0..48).map(|i| (i * 7) % 10).collect();
    InMemory::new(x, labels, 10).unwrap()
}

/// The bits of `build()`'s parameters after `fit` with `sgd` and `config` on `data`, on
/// `threads` rayon threads.
fn bits_after(
    threads: usize,
    build: fn() -> Sequential<f32>,
    data: &InMemory<f32>,
    mut sgd: Sgd<f32>,
    config: &FitConfig,
) -> Vec<u32> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut net = build();
        let loss = CrossEntropy::default();
        fit(&mut net, data, &loss, &mut sgd, config, |_, _| {
            ControlFlow::Continue(())
        })
        .unwrap();
        let mut bits = Vec::new();
        net.visit_params(&mut |_, p| bits.extend(p.value().iter().map(|v| v.to_bits())));
        bits
    })
}

/// The parameters after one epoch of mini-batches of 16 on `threads` rayon threads.
fn trained_on(threads: usize, build: fn() -> Sequential<f32>) -> Vec<u32> {
    let sgd = Sgd::new(0.01)
        .and_then(|s| s.with_momentum(Momentum::Heavy { mu: 0.9 }))
        .unwrap()
        .with_weight_decay(WeightDecay::homework(1e-4).unwrap());
    let config = FitConfig::new(1, BatchSize::Mini(16)).seed(3);
    bits_after(threads, build, &images(), sgd, &config)
}

#[track_caller]
fn assert_same_bits_on_1_2_3_threads(build: fn() -> Sequential<f32>) {
    let one = trained_on(1, build);
    for threads in [2, 3] {
        let other = trained_on(threads, build);
        let differing = one.iter().zip(&other).filter(|(a, b)| a != b).count();
        assert_eq!(
            differing,
            0,
            "{threads} threads: {differing} of {} parameters differ",
            one.len()
        );
    }
}

#[test]
fn the_cnn_trains_to_the_same_bits_on_1_2_and_3_threads() {
    assert_same_bits_on_1_2_3_threads(|| {
        cnn_classifier::<f32>((1, 28, 28), 10, MNIST, Init::HeUniform { seed: 4 }).unwrap()
    });
}

#[test]
fn the_mlp_trains_to_the_same_bits_on_1_2_and_3_threads() {
    assert_same_bits_on_1_2_3_threads(|| {
        mlp_classifier::<f32>(784, 32, 10, MNIST, Init::XavierUniform { seed: 4 }).unwrap()
    });
}

/// Full-batch descent over 2 200 examples: three chunks, summed in two lanes (one per core when
/// there are two) whose results are added in a fixed order. In one process the helpers of
/// `core::team` are started once, so this varies rayon's pool; `crates/cli/tests/threads.rs`
/// varies the helpers too (`--threads 1` to `8`, separate processes, a full batch of two
/// chunks), and the lanes' unit test checks them against the two halves computed apart.
fn full_batch_on(threads: usize) -> Vec<u32> {
    let mut rng = Rng::new(12);
    let x = DMatrix::from_fn(784, 2200, |_, _| rng.uniform(0.0, 1.0) as f32);
    let data = InMemory::new(x, (0..2200).map(|i| (i * 3) % 10).collect(), 10).unwrap();
    let build =
        || mlp_classifier::<f32>(784, 32, 10, MNIST, Init::XavierUniform { seed: 4 }).unwrap();
    let config = FitConfig::new(2, BatchSize::Full).seed(3);
    bits_after(threads, build, &data, Sgd::new(0.1).unwrap(), &config)
}

#[test]
fn full_batch_training_gives_the_same_bits_on_1_2_and_3_threads() {
    let one = full_batch_on(1);
    for threads in [2, 3] {
        assert!(full_batch_on(threads) == one, "{threads} threads");
    }
}
