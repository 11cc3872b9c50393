//! Every layer of retroprop-layers proven against finite differences and the whole `Layer`
//! contract, in f64; the f32 path checked against f64; and the checker proven able to fail.

use nalgebra::DMatrix;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use retroprop_core::rng::Rng;
use retroprop_gradcheck::planted::DroppedTranspose;
use retroprop_gradcheck::{Config, check_layer, conformance};
use retroprop_layers::{
    Conv2d, Conv2dConfig, Dense, Flatten, Init, Layer, LayerError, MaxPool2d, MaxPool2dConfig,
    Relu, Shape, Sigmoid, Softmax, Softplus, Standardize, Tanh,
};

fn random(rows: usize, cols: usize, lo: f64, hi: f64, seed: u64) -> DMatrix<f64> {
    let mut rng = Rng::new(seed);
    DMatrix::from_fn(rows, cols, |_, _| rng.uniform(lo, hi))
}

/// Values bounded away from 0 (|v| ∈ [0.05, 1]) so no ReLU kink is within a step.
fn away_from_zero(rows: usize, cols: usize, seed: u64) -> DMatrix<f64> {
    let mut rng = Rng::new(seed);
    DMatrix::from_fn(rows, cols, |_, _| {
        let v = rng.uniform(0.05, 1.0);
        if rng.below(2) == 0 { v } else { -v }
    })
}

/// Distinct values with gaps ≫ the finite-difference step, in random order: no max-pool ties.
fn distinct(rows: usize, cols: usize, seed: u64) -> DMatrix<f64> {
    let mut values: Vec<f64> = (0..rows * cols).map(|i| i as f64 * 0.01 - 1.0).collect();
    Rng::new(seed).shuffle(&mut values);
    DMatrix::from_vec(rows, cols, values)
}

#[track_caller]
fn assert_conforms<L: Layer<f64>>(make: impl FnMut() -> Result<L, LayerError>, x: &DMatrix<f64>) {
    let result = conformance(make, x, &Config::default()).expect("layer accepts x");
    assert!(result.passed(), "{result}");
}

#[test]
fn dense_conforms_on_random_shapes_batch_1_and_more() {
    for (seed, (d_in, d_out)) in [(1, 1), (3, 5), (7, 2), (16, 9)].into_iter().enumerate() {
        for n in [1, 4] {
            let x = random(d_in, n, -2.0, 2.0, seed as u64);
            assert_conforms(
                || Dense::new(d_in, d_out, Init::PyTorchDefault { seed: 3 }),
                &x,
            );
        }
    }
}

#[test]
fn activation_layers_conform() {
    for n in [1, 5] {
        let x = random(6, n, -4.0, 4.0, 11);
        assert_conforms(|| Ok(Softplus::new()), &x);
        assert_conforms(|| Ok(Sigmoid::new()), &x);
        assert_conforms(|| Ok(Tanh::new()), &x);
        assert_conforms(|| Ok(Softmax::new()), &x);
        assert_conforms(|| Ok(Relu::new()), &away_from_zero(6, n, 12));
        assert_conforms(
            || retroprop_layers::LeakyRelu::new(0.1),
            &away_from_zero(6, n, 12),
        );
        assert_conforms(|| Ok(Flatten::new()), &x);
        assert_conforms(|| Standardize::new(0.1307, 0.3081), &x);
    }
}

#[test]
fn softmax_conforms_on_large_logits() {
    // shift invariance makes large logits as well conditioned as small ones
    let x = random(4, 3, 999.0, 1001.0, 5);
    assert_conforms(|| Ok(Softmax::new()), &x);
}

#[test]
fn conv2d_conforms_on_homework_like_and_awkward_configurations() {
    let configs = [
        // question 3's third layer, scaled down: 3×3, stride 1, padding 1
        Conv2dConfig::new((4, 6, 6), 5, 3).padding(1),
        // question 3's first layer, scaled down: 8×8 kernel, stride 2, padding 3
        Conv2dConfig::new((3, 12, 12), 2, 8).stride(2).padding(3),
        // non-square kernel, unequal strides and paddings, dilation, no bias
        Conv2dConfig::new((2, 7, 9), 3, (3, 2))
            .stride((2, 1))
            .padding((1, 2))
            .dilation((1, 2)),
        Conv2dConfig::new((1, 5, 5), 2, 2)
            .dilation(2)
            .stride(3)
            .without_bias(),
    ];
    for (k, cfg) in configs.into_iter().enumerate() {
        for n in [1, 3] {
            let x = random(cfg.input_shape().len(), n, -1.0, 1.0, k as u64);
            assert_conforms(|| Conv2d::new(cfg, Init::PyTorchDefault { seed: 7 }), &x);
        }
    }
}

