//! The residual CNN against PyTorch (`fixtures/torch/make_resnet.py`): a network trained there
//! (convolutions, batch norms with their running statistics, residual blocks, global average
//! pooling) loads here and gives PyTorch's eval-mode logits; in training mode the same batch
//! gives PyTorch's logits, loss, every parameter gradient and every updated running statistic.
//! Its export names every tensor as PyTorch does, the int64 batch count included.

use std::collections::BTreeSet;

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use retroprop_data::{Source, mnist};
use retroprop_layers::{Init, Layer};
use retroprop_losses::{CrossEntropy, Loss, Target};
use retroprop_models::safetensors as st;
use retroprop_models::{ResNetOptions, Sequential, Standardization, resnet_classifier};
use safetensors::{Dtype, SafeTensors};

mod torch_common;
use torch_common::{fixture, test_images};

const MNIST: Option<Standardization> = Some(Standardization {
    mean: mnist::MEAN,
    std: mnist::STD,
});

fn network<T: Scalar>(dropout: f64) -> Sequential<T> {
    let options = ResNetOptions {
        dropout,
        ..ResNetOptions::default()
    };
    let mut net = resnet_classifier(mnist::IMAGE, 10, MNIST, options, Init::Zeros).unwrap();
    st::load_into_bytes(&mut net, &fixture("resnet-f32.safetensors")).unwrap();
    net
}

/// A float64 tensor of the outputs file, row-major.
fn output(name: &str) -> (Vec<usize>, Vec<f64>) {
    let bytes = fixture("resnet-outputs.safetensors");
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let t = file.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let values = t
        .data()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (t.shape().to_vec(), values)
}

fn images<T: Scalar>(from: usize, n: usize) -> DMatrix<T> {
    let indices: Vec<usize> = (from..from + n).collect();
    let mut x = DMatrix::zeros(784, n);
    test_images().gather(&indices, &mut x, &mut Vec::new());
    x
}

/// Largest `|ours − theirs|` relative to the largest `|theirs|`; `theirs` row-major over
/// `ours`' shape.
fn deviation<T: Scalar>(ours: &DMatrix<T>, theirs: &[f64]) -> f64 {
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    let cols = ours.ncols();
    theirs
        .iter()
        .enumerate()
        .map(|(k, &t)| (ours[(k / cols, k % cols)].to_f64() - t).abs() / scale)
        .fold(0.0, f64::max)
}

/// PyTorch's name of one of our paths: the Standardize layer (0) takes no index.
fn torch_name(path: &str) -> String {
    let (index, rest) = path.split_once('.').unwrap();
    format!("{}.{rest}", index.parse::<usize>().unwrap() - 1)
}

#[test]
fn a_pytorch_resnet_predicts_here_what_it_predicted_there() {
    let (shape, eval) = output("eval");
    assert_eq!(shape, [100, 10]);
    // logits row-major [image, class] = our 10 × 100 transposed
    let f64_logits = network::<f64>(0.1)
        .infer(&images(0, 100))
        .unwrap()
        .transpose();
    let d = deviation(&f64_logits, &eval);
    assert!(d < 1e-12, "f64 eval logits deviate by {d:.2e}");
    let f32_logits = network::<f32>(0.1)
        .infer(&images(0, 100))
        .unwrap()
        .transpose();
    let d = deviation(&f32_logits, &eval);
    assert!(d < 1e-5, "f32 eval logits deviate by {d:.2e}");
}

#[test]
fn training_mode_gives_pytorchs_loss_gradients_and_running_statistics() {
    // dropout off, as in the fixture: batch norm uses the batch's statistics
    let mut net = network::<f64>(0.0);
    let logits = net.forward(&images(100, 16)).unwrap();
    let d = deviation(&logits.transpose(), &output("train").1);
    assert!(d < 1e-12, "training logits deviate by {d:.2e}");
    let labels: Vec<usize> = (0..16).map(|i| i % 10).collect();
    let out = CrossEntropy::default()
        .evaluate(&logits, Target::Labels(&labels))
        .unwrap();
    let torch_loss = output("loss").1[0];
    assert!(
        (out.value - torch_loss).abs() < 1e-12 * torch_loss,
        "{}",
        out.value
    );
    net.zero_grad();
    net.backward(&out.grad).unwrap();
    let mut checked = 0;
    net.visit_params(&mut |path, p| {
        let (shape, theirs) = output(&format!("grad.{}", torch_name(path)));
        assert_eq!(shape.iter().product::<usize>(), p.len(), "{path}");
        let d = deviation(p.grad(), &theirs);
        assert!(d < 1e-12, "dL/d{path} deviates by {d:.2e}");
        checked += 1;
    });
    assert_eq!(checked, 23);
    let mut buffers = 0;
    net.visit_buffers(&mut |path, b| {
        if path.starts_with("0.") {
            return; // Standardize's, which PyTorch does outside the model
        }
        let d = deviation(b.value(), &output(&format!("after.{}", torch_name(path))).1);
        assert!(
            d < 1e-12,
            "{path} deviates by {d:.2e} after the forward pass"
        );
        buffers += 1;
    });
    assert_eq!(buffers, 7 * 3, "seven batch norms, three buffers each");
}

#[test]
fn the_export_names_every_tensor_and_dtype_as_pytorch() {
    let net = network::<f32>(0.1);
    let ours = st::to_bytes(&net).unwrap();
    let ours = SafeTensors::deserialize(&ours).unwrap();
    let torch = fixture("resnet-f32.safetensors");
    let torch = SafeTensors::deserialize(&torch).unwrap();
    let names = |f: &SafeTensors<'_>| {
        f.names()
            .into_iter()
            .map(String::from)
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(names(&ours), names(&torch));
    for name in names(&torch) {
        let (a, b) = (ours.tensor(&name).unwrap(), torch.tensor(&name).unwrap());
        assert_eq!((a.dtype(), a.shape()), (b.dtype(), b.shape()), "{name}");
        assert_eq!(
            a.data(),
            b.data(),
            "{name}: the values come back bit for bit"
        );
    }
    let count = torch.tensor("1.num_batches_tracked").unwrap();
    assert_eq!((count.dtype(), count.shape()), (Dtype::I64, &[][..]));
    assert_eq!(i64::from_le_bytes(count.data().try_into().unwrap()), 300);
}
