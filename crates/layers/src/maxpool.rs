//! 2-D max pooling (question 3's second layer).

use nalgebra::DMatrix;
use rayon::prelude::*;
use retroprop_core::Scalar;
use retroprop_core::simd::vectorized;
use serde::{Deserialize, Serialize};

use crate::conv2d::output_size;
use crate::layer::{check_grad, check_rows};
use crate::shape::{check_nonzero, checked_product};
use crate::{Hw, Layer, LayerConfig, LayerError, LayerSpec, Shape};

const NAME: &str = "MaxPool2d";

/// Everything that defines a [`MaxPool2d`].
///
/// ```
/// use retroprop_layers::{LayerError, MaxPool2dConfig, Shape};
///
/// # fn main() -> Result<(), LayerError> {
/// // Question 3: 2×2 max-pool without overlap (stride = kernel) on 32×64×64.
/// let pool = MaxPool2dConfig::new((32, 64, 64), 2);
/// assert_eq!(pool.output_shape()?, Shape::image(32, 32, 32));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MaxPool2dConfig {
    /// Channels (unchanged by pooling).
    pub channels: usize,
    /// Input image size `(H, W)`.
    pub input: Hw,
    /// Window size.
    pub kernel: Hw,
    /// Window step; defaults to the kernel (non-overlapping windows).
    pub stride: Hw,
    /// Implicit `−∞` padding on each side (at most half the kernel).
    pub padding: Hw,
}

impl MaxPool2dConfig {
    /// Pooling of images `(C, H, W)` with windows of `kernel`, stride = kernel, no padding.
    pub fn new(input: (usize, usize, usize), kernel: impl Into<Hw>) -> Self {
        let (c, h, w) = input;
        let kernel = kernel.into();
        Self {
            channels: c,
            input: Hw { h, w },
            kernel,
            stride: kernel,
            padding: Hw::from(0),
        }
    }

    /// With this stride (overlapping windows if smaller than the kernel).
    pub fn stride(mut self, stride: impl Into<Hw>) -> Self {
        self.stride = stride.into();
        self
    }

    /// With this padding (padded positions never win).
    pub fn padding(mut self, padding: impl Into<Hw>) -> Self {
        self.padding = padding.into();
        self
    }

    /// Input shape `C × H × W`.
    pub fn input_shape(&self) -> Shape {
        Shape::image(self.channels, self.input.h, self.input.w)
    }

    /// Output size `(⌊(H + 2p − k)/s⌋ + 1, ⌊(W + 2p − k)/s⌋ + 1)`.
    ///
    /// # Errors
    /// [`LayerError::ZeroSize`], [`LayerError::PaddingTooLarge`] (padding over half the kernel:
    /// a window could hold only padding), or [`LayerError::EmptyOutput`].
    pub fn output_size(&self) -> Result<(usize, usize), LayerError> {
        self.output_size_for(NAME)
    }

    /// [`MaxPool2dConfig::output_size`] with errors naming `layer` (the pooling layers share
    /// this geometry).
    pub(crate) fn output_size_for(
        &self,
        layer: &'static str,
    ) -> Result<(usize, usize), LayerError> {
        check_nonzero(
            layer,
            &[
                ("channels", self.channels),
                ("input height", self.input.h),
                ("input width", self.input.w),
                ("kernel height", self.kernel.h),
                ("kernel width", self.kernel.w),
                ("stride height", self.stride.h),
                ("stride width", self.stride.w),
            ],
        )?;
        for (axis, padding, kernel) in [
            ("height", self.padding.h, self.kernel.h),
            ("width", self.padding.w, self.kernel.w),
        ] {
            if padding > kernel / 2 {
                return Err(LayerError::PaddingTooLarge {
                    layer,
                    axis,
                    padding,
                    kernel,
                });
            }
        }
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        checked_product(layer, &[self.channels, self.input.h, self.input.w])?;
        Ok((
            output_size(layer, "height", self.input.h, k.h, s.h, p.h, 1)?,
            output_size(layer, "width", self.input.w, k.w, s.w, p.w, 1)?,
        ))
    }