#[test]
fn maxpool_conforms_without_ties() {
    for cfg in [
        MaxPool2dConfig::new((3, 4, 6), 2),
        MaxPool2dConfig::new((2, 5, 5), 3).stride(1).padding(1),
        MaxPool2dConfig::new((1, 6, 4), (2, 1)).stride((1, 2)),
    ] {
        for n in [1, 2] {
            let x = distinct(cfg.input_shape().len(), n, 4);
            assert_conforms(|| MaxPool2d::new(cfg), &x);
        }
    }
}

#[test]
fn the_checker_fails_a_dropped_transpose() {
    let mut layer = DroppedTranspose::new(5, 3, 1).unwrap();
    let x = random(5, 4, -1.0, 1.0, 2);
    let report = check_layer(&mut layer, &x, &Config::default()).unwrap();
    assert!(!report.passed(), "a wrong dL/dx must fail:\n{report}");
    let input = &report.tensors[0];
    assert_eq!(input.name, "input");
    assert!(input.failed > 0);
    // the parameter gradients are right, and the report says so
    assert!(
        report.tensors[1..].iter().all(|t| t.failed == 0),
        "{report}"
    );
    let (name, worst) = report.worst().unwrap();
    assert_eq!(name, "input");
    assert!(worst.rel_error > 1e-2, "{worst:?}");
}

#[test]
fn the_checker_fails_a_missing_factor() {
    // σ' written as σ instead of σ(1 − σ): a wrong factor, same shapes
    struct WrongSigmoid(Sigmoid<f64>, Option<DMatrix<f64>>);
    impl Layer<f64> for WrongSigmoid {
        fn name(&self) -> &'static str {
            "WrongSigmoid"
        }
        fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
            Ok(input)
        }
        fn forward(&mut self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
            let y = self.0.forward(x)?;
            self.1 = Some(y.clone());
            Ok(y)
        }
        fn backward(&mut self, g: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
            Ok(self.1.as_ref().unwrap().component_mul(g))
        }
        fn infer(&self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
            self.0.infer(x)
        }
    }
    let report = check_layer(
        &mut WrongSigmoid(Sigmoid::new(), None),
        &random(4, 2, -2.0, 2.0, 3),
        &Config::default(),
    )
    .unwrap();
    assert!(!report.passed(), "{report}");
}

/// f32 forward and backward agree with f64 to f32 precision (same seeds: the f32 weights are
/// the f64 draw rounded).
#[test]
fn f32_agrees_with_f64() {
    fn pair<L64: Layer<f64>, L32: Layer<f32>>(mut a: L64, mut b: L32, x: &DMatrix<f64>, tol: f64) {
        let y64 = a.forward(x).unwrap();
        let y32 = b.forward(&x.map(|v| v as f32)).unwrap();
        let scale = y64.amax().max(1.0);
        let err = (y64 - y32.map(f64::from)).amax() / scale;
        assert!(err < tol, "{}: forward rel error {err:e}", a.name());
        let g = random(y32.nrows(), y32.ncols(), -1.0, 1.0, 99);
        let dx64 = a.backward(&g).unwrap();
        let dx32 = b.backward(&g.map(|v| v as f32)).unwrap();
        let err = (&dx64 - dx32.map(f64::from)).amax() / dx64.amax().max(1.0);
        assert!(err < tol, "{}: backward rel error {err:e}", a.name());
    }
    // f32 has 24 bits (ε ≈ 1.2e-7); sums of tens of products lose a few more
    const F32_TOL: f64 = 1e-5;
    let x = random(20, 7, -3.0, 3.0, 1);
    pair(
        Dense::<f64>::new(20, 9, Init::XavierUniform { seed: 4 }).unwrap(),
        Dense::<f32>::new(20, 9, Init::XavierUniform { seed: 4 }).unwrap(),
        &x,
        F32_TOL,
    );
    pair(Softplus::<f64>::new(), Softplus::<f32>::new(), &x, F32_TOL);
    pair(Sigmoid::<f64>::new(), Sigmoid::<f32>::new(), &x, F32_TOL);
    pair(Tanh::<f64>::new(), Tanh::<f32>::new(), &x, F32_TOL);
    pair(Softmax::<f64>::new(), Softmax::<f32>::new(), &x, F32_TOL);
    pair(Relu::<f64>::new(), Relu::<f32>::new(), &x, F32_TOL);
    let cfg = Conv2dConfig::new((2, 6, 5), 3, 3).padding(1).stride((1, 2));
    let xi = random(cfg.input_shape().len(), 3, -1.0, 1.0, 2);
    pair(
        Conv2d::<f64>::new(cfg, Init::HeUniform { seed: 1 }).unwrap(),
        Conv2d::<f32>::new(cfg, Init::HeUniform { seed: 1 }).unwrap(),
        &xi,
        F32_TOL,
    );
    let pool = MaxPool2dConfig::new((2, 6, 6), 2);
    let xd = distinct(72, 2, 3);
    pair(
        MaxPool2d::<f64>::new(pool).unwrap(),
        MaxPool2d::<f32>::new(pool).unwrap(),
        &xd,
        F32_TOL,
    );
}

