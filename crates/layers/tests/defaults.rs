//! The `Layer` trait's provided methods, as a custom layer gets them: a layer that writes only
//! `forward`, `backward`, `infer` and its parameter visitors still gets its parameter
//! gradient from `backward_params`, `zero_grad`, `param_value` and `set_param`; the buffer
//! methods work on the built-in layer that has buffers.

use nalgebra::DMatrix;
use retroprop_layers::{
    BatchNorm, BatchNormConfig, Dense, Init, Layer, LayerError, LayerSpec, Param, ParamKind, Shape,
};

/// `y = s · x` with one learned scale `s`; `dL/ds = Σ δ ⊙ x`.
struct Scale {
    s: Param<f64>,
    x: Option<DMatrix<f64>>,
}

impl Scale {
    fn new(s: f64) -> Self {
        Self {
            s: Param::new("s", ParamKind::Weight, DMatrix::from_element(1, 1, s)),
            x: None,
        }
    }
}

impl Layer<f64> for Scale {
    fn name(&self) -> &'static str {
        "test.Scale"
    }
    fn spec(&self) -> LayerSpec {
        LayerSpec::unit("test.Scale")
    }
    fn output_shape(&self, s: Shape) -> Result<Shape, LayerError> {
        Ok(s)
    }
    fn forward(&mut self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        self.x = Some(x.clone());
        self.infer(x)
    }
    fn backward(&mut self, g: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        let x = self.x.as_ref().expect("forward first");
        self.s.grad_mut()[0] += g.component_mul(x).sum();
        Ok(g * self.s.value()[0])
    }
    fn infer(&self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        Ok(x * self.s.value()[0])
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
        f("s", &self.s);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<f64>)) {
        f("s", &mut self.s);
    }
}

/// The value of the buffer at `path`, found by visiting.
fn buffer_value(layer: &dyn Layer<f64>, path: &str) -> Option<DMatrix<f64>> {
    let mut seen = None;
    layer.visit_buffers(&mut |p, b| {
        if p == path {
            seen = Some(b.value().clone());
        }
    });
    seen
}

#[test]
fn a_custom_layer_gets_its_gradient_from_the_provided_backward_params_and_zero_grad() {
    let mut layer = Scale::new(2.0);
    let x = DMatrix::from_column_slice(3, 1, &[1.0, 2.0, 3.0]);
    layer.forward(&x).unwrap();
    // δ = 1: dL/ds = 1 + 2 + 3
    layer
        .backward_params(&DMatrix::from_element(3, 1, 1.0))
        .unwrap();
    assert_eq!(layer.s.grad()[0], 6.0);
    layer.zero_grad();
    assert_eq!(layer.s.grad()[0], 0.0);
}

#[test]
fn param_value_and_set_param_find_a_parameter_by_its_path() {
    let dense = Dense::<f64>::new(2, 3, Init::HeUniform { seed: 4 }).unwrap();
    let weight = dense
        .param_value("weight")
        .expect("a dense layer has a weight");
    assert_eq!(weight.shape(), (3, 2));
    assert_eq!(&weight, dense.weight().value());
    assert_eq!(dense.param_value("bias").unwrap().shape(), (3, 1));
    assert_eq!(dense.param_value("nothing"), None);
    let mut layer = Scale::new(2.0);
    assert_eq!(layer.param_value("s").unwrap()[0], 2.0);
    layer
        .set_param("s", DMatrix::from_element(1, 1, -1.5))
        .unwrap();
    assert_eq!(layer.param_value("s").unwrap()[0], -1.5);
}

#[test]
fn set_buffer_and_buffer_count_on_a_layer_with_running_statistics() {
    let mut norm = BatchNorm::<f64>::new_1d(BatchNormConfig::new(4)).unwrap();
    // running mean and variance (4 each) and the batch count
    assert_eq!(norm.buffer_count(), 9);
    assert_eq!(Scale::new(1.0).buffer_count(), 0);
    let mean = DMatrix::from_column_slice(4, 1, &[0.5, -1.0, 2.0, 0.0]);
    norm.set_buffer("running_mean", mean.clone()).unwrap();
    assert_eq!(buffer_value(&norm, "running_mean"), Some(mean));
    match norm.set_buffer("running_median", DMatrix::zeros(4, 1)) {
        Err(LayerError::UnknownPath { path, known, .. }) => {
            assert_eq!(path, "running_median");
            assert!(known.contains("running_var"), "{known}");
        }
        other => panic!("expected an unknown path, got {other:?}"),
    }
}

#[test]
fn a_boxed_layer_forwards_every_provided_method() {
    let mut boxed: Box<dyn Layer<f64>> = Box::new(Scale::new(2.0));
    let x = DMatrix::from_column_slice(2, 1, &[1.0, 4.0]);
    boxed.forward(&x).unwrap();
    boxed
        .backward_params(&DMatrix::from_element(2, 1, 1.0))
        .unwrap();
    assert_eq!(boxed.param_value("s").unwrap()[0], 2.0);
    let mut grad = 0.0;
    boxed.visit_params(&mut |_, p| grad = p.grad()[0]);
    assert_eq!(grad, 5.0);
    boxed.zero_grad();
    boxed.visit_params(&mut |_, p| grad = p.grad()[0]);
    assert_eq!(grad, 0.0);
    assert_eq!(boxed.param_count(), 1);
    let dense: Box<dyn Layer<f64>> = Box::new(Dense::new(3, 2, Init::Zeros).unwrap());
    assert_eq!(
        dense.param_count(),
        8,
        "W (2 × 3) and b (2), through the box"
    );

    // buffers and reseeding go through the box too
    let mut norm: Box<dyn Layer<f64>> =
        Box::new(BatchNorm::<f64>::new_1d(BatchNormConfig::new(2)).unwrap());
    let mean = DMatrix::from_column_slice(2, 1, &[3.0, -3.0]);
    norm.set_buffer("running_mean", mean.clone()).unwrap();
    assert_eq!(buffer_value(&norm, "running_mean"), Some(mean));
    let masks = |seed: u64| {
        let mut drop: Box<dyn Layer<f64>> =
            Box::new(retroprop_layers::Dropout::<f64>::new(0.5).unwrap());
        drop.reseed(seed);
        drop.forward(&DMatrix::from_element(64, 1, 1.0)).unwrap()
    };
    assert_eq!(masks(7), masks(7));
    assert_ne!(
        masks(7),
        masks(8),
        "reseeding through the box changes the mask"
    );
}
