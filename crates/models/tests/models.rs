//! Composed networks proven end to end, trained, and checkpointed.

use std::ops::ControlFlow;

use nalgebra::DMatrix;
use retroprop_core::rng::Rng;
use retroprop_gradcheck::{Config, check_with_loss, conformance};
use retroprop_layers::{Dense, DenseConfig, Init, Layer, LayerSpec, Shape, Softplus, Tanh};
use retroprop_losses::{CrossEntropy, Loss, Mse, Target};
use retroprop_models::checkpoint::{self, CheckpointError};
use retroprop_models::{
    BatchSize, FitConfig, InMemory, ModelError, Sequential, SequentialConfig, Standardization,
    cnn_classifier, evaluate, fit, homework_cnn, mlp,
};
use retroprop_optim::{Momentum, Optimizer, Sgd, StepDecay, WeightDecay};

/// MNIST's standardisation, as the `retroprop` program builds its networks.
const MNIST: Option<Standardization> = Some(Standardization {
    mean: 0.1307,
    std: 0.3081,
});

fn random(rows: usize, cols: usize, lo: f64, hi: f64, seed: u64) -> DMatrix<f64> {
    let mut rng = Rng::new(seed);
    DMatrix::from_fn(rows, cols, |_, _| rng.uniform(lo, hi))
}

fn labels(n: usize, classes: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.below(classes)).collect()
}

/// `loss(y)` as the closure `check_with_loss` wants.
fn objective<'a>(
    loss: &'a dyn Loss<f64>,
    target: Target<'a, f64>,
) -> impl FnMut(&DMatrix<f64>) -> (f64, DMatrix<f64>) + 'a {
    move |y| {
        let out = loss.evaluate(y, target).unwrap();
        (out.value, out.grad)
    }
}

#[test]
fn homework_mlp_end_to_end_through_cross_entropy() {
    let mut net = mlp::<f64>(6, 5, 4, Init::XavierUniform { seed: 1 }).unwrap();
    let x = random(6, 3, -2.0, 2.0, 2);
    let y = labels(3, 4, 3);
    let ce = CrossEntropy::default();
    let report = check_with_loss(
        &mut net,
        &x,
        objective(&ce, Target::Labels(&y)),
        &Config::default(),
    )
    .unwrap();
    assert!(report.passed(), "{report}");
    let names: Vec<&str> = report.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["input", "0.weight", "0.bias", "2.weight", "2.bias"]);
}

#[test]
fn homework_cnn_end_to_end_through_a_loss() {
    // the full question-3 network (3×128×128 in, 64×32×32 out), one image, sampled entries
    let mut net = homework_cnn::<f64>(Init::PyTorchDefault { seed: 4 }).unwrap();
    let x = random(3 * 128 * 128, 1, -1.0, 1.0, 5);
    let target = random(64 * 32 * 32, 1, -1.0, 1.0, 6);
    let mse = Mse::default();
    let config = Config {
        max_entries: 24,
        ..Config::default()
    };
    let report = check_with_loss(
        &mut net,
        &x,
        objective(&mse, Target::Dense(&target)),
        &config,
    )
    .unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(report.tensors.len(), 5); // input, conv1 weight/bias, conv3 weight/bias
}

#[test]
fn mnist_cnn_end_to_end_through_cross_entropy() {
    let mut net =
        cnn_classifier::<f64>((1, 28, 28), 10, MNIST, Init::HeUniform { seed: 7 }).unwrap();
    let x = random(784, 2, 0.0, 1.0, 8);
    let y = [3, 8];
    let ce = CrossEntropy::default();
    let config = Config {
        max_entries: 48,
        ..Config::default()
    };
    let report =
        check_with_loss(&mut net, &x, objective(&ce, Target::Labels(&y)), &config).unwrap();
    assert!(report.passed(), "{report}");
}

