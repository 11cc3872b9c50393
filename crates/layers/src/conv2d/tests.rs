//! Conv2d against its looped definition, on awkward configurations and random ones.
use super::*;

/// Every product of the definition, looped: `f(o, tap, out, inp)` for output channel `o`,
/// kernel tap `tap` (a column of W), output entry `out` and input entry `inp` of one example.
fn for_each_product(cfg: &Conv2dConfig, mut f: impl FnMut(usize, usize, usize, usize)) {
    let (oh, ow) = cfg.output_size().unwrap();
    let (c_in, h, wd) = (cfg.in_channels, cfg.input.h, cfg.input.w);
    let (k, s, p, d) = (cfg.kernel, cfg.stride, cfg.padding, cfg.dilation);
    for o in 0..cfg.out_channels {
        for i in 0..oh {
            for j in 0..ow {
                for c in 0..c_in {
                    for u in 0..k.h {
                        for v in 0..k.w {
                            let iy = (i * s.h + u * d.h) as isize - p.h as isize;
                            let ix = (j * s.w + v * d.w) as isize - p.w as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                continue;
                            }
                            let tap = (c * k.h + u) * k.w + v;
                            let inp = (c * h + iy as usize) * wd + ix as usize;
                            f(o, tap, (o * oh + i) * ow + j, inp);
                        }
                    }
                }
            }
        }
    }
}

/// The definition, looped: the reference the GEMM path must match.
fn direct(cfg: &Conv2dConfig, w: &DMatrix<f64>, b: &[f64], x: &[f64]) -> Vec<f64> {
    let (oh, ow) = cfg.output_size().unwrap();
    let mut y = vec![0.0; cfg.out_channels * oh * ow];
    for (o, yo) in y.chunks_exact_mut(oh * ow).enumerate() {
        yo.fill(b.get(o).copied().unwrap_or(0.0));
    }
    for_each_product(cfg, |o, tap, out, inp| y[out] += w[(o, tap)] * x[inp]);
    y
}

/// The backward pass, looped over the same products: `(dL/dW, dL/dx)` for the batch `x` and
/// output gradient `delta` (one column per example).
fn direct_backward(
    cfg: &Conv2dConfig,
    w: &DMatrix<f64>,
    x: &DMatrix<f64>,
    delta: &DMatrix<f64>,
) -> (DMatrix<f64>, DMatrix<f64>) {
    let mut dw = DMatrix::zeros(w.nrows(), w.ncols());
    let mut dx = DMatrix::zeros(x.nrows(), x.ncols());
    for j in 0..x.ncols() {
        for_each_product(cfg, |o, tap, out, inp| {
            dw[(o, tap)] += delta[(out, j)] * x[(inp, j)];
            dx[(inp, j)] += w[(o, tap)] * delta[(out, j)];
        });
    }
    (dw, dx)
}

