//! The checkpoint format cannot change by accident: files written by version 1 and by the
//! current version are committed (`tests/fixtures/`), load, rebuild the same networks, and
//! every truncation or single-byte flip of them is a typed error.
//!
//! `RETROPROP_WRITE_FIXTURES=1 cargo test -p retroprop-models --test checkpoint_formats`
//! rewrites the current version's fixture (do it only for a deliberate format change, with a
//! new version number; version 1's were written by `fixtures/make_v1.rs`).

use std::path::PathBuf;

use nalgebra::DMatrix;
use retroprop_layers::{
    Conv2d, Conv2dConfig, Dense, Flatten, Init, Layer, LayerError, LayerSpec, MaxPool2d,
    MaxPool2dConfig, Relu, Shape, Sigmoid, Softmax, Softplus, Standardize, Tanh,
};
use retroprop_models::checkpoint::{self, CheckpointError, TrainingState};
use retroprop_models::{ModelError, Sequential, mlp};
use retroprop_optim::{Momentum, Optimizer, Sgd};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The network of `v1-every-layer-f64.ckpt` (as `fixtures/make_v1.rs` builds it).
fn every_layer() -> Sequential<f64> {
    let inner = Sequential::<f64>::new(Shape::Flat(6))
        .push(Dense::new(6, 4, Init::XavierUniform { seed: 2 }).unwrap())
        .unwrap()
        .push(Tanh::new())
        .unwrap();
    let conv = Conv2dConfig::new((1, 5, 5), 2, 3).padding(1);
    let pool = MaxPool2dConfig::new((2, 5, 5), 2);
    let flat = pool.output_shape().unwrap().len();
    Sequential::<f64>::new(Shape::image(1, 5, 5))
        .push(Standardize::new(0.25, 2.0).unwrap())
        .unwrap()
        .push(Conv2d::new(conv, Init::HeUniform { seed: 1 }).unwrap())
        .unwrap()
        .push(Relu::new())
        .unwrap()
        .push(MaxPool2d::new(pool).unwrap())
        .unwrap()
        .push(Flatten::new())
        .unwrap()
        .push(Dense::new(flat, 6, Init::XavierUniform { seed: 3 }).unwrap())
        .unwrap()
        .push(Softplus::new())
        .unwrap()
        .push(inner)
        .unwrap()
        .push(Sigmoid::new())
        .unwrap()
        .push(Dense::new(4, 3, Init::PyTorchDefault { seed: 4 }).unwrap())
        .unwrap()
        .push(Softmax::new())
        .unwrap()
}

fn input() -> DMatrix<f64> {
    DMatrix::from_fn(25, 3, |i, j| ((i * 7 + j * 11) % 13) as f64 / 6.0 - 1.0)
}

/// Momentum state after two steps on a fixed batch: what the current-version fixture carries.
fn trained() -> (Sequential<f64>, TrainingState<f64>) {
    let mut net = every_layer();
    let mut sgd = Sgd::new(0.1)
        .unwrap()
        .with_momentum(Momentum::Heavy { mu: 0.9 })
        .unwrap();
    for _ in 0..2 {
        net.zero_grad();
        let y = net.forward(&input()).unwrap();
        net.backward(&y.map(|v| v - 0.25)).unwrap();
        sgd.step(&mut net).unwrap();
    }
    let state = TrainingState {
        optimizer: sgd.state(),
        epochs_done: 2,
        settings: r#"{"note":"fixture"}"#.to_string(),
    };
    (net, state)
}

#[test]
fn version_1_files_load_into_the_networks_they_were_written_from() {
    let loaded = checkpoint::load::<f64>(fixture("v1-every-layer-f64.ckpt")).unwrap();
    let expected = every_layer();
    assert_eq!(loaded.spec(), expected.spec());
    assert_eq!(
        loaded.infer(&input()).unwrap(),
        expected.infer(&input()).unwrap()
    );
    // version 1's Standardize values are the buffers now
    let mut buffers = Vec::new();
    loaded.visit_buffers(&mut |path, b| buffers.push((path.to_string(), b.value()[0])));
    assert_eq!(
        buffers,
        [("0.mean".to_string(), 0.25), ("0.std".to_string(), 2.0)]
    );

    let mlp_file = checkpoint::load::<f32>(fixture("v1-mlp-f32.ckpt")).unwrap();
    let mlp_net = mlp::<f32>(3, 4, 2, Init::XavierUniform { seed: 5 }).unwrap();
    let x = DMatrix::from_fn(3, 2, |i, j| (i + 2 * j) as f32 * 0.5);
    assert_eq!(mlp_file.infer(&x).unwrap(), mlp_net.infer(&x).unwrap());
    // and into an existing network
    let mut other = mlp::<f32>(3, 4, 2, Init::Zeros).unwrap();
    checkpoint::load_into(&mut other, fixture("v1-mlp-f32.ckpt")).unwrap();
    assert_eq!(other.infer(&x).unwrap(), mlp_net.infer(&x).unwrap());
}

