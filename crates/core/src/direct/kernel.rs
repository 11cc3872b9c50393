//! The two products of [`super`], written once against [`Vector`] and tiled: a tile holds
//! `MR × NV` accumulator vectors in registers (`MR` rows broadcast from `a`, `NV` vectors of `b`
//! along `n`), sized per instruction set by [`Tiles`].

use super::vector::Vector;

/// Most vectors a tile spans along `n`.
const NV_MAX: usize = 4;

/// [`super::gemm_rows`] after its checks, as raw parts.
pub(super) struct Rows<'a, T> {
    /// `a[l·lda + i]` is `A[i, l]`.
    pub(super) a: *const T,
    pub(super) lda: usize,
    pub(super) b: *const T,
    /// Row `l` of `B` in segment `s` starts at `b_starts[l] + s·b_step`.
    pub(super) b_starts: &'a [usize],
    pub(super) b_step: usize,
    pub(super) c: *mut T,
    /// Row `i` of `C` in segment `s` starts at `c_starts[i] + s·c_step`.
    pub(super) c_starts: &'a [usize],
    pub(super) c_step: usize,
    pub(super) n: usize,
    pub(super) segments: usize,
    pub(super) start: Start<T>,
}

/// What the sums of [`rows`] start from.
#[derive(Clone, Copy)]
pub(super) enum Start<T> {
    /// Zero: `C` is overwritten.
    Zero,
    /// `C`'s own value: the product is added to it.
    Output,
    /// `bias[i]` for row `i` of `C` (`m` values from the pointer).
    Bias(*const T),
}

/// [`super::gemm_positions`] after its checks, as raw parts.
pub(super) struct Positions<'a, T> {
    pub(super) a: *const T,
    /// Row `i` of `A` in segment `s` starts at `a_starts[i] + s·a_step`; it has `t_len` values,
    /// `a_stride` apart.
    pub(super) a_starts: &'a [usize],
    pub(super) a_step: usize,
    pub(super) a_stride: usize,
    pub(super) t_len: usize,
    pub(super) segments: usize,
    /// Position `p = s·t_len + t` of `B` is the row at `b + p·ldb`, `n` values.
    pub(super) b: *const T,
    pub(super) ldb: usize,
    pub(super) n: usize,
    /// Row `i` of `C` is at `c + i·ldc`, `n` values.
    pub(super) c: *mut T,
    pub(super) ldc: usize,
}

/// How the columns `0..n` are cut into tiles of at most [`NV_MAX`] vectors: `(j0, vectors,
/// mask of the last vector if it is partial)`.
#[inline(always)]
unsafe fn column_tiles<V: Vector>(
    n: usize,
) -> impl Iterator<Item = (usize, usize, Option<V::Mask>)> {
    let span = NV_MAX * V::LANES;
    (0..n).step_by(span).map(move |j0| {
        let width = (n - j0).min(span);
        let rest = width % V::LANES;
        // SAFETY: `0 < rest < LANES`, the contract of `mask`.
        let tail = (rest != 0).then(|| unsafe { V::mask(rest) });
        (j0, width.div_ceil(V::LANES), tail)
    })
}

/// `C rows (+)= A · B rows`, segment by segment (see [`super::gemm_rows`]).
///
/// # Safety
/// The checks of [`super::gemm_rows`] hold, and the CPU has `V`'s instruction set.
#[inline(always)]
pub(super) unsafe fn rows<V: Tiles>(g: &Rows<'_, V::T>) {
    let m = g.c_starts.len();
    for s in 0..g.segments {
        // SAFETY: the iterator only builds masks.
        for (j0, nv, tail) in unsafe { column_tiles::<V>(g.n) } {
            let mut i0 = 0;
            while i0 < m {
                let at = RowsAt {
                    i0,
                    b_off: s * g.b_step + j0,
                    c_off: s * g.c_step + j0,
                };
                // SAFETY: the caller's.
                i0 += unsafe { V::rows_tile(g, &at, nv, m - i0, tail) };
            }
        }
    }
}

/// `C += Σ_positions A · B` (see [`super::gemm_positions`]).
///
/// # Safety
/// The checks of [`super::gemm_positions`] hold, and the CPU has `V`'s instruction set.
#[inline(always)]
pub(super) unsafe fn positions<V: Tiles>(g: &Positions<'_, V::T>) {
    let m = g.a_starts.len();
    // SAFETY: the iterator only builds masks.
    for (j0, nv, tail) in unsafe { column_tiles::<V>(g.n) } {
        let mut i0 = 0;
        while i0 < m {
            // SAFETY: the caller's.
            i0 += unsafe { V::positions_tile(g, i0, j0, nv, m - i0, tail) };
        }
    }
}

