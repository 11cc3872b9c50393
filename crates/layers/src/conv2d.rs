//! 2-D convolution (question 3): im2col + GEMM, parallel across the batch.

use nalgebra::DMatrix;
use rayon::prelude::*;
use retroprop_activations::Scalar;
use serde::{Deserialize, Serialize};

use crate::layer::{check_grad, check_rows};
use crate::linalg::{MatMut, MatRef, gemm};
use crate::{Init, Layer, LayerError, LayerSpec, Param, ParamKind, Shape};

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
    let span = dilation * (kernel - 1) + 1;
    let padded = input + 2 * padding;
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

/// Everything that defines a [`Conv2d`] except its weights.
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
        let checks = [
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
        ];
        for (what, v) in checks {
            if v == 0 {
                return Err(LayerError::ZeroSize { layer: NAME, what });
            }
        }
        let (k, s, p, d) = (self.kernel, self.stride, self.padding, self.dilation);
        Ok((
            output_size(NAME, "height", self.input.h, k.h, s.h, p.h, d.h)?,
            output_size(NAME, "width", self.input.w, k.w, s.w, p.w, d.w)?,
        ))
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

const NAME: &str = "Conv2d";

/// Sizes derived once from a valid configuration.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    dh: usize,
    dw: usize,
    ow: usize,
    /// Rows of the im2col matrix: `C_in · kh · kw`.
    k: usize,
    /// Output positions: `H_out · W_out`.
    p: usize,
}

impl Geometry {
    fn new(c: &Conv2dConfig) -> Result<Self, LayerError> {
        let (oh, ow) = c.output_size()?;
        Ok(Self {
            c: c.in_channels,
            h: c.input.h,
            w: c.input.w,
            kh: c.kernel.h,
            kw: c.kernel.w,
            sh: c.stride.h,
            sw: c.stride.w,
            ph: c.padding.h,
            pw: c.padding.w,
            dh: c.dilation.h,
            dw: c.dilation.w,
            ow,
            k: c.in_channels * c.kernel.h * c.kernel.w,
            p: oh * ow,
        })
    }

    fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// For kernel column `kx`, the output columns `ox` whose input column
    /// `ix = ox·sw + kx·dw − pw` lies inside the image: `lo..hi`.
    fn valid_ox(&self, kx: usize) -> (usize, usize) {
        let offset = kx * self.dw;
        let lo = if self.pw > offset {
            (self.pw - offset).div_ceil(self.sw)
        } else {
            0
        };
        let hi = (self.w + self.pw)
            .saturating_sub(offset)
            .div_ceil(self.sw)
            .min(self.ow);
        (lo.min(hi), hi)
    }

    /// Input row for output row `oy` and kernel row `ky`, if inside the image.
    fn iy(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.sh + ky * self.dh)
            .checked_sub(self.ph)
            .filter(|&iy| iy < self.h)
    }

    /// im2col: `cols` (`K × P`, row-major) gets, in row `(c·kh + ky)·kw + kx` and column
    /// `oy·W_out + ox`, the input value under kernel tap `(c, ky, kx)` at output `(oy, ox)`, or
    /// 0 in the padding.
    fn im2col<T: Scalar>(&self, x: &[T], cols: &mut [T]) {
        let mut rows = cols.chunks_exact_mut(self.p);
        for xc in x.chunks_exact(self.h * self.w) {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let dst = rows.next().expect("K rows");
                    let (lo, hi) = self.valid_ox(kx);
                    for (oy, drow) in dst.chunks_exact_mut(self.ow).enumerate() {
                        let Some(iy) = self.iy(oy, ky) else {
                            drow.fill(T::zero());
                            continue;
                        };
                        let src = &xc[iy * self.w..(iy + 1) * self.w];
                        drow[..lo].fill(T::zero());
                        drow[hi..].fill(T::zero());
                        if lo == hi {
                            continue;
                        }
                        let start = lo * self.sw + kx * self.dw - self.pw;
                        if self.sw == 1 {
                            drow[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                        } else {
                            for (d, s) in drow[lo..hi]
                                .iter_mut()
                                .zip(src[start..].iter().step_by(self.sw))
                            {
                                *d = *s;
                            }
                        }
                    }
                }
            }
        }
    }

    /// col2im, the adjoint of [`Geometry::im2col`]: adds each entry of `cols` back onto the
    /// input value it was copied from (taps outside the image are dropped).
    fn col2im<T: Scalar>(&self, cols: &[T], x: &mut [T]) {
        let mut rows = cols.chunks_exact(self.p);
        for xc in x.chunks_exact_mut(self.h * self.w) {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let src = rows.next().expect("K rows");
                    let (lo, hi) = self.valid_ox(kx);
                    for (oy, srow) in src.chunks_exact(self.ow).enumerate() {
                        let Some(iy) = self.iy(oy, ky) else {
                            continue;
                        };
                        if lo == hi {
                            continue;
                        }
                        let dst = &mut xc[iy * self.w..(iy + 1) * self.w];
                        let start = lo * self.sw + kx * self.dw - self.pw;
                        for (d, s) in dst[start..].iter_mut().step_by(self.sw).zip(&srow[lo..hi]) {
                            *d += *s;
                        }
                    }
                }
            }
        }
    }
}

