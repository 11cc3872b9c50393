//! A dense layer's `h^a = W x + b` on the direct kernels: no packing, and split over the team
//! without duplicating any work.
//!
//! Column `j` of a column-major product `W x` is `Σ_l x[l, j] · (column l of W)`: a sum of
//! contiguous columns of `W` weighted by the contiguous column `j` of `x` — the product
//! [`gemm_positions`] computes with the columns of `x` as its rows of `A` and the columns of `W`
//! as its rows of `B`. Every operand is read where it lies. A library GEMM packs both operands
//! into panels first; for a dense layer at training batch sizes (784 × 256 weights against 128
//! examples) that copying costs a fifth of the multiplications, and on two cores each part of
//! a split product packs the operand the parts share once more. Here the columns (examples)
//! are cut between the threads, and a thread reads only the columns of `x` it needs.
//!
//! Every entry is the bias plus one sum over `l` in the order of `l`, computed by one thread:
//! the bits do not depend on the thread count or on where the columns were cut.

use std::ops::Range;

use nalgebra::DMatrix;

use super::{RowTable, gemm_positions};
use crate::Scalar;
use crate::gemm::PAR_MIN_MACS;
use crate::split::{Chunks, in_parts};

/// Columns of the output computed per call of the kernel: with 784 input features, 64 columns
/// of `x` are 200 KB, which stay in the core's L2 cache beside the slice of `W` that a tile
/// sweeps (the kernel runs over all of them for each slice of `W`'s rows).
const COLUMN_BLOCK: usize = 64;

/// `a · b + bias 1ᵀ` for column-major `a: m × k`, `b: k × n` and `m` bias values — a dense
/// layer's `h^a = W x + b` — each entry `bias[i] + Σ_l a[i, l] · b[l, j]`, the sum taken in the
/// order of `l` and then added to the bias.
///
/// Each thread writes the bias into the columns it then computes, so no column of the output
/// is first written on one core and then read on another.
///
/// # Panics
/// If the shapes do not chain or `bias` does not have `m` values — a bug in the caller.
pub fn affine<T: Scalar>(a: &DMatrix<T>, b: &DMatrix<T>, bias: &[T]) -> DMatrix<T> {
    let ((m, k), n) = (a.shape(), b.ncols());
    assert!(
        b.nrows() == k && bias.len() == m,
        "affine: shapes do not chain"
    );
    let mut data: Vec<T> = Vec::with_capacity(m * n);
    if m > 0 {
        let columns = Columns::new(a, b);
        let out = &mut data.spare_capacity_mut()[..m * n];
        let work = (Chunks { data: out, size: m }, 0..n);
        in_parts(
            work,
            &|(c, cols)| {
                let c = c.data;
                for column in c.chunks_exact_mut(m) {
                    for (v, &b) in column.iter_mut().zip(bias) {
                        v.write(b);
                    }
                }
                // SAFETY: every value of `c` was written just above, and `MaybeUninit<T>` has the
                // layout of `T`.
                let c = unsafe { &mut *(std::ptr::from_mut(c) as *mut [T]) };
                columns.add_to(c, cols);
            },
            parts(m * k * n),
        );
    }
    // SAFETY: the `m · n` values were written by the parts (each column by one part); with
    // `m = 0` there are none.
    unsafe { data.set_len(m * n) };
    DMatrix::from_vec(m, n, data)
}

/// The operands of a product whose columns of `c` are computed in blocks.
struct Columns<'a, T> {
    a: &'a [T],
    m: usize,
    k: usize,
    b: &'a [T],
    /// `j·k` for the columns of a block: where each column of `b` starts.
    starts: Vec<usize>,
}

impl<'a, T: Scalar> Columns<'a, T> {
    fn new(a: &'a DMatrix<T>, b: &'a DMatrix<T>) -> Self {
        let (m, k) = a.shape();
        let starts = (0..COLUMN_BLOCK.min(b.ncols())).map(|j| j * k).collect();
        Self {
            a: a.as_slice(),
            m,
            k,
            b: b.as_slice(),
            starts,
        }
    }

