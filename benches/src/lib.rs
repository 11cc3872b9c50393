//! Shared set-up for retroprop's criterion benchmarks: seeded inputs, so every run and every
//! machine times the same numbers.
//!
//! Run all benchmarks with `cargo bench -p retroprop-benches`; one topic with
//! `cargo bench -p retroprop-benches --bench activations`.

use nalgebra::DMatrix;
use retroprop_activations::Scalar;
use retroprop_activations::rng::Rng;

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
