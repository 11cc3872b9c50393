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
//! Every entry is the bias plus a sum over `l` in the order of `l` — for a training batch, two
//! sums over fixed halves of `l`, added (see [`affine`]) — each sum computed by one thread: the
//! bits do not depend on the thread count or on where the columns were cut.

use std::ops::Range;

use nalgebra::DMatrix;

use super::{RowTable, aligned, gemm_positions};
use crate::Scalar;
use crate::gemm::{PAR_MIN_MACS, parts_for};
use crate::split::{self, Chunks, in_parts};

/// Columns of the output computed per call of the kernel: with 784 input features, 64 columns
/// of `x` are 200 KB, which stay in the core's L2 cache beside the slice of `W` that a tile
/// sweeps (the kernel runs over all of them for each slice of `W`'s rows).
const COLUMN_BLOCK: usize = 64;

/// Output columns from which [`Columns::realigned`] copies the weights: the copy costs about a
/// tenth of a cycle per weight, against a fifth of the `n / 64` cycles each weight's
/// multiply-adds take at the full rate.
const REALIGN_MIN_COLUMNS: usize = 32;

/// `a · b + bias 1ᵀ` for column-major `a: m × k`, `b: k × n` and `m` bias values — a dense
/// layer's `h^a = W x + b`. Each entry is `bias[i] + Σ_l a[i, l] · b[l, j]` summed in the
/// order of `l`; for a product of at least 2²⁰ multiply-adds with fewer columns than terms
/// (`n < k`) the sum is taken in two halves of `l`, `(bias[i] + Σ_{l < k/2}) + Σ_{l ≥ k/2}`,
/// whatever the thread count.
///
/// The halves of `l` are the halves of `a`'s columns, which is how an optimizer's update of
/// the weights is split between two cores (`split::halves`): each half of the product is
/// computed on the threads whose cores updated that half of `W`, so the 800 KB of a 784 × 256
/// weight matrix do not cross between the cores at every step (measured: a forward pass after
/// such an update took 52 µs longer than without it, on a 200 µs product). Each thread writes
/// the columns it computes first, and the two partial results are added by halves of the
/// examples.
///
/// # Panics
/// If the shapes do not chain or `bias` does not have `m` values — a bug in the caller.
pub fn affine<T: Scalar>(a: &DMatrix<T>, b: &DMatrix<T>, bias: &[T]) -> DMatrix<T> {
    let (m, k) = a.shape();
    assert!(
        b.nrows() == k && bias.len() == m,
        "affine: shapes do not chain"
    );
    affine_on(a, b, bias, crate::team::threads())
}

/// [`affine`] cut for `threads` threads (the bits do not depend on it).
fn affine_on<T: Scalar>(a: &DMatrix<T>, b: &DMatrix<T>, bias: &[T], threads: usize) -> DMatrix<T> {
    let ((m, k), n) = (a.shape(), b.ncols());
    let halves = split_terms(m, k, n);
    let macs_per_sum = if halves { m * k * n / 2 } else { m * k * n };
    let parts = |threads: usize| parts_for(macs_per_sum, threads);
    let mut sum = Vec::with_capacity(m * n);
    let fill = |out: &mut Vec<T>, start: Option<&[T]>, columns: Columns<'_, T>, parts: usize| {
        if m == 0 {
            return;
        }
        columns.realigned(n, |columns| {
            let work = (
                Chunks {
                    data: &mut out.spare_capacity_mut()[..m * n],
                    size: m,
                },
                0..n,
            );
            in_parts(
                work,
                &|(c, cols)| {
                    let c = c.data;
                    for column in c.chunks_exact_mut(m) {
                        match start {
                            Some(bias) => column.iter_mut().zip(bias).for_each(|(v, &b)| {
                                v.write(b);
                            }),
                            None => column.iter_mut().for_each(|v| {
                                v.write(T::zero());
                            }),
                        }
                    }
                    // SAFETY: every value of `c` was written just above, and `MaybeUninit<T>`
                    // has the layout of `T`.
                    let c = unsafe { &mut *(std::ptr::from_mut(c) as *mut [T]) };
                    columns.add_to(c, cols);
                },
                parts,
            );
        });
        // SAFETY: the parts wrote the `m · n` values (each column by one part).
        unsafe { out.set_len(m * n) };
    };
    if halves {
        let (first, second) = (Columns::new(a, b, 0..k / 2), Columns::new(a, b, k / 2..k));
        let mut rest = Vec::with_capacity(m * n);
        crate::team::join(
            || fill(&mut sum, Some(bias), first, parts(threads - threads / 2)),
            || fill(&mut rest, None, second, parts(threads / 2)),
        );
        split::halves((&mut sum[..], &rest[..]), |(sum, rest)| {
            crate::simd::vectorized(
                #[inline(always)]
                || {
                    for (s, &r) in sum.iter_mut().zip(rest) {
                        *s += r;
                    }
                },
            );
        });
    } else {
        fill(
            &mut sum,
            Some(bias),
            Columns::new(a, b, 0..k),
            parts(threads),
        );
    }
    DMatrix::from_vec(m, n, sum)
}

/// The operands of a product whose columns of `c` are computed in blocks, over the terms
/// `terms` of its sums.
struct Columns<'a, T> {
    /// Columns `terms` of `a`.
    a: &'a [T],
    m: usize,
    /// `b`'s rows, and the first of `terms`.
    k: usize,
    t0: usize,
    /// Terms of each sum.
    t_len: usize,
    b: &'a [T],
    /// `j·k` for the columns of a block: where each column of `b` starts.
    starts: Vec<usize>,
}