/// The largest difference between two lists of values.
fn deviation<'a>(
    a: impl IntoIterator<Item = &'a f64>,
    b: impl IntoIterator<Item = &'a f64>,
) -> f64 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Two steps of training change every parameter by ~0.1; a change of arithmetic order (a new
/// kernel summing in another order) moves the results by a few units in the last place of f64.
const SAME_TRAINING: f64 = 1e-12;

#[test]
fn the_current_version_writes_exactly_its_fixture() {
    let (net, state) = trained();
    let bytes = checkpoint::to_bytes_with(&net, Some(&state)).unwrap();
    let path = fixture("v2-every-layer-training-f64.ckpt");
    if std::env::var_os("RETROPROP_WRITE_FIXTURES").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    let file = std::fs::read(&path).unwrap();
    assert_eq!(file[8], checkpoint::FORMAT_VERSION as u8);
    // the format: what the reader takes from the fixture, the writer turns back into exactly its
    // bytes
    let (loaded, training) = checkpoint::from_bytes_with::<f64>(&file).unwrap();
    assert!(
        checkpoint::to_bytes_with(&loaded, training.as_ref()).unwrap() == file,
        "the checkpoint format changed: the committed fixture, read and written again, differs \
         (a deliberate change needs a new FORMAT_VERSION, a reader for the old one, and a new fixture)"
    );
    assert_eq!(
        bytes.len(),
        file.len(),
        "the same network and state, another size"
    );
    // the values: the fixture holds the same training as today's code, to f64 rounding
    let values = |net: &Sequential<f64>| {
        let mut all = Vec::new();
        net.visit_params(&mut |_, p| all.extend(p.value().iter().copied()));
        net.visit_buffers(&mut |_, b| all.extend(b.value().iter().copied()));
        all
    };
    assert!(deviation(&values(&loaded), &values(&net)) <= SAME_TRAINING);
    assert!(
        deviation(
            &loaded.infer(&input()).unwrap(),
            &net.infer(&input()).unwrap()
        ) <= SAME_TRAINING
    );
    let training = training.expect("the fixture has a training state");
    let (got, want) = (&training.optimizer, &state.optimizer);
    assert_eq!(
        (&got.optimizer, &got.slot_names, got.steps, got.slots.len()),
        (
            &want.optimizer,
            &want.slot_names,
            want.steps,
            want.slots.len()
        )
    );
    for (g, w) in got.slots.iter().zip(&want.slots) {
        assert_eq!((&g.path, &g.slot), (&w.path, &w.slot));
        assert!(
            deviation(&g.values, &w.values) <= SAME_TRAINING,
            "{}",
            g.path
        );
    }
    assert_eq!(
        (training.epochs_done, &training.settings),
        (state.epochs_done, &state.settings)
    );
}

#[test]
fn every_truncation_and_byte_flip_of_every_fixture_is_a_typed_error() {
    for name in [
        "v1-every-layer-f64.ckpt",
        "v2-every-layer-training-f64.ckpt",
        "v1-mlp-f32.ckpt",
    ] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let load = |b: &[u8]| -> Result<(), CheckpointError> {
            if name.ends_with("f32.ckpt") {
                checkpoint::from_bytes_with::<f32>(b).map(drop)
            } else {
                checkpoint::from_bytes_with::<f64>(b).map(drop)
            }
        };
        load(&bytes).unwrap();
        for len in 0..bytes.len() {
            let err = load(&bytes[..len]).expect_err(name);
            if len >= 8 {
                assert!(
                    matches!(err, CheckpointError::Truncated { got, .. } if got == len as u64),
                    "{name} cut at {len}: {err}"
                );
            }
        }
        for pos in 0..bytes.len() {
            for bit in [0, 3, 7] {
                let mut corrupt = bytes.clone();
                corrupt[pos] ^= 1 << bit;
                assert!(
                    load(&corrupt).is_err(),
                    "{name}: flip at byte {pos} bit {bit}"
                );
            }
        }
    }
}

#[test]
fn an_unregistered_kind_is_named_with_what_to_do() {
    struct Gate;
    impl Layer<f64> for Gate {
        fn name(&self) -> &'static str {
            "test.Gate"
        }
        fn spec(&self) -> LayerSpec {
            LayerSpec::new("test.Gate", &[1.5])
        }
        fn output_shape(&self, s: Shape) -> Result<Shape, LayerError> {
            Ok(s)
        }
        fn forward(&mut self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
            Ok(x.clone())
        }
        fn backward(&mut self, g: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
            Ok(g.clone())
        }
        fn infer(&self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
            Ok(x.clone())
        }
    }
    let net = Sequential::<f64>::new(Shape::Flat(2)).push(Gate).unwrap();
    let bytes = checkpoint::to_bytes(&net).unwrap();
    let err = checkpoint::from_bytes::<f64>(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            CheckpointError::Model(ModelError::Layer(LayerError::UnknownKind { ref kind, .. }))
                if kind == "test.Gate"
        ),
        "{err}"
    );
    assert!(err.to_string().contains("register"), "{err}");
    // a network built by hand still takes the parameters
    let mut same = Sequential::<f64>::new(Shape::Flat(2)).push(Gate).unwrap();
    checkpoint::load_into_bytes(&mut same, &bytes).unwrap();
}
