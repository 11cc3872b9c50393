//! The layout a convolution reads its input in (zero-padded, columns split into stride phases),
//! the row tables of the direct products, the per-thread scratch buffers, and how a batch is
//! split.
//!
//! ```text
//! layout of one example: C × H_p × (s_w · W_q)        H_p = H + 2pₕ, W_p = W + 2p_w,
//!                                                     W_q = ⌈W_p / s_w⌉
//! padded (row R, column P) of channel c  →  (c·H_p + R)·s_w·W_q + (P mod s_w)·W_q + ⌊P / s_w⌋
//! ```
//!
//! Kernel tap `(c, u, v)` reads, for output `(oy, ox)`, the padded input at row
//! `oy·sₕ + u·dₕ` and column `ox·s_w + v·d_w`. Writing `v·d_w = q·s_w + r`, that column is phase
//! `r`, index `ox + q`: consecutive in `ox`. So the input under a tap for a whole output row is
//! *one contiguous row* of the layout, starting at
//!
//! ```text
//! tap_start(c, u, v) + oy · sₕ·s_w·W_q,    tap_start = (c·H_p + u·dₕ)·s_w·W_q + r·W_q + q
//! ```
//!
//! and zero padding is real zeros (the layout's borders), so no tap needs a bounds test. For
//! stride 1 the layout is the zero-padded image itself.
//!
//! The input gradient `dL/dx[c, iy, ix] = Σ_{o,u,v} W[o, (c,u,v)] · δ[o, iy + pₕ − u·dₕ,
//! ix + p_w − v·d_w]` of a stride-1 convolution is itself a convolution, of `δ` zero-padded by
//! the kernel's span (`top = dₕ(kh − 1)`, `left = d_w(kw − 1)`) with the kernels rearranged as
//! `C_in × (C_out·kh·kw)`: its rows are dx's own rows, each written once. A strided
//! convolution's input gradient is scattered tap by tap into a layout-shaped buffer instead.

use std::ops::Range;

use retroprop_core::Scalar;
use retroprop_core::direct::RowTable;

use super::Conv2dConfig;
use crate::LayerError;

/// Sizes and row tables derived once from a valid configuration.
#[derive(Clone, Debug)]
pub(super) struct Geometry {
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) ph: usize,
    pub(super) pw: usize,
    kh: usize,
    kw: usize,
    dh: usize,
    dw: usize,
    sh: usize,
    pub(super) sw: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    /// Kernel taps `C_in · kh · kw`: the columns of `W`.
    pub(super) k: usize,
    /// Output positions `H_out · W_out`.
    pub(super) p: usize,
    /// Padded height `H + 2pₕ`.
    hp: usize,
    /// Length of a phase of a layout row: `⌈(W + 2p_w) / s_w⌉`.
    wq: usize,
    /// Where each tap's row for output row 0 starts in the layout (tap order `(c, u, v)`, the
    /// columns of `W`).
    taps: Vec<usize>,
    /// Where each output channel's plane starts in an example's output: `o · P`.
    planes: Vec<usize>,
    /// Layout values between the rows of two consecutive output rows: `sₕ · s_w · W_q`.
    row_step: usize,
    /// The taps in `(v, c, u)` order (`tap_order`) and where their rows start (`taps_by_column`):
    /// taps with one `v` never share a row within a segment, so the strided input gradient's
    /// tiles never write overlapping rows.
    tap_order: Vec<usize>,
    taps_by_column: Vec<usize>,
    /// Height and width of the padded output gradient of the stride-1 input gradient.
    hd: usize,
    wd: usize,
    /// Where the padded output gradient's row under each `(o, u, v)` starts for input row 0.
    back_taps: Vec<usize>,
    /// Where each input channel's plane starts in an example's input: `c · H · W`.
    in_planes: Vec<usize>,
}

impl Geometry {
    pub(super) fn new(cfg: &Conv2dConfig) -> Result<Self, LayerError> {
        let (oh, ow) = cfg.output_size()?;
        let (c, h, w) = (cfg.in_channels, cfg.input.h, cfg.input.w);
        let (kh, kw) = (cfg.kernel.h, cfg.kernel.w);
        // a stride only matters with two or more outputs along its axis, and is then below the
        // padded size (so the layout stays under 2·W_p per row); with one output it is taken
        // as 1
        let (sh, sw) = (
            if oh > 1 { cfg.stride.h } else { 1 },
            if ow > 1 { cfg.stride.w } else { 1 },
        );
        let (dh, dw) = (cfg.dilation.h, cfg.dilation.w);
        let (ph, pw) = (cfg.padding.h, cfg.padding.w);
        let hp = h + 2 * ph;
        let wq = (w + 2 * pw).div_ceil(sw);
        let rl = sw * wq;
        let mut taps = Vec::with_capacity(c * kh * kw);
        for ch in 0..c {
            for u in 0..kh {
                for v in 0..kw {
                    let (q, r) = ((v * dw) / sw, (v * dw) % sw);
                    taps.push((ch * hp + u * dh) * rl + r * wq + q);
                }
            }
        }
        let p = oh * ow;
        let tap_order: Vec<usize> = (0..kw)
            .flat_map(|v| (0..c).flat_map(move |ch| (0..kh).map(move |u| (ch * kh + u) * kw + v)))
            .collect();
        let taps_by_column = tap_order.iter().map(|&t| taps[t]).collect();
        let (hd, wd) = (
            h + ph + ph.max(dh * (kh - 1)),
            w + pw + pw.max(dw * (kw - 1)),
        );
        let mut back_taps = Vec::with_capacity(cfg.out_channels * kh * kw);
        for o in 0..cfg.out_channels {
            for u in 0..kh {
                for v in 0..kw {
                    back_taps.push((o * hd + ph + dh * (kh - 1 - u)) * wd + pw + dw * (kw - 1 - v));
                }
            }
        }
        Ok(Self {
            c,
            h,
            w,
            ph,
            pw,
            kh,
            kw,
            dh,
            dw,
            sh,
            sw,
            oh,
            ow,
            k: taps.len(),
            p,
            hp,
            wq,
            taps,
            planes: (0..cfg.out_channels).map(|o| o * p).collect(),
            row_step: sh * rl,
            tap_order,
            taps_by_column,
            hd,
            wd,
            back_taps,
            in_planes: (0..c).map(|ch| ch * h * w).collect(),
        })
    }

