//! 2-D convolution (question 3): direct products on a padded, stride-phased copy of each
//! input (no im2col), parallel across the batch.

use nalgebra::DMatrix;
use rayon::prelude::*;
use retroprop_core::Scalar;
use retroprop_core::simd::vectorized;

use crate::layer::{check_grad, check_rows};
use crate::linalg::{add_assign, sum};
use crate::{Init, Layer, LayerConfig, LayerError, LayerSpec, Param, ParamKind, Shape};
use retroprop_core::direct::{Write, aligned_slice, gemm_positions, gemm_rows};
use retroprop_core::transpose::transpose;

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
/// x_tap[oy]: the input under tap (c, u, v) for output row oy — one contiguous row of the
///            zero-padded, stride-phased layout of x (geometry.rs)
/// forward:   y[o, oy, :]    = b[o] + Σ_tap W[o, tap] · x_tap[oy]                (y = W x + b)
/// backward:  dL/dW[o, tap] += Σ_{oy, ox} δ[o, oy, ox] · x_tap[oy][ox]          (dW = δ xᵀ)
///            dL/db[o]      += Σ_{oy, ox} δ[o, oy, ox]
///            dL/dx          = Wᵀ δ: for stride 1 the convolution of δ (padded by the kernel's
///                             span) with the kernels rearranged as C_in × (C_out·kh·kw), else
///                             Σ_o Wᵀ[tap, o] · δ[o, oy, :] added into x_tap[oy]'s place
/// ```
///
/// The products are `retroprop_core::direct`'s: they read the rows where they lie, with no
/// im2col matrix and no packed copy. The training forward keeps each example's layout for the
/// backward pass (about the size of the input). Examples are spread over rayon's threads in
/// contiguous chunks; the backward pass sums its weight gradients in at most 8 chunks fixed by
/// the batch size, added in chunk order, so results do not depend on the thread count.
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
    /// The last training forward's examples in the layout (`n × layout_len`), for the backward
    /// pass, and `n`; `None` before a forward.
    layouts: Vec<T>,
    cached: Option<usize>,
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
            layouts: Vec::new(),
            cached: None,
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
            layouts: Vec::new(),
            cached: None,
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

    /// Forward pass into a new matrix. The examples are copied into the layout — into `keep`
    /// (`n × layout_len`, for the backward pass) when given, else into `scratch` one at a time.
    fn convolve(
        &self,
        x: &DMatrix<T>,
        keep: Option<&mut Vec<T>>,
        scratch: &mut Vec<Scratch<T>>,
    ) -> Result<DMatrix<T>, LayerError> {
        let geo = &self.geo;
        check_rows(NAME, "input", x, geo.in_len())?;
        let (n, out_len, in_len, ll) = (x.ncols(), self.out_len(), geo.in_len(), geo.layout_len());
        // every output entry is written once, by the product (which starts from the bias); the
        // zeros come from the allocator (fresh pages), not from a pass over y
        let mut y = DMatrix::from_vec(out_len, n, vec![T::zero(); out_len * n]);
        let bias = self.bias.as_ref().map(|b| b.value().as_slice());
        let write = bias.map_or(Write::Overwrite, Write::Bias);
        let w = self.weight.value();
        let (chunks, size) = split(n);
        scratch.resize_with(chunks.max(scratch.len()), Scratch::default);
        let example = |yi: &mut [T], xi: &[T], layout: &mut [T]| {
            // compiled for the best instruction set (retroprop_core::simd)
            vectorized(
                #[inline(always)]
                || geo.load(xi, layout),
            );
            // y[o, oy, :] = b[o] + Σ_tap W[o, tap] · layout[tap row of oy]
            gemm_rows(
                w.as_slice(),
                w.nrows(),
                layout,
                geo.tap_rows(),
                yi,
                geo.plane_rows(),
                geo.ow,
                geo.oh,
                write,
            );
        };
        let ys = y.as_mut_slice().par_chunks_mut(size * out_len.max(1));
        let xs = x.as_slice().par_chunks(size * in_len.max(1));
        match keep {
            Some(layouts) => {
                layouts.resize(n * ll, T::zero());
                ys.zip(xs)
                    .zip(layouts.par_chunks_mut(size * ll.max(1)))
                    .for_each(|((ys, xs), ls)| {
                        for ((yi, xi), li) in ys
                            .chunks_exact_mut(out_len)
                            .zip(xs.chunks_exact(in_len))
                            .zip(ls.chunks_exact_mut(ll))
                        {
                            example(yi, xi, li);
                        }
                    });
            }
            None => ys
                .zip(xs)
                .zip(scratch.par_iter_mut())
                .for_each(|((ys, xs), buf)| {
                    buf.layout.resize(ll, T::zero());
                    for (yi, xi) in ys.chunks_exact_mut(out_len).zip(xs.chunks_exact(in_len)) {
                        example(yi, xi, &mut buf.layout);
                    }
                }),
        }
        Ok(y)
    }

    /// The training forward: computes `y` and keeps the layouts for the backward pass.
    fn forward_keeping(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let (mut scratch, mut layouts) = (
            std::mem::take(&mut self.scratch),
            std::mem::take(&mut self.layouts),
        );
        self.cached = None;
        let y = self.convolve(x, Some(&mut layouts), &mut scratch);
        (self.scratch, self.layouts) = (scratch, layouts);
        let y = y?;
        self.cached = Some(x.ncols());
        Ok(y)
    }

    /// Adds `dL/dW`, `dL/db` for the cached input; with `grad_x`, also writes `dL/dx` there.
    fn backward_into(
        &mut self,
        grad_y: &DMatrix<T>,
        grad_x: Option<&mut DMatrix<T>>,
    ) -> Result<(), LayerError> {
        let geo = &self.geo;
        let (c_out, out_len) = (self.config.out_channels, self.out_len());
        let n = self
            .cached
            .ok_or(LayerError::NoForwardCache { layer: NAME })?;
        check_grad(NAME, grad_y, out_len, n)?;
        if n == 0 {
            return Ok(());
        }
        let (chunks, size) = reduction_split(n);
        self.scratch
            .resize_with(chunks.max(self.scratch.len()), Scratch::default);
        // the kernels as the input gradient's A (see geometry.rs)
        let w = self.weight.value().as_slice();
        let a_dx = grad_x.is_some().then(|| {
            if geo.transposed() {
                geo.transposed_kernels(w, c_out)
            } else {
                geo.kernels_by_column(w, c_out)
            }
        });
        let has_bias = self.bias.is_some();
        let (in_len, ll, layouts) = (geo.in_len(), geo.layout_len(), &self.layouts);

        // One job per chunk: its examples' dL/dx (disjoint slices) and its partial dW, db.
        let job = |chunk: usize, buf: &mut Scratch<T>, mut dx: Option<&mut [T]>| {
            let mut dw = DMatrix::zeros(c_out, geo.k);
            let mut db = vec![T::zero(); if has_bias { c_out } else { 0 }];
            let range = chunk * size..((chunk + 1) * size).min(n);
            for (local, i) in range.enumerate() {
                let layout = &layouts[i * ll..(i + 1) * ll];
                let gi = &grad_y.as_slice()[i * out_len..(i + 1) * out_len];
                // compiled for the best instruction set (retroprop_core::simd)
                vectorized(
                    #[inline(always)]
                    || {
                        for (acc, row) in db.iter_mut().zip(gi.chunks_exact(geo.p)) {
                            *acc += sum(row);
                        }
                    },
                );
                // δᵀ (P × C_out): each output position's gradient over the channels
                // (on a cache line: with C_out a multiple of 16, no vector the product loads
                // from it straddles two lines)
                let grad_t = aligned_slice(&mut buf.grad_t, geo.p * c_out);
                transpose(gi, c_out, geo.p, geo.p, grad_t);
                // dW[:, tap] += Σ_positions layout[tap row] · δᵀ[position, :]
                gemm_positions(
                    layout,
                    geo.tap_rows(),
                    geo.ow,
                    geo.oh,
                    grad_t,
                    c_out,
                    dw.as_mut_slice(),
                    c_out,
                    c_out,
                );
                if let (Some(dx), Some(a)) = (dx.as_deref_mut(), &a_dx) {
                    let dx_i = &mut dx[local * in_len..(local + 1) * in_len];
                    input_gradient(geo, c_out, a, gi, &mut buf.dlayout, dx_i);
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

/// Writes one example's `dL/dx` from its output gradient `delta`, with `a` the kernels as
/// [`Geometry::transposed_kernels`] (stride 1) or [`Geometry::kernels_by_column`] (strided)
/// arranged them, and `dlayout` as work space.
fn input_gradient<T: Scalar>(
    geo: &Geometry,
    c_out: usize,
    a: &[T],
    delta: &[T],
    dlayout: &mut Vec<T>,
    dx: &mut [T],
) {
    if geo.transposed() {
        // dx[c, iy, :] = Σ_{o,u,v} W[o, (c,u,v)] · δ_padded[(o,u,v) row of iy]
        dlayout.resize(geo.delta_layout_len(c_out), T::zero());
        vectorized(
            #[inline(always)]
            || geo.load_delta(delta, dlayout),
        );
        gemm_rows(
            a,
            geo.c,
            dlayout,
            geo.back_rows(),
            dx,
            geo.input_rows(),
            geo.w,
            geo.h,
            Write::Overwrite,
        );
    } else {
        // dlayout[tap row of oy] += Σ_o Wᵀ[tap, o] · δ[o, oy, :], then back to image layout
        dlayout.clear();
        dlayout.resize(geo.layout_len(), T::zero());
        gemm_rows(
            a,
            geo.k,
            delta,
            geo.plane_rows(),
            dlayout,
            geo.tap_rows_by_column(),
            geo.ow,
            geo.oh,
            Write::Accumulate,
        );
        vectorized(
            #[inline(always)]
            || {
                dx.fill(T::zero());
                geo.unload_add(dlayout, dx);
            },
        );
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
        self.forward_keeping(x)
    }

    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let n = self.cached.unwrap_or(0);
        let mut grad_x = DMatrix::zeros(self.geo.in_len(), n);
        self.backward_into(grad_y, Some(&mut grad_x))?;
        Ok(grad_x)
    }

    fn backward_params(&mut self, grad_y: &DMatrix<T>) -> Result<(), LayerError> {
        self.backward_into(grad_y, None)
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        self.convolve(x, None, &mut Vec::new())
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