    /// Output shape `C × H_out × W_out`.
    ///
    /// # Errors
    /// As [`MaxPool2dConfig::output_size`].
    pub fn output_shape(&self) -> Result<Shape, LayerError> {
        let (oh, ow) = self.output_size()?;
        Ok(Shape::image(self.channels, oh, ow))
    }
}

/// Max pooling over each channel.
///
/// ```text
/// y[c, i, j] = max_{u < kₕ, v < k_w} x[c, i·sₕ + u − pₕ, j·s_w + v − p_w]    (padding = −∞)
/// dL/dx[c, a, b] = Σ over windows whose arg-max is (a, b) of dL/dy[c, i, j]
/// ```
///
/// The backward pass routes each output's gradient to the input that won its window.
/// **Ties** go to the *first* maximum in scan order (row by row, left to right) — the rule
/// PyTorch follows — so the gradient is never split or duplicated. A NaN in a window wins it
/// (the output is NaN, as in PyTorch).
#[derive(Clone, Debug)]
pub struct MaxPool2d<T: Scalar> {
    config: MaxPool2dConfig,
    out: (usize, usize),
    /// Per example and output, the index (within the example) of the winning input.
    argmax: Option<(Vec<u32>, usize)>,
    _scalar: std::marker::PhantomData<T>,
}

