//! The plain facts of the layers, tested in this crate (mutation testing runs each crate's own
//! tests): names, shapes, parameter visiting, `backward_params` against `backward`, and a
//! max-pool whose window is wider than its input.

use nalgebra::DMatrix;
use retroprop_layers::{
    AvgPool2d, BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Dense, Flatten, Gelu,
    GeluApproximation, Init, Layer, LayerError, LayerNorm, LayerNormConfig, MaxPool2d,
    MaxPool2dConfig, Relu, Shape, Sigmoid, Softmax, Softplus, Standardize, Tanh,
};

#[test]
fn every_layer_names_itself() {
    let conv = Conv2d::<f64>::new(Conv2dConfig::new((1, 4, 4), 2, 3), Init::Zeros).unwrap();
    let pool = MaxPool2d::<f64>::new(MaxPool2dConfig::new((1, 4, 4), 2)).unwrap();
    let layers: Vec<(Box<dyn Layer<f64>>, &str)> = vec![
        (Box::new(Dense::new(3, 2, Init::Zeros).unwrap()), "Dense"),
        (Box::new(Softplus::new()), "Softplus"),
        (Box::new(Sigmoid::new()), "Sigmoid"),
        (Box::new(Tanh::new()), "Tanh"),
        (Box::new(Relu::new()), "Relu"),
        (Box::new(Softmax::new()), "Softmax"),
        (Box::new(Flatten::new()), "Flatten"),
        (Box::new(Standardize::new(0.5, 2.0).unwrap()), "Standardize"),
        (Box::new(conv), "Conv2d"),
        (Box::new(pool), "MaxPool2d"),
        (Box::new(AvgPool2d::global((1, 4, 4)).unwrap()), "AvgPool2d"),
        (
            Box::new(BatchNorm::new_1d(BatchNormConfig::new(3)).unwrap()),
            "BatchNorm1d",
        ),
        (
            Box::new(BatchNorm::new_2d(BatchNormConfig::new(3)).unwrap()),
            "BatchNorm2d",
        ),
        (
            Box::new(LayerNorm::new(LayerNormConfig::new(3)).unwrap()),
            "LayerNorm",
        ),
        (Box::new(Gelu::new(GeluApproximation::None)), "Gelu"),
        (
            Box::new(retroprop_layers::Dropout::new(0.5).unwrap()),
            "Dropout",
        ),
    ];
    for (layer, name) in layers {
        assert_eq!(layer.name(), name);
    }
}

#[test]
fn dense_knows_its_sizes_shapes_and_parameters() {
    let mut dense = Dense::<f64>::new(3, 2, Init::XavierUniform { seed: 1 }).unwrap();
    assert_eq!((dense.d_in(), dense.d_out()), (3, 2));
    assert_eq!(dense.output_shape(Shape::flat(3)), Ok(Shape::flat(2)));
    assert!(matches!(
        dense.output_shape(Shape::flat(4)),
        Err(LayerError::InputShape { .. })
    ));
    let mut seen = Vec::new();
    dense.visit_params(&mut |path, p| seen.push((path.to_string(), p.value().shape())));
    assert_eq!(
        seen,
        vec![("weight".to_string(), (2, 3)), ("bias".to_string(), (2, 1))]
    );
    let mut count = 0;
    dense.visit_params_mut(&mut |_, p| {
        p.value_mut().fill(1.0);
        count += 1;
    });
    assert_eq!(count, 2);
    assert!(dense.weight().value().iter().all(|&v| v == 1.0));
    assert_eq!(dense.param_count(), 8);
}

/// `backward_params` adds to every parameter exactly what `backward` adds, and adds it again
/// on a second call.
fn backward_params_matches_backward<L: Layer<f64> + Clone>(mut a: L, x: &DMatrix<f64>) {
    let mut b = a.clone();
    let y = a.forward(x).unwrap();
    b.forward(x).unwrap();
    // the columns' weights −1.25, −0.25, 0.75, 1.75, … never sum to zero: db ≠ 0
    let g = DMatrix::from_fn(y.nrows(), y.ncols(), |i, j| {
        0.25 * (i as f64 + 1.0) * (j as f64 - 1.25)
    });
    a.backward(&g).unwrap();
    b.backward_params(&g).unwrap();
    let grads = |l: &L| {
        let mut all = Vec::new();
        l.visit_params(&mut |_, p| all.push(p.grad().clone()));
        all
    };
    assert_eq!(grads(&a), grads(&b), "{}", a.name());
    assert!(
        grads(&b).iter().all(|g| g.iter().any(|&v| v != 0.0)),
        "{}",
        a.name()
    );
    b.backward_params(&g).unwrap();
    let twice: Vec<_> = grads(&a).iter().map(|g| g * 2.0).collect();
    assert_eq!(grads(&b), twice, "{}", a.name());
}

#[test]
fn backward_params_adds_the_gradients_backward_adds() {
    let x = DMatrix::from_fn(3, 4, |i, j| (i as f64) - 0.5 * (j as f64));
    backward_params_matches_backward(
        Dense::new(3, 2, Init::XavierUniform { seed: 2 }).unwrap(),
        &x,
    );
    let conv = Conv2d::new(
        Conv2dConfig::new((1, 3, 3), 2, 2),
        Init::PyTorchDefault { seed: 2 },
    );
    let x = DMatrix::from_fn(9, 2, |i, j| (i as f64 - 4.0) * 0.25 + j as f64);
    backward_params_matches_backward(conv.unwrap(), &x);
}

