//! 2-D convolution (question 3): im2col + GEMM, parallel across the batch.

use nalgebra::DMatrix;
use rayon::prelude::*;
use retroprop_core::Scalar;
use retroprop_core::simd::vectorized;

use crate::layer::{check_grad, check_rows};
use crate::linalg::{add_assign, sum};
use crate::{Init, Layer, LayerConfig, LayerError, LayerSpec, Param, ParamKind, Shape};
use retroprop_core::gemm::{MatMut, MatRef, gemm};

mod config;
mod geometry;

pub use config::{Bias, Conv2dConfig, Hw, output_size};
use geometry::{Geometry, Scratch, reduction_split, split};

const NAME: &str = "Conv2d";

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
    /// Work buffers, one set per chunk of the batch, reused across calls.
    scratch: Vec<Scratch<T>>,
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

    /// A convolution with the given kernels (and bias, if the configuration has one).
    ///
    /// `weight` is `C_out × (C_in·kh·kw)`: row `o` is kernel `o`, its taps in `(c, u, v)` order
    /// — PyTorch's `[C_out, C_in, kH, kW]` weight with each output channel's block flattened
    /// row-major. `bias` is `C_out × 1`, or `None` for a configuration `without_bias()`.
    ///
    /// ```
    /// use retroprop_layers::{Conv2d, Conv2dConfig, Layer, nalgebra::DMatrix};
    ///
    /// // one 2×2 kernel that sums its window, on a 1×2×2 image, bias 0.5
    /// let cfg = Conv2dConfig::new((1, 2, 2), 1, 2);
    /// let conv = Conv2d::from_params(
    ///     cfg,
    ///     DMatrix::from_element(1, 4, 1.0),
    ///     Some(DMatrix::from_element(1, 1, 0.5)),
    /// )
    /// .unwrap();
    /// let y = conv.infer(&DMatrix::from_column_slice(4, 1, &[1.0, 2.0, 3.0, 4.0])).unwrap();
    /// assert_eq!(y[0], 10.5);
    /// ```
    ///
    /// # Errors
    /// As [`Conv2d::new`] for the configuration; [`LayerError::ParamShape`] if `weight` or
    /// `bias` has another shape, or if a bias is given (or missing) against the configuration.
    pub fn from_params(
        config: Conv2dConfig,
        weight: DMatrix<T>,
        bias: Option<DMatrix<T>>,
    ) -> Result<Self, LayerError> {
        let geo = Geometry::new(&config)?;
        let c_out = config.out_channels;
        let shape_error = |param, rows, cols, got: (usize, usize)| LayerError::ParamShape {
            layer: NAME,
            param,
            expected_rows: rows,
            expected_cols: cols,
            got_rows: got.0,
            got_cols: got.1,
        };
        if weight.shape() != (c_out, geo.k) {
            return Err(shape_error("weight", c_out, geo.k, weight.shape()));
        }
        let bias = match (config.bias, bias) {
            (Bias::Learned, Some(b)) if b.shape() == (c_out, 1) => {
                Some(Param::new("bias", ParamKind::Bias, b))
            }
            (Bias::Learned, Some(b)) => return Err(shape_error("bias", c_out, 1, b.shape())),
            (Bias::Learned, None) => return Err(shape_error("bias", c_out, 1, (0, 0))),
            (Bias::Without, None) => None,
            (Bias::Without, Some(b)) => return Err(shape_error("bias", 0, 0, b.shape())),
        };
        Ok(Self {
            config,
            geo,
            weight: Param::new("weight", ParamKind::Weight, weight),
            bias,
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
        scratch: &mut Vec<Scratch<T>>,
    ) -> Result<DMatrix<T>, LayerError> {
        let geo = self.geo;
        check_rows(NAME, "input", x, geo.in_len())?;
        let n = x.ncols();
        let out_len = self.out_len();
        let bias = self.bias.as_ref().map(|b| b.value().as_slice());
        // with a bias, y starts as b 1ᵀ written once (zeroing it first would be a second pass)
        let mut y = match bias {
            Some(b) => {
                let mut data = Vec::with_capacity(out_len * n);
                for _ in 0..n {
                    for &bo in b {
                        data.extend(std::iter::repeat_n(bo, geo.p));
                    }
                }
                DMatrix::from_vec(out_len, n, data)
            }
            None => DMatrix::zeros(out_len, n),
        };
        if n == 0 {
            return Ok(y);
        }
        let (chunks, size) = split(n);
        scratch.resize_with(chunks.max(scratch.len()), Scratch::default);
        let w = self.weight.value();
        y.as_mut_slice()
            .par_chunks_mut(size * out_len)
            .zip(x.as_slice().par_chunks(size * geo.in_len()))
            .zip(scratch.par_iter_mut())
            .for_each(|((ys, xs), buf)| {
                // compiled for the best instruction set (retroprop_core::simd)
                vectorized(
                    #[inline(always)]
                    || Self::convolve_chunk(&geo, w, bias.is_some(), ys, xs, buf),
                )
            });
        Ok(y)
    }

    /// The forward pass of one chunk of examples: `ys`, `xs` hold whole examples.
    #[inline(always)]
    fn convolve_chunk(
        geo: &Geometry,
        w: &DMatrix<T>,
        has_bias: bool,
        ys: &mut [T],
        xs: &[T],
        buf: &mut Scratch<T>,
    ) {
        let geo = *geo;
        let c_out = w.nrows();
        let out_len = c_out * geo.p;
        let beta = if has_bias { T::one() } else { T::zero() };
        for (yi, xi) in ys
            .chunks_exact_mut(out_len)
            .zip(xs.chunks_exact(geo.in_len()))
        {
            buf.load(&geo, xi);
            for oys in geo.blocks::<T>() {
                let width = Scratch::<T>::block_width(&geo, &oys);
                buf.im2col(&geo, xi, oys.clone());
                let cols = MatRef::new(&buf.cols, geo.k, width, width, 1);
                if geo.wide() {
                    // on the padded width, then the valid columns of each row
                    buf.wide.resize(c_out * width, T::zero());
                    let out = MatMut::new(&mut buf.wide, c_out, width, width, 1);
                    gemm(T::one(), MatRef::of(w), cols, T::zero(), out);
                    for (co, src) in buf.wide.chunks_exact(width).enumerate() {
                        for (r, oy) in oys.clone().enumerate() {
                            let dst = &mut yi[co * geo.p + oy * geo.ow..][..geo.ow];
                            for (d, s) in dst.iter_mut().zip(&src[r * geo.wp..]) {
                                *d = beta * *d + *s;
                            }
                        }
                    }
                } else {
                    // y[:, block] (C_out × width, rows P apart) = W (C_out × K) · cols
                    let start = oys.start * geo.ow;
                    let out = MatMut::new(&mut yi[start..], c_out, width, geo.p, 1);
                    gemm(T::one(), MatRef::of(w), cols, beta, out);
                }
            }
        }
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
        let (chunks, size) = reduction_split(n);
        self.scratch
            .resize_with(chunks.max(self.scratch.len()), Scratch::default);
        // Wᵀ with contiguous columns, so that every block's `Wᵀ δ` packs it with straight copies
        let w_t = grad_x.is_some().then(|| self.weight.value().transpose());
        let has_bias = self.bias.is_some();
        let in_len = geo.in_len();

        // One job per chunk: its examples' dL/dx (disjoint slices) and its partial dW, db.
        // compiled for the best instruction set (retroprop_core::simd)
        let job = |chunk: usize, buf: &mut Scratch<T>, mut dx: Option<&mut [T]>| {
            vectorized(
                #[inline(always)]
                || {
                    let mut dw = DMatrix::zeros(c_out, geo.k);
                    let mut db = vec![T::zero(); if has_bias { c_out } else { 0 }];
                    let range = chunk * size..((chunk + 1) * size).min(n);
                    for (local, i) in range.enumerate() {
                        let xi = &x.as_slice()[i * in_len..(i + 1) * in_len];
                        let gi = &grad_y.as_slice()[i * out_len..(i + 1) * out_len];
                        for (acc, row) in db.iter_mut().zip(gi.chunks_exact(geo.p)) {
                            *acc += sum(row);
                        }
                        buf.load(&geo, xi);
                        buf.start_dx(&geo);
                        let mut dx_i = dx
                            .as_deref_mut()
                            .map(|dx| &mut dx[local * in_len..(local + 1) * in_len]);
                        for oys in geo.blocks::<T>() {
                            let width = Scratch::<T>::block_width(&geo, &oys);
                            if !geo.wide() {
                                // (the wide layout's operands come from the padded image)
                                buf.im2col(&geo, xi, oys.clone());
                            }
                            // the operands leave `buf` borrowed: move dcols out of the way
                            let mut dcols = std::mem::take(&mut buf.dcols);
                            let ops = buf.block_operands(&geo, c_out, gi, &oys);
                            // dW += δ[:, block] (C_out × width) · colsᵀ (width × K)
                            gemm(
                                T::one(),
                                ops.delta_t,
                                ops.cols_t,
                                T::one(),
                                MatMut::of(&mut dw),
                            );
                            if let (Some(_), Some(w_t)) = (&dx_i, &w_t) {
                                // dcols (K × width, row-major) = Wᵀ (K × C_out) · δ[:, block]
                                dcols.resize(geo.k * width, T::zero());
                                gemm(
                                    T::one(),
                                    MatRef::of(w_t),
                                    ops.delta,
                                    T::zero(),
                                    MatMut::new(&mut dcols, geo.k, width, width, 1),
                                );
                            }
                            buf.dcols = dcols;
                            if let Some(dx_i) = dx_i.as_deref_mut() {
                                buf.col2im_add(&geo, oys, dx_i);
                            }
                        }
                        if let Some(dx_i) = dx_i {
                            buf.finish_dx(&geo, dx_i);
                        }
                    }
                    (dw, db)
                },
            )
        };

        let partials: Vec<(DMatrix<T>, Vec<T>)> = match grad_x {
            Some(gx) => gx
                .as_mut_slice()
                .par_chunks_mut(size * in_len)
                .zip(self.scratch.par_iter_mut())
                .enumerate()
                .map(|(chunk, (dx, buf))| job(chunk, buf, Some(dx)))
                .collect(),
            None => self
                .scratch
                .par_iter_mut()
                .take(chunks)
                .enumerate()
                .map(|(chunk, buf)| job(chunk, buf, None))
                .collect(),
        };
        // Sum the partials in chunk order: reproducible.
        for (dw, db) in &partials {
            add_assign(self.weight.grad_matrix_mut(), dw);
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
        LayerSpec::new(Conv2dConfig::KIND, &self.config)
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

    fn forward_owned(&mut self, x: DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let y = self.convolve(&x, &mut scratch);
        self.scratch = scratch;
        let y = y?;
        self.input = Some(x);
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
mod tests;