#[test]
fn sequential_nests_and_honours_the_layer_contract() {
    let make = || -> Result<Sequential<f64>, retroprop_layers::LayerError> {
        let inner = Sequential::new(Shape::Flat(4))
            .push(Dense::new(4, 4, Init::XavierUniform { seed: 1 })?)
            .and_then(|s| s.push(Tanh::new()))
            .map_err(|_| retroprop_layers::LayerError::ZeroSize {
                layer: "test",
                what: "inner",
            })?;
        Sequential::new(Shape::Flat(3))
            .push(Dense::new(3, 4, Init::XavierUniform { seed: 2 })?)
            .and_then(|s| s.push(inner))
            .and_then(|s| s.push(Softplus::new()))
            .map_err(|_| retroprop_layers::LayerError::ZeroSize {
                layer: "test",
                what: "outer",
            })
    };
    let x = random(3, 4, -1.0, 1.0, 9);
    let result = conformance(make, &x, &Config::default()).unwrap();
    assert!(result.passed(), "{result}");
    let mut paths = Vec::new();
    make()
        .unwrap()
        .visit_params(&mut |p, _| paths.push(p.to_string()));
    assert_eq!(paths, ["0.weight", "0.bias", "1.0.weight", "1.0.bias"]);
}

#[test]
fn incompatible_layers_are_refused_when_added() {
    let err = Sequential::<f32>::new(Shape::Flat(5))
        .push(Dense::new(4, 2, Init::Zeros).unwrap())
        .unwrap_err();
    assert!(matches!(
        err,
        ModelError::Incompatible {
            index: 0,
            layer: "Dense",
            input: Shape::Flat(5),
            ..
        }
    ));
}

/// Two Gaussian-ish blobs in 2-D, one per class.
fn two_blobs(n: usize, seed: u64) -> InMemory<f64> {
    let mut rng = Rng::new(seed);
    let y: Vec<usize> = (0..n).map(|j| j % 2).collect();
    let x = DMatrix::from_fn(2, n, |i, j| {
        let centre = if y[j] == 0 { -1.5 } else { 1.5 };
        centre * if i == 0 { 1.0 } else { -0.5 } + rng.uniform(-1.0, 1.0)
    });
    InMemory::new(x, y, 2).unwrap()
}