/// Splits `n` examples into at most one contiguous chunk per rayon thread: `(chunks, size)`.
/// The split depends only on `n` and the thread count, so results are reproducible.
fn split(n: usize) -> (usize, usize) {
    let threads = rayon::current_num_threads().max(1);
    let size = n.div_ceil(threads).max(1);
    (n.div_ceil(size), size)
}

/// 2-D convolution layer (question 3), in the deep-learning convention: cross-correlation.
///
/// ```text
/// y[o, i, j] = b[o] + Σ_{c, u, v} W[o, c, u, v] · x[c, i·sₕ + u·dₕ − pₕ, j·s_w + v·d_w − p_w]
/// ```
///
/// with `x` zero outside the image. This is what PyTorch's `Conv2d` computes. A *true*
/// convolution flips the kernel, `Σ W[o, c, kh−1−u, kw−1−v] · x[…]`; the two differ only by
/// that relabelling of the learned weights (see [`crate::convolve1d`] for the flipped 1-D
/// operation of question 3c).
///
/// ```text
/// W: C_out × (C_in·kh·kw)  (row o is kernel o, taps in (c, u, v) order)    b: C_out
/// per example:  cols = im2col(x): (C_in·kh·kw) × (H_out·W_out)
///               y = W cols + b 1ᵀ               (one GEMM; C_out × H_out·W_out = C×H×W order)
/// backward:     dL/dW += δ colsᵀ,   dL/db += δ 1,   dL/dx = col2im(Wᵀ δ)
/// ```
///
/// Examples are spread over rayon's threads in fixed contiguous chunks, and per-chunk weight
/// gradients are summed in chunk order, so results are reproducible for a given thread count.
///
/// ```
/// use nalgebra::DMatrix;
/// use retroprop_layers::{Conv2d, Conv2dConfig, Init, Layer, LayerError, Shape};
///
/// # fn main() -> Result<(), LayerError> {
/// let mut conv = Conv2d::<f32>::new(
///     Conv2dConfig::new((3, 128, 128), 32, 8).stride(2).padding(3),
///     Init::HeUniform { seed: 1 },
/// )?;
/// assert_eq!(conv.output_shape(Shape::image(3, 128, 128))?, Shape::image(32, 64, 64));
/// let y = conv.forward(&DMatrix::zeros(3 * 128 * 128, 2))?;  // two images, one per column
/// assert_eq!(y.shape(), (32 * 64 * 64, 2));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Conv2d<T: Scalar> {
    config: Conv2dConfig,
    geo: Geometry,
    weight: Param<T>,
    bias: Option<Param<T>>,
    input: Option<DMatrix<T>>,
    /// One im2col buffer per chunk, reused across calls.
    scratch: Vec<Vec<T>>,
}

