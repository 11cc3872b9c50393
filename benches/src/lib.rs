//! Shared set-up for retroprop's criterion benchmarks: seeded inputs, so every run and every
//! machine times the same numbers.
//!
//! Run all benchmarks with `cargo bench -p retroprop-benches`; one topic with
//! `cargo bench -p retroprop-benches --bench activations`.

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use retroprop_core::rng::Rng;

/// A `rows × cols` matrix of values uniform in `[lo, hi)` from the workspace's seeded
/// generator, identical on every machine.
pub fn seeded_matrix<T: Scalar>(
    rows: usize,
    cols: usize,
    lo: f64,
    hi: f64,
    seed: u64,
) -> DMatrix<T> {
    let mut rng = Rng::new(seed);
    DMatrix::from_fn(rows, cols, |_, _| T::lit(rng.uniform(lo, hi)))
}

/// Single-precision GEMM `C = A B` (`m × k` times `k × n`, column-major) with the kernel the
/// layers use, for measuring the machine's GEMM rate in the same run as a layer.
pub fn sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the slices hold the column-major operands (checked above) and `c` aliases
    // neither input.
    #[allow(unsafe_code)]
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            1,
            m as isize,
            b.as_ptr(),
            1,
            k as isize,
            0.0,
            c.as_mut_ptr(),
            1,
            m as isize,
        );
    }
}

/// [`sgemm`] on all of rayon's threads: `C` split in equal blocks of columns (with the matching
/// columns of `B`), one kernel call per block.
pub fn par_sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads().max(1);
    let per = n.div_ceil(threads).max(1);
    c[..m * n]
        .par_chunks_mut(m * per)
        .zip(b[..k * n].par_chunks(k * per))
        .for_each(|(c_block, b_block)| {
            let cols = c_block.len() / m;
            sgemm(m, k, cols, a, b_block, c_block);
        });
}