#[test]
fn matches_the_definition_on_awkward_configurations() {
    let configs = [
        Conv2dConfig::new((2, 7, 5), 3, (3, 2))
            .stride((2, 1))
            .padding((1, 2)),
        Conv2dConfig::new((1, 9, 9), 2, 3)
            .dilation(2)
            .padding(1)
            .stride(3),
        Conv2dConfig::new((3, 4, 6), 1, (4, 1)).without_bias(),
        Conv2dConfig::new((1, 3, 3), 2, 5).padding(2),
        // padding wider than two strides: the phase of the first column wraps more than once
        Conv2dConfig::new((1, 5, 7), 2, 3).stride(3).padding(7),
    ];
    for cfg in configs {
        let mut conv = Conv2d::<f64>::new(cfg, Init::PyTorchDefault { seed: 3 }).unwrap();
        let mut rng = retroprop_core::rng::Rng::new(5);
        let x = DMatrix::from_fn(cfg.input_shape().len(), 3, |_, _| rng.uniform(-1.0, 1.0));
        let y = conv.forward(&x).unwrap();
        let b: Vec<f64> = conv
            .bias()
            .map(|b| b.value().as_slice().to_vec())
            .unwrap_or_default();
        for col in 0..3 {
            let want = direct(&cfg, conv.weight().value(), &b, x.column(col).as_slice());
            for (a, w) in y.column(col).iter().zip(&want) {
                assert!((a - w).abs() < 1e-12, "{cfg:?}: {a} vs {w}");
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 128,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/conv2d.txt",
            ),
        )),
        ..Default::default()
    })]

    // forward, and backward (dW, db, dx), of random configurations — stride 1 and strided,
    // dilated, padding wider than the kernel's span, one output along a strided axis — against
    // the looped definition
    #[test]
    fn direct_products_match_the_definition(
        ci in 1usize..4, co in 1usize..4, kh in 1usize..5, kw in 1usize..5,
        sh in 1usize..4, sw in 1usize..4, ph in 0usize..3, pw in 0usize..3,
        dh in 1usize..3, dw in 1usize..3, eh in 0usize..6, ew in 0usize..6,
        n in 1usize..4, seed in 0u64..1000,
    ) {
        let h = (dh * (kh - 1) + 1).saturating_sub(2 * ph).max(1) + eh;
        let w = (dw * (kw - 1) + 1).saturating_sub(2 * pw).max(1) + ew;
        let cfg = Conv2dConfig::new((ci, h, w), co, (kh, kw))
            .stride((sh, sw)).padding((ph, pw)).dilation((dh, dw));
        let mut conv = Conv2d::<f64>::new(cfg, Init::PyTorchDefault { seed }).unwrap();
        let mut rng = retroprop_core::rng::Rng::new(seed);
        let x = DMatrix::from_fn(cfg.input_shape().len(), n, |_, _| rng.uniform(-1.0, 1.0));
        let y = conv.forward(&x).unwrap();
        let b = conv.bias().unwrap().value().as_slice().to_vec();
        for col in 0..n {
            let want = direct(&cfg, conv.weight().value(), &b, x.column(col).as_slice());
            for (a, w) in y.column(col).iter().zip(&want) {
                proptest::prop_assert!((a - w).abs() < 1e-12, "{:?}: {} vs {}", cfg, a, w);
            }
        }
        let delta = DMatrix::from_fn(y.nrows(), n, |_, _| rng.uniform(-1.0, 1.0));
        let dx = conv.backward(&delta).unwrap();
        let (want_dw, want_dx) = direct_backward(&cfg, conv.weight().value(), &x, &delta);
        let close = |a: &DMatrix<f64>, b: &DMatrix<f64>| (a - b).amax() < 1e-12;
        proptest::prop_assert!(close(conv.weight().grad(), &want_dw), "dW of {:?}", cfg);
        proptest::prop_assert!(close(&dx, &want_dx), "dx of {:?}", cfg);
        let want_db = DMatrix::from_fn(co, 1, |o, _| {
            (0..n).map(|j| delta.column(j).rows(o * y.nrows() / co, y.nrows() / co).sum()).sum()
        });
        proptest::prop_assert!(close(conv.bias().unwrap().grad(), &want_db), "db of {:?}", cfg);
    }
}

#[test]
fn homework_question_3_shapes() {
    let c1 = Conv2dConfig::new((3, 128, 128), 32, 8).stride(2).padding(3);
    assert_eq!(c1.output_shape().unwrap(), Shape::image(32, 64, 64));
    let c3 = Conv2dConfig::new((32, 32, 32), 64, 3).padding(1);
    assert_eq!(c3.output_shape().unwrap(), Shape::image(64, 32, 32));
    let conv = Conv2d::<f32>::new(c3, Init::Zeros).unwrap();
    // 3b: 3·3·32·64 = 18 432 weights, + 64 biases
    assert_eq!(conv.weight().len(), 18_432);
    assert_eq!(conv.bias().unwrap().len(), 64);
}

#[test]
fn empty_output_is_an_error_naming_the_numbers() {
    let err = Conv2dConfig::new((1, 4, 4), 1, 3).dilation(2).output_size();
    assert_eq!(
        err,
        Err(LayerError::EmptyOutput {
            layer: "Conv2d",
            axis: "height",
            input: 4,
            kernel: 3,
            padding: 0,
            dilation: 2
        })
    );
    assert_eq!(
        Conv2dConfig::new((1, 4, 4), 1, 3)
            .stride((1, 0))
            .output_size(),
        Err(LayerError::ZeroSize {
            layer: "Conv2d",
            what: "stride width"
        })
    );
}

/// `⟨δ, y⟩` for the convolution with weight `w`, no bias, on input `x`.
fn inner(cfg: Conv2dConfig, w: DMatrix<f64>, x: &DMatrix<f64>, delta: &DMatrix<f64>) -> f64 {
    let conv = Conv2d::from_params(cfg.without_bias(), w, None).unwrap();
    conv.infer(x).unwrap().dot(delta)
}