fn train_blobs(seed: u64) -> (Sequential<f64>, Vec<f64>) {
    let data = two_blobs(200, 11);
    let mut net = mlp::<f64>(2, 16, 2, Init::XavierUniform { seed }).unwrap();
    let mut sgd = Sgd::new(0.1)
        .unwrap()
        .with_momentum(Momentum::Heavy { mu: 0.9 })
        .unwrap()
        .with_weight_decay(WeightDecay::homework(1e-4).unwrap());
    let config = FitConfig::new(15, BatchSize::Mini(20))
        .seed(5)
        .schedule(StepDecay {
            step: 10,
            gamma: 0.5,
        });
    let report = fit(
        &mut net,
        &data,
        &CrossEntropy::default(),
        &mut sgd,
        &config,
        |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    let losses = report.epochs.iter().map(|e| e.train_loss).collect();
    (net, losses)
}

#[test]
fn training_drives_the_loss_down_to_perfect_accuracy_reproducibly() {
    let (net, losses) = train_blobs(3);
    assert!(losses.last().unwrap() < &(losses[0] * 0.5), "{losses:?}");
    let eval = evaluate(&net, &two_blobs(200, 11), &CrossEntropy::default()).unwrap();
    assert_eq!(eval.accuracy, 1.0, "{}", eval.confusion);
    assert_eq!(eval.confusion.total(), 200);
    // same seeds, same parameters, bit for bit
    let (again, _) = train_blobs(3);
    assert_eq!(
        checkpoint::to_bytes(&net).unwrap(),
        checkpoint::to_bytes(&again).unwrap()
    );
    let (other, _) = train_blobs(4);
    assert_ne!(
        checkpoint::to_bytes(&net).unwrap(),
        checkpoint::to_bytes(&other).unwrap()
    );
}

#[test]
fn the_callback_can_stop_training() {
    let data = two_blobs(40, 1);
    let mut net = mlp::<f64>(2, 4, 2, Init::XavierUniform { seed: 1 }).unwrap();
    let mut sgd = Sgd::new(0.1).unwrap();
    let mut steps = 0;
    let report = fit(
        &mut net,
        &data,
        &CrossEntropy::default(),
        &mut sgd,
        &FitConfig::new(5, BatchSize::Mini(10)),
        |_, _| {
            steps += 1;
            if steps == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap();
    assert!(report.stopped_early);
    assert_eq!(report.epochs.len(), 1);
    assert_eq!(report.epochs[0].steps, 3);
}

#[test]
fn full_batch_is_one_gradient_step_on_the_whole_dataset() {
    // 2500 examples: more than one internal chunk
    let data = two_blobs(2500, 2);
    let mut a = mlp::<f64>(2, 8, 2, Init::XavierUniform { seed: 9 }).unwrap();
    let mut b = mlp::<f64>(2, 8, 2, Init::XavierUniform { seed: 9 }).unwrap();
    let ce = CrossEntropy::default();
    let mut sgd = Sgd::new(0.5)
        .unwrap()
        .with_weight_decay(WeightDecay::homework(1e-3).unwrap());
    let report = fit(
        &mut a,
        &data,
        &ce,
        &mut sgd,
        &FitConfig::new(1, BatchSize::Full),
        |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(report.epochs[0].steps, 1);
    // by hand: θ ← θ − η (∇R̂ + 2λθ) with ∇R̂ from one forward over all 2500 examples
    b.zero_grad();
    let out = ce
        .evaluate(&b.forward(data.x()).unwrap(), Target::Labels(data.labels()))
        .unwrap();
    b.backward_params(&out.grad).unwrap();
    let mut sgd_b = Sgd::new(0.5)
        .unwrap()
        .with_weight_decay(WeightDecay::homework(1e-3).unwrap());
    sgd_b.step(&mut b).unwrap();
    let (pa, pb) = (params(&a), params(&b));
    for (x, y) in pa.iter().zip(&pb) {
        assert!((x - y).abs() < 1e-13, "{x} vs {y}");
    }
    assert!((report.epochs[0].train_loss - out.value).abs() < 1e-12);
}

fn params(net: &Sequential<f64>) -> Vec<f64> {
    let mut v = Vec::new();
    net.visit_params(&mut |_, p| v.extend_from_slice(p.value().as_slice()));
    v
}

#[test]
fn full_batch_loss_decreases_every_step() {
    let data = two_blobs(300, 3);
    let mut net = mlp::<f64>(2, 8, 2, Init::XavierUniform { seed: 2 }).unwrap();
    let mut sgd = Sgd::new(0.5).unwrap();
    let report = fit(
        &mut net,
        &data,
        &CrossEntropy::default(),
        &mut sgd,
        &FitConfig::new(12, BatchSize::Full),
        |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    let losses: Vec<f64> = report.epochs.iter().map(|e| e.train_loss).collect();
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
}

#[test]
fn bad_data_and_settings_are_errors() {
    let mut net = mlp::<f64>(3, 4, 2, Init::Zeros).unwrap();
    let data = two_blobs(10, 1); // 2 features, the net takes 3
    let mut sgd = Sgd::new(0.1).unwrap();
    let r = fit(
        &mut net,
        &data,
        &CrossEntropy::default(),
        &mut sgd,
        &FitConfig::new(1, BatchSize::Mini(4)),
        |_, _| ControlFlow::Continue(()),
    );
    assert_eq!(
        r.unwrap_err(),
        ModelError::Data {
            examples: 10,
            features: 2,
            expected: 3
        }
    );
    let mut net2 = mlp::<f64>(2, 4, 2, Init::Zeros).unwrap();
    let r = fit(
        &mut net2,
        &data,
        &CrossEntropy::default(),
        &mut sgd,
        &FitConfig::new(1, BatchSize::Mini(0)),
        |_, _| ControlFlow::Continue(()),
    );
    assert_eq!(
        r.unwrap_err(),
        ModelError::Setting {
            name: "batch size",
            value: 0
        }
    );
    assert!(InMemory::new(DMatrix::<f64>::zeros(2, 3), vec![0, 1, 5], 2).is_err());
}

fn small_cnn() -> Sequential<f32> {
    cnn_classifier::<f32>((1, 28, 28), 10, MNIST, Init::HeUniform { seed: 3 }).unwrap()
}

#[test]
fn checkpoints_round_trip_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("retroprop-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cnn.ckpt");
    let net = small_cnn();
    checkpoint::save(&net, &path).unwrap();
    let loaded = checkpoint::load::<f32>(&path).unwrap();
    let x = DMatrix::from_fn(784, 3, |i, j| ((i * 7 + j * 13) % 17) as f32 / 17.0);
    assert_eq!(net.infer(&x).unwrap(), loaded.infer(&x).unwrap());
    assert_eq!(loaded.spec(), net.spec());
    // load into an existing model of the same architecture
    let mut other =
        cnn_classifier::<f32>((1, 28, 28), 10, MNIST, Init::HeUniform { seed: 99 }).unwrap();
    checkpoint::load_into(&mut other, &path).unwrap();
    assert_eq!(net.infer(&x).unwrap(), other.infer(&x).unwrap());
    // saving again over the file keeps it valid (atomic replace), and leaves no temporary
    checkpoint::save(&other, &path).unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wrong_scalar_architecture_or_version_are_typed_errors() {
    let bytes = checkpoint::to_bytes(&small_cnn()).unwrap();
    assert!(matches!(
        checkpoint::from_bytes::<f64>(&bytes),
        Err(CheckpointError::ScalarMismatch {
            expected: "f64",
            ..
        })
    ));
    let mut mlp_net = mlp::<f32>(784, 10, 10, Init::Zeros).unwrap();
    assert!(matches!(
        checkpoint::load_into_bytes(&mut mlp_net, &bytes),
        Err(CheckpointError::ArchitectureMismatch { .. })
    ));
    let mut v3 = bytes.clone();
    v3[8] = 3;
    assert_eq!(
        checkpoint::from_bytes::<f32>(&v3).unwrap_err(),
        CheckpointError::UnsupportedVersion {
            found: 3,
            supported: 2
        }
    );
    assert_eq!(
        checkpoint::from_bytes::<f32>(b"not a checkpoint at all").unwrap_err(),
        CheckpointError::BadMagic
    );
    let missing = checkpoint::load::<f32>("/nonexistent/dir/model.ckpt");
    assert!(matches!(missing, Err(CheckpointError::Io { .. })));
}

#[test]
fn every_truncation_is_a_typed_error() {
    let bytes =
        checkpoint::to_bytes(&mlp::<f32>(5, 4, 3, Init::XavierUniform { seed: 1 }).unwrap())
            .unwrap();
    for len in 0..bytes.len() {
        let r = checkpoint::from_bytes::<f32>(&bytes[..len]);
        assert!(
            r.is_err(),
            "a file cut at {len} of {} bytes loaded",
            bytes.len()
        );
        // past the magic number, a cut is reported as a truncation, not as corruption
        if len >= 8 {
            let err = r.unwrap_err();
            assert!(
                matches!(err, CheckpointError::Truncated { got, .. } if got == len as u64),
                "cut at {len}: {err}"
            );
            assert!(err.to_string().contains("truncated"), "{err}");
        }
    }
    assert!(checkpoint::from_bytes::<f32>(&bytes).is_ok());
}

#[test]
fn every_single_byte_flip_is_detected() {
    let net = small_cnn();
    let bytes = checkpoint::to_bytes(&net).unwrap();
    let mut rng = Rng::new(17);
    // every byte of the prefix and header, and a sample of the parameter bytes
    let positions: Vec<usize> = (0..200.min(bytes.len()))
        .chain((0..300).map(|_| rng.below(bytes.len())))
        .collect();
    for pos in positions {
        let mut corrupt = bytes.clone();
        corrupt[pos] ^= 1 << rng.below(8);
        match checkpoint::from_bytes::<f32>(&corrupt) {
            Err(_) => {}
            Ok(_) => panic!("a flip at byte {pos} went unnoticed"),
        }
    }
}

#[test]
fn a_forged_header_cannot_cause_a_huge_allocation_or_deep_recursion() {
    // a header claiming a dense layer of 2³⁰ × 2³⁰ weights, with a valid checksum
    let sequential = |input| LayerSpec::new("Sequential", &SequentialConfig { input });
    let dense = DenseConfig {
        d_in: 1 << 30,
        d_out: 1 << 30,
    };
    let spec =
        sequential(Shape::Flat(1 << 30)).with_children(vec![LayerSpec::new("Dense", &dense)]);
    struct Fake(LayerSpec);
    impl Layer<f32> for Fake {
        fn name(&self) -> &'static str {
            "Fake"
        }
        fn spec(&self) -> LayerSpec {
            self.0.clone()
        }
        fn output_shape(&self, s: Shape) -> Result<Shape, retroprop_layers::LayerError> {
            Ok(s)
        }
        fn forward(
            &mut self,
            x: &DMatrix<f32>,
        ) -> Result<DMatrix<f32>, retroprop_layers::LayerError> {
            Ok(x.clone())
        }
        fn backward(
            &mut self,
            g: &DMatrix<f32>,
        ) -> Result<DMatrix<f32>, retroprop_layers::LayerError> {
            Ok(g.clone())
        }
        fn infer(&self, x: &DMatrix<f32>) -> Result<DMatrix<f32>, retroprop_layers::LayerError> {
            Ok(x.clone())
        }
    }
    let bytes = checkpoint::to_bytes(&Fake(spec)).unwrap();
    let err = checkpoint::from_bytes::<f32>(&bytes).unwrap_err();
    assert!(matches!(err, CheckpointError::Header { .. }), "{err}");
    // nesting deeper than MAX_DEPTH
    let mut deep = LayerSpec::unit("Softplus");
    for _ in 0..(checkpoint::MAX_DEPTH + 5) {
        deep = sequential(Shape::Flat(2)).with_children(vec![deep]);
    }
    let bytes = checkpoint::to_bytes(&Fake(deep)).unwrap();
    assert!(matches!(
        checkpoint::from_bytes::<f32>(&bytes),
        Err(CheckpointError::Header { .. })
    ));
}

#[test]
fn f32_training_step_matches_f64_to_f32_precision() {
    let x = random(6, 8, -1.0, 1.0, 1);
    let y = labels(8, 3, 2);
    let mut a = mlp::<f64>(6, 5, 3, Init::XavierUniform { seed: 1 }).unwrap();
    let mut b = mlp::<f32>(6, 5, 3, Init::XavierUniform { seed: 1 }).unwrap();
    let oa = CrossEntropy::default()
        .evaluate(&a.forward(&x).unwrap(), Target::Labels(&y))
        .unwrap();
    let ob = CrossEntropy::default()
        .evaluate(
            &b.forward(&x.map(|v| v as f32)).unwrap(),
            Target::Labels(&y),
        )
        .unwrap();
    assert!((oa.value - f64::from(ob.value)).abs() < 1e-6);
}

#[test]
fn an_empty_data_set_is_said_to_be_empty() {
    let mut net = mlp::<f64>(3, 4, 2, Init::Zeros).unwrap();
    let empty = InMemory::new(DMatrix::zeros(3, 0), Vec::new(), 2).unwrap();
    let mut sgd = Sgd::new(0.1).unwrap();
    let r = fit(
        &mut net,
        &empty,
        &CrossEntropy::default(),
        &mut sgd,
        &FitConfig::new(1, BatchSize::Mini(4)),
        |_, _| ControlFlow::Continue(()),
    );
    let err = r.unwrap_err();
    assert_eq!(err, ModelError::EmptyData);
    assert!(err.to_string().contains("no example"), "{err}");
}

#[test]
fn an_architecture_mismatch_names_both_layers() {
    let saved = mlp::<f32>(5, 4, 3, Init::XavierUniform { seed: 1 }).unwrap();
    let bytes = checkpoint::to_bytes(&saved).unwrap();
    let mut other = mlp::<f32>(5, 6, 3, Init::XavierUniform { seed: 1 }).unwrap();
    let err = checkpoint::load_into_bytes(&mut other, &bytes).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            r#"Dense {"d_in":5,"d_out":4} in the file but Dense {"d_in":5,"d_out":6} in the model"#
        ) && !text.contains("Some("),
        "{text}"
    );
}

#[test]
fn max_pool_and_conv_say_why_an_output_is_empty() {
    let pool = retroprop_layers::MaxPool2dConfig::new((1, 2, 2), 3).output_size();
    let text = pool.unwrap_err().to_string();
    assert!(
        text.contains("smaller than the kernel 3") && !text.contains("dilation"),
        "{text}"
    );
    let conv = retroprop_layers::Conv2dConfig::new((1, 4, 4), 1, 3)
        .dilation(2)
        .output_size();
    let text = conv.unwrap_err().to_string();
    assert!(text.contains("dilation 2"), "{text}");
}

/// 64-bit FNV-1a, the checkpoint's checksum (to forge files whose checksum is valid).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn with_checksum(mut body: Vec<u8>) -> Vec<u8> {
    let sum = fnv1a(&body);
    body.extend(sum.to_le_bytes());
    body
}

#[test]
fn an_undecodable_header_is_described_not_dumped() {
    // a version-1 file (a closed list of kinds, encoded by position)
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/v1-mlp-f32.ckpt"
    );
    let bytes = std::fs::read(path).unwrap();
    let body = bytes[..bytes.len() - 8].to_vec();
    // header: "f32" (a length byte and 3 bytes), the node count, then the first node's kind:
    // make it a kind no version has written
    let mut unknown_kind = body.clone();
    unknown_kind[20 + 1 + 3 + 1] = 200;
    // and a header whose declared length stops one byte short
    let mut short = body;
    let declared = u64::from_le_bytes(short[12..20].try_into().unwrap());
    short[12..20].copy_from_slice(&(declared - 1).to_le_bytes());
    for (forged, says) in [(unknown_kind, "does not know"), (short, "")] {
        let err = checkpoint::from_bytes::<f32>(&with_checksum(forged)).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, CheckpointError::Header { .. }), "{err:?}");
        assert!(text.contains(says), "{text}");
        for internal in [
            "UnexpectedEnd",
            "OtherString",
            "variant index",
            "additional",
        ] {
            assert!(!text.contains(internal), "{text}");
        }
    }
}