#[test]
fn a_pool_window_wider_than_its_input_with_padding_takes_the_maximum() {
    // 3 columns, a 7-wide window padded by 3: every window holds the whole row
    let cfg = MaxPool2dConfig::new((1, 1, 3), (1, 7))
        .stride(1)
        .padding((0, 3));
    let pool = MaxPool2d::<f64>::new(cfg).unwrap();
    let y = pool
        .infer(&DMatrix::from_column_slice(3, 1, &[2.0, 5.0, 1.0]))
        .unwrap();
    assert_eq!(y.as_slice(), &[5.0, 5.0, 5.0]);
}

#[test]
fn a_pool_window_exactly_as_wide_as_its_input_takes_the_row_maximum() {
    // 3 columns, a 3-wide window, no padding: one output column, on the general path
    let cfg = MaxPool2dConfig::new((1, 2, 3), (1, 3)).stride(1);
    let pool = MaxPool2d::<f64>::new(cfg).unwrap();
    let x = DMatrix::from_column_slice(6, 1, &[2.0, 5.0, 1.0, -1.0, -3.0, 0.5]);
    assert_eq!(pool.infer(&x).unwrap().as_slice(), &[5.0, 0.5]);
}

#[test]
fn a_convolution_from_given_kernels_computes_what_the_drawn_one_does() {
    let cfg = Conv2dConfig::new((2, 5, 5), 3, 3).padding(1);
    let drawn = Conv2d::<f64>::new(cfg, Init::PyTorchDefault { seed: 4 }).unwrap();
    let given = Conv2d::from_params(
        cfg,
        drawn.weight().value().clone(),
        drawn.bias().map(|b| b.value().clone()),
    )
    .unwrap();
    let x = DMatrix::from_fn(50, 2, |i, j| (i as f64 * 0.1 - 2.0) * (j as f64 + 1.0));
    assert_eq!(drawn.infer(&x).unwrap(), given.infer(&x).unwrap());
    // wrong shapes and a bias against the configuration are typed errors
    let w = drawn.weight().value().clone();
    assert!(matches!(
        Conv2d::from_params(cfg, DMatrix::<f64>::zeros(3, 17), None),
        Err(LayerError::ParamShape {
            param: "weight",
            ..
        })
    ));
    assert!(matches!(
        Conv2d::from_params(cfg, w.clone(), None),
        Err(LayerError::ParamShape { param: "bias", .. })
    ));
    assert!(matches!(
        Conv2d::from_params(cfg.without_bias(), w, Some(DMatrix::zeros(3, 1))),
        Err(LayerError::ParamShape { param: "bias", .. })
    ));
}

#[test]
fn a_buffer_knows_its_shape_and_size() {
    let b = retroprop_layers::Buffer::new("running_mean", DMatrix::<f64>::zeros(3, 2));
    assert_eq!(
        (b.name(), b.shape(), b.len(), b.is_empty()),
        ("running_mean", (3, 2), 6, false)
    );
    let empty = retroprop_layers::Buffer::new("none", DMatrix::<f64>::zeros(0, 1));
    assert_eq!(
        (empty.shape(), empty.len(), empty.is_empty()),
        ((0, 1), 0, true)
    );
}

#[test]
fn leaky_relu_passes_back_alpha_at_zero_as_pytorch_does() {
    let mut leaky = retroprop_layers::LeakyRelu::<f64>::new(0.1).unwrap();
    let x = DMatrix::from_column_slice(3, 1, &[-2.0, 0.0, 3.0]);
    assert_eq!(leaky.forward(&x).unwrap().as_slice(), &[-0.2, 0.0, 3.0]);
    let g = DMatrix::from_column_slice(3, 1, &[1.0, 1.0, 1.0]);
    // the subgradient at 0 is the negative slope (PyTorch's `x > 0 ? g : slope·g`)
    assert_eq!(leaky.backward(&g).unwrap().as_slice(), &[0.1, 0.1, 1.0]);
    assert_eq!(leaky.name(), "LeakyRelu");
}

#[test]
fn a_parameter_lends_its_value_and_gradient_together() {
    let mut p = retroprop_layers::Param::new(
        "weight",
        retroprop_layers::ParamKind::Weight,
        DMatrix::from_column_slice(2, 1, &[1.0_f64, 2.0]),
    );
    assert!(!p.is_empty());
    p.grad_mut()[1] = 5.0;
    let (value, grad) = p.value_and_grad_mut();
    assert_eq!(grad, &[0.0, 5.0]);
    value[0] -= 0.5 * grad[1];
    assert_eq!(p.value().as_slice(), &[-1.5, 2.0]);
    let empty = retroprop_layers::Param::new(
        "none",
        retroprop_layers::ParamKind::Weight,
        DMatrix::<f64>::zeros(0, 1),
    );
    assert!(empty.is_empty());
}
