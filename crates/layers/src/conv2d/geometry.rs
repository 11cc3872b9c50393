//! The im2col geometry of a convolution (sizes derived once, the wide stride-1 layout, column
//! phases for strided rows), the per-thread scratch buffers, and how a batch is split.

use std::ops::Range;

use retroprop_core::Scalar;

use super::Conv2dConfig;
use crate::LayerError;
use retroprop_core::gemm::MatRef;
use retroprop_core::transpose::{transpose, transpose_rows};

/// Sizes derived once from a valid configuration.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) sh: usize,
    pub(super) sw: usize,
    pub(super) ph: usize,
    pub(super) pw: usize,
    pub(super) dh: usize,
    pub(super) dw: usize,
    pub(super) ow: usize,
    /// Rows of the im2col matrix: `C_in · kh · kw`.
    pub(super) k: usize,
    /// Output positions: `H_out · W_out`.
    pub(super) p: usize,
    /// Padded input height `H + 2pₕ` and width `W + 2p_w` (the "wide" layout of stride 1).
    pub(super) hp: usize,
    pub(super) wp: usize,
}

impl Geometry {
    pub(super) fn new(c: &Conv2dConfig) -> Result<Self, LayerError> {
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

    pub(super) fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Length of one column phase of an input row: `⌈W / s_w⌉`.
    pub(super) fn wr(&self) -> usize {
        self.w.div_ceil(self.sw)
    }

    /// Values in the column-phased copy of one example (see [`Geometry::phase`]).
    pub(super) fn phased_len(&self) -> usize {
        self.c * self.h * self.sw * self.wr()
    }

    /// Where kernel column `kx` reads: input column `ix = ox·s_w + kx·d_w − p_w` is
    /// `j·s_w + r` with `j = ox + q`; only `ox ∈ lo..hi` land inside the image.
    #[inline(always)]
    pub(super) fn tap(&self, kx: usize) -> Tap {
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
    #[inline(always)]
    pub(super) fn iy(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.sh + ky * self.dh)
            .checked_sub(self.ph)
            .filter(|&iy| iy < self.h)
    }

    /// Offset of phase `r` of input row `iy` of channel `c` in the phased layout (for `s_w = 1`
    /// this is the image itself).
    #[inline(always)]
    pub(super) fn row_start(&self, c: usize, iy: usize, r: usize) -> usize {
        ((c * self.h + iy) * self.sw + r) * self.wr()
    }

    /// Splits every input row into `s_w` column phases, phase `r` holding columns
    /// `r, r + s_w, r + 2s_w, …` contiguously: with it every im2col segment of a strided
    /// convolution is a plain copy instead of a gather. Only used when `s_w > 1`.
    #[inline(always)]
    pub(super) fn phase<T: Scalar>(&self, x: &[T], out: &mut Vec<T>) {
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
    #[inline(always)]
    pub(super) fn unphase_add<T: Scalar>(&self, phased: &[T], x: &mut [T]) {
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
    #[inline(always)]
    pub(super) fn im2col<T: Scalar>(&self, src: &[T], oys: Range<usize>, cols: &mut [T]) {
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
    #[inline(always)]
    pub(super) fn col2im<T: Scalar>(&self, cols: &[T], oys: Range<usize>, dst: &mut [T]) {
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
    pub(super) fn wide(&self) -> bool {
        self.sh == 1 && self.sw == 1
    }

    /// Padded image of every channel, plus a tail so garbage columns never read past it.
    pub(super) fn padded_len(&self) -> usize {
        self.c * self.hp * self.wp + (self.kw - 1) * self.dw
    }

    /// Copies the image into the interior of `padded` (borders and tail stay zero: they are
    /// never written).
    #[inline(always)]
    pub(super) fn pad<T: Scalar>(&self, x: &[T], padded: &mut Vec<T>) {
        padded.resize(self.padded_len(), T::zero());
        for (ch, channel) in x.chunks_exact(self.h * self.w).enumerate() {
            for (iy, row) in channel.chunks_exact(self.w).enumerate() {
                let at = (ch * self.hp + iy + self.ph) * self.wp + self.pw;
                padded[at..at + self.w].copy_from_slice(row);
            }
        }
    }

    /// Where row `(c·kh + u)·kw + v` of the wide im2col of output rows `oys` starts in the
    /// padded image: at `(c, oys.start + u·dₕ, v·d_w)`; the row is the next `|oys|·W_p` values.
    #[inline(always)]
    pub(super) fn wide_rows(&self, oys: &Range<usize>) -> impl Iterator<Item = usize> + use<> {
        let Self {
            c,
            hp,
            wp,
            kh,
            kw,
            dh,
            dw,
            ..
        } = *self;
        let top = oys.start;
        (0..c).flat_map(move |c| {
            (0..kh).flat_map(move |u| (0..kw).map(move |v| (c * hp + top + u * dh) * wp + v * dw))
        })
    }

    /// Wide im2col of output rows `oys`: `cols` (`K × |oys|·W_p`) row `(c·kh + u)·kw + v` is
    /// the padded image from `(c, oys.start + u·dₕ, v·d_w)` on.
    #[inline(always)]
    pub(super) fn im2col_wide<T: Scalar>(&self, padded: &[T], oys: Range<usize>, cols: &mut [T]) {
        let width = oys.len() * self.wp;
        for (row, at) in cols.chunks_exact_mut(width).zip(self.wide_rows(&oys)) {
            row.copy_from_slice(&padded[at..at + width]);
        }
    }

    /// The adjoint of [`Geometry::im2col_wide`]: adds each row of `dcols` onto the padded
    /// gradient.
    #[inline(always)]
    pub(super) fn col2im_wide<T: Scalar>(&self, dcols: &[T], oys: Range<usize>, dpadded: &mut [T]) {
        let width = oys.len() * self.wp;
        for (src, at) in dcols.chunks_exact(width).zip(self.wide_rows(&oys)) {
            for (d, s) in dpadded[at..at + width].iter_mut().zip(src) {
                *d += *s;
            }
        }
    }

    /// Adds the interior of the padded gradient into `dx`.
    #[inline(always)]
    pub(super) fn unpad_add<T: Scalar>(&self, dpadded: &[T], dx: &mut [T]) {
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
pub(super) struct Tap {
    /// Column phase.
    pub(super) r: usize,
    /// Offset from output column to phase index: `j = ox + q`.
    pub(super) q: isize,
    /// First output column inside the image.
    pub(super) lo: usize,
    /// One past the last output column inside the image.
    pub(super) hi: usize,
}

/// Per-chunk work buffers, reused across calls.
#[derive(Clone, Debug, Default)]
pub(super) struct Scratch<T> {
    /// im2col matrix of one example.
    pub(super) cols: Vec<T>,
    /// Column-phased copy of one example (strided convolutions only).
    pub(super) phased: Vec<T>,
    /// Gradient of `cols` (backward with `dL/dx` only).
    pub(super) dcols: Vec<T>,
    /// Gradient of `phased` (strided backward with `dL/dx` only).
    pub(super) dphased: Vec<T>,
    /// Zero-padded copy of one example (wide layout).
    pub(super) padded: Vec<T>,
    /// Output, or output gradient, of one block on the padded width (wide layout).
    pub(super) wide: Vec<T>,
    /// Gradient of `padded` (wide backward with `dL/dx` only).
    pub(super) dpadded: Vec<T>,
    /// `colsᵀ` of one block (backward).
    pub(super) cols_t: Vec<T>,
    /// The output gradient of one block, transposed (backward).
    pub(super) grad_t: Vec<T>,
    /// Where each im2col row of a block starts in `padded` (wide backward).
    pub(super) starts: Vec<usize>,
}

impl<T: Scalar> Scratch<T> {
    /// Prepares example `x`: zero-padded (wide layout) or column-phased (strided).
    #[inline(always)]
    pub(super) fn load(&mut self, geo: &Geometry, x: &[T]) {
        if geo.wide() {
            geo.pad(x, &mut self.padded);
        } else if geo.sw > 1 {
            geo.phase(x, &mut self.phased);
        }
    }

    /// Columns of one block: `|oys|·W_p` in the wide layout, `|oys|·W_out` otherwise.
    pub(super) fn block_width(geo: &Geometry, oys: &Range<usize>) -> usize {
        oys.len() * if geo.wide() { geo.wp } else { geo.ow }
    }

    /// im2col of the loaded example's output rows `oys` into `self.cols`.
    #[inline(always)]
    pub(super) fn im2col(&mut self, geo: &Geometry, x: &[T], oys: Range<usize>) {
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
    #[inline(always)]
    pub(super) fn start_dx(&mut self, geo: &Geometry) {
        if geo.wide() {
            self.dpadded.clear();
            self.dpadded.resize(geo.padded_len(), T::zero());
        } else if geo.sw > 1 {
            self.dphased.clear();
            self.dphased.resize(geo.phased_len(), T::zero());
        }
    }

    /// Adds `col2im(self.dcols)` for output rows `oys` into the example's input gradient.
    #[inline(always)]
    pub(super) fn col2im_add(&mut self, geo: &Geometry, oys: Range<usize>, dx: &mut [T]) {
        if geo.wide() {
            geo.col2im_wide(&self.dcols, oys, &mut self.dpadded);
        } else if geo.sw > 1 {
            geo.col2im(&self.dcols, oys, &mut self.dphased);
        } else {
            geo.col2im(&self.dcols, oys, dx);
        }
    }

    /// Moves a padded or phased input gradient into image layout.
    #[inline(always)]
    pub(super) fn finish_dx(&mut self, geo: &Geometry, dx: &mut [T]) {
        if geo.wide() {
            geo.unpad_add(&self.dpadded, dx);
        } else if geo.sw > 1 {
            geo.unphase_add(&self.dphased, dx);
        }
    }

    /// The operands of block `oys` of example `g` (`C_out × P`, rows `P` apart), after
    /// [`Scratch::load`] and, unless the layout is wide, [`Scratch::im2col`]: the output gradient for the input gradient's product `Wᵀ δ` (in
    /// place, or spread on the padded width in `self.wide` in the wide layout), and the
    /// transposes of both the gradient and the im2col block for the weight gradient's
    /// `δ colsᵀ`, which sums over output positions — the contiguous index of both — so that
    /// matrixmultiply packs them with straight copies (see `retroprop_core::transpose`).
    #[inline(always)]
    pub(super) fn block_operands<'a>(
        &'a mut self,
        geo: &Geometry,
        c_out: usize,
        g: &'a [T],
        oys: &Range<usize>,
    ) -> BlockOperands<'a, T> {
        let width = Self::block_width(geo, oys);
        let (delta, ld) = if geo.wide() {
            self.wide.resize(c_out * width, T::zero());
            for (co, dst) in self.wide.chunks_exact_mut(width).enumerate() {
                for (oy, row) in oys.clone().zip(dst.chunks_exact_mut(geo.wp)) {
                    // the garbage columns get zero gradient (the buffer also holds forward
                    // output)
                    let (valid, garbage) = row.split_at_mut(geo.ow);
                    valid.copy_from_slice(&g[co * geo.p + oy * geo.ow..][..geo.ow]);
                    garbage.fill(T::zero());
                }
            }
            (&self.wide[..], width)
        } else {
            (&g[oys.start * geo.ow..], geo.p)
        };
        self.grad_t.resize(width * c_out, T::zero());
        transpose(delta, c_out, width, ld, &mut self.grad_t);
        self.cols_t.resize(width * geo.k, T::zero());
        if geo.wide() {
            // each im2col row is a slice of the padded image: transpose straight from it
            self.starts.clear();
            self.starts.extend(geo.wide_rows(oys));
            transpose_rows(&self.padded, &self.starts, width, &mut self.cols_t);
        } else {
            transpose(&self.cols, geo.k, width, width, &mut self.cols_t);
        }
        BlockOperands {
            delta: MatRef::new(delta, c_out, width, ld, 1),
            delta_t: MatRef::new(&self.grad_t, c_out, width, 1, c_out),
            cols_t: MatRef::new(&self.cols_t, width, geo.k, geo.k, 1),
        }
    }
}

/// The GEMM operands of one block of the backward pass (see [`Scratch::block_operands`]).
pub(super) struct BlockOperands<'a, T> {
    /// `δ` of the block, `C_out × width`, rows contiguous: `b` of `dcols = Wᵀ δ`.
    pub(super) delta: MatRef<'a, T>,
    /// The same `δ` with columns contiguous: `a` of `dW += δ colsᵀ`.
    pub(super) delta_t: MatRef<'a, T>,
    /// `colsᵀ`, `width × K`, rows contiguous: `b` of `dW += δ colsᵀ`.
    pub(super) cols_t: MatRef<'a, T>,
}

/// Bytes of im2col matrix built at a time: a block of output rows small enough that the block
/// and matrixmultiply's packed copy of it stay in a core's L2 cache, instead of streaming the
/// whole im2col matrix of an example (3 MB for question 3's first layer) through L3 twice.
const IM2COL_BLOCK_BYTES: usize = 256 * 1024;

impl Geometry {
    /// The output rows of one example in blocks of [`IM2COL_BLOCK_BYTES`].
    pub(super) fn blocks<T: Scalar>(&self) -> impl Iterator<Item = Range<usize>> + use<T> {
        let oh = self.p / self.ow;
        let row_bytes = self.k * if self.wide() { self.wp } else { self.ow } * T::BYTES;
        let per = (IM2COL_BLOCK_BYTES / row_bytes.max(1)).clamp(1, oh);
        (0..oh.div_ceil(per)).map(move |b| b * per..((b + 1) * per).min(oh))
    }
}

/// Splits `n` examples into at most one contiguous chunk per rayon thread: `(chunks, size)`.
/// For the forward pass, where every example is computed on its own (no sum across examples),
/// so any split gives the same bits.
pub(super) fn split(n: usize) -> (usize, usize) {
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
pub(super) fn reduction_split(n: usize) -> (usize, usize) {
    let size = n.div_ceil(REDUCTION_CHUNKS).max(1);
    (n.div_ceil(size), size)
}
