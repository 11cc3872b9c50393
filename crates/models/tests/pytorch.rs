//! Weights that travel: networks trained in PyTorch (`fixtures/torch/make_fixtures.py`) load
//! here through safetensors and predict what PyTorch predicted; ours export and come back bit
//! for bit; hostile files are typed errors.

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use retroprop_data::{Source, mnist};
use retroprop_layers::{Init, Layer};
use retroprop_models::safetensors::{self as st, TensorsError};
use retroprop_models::{Sequential, Standardization, cnn_classifier, mlp_classifier};
use safetensors::SafeTensors;

const MNIST: Option<Standardization> = Some(Standardization {
    mean: mnist::MEAN,
    std: mnist::STD,
});

mod torch_common;
use torch_common::{fixture, test_images};

/// The networks of the fixtures, as retroprop builds them (`Init::Zeros`: the file sets all).
fn network<T: Scalar>(kind: &str) -> Sequential<T> {
    match kind {
        "mlp" => mlp_classifier(784, 32, 10, MNIST, Init::Zeros).unwrap(),
        _ => cnn_classifier(mnist::IMAGE, 10, MNIST, Init::Zeros).unwrap(),
    }
}

/// PyTorch's logits on the first 100 test images, `[100, 10]` row-major.
fn torch_logits(name: &str) -> Vec<f64> {
    let bytes = fixture("logits.safetensors");
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let t = file.tensor(name).unwrap();
    assert_eq!(t.shape(), [100, 10]);
    if name.ends_with("f32") {
        t.data()
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())))
            .collect()
    } else {
        t.data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }
}

/// Worst `|ours − torch| / max(1, |torch|)` over the first 100 test images, and whether every
/// arg-max agrees.
fn compare<T: Scalar>(net: &Sequential<T>, torch: &[f64]) -> (f64, bool) {
    let test = test_images();
    let indices: Vec<usize> = (0..100).collect();
    let mut x = DMatrix::<T>::zeros(784, 100);
    let mut labels = Vec::new();
    test.gather(&indices, &mut x, &mut labels);
    let ours = net.infer(&x).unwrap();
    let mut worst = 0.0f64;
    let mut same_argmax = true;
    for j in 0..100 {
        let theirs = &torch[j * 10..(j + 1) * 10];
        for (k, &t) in theirs.iter().enumerate() {
            worst = worst.max((ours[(k, j)].to_f64() - t).abs() / t.abs().max(1.0));
        }
        let argmax = |v: &mut dyn Iterator<Item = f64>| {
            v.enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |b, (k, v)| if v > b.1 { (k, v) } else { b },
                )
                .0
        };
        same_argmax &= argmax(&mut ours.column(j).iter().map(|v| v.to_f64()))
            == argmax(&mut theirs.iter().copied());
    }
    (worst, same_argmax)
}

#[test]
fn pytorch_networks_predict_here_what_they_predicted_there() {
    for kind in ["mlp", "cnn"] {
        let mut net = network::<f32>(kind);
        st::load_into_bytes(&mut net, &fixture(&format!("{kind}-f32.safetensors"))).unwrap();
        let (worst, same) = compare(&net, &torch_logits(&format!("{kind}_f32")));
        eprintln!("{kind} f32: worst relative difference from PyTorch's logits {worst:.1e}");
        assert!(
            worst < 1e-5 && same,
            "{kind} f32: worst relative error {worst:e}, same arg-max {same}"
        );
        // f64 weights into an f64 network: to 1e-12
        let mut net = network::<f64>(kind);
        st::load_into_bytes(&mut net, &fixture(&format!("{kind}-f64.safetensors"))).unwrap();
        let (worst, same) = compare(&net, &torch_logits(&format!("{kind}_f64")));
        eprintln!("{kind} f64: worst relative difference from PyTorch's logits {worst:.1e}");
        assert!(
            worst < 1e-12 && same,
            "{kind} f64: worst relative error {worst:e}"
        );
        // F32 weights also load into an f64 network (exactly widened)
        let mut wide = network::<f64>(kind);
        st::load_into_bytes(&mut wide, &fixture(&format!("{kind}-f32.safetensors"))).unwrap();
    }
}

#[test]
fn pytorch_networks_reach_here_the_accuracy_pytorch_measured() {
    let measured: serde_json::Value = serde_json::from_slice(&fixture("accuracy.json")).unwrap();
    let test = test_images();
    for kind in ["mlp", "cnn"] {
        let mut net = network::<f32>(kind);
        st::load_into_bytes(&mut net, &fixture(&format!("{kind}-f32.safetensors"))).unwrap();
        let eval =
            retroprop_models::evaluate(&net, &test, &retroprop_losses::CrossEntropy::default())
                .unwrap();
        let correct = (eval.accuracy * 10_000.0).round() as u64;
        assert_eq!(
            correct,
            measured[kind].as_u64().unwrap(),
            "{kind}: correct test images"
        );
    }
}

