//! 2-D convolution (question 3): im2col + GEMM, parallel across the batch.

use std::ops::Range;

use nalgebra::DMatrix;
use rayon::prelude::*;
use retroprop_activations::Scalar;
use serde::{Deserialize, Serialize};

use crate::layer::{check_grad, check_rows};
use crate::linalg::{MatMut, MatRef, add_assign, gemm};
use crate::shape::{MAX_VALUES, check_nonzero, checked_product};
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
        checked_product(NAME, &[taps, oh, ow])?;
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
    /// Padded input height `H + 2pₕ` and width `W + 2p_w` (the "wide" layout of stride 1).
    hp: usize,
    wp: usize,
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
            hp: c.input.h + 2 * c.padding.h,
            wp: c.input.w + 2 * c.padding.w,
        })
    }

    fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Length of one column phase of an input row: `⌈W / s_w⌉`.
    fn wr(&self) -> usize {
        self.w.div_ceil(self.sw)
    }

    /// Values in the column-phased copy of one example (see [`Geometry::phase`]).
    fn phased_len(&self) -> usize {
        self.c * self.h * self.sw * self.wr()
    }

    /// Where kernel column `kx` reads: input column `ix = ox·s_w + kx·d_w − p_w` is
    /// `j·s_w + r` with `j = ox + q`; only `ox ∈ lo..hi` land inside the image.
    fn tap(&self, kx: usize) -> Tap {
        let s = self.sw as isize;
        let offset = (kx * self.dw) as isize - self.pw as isize;
        let (r, q) = (offset.rem_euclid(s), offset.div_euclid(s));
        // columns r, r + s, … below W: ⌈(W − r)/s⌉ of them (0 if r ≥ W)
        let count = (self.w as isize - r + s - 1).div_euclid(s);
        let lo = (-q).max(0);
        let hi = (count - q).clamp(0, self.ow as isize);
        Tap {
            r: r as usize,
            q,
            lo: lo.min(hi) as usize,
            hi: hi as usize,
        }
    }

    /// Input row for output row `oy` and kernel row `ky`, if inside the image.
    fn iy(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.sh + ky * self.dh)
            .checked_sub(self.ph)
            .filter(|&iy| iy < self.h)
    }

    /// Offset of phase `r` of input row `iy` of channel `c` in the phased layout (for `s_w = 1`
    /// this is the image itself).
    fn row_start(&self, c: usize, iy: usize, r: usize) -> usize {
        ((c * self.h + iy) * self.sw + r) * self.wr()
    }

    /// Splits every input row into `s_w` column phases, phase `r` holding columns
    /// `r, r + s_w, r + 2s_w, …` contiguously: with it every im2col segment of a strided
    /// convolution is a plain copy instead of a gather. Only used when `s_w > 1`.
    fn phase<T: Scalar>(&self, x: &[T], out: &mut Vec<T>) {
        let (s, wr) = (self.sw, self.wr());
        out.resize(self.phased_len(), T::zero());
        for (row, phased) in x.chunks_exact(self.w).zip(out.chunks_exact_mut(s * wr)) {
            // column j·s + r goes to phase r, slot j; slots past the row's end are never read
            for (j, group) in row.chunks(s).enumerate() {
                for (r, &v) in group.iter().enumerate() {
                    phased[r * wr + j] = v;
                }
            }
        }
    }

    /// The adjoint of [`Geometry::phase`]: adds the phased gradient back into image layout.
    fn unphase_add<T: Scalar>(&self, phased: &[T], x: &mut [T]) {
        let (s, wr) = (self.sw, self.wr());
        for (row, src) in x.chunks_exact_mut(self.w).zip(phased.chunks_exact(s * wr)) {
            for (r, part) in src.chunks_exact(wr).enumerate() {
                let columns = row.get_mut(r..).unwrap_or_default();
                for (d, v) in columns.iter_mut().step_by(s).zip(part) {
                    *d += *v;
                }
            }
        }
    }

    /// im2col of the output rows `oys`: `cols` (`K × |oys|·W_out`, row-major) gets, in row
    /// `(c·kh + ky)·kw + kx` and column `(oy − oys.start)·W_out + ox`, the input value under
    /// kernel tap `(c, ky, kx)` at output `(oy, ox)`, or 0 in the padding. `src` is the
    /// example, column-phased if `s_w > 1`.
    fn im2col<T: Scalar>(&self, src: &[T], oys: Range<usize>, cols: &mut [T]) {
        let width = oys.len() * self.ow;
        let taps: Vec<Tap> = (0..self.kw).map(|kx| self.tap(kx)).collect();
        let mut rows = cols.chunks_exact_mut(width);
        for c in 0..self.c {
            for ky in 0..self.kh {
                for &Tap { r, q, lo, hi } in &taps {
                    let dst = rows.next().expect("K rows");
                    for (oy, drow) in oys.clone().zip(dst.chunks_exact_mut(self.ow)) {
                        let Some(iy) = self.iy(oy, ky) else {
                            drow.fill(T::zero());
                            continue;
                        };
                        drow[..lo].fill(T::zero());
                        drow[hi..].fill(T::zero());
                        if lo < hi {
                            let a = self.row_start(c, iy, r) + (lo as isize + q) as usize;
                            drow[lo..hi].copy_from_slice(&src[a..a + (hi - lo)]);
                        }
                    }
                }
            }
        }
    }

    /// col2im, the adjoint of [`Geometry::im2col`] for the output rows `oys`: adds each entry
    /// of `cols` back onto the (phased) input value it was copied from; taps in the padding are
    /// dropped.
    fn col2im<T: Scalar>(&self, cols: &[T], oys: Range<usize>, dst: &mut [T]) {
        let width = oys.len() * self.ow;
        let taps: Vec<Tap> = (0..self.kw).map(|kx| self.tap(kx)).collect();
        let mut rows = cols.chunks_exact(width);
        for c in 0..self.c {
            for ky in 0..self.kh {
                for &Tap { r, q, lo, hi } in &taps {
                    let src = rows.next().expect("K rows");
                    if lo == hi {
                        continue;
                    }
                    for (oy, srow) in oys.clone().zip(src.chunks_exact(self.ow)) {
                        let Some(iy) = self.iy(oy, ky) else {
                            continue;
                        };
                        let a = self.row_start(c, iy, r) + (lo as isize + q) as usize;
                        for (d, v) in dst[a..a + (hi - lo)].iter_mut().zip(&srow[lo..hi]) {
                            *d += *v;
                        }
                    }
                }
            }
        }
    }
}

