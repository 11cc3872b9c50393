//! `explain cnn`: questions 3a and 3b for any stack of convolutions and poolings — each
//! layer's output size with its formula filled in, its scalar count and its parameter count.

use retroprop_layers::{Conv2dConfig, Layer, MaxPool2d, MaxPool2dConfig, Shape};
use serde::{Deserialize, Serialize};

use super::quantity::Quantity;

/// One layer of the stack, as written on the command line: `conv 32:8x8:s2:p3`, `pool 2`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// `C_out` kernels of `kh × kw`, stride, padding.
    Conv {
        /// Output channels.
        out: usize,
        /// Kernel `(h, w)`.
        kernel: (usize, usize),
        /// Stride.
        stride: usize,
        /// Zero padding on each side.
        padding: usize,
    },
    /// Max-pooling with a square window and the same stride.
    Pool(usize),
}

/// The network of question 3: `3x128x128`, conv 32:8x8:s2:p3, pool 2, conv 64:3x3:s1:p1.
pub fn question_3() -> ((usize, usize, usize), Vec<Step>) {
    (
        (3, 128, 128),
        vec![
            Step::Conv {
                out: 32,
                kernel: (8, 8),
                stride: 2,
                padding: 3,
            },
            Step::Pool(2),
            Step::Conv {
                out: 64,
                kernel: (3, 3),
                stride: 1,
                padding: 1,
            },
        ],
    )
}

fn number(s: &str, what: &str) -> Result<usize, String> {
    s.parse()
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("{what} `{s}` is not a positive whole number"))
}

/// `3x128x128` → `(3, 128, 128)`.
pub fn parse_input(s: &str) -> Result<(usize, usize, usize), String> {
    let parts: Vec<&str> = s.split(['x', '×']).collect();
    match parts.as_slice() {
        [c, h, w] => Ok((
            number(c, "channels")?,
            number(h, "height")?,
            number(w, "width")?,
        )),
        _ => Err(format!("--input {s}: write C×H×W as 3x128x128")),
    }
}

/// `32:8x8:s2:p3` (stride and padding optional, 1 and 0 by default).
pub fn parse_conv(s: &str) -> Result<Step, String> {
    let mut parts = s.split(':');
    let out = number(parts.next().unwrap_or(""), "--conv channels")?;
    let kernel = parts
        .next()
        .ok_or_else(|| format!("--conv {s}: write C:KxK[:sS][:pP], e.g. 32:8x8:s2:p3"))?;
    let kernel = match kernel.split(['x', '×']).collect::<Vec<_>>().as_slice() {
        [k] => (number(k, "kernel")?, number(k, "kernel")?),
        [h, w] => (number(h, "kernel height")?, number(w, "kernel width")?),
        _ => return Err(format!("--conv {s}: the kernel is KxK, e.g. 8x8")),
    };
    let (mut stride, mut padding) = (1, 0);
    for p in parts {
        match (p.strip_prefix('s'), p.strip_prefix('p')) {
            (Some(v), _) => stride = number(v, "stride")?,
            (_, Some(v)) => {
                padding = v
                    .parse()
                    .map_err(|_| format!("padding `{v}` is not a whole number"))?
            }
            _ => {
                return Err(format!(
                    "--conv {s}: `{p}` is neither sN (stride) nor pN (padding)"
                ));
            }
        }
    }
    Ok(Step::Conv {
        out,
        kernel,
        stride,
        padding,
    })
}

/// Each layer's quantities: the output size per axis with the formula's numbers, the output
/// shape, its scalar count, and the parameters with their product written out.
///
/// # Errors
/// The library's message for a layer that does not fit its input (a kernel larger than the
/// padded image, a padding over half the kernel).
pub fn compute(input: (usize, usize, usize), steps: &[Step]) -> Result<Vec<Quantity>, String> {
    let (mut c, mut h, mut w) = input;
    let mut q = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let k = i + 1;
        let layer = match *step {
            Step::Conv {
                out,
                kernel,
                stride,
                padding,
            } => {
                let config = Conv2dConfig::new((c, h, w), out, kernel)
                    .stride(stride)
                    .padding(padding);
                let (oh, ow) = config
                    .output_size()
                    .map_err(|e| format!("layer {k}: {e}"))?;
                let axis = |i: usize, kk: usize, o: usize| {
                    format!("⌊({i} + 2·{padding} − {kk})/{stride}⌋ + 1 = {o}")
                };
                let formula = if (h, kernel.0) == (w, kernel.1) {
                    axis(h, kernel.0, oh)
                } else {
                    format!("{} by {}", axis(h, kernel.0, oh), axis(w, kernel.1, ow))
                };
                let weights = kernel.0 * kernel.1 * c * out;
                q.push(Quantity::scalar(
                    "3a",
                    &format!("size_{k}"),
                    &format!("conv {k}: H′"),
                    &formula,
                    oh as f64,
                ));
                q.push(Quantity::scalar(
                    "3b",
                    &format!("weights_{k}"),
                    &format!("conv {k}: weights"),
                    &format!(
                        "{}·{}·{c}·{out} = {weights}, + {out} biases",
                        kernel.0, kernel.1
                    ),
                    weights as f64,
                ));
                (out, oh, ow)
            }
            Step::Pool(p) => {
                let pool = MaxPool2d::<f64>::new(MaxPool2dConfig::new((c, h, w), p))
                    .map_err(|e| format!("layer {k}: {e}"))?;
                let Shape::Image { h: oh, w: ow, .. } = pool
                    .output_shape(Shape::image(c, h, w))
                    .map_err(|e| format!("layer {k}: {e}"))?
                else {
                    unreachable!("pooling keeps an image")
                };
                let formula = format!("⌊({h} − {p})/{p}⌋ + 1 = {oh}");
                q.push(Quantity::scalar(
                    "3a",
                    &format!("size_{k}"),
                    &format!("pool {k}: H′"),
                    &formula,
                    oh as f64,
                ));
                (c, oh, ow)
            }
        };
        (c, h, w) = layer;
        q.push(Quantity::scalar(
            "3a",
            &format!("values_{k}"),
            &format!("layer {k}: {c}×{h}×{w}"),
            &format!("{c}·{h}·{w}"),
            (c * h * w) as f64,
        ));
    }
    Ok(q)
}

/// The known mistake of 3b: the weights of a convolution counted without its input channels.
pub fn mistakes(truth: &[Quantity], name: &str) -> Vec<(&'static str, &'static str, f64)> {
    let Some(q) = truth.iter().find(|q| q.name == name) else {
        return Vec::new();
    };
    if !name.starts_with("weights_") {
        return Vec::new();
    }
    // "kh·kw·c·out = …": the product without its third factor
    let factors: Vec<f64> = q
        .formula
        .split(" = ")
        .next()
        .unwrap_or("")
        .split('·')
        .filter_map(|f| f.trim().parse().ok())
        .collect();
    match factors.as_slice() {
        [kh, kw, _, out] => vec![(
            "the input channels are forgotten: each kernel spans all C_in channels (3·3·64 = 576)",
            "3b",
            kh * kw * out,
        )],
        _ => Vec::new(),
    }
}