    pub(super) fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Values in the layout of one example.
    pub(super) fn layout_len(&self) -> usize {
        self.c * self.hp * self.sw * self.wq
    }

    /// The rows of the layout under each tap, one segment per output row: `B` of the forward
    /// product, `A` of the weight gradient's, `C` of the input gradient's.
    pub(super) fn tap_rows(&self) -> RowTable<'_> {
        RowTable::new(&self.taps, self.row_step)
    }

    /// The output rows of each channel, one segment per output row: `C` of the forward
    /// product, `B` (the output gradient) of the input gradient's.
    pub(super) fn plane_rows(&self) -> RowTable<'_> {
        RowTable::new(&self.planes, self.ow)
    }

    /// The columns of an input row in phase `r` of its layout row: the first input column
    /// `ix₀` whose padded column `ix₀ + p_w` is `≡ r (mod s_w)`, and where `ix₀` lands in the
    /// layout row; the phase then holds `ix₀, ix₀ + s_w, …` contiguously.
    #[inline(always)]
    fn phase(&self, r: usize) -> (usize, usize) {
        let ix0 = (r + self.sw - self.pw % self.sw) % self.sw;
        (ix0, r * self.wq + (ix0 + self.pw) / self.sw)
    }

    /// Where input row `iy` of channel `ch` starts in the layout.
    #[inline(always)]
    fn row(&self, ch: usize, iy: usize) -> usize {
        (ch * self.hp + iy + self.ph) * self.sw * self.wq
    }

    /// Calls `f(input row, layout row start)` for every input row of one example.
    #[inline(always)]
    fn each_row(&self, mut f: impl FnMut(Range<usize>, usize)) {
        for ch in 0..self.c {
            for iy in 0..self.h {
                let at = (ch * self.h + iy) * self.w;
                f(at..at + self.w, self.row(ch, iy));
            }
        }
    }

    /// Copies example `x` into `layout` (of [`Geometry::layout_len`] values, zeroed when it was
    /// allocated: the padding is never written, so it stays zero).
    #[inline(always)]
    pub(super) fn load<T: Scalar>(&self, x: &[T], layout: &mut [T]) {
        match self.sw {
            1 => self.each_row(|src, at| {
                layout[at + self.pw..at + self.pw + self.w].copy_from_slice(&x[src]);
            }),
            2 => self.load_phased::<2, T>(x, layout),
            _ => self.each_row(|src, at| {
                for r in 0..self.sw {
                    let (ix0, to) = self.phase(r);
                    let from = x[src.clone()].get(ix0..).unwrap_or_default();
                    for (d, &v) in layout[at + to..]
                        .iter_mut()
                        .zip(from.iter().step_by(self.sw))
                    {
                        *d = v;
                    }
                }
            }),
        }
    }

    /// [`Geometry::load`] for a stride `S` known at compile time: each group of `S` input
    /// columns `kS..kS + S` goes to slot `k` (+ an offset) of the `S` phases, a de-interleave
    /// the compiler vectorises.
    #[inline(always)]
    fn load_phased<const S: usize, T: Scalar>(&self, x: &[T], layout: &mut [T]) {
        // column kS + r is padded column kS + r + p_w: phase (r + p_w) mod S, slot k + ⌊(r + p_w)/S⌋
        let to: [usize; S] =
            std::array::from_fn(|r| ((r + self.pw) % S) * self.wq + (r + self.pw) / S);
        self.each_row(|src, at| {
            let row = &x[src];
            let groups = row.chunks_exact(S);
            let tail = groups.remainder();
            for (k, group) in groups.enumerate() {
                for r in 0..S {
                    layout[at + to[r] + k] = group[r];
                }
            }
            let k = row.len() / S;
            for (r, &v) in tail.iter().enumerate() {
                layout[at + to[r] + k] = v;
            }
        });
    }

    /// The adjoint of [`Geometry::load`]: adds the interior of a layout-shaped gradient into
    /// the example's `dx` (the padding's share is dropped).
    #[inline(always)]
    pub(super) fn unload_add<T: Scalar>(&self, dlayout: &[T], dx: &mut [T]) {
        if self.sw == 1 {
            self.each_row(|dst, at| {
                let src = &dlayout[at + self.pw..at + self.pw + self.w];
                for (d, &s) in dx[dst].iter_mut().zip(src) {
                    *d += s;
                }
            });
        } else {
            self.each_row(|dst, at| {
                for r in 0..self.sw {
                    let (ix0, from) = self.phase(r);
                    let to = dx[dst.clone()].get_mut(ix0..).unwrap_or_default();
                    for (d, &v) in to.iter_mut().step_by(self.sw).zip(&dlayout[at + from..]) {
                        *d += v;
                    }
                }
            });
        }
    }
}