impl<T: Scalar> MaxPool2d<T> {
    /// A pooling layer.
    ///
    /// # Errors
    /// As [`MaxPool2dConfig::output_size`]; also [`LayerError::TooLarge`] if one example has
    /// more values than 32-bit indices address.
    pub fn new(config: MaxPool2dConfig) -> Result<Self, LayerError> {
        let out = config.output_size()?;
        let values = config.input_shape().len();
        if u32::try_from(values).is_err() {
            return Err(LayerError::TooLarge {
                layer: NAME,
                values,
                limit: u32::MAX as usize,
            });
        }
        Ok(Self {
            config,
            out,
            argmax: None,
            _scalar: std::marker::PhantomData,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MaxPool2dConfig {
        &self.config
    }

    /// The winners of the last `forward`: for each example in turn and each output (in
    /// `C × H_out × W_out` order), the index within the example's input of the value that won
    /// the window (the first maximum in scan order). `None` before any `forward`.
    ///
    /// ```
    /// use retroprop_layers::{Layer, MaxPool2d, MaxPool2dConfig, nalgebra::DMatrix};
    ///
    /// let mut pool = MaxPool2d::<f64>::new(MaxPool2dConfig::new((1, 2, 2), 2)).unwrap();
    /// pool.forward(&DMatrix::from_column_slice(4, 1, &[1.0, 7.0, 3.0, 7.0])).unwrap();
    /// assert_eq!(pool.argmax(), Some(&[1u32][..])); // the first 7 wins
    /// ```
    pub fn argmax(&self) -> Option<&[u32]> {
        self.argmax.as_ref().map(|(arg, _)| arg.as_slice())
    }

    fn in_len(&self) -> usize {
        self.config.input_shape().len()
    }

    fn out_len(&self) -> usize {
        self.config.channels * self.out.0 * self.out.1
    }

    /// For each output position along an axis, the input range its window covers inside the
    /// image (padding excluded): `lo..hi`, never empty because padding ≤ kernel/2.
    fn window_ranges(
        out: usize,
        input: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
    ) -> Vec<(usize, usize)> {
        (0..out)
            .map(|o| {
                let start = o * stride;
                let lo = start.saturating_sub(pad);
                let hi = (start + kernel).saturating_sub(pad).min(input);
                (lo, hi)
            })
            .collect()
    }

    /// Pools one example into `y`, writing the winners' indices into `arg`.
    ///
    /// Interior output columns (whose windows lie inside the image horizontally) are updated
    /// lane by lane, one window tap at a time across the whole output row, so consecutive
    /// comparisons are independent; the edge columns take the plain window scan. Both visit
    /// taps in scan order and keep the first maximum.
    #[inline(always)]
    fn pool_one(&self, x: &[T], y: &mut [T], arg: &mut [u32]) {
        let c = &self.config;
        if c.kernel == Hw::from(2) && c.stride == Hw::from(2) && c.padding == Hw::from(0) {
            self.pool_2x2(x, y, arg);
            return;
        }
        let (h, w) = (c.input.h, c.input.w);
        let (oh, ow) = self.out;
        let (kw, sw, pw) = (c.kernel.w, c.stride.w, c.padding.w);
        let rows = Self::window_ranges(oh, h, c.kernel.h, c.stride.h, c.padding.h);
        let cols = Self::window_ranges(ow, w, kw, sw, pw);
        // interior columns: j·s − p ≥ 0 and j·s − p + k ≤ W
        let j0 = pw.div_ceil(sw).min(ow);
        let j1 = if w + pw >= kw {
            ((w + pw - kw) / sw + 1).min(ow)
        } else {
            0
        }
        .max(j0);
        // `!(value <= best)`: strictly greater (the first maximum keeps ties) or NaN;
        // `best == best`: a NaN, once chosen, stays.
        // (the negated comparison is the point: it is true for NaN)
        #[allow(clippy::eq_op, clippy::neg_cmp_op_on_partial_ord)]
        let take = |value: T, best: T| !(value <= best) & (best == best);
        let wr = w.div_ceil(sw);
        let mut phased = vec![T::zero(); if sw == 1 { 0 } else { sw * wr }];
        for (ch, channel) in x.chunks_exact(h * w).enumerate() {
            let base = ch * h * w;
            let out_channel = ch * oh * ow;
            for (i, &(ylo, yhi)) in rows.iter().enumerate() {
                let start = out_channel + i * ow;
                let (y_row, a_row) = (&mut y[start..start + ow], &mut arg[start..start + ow]);
                // edge columns: scan each window
                for j in (0..j0).chain(j1..ow) {
                    let (xlo, xhi) = cols[j];
                    let mut best_at = ylo * w + xlo;
                    let mut best = channel[best_at];
                    for iy in ylo..yhi {
                        for ix in xlo..xhi {
                            let value = channel[iy * w + ix];
                            let t = take(value, best);
                            best = if t { value } else { best };
                            best_at = if t { iy * w + ix } else { best_at };
                        }
                    }
                    y_row[j] = best;
                    a_row[j] = (base + best_at) as u32;
                }
                // interior columns: tap by tap across the row, reading each input row split
                // into column phases (phase r holds columns r, r + s, …) so every tap is a
                // contiguous slice and the loop vectorises
                if j0 == j1 {
                    continue;
                }
                for iy in ylo..yhi {
                    let row = &channel[iy * w..(iy + 1) * w];
                    let phases: &[T] = if sw == 1 {
                        row
                    } else {
                        for (r, dst) in phased.chunks_exact_mut(wr).enumerate() {
                            for (d, v) in dst.iter_mut().zip(row.iter().skip(r).step_by(sw)) {
                                *d = *v;
                            }
                        }
                        &phased
                    };
                    for v in 0..kw {
                        // ix = j·s + v − p = s·(j + q) + r for j ≥ j0
                        let offset = v + j0 * sw - pw;
                        let (r, q) = (offset % sw, offset / sw);
                        let taps = &phases[r * wr + q..r * wr + q + (j1 - j0)];
                        let first_at = (base + iy * w + offset) as u32;
                        let lanes = y_row[j0..j1].iter_mut().zip(&mut a_row[j0..j1]).zip(taps);
                        if iy == ylo && v == 0 {
                            for (k, ((yv, av), &value)) in lanes.enumerate() {
                                *yv = value;
                                *av = first_at + (k * sw) as u32;
                            }
                            continue;
                        }
                        for (k, ((yv, av), &value)) in lanes.enumerate() {
                            let t = take(value, *yv);
                            *yv = if t { value } else { *yv };
                            *av = if t { first_at + (k * sw) as u32 } else { *av };
                        }
                    }
                }
            }
        }
    }

    /// The common case, 2×2 windows without overlap or padding: four loads per output, the
    /// same scan order and tie rule as the general path.
    #[inline(always)]
    fn pool_2x2(&self, x: &[T], y: &mut [T], arg: &mut [u32]) {
        let (h, w) = (self.config.input.h, self.config.input.w);
        let (oh, ow) = self.out;
        // `!(v <= best)`: strictly greater or NaN; `best == best`: a NaN stays
        #[allow(clippy::eq_op, clippy::neg_cmp_op_on_partial_ord)]
        let take = |v: T, best: T| !(v <= best) & (best == best);
        let rows = y.chunks_exact_mut(ow).zip(arg.chunks_exact_mut(ow));
        for (row, (ys, args)) in rows.enumerate() {
            let (ch, i) = (row / oh, row % oh);
            let top = ch * h * w + 2 * i * w;
            let (r0, r1) = (&x[top..top + w], &x[top + w..top + 2 * w]);
            let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
            for (j, ((yv, av), (p0, p1))) in
                ys.iter_mut().zip(args.iter_mut()).zip(pairs).enumerate()
            {
                let (mut best, mut at) = (p0[0], 0);
                if take(p0[1], best) {
                    (best, at) = (p0[1], 1);
                }
                if take(p1[0], best) {
                    (best, at) = (p1[0], w);
                }
                if take(p1[1], best) {
                    (best, at) = (p1[1], w + 1);
                }
                *yv = best;
                *av = (top + 2 * j + at) as u32;
            }
        }
    }

    /// Forward for a batch: outputs and arg-max indices.
    fn pool(&self, x: &DMatrix<T>) -> Result<(DMatrix<T>, Vec<u32>), LayerError> {
        check_rows(NAME, "input", x, self.in_len())?;
        let (in_len, out_len) = (self.in_len(), self.out_len());
        let n = x.ncols();
        let mut y = DMatrix::zeros(out_len, n);
        let mut arg = vec![0u32; out_len * n];
        if n > 0 {
            y.as_mut_slice()
                .par_chunks_mut(out_len)
                .zip(arg.par_chunks_mut(out_len))
                .zip(x.as_slice().par_chunks(in_len))
                .for_each(|((yi, ai), xi)| {
                    vectorized(
                        #[inline(always)]
                        || self.pool_one(xi, yi, ai),
                    )
                });
        }
        Ok((y, arg))
    }
}

impl<T: Scalar> Layer<T> for MaxPool2d<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::new(MaxPool2dConfig::KIND, &self.config)
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        if input != self.config.input_shape() {
            return Err(LayerError::InputShape {
                layer: NAME,
                expected: self.config.input_shape(),
                got: input,
            });
        }
        self.config.output_shape()
    }

    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let (y, arg) = self.pool(x)?;
        self.argmax = Some((arg, x.ncols()));
        Ok(y)
    }

    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let (arg, n) = self
            .argmax
            .as_ref()
            .ok_or(LayerError::NoForwardCache { layer: NAME })?;
        let (in_len, out_len) = (self.in_len(), self.out_len());
        check_grad(NAME, grad_y, out_len, *n)?;
        let mut grad_x = DMatrix::zeros(in_len, *n);
        if *n > 0 {
            grad_x
                .as_mut_slice()
                .par_chunks_mut(in_len)
                .zip(grad_y.as_slice().par_chunks(out_len))
                .zip(arg.par_chunks(out_len))
                .for_each(|((dx, g), a)| {
                    for (&g, &at) in g.iter().zip(a) {
                        dx[at as usize] += g;
                    }
                });
        }
        Ok(grad_x)
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        Ok(self.pool(x)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_and_routes_the_gradient_to_the_arg_max() {
        // one channel 4×4: windows 2×2
        #[rustfmt::skip]
        let x = DMatrix::from_column_slice(16, 1, &[
            1.0, 5.0,  2.0, 0.0,
            3.0, 4.0,  8.0, 7.0,
            0.0, 0.0, -1.0, -2.0,
            9.0, 0.0, -3.0, -4.0,
        ]);
        let mut pool = MaxPool2d::<f64>::new(MaxPool2dConfig::new((1, 4, 4), 2)).unwrap();
        let y = pool.forward(&x).unwrap();
        assert_eq!(y.as_slice(), &[5.0, 8.0, 9.0, -1.0]);
        let dx = pool
            .backward(&DMatrix::from_column_slice(4, 1, &[1.0, 2.0, 3.0, 4.0]))
            .unwrap();
        let mut want = [0.0; 16];
        want[1] = 1.0;
        want[6] = 2.0;
        want[12] = 3.0;
        want[10] = 4.0;
        assert_eq!(dx.as_slice(), &want);
    }

    #[test]
    fn ties_go_to_the_first_maximum_in_scan_order() {
        let x = DMatrix::from_column_slice(4, 1, &[2.0, 2.0, 2.0, 2.0]);
        let mut pool = MaxPool2d::<f64>::new(MaxPool2dConfig::new((1, 2, 2), 2)).unwrap();
        pool.forward(&x).unwrap();
        let dx = pool.backward(&DMatrix::from_element(1, 1, 1.0)).unwrap();
        assert_eq!(dx.as_slice(), &[1.0, 0.0, 0.0, 0.0]);
        // a tie between the second and fourth entries: the second wins
        let x = DMatrix::from_column_slice(4, 1, &[0.0, 3.0, 1.0, 3.0]);
        pool.forward(&x).unwrap();
        let dx = pool.backward(&DMatrix::from_element(1, 1, 1.0)).unwrap();
        assert_eq!(dx.as_slice(), &[0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn overlapping_windows_accumulate() {
        // 1×3 input, kernel (1, 2), stride 1: the middle value wins both windows
        let x = DMatrix::from_column_slice(3, 1, &[0.0, 5.0, 1.0]);
        let mut pool =
            MaxPool2d::<f64>::new(MaxPool2dConfig::new((1, 1, 3), (1, 2)).stride(1)).unwrap();
        assert_eq!(pool.forward(&x).unwrap().as_slice(), &[5.0, 5.0]);
        let dx = pool
            .backward(&DMatrix::from_column_slice(2, 1, &[1.0, 10.0]))
            .unwrap();
        assert_eq!(dx.as_slice(), &[0.0, 11.0, 0.0]);
    }

    #[test]
    fn nan_wins_its_window() {
        let x = DMatrix::from_column_slice(4, 1, &[1.0, f64::NAN, 7.0, 2.0]);
        let pool = MaxPool2d::<f64>::new(MaxPool2dConfig::new((1, 2, 2), 2)).unwrap();
        assert!(pool.infer(&x).unwrap()[0].is_nan());
    }

    #[test]
    fn padding_is_never_the_maximum() {
        let x = DMatrix::from_column_slice(4, 1, &[-1.0, -2.0, -3.0, -4.0]);
        let pool =
            MaxPool2d::<f64>::new(MaxPool2dConfig::new((1, 2, 2), 2).stride(1).padding(1)).unwrap();
        // 3×3 outputs; the corner windows see one real value each
        let y = pool.infer(&x).unwrap();
        assert_eq!(
            y.as_slice(),
            &[-1.0, -1.0, -2.0, -1.0, -1.0, -2.0, -3.0, -3.0, -4.0]
        );
        assert_eq!(
            MaxPool2dConfig::new((1, 2, 2), 2).padding(2).output_size(),
            Err(LayerError::PaddingTooLarge {
                layer: "MaxPool2d",
                axis: "height",
                padding: 2,
                kernel: 2
            })
        );
    }
}
