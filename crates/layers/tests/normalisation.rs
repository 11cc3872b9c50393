//! The element-wise and normalising layers' formulas, tested in this crate on data chosen so a
//! wrong formula shows: activations' backward passes against their closed forms, batch and
//! layer normalisation on inputs whose mean is far from zero (a variance computed with
//! `x + μ` instead of `x − μ` agrees with the right one only when `μ = 0`), and the shapes
//! each layer accepts or refuses.

use nalgebra::DMatrix;
use retroprop_layers::{
    AvgPool2dConfig, BatchNorm, BatchNorm2dConfig, BatchNormConfig, Layer, LayerError, LayerNorm,
    LayerNormConfig, LayerSpec, MaxPool2dConfig, Shape, Sigmoid, Softmax, Tanh, param_shapes,
};

/// Inputs of mixed signs, one column per example.
fn input(rows: usize, cols: usize) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |i, j| {
        (i as f64 - 1.3) * 0.7 + (j as f64) * 0.45
    })
}

#[track_caller]
fn assert_close(got: &DMatrix<f64>, want: &DMatrix<f64>, tol: f64) {
    assert_eq!(got.shape(), want.shape());
    let worst = (got - want).amax();
    assert!(worst <= tol, "off by {worst:e}:\n{got}\nwant\n{want}");
}

#[test]
fn sigmoid_and_tanh_pass_back_their_derivatives() {
    let x = input(4, 3);
    let g = input(4, 3).map(|v| 1.5 - v);
    let mut sigmoid = Sigmoid::<f64>::new();
    sigmoid.forward(&x).unwrap();
    // σ'(x) = σ(x)(1 − σ(x)), σ(x) = 1/(1 + e^−x)
    let want = x.zip_map(&g, |x, g| {
        let s = 1.0 / (1.0 + (-x).exp());
        s * (1.0 - s) * g
    });
    assert_close(&sigmoid.backward(&g).unwrap(), &want, 1e-15);
    let mut tanh = Tanh::<f64>::new();
    tanh.forward(&x).unwrap();
    // tanh'(x) = 1 − tanh²(x)
    let want = x.zip_map(&g, |x, g| (1.0 - x.tanh().powi(2)) * g);
    assert_close(&tanh.backward(&g).unwrap(), &want, 1e-15);
}

#[test]
fn softmax_passes_back_s_times_g_minus_its_mean_under_s() {
    let x = input(4, 3);
    let g = input(4, 3).map(|v| v * v - 0.5);
    let mut softmax = Softmax::<f64>::new();
    let s = softmax.forward(&x).unwrap();
    // dL/dx = S ⊙ (g − ⟨g, S⟩), column by column (1j/1k)
    let mut want = s.clone();
    for j in 0..3 {
        let dot = s.column(j).dot(&g.column(j));
        for i in 0..4 {
            want[(i, j)] = s[(i, j)] * (g[(i, j)] - dot);
        }
    }
    assert_close(&softmax.backward(&g).unwrap(), &want, 1e-15);
    // a batch of examples with no value: nothing to normalise, nothing to pass back
    let empty = DMatrix::<f64>::zeros(0, 3);
    assert_eq!(softmax.forward(&empty).unwrap().shape(), (0, 3));
    assert_eq!(softmax.backward(&empty).unwrap().shape(), (0, 3));
}

/// Far from zero: a variance computed as `Σ(x + μ)(x − μ)` (algebraically `Σx² − mμ²`, the
/// one-pass formula) loses every digit of a unit spread around `10⁸`; the two-pass form keeps
/// them.
const FAR: f64 = 1e8;

#[test]
fn batch_normalisation_uses_each_channels_mean_and_biased_variance() {
    // 2 channels of 2 × 2 values per example, 3 examples, means near 5 and −3 (then + 10⁸);
    // the thirds make the means inexact in binary, as a real batch's are
    let spread = DMatrix::from_fn(8, 3, |i, j| {
        let channel = if i < 4 { 5.0 } else { -3.0 };
        channel + (i % 4) as f64 / 3.0 - (j as f64) * 0.7
    });
    for offset in [0.0, FAR] {
        let x = spread.add_scalar(offset);
        let mut bn = BatchNorm::<f64>::new_2d(BatchNormConfig::new(2)).unwrap();
        let y = bn.forward(&x).unwrap();
        for c in 0..2 {
            // the reference's statistics from the values before the offset: exact
            let values: Vec<f64> = (0..3)
                .flat_map(|j| (0..4).map(move |i| (4 * c + i, j)))
                .map(|at| spread[at])
                .collect();
            let mean = values.iter().sum::<f64>() / 12.0;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 12.0;
            for j in 0..3 {
                for i in 0..4 {
                    // ε = 1e−5, PyTorch's default
                    let want = (spread[(4 * c + i, j)] - mean) / (var + 1e-5).sqrt();
                    let tol = if offset == 0.0 { 1e-12 } else { 1e-6 };
                    assert!(
                        (y[(4 * c + i, j)] - want).abs() < tol,
                        "channel {c}, offset {offset}: {} vs {want}",
                        y[(4 * c + i, j)]
                    );
                }
            }
        }
    }
}