/// The input gradient's two forms (see the module docs).
impl Geometry {
    /// Whether the input gradient is the stride-1 transposed convolution (both strides 1, or
    /// one output along the axis).
    pub(super) fn transposed(&self) -> bool {
        self.sh == 1 && self.sw == 1
    }

    /// Values in one example's padded output gradient (stride 1).
    pub(super) fn delta_layout_len(&self, c_out: usize) -> usize {
        c_out * self.hd * self.wd
    }

    /// Copies one example's output gradient `δ` (`C_out × P`) into the interior of `dlayout`
    /// (zeroed when allocated; the borders are never written).
    #[inline(always)]
    pub(super) fn load_delta<T: Scalar>(&self, delta: &[T], dlayout: &mut [T]) {
        let (top, left) = (self.dh * (self.kh - 1), self.dw * (self.kw - 1));
        for (o, plane) in delta.chunks_exact(self.p).enumerate() {
            for (oy, row) in plane.chunks_exact(self.ow).enumerate() {
                let at = (o * self.hd + top + oy) * self.wd + left;
                dlayout[at..at + self.ow].copy_from_slice(row);
            }
        }
    }

    /// The kernels as the stride-1 input gradient's `A`: `C_in × (C_out·kh·kw)`, column-major,
    /// `A[c, (o, u, v)] = W[o, (c, u, v)]`.
    pub(super) fn transposed_kernels<T: Scalar>(&self, w: &[T], c_out: usize) -> Vec<T> {
        let taps = self.kh * self.kw;
        let mut a = Vec::with_capacity(self.c * c_out * taps);
        for o in 0..c_out {
            for uv in 0..taps {
                a.extend((0..self.c).map(|c| w[(c * taps + uv) * c_out + o]));
            }
        }
        a
    }

    /// The rows of the padded output gradient under each `(o, u, v)`, one segment per input
    /// row: `B` of the stride-1 input gradient.
    pub(super) fn back_rows(&self) -> RowTable<'_> {
        RowTable::new(&self.back_taps, self.wd)
    }

    /// The rows of each input channel, one segment per input row: `C` of the stride-1 input
    /// gradient.
    pub(super) fn input_rows(&self) -> RowTable<'_> {
        RowTable::new(&self.in_planes, self.w)
    }

    /// `Wᵀ` with its rows (the taps) in `(v, c, u)` order: `K × C_out`, column-major — `A` of
    /// the strided input gradient, whose `C` is [`Geometry::tap_rows_by_column`].
    pub(super) fn kernels_by_column<T: Scalar>(&self, w: &[T], c_out: usize) -> Vec<T> {
        let mut a = Vec::with_capacity(self.k * c_out);
        for o in 0..c_out {
            a.extend(self.tap_order.iter().map(|&t| w[t * c_out + o]));
        }
        a
    }

    /// [`Geometry::tap_rows`] in the `(v, c, u)` order of [`Geometry::kernels_by_column`].
    pub(super) fn tap_rows_by_column(&self) -> RowTable<'_> {
        RowTable::new(&self.taps_by_column, self.row_step)
    }
}

/// Per-chunk work buffers, reused across calls.
#[derive(Clone, Debug, Default)]
pub(super) struct Scratch<T> {
    /// One example in the layout (inference: the training forward keeps every example's).
    pub(super) layout: Vec<T>,
    /// Backward with `dL/dx` only: one example's padded output gradient (stride 1), or its
    /// input gradient in the layout (strided).
    pub(super) dlayout: Vec<T>,
    /// One example's output gradient transposed, `P × C_out` (backward).
    pub(super) grad_t: Vec<T>,
}

/// Splits `n` examples into at most one contiguous chunk per rayon thread: `(chunks, size)`.
/// For the forward pass, where every example is computed on its own (no sum across examples),
/// so any split gives the same bits.
pub(super) fn split(n: usize) -> (usize, usize) {
    let threads = rayon::current_num_threads().max(1);
    let size = n.div_ceil(threads).max(1);
    (n.div_ceil(size), size)
}

/// Chunks of the backward pass's sum over examples (`dL/dW = Σᵢ δᵢ xᵢᵀ`): the batch is cut
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
