//! Average pooling, and global average pooling (PyTorch's `nn.AvgPool2d`,
//! `nn.AdaptiveAvgPool2d(1)`).

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use serde::{Deserialize, Serialize};

use crate::layer::{check_grad, check_rows};
use crate::{Layer, LayerConfig, LayerError, LayerSpec, MaxPool2dConfig, Shape};

const NAME: &str = "AvgPool2d";

/// The configuration of an [`AvgPool2d`]: the pooling geometry shared with max-pooling
/// (channels, input size, window, stride, padding at most half the window); kind `"AvgPool2d"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AvgPool2dConfig(pub MaxPool2dConfig);

impl LayerConfig for AvgPool2dConfig {
    const KIND: &'static str = NAME;
    fn build<T: Scalar>(&self, _: Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError> {
        Ok(Box::new(AvgPool2d::new(self.0)?))
    }
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(self.0.output_size_for(NAME).map(|_| Vec::new()))
    }
}

/// Average pooling over each channel, padding counted as zeros in the average (PyTorch's
/// default `count_include_pad=True`):
///
/// ```text
/// y[c, i, j] = (1 / (kₕ k_w)) Σ_{u, v} x[c, i·sₕ + u − pₕ, j·s_w + v − p_w]    (x = 0 outside)
/// dL/dx[c, a, b] = (1 / (kₕ k_w)) Σ over windows holding (a, b) of dL/dy[c, i, j]
/// ```
///
/// [`AvgPool2d::global`] averages each channel over the whole image: `C×H×W → C×1×1`, PyTorch's
/// `AdaptiveAvgPool2d(1)` (a `Flatten` after it gives the `C` features of a classifier head).
#[derive(Clone, Debug)]
pub struct AvgPool2d<T: Scalar> {
    config: MaxPool2dConfig,
    out: (usize, usize),
    batch: Option<usize>,
    _scalar: std::marker::PhantomData<T>,
}

impl<T: Scalar> AvgPool2d<T> {
    /// Average pooling with this geometry.
    ///
    /// # Errors
    /// As [`MaxPool2dConfig::output_size`], naming `AvgPool2d`.
    pub fn new(config: MaxPool2dConfig) -> Result<Self, LayerError> {
        let out = config.output_size_for(NAME)?;
        Ok(Self {
            config,
            out,
            batch: None,
            _scalar: std::marker::PhantomData,
        })
    }

    /// Global average pooling of `(C, H, W)` images: one window the size of the image.
    ///
    /// # Errors
    /// [`LayerError::ZeroSize`] for an empty image.
    pub fn global(input: (usize, usize, usize)) -> Result<Self, LayerError> {
        let (_, h, w) = input;
        Self::new(MaxPool2dConfig::new(input, (h, w)))
    }

    fn in_len(&self) -> usize {
        self.config.channels * self.config.input.h * self.config.input.w
    }

    fn out_len(&self) -> usize {
        self.config.channels * self.out.0 * self.out.1
    }

    /// Calls `f(input index, output index)` for every pair of an input inside a window and
    /// that window's output, for one example.
    fn windows(&self, mut f: impl FnMut(usize, usize)) {
        let c = self.config;
        let (oh, ow) = self.out;
        for ch in 0..c.channels {
            for i in 0..oh {
                for j in 0..ow {
                    let o = (ch * oh + i) * ow + j;
                    for u in 0..c.kernel.h {
                        let Some(a) = (i * c.stride.h + u).checked_sub(c.padding.h) else {
                            continue;
                        };
                        if a >= c.input.h {
                            continue;
                        }
                        for v in 0..c.kernel.w {
                            let Some(b) = (j * c.stride.w + v).checked_sub(c.padding.w) else {
                                continue;
                            };
                            if b < c.input.w {
                                f((ch * c.input.h + a) * c.input.w + b, o);
                            }
                        }
                    }
                }
            }
        }
    }

    fn apply(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        check_rows(NAME, "input", x, self.in_len())?;
        let scale = T::one() / T::lit((self.config.kernel.h * self.config.kernel.w) as f64);
        let mut y = DMatrix::zeros(self.out_len(), x.ncols());
        for (xc, yc) in x
            .as_slice()
            .chunks_exact(self.in_len().max(1))
            .zip(y.as_mut_slice().chunks_exact_mut(self.out_len().max(1)))
        {
            self.windows(|i, o| yc[o] += xc[i]);
            for v in yc.iter_mut() {
                *v *= scale;
            }
        }
        Ok(y)
    }
}

impl<T: Scalar> Layer<T> for AvgPool2d<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::new(AvgPool2dConfig::KIND, &AvgPool2dConfig(self.config))
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        if input != self.config.input_shape() {
            return Err(LayerError::InputShape {
                layer: NAME,
                expected: self.config.input_shape(),
                got: input,
            });
        }
        Ok(Shape::image(self.config.channels, self.out.0, self.out.1))
    }

    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let y = self.apply(x)?;
        self.batch = Some(x.ncols());
        Ok(y)
    }

    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let n = self
            .batch
            .ok_or(LayerError::NoForwardCache { layer: NAME })?;
        check_grad(NAME, grad_y, self.out_len(), n)?;
        let scale = T::one() / T::lit((self.config.kernel.h * self.config.kernel.w) as f64);
        let mut dx = DMatrix::zeros(self.in_len(), n);
        for (gc, dc) in grad_y
            .as_slice()
            .chunks_exact(self.out_len().max(1))
            .zip(dx.as_mut_slice().chunks_exact_mut(self.in_len().max(1)))
        {
            self.windows(|i, o| dc[i] += gc[o] * scale);
        }
        Ok(dx)
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        self.apply(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_windows_and_the_whole_image() {
        // 1×2×4 image, 2×2 windows: [1 2 3 4; 5 6 7 8] → [3.5, 5.5]
        let x = DMatrix::from_column_slice(8, 1, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let mut pool = AvgPool2d::<f64>::new(MaxPool2dConfig::new((1, 2, 4), 2)).unwrap();
        assert_eq!(pool.forward(&x).unwrap().as_slice(), &[3.5, 5.5]);
        let dx = pool
            .backward(&DMatrix::from_column_slice(2, 1, &[4.0, 8.0]))
            .unwrap();
        assert_eq!(dx.as_slice(), &[1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
        let global = AvgPool2d::<f64>::global((1, 2, 4)).unwrap();
        assert_eq!(global.infer(&x).unwrap().as_slice(), &[4.5]);
        assert_eq!(
            global.output_shape(Shape::image(1, 2, 4)).unwrap(),
            Shape::image(1, 1, 1)
        );
        // padding counts as zeros: a 3×3 window at the corner of a 1×2×2 image of ones
        let pad =
            AvgPool2d::<f64>::new(MaxPool2dConfig::new((1, 2, 2), 3).stride(1).padding(1)).unwrap();
        let y = pad.infer(&DMatrix::from_element(4, 1, 1.0)).unwrap();
        assert!(y.iter().all(|&v| (v - 4.0 / 9.0).abs() < 1e-15), "{y}");
        let err = AvgPool2d::<f64>::new(MaxPool2dConfig::new((1, 2, 2), 3)).unwrap_err();
        assert!(err.to_string().starts_with("AvgPool2d"), "{err}");
    }
}