#[test]
fn an_export_comes_back_bit_for_bit_and_names_tensors_as_pytorch_does() {
    for kind in ["mlp", "cnn"] {
        let net = match kind {
            "mlp" => mlp_classifier::<f32>(784, 32, 10, MNIST, Init::XavierUniform { seed: 4 }),
            _ => cnn_classifier::<f32>(mnist::IMAGE, 10, MNIST, Init::HeUniform { seed: 4 }),
        }
        .unwrap();
        let bytes = st::to_bytes(&net).unwrap();
        assert!(st::is_safetensors(&bytes));
        let back = st::from_bytes::<f32>(&bytes).unwrap();
        assert_eq!(
            retroprop_layers::state_dict(&back),
            retroprop_layers::state_dict(&net),
            "{kind}: every parameter and buffer"
        );
        let x = DMatrix::from_fn(784, 3, |i, j| ((i * 3 + j * 7) % 11) as f32 / 11.0);
        assert_eq!(back.infer(&x).unwrap(), net.infer(&x).unwrap());
        // the names and shapes of PyTorch's state_dict of the equivalent module
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let mut names: Vec<(String, Vec<usize>)> = file
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, t.shape().to_vec()))
            .collect();
        names.sort();
        let torch_file = fixture(&format!("{kind}-f32.safetensors"));
        let torch = SafeTensors::deserialize(&torch_file).unwrap();
        let mut expected: Vec<(String, Vec<usize>)> = torch
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, t.shape().to_vec()))
            .collect();
        expected.sort();
        assert_eq!(names, expected, "{kind}");
    }
}

#[test]
fn wrong_files_are_typed_errors_naming_every_difference() {
    // a CNN file into the MLP: every missing and unexpected tensor in one error
    let mut mlp = network::<f32>("mlp");
    let err = st::load_into_bytes(&mut mlp, &fixture("cnn-f32.safetensors")).unwrap_err();
    let TensorsError::Names {
        missing,
        unexpected,
    } = &err
    else {
        panic!("{err}");
    };
    // (its 0.weight and 0.bias have the MLP's names: their shapes would be refused next)
    assert_eq!(missing, &["2.bias", "2.weight"]);
    assert_eq!(unexpected, &["3.bias", "3.weight", "7.bias", "7.weight"]);
    // a file written by PyTorch has no architecture: say what to do
    let err = st::from_bytes::<f32>(&fixture("mlp-f32.safetensors")).unwrap_err();
    assert_eq!(err, TensorsError::NoArchitecture);
    assert!(err.to_string().contains("--model"), "{err}");
    // another width: the shape is named
    let mut wide = mlp_classifier::<f32>(784, 64, 10, MNIST, Init::Zeros).unwrap();
    let err = st::load_into_bytes(&mut wide, &fixture("mlp-f32.safetensors")).unwrap_err();
    assert!(
        matches!(err, TensorsError::Shape { ref found, .. } if found == &[32, 784]),
        "{err}"
    );
    // a DataParallel prefix is accepted
    let file = fixture("mlp-f32.safetensors");
    let st_file = SafeTensors::deserialize(&file).unwrap();
    let prefixed: Vec<(String, safetensors::tensor::TensorView<'_>)> = st_file
        .tensors()
        .into_iter()
        .map(|(n, t)| (format!("module.{n}"), t))
        .collect();
    let bytes = safetensors::serialize(prefixed, None).unwrap();
    st::load_into_bytes(&mut network::<f32>("mlp"), &bytes).unwrap();
}

#[test]
fn every_truncation_and_thousands_of_byte_flips_never_panic_and_corruption_is_detected() {
    let net = network::<f32>("cnn");
    let ours = st::to_bytes(&net).unwrap();
    for (name, bytes) in [
        ("pytorch cnn", fixture("cnn-f32.safetensors")),
        ("our export", ours),
    ] {
        for len in 0..bytes.len() {
            let mut target = network::<f32>("cnn");
            assert!(
                st::load_into_bytes(&mut target, &bytes[..len]).is_err(),
                "{name} cut at {len} of {} bytes loaded",
                bytes.len()
            );
        }
        let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut rng = retroprop_core::rng::Rng::new(9);
        let (mut errors, mut header_flips) = (0, 0);
        for k in 0..3000 {
            // every byte of the header once, then random positions anywhere
            let pos = if k < header.min(2000) {
                k
            } else {
                rng.below(bytes.len())
            };
            let mut corrupt = bytes.clone();
            corrupt[pos] ^= 1 << rng.below(8);
            let mut target = network::<f32>("cnn");
            let result = st::load_into_bytes(&mut target, &corrupt);
            errors += usize::from(result.is_err());
            header_flips += usize::from(pos < header);
            if name == "our export" && pos >= header {
                // our exports carry a checksum of the data: a flipped value is detected
                assert!(
                    matches!(result, Err(TensorsError::Checksum { .. })),
                    "flip at {pos}: {result:?}"
                );
            }
        }
        assert!(
            errors > 0 && header_flips > 0,
            "{name}: {errors} errors, {header_flips} header flips"
        );
    }
}
