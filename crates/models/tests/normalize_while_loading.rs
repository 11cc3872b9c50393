//! A network's leading `Standardize` layer is applied while `fit` loads each batch, and skipped
//! in the forward pass: training gives the bits of the same network without the layer trained on
//! data standardised beforehand, in mini-batches and in full batch.

use std::ops::ControlFlow;

use nalgebra::DMatrix;
use retroprop_core::Normalize;
use retroprop_core::rng::Rng;
use retroprop_layers::{Init, Layer, LayerError};
use retroprop_losses::CrossEntropy;
use retroprop_models::{
    BatchSize, FitConfig, InMemory, Sequential, Standardization, fit, mlp_classifier,
};
use retroprop_optim::{Sgd, WeightDecay};

const MEAN: f64 = 0.1307;
const STD: f64 = 0.3081;

/// 40 seeded 28×28 "images" in [0, 1] with 10 labels.
fn images() -> (DMatrix<f32>, Vec<usize>) {
    let mut rng = Rng::new(21);
    let x = DMatrix::from_fn(784, 40, |_, _| rng.uniform(0.0, 1.0) as f32);
    (x, (0..40).map(|i| (i * 3) % 10).collect())
}

fn mlp(standardize: bool) -> Sequential<f32> {
    let standardize = standardize.then_some(Standardization {
        mean: MEAN,
        std: STD,
    });
    mlp_classifier(784, 32, 10, standardize, Init::XavierUniform { seed: 4 }).unwrap()
}

fn params(net: &Sequential<f32>) -> Vec<u32> {
    let mut bits = Vec::new();
    net.visit_params(&mut |_, p| bits.extend(p.value().iter().map(|v| v.to_bits())));
    bits
}

/// The parameters after two epochs of `batch`.
fn trained(mut net: Sequential<f32>, data: &InMemory<f32>, batch: BatchSize) -> Vec<u32> {
    let mut sgd = Sgd::new(0.05)
        .unwrap()
        .with_weight_decay(WeightDecay::homework(1e-4).unwrap());
    let config = FitConfig::new(2, batch).seed(7);
    let report = fit(
        &mut net,
        data,
        &CrossEntropy::default(),
        &mut sgd,
        &config,
        |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(report.epochs.len(), 2);
    params(&net)
}

#[test]
fn standardising_while_loading_trains_the_bits_of_standardised_data() {
    let (x, labels) = images();
    let raw = InMemory::new(x.clone(), labels.clone(), 10).unwrap();
    let normalize = Normalize::new(MEAN as f32, STD as f32);
    let standardised = InMemory::new(x.map(|v| normalize.apply(v)), labels, 10).unwrap();
    // the layer has no parameters: both networks start from the same weights
    assert_eq!(params(&mlp(true)), params(&mlp(false)));
    assert_eq!(mlp(true).leading_normalization(), Some(normalize));
    assert_eq!(mlp(false).leading_normalization(), None);
    for batch in [BatchSize::Mini(16), BatchSize::Full] {
        let with_layer = trained(mlp(true), &raw, batch);
        assert_eq!(
            with_layer,
            trained(mlp(false), &standardised, batch),
            "{batch:?}"
        );
        assert_ne!(
            with_layer,
            params(&mlp(true)),
            "{batch:?}: training moved nothing"
        );
    }
}

#[test]
fn a_network_without_a_leading_normalisation_refuses_a_normalised_batch() {
    let mut net = mlp(false);
    assert_eq!(
        net.forward_normalized(DMatrix::zeros(784, 2)),
        Err(LayerError::NotNormalizing {
            layer: "Sequential",
            first: "Dense"
        })
    );
    let mut empty = Sequential::<f32>::new(retroprop_layers::Shape::Flat(3));
    assert!(matches!(
        empty.forward_normalized(DMatrix::zeros(3, 1)),
        Err(LayerError::NotNormalizing { first: "none", .. })
    ));
    // with the layer, the batch goes to the second layer: 784 rows in, 10 out
    assert_eq!(
        mlp(true)
            .forward_normalized(DMatrix::zeros(784, 2))
            .unwrap()
            .shape(),
        (10, 2)
    );
}
