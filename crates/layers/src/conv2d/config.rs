//! What defines a convolution: sizes per axis, the configuration and its output size.

use serde::{Deserialize, Serialize};

use super::NAME;
use crate::shape::{MAX_VALUES, check_nonzero, checked_product};
use crate::{LayerError, Shape};

/// A size per spatial axis: `(height, width)`. `Hw::from(3)` is `3 × 3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Hw {
    /// Along the height (rows).
    pub h: usize,
    /// Along the width (columns).
    pub w: usize,
}

impl From<usize> for Hw {
    fn from(v: usize) -> Self {
        Hw { h: v, w: v }
    }
}

impl From<(usize, usize)> for Hw {
    fn from((h, w): (usize, usize)) -> Self {
        Hw { h, w }
    }
}

/// Whether a convolution adds a learned bias per output channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Bias {
    /// `y = W ⋆ x + b` (the default).
    Learned,
    /// `y = W ⋆ x`.
    Without,
}

/// Output size along one axis, with the homework's definitions of stride `s`, zero padding `p`
/// and dilation `d`:
///
/// ```text
/// o = ⌊(i + 2p − d(k − 1) − 1) / s⌋ + 1
/// ```
///
/// (The answer key's `⌊(i + 2p − k)/s⌋ + 1` is the case `d = 1`.)
///
/// # Errors
/// [`LayerError::EmptyOutput`] if `i + 2p < d(k − 1) + 1` (the dilated kernel does not fit).
pub fn output_size(
    layer: &'static str,
    axis: &'static str,
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Result<usize, LayerError> {
    let too_large = LayerError::TooLarge {
        layer,
        values: usize::MAX,
        limit: MAX_VALUES,
    };
    let span = dilation
        .checked_mul(kernel.saturating_sub(1))
        .and_then(|v| v.checked_add(1))
        .filter(|&v| v <= MAX_VALUES)
        .ok_or(too_large.clone())?;
    let padded = padding
        .checked_mul(2)
        .and_then(|v| v.checked_add(input))
        .filter(|&v| v <= MAX_VALUES)
        .ok_or(too_large)?;
    if padded < span {
        return Err(LayerError::EmptyOutput {
            layer,
            axis,
            input,
            kernel,
            padding,
            dilation,
        });
    }
    Ok((padded - span) / stride + 1)
}

/// Everything that defines a [`Conv2d`](super::Conv2d) except its weights.
///
/// ```
/// use retroprop_layers::{Conv2dConfig, LayerError};
///
/// # fn main() -> Result<(), LayerError> {
/// // Question 3, first layer: 3×128×128 → 32 kernels 8×8, stride 2, zero padding 3.
/// let c = Conv2dConfig::new((3, 128, 128), 32, 8).stride(2).padding(3);
/// assert_eq!(c.output_size()?, (64, 64));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conv2dConfig {
    /// Input channels `C_in`.
    pub in_channels: usize,
    /// Input image size `(H, W)`.
    pub input: Hw,
    /// Output channels `C_out` (number of kernels).
    pub out_channels: usize,
    /// Kernel size `(kh, kw)`.
    pub kernel: Hw,
    /// Distance between consecutive kernel positions (question 3's `sᵢ`).
    pub stride: Hw,
    /// Zeros added at both ends of each axis (`pᵢ`).
    pub padding: Hw,
    /// Spacing between kernel taps (`dᵢ`; 1 = dense kernel).
    pub dilation: Hw,
    /// Learned bias or none.
    pub bias: Bias,
}

impl Conv2dConfig {
    /// A convolution of images `(C_in, H, W)` with `out_channels` kernels of size `kernel`;
    /// stride 1, no padding, no dilation, learned bias.
    pub fn new(input: (usize, usize, usize), out_channels: usize, kernel: impl Into<Hw>) -> Self {
        let (c, h, w) = input;
        Self {
            in_channels: c,
            input: Hw { h, w },
            out_channels,
            kernel: kernel.into(),
            stride: Hw::from(1),
            padding: Hw::from(0),
            dilation: Hw::from(1),
            bias: Bias::Learned,
        }
    }

    /// With this stride.
    pub fn stride(mut self, stride: impl Into<Hw>) -> Self {
        self.stride = stride.into();
        self
    }

    /// With this zero padding on each side.
    pub fn padding(mut self, padding: impl Into<Hw>) -> Self {
        self.padding = padding.into();
        self
    }

    /// With this dilation.
    pub fn dilation(mut self, dilation: impl Into<Hw>) -> Self {
        self.dilation = dilation.into();
        self
    }

    /// Without the bias.
    pub fn without_bias(mut self) -> Self {
        self.bias = Bias::Without;
        self
    }

    /// Input shape `C_in × H × W`.
    pub fn input_shape(&self) -> Shape {
        Shape::image(self.in_channels, self.input.h, self.input.w)
    }

    /// Output size `(H_out, W_out)`.
    ///
    /// # Errors
    /// [`LayerError::ZeroSize`] for a zero size, [`LayerError::EmptyOutput`] if the output would
    /// be empty (the error names the numbers).
    pub fn output_size(&self) -> Result<(usize, usize), LayerError> {
        check_nonzero(
            NAME,
            &[
                ("input channels", self.in_channels),
                ("output channels", self.out_channels),
                ("input height", self.input.h),
                ("input width", self.input.w),
                ("kernel height", self.kernel.h),
                ("kernel width", self.kernel.w),
                ("stride height", self.stride.h),
                ("stride width", self.stride.w),
                ("dilation height", self.dilation.h),
                ("dilation width", self.dilation.w),
            ],
        )?;
        let (k, s, p, d) = (self.kernel, self.stride, self.padding, self.dilation);
        let (oh, ow) = (
            output_size(NAME, "height", self.input.h, k.h, s.h, p.h, d.h)?,
            output_size(NAME, "width", self.input.w, k.w, s.w, p.w, d.w)?,
        );
        // every size the layer computes with, checked once here
        checked_product(NAME, &[self.in_channels, self.input.h, self.input.w])?;
        checked_product(NAME, &[self.out_channels, oh, ow])?;
        let taps = checked_product(NAME, &[self.in_channels, k.h, k.w])?;
        checked_product(NAME, &[self.out_channels, taps])?;
        // the padded, stride-phased layout of one input (see geometry.rs): C × H_p × s_w·W_q,
        // and s_w·W_q < 2·W_p
        checked_product(
            NAME,
            &[
                self.in_channels,
                2 * p.h + self.input.h,
                2 * (2 * p.w + self.input.w),
            ],
        )?;
        // the padded output gradient of the input gradient (stride 1): C_out × H_d × W_d
        let span = |pad: usize, dil: usize, k: usize| pad.max(dil * (k - 1));
        checked_product(
            NAME,
            &[
                self.out_channels,
                self.input.h + p.h + span(p.h, d.h, k.h),
                self.input.w + p.w + span(p.w, d.w, k.w),
            ],
        )?;
        Ok((oh, ow))
    }

    /// Output shape `C_out × H_out × W_out`.
    ///
    /// # Errors
    /// As [`Conv2dConfig::output_size`].
    pub fn output_shape(&self) -> Result<Shape, LayerError> {
        let (oh, ow) = self.output_size()?;
        Ok(Shape::image(self.out_channels, oh, ow))
    }
}
