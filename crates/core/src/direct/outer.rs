//! A dense layer's weight gradient `dL/dW += δ xᵀ` on the direct kernels: no packing, and
//! split over the team by halves of `W`'s columns.
//!
//! Column `l` of `δ xᵀ` is `Σ_t x[l, t] · (column t of δ)`: a sum of contiguous columns of `δ`
//! weighted by row `l` of `x` — the product [`gemm_positions`](super::gemm_positions) computes,
//! with `x`'s rows read down its columns (`x[l, t]` at `l + t·k`, so `x` is not transposed) and
//! `δ`'s columns as the vectors. The examples are taken in blocks of [`T_BLOCK`], so that a
//! tile's slice of the block of `δ` stays in L1; each block of `δ` is read from a copy that
//! starts on a cache line ([`aligned`]) when enough rows of `x` share it.
//!
//! Every entry is its previous value plus, block after block, the block's sum over its
//! examples in their order — `((dW + Σ_{t<128}) + Σ_{128≤t<256}) + …` — whichever thread
//! computes it: the bits do not depend on the thread count. Each thread computes a half of
//! `W`'s columns, the half an optimizer's update of `W` hands to the same core
//! (`split::halves`), so the gradient does not cross between the cores before the update.

use std::ops::Range;

use nalgebra::DMatrix;

use super::{aligned, gemm_down_columns, matrix::blocks};
use crate::Scalar;
use crate::gemm::parts_for;
use crate::split::{Chunks, in_parts};

/// Examples per block: a tile's slice of a block of `δ` (64 rows × 128 examples, 32 KB in
/// `f32`) stays in a core's L1 cache while the tiles of `x`'s rows sweep it.
const T_BLOCK: usize = 128;

/// Fewest rows of `x` (columns of `c`) for which a part reads `δ`'s blocks from an aligned copy.
/// Each value of a block is loaded once per tile of rows (at most 8), so with few rows the copy
/// costs more than the straddling loads it saves: `x δᵀ` of a 256 → 10 layer at 1 000
/// examples (10 rows), one core, 64 → 39 µs without the copy (measured).
const REALIGN_MIN_ROWS: usize = 32;

/// `c ← c + d xᵀ` for column-major `c: m × k`, `d: m × n` and `x: k × n` — a dense layer's
/// weight gradient `dL/dW += δ xᵀ` (`δ = dL/dh^a`, one column per example). Each entry adds
/// its sum over the examples in blocks of 128, in their order: `((dW + Σ_{t<128}) + Σ_{128≤t<256}) + …`,
/// each entry on one thread, so the bits do not depend on the thread count.
///
/// ```
/// use nalgebra::DMatrix;
/// use retroprop_core::direct::add_outer;
///
/// let d = DMatrix::from_row_slice(2, 3, &[1.0_f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
/// let x = DMatrix::from_row_slice(1, 3, &[1.0_f32, 0.0, -1.0]);
/// let mut grad = DMatrix::from_element(2, 1, 10.0_f32);
/// add_outer(&mut grad, &d, &x);
/// assert_eq!(grad, DMatrix::from_column_slice(2, 1, &[8.0, 8.0])); // 10 + (1 − 3), 10 + (4 − 6)
/// ```
///
/// # Panics
/// If the shapes do not chain — a bug in the caller.
pub fn add_outer<T: Scalar>(c: &mut DMatrix<T>, d: &DMatrix<T>, x: &DMatrix<T>) {
    assert!(
        x.ncols() == d.ncols() && c.shape() == (d.nrows(), x.nrows()),
        "add_outer: shapes do not chain"
    );
    add_outer_on(c, d, x, crate::team::threads());
}

/// [`add_outer`] cut for `threads` threads (the bits do not depend on it).
fn add_outer_on<T: Scalar>(c: &mut DMatrix<T>, d: &DMatrix<T>, x: &DMatrix<T>, threads: usize) {
    let (m, n, k) = (d.nrows(), d.ncols(), x.nrows());
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let parts = parts_for(m * k * n, threads);
    let work = (
        Chunks {
            data: c.as_mut_slice(),
            size: m,
        },
        0..k,
    );
    in_parts(work, &|(c, ls)| add_columns(c.data, ls, d, x), parts);
}