/// The wide layout of stride-1 convolutions.
///
/// With stride 1 the input under kernel tap `(c, u, v)` for output row `oy` is row
/// `oy + u·dₕ` of the zero-padded image, shifted by `v·d_w`. Computing every output row on the
/// full padded width `W_p = W + 2p_w` (the last `W_p − W_out` columns of each row are garbage and
/// discarded) makes the im2col row of a tap *one contiguous slice* of the padded image, instead
/// of one short segment per output row — for question 3's 3×3 layer, 288 copies of 1 088
/// values per image instead of 9 216 of 32. The GEMM is `W_p / W_out` wider; the output rows
/// are copied out of the wide result, and the backward pass mirrors it with zeros in the
/// garbage columns so they contribute nothing.
impl Geometry {
    /// Whether the wide layout applies (stride 1 on both axes).
    fn wide(&self) -> bool {
        self.sh == 1 && self.sw == 1
    }

    /// Padded image of every channel, plus a tail so garbage columns never read past it.
    fn padded_len(&self) -> usize {
        self.c * self.hp * self.wp + (self.kw - 1) * self.dw
    }

    /// Copies the image into the interior of `padded` (borders and tail stay zero: they are
    /// never written).
    fn pad<T: Scalar>(&self, x: &[T], padded: &mut Vec<T>) {
        padded.resize(self.padded_len(), T::zero());
        for (ch, channel) in x.chunks_exact(self.h * self.w).enumerate() {
            for (iy, row) in channel.chunks_exact(self.w).enumerate() {
                let at = (ch * self.hp + iy + self.ph) * self.wp + self.pw;
                padded[at..at + self.w].copy_from_slice(row);
            }
        }
    }

