//! Every built-in layer kind is registered and rebuilds from its description; the registry's
//! errors say what to do.

use retroprop_layers::{
    BatchNorm, BatchNormConfig, Gelu, GeluApproximation, LayerNorm, LayerNormConfig, Residual,
};
use retroprop_layers::{
    Conv2d, Conv2dConfig, Dense, Flatten, Init, Layer, LayerConfig, LayerError, LayerSpec,
    LeakyRelu, MaxPool2d, MaxPool2dConfig, Relu, Sigmoid, Softmax, Softplus, Standardize, Tanh,
    build, param_shapes, registered_kinds,
};
use serde::{Deserialize, Serialize};

fn every_builtin() -> Vec<Box<dyn Layer<f64>>> {
    vec![
        Box::new(Dense::new(5, 3, Init::Zeros).unwrap()),
        Box::new(
            Conv2d::new(
                Conv2dConfig::new((2, 6, 5), 4, 3).stride(2).padding(1),
                Init::Zeros,
            )
            .unwrap(),
        ),
        Box::new(
            Conv2d::new(
                Conv2dConfig::new((1, 4, 4), 2, 3)
                    .without_bias()
                    .dilation(1),
                Init::Zeros,
            )
            .unwrap(),
        ),
        Box::new(MaxPool2d::new(MaxPool2dConfig::new((2, 6, 6), 3).stride(2).padding(1)).unwrap()),
        Box::new(Softplus::new()),
        Box::new(Sigmoid::new()),
        Box::new(Tanh::new()),
        Box::new(Relu::new()),
        Box::new(Softmax::new()),
        Box::new(Flatten::new()),
        Box::new(Standardize::new(0.5, 2.0).unwrap()),
        Box::new(LeakyRelu::new(0.2).unwrap()),
        Box::new(retroprop_layers::Dropout::new(0.3).unwrap()),
        Box::new(
            retroprop_layers::AvgPool2d::new(
                MaxPool2dConfig::new((2, 5, 5), 3).stride(2).padding(1),
            )
            .unwrap(),
        ),
        Box::new(retroprop_layers::AvgPool2d::global((3, 4, 4)).unwrap()),
        Box::new(Gelu::new(GeluApproximation::None)),
        Box::new(Gelu::new(GeluApproximation::Tanh)),
        Box::new(BatchNorm::new_1d(BatchNormConfig::new(5)).unwrap()),
        Box::new(
            BatchNorm::new_2d(
                BatchNormConfig::new(3)
                    .affine(false)
                    .momentum(None)
                    .eps(1e-3),
            )
            .unwrap(),
        ),
        Box::new(BatchNorm::new_2d(BatchNormConfig::new(2).track_running_stats(false)).unwrap()),
        Box::new(LayerNorm::new(LayerNormConfig::new(6)).unwrap()),
        Box::new(LayerNorm::new(LayerNormConfig::new(6).bias(false)).unwrap()),
        Box::new(Residual::new(Relu::new())),
        Box::new(Residual::with_projection(
            Residual::new(Dense::new(4, 4, Init::Zeros).unwrap()),
            Dense::new(4, 4, Init::Zeros).unwrap(),
        )),
    ]
}

