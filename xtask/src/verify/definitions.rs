//! Forward passes against their definitions, written as plain loops.
//!
//! A gradient check compares a backward pass with the forward pass it belongs to, so it cannot
//! see a mistake the two share: a kernel flipped in both (convolution instead of the
//! cross-correlation PyTorch and the homework's question 3 use), a dilation applied to neither.
//! These checks pin the forward pass itself to the definition.

use nalgebra::DMatrix;
use retroprop_gradcheck::{Outcome, Suite};
use retroprop_layers::{Conv2d, Conv2dConfig, Init, Layer};

use super::random;

const G: &str = "layers (forward against the looped definition)";

/// Two summation orders of the same `n = C_in·k_h·k_w ≤ 192` products differ by at most
/// `(n − 1)·ε·Σ|W x|`, and with PyTorch's initialisation (`|W| ≤ 1/√n`, `|x| ≤ 1`) `Σ|W x| ≤ √n`:
/// `191 · 2.2·10⁻¹⁶ · 13.9 ≈ 6·10⁻¹³`. A flipped kernel or an ignored dilation moves outputs by
/// `O(0.1)`.
const DEFINITION_TOL: f64 = 1e-12;

/// `y[o, i, j] = b[o] + Σ_{c,u,v} W[o, (c, u, v)] · x[c, i·sₕ + u·dₕ − pₕ, j·s_w + v·d_w − p_w]`,
/// with zero padding: the cross-correlation of PyTorch's `Conv2d`, taps in `(c, u, v)` order.
fn conv2d_definition(cfg: &Conv2dConfig, w: &DMatrix<f64>, b: &[f64], x: &[f64]) -> Vec<f64> {
    let Ok((oh, ow)) = cfg.output_size() else {
        return Vec::new();
    };
    let (c_in, h, wd) = (cfg.in_channels, cfg.input.h, cfg.input.w);
    let (k, s, p, d) = (cfg.kernel, cfg.stride, cfg.padding, cfg.dilation);
    let mut y = Vec::with_capacity(cfg.out_channels * oh * ow);
    for o in 0..cfg.out_channels {
        for i in 0..oh {
            for j in 0..ow {
                let mut acc = b.get(o).copied().unwrap_or(0.0);
                for c in 0..c_in {
                    for u in 0..k.h {
                        for v in 0..k.w {
                            let iy = (i * s.h + u * d.h).checked_sub(p.h);
                            let ix = (j * s.w + v * d.w).checked_sub(p.w);
                            let (Some(iy), Some(ix)) = (iy, ix) else {
                                continue;
                            };
                            if iy < h && ix < wd {
                                let tap = (c * k.h + u) * k.w + v;
                                acc += w[(o, tap)] * x[(c * h + iy) * wd + ix];
                            }
                        }
                    }
                }
                y.push(acc);
            }
        }
    }
    y
}

/// The largest relative difference between `Conv2d::forward` and the definition, or a message.
fn conv2d_against_definition(cfg: Conv2dConfig, n: usize, seed: u64) -> Outcome {
    let mut conv = match Conv2d::<f64>::new(cfg, Init::PyTorchDefault { seed }) {
        Ok(conv) => conv,
        Err(e) => return Outcome::within(f64::INFINITY, DEFINITION_TOL, "rel", e.to_string()),
    };
    let x = random(cfg.input_shape().len(), n, -1.0, 1.0, seed);
    let y = match conv.forward(&x) {
        Ok(y) => y,
        Err(e) => return Outcome::within(f64::INFINITY, DEFINITION_TOL, "rel", e.to_string()),
    };
    let b: Vec<f64> = conv
        .bias()
        .map(|b| b.value().as_slice().to_vec())
        .unwrap_or_default();
    let mut worst = (0.0_f64, String::from("every output"));
    for col in 0..n {
        let want = conv2d_definition(&cfg, conv.weight().value(), &b, x.column(col).as_slice());
        if want.len() != y.nrows() {
            return Outcome::within(
                f64::INFINITY,
                DEFINITION_TOL,
                "rel",
                format!("{} outputs, the definition has {}", y.nrows(), want.len()),
            );
        }
        for (r, (&got, &w)) in y.column(col).iter().zip(&want).enumerate() {
            let e = (got - w).abs() / w.abs().max(1.0);
            if e > worst.0 || e.is_nan() {
                worst = (e, format!("output {r} of example {col}: {got} vs {w}"));
            }
        }
    }
    Outcome::within(
        if worst.0.is_nan() {
            f64::INFINITY
        } else {
            worst.0
        },
        DEFINITION_TOL,
        "rel",
        format!("worst: {}", worst.1),
    )
}

/// Conv2d's forward pass on every code path (the stride-1 padded layout, strided, dilated at
/// stride 1 and 2, rectangular, without bias) against the looped definition.
pub fn conv2d(suite: &mut Suite) {
    let cases = [
        (
            "stride1-padded",
            Conv2dConfig::new((3, 8, 8), 4, 3).padding(1),
            2,
        ),
        (
            "stride2-q3-first",
            Conv2dConfig::new((3, 16, 16), 4, 8).stride(2).padding(3),
            2,
        ),
        (
            "dilated-stride1",
            Conv2dConfig::new((2, 9, 9), 3, 3).dilation(2).padding(2),
            2,
        ),
        (
            "dilated-stride2",
            Conv2dConfig::new((1, 11, 11), 2, 3)
                .dilation(2)
                .stride(2)
                .padding(1),
            2,
        ),
        (
            "rect-asymmetric",
            Conv2dConfig::new((2, 9, 7), 3, (3, 2))
                .stride((2, 1))
                .padding((1, 2))
                .dilation((1, 2)),
            3,
        ),
        (
            "no-bias",
            Conv2dConfig::new((3, 6, 5), 2, (2, 3)).without_bias(),
            1,
        ),
    ];
    for (seed, (name, cfg, n)) in cases.into_iter().enumerate() {
        let seed = seed as u64 + 40;
        suite.add(
            format!("layers/conv2d/def/{name}"),
            G,
            format!("Conv2d {name}: forward = looped cross-correlation"),
            move || conv2d_against_definition(cfg, n, seed),
        );
    }
}