#[test]
fn bad_input_is_a_typed_error_naming_the_layer() {
    let cfg = Conv2dConfig::new((3, 8, 8), 4, 3);
    let mut conv = Conv2d::<f64>::new(cfg, Init::Zeros).unwrap();
    assert_eq!(
        conv.forward(&DMatrix::zeros(3 * 8 * 7, 2)),
        Err(LayerError::ShapeMismatch {
            layer: "Conv2d",
            what: "input",
            expected: 192,
            got: 168
        })
    );
    assert_eq!(
        conv.output_shape(Shape::image(3, 8, 7)),
        Err(LayerError::InputShape {
            layer: "Conv2d",
            expected: Shape::image(3, 8, 8),
            got: Shape::image(3, 8, 7)
        })
    );
    conv.forward(&DMatrix::zeros(192, 2)).unwrap();
    assert_eq!(
        conv.backward(&DMatrix::zeros(4 * 36, 3)),
        Err(LayerError::BatchMismatch {
            layer: "Conv2d",
            expected: 2,
            got: 3
        })
    );
    assert_eq!(
        Conv2d::<f64>::new(Conv2dConfig::new((3, 8, 8), 4, (0, 3)), Init::Zeros).unwrap_err(),
        LayerError::ZeroSize {
            layer: "Conv2d",
            what: "kernel height"
        }
    );
    assert_eq!(
        MaxPool2d::<f64>::new(MaxPool2dConfig::new((1, 4, 4), 2).stride(0)).unwrap_err(),
        LayerError::ZeroSize {
            layer: "MaxPool2d",
            what: "stride height"
        }
    );
    let mut dense = Dense::<f32>::new(4, 2, Init::Zeros).unwrap();
    assert_eq!(
        dense.output_shape(Shape::image(1, 2, 2)),
        Err(LayerError::InputShape {
            layer: "Dense",
            expected: Shape::Flat(4),
            got: Shape::image(1, 2, 2)
        })
    );
    assert!(matches!(
        dense.forward(&DMatrix::zeros(5, 1)),
        Err(LayerError::ShapeMismatch { layer: "Dense", .. })
    ));
}