#[test]
fn batch_normalisation_refuses_rows_that_are_not_whole_channels() {
    let mut bn = BatchNorm::<f64>::new_2d(BatchNormConfig::new(3)).unwrap();
    for (rows, expected) in [(7, 6), (2, 3), (0, 3)] {
        assert_eq!(
            bn.forward(&DMatrix::zeros(rows, 4)).unwrap_err(),
            LayerError::ShapeMismatch {
                layer: "BatchNorm2d",
                what: "input",
                expected,
                got: rows
            },
            "{rows} rows"
        );
    }
    assert!(
        bn.forward(&DMatrix::from_fn(6, 2, |i, j| (i * j) as f64))
            .is_ok()
    );
}

#[test]
fn normalisation_layers_accept_exactly_their_shapes() {
    let bn1 = BatchNorm::<f64>::new_1d(BatchNormConfig::new(3)).unwrap();
    let bn2 = BatchNorm::<f64>::new_2d(BatchNormConfig::new(3)).unwrap();
    assert_eq!(bn1.output_shape(Shape::Flat(3)), Ok(Shape::Flat(3)));
    assert_eq!(
        bn2.output_shape(Shape::image(3, 2, 5)),
        Ok(Shape::image(3, 2, 5))
    );
    let refused = |layer: &'static str, expected, got| LayerError::InputShape {
        layer,
        expected,
        got,
    };
    assert_eq!(
        bn1.output_shape(Shape::Flat(4)),
        Err(refused("BatchNorm1d", Shape::Flat(3), Shape::Flat(4)))
    );
    assert_eq!(
        bn1.output_shape(Shape::image(3, 1, 1)),
        Err(refused(
            "BatchNorm1d",
            Shape::Flat(3),
            Shape::image(3, 1, 1)
        ))
    );
    assert_eq!(
        bn2.output_shape(Shape::image(4, 2, 5)),
        Err(refused(
            "BatchNorm2d",
            Shape::image(3, 2, 5),
            Shape::image(4, 2, 5)
        ))
    );
    assert_eq!(
        bn2.output_shape(Shape::Flat(3)),
        Err(refused(
            "BatchNorm2d",
            Shape::image(3, 1, 1),
            Shape::Flat(3)
        ))
    );
    let ln = LayerNorm::<f64>::new(LayerNormConfig::new(6)).unwrap();
    assert_eq!(
        ln.output_shape(Shape::image(2, 1, 3)),
        Ok(Shape::image(2, 1, 3))
    );
    assert_eq!(
        ln.output_shape(Shape::Flat(5)),
        Err(refused("LayerNorm", Shape::Flat(6), Shape::Flat(5)))
    );
}

#[test]
fn layer_normalisation_uses_each_examples_mean_and_biased_variance() {
    let spread = input(5, 3).map(|v| v + 7.0);
    for offset in [0.0, FAR] {
        let x = spread.add_scalar(offset);
        let mut ln = LayerNorm::<f64>::new(LayerNormConfig::new(5)).unwrap();
        let y = ln.forward(&x).unwrap();
        for j in 0..3 {
            let col = spread.column(j);
            let mean = col.mean();
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 5.0;
            let tol = if offset == 0.0 { 1e-12 } else { 1e-6 };
            for i in 0..5 {
                let want = (spread[(i, j)] - mean) / (var + 1e-5).sqrt();
                assert!((y[(i, j)] - want).abs() < tol, "offset {offset}");
            }
        }
    }
}

#[test]
fn a_pool_that_cannot_be_built_has_no_parameter_shapes() {
    // a 3 × 3 window on a 2 × 2 input without padding: no output
    let spec = LayerSpec::new(
        "AvgPool2d",
        &AvgPool2dConfig(MaxPool2dConfig::new((1, 2, 2), 3)),
    );
    assert!(matches!(
        param_shapes(&spec),
        Err(LayerError::EmptyOutput { .. })
    ));
    let spec = LayerSpec::new("MaxPool2d", &MaxPool2dConfig::new((1, 2, 2), 3));
    assert!(matches!(
        param_shapes(&spec),
        Err(LayerError::EmptyOutput { .. })
    ));
    let spec = LayerSpec::new("MaxPool2d", &MaxPool2dConfig::new((1, 4, 4), 2));
    assert_eq!(param_shapes(&spec), Ok(Some(vec![])));
    let spec = LayerSpec::new(
        "AvgPool2d",
        &AvgPool2dConfig(MaxPool2dConfig::new((1, 4, 4), 2)),
    );
    assert_eq!(param_shapes(&spec), Ok(Some(vec![])));
    // a batch normalisation's learned γ and β: C × 1 each
    let spec = LayerSpec::new("BatchNorm2d", &BatchNorm2dConfig(BatchNormConfig::new(3)));
    assert_eq!(param_shapes(&spec), Ok(Some(vec![(3, 1), (3, 1)])));
}
