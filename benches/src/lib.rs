//! Shared set-up for retroprop's criterion benchmarks: seeded inputs, so every run and every
//! machine times the same numbers.
//!
//! Run all benchmarks with `cargo bench -p retroprop-benches`; one topic with
//! `cargo bench -p retroprop-benches --bench activations`.

use nalgebra::DMatrix;
use retroprop_activations::Scalar;

/// A `rows × cols` matrix of values uniform in `[lo, hi)`, from a fixed-seed generator
/// (SplitMix64), identical on every machine.
pub fn seeded_matrix<T: Scalar>(
    rows: usize,
    cols: usize,
    lo: f64,
    hi: f64,
    seed: u64,
) -> DMatrix<T> {
    let mut state = seed;
    DMatrix::from_fn(rows, cols, |_, _| {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let u = (z >> 11) as f64 / (1u64 << 53) as f64;
        T::lit(lo + (hi - lo) * u)
    })
}