/// Where one tile of [`rows`] sits: its first row of `A`/`C`, and the offsets of its columns
/// in `B`'s and `C`'s rows (segment and column start).
#[derive(Clone, Copy)]
pub(super) struct RowsAt {
    i0: usize,
    b_off: usize,
    c_off: usize,
}

/// One tile of [`rows`]: rows `i0..i0 + MR` of `C`, `NV` vectors from column `j0`.
///
/// # Safety
/// As [`rows`], and `i0 + MR ≤ m`.
#[inline(always)]
unsafe fn rows_tile<V: Vector, const MR: usize, const NV: usize>(
    g: &Rows<'_, V::T>,
    at: &RowsAt,
    tail: Option<V::Mask>,
) {
    let lanes = V::LANES;
    // SAFETY (the whole body): every row of B and C touched is inside its buffer (checked by
    // `gemm_rows`), the columns `j0 + v·LANES + lane` touched are below `n` (the last
    // vector is masked), and rows `i0..i0 + MR` exist.
    unsafe {
        // built in one expression: assigning whole rows of `acc` afterwards made LLVM keep the
        // accumulators on the stack (2.3× slower on a 12 × 2 tile, measured)
        let mut acc: [[V; NV]; MR] = std::array::from_fn(|r| {
            [match g.start {
                Start::Bias(bias) => V::splat(bias.add(at.i0 + r)),
                Start::Zero | Start::Output => V::zero(),
            }; NV]
        });
        let a = g.a.add(at.i0);
        for (l, &start) in g.b_starts.iter().enumerate() {
            let bp = g.b.add(start + at.b_off);
            let bv: [V; NV] = std::array::from_fn(|v| {
                let part = if v + 1 == NV { tail } else { None };
                V::load_part(bp.add(v * lanes), part)
            });
            let ap = a.add(l * g.lda);
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = V::splat(ap.add(r));
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = acc.mul_add(x, bv);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let cp = g.c.add(*g.c_starts.get_unchecked(at.i0 + r) + at.c_off);
            for (v, &acc) in acc.iter().enumerate() {
                let part = if v + 1 == NV { tail } else { None };
                let p = cp.add(v * lanes);
                let out = match g.start {
                    Start::Output => V::load_part(p, part).add(acc),
                    Start::Zero | Start::Bias(_) => acc,
                };
                out.store_part(p, part);
            }
        }
    }
}

