//! Max-pool tie-breaking, on every code path: ties go to the *first* maximum in scan order
//! (row by row, left to right), as in PyTorch. The 2×2/stride-2 fast path and the general path
//! (edge columns scanned window by window, interior columns lane by lane) each implement the
//! rule; the inputs here are drawn from {0, 1, 2}, so nearly every window has ties.

use nalgebra::DMatrix;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use retroprop_layers::{Layer, MaxPool2d, MaxPool2dConfig};

/// The definition, written as plainly as possible: for each output, scan its window in order
/// and keep the first strictly greater value. Returns the outputs and, for each output, the
/// index of its winner within the example.
fn first_maximum_loop(cfg: &MaxPool2dConfig, x: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let (h, w) = (cfg.input.h, cfg.input.w);
    let (oh, ow) = cfg.output_size().expect("valid configuration");
    let (mut y, mut arg) = (Vec::new(), Vec::new());
    for c in 0..cfg.channels {
        for i in 0..oh {
            for j in 0..ow {
                let mut best: Option<(f64, usize)> = None;
                for u in 0..cfg.kernel.h {
                    for v in 0..cfg.kernel.w {
                        // padded positions (outside the image) never win
                        let (Some(iy), Some(ix)) = (
                            (i * cfg.stride.h + u).checked_sub(cfg.padding.h),
                            (j * cfg.stride.w + v).checked_sub(cfg.padding.w),
                        ) else {
                            continue;
                        };
                        if iy >= h || ix >= w {
                            continue;
                        }
                        let at = c * h * w + iy * w + ix;
                        if best.is_none_or(|(b, _)| x[at] > b) {
                            best = Some((x[at], at));
                        }
                    }
                }
                let (b, at) = best.expect("every window holds an input");
                y.push(b);
                arg.push(at);
            }
        }
    }
    (y, arg)
}

/// Runs the layer forward and backward with a distinct gradient per output (`k + 1` for output
/// `k`, exact in f64) and compares the outputs and the routed gradient with the definition.
#[track_caller]
fn assert_matches_definition(cfg: MaxPool2dConfig, x: &DMatrix<f64>) {
    let mut pool = MaxPool2d::<f64>::new(cfg).unwrap();
    let y = pool.forward(x).unwrap();
    let arg = pool
        .argmax()
        .expect("a forward pass keeps the winners")
        .to_vec();
    let grad_y = DMatrix::from_fn(y.nrows(), y.ncols(), |k, _| (k + 1) as f64);
    let grad_x = pool.backward(&grad_y).unwrap();
    for col in 0..x.ncols() {
        let (want_y, want_arg) = first_maximum_loop(&cfg, x.column(col).as_slice());
        assert_eq!(y.column(col).as_slice(), &want_y[..], "{cfg:?}: outputs");
        let out_len = want_arg.len();
        let got_arg: Vec<usize> = arg[col * out_len..(col + 1) * out_len]
            .iter()
            .map(|&a| a as usize)
            .collect();
        assert_eq!(got_arg, want_arg, "{cfg:?}: winners (argmax)");
        let mut want_grad = vec![0.0; x.nrows()];
        for (k, &at) in want_arg.iter().enumerate() {
            want_grad[at] += (k + 1) as f64;
        }
        assert_eq!(
            grad_x.column(col).as_slice(),
            &want_grad[..],
            "{cfg:?}: gradient routing (ties must go to the first maximum)\ninput {:?}",
            x.column(col).as_slice()
        );
    }
}

#[test]
fn constant_image_with_3x3_stride_1_padding_1_routes_to_the_first_tap() {
    // every window is a tie; the general path (not the 2×2 fast path) handles it
    let cfg = MaxPool2dConfig::new((2, 5, 6), 3).stride(1).padding(1);
    let x = DMatrix::from_element(cfg.input_shape().len(), 2, 1.0);
    assert_matches_definition(cfg, &x);
    // and explicitly: output (0, 0) sees rows 0..2, columns 0..2, and takes input (0, 0);
    // output (1, 1) sees rows 0..3, columns 0..3 and takes (0, 0) too; output (2, 3) takes (1, 2)
    let mut pool = MaxPool2d::<f64>::new(cfg).unwrap();
    let y = pool.forward(&x.columns(0, 1).into_owned()).unwrap();
    let mut grad_y = DMatrix::zeros(y.nrows(), 1);
    grad_y[2 * 6 + 3] = 1.0;
    let grad_x = pool.backward(&grad_y).unwrap();
    let mut want = vec![0.0; 60];
    want[6 + 2] = 1.0;
    assert_eq!(grad_x.as_slice(), &want[..]);
}