    /// Wide im2col of output rows `oys`: `cols` (`K × |oys|·W_p`) row `(c·kh + u)·kw + v` is
    /// the padded image from `(c, oys.start + u·dₕ, v·d_w)` on.
    fn im2col_wide<T: Scalar>(&self, padded: &[T], oys: Range<usize>, cols: &mut [T]) {
        let width = oys.len() * self.wp;
        let mut rows = cols.chunks_exact_mut(width);
        for c in 0..self.c {
            for u in 0..self.kh {
                for v in 0..self.kw {
                    let at = (c * self.hp + oys.start + u * self.dh) * self.wp + v * self.dw;
                    rows.next()
                        .expect("K rows")
                        .copy_from_slice(&padded[at..at + width]);
                }
            }
        }
    }

    /// The adjoint of [`Geometry::im2col_wide`]: adds each row of `dcols` onto the padded
    /// gradient.
    fn col2im_wide<T: Scalar>(&self, dcols: &[T], oys: Range<usize>, dpadded: &mut [T]) {
        let width = oys.len() * self.wp;
        let mut rows = dcols.chunks_exact(width);
        for c in 0..self.c {
            for u in 0..self.kh {
                for v in 0..self.kw {
                    let at = (c * self.hp + oys.start + u * self.dh) * self.wp + v * self.dw;
                    let src = rows.next().expect("K rows");
                    for (d, s) in dpadded[at..at + width].iter_mut().zip(src) {
                        *d += *s;
                    }
                }
            }
        }
    }

    /// Adds the interior of the padded gradient into `dx`.
    fn unpad_add<T: Scalar>(&self, dpadded: &[T], dx: &mut [T]) {
        for (ch, channel) in dx.chunks_exact_mut(self.h * self.w).enumerate() {
            for (iy, row) in channel.chunks_exact_mut(self.w).enumerate() {
                let at = (ch * self.hp + iy + self.ph) * self.wp + self.pw;
                for (d, s) in row.iter_mut().zip(&dpadded[at..at + self.w]) {
                    *d += *s;
                }
            }
        }
    }
}

/// Where one kernel column reads in the phased input (see [`Geometry::tap`]).
#[derive(Clone, Copy, Debug)]
struct Tap {
    /// Column phase.
    r: usize,
    /// Offset from output column to phase index: `j = ox + q`.
    q: isize,
    /// First output column inside the image.
    lo: usize,
    /// One past the last output column inside the image.
    hi: usize,
}

/// Per-chunk work buffers, reused across calls.
#[derive(Clone, Debug, Default)]
struct Scratch<T> {
    /// im2col matrix of one example.
    cols: Vec<T>,
    /// Column-phased copy of one example (strided convolutions only).
    phased: Vec<T>,
    /// Gradient of `cols` (backward with `dL/dx` only).
    dcols: Vec<T>,
    /// Gradient of `phased` (strided backward with `dL/dx` only).
    dphased: Vec<T>,
    /// Zero-padded copy of one example (wide layout).
    padded: Vec<T>,
    /// Output, or output gradient, of one block on the padded width (wide layout).
    wide: Vec<T>,
    /// Gradient of `padded` (wide backward with `dL/dx` only).
    dpadded: Vec<T>,
}

impl<T: Scalar> Scratch<T> {
    /// Prepares example `x`: zero-padded (wide layout) or column-phased (strided).
    fn load(&mut self, geo: &Geometry, x: &[T]) {
        if geo.wide() {
            geo.pad(x, &mut self.padded);
        } else if geo.sw > 1 {
            geo.phase(x, &mut self.phased);
        }
    }

    /// Columns of one block: `|oys|·W_p` in the wide layout, `|oys|·W_out` otherwise.
    fn block_width(geo: &Geometry, oys: &Range<usize>) -> usize {
        oys.len() * if geo.wide() { geo.wp } else { geo.ow }
    }