    /// `c += a · b[.., cols]` for the columns `cols` of the product (`c` holds exactly those).
    fn add_to(&self, c: &mut [T], cols: Range<usize>) {
        let (m, k) = (self.m, self.k);
        if m == 0 || k == 0 {
            return;
        }
        for (block, c) in blocks(cols, COLUMN_BLOCK).zip(c.chunks_mut(COLUMN_BLOCK * m)) {
            // column j of c (m values) += Σ_l b[l, j] · column l of a
            gemm_positions(
                &self.b[block.start * k..block.end * k],
                RowTable::new(&self.starts[..block.len()], 0),
                k,
                1,
                self.a,
                m,
                c,
                m,
                m,
            );
        }
    }
}

/// How many threads a product of `macs` multiply-adds is cut for.
fn parts(macs: usize) -> usize {
    if macs < PAR_MIN_MACS {
        1
    } else {
        crate::team::threads().min(macs / (PAR_MIN_MACS / 2))
    }
}

/// `range` cut into consecutive blocks of at most `size`.
fn blocks(range: Range<usize>, size: usize) -> impl Iterator<Item = Range<usize>> {
    range
        .clone()
        .step_by(size)
        .map(move |start| start..(start + size).min(range.end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random<T: Scalar>(rng: &mut Rng, rows: usize, cols: usize, integers: bool) -> DMatrix<T> {
        DMatrix::from_fn(rows, cols, |_, _| {
            let v = rng.uniform(-4.5, 4.5);
            T::lit(if integers { v.round() } else { v })
        })
    }

    /// `(m, k, n)` around the tiles (16-wide vectors, up to 4 per tile, up to 8 rows), the column
    /// block (64) and the split threshold (2²⁰ multiply-adds).
    const SHAPES: [(usize, usize, usize); 8] = [
        (1, 1, 1),
        (3, 5, 2),
        (0, 4, 3),
        (10, 256, 128),
        (17, 33, 65),
        (256, 784, 40),
        (70, 1030, 20),
        (130, 300, 129),
    ];

    /// With integer operands every order of the sums is exact: the result equals nalgebra's.
    fn matches_nalgebra<T: Scalar>() {
        let mut rng = Rng::new(7);
        for (m, k, n) in SHAPES {
            let a = random::<T>(&mut rng, m, k, true);
            let b = random::<T>(&mut rng, k, n, true);
            let bias = random::<T>(&mut rng, m, 1, true);
            let want = &a * &b + DMatrix::from_fn(m, n, |i, _| bias[i]);
            assert_eq!(affine(&a, &b, bias.as_slice()), want, "{m}×{k}×{n}");
        }
    }

    #[test]
    fn affine_is_w_x_plus_b_in_f32_and_f64() {
        matches_nalgebra::<f32>();
        matches_nalgebra::<f64>();
    }

    #[test]
    fn the_bits_do_not_depend_on_the_split() {
        // non-integer values: a different order of any sum would change the last bits; each
        // column summed alone, in order, then added to the bias, is the definition
        let mut rng = Rng::new(11);
        for (m, k, n) in SHAPES {
            let a = random::<f32>(&mut rng, m, k, false);
            let b = random::<f32>(&mut rng, k, n, false);
            let bias = random::<f32>(&mut rng, m, 1, false);
            let whole = affine(&a, &b, bias.as_slice());
            let columns = Columns::new(&a, &b);
            for parts in [1, 2, 3, 4, 8] {
                let mut split = DMatrix::from_fn(m, n, |i, _| bias[i]);
                let work = (
                    Chunks {
                        data: split.as_mut_slice(),
                        size: m,
                    },
                    0..n,
                );
                in_parts(work, &|(c, cols)| columns.add_to(c.data, cols), parts);
                assert_eq!(split, whole, "{parts} parts, {m}×{k}×{n}");
            }
            let mut by_column = DMatrix::from_fn(m, n, |i, _| bias[i]);
            for j in 0..n {
                let column = &mut by_column.as_mut_slice()[j * m..(j + 1) * m];
                columns.add_to(column, j..j + 1);
            }
            assert_eq!(by_column, whole, "column by column, {m}×{k}×{n}");
        }
    }

    #[test]
    fn shapes_that_do_not_chain_are_refused() {
        let (a, b) = (DMatrix::<f64>::zeros(2, 3), DMatrix::<f64>::zeros(4, 5));
        let refused = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        assert!(refused(&|| drop(affine(&a, &b, &[0.0; 2]))).is_err());
        let b = DMatrix::<f64>::zeros(3, 5);
        assert!(refused(&|| drop(affine(&a, &b, &[0.0; 3]))).is_err());
        assert_eq!(affine(&a, &b, &[1.0; 2]), DMatrix::from_element(2, 5, 1.0));
    }
}