impl<'a, T: Scalar> Columns<'a, T> {
    fn new(a: &'a DMatrix<T>, b: &'a DMatrix<T>, terms: Range<usize>) -> Self {
        let (m, k) = a.shape();
        let starts = (0..COLUMN_BLOCK.min(b.ncols())).map(|j| j * k).collect();
        Self {
            a: &a.as_slice()[terms.start * m..terms.end * m],
            m,
            k,
            t0: terms.start,
            t_len: terms.len(),
            b: b.as_slice(),
            starts,
        }
    }

    /// Runs `f` on these operands with the columns of `a` copied to a buffer that starts on a
    /// cache line ([`aligned`]), when they do not and the product is large enough to repay the
    /// copy (`n` columns of the output); otherwise on them as they are. With `m` a multiple of
    /// a vector's lanes, every vector the kernel loads from a column of `a` then lies in one
    /// cache line.
    fn realigned<R>(self, n: usize, f: impl FnOnce(&Columns<'_, T>) -> R) -> R {
        let worth = n >= REALIGN_MIN_COLUMNS && self.m.is_multiple_of(aligned::lanes::<T>());
        if !worth || aligned::is_aligned(self.a) {
            return f(&self);
        }
        aligned::with_copy(self.a, |a| f(&Columns { a, ..self }))
    }

    /// `c += a · b[terms, cols]` for the columns `cols` of the product (`c` holds exactly
    /// those).
    fn add_to(&self, c: &mut [T], cols: Range<usize>) {
        let (m, k) = (self.m, self.k);
        if m == 0 || self.t_len == 0 {
            return;
        }
        for (block, c) in blocks(cols, COLUMN_BLOCK).zip(c.chunks_mut(COLUMN_BLOCK * m)) {
            // column j of c (m values) += Σ_l b[l, j] · column l of a, l in terms
            gemm_positions(
                &self.b[block.start * k + self.t0..block.end * k],
                RowTable::new(&self.starts[..block.len()], 0),
                self.t_len,
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

/// Whether [`affine`] sums in two halves of the terms: for a product large enough to split
/// (2²⁰ multiply-adds) with fewer columns than terms (a training batch against 784 input
/// features), where the partial result it writes and adds (`m · n` values) is smaller than the
/// `m · k` weights it keeps from crossing between the cores.
fn split_terms(m: usize, k: usize, n: usize) -> bool {
    m * k * n >= PAR_MIN_MACS && k >= 2 && n < k
}

/// `range` cut into consecutive blocks of at most `size`.
pub(super) fn blocks(range: Range<usize>, size: usize) -> impl Iterator<Item = Range<usize>> {
    range
        .clone()
        .step_by(size)
        .map(move |start| start..(start + size).min(range.end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direct::tests::{SHAPES, random};
    use crate::rng::Rng;

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
    fn the_bits_do_not_depend_on_the_thread_count() {
        // non-integer values: a different order of any sum would change the last bits
        let mut rng = Rng::new(11);
        for (m, k, n) in SHAPES {
            let a = random::<f32>(&mut rng, m, k, false);
            let b = random::<f32>(&mut rng, k, n, false);
            let bias = random::<f32>(&mut rng, m, 1, false);
            let one = affine_on(&a, &b, bias.as_slice(), 1);
            for threads in [2, 3, 4, 8] {
                let many = affine_on(&a, &b, bias.as_slice(), threads);
                assert_eq!(many, one, "{threads} threads, {m}×{k}×{n}");
            }
            // the definition's order, column by column: the bias, the first half of the
            // terms, then the second half added (one half for a small product)
            let halves = split_terms(m, k, n);
            let mid = if halves { k / 2 } else { k };
            let mut want = DMatrix::from_fn(m, n, |i, _| bias[i]);
            let mut rest = DMatrix::zeros(m, n);
            for j in 0..n {
                let at = j * m..(j + 1) * m;
                Columns::new(&a, &b, 0..mid).add_to(&mut want.as_mut_slice()[at.clone()], j..j + 1);
                Columns::new(&a, &b, mid..k).add_to(&mut rest.as_mut_slice()[at], j..j + 1);
            }
            if halves {
                want += rest;
            }
            assert_eq!(one, want, "column by column, {m}×{k}×{n}");
        }
    }

    /// The copy that aligns the weights changes where they are read, not what is computed:
    /// from a buffer one value off a cache line, the kernel reads an aligned copy and the sums
    /// have the same bits.
    fn realigned_weights_give_the_same_bits<T: Scalar>() {
        let mut rng = Rng::new(13);
        let (m, k, n) = (32, 40, REALIGN_MIN_COLUMNS + 5);
        let (a, b) = (
            random::<T>(&mut rng, m, k, false),
            random::<T>(&mut rng, k, n, false),
        );
        let all = Columns::new(&a, &b, 0..k);
        // the weights one value past a cache line
        let mut store = vec![T::zero(); m * k + aligned::LINE];
        let at = store.as_ptr().align_offset(aligned::LINE) + 1;
        store[at..at + m * k].copy_from_slice(a.as_slice());
        let shifted = Columns {
            a: &store[at..at + m * k],
            starts: all.starts.clone(),
            ..all
        };
        let mut want = vec![T::zero(); m * n];
        shifted.add_to(&mut want, 0..n);
        let mut got = vec![T::zero(); m * n];
        shifted.realigned(n, |columns| {
            assert!(aligned::is_aligned(columns.a), "the copy is aligned");
            assert_eq!(columns.a, a.as_slice(), "the copy holds the weights");
            columns.add_to(&mut got, 0..n);
        });
        assert_eq!(got, want);
    }

    #[test]
    fn realigned_weights_give_the_same_bits_in_f32_and_f64() {
        realigned_weights_give_the_same_bits::<f32>();
        realigned_weights_give_the_same_bits::<f64>();
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