#[test]
fn ties_on_the_2x2_fast_path_and_on_strided_general_windows() {
    let x = DMatrix::from_fn(2 * 6 * 8, 3, |r, c| ((r * 7 + c * 3) % 3) as f64);
    for cfg in [
        MaxPool2dConfig::new((2, 6, 8), 2),
        MaxPool2dConfig::new((2, 6, 8), 3).stride(2),
        MaxPool2dConfig::new((2, 6, 8), (2, 3))
            .stride((1, 3))
            .padding((1, 1)),
    ] {
        assert_matches_definition(cfg, &x);
    }
}

#[test]
fn distinct_values_on_the_2x2_fast_path_and_on_padded_2x2_windows() {
    // 37·r mod 97 is distinct for r < 97: no ties, so every one of a window's taps wins
    // somewhere, and a winner's index (forward's argmax, backward's routing) must be exact
    let x = DMatrix::from_fn(2 * 6 * 8, 3, |r, c| ((r * 37 + c * 11) % 97) as f64);
    for cfg in [
        MaxPool2dConfig::new((2, 6, 8), 2),
        MaxPool2dConfig::new((2, 6, 8), 2).padding(1),
        MaxPool2dConfig::new((2, 6, 8), 2).stride(1),
        MaxPool2dConfig::new((2, 6, 8), 3).stride(2).padding(1),
    ] {
        assert_matches_definition(cfg, &x);
    }
    // an image narrower than its padding: one column, windows 4 wide padded by 2
    let narrow = MaxPool2dConfig::new((2, 6, 1), (1, 4)).padding((0, 2));
    assert_matches_definition(narrow, &x.rows(0, 12).into_owned());
    // the fast path's four taps each win at least once in this input
    let cfg = MaxPool2dConfig::new((2, 6, 8), 2);
    let mut pool = MaxPool2d::<f64>::new(cfg).unwrap();
    pool.forward(&x).unwrap();
    let taps: std::collections::BTreeSet<u32> = pool
        .argmax()
        .unwrap()
        .iter()
        .map(|&a| {
            // a winner at channel c, row iy, column ix: a = 48c + 8iy + ix; its tap in the
            // 2×2 window is (iy mod 2, ix mod 2)
            let (iy, ix) = ((a % 48) / 8, a % 8);
            2 * (iy % 2) + ix % 2
        })
        .collect();
    assert_eq!(taps.len(), 4, "taps that won: {taps:?}");
}

/// A pooling configuration that is valid (padding ≤ kernel/2, non-empty output), with inputs
/// from {0, 1, 2}.
fn tie_case() -> impl Strategy<Value = (MaxPool2dConfig, DMatrix<f64>)> {
    (
        1usize..3,
        1usize..5,
        1usize..5,
        1usize..4,
        1usize..4,
        0usize..3,
        0usize..3,
    )
        .prop_flat_map(|(c, kh, kw, sh, sw, eh, ew)| {
            (0..=kh / 2, 0..=kw / 2, 1usize..3).prop_flat_map(move |(ph, pw, n)| {
                let (h, w) = (kh + eh, kw + ew + 4);
                let cfg = MaxPool2dConfig::new((c, h, w), (kh, kw))
                    .stride((sh, sw))
                    .padding((ph, pw));
                prop::collection::vec(0u8..3, c * h * w * n).prop_map(move |v| {
                    let x = DMatrix::from_iterator(c * h * w, n, v.iter().map(|&b| f64::from(b)));
                    (cfg, x)
                })
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/maxpool_ties.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn ties_go_to_the_first_maximum_on_every_path((cfg, x) in tie_case()) {
        assert_matches_definition(cfg, &x);
    }
}