    /// im2col of the loaded example's output rows `oys` into `self.cols`.
    fn im2col(&mut self, geo: &Geometry, x: &[T], oys: Range<usize>) {
        self.cols
            .resize(geo.k * Self::block_width(geo, &oys), T::zero());
        if geo.wide() {
            geo.im2col_wide(&self.padded, oys, &mut self.cols);
        } else {
            let src = if geo.sw > 1 { &self.phased[..] } else { x };
            geo.im2col(src, oys, &mut self.cols);
        }
    }

    /// Clears the input gradient of one example (padded or phased layout).
    fn start_dx(&mut self, geo: &Geometry) {
        if geo.wide() {
            self.dpadded.clear();
            self.dpadded.resize(geo.padded_len(), T::zero());
        } else if geo.sw > 1 {
            self.dphased.clear();
            self.dphased.resize(geo.phased_len(), T::zero());
        }
    }

    /// Adds `col2im(self.dcols)` for output rows `oys` into the example's input gradient.
    fn col2im_add(&mut self, geo: &Geometry, oys: Range<usize>, dx: &mut [T]) {
        if geo.wide() {
            geo.col2im_wide(&self.dcols, oys, &mut self.dpadded);
        } else if geo.sw > 1 {
            geo.col2im(&self.dcols, oys, &mut self.dphased);
        } else {
            geo.col2im(&self.dcols, oys, dx);
        }
    }

    /// Moves a padded or phased input gradient into image layout.
    fn finish_dx(&mut self, geo: &Geometry, dx: &mut [T]) {
        if geo.wide() {
            geo.unpad_add(&self.dpadded, dx);
        } else if geo.sw > 1 {
            geo.unphase_add(&self.dphased, dx);
        }
    }

    /// The output gradient of block `oys` of example `g` (`C_out × P`, rows `P` apart) as a
    /// GEMM operand: in place, or spread on the padded width in `self.wide` (wide layout).
    fn grad_block<'a>(
        &'a mut self,
        geo: &Geometry,
        c_out: usize,
        g: &'a [T],
        oys: &Range<usize>,
    ) -> MatRef<'a, T> {
        let width = Self::block_width(geo, oys);
        if !geo.wide() {
            return MatRef::new(&g[oys.start * geo.ow..], c_out, width, geo.p, 1);
        }
        self.wide.resize(c_out * width, T::zero());
        for (co, dst) in self.wide.chunks_exact_mut(width).enumerate() {
            for (oy, row) in oys.clone().zip(dst.chunks_exact_mut(geo.wp)) {
                // the garbage columns get zero gradient (the buffer also holds forward output)
                let (valid, garbage) = row.split_at_mut(geo.ow);
                valid.copy_from_slice(&g[co * geo.p + oy * geo.ow..][..geo.ow]);
                garbage.fill(T::zero());
            }
        }
        MatRef::new(&self.wide, c_out, width, width, 1)
    }
}

/// Bytes of im2col matrix built at a time: a block of output rows small enough that the block
/// and matrixmultiply's packed copy of it stay in a core's L2 cache, instead of streaming the
/// whole im2col matrix of an example (3 MB for question 3's first layer) through L3 twice.
const IM2COL_BLOCK_BYTES: usize = 256 * 1024;

impl Geometry {
    /// The output rows of one example in blocks of [`IM2COL_BLOCK_BYTES`].
    fn blocks<T: Scalar>(&self) -> impl Iterator<Item = Range<usize>> + use<T> {
        let oh = self.p / self.ow;
        let row_bytes = self.k * if self.wide() { self.wp } else { self.ow } * T::BYTES;
        let per = (IM2COL_BLOCK_BYTES / row_bytes.max(1)).clamp(1, oh);
        (0..oh.div_ceil(per)).map(move |b| b * per..((b + 1) * per).min(oh))
    }
}

/// Splits `n` examples into at most one contiguous chunk per rayon thread: `(chunks, size)`.
/// For the forward pass, where every example is computed on its own (no sum across examples),
/// so any split gives the same bits.
fn split(n: usize) -> (usize, usize) {
    let threads = rayon::current_num_threads().max(1);
    let size = n.div_ceil(threads).max(1);
    (n.div_ceil(size), size)
}