/// A valid random convolution configuration and a batch size.
fn conv_case() -> impl Strategy<Value = (Conv2dConfig, usize)> {
    (
        (1usize..=3, 1usize..=3), // channels in, out
        (1usize..=4, 1usize..=4), // kernel
        (1usize..=3, 1usize..=3), // stride
        (0usize..=2, 0usize..=2), // padding
        (1usize..=2, 1usize..=2), // dilation
        (0usize..=5, 0usize..=5), // extra input size beyond the minimum
        1usize..=3,               // batch
        any::<bool>(),            // bias
    )
        .prop_map(
            |((ci, co), (kh, kw), (sh, sw), (ph, pw), (dh, dw), (eh, ew), n, bias)| {
                // the smallest input with a non-empty output, plus some
                let h = (dh * (kh - 1) + 1).saturating_sub(2 * ph).max(1) + eh;
                let w = (dw * (kw - 1) + 1).saturating_sub(2 * pw).max(1) + ew;
                let mut cfg = Conv2dConfig::new((ci, h, w), co, (kh, kw))
                    .stride((sh, sw))
                    .padding((ph, pw))
                    .dilation((dh, dw));
                if !bias {
                    cfg = cfg.without_bias();
                }
                (cfg, n)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/layers.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn conv2d_gradients_over_random_configurations((cfg, n) in conv_case(), seed in 0u64..1000) {
        let mut conv = Conv2d::<f64>::new(cfg, Init::PyTorchDefault { seed }).unwrap();
        let x = random(cfg.input_shape().len(), n, -1.0, 1.0, seed);
        let report = check_layer(&mut conv, &x, &Config { seed, ..Config::default() }).unwrap();
        prop_assert!(report.passed(), "{cfg:?}\n{report}");
    }

    #[test]
    fn dense_gradients_over_random_shapes(d_in in 1usize..12, d_out in 1usize..12, n in 1usize..5, seed in 0u64..1000) {
        let mut dense = Dense::<f64>::new(d_in, d_out, Init::PyTorchDefault { seed }).unwrap();
        let x = random(d_in, n, -3.0, 3.0, seed);
        let report = check_layer(&mut dense, &x, &Config { seed, ..Config::default() }).unwrap();
        prop_assert!(report.passed(), "{report}");
    }
}

/// A dense layer whose inference path or `backward_params` breaks the contract.
struct Misbehaving {
    inner: Dense<f64>,
    infer_scaled: bool,
    params_skip_bias: bool,
}

impl Layer<f64> for Misbehaving {
    fn name(&self) -> &'static str {
        "Misbehaving"
    }
    fn spec(&self) -> retroprop_layers::LayerSpec {
        self.inner.spec()
    }
    fn output_shape(&self, s: Shape) -> Result<Shape, LayerError> {
        self.inner.output_shape(s)
    }
    fn forward(&mut self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        self.inner.forward(x)
    }
    fn backward(&mut self, g: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        self.inner.backward(g)
    }
    fn backward_params(&mut self, g: &DMatrix<f64>) -> Result<(), LayerError> {
        self.inner.backward_params(g)?;
        if self.params_skip_bias {
            self.inner.bias_mut().grad_mut().fill(0.0);
        }
        Ok(())
    }
    fn infer(&self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        let y = self.inner.infer(x)?;
        Ok(if self.infer_scaled { y * 1.5 } else { y })
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &retroprop_layers::Param<f64>)) {
        self.inner.visit_params(f);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut retroprop_layers::Param<f64>)) {
        self.inner.visit_params_mut(f);
    }
}

#[test]
fn conformance_fails_an_inference_path_or_a_backward_params_that_differs() {
    let x = random(4, 3, -1.0, 1.0, 8);
    for (infer_scaled, params_skip_bias, clause) in [
        (true, false, "infer equals forward"),
        (false, true, "backward_params adds what backward adds"),
    ] {
        let make = || {
            Ok(Misbehaving {
                inner: Dense::new(4, 2, Init::XavierUniform { seed: 5 })?,
                infer_scaled,
                params_skip_bias,
            })
        };
        let result = conformance(make, &x, &Config::default()).unwrap();
        assert!(!result.passed(), "{result}");
        let failed: Vec<&str> = result
            .clauses
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        assert_eq!(failed, vec![clause], "{result}");
    }
}

#[test]
fn dropout_gradient_holds_with_its_mask_fixed() {
    use retroprop_gradcheck::check_layer;
    let x = random(8, 4, -2.0, 2.0, 21);
    let mut d = retroprop_layers::Dropout::<f64>::new(0.3).unwrap();
    d.reseed(5);
    d.forward(&x).unwrap();
    d.hold_mask(true);
    let report = check_layer(&mut d, &x, &Config::default()).unwrap();
    assert!(report.passed(), "{report}");
    // some entries were dropped and some kept: the check saw both
    let mask = d.mask().unwrap();
    assert!(mask.iter().any(|&m| m == 0.0) && mask.iter().any(|&m| m > 1.0));
}