/// Columns `ls` of `c` (which `c` holds exactly) `+= d · x[ls, :]ᵀ`.
fn add_columns<T: Scalar>(c: &mut [T], ls: Range<usize>, d: &DMatrix<T>, x: &DMatrix<T>) {
    let (m, k) = (d.nrows(), x.nrows());
    // the copy aligns every column of δ only when a column is whole lines long
    let realign = m.is_multiple_of(aligned::lanes::<T>()) && ls.len() >= REALIGN_MIN_ROWS;
    // row l of x (l in ls) starts at l − ls.start in each block's slice below
    let rows: Vec<usize> = (0..ls.len()).collect();
    for block in blocks(0..d.ncols(), T_BLOCK) {
        let d_block = &d.as_slice()[block.start * m..block.end * m];
        // x[l, t] for l in ls and t in the block, at l − ls.start + (t − block.start)·k
        let x_block = &x.as_slice()[block.start * k + ls.start..];
        let mut add = |d_block: &[T]| {
            gemm_down_columns(x_block, &rows, k, block.len(), d_block, m, c, m, m);
        };
        if realign && !aligned::is_aligned(d_block) {
            aligned::with_copy(d_block, add);
        } else {
            add(d_block);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direct::tests::{SHAPES, random};
    use crate::rng::Rng;

    /// With integer operands every order of the sums is exact: the result equals nalgebra's.
    fn matches_nalgebra<T: Scalar>() {
        let mut rng = Rng::new(5);
        for (m, k, n) in SHAPES {
            let d = random::<T>(&mut rng, m, n, true);
            let x = random::<T>(&mut rng, k, n, true);
            let mut c = random::<T>(&mut rng, m, k, true);
            let want = &c + &d * x.transpose();
            add_outer(&mut c, &d, &x);
            assert_eq!(c, want, "{m}×{k}×{n}");
        }
    }

    #[test]
    fn add_outer_is_c_plus_d_x_transposed_in_f32_and_f64() {
        matches_nalgebra::<f32>();
        matches_nalgebra::<f64>();
    }

    #[test]
    fn the_bits_do_not_depend_on_the_thread_count() {
        // non-integer values: a different order of any sum would change the last bits
        let mut rng = Rng::new(17);
        for (m, k, n) in SHAPES {
            let d = random::<f32>(&mut rng, m, n, false);
            let x = random::<f32>(&mut rng, k, n, false);
            let start = random::<f32>(&mut rng, m, k, false);
            let mut one = start.clone();
            add_outer_on(&mut one, &d, &x, 1);
            for threads in [2, 3, 4, 8] {
                let mut many = start.clone();
                add_outer_on(&mut many, &d, &x, threads);
                assert_eq!(many, one, "{threads} threads, {m}×{k}×{n}");
            }
            // the definition's order, column by column of W: each block's sum over its
            // examples (by the kernel alone), added in turn
            let mut want = start.clone();
            for l in 0..k {
                for block in blocks(0..n, T_BLOCK) {
                    gemm_down_columns(
                        &x.as_slice()[block.start * k + l..],
                        &[0],
                        k,
                        block.len(),
                        &d.as_slice()[block.start * m..],
                        m,
                        &mut want.as_mut_slice()[l * m..(l + 1) * m],
                        m,
                        m,
                    );
                }
            }
            assert_eq!(one, want, "the blocks' order, {m}×{k}×{n}");
        }
    }

    #[test]
    fn shapes_that_do_not_chain_are_refused() {
        let refused = |f: &mut dyn FnMut()| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err()
        };
        let (d, x) = (DMatrix::<f64>::zeros(2, 3), DMatrix::<f64>::zeros(4, 5));
        assert!(refused(&mut || add_outer(
            &mut DMatrix::zeros(2, 4),
            &d,
            &x
        )));
        let x = DMatrix::<f64>::zeros(4, 3);
        assert!(refused(&mut || add_outer(
            &mut DMatrix::zeros(4, 2),
            &d,
            &x
        )));
        let mut c = DMatrix::from_element(2, 4, 1.0);
        add_outer(&mut c, &d, &x);
        assert_eq!(c, DMatrix::from_element(2, 4, 1.0));
    }
}