/// One tile of [`positions`]: rows `i0..i0 + MR` of `C`, `NV` vectors from column `j0`,
/// summed over every position.
///
/// # Safety
/// As [`positions`], and `i0 + MR ≤ m`.
#[inline(always)]
unsafe fn positions_tile<V: Vector, const MR: usize, const NV: usize>(
    g: &Positions<'_, V::T>,
    i0: usize,
    j0: usize,
    tail: Option<V::Mask>,
) {
    let lanes = V::LANES;
    // SAFETY (the whole body): as `rows_tile`, with the rows of A and the positions of B
    // checked by `gemm_positions`.
    unsafe {
        let mut acc = [[V::zero(); NV]; MR];
        let starts = g.a_starts.get_unchecked(i0..i0 + MR);
        for s in 0..g.segments {
            let ap: [*const V::T; MR] = std::array::from_fn(|r| g.a.add(starts[r] + s * g.a_step));
            let mut bp = g.b.add(s * g.t_len * g.ldb + j0);
            for t in 0..g.t_len {
                let bv: [V; NV] = std::array::from_fn(|v| {
                    let part = if v + 1 == NV { tail } else { None };
                    V::load_part(bp.add(v * lanes), part)
                });
                let at = t * g.a_stride;
                for (acc, ap) in acc.iter_mut().zip(&ap) {
                    let x = V::splat(ap.add(at));
                    for (acc, &bv) in acc.iter_mut().zip(&bv) {
                        *acc = acc.mul_add(x, bv);
                    }
                }
                bp = bp.add(g.ldb);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let cp = g.c.add((i0 + r) * g.ldc + j0);
            for (v, &acc) in acc.iter().enumerate() {
                let part = if v + 1 == NV { tail } else { None };
                let p = cp.add(v * lanes);
                V::load_part(p, part).add(acc).store_part(p, part);
            }
        }
    }
}

/// The tile shapes of one vector type: for each count of vectors `NV` along `n`, the rows `MR`
/// a tile may take, largest first (the last is 1, so every remainder is covered). The shapes
/// keep the `MR × NV` accumulators, the `NV` vectors of `b` and a broadcast in the vector
/// registers (32 with AVX-512, 16 otherwise), and, for [`positions`], the `MR` row pointers
/// of `a` in the general-purpose ones.
pub(super) trait Tiles: Vector {
    /// Runs the largest [`rows`] tile that fits `left` rows; returns its rows.
    ///
    /// # Safety
    /// As [`rows_tile`], `1 ≤ nv ≤ NV_MAX`, `left ≥ 1`.
    unsafe fn rows_tile(
        g: &Rows<'_, Self::T>,
        at: &RowsAt,
        nv: usize,
        left: usize,
        tail: Option<Self::Mask>,
    ) -> usize;

    /// Runs the largest [`positions`] tile that fits `left` rows; returns its rows.
    ///
    /// # Safety
    /// As [`positions_tile`], `1 ≤ nv ≤ NV_MAX`, `left ≥ 1`.
    unsafe fn positions_tile(
        g: &Positions<'_, Self::T>,
        i0: usize,
        j0: usize,
        nv: usize,
        left: usize,
        tail: Option<Self::Mask>,
    ) -> usize;
}

/// Implements [`Tiles`] from the shape tables `nv => [MR, …]` of each product.
macro_rules! tiles {
    ($($v:ty),+ ; rows $rows:tt ; positions $pos:tt) => {$(
        impl Tiles for $v {
            #[inline(always)]
            unsafe fn rows_tile(
                g: &Rows<'_, Self::T>,
                at: &RowsAt,
                nv: usize,
                left: usize,
                tail: Option<Self::Mask>,
            ) -> usize {
                tiles!(@pick nv, left, $rows, |MR, NV| {
                    // SAFETY: the caller's; the tile takes MR ≤ left rows.
                    unsafe { rows_tile::<Self, MR, NV>(g, at, tail) }
                })
            }

            #[inline(always)]
            unsafe fn positions_tile(
                g: &Positions<'_, Self::T>,
                i0: usize,
                j0: usize,
                nv: usize,
                left: usize,
                tail: Option<Self::Mask>,
            ) -> usize {
                tiles!(@pick nv, left, $pos, |MR, NV| {
                    // SAFETY: the caller's; the tile takes MR ≤ left rows.
                    unsafe { positions_tile::<Self, MR, NV>(g, i0, j0, tail) }
                })
            }
        }
    )+};
    (@pick $nv:ident, $left:ident, [$($n:literal => [$($mr:literal),+]),+],
     |$MR:ident, $NV:ident| $call:expr) => {
        match $nv {
            $($n => {
                $(if $left >= $mr {
                    const $MR: usize = $mr;
                    const $NV: usize = $n;
                    $call;
                    return $mr;
                })+
                unreachable!("a table ends with 1 row")
            })+
            _ => unreachable!("at most NV_MAX vectors"),
        }
    };
}

// 32 vector registers: up to 24 accumulators (the positions tiles also keep ≤ 8 row pointers).
#[cfg(target_arch = "x86_64")]
tiles!(super::vector::Avx512F32, super::vector::Avx512F64;
    rows [1 => [16, 8, 4, 2, 1], 2 => [12, 8, 4, 2, 1], 3 => [8, 4, 2, 1], 4 => [6, 4, 2, 1]];
    positions [1 => [8, 4, 2, 1], 2 => [8, 4, 2, 1], 3 => [6, 4, 2, 1], 4 => [6, 4, 2, 1]]);

// 16 vector registers: at most 12 accumulators, the b vectors and a broadcast beside them.
#[cfg(target_arch = "x86_64")]
tiles!(super::vector::Avx2F32, super::vector::Avx2F64;
    rows [1 => [12, 8, 4, 2, 1], 2 => [6, 4, 2, 1], 3 => [4, 2, 1], 4 => [2, 1]];
    positions [1 => [8, 4, 2, 1], 2 => [6, 4, 2, 1], 3 => [4, 2, 1], 4 => [2, 1]]);

tiles!(super::vector::Portable<f32>, super::vector::Portable<f64>;
    rows [1 => [8, 4, 2, 1], 2 => [4, 2, 1], 3 => [2, 1], 4 => [2, 1]];
    positions [1 => [8, 4, 2, 1], 2 => [4, 2, 1], 3 => [2, 1], 4 => [2, 1]]);
