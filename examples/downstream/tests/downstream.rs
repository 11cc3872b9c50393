//! The downstream layer is a first-class citizen: its gradient passes the contract, and its
//! networks train, save and load (hyperparameters included) through the public API only.

use std::ops::ControlFlow;

use retroprop_downstream_example::{ScaledTanh, ScaledTanhConfig, register};
use retroprop_gradcheck::{Config, conformance};
use retroprop_layers::nalgebra::DMatrix;
use retroprop_layers::{Dense, Init, Layer, LayerError, Shape};
use retroprop_losses::CrossEntropy;
use retroprop_models::checkpoint::{self, CheckpointError};
use retroprop_models::{BatchSize, FitConfig, InMemory, ModelError, Sequential, evaluate, fit};
use retroprop_optim::Sgd;

fn data() -> (DMatrix<f64>, InMemory<f64>) {
    let x = DMatrix::from_fn(2, 60, |i, j| {
        let sign = if j % 2 == 0 { 1.0 } else { -1.0 };
        sign * (1.0 + ((i + j) % 5) as f64 * 0.1)
    });
    let labels = (0..60).map(|j| j % 2).collect();
    (x.clone(), InMemory::new(x, labels, 2).unwrap())
}

fn network(config: ScaledTanhConfig) -> Sequential<f64> {
    Sequential::new(Shape::Flat(2))
        .push(Dense::new(2, 5, Init::XavierUniform { seed: 1 }).unwrap())
        .unwrap()
        .push(ScaledTanh::new(config).unwrap())
        .unwrap()
        .push(Dense::new(5, 2, Init::XavierUniform { seed: 2 }).unwrap())
        .unwrap()
}

#[test]
fn its_gradient_and_contract_are_proven() {
    let x = DMatrix::from_fn(4, 3, |i, j| (i as f64 - 1.5) * 0.7 + j as f64 * 0.2);
    let report = conformance(
        || ScaledTanh::<f64>::new(ScaledTanhConfig::LECUN),
        &x,
        &Config::default(),
    )
    .unwrap();
    assert!(report.passed(), "{report}");
}

#[test]
fn a_trained_network_saves_and_loads_with_its_hyperparameters() {
    register().unwrap();
    let (x, data) = data();
    let config = ScaledTanhConfig { a: 1.5, b: 0.75 };
    let mut net = network(config);
    let mut sgd = Sgd::new(0.2).unwrap();
    fit(
        &mut net,
        &data,
        &CrossEntropy::default(),
        &mut sgd,
        &FitConfig::new(20, BatchSize::Mini(10)),
        |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(
        evaluate(&net, &data, &CrossEntropy::default())
            .unwrap()
            .accuracy,
        1.0
    );

    let bytes = checkpoint::to_bytes(&net).unwrap();
    let loaded = checkpoint::from_bytes::<f64>(&bytes).unwrap();
    assert_eq!(
        loaded.infer(&x).unwrap(),
        net.infer(&x).unwrap(),
        "identical predictions"
    );
    let spec = loaded.layers()[1].spec();
    assert_eq!(spec.kind, "downstream.ScaledTanh");
    assert_eq!(spec.config::<ScaledTanhConfig>().unwrap(), config);
    // other hyperparameters make another network: the file carries them, not defaults
    let other = network(ScaledTanhConfig::LECUN);
    assert_ne!(other.infer(&x).unwrap(), network(config).infer(&x).unwrap());
    // the same file in f32 (a checkpoint keeps its scalar type)
    assert!(matches!(
        checkpoint::from_bytes::<f32>(&bytes),
        Err(CheckpointError::ScalarMismatch { .. })
    ));
}

#[test]
fn a_corrupt_configuration_is_a_typed_error() {
    register().unwrap();
    let bad = ScaledTanhConfig {
        a: f64::INFINITY,
        b: 1.0,
    };
    assert!(matches!(
        ScaledTanh::<f64>::new(bad),
        Err(LayerError::InvalidValue { what: "a", .. })
    ));
    let spec = retroprop_layers::LayerSpec::new("downstream.ScaledTanh", &"not a configuration");
    let err = retroprop_layers::build::<f64>(&spec).map(drop).unwrap_err();
    assert!(
        matches!(err, LayerError::Config { ref kind, .. } if kind == "downstream.ScaledTanh"),
        "{err}"
    );
    let _ = ModelError::from(err);
}