#[test]
fn every_builtin_kind_rebuilds_from_its_spec() {
    for layer in every_builtin() {
        let spec = layer.spec();
        assert!(registered_kinds().contains(&spec.kind.as_str()), "{spec}");
        let rebuilt = build::<f64>(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(rebuilt.spec(), spec);
        assert_eq!(rebuilt.name(), layer.name());
        let mut shapes = Vec::new();
        layer.visit_params(&mut |_, p| shapes.push(p.shape()));
        assert_eq!(param_shapes(&spec).unwrap(), Some(shapes.clone()), "{spec}");
        let (mut buffers, mut rebuilt_buffers) = (Vec::new(), Vec::new());
        layer.visit_buffers(&mut |p, b| buffers.push((p.to_string(), b.shape())));
        rebuilt.visit_buffers(&mut |p, b| rebuilt_buffers.push((p.to_string(), b.shape())));
        assert_eq!(rebuilt_buffers, buffers, "{spec}");
        let mut rebuilt_shapes = Vec::new();
        rebuilt.visit_params(&mut |_, p| rebuilt_shapes.push(p.shape()));
        assert_eq!(rebuilt_shapes, shapes, "{spec}");
        // and in f32
        assert_eq!(build::<f32>(&spec).unwrap().spec(), spec);
    }
}

#[derive(Serialize, Deserialize)]
struct Other;

impl LayerConfig for Other {
    const KIND: &'static str = "Dense";
    fn build<T: retroprop_layers::Scalar>(
        &self,
        _: Vec<Box<dyn Layer<T>>>,
    ) -> Result<Box<dyn Layer<T>>, LayerError> {
        Ok(Box::new(Relu::new()))
    }
}

#[test]
fn a_taken_kind_an_unknown_kind_and_stray_children_are_errors() {
    let err = retroprop_layers::register::<Other>().unwrap_err();
    assert!(
        matches!(err, LayerError::KindTaken { kind: "Dense", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("another kind name"), "{err}");
    // registering the same type twice is fine
    retroprop_layers::register::<retroprop_layers::LeakyReluConfig>().unwrap();
    let err = build::<f64>(&LayerSpec::unit("nobody.Layer"))
        .map(drop)
        .unwrap_err();
    assert!(matches!(err, LayerError::UnknownKind { ref kind, .. } if kind == "nobody.Layer"));
    assert!(err.to_string().contains("register"), "{err}");
    let stray = LayerSpec::unit("Relu").with_children(vec![LayerSpec::unit("Tanh")]);
    assert!(matches!(
        build::<f64>(&stray).map(drop),
        Err(LayerError::Config { .. })
    ));
    let bad = LayerSpec::new("Dense", &"d_in");
    assert!(matches!(
        build::<f64>(&bad).map(drop),
        Err(LayerError::Config { .. })
    ));
}

/// A kind of one's own that does not say its parameters' shapes (the trait's default).
#[derive(Serialize, Deserialize)]
struct Unsized;

impl LayerConfig for Unsized {
    const KIND: &'static str = "tests.Unsized";
    fn build<T: retroprop_layers::Scalar>(
        &self,
        _: Vec<Box<dyn Layer<T>>>,
    ) -> Result<Box<dyn Layer<T>>, LayerError> {
        Ok(Box::new(Relu::new()))
    }
}

#[test]
fn a_kind_that_does_not_say_its_parameter_shapes_leaves_them_unknown() {
    retroprop_layers::register::<Unsized>().unwrap();
    let unit = LayerSpec::unit("tests.Unsized");
    assert_eq!(param_shapes(&unit), Ok(None));
    // built, it is what it builds
    assert_eq!(build::<f64>(&unit).unwrap().param_count(), 0);
}

/// A container of one's own with a parameter of its own (a gate, say).
#[derive(Serialize, Deserialize)]
struct Gated;

impl LayerConfig for Gated {
    const KIND: &'static str = "tests.Gated";
    const CONTAINER: bool = true;
    fn build<T: retroprop_layers::Scalar>(
        &self,
        mut children: Vec<Box<dyn Layer<T>>>,
    ) -> Result<Box<dyn Layer<T>>, LayerError> {
        Ok(children.remove(0))
    }
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(Ok(vec![(1, 1)]))
    }
}

#[test]
fn a_container_with_parameters_of_its_own_leaves_the_order_unknown() {
    retroprop_layers::register::<Gated>().unwrap();
    let dense = LayerSpec::new(
        "Dense",
        &retroprop_layers::DenseConfig { d_in: 3, d_out: 3 },
    );
    // where the container's own (1 × 1) goes among its children's is its own business
    let gated = LayerSpec::unit("tests.Gated").with_children(vec![dense.clone()]);
    assert_eq!(param_shapes(&gated), Ok(None));
    // a container without parameters of its own lists its children's
    let residual = LayerSpec::unit("Residual").with_children(vec![dense]);
    assert_eq!(param_shapes(&residual), Ok(Some(vec![(3, 3), (3, 1)])));
}