impl<T: Scalar> Conv2d<T> {
    /// A convolution with weights drawn by `init` (`fan_in = C_in·kh·kw`,
    /// `fan_out = C_out·kh·kw`).
    ///
    /// # Errors
    /// [`LayerError::ZeroSize`] or [`LayerError::EmptyOutput`] for an invalid configuration.
    pub fn new(config: Conv2dConfig, init: Init) -> Result<Self, LayerError> {
        let geo = Geometry::new(&config)?;
        let taps = config.kernel.h * config.kernel.w;
        let (w, b) = init.draw(
            config.out_channels,
            geo.k,
            geo.k,
            config.out_channels * taps,
        );
        Ok(Self {
            config,
            geo,
            weight: Param::new("weight", ParamKind::Weight, w),
            bias: match config.bias {
                Bias::Learned => Some(Param::new("bias", ParamKind::Bias, b)),
                Bias::Without => None,
            },
            input: None,
            scratch: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }

    /// The kernels, `C_out × (C_in·kh·kw)`.
    pub fn weight(&self) -> &Param<T> {
        &self.weight
    }

    /// The kernels, mutable (shape fixed).
    pub fn weight_mut(&mut self) -> &mut Param<T> {
        &mut self.weight
    }

    /// The bias, `C_out × 1`, if the layer has one.
    pub fn bias(&self) -> Option<&Param<T>> {
        self.bias.as_ref()
    }

    /// The bias, mutable (shape fixed).
    pub fn bias_mut(&mut self) -> Option<&mut Param<T>> {
        self.bias.as_mut()
    }

    fn out_len(&self) -> usize {
        self.config.out_channels * self.geo.p
    }

    /// Forward pass into a new matrix, using `scratch` (grown as needed) for im2col.
    fn convolve(
        &self,
        x: &DMatrix<T>,
        scratch: &mut Vec<Vec<T>>,
    ) -> Result<DMatrix<T>, LayerError> {
        let geo = self.geo;
        check_rows(NAME, "input", x, geo.in_len())?;
        let n = x.ncols();
        let (c_out, out_len) = (self.config.out_channels, self.out_len());
        let mut y = DMatrix::zeros(out_len, n);
        if n == 0 {
            return Ok(y);
        }
        let (chunks, size) = split(n);
        scratch.resize_with(chunks.max(scratch.len()), Vec::new);
        let w = self.weight.value();
        let bias = self.bias.as_ref().map(|b| b.value().as_slice());
        y.as_mut_slice()
            .par_chunks_mut(size * out_len)
            .zip(x.as_slice().par_chunks(size * geo.in_len()))
            .zip(scratch.par_iter_mut())
            .for_each(|((ys, xs), cols)| {
                cols.resize(geo.k * geo.p, T::zero());
                for (yi, xi) in ys
                    .chunks_exact_mut(out_len)
                    .zip(xs.chunks_exact(geo.in_len()))
                {
                    geo.im2col(xi, cols);
                    if let Some(b) = bias {
                        for (row, &bo) in yi.chunks_exact_mut(geo.p).zip(b) {
                            row.fill(bo);
                        }
                    }
                    let beta = if bias.is_some() { T::one() } else { T::zero() };
                    // y (C_out × P, row-major) = W (C_out × K) · cols (K × P, row-major)
                    gemm(
                        T::one(),
                        MatRef::of(w),
                        MatRef::new(cols, geo.k, geo.p, geo.p, 1),
                        beta,
                        MatMut::new(yi, c_out, geo.p, geo.p, 1),
                    );
                }
            });
        Ok(y)
    }

    /// Adds `dL/dW`, `dL/db` for the cached input; with `grad_x`, also writes `dL/dx` there.
    fn backward_into(
        &mut self,
        grad_y: &DMatrix<T>,
        grad_x: Option<&mut DMatrix<T>>,
    ) -> Result<(), LayerError> {
        let geo = self.geo;
        let (c_out, out_len) = (self.config.out_channels, self.out_len());
        let x = self
            .input
            .as_ref()
            .ok_or(LayerError::NoForwardCache { layer: NAME })?;
        check_grad(NAME, grad_y, out_len, x.ncols())?;
        let n = x.ncols();
        if n == 0 {
            return Ok(());
        }
        let (chunks, size) = split(n);
        self.scratch
            .resize_with(chunks.max(self.scratch.len()), Vec::new);
        let w = self.weight.value();
        let has_bias = self.bias.is_some();
        let in_len = geo.in_len();

        // One job per chunk: its examples' dL/dx (disjoint slices) and its partial dW, db.
        let job = |chunk: usize, cols: &mut Vec<T>, mut dx: Option<&mut [T]>| {
            cols.resize(geo.k * geo.p, T::zero());
            let mut dcols = if dx.is_some() {
                vec![T::zero(); geo.k * geo.p]
            } else {
                Vec::new()
            };
            let mut dw = DMatrix::zeros(c_out, geo.k);
            let mut db = vec![T::zero(); if has_bias { c_out } else { 0 }];
            let range = chunk * size..((chunk + 1) * size).min(n);
            for (local, i) in range.enumerate() {
                let xi = &x.as_slice()[i * in_len..(i + 1) * in_len];
                let gi = &grad_y.as_slice()[i * out_len..(i + 1) * out_len];
                let g = MatRef::new(gi, c_out, geo.p, geo.p, 1);
                geo.im2col(xi, cols);
                // dW += δ (C_out × P) · colsᵀ (P × K)
                gemm(
                    T::one(),
                    g,
                    MatRef::new(cols, geo.p, geo.k, 1, geo.p),
                    T::one(),
                    MatMut::of(&mut dw),
                );
                for (acc, row) in db.iter_mut().zip(gi.chunks_exact(geo.p)) {
                    *acc += row.iter().fold(T::zero(), |s, &v| s + v);
                }
                if let Some(dx) = dx.as_deref_mut() {
                    // dcols (K × P, row-major) = Wᵀ (K × C_out) · δ (C_out × P)
                    gemm(
                        T::one(),
                        MatRef::transposed(w),
                        g,
                        T::zero(),
                        MatMut::new(&mut dcols, geo.k, geo.p, geo.p, 1),
                    );
                    geo.col2im(&dcols, &mut dx[local * in_len..(local + 1) * in_len]);
                }
            }
            (dw, db)
        };

        let partials: Vec<(DMatrix<T>, Vec<T>)> = match grad_x {
            Some(gx) => gx
                .as_mut_slice()
                .par_chunks_mut(size * in_len)
                .zip(self.scratch.par_iter_mut())
                .enumerate()
                .map(|(chunk, (dx, cols))| job(chunk, cols, Some(dx)))
                .collect(),
            None => self
                .scratch
                .par_iter_mut()
                .take(chunks)
                .enumerate()
                .map(|(chunk, cols)| job(chunk, cols, None))
                .collect(),
        };
        // Sum the partials in chunk order: reproducible.
        for (dw, db) in &partials {
            *self.weight.grad_matrix_mut() += dw;
            if let Some(b) = self.bias.as_mut() {
                for (acc, &v) in b.grad_matrix_mut().iter_mut().zip(db) {
                    *acc += v;
                }
            }
        }
        Ok(())
    }
}

impl<T: Scalar> Layer<T> for Conv2d<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::Conv2d(self.config)
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
        let mut scratch = std::mem::take(&mut self.scratch);
        let y = self.convolve(x, &mut scratch);
        self.scratch = scratch;
        let y = y?;
        self.input = Some(x.clone());
        Ok(y)
    }

    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let n = self.input.as_ref().map_or(0, DMatrix::ncols);
        let mut grad_x = DMatrix::zeros(self.geo.in_len(), n);
        self.backward_into(grad_y, Some(&mut grad_x))?;
        Ok(grad_x)
    }

    fn backward_params(&mut self, grad_y: &DMatrix<T>) -> Result<(), LayerError> {
        self.backward_into(grad_y, None)
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        self.convolve(x, &mut Vec::new())
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("weight", &self.weight);
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        f("weight", &mut self.weight);
        if let Some(b) = &mut self.bias {
            f("bias", b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, looped: the reference the GEMM path must match.
    fn direct(cfg: &Conv2dConfig, w: &DMatrix<f64>, b: &[f64], x: &[f64]) -> Vec<f64> {
        let (oh, ow) = cfg.output_size().unwrap();
        let (c_in, h, wd) = (cfg.in_channels, cfg.input.h, cfg.input.w);
        let (k, s, p, d) = (cfg.kernel, cfg.stride, cfg.padding, cfg.dilation);
        let mut y = vec![0.0; cfg.out_channels * oh * ow];
        for o in 0..cfg.out_channels {
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = b.get(o).copied().unwrap_or(0.0);
                    for c in 0..c_in {
                        for u in 0..k.h {
                            for v in 0..k.w {
                                let iy = (i * s.h + u * d.h) as isize - p.h as isize;
                                let ix = (j * s.w + v * d.w) as isize - p.w as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let tap = (c * k.h + u) * k.w + v;
                                acc += w[(o, tap)] * x[(c * h + iy as usize) * wd + ix as usize];
                            }
                        }
                    }
                    y[(o * oh + i) * ow + j] = acc;
                }
            }
        }
        y
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
        ];
        for cfg in configs {
            let mut conv = Conv2d::<f64>::new(cfg, Init::PyTorchDefault { seed: 3 }).unwrap();
            let mut rng = retroprop_activations::rng::Rng::new(5);
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

        #[test]
        fn gemm_path_matches_the_definition(
            ci in 1usize..4, co in 1usize..4, kh in 1usize..5, kw in 1usize..5,
            sh in 1usize..4, sw in 1usize..4, ph in 0usize..3, pw in 0usize..3,
            dh in 1usize..3, dw in 1usize..3, eh in 0usize..6, ew in 0usize..6,
            n in 1usize..4, seed in 0u64..1000,
        ) {
            let h = (dh * (kh - 1) + 1).saturating_sub(2 * ph).max(1) + eh;
            let w = (dw * (kw - 1) + 1).saturating_sub(2 * pw).max(1) + ew;
            let cfg = Conv2dConfig::new((ci, h, w), co, (kh, kw))
                .stride((sh, sw)).padding((ph, pw)).dilation((dh, dw));
            let conv = Conv2d::<f64>::new(cfg, Init::PyTorchDefault { seed }).unwrap();
            let mut rng = retroprop_activations::rng::Rng::new(seed);
            let x = DMatrix::from_fn(cfg.input_shape().len(), n, |_, _| rng.uniform(-1.0, 1.0));
            let y = conv.infer(&x).unwrap();
            let b = conv.bias().unwrap().value().as_slice().to_vec();
            for col in 0..n {
                let want = direct(&cfg, conv.weight().value(), &b, x.column(col).as_slice());
                for (a, w) in y.column(col).iter().zip(&want) {
                    proptest::prop_assert!((a - w).abs() < 1e-12, "{:?}: {} vs {}", cfg, a, w);
                }
            }
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
}