#[test]
fn average_pooling_conforms_with_padding_overlap_and_globally() {
    use retroprop_layers::{AvgPool2d, MaxPool2dConfig};
    let x = random(2 * 5 * 5, 3, -2.0, 2.0, 31);
    assert_conforms(
        || AvgPool2d::new(MaxPool2dConfig::new((2, 5, 5), 3).stride(2).padding(1)),
        &x,
    );
    assert_conforms(|| AvgPool2d::new(MaxPool2dConfig::new((2, 5, 5), 2)), &x);
    assert_conforms(|| AvgPool2d::global((2, 5, 5)), &x);
}

#[test]
fn gelu_layer_norm_and_residual_blocks_conform() {
    use retroprop_layers::{Gelu, GeluApproximation, LayerNorm, LayerNormConfig, Residual};
    let x = random(6, 4, -4.0, 4.0, 51);
    for a in [GeluApproximation::None, GeluApproximation::Tanh] {
        assert_conforms(|| Ok(Gelu::new(a)), &x);
    }
    // a learned γ, β away from 1, 0 so their gradients matter
    let make_ln = |config: LayerNormConfig| {
        move || {
            let mut ln = LayerNorm::new(config)?;
            ln.set_param("weight", random(6, 1, 0.5, 1.5, 52))?;
            if config.bias {
                ln.set_param("bias", random(6, 1, -0.5, 0.5, 53))?;
            }
            Ok(ln)
        }
    };
    assert_conforms(make_ln(LayerNormConfig::new(6)), &x);
    assert_conforms(make_ln(LayerNormConfig::new(6).bias(false)), &x);
    assert_conforms(
        || LayerNorm::new(LayerNormConfig::new(6).elementwise_affine(false)),
        &x,
    );
    assert_conforms(
        || {
            Ok(Residual::new(Dense::new(
                6,
                6,
                Init::XavierUniform { seed: 54 },
            )?))
        },
        &x,
    );
    assert_conforms(
        || {
            let body = Residual::new(Dense::new(6, 6, Init::XavierUniform { seed: 55 })?);
            Ok(Residual::with_projection(
                body,
                Dense::new(6, 6, Init::XavierUniform { seed: 56 })?,
            ))
        },
        &x,
    );
}

#[test]
fn batch_norm_gradients_hold_over_the_whole_batch_and_only_the_batch_clauses_fail() {
    use retroprop_layers::{BatchNorm, BatchNormConfig};
    let make = |two_d: bool, config: BatchNormConfig| {
        move || {
            let mut bn = if two_d {
                BatchNorm::new_2d(config)?
            } else {
                BatchNorm::new_1d(config)?
            };
            if config.affine {
                bn.set_param("weight", random(3, 1, 0.5, 1.5, 61))?;
                bn.set_param("bias", random(3, 1, -0.5, 0.5, 62))?;
            }
            Ok(bn)
        }
    };
    for (two_d, rows) in [(false, 3), (true, 3 * 2 * 2)] {
        let x = random(rows, 5, -3.0, 3.0, 63);
        for config in [
            BatchNormConfig::new(3),
            BatchNormConfig::new(3).affine(false),
        ] {
            let mut bn = make(two_d, config)().unwrap();
            let report = check_layer(&mut bn, &x, &Config::default()).unwrap();
            assert!(report.passed(), "{report}");
            if !two_d {
                // one example per batch has one value per feature: no statistics to train on
                continue;
            }
            let result = conformance(make(two_d, config), &x, &Config::default()).unwrap();
            let failed: Vec<&str> = result
                .clauses
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.name)
                .collect();
            assert_eq!(
                failed,
                [
                    "batch gradient = sum of per-example gradients",
                    "infer equals forward"
                ],
                "{result}"
            );
        }
    }
    // without running statistics inference normalises with the batch: infer = forward
    let x = random(12, 5, -3.0, 3.0, 64);
    let result = conformance(
        make(true, BatchNormConfig::new(3).track_running_stats(false)),
        &x,
        &Config::default(),
    )
    .unwrap();
    assert!(
        result
            .clauses
            .iter()
            .all(|c| c.passed || c.name == "batch gradient = sum of per-example gradients"),
        "{result}"
    );
}