#[test]
fn a_state_dict_moves_every_tensor_by_path_and_a_bad_one_changes_nothing() {
    use retroprop_layers::{LayerError, load_state_dict, state_dict};
    let from =
        retroprop_models::mlp_classifier::<f64>(3, 4, 2, MNIST, Init::XavierUniform { seed: 1 })
            .unwrap();
    let mut into = retroprop_models::mlp_classifier::<f64>(3, 4, 2, None, Init::Zeros).unwrap();
    let dict = state_dict(&from);
    let keys: Vec<&str> = dict.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "0.mean", "0.std", "1.bias", "1.weight", "3.bias", "3.weight"
        ]
    );
    // a network without the standardisation has other paths: every difference is named, and
    // nothing is written
    let before = state_dict(&into);
    let err = load_state_dict(&mut into, &dict).unwrap_err();
    assert!(
        matches!(err, LayerError::StateDict { ref missing, ref unexpected, .. }
        if missing.len() == 4 && unexpected.len() == 6),
        "{err}"
    );
    assert_eq!(state_dict(&into), before);
    // the same architecture takes them all
    let mut same = retroprop_models::mlp_classifier::<f64>(3, 4, 2, MNIST, Init::Zeros).unwrap();
    load_state_dict(&mut same, &dict).unwrap();
    let x = DMatrix::from_fn(3, 2, |i, j| (i + j) as f64);
    assert_eq!(same.infer(&x).unwrap(), from.infer(&x).unwrap());
    // a wrong shape is named with both shapes
    let mut bad = dict.clone();
    bad.insert("1.weight".into(), DMatrix::zeros(3, 4));
    let err = load_state_dict(&mut same, &bad).unwrap_err().to_string();
    assert!(err.contains("`1.weight` is 4×3, given 3×4"), "{err}");
}

#[test]
fn resnet_end_to_end_through_cross_entropy_with_dropout_held_off() {
    use retroprop_models::{ResNetOptions, resnet_classifier};
    // dropout 0: the function is deterministic; batch norm couples the 4 examples
    let options = ResNetOptions {
        width: 2,
        dropout: 0.0,
    };
    let mut net =
        resnet_classifier::<f64>((1, 8, 8), 3, MNIST, options, Init::HeNormal { seed: 9 }).unwrap();
    let x = random(64, 4, 0.0, 1.0, 10);
    let y = [0, 2, 1, 2];
    let ce = CrossEntropy::default();
    let config = Config {
        max_entries: 24,
        ..Config::default()
    };
    let report =
        check_with_loss(&mut net, &x, objective(&ce, Target::Labels(&y)), &config).unwrap();
    assert!(report.passed(), "{report}");
}