#[test]
fn the_backward_pass_is_the_adjoint_of_the_forward() {
    // L = ⟨δ, y⟩ is linear in W and in x: dL/dW[o, t] = L(W = e_ot), dL/dx[k] = L(x = e_k),
    // dL/db[o] = Σ δ[o, ·]; three examples in three chunks, stride 1 (transposed dx) and 2
    // (phased, scattered dx)
    for cfg in [
        Conv2dConfig::new((2, 5, 4), 2, 3).padding(1),
        Conv2dConfig::new((2, 6, 5), 2, (3, 2))
            .stride(2)
            .padding((1, 0)),
    ] {
        let mut rng = retroprop_core::rng::Rng::new(9);
        let mut conv = Conv2d::<f64>::new(cfg, Init::PyTorchDefault { seed: 4 }).unwrap();
        let x = DMatrix::from_fn(cfg.input_shape().len(), 3, |_, _| rng.uniform(-1.0, 1.0));
        let y = conv.forward(&x).unwrap();
        let delta = DMatrix::from_fn(y.nrows(), 3, |_, _| rng.uniform(-1.0, 1.0));
        let dx = conv.backward(&delta).unwrap();
        let w = conv.weight().value().clone();
        let (c_out, k) = w.shape();
        for o in 0..c_out {
            for t in 0..k {
                let mut unit = DMatrix::zeros(c_out, k);
                unit[(o, t)] = 1.0;
                let want = inner(cfg, unit, &x, &delta);
                let got = conv.weight().grad()[(o, t)];
                assert!(
                    (got - want).abs() < 1e-12,
                    "{cfg:?} dW[{o}, {t}]: {got} vs {want}"
                );
            }
            let db: f64 = (0..3)
                .map(|j| {
                    delta
                        .column(j)
                        .rows(o * y.nrows() / c_out, y.nrows() / c_out)
                        .sum()
                })
                .sum();
            let got = conv.bias().unwrap().grad()[o];
            assert!((got - db).abs() < 1e-12, "{cfg:?} db[{o}]: {got} vs {db}");
        }
        for i in 0..x.nrows() {
            for j in 0..3 {
                let mut unit = DMatrix::zeros(x.nrows(), 3);
                unit[(i, j)] = 1.0;
                let want = inner(cfg, w.clone(), &unit, &delta);
                assert!((dx[(i, j)] - want).abs() < 1e-12, "{cfg:?} dx[{i}, {j}]");
            }
        }
    }
}

/// Largest entry-wise difference of two matrices of one shape.
fn max_diff(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn large_images_and_batches_match_the_looped_definition() {
    // 17 examples make chunks of 3 (several examples per backward chunk, the last one short);
    // 4 × 96 × 96 inputs make rows of several vectors and many column tiles, strided and not
    for (cfg, n) in [
        (Conv2dConfig::new((2, 5, 4), 3, 3).padding(1), 17),
        (Conv2dConfig::new((2, 6, 5), 2, 3).stride(2), 17),
        (Conv2dConfig::new((4, 96, 96), 2, 3).stride(2).padding(1), 2),
        (Conv2dConfig::new((4, 96, 96), 2, 3).padding(1), 2),
    ] {
        let mut rng = retroprop_core::rng::Rng::new(21);
        let mut conv = Conv2d::<f64>::new(cfg, Init::PyTorchDefault { seed: 8 }).unwrap();
        let x = DMatrix::from_fn(cfg.input_shape().len(), n, |_, _| rng.uniform(-1.0, 1.0));
        let y = conv.forward(&x).unwrap();
        let b = conv.bias().unwrap().value().as_slice().to_vec();
        for j in 0..n {
            let want = direct(&cfg, conv.weight().value(), &b, x.column(j).as_slice());
            let got = y.column(j);
            let err = got.iter().zip(&want).map(|(a, w)| (a - w).abs());
            assert!(err.fold(0.0, f64::max) < 1e-12, "{cfg:?} y[:, {j}]");
        }
        let delta = DMatrix::from_fn(y.nrows(), n, |_, _| rng.uniform(-1.0, 1.0));
        let dx = conv.backward(&delta).unwrap();
        let (dw, want_dx) = direct_backward(&cfg, conv.weight().value(), &x, &delta);
        assert!(max_diff(&dx, &want_dx) < 1e-12, "{cfg:?} dL/dx");
        assert!(max_diff(conv.weight().grad(), &dw) < 1e-10, "{cfg:?} dL/dW");
        let db = DMatrix::from_fn(cfg.out_channels, 1, |o, _| {
            let rows = y.nrows() / cfg.out_channels;
            (0..n)
                .map(|j| delta.column(j).rows(o * rows, rows).sum())
                .sum()
        });
        assert!(
            max_diff(conv.bias().unwrap().grad(), &db) < 1e-10,
            "{cfg:?} dL/db"
        );
    }
}