/// Chunks of the backward pass's sum over examples (`dL/dW = Σᵢ δᵢ colsᵢᵀ`): the batch is cut
/// into at most this many contiguous chunks, each summed in example order, and the chunks'
/// partial sums are added in chunk order. The split depends on `n` only — never on the thread
/// count — so the gradients, and training, are bit-identical on 1, 2 or 64 threads. Eight
/// chunks keep up to eight threads busy and cost eight `C_out × K` partial sums per backward.
const REDUCTION_CHUNKS: usize = 8;

/// `(chunks, size)` of the backward pass's fixed split (see [`REDUCTION_CHUNKS`]).
fn reduction_split(n: usize) -> (usize, usize) {
    let size = n.div_ceil(REDUCTION_CHUNKS).max(1);
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
        let (c_out, out_len) = (self.config.out_channels, self.out_len());
        let mut y = DMatrix::zeros(out_len, n);
        if n == 0 {
            return Ok(y);
        }
        let (chunks, size) = split(n);
        scratch.resize_with(chunks.max(scratch.len()), Scratch::default);
        let w = self.weight.value();
        let bias = self.bias.as_ref().map(|b| b.value().as_slice());
        y.as_mut_slice()
            .par_chunks_mut(size * out_len)
            .zip(x.as_slice().par_chunks(size * geo.in_len()))
            .zip(scratch.par_iter_mut())
            .for_each(|((ys, xs), buf)| {
                for (yi, xi) in ys
                    .chunks_exact_mut(out_len)
                    .zip(xs.chunks_exact(geo.in_len()))
                {
                    if let Some(b) = bias {
                        for (row, &bo) in yi.chunks_exact_mut(geo.p).zip(b) {
                            row.fill(bo);
                        }
                    }
                    let beta = if bias.is_some() { T::one() } else { T::zero() };
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
        let (chunks, size) = reduction_split(n);
        self.scratch
            .resize_with(chunks.max(self.scratch.len()), Scratch::default);
        let w = self.weight.value();
        let has_bias = self.bias.is_some();
        let in_len = geo.in_len();

        // One job per chunk: its examples' dL/dx (disjoint slices) and its partial dW, db.
        let job = |chunk: usize, buf: &mut Scratch<T>, mut dx: Option<&mut [T]>| {
            let mut dw = DMatrix::zeros(c_out, geo.k);
            let mut db = vec![T::zero(); if has_bias { c_out } else { 0 }];
            let range = chunk * size..((chunk + 1) * size).min(n);
            for (local, i) in range.enumerate() {
                let xi = &x.as_slice()[i * in_len..(i + 1) * in_len];
                let gi = &grad_y.as_slice()[i * out_len..(i + 1) * out_len];
                for (acc, row) in db.iter_mut().zip(gi.chunks_exact(geo.p)) {
                    *acc += row.iter().fold(T::zero(), |s, &v| s + v);
                }
                buf.load(&geo, xi);
                buf.start_dx(&geo);
                let mut dx_i = dx
                    .as_deref_mut()
                    .map(|dx| &mut dx[local * in_len..(local + 1) * in_len]);
                for oys in geo.blocks::<T>() {
                    let width = Scratch::<T>::block_width(&geo, &oys);
                    buf.im2col(&geo, xi, oys.clone());
                    // the gradient block leaves `buf.wide` borrowed: copy cols out of the way
                    let cols = std::mem::take(&mut buf.cols);
                    let mut dcols = std::mem::take(&mut buf.dcols);
                    let g = buf.grad_block(&geo, c_out, gi, &oys);
                    // dW += δ[:, block] (C_out × width) · colsᵀ (width × K)
                    gemm(
                        T::one(),
                        g,
                        MatRef::new(&cols, width, geo.k, 1, width),
                        T::one(),
                        MatMut::of(&mut dw),
                    );
                    if dx_i.is_some() {
                        // dcols (K × width, row-major) = Wᵀ (K × C_out) · δ[:, block]
                        dcols.resize(geo.k * width, T::zero());
                        gemm(
                            T::one(),
                            MatRef::transposed(w),
                            g,
                            T::zero(),
                            MatMut::new(&mut dcols, geo.k, width, width, 1),
                        );
                    }
                    buf.cols = cols;
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
