//! Conv2d's public surface, tested in this crate: `from_params` refusing a bias of another
//! shape, the mutable accessors and visitors reaching the layer's own parameters, and
//! `backward_params` refusing to run before a forward pass (`basics.rs` checks its gradients).

use nalgebra::DMatrix;
use retroprop_layers::{Conv2d, Conv2dConfig, Init, Layer, LayerError};

fn config() -> Conv2dConfig {
    Conv2dConfig::new((1, 3, 3), 2, 2)
}

fn input() -> DMatrix<f64> {
    DMatrix::from_fn(9, 2, |i, j| (i as f64 - 4.0) * 0.25 + j as f64)
}

#[test]
fn from_params_refuses_a_bias_of_another_shape() {
    let w = DMatrix::from_element(2, 4, 0.5);
    for shape in [(1, 1), (2, 2), (3, 1)] {
        let b = DMatrix::zeros(shape.0, shape.1);
        match Conv2d::from_params(config(), w.clone(), Some(b)) {
            Err(LayerError::ParamShape {
                param: "bias",
                expected_rows: 2,
                expected_cols: 1,
                got_rows,
                got_cols,
                ..
            }) => assert_eq!((got_rows, got_cols), shape),
            other => panic!("bias {shape:?}: {other:?}"),
        }
    }
    let conv = Conv2d::from_params(config(), w, Some(DMatrix::from_element(2, 1, 1.5))).unwrap();
    assert_eq!(conv.bias().unwrap().value()[(1, 0)], 1.5);
}

#[test]
fn bias_mut_and_visit_params_mut_change_the_layer() {
    let mut conv = Conv2d::<f64>::new(config(), Init::Zeros).unwrap();
    let x = input();
    conv.bias_mut().unwrap().value_mut().fill(2.0);
    assert!(conv.infer(&x).unwrap().iter().all(|&v| v == 2.0));

    let mut names = Vec::new();
    conv.visit_params_mut(&mut |name, p| {
        names.push(name.to_string());
        p.value_mut()
            .fill(if name == "weight" { 1.0 } else { -1.0 });
    });
    assert_eq!(names, ["weight", "bias"]);
    // each output is the sum of a 2 × 2 window, minus 1
    let y = conv.infer(&x).unwrap();
    let window = x[(0, 0)] + x[(1, 0)] + x[(3, 0)] + x[(4, 0)];
    assert_eq!(y[(0, 0)], window - 1.0);
    assert_eq!(conv.weight().value()[(1, 3)], 1.0);
}

#[test]
fn backward_params_without_a_forward_is_an_error() {
    let mut conv = Conv2d::<f64>::new(config(), Init::Zeros).unwrap();
    assert!(matches!(
        conv.backward_params(&DMatrix::zeros(8, 2)),
        Err(LayerError::NoForwardCache { layer: "Conv2d" })
    ));
}
