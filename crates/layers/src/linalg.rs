//! Element-wise helpers on column-major matrices, over their underlying slices (nalgebra's
//! iterators go with strides and do not vectorise), each compiled for the best instruction set
//! of the CPU (`retroprop_core::simd`).

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use retroprop_core::simd::vectorized;
use retroprop_core::split;

/// `f(aᵢ, bᵢ)` entry by entry, on the underlying slices (nalgebra's `zip_map` iterates with
/// strides and does not vectorise), shared between the cores for large matrices
/// (`retroprop_core::split::zip_map`). `a` and `b` have the same shape.
pub(crate) fn zip_map<T: Scalar>(
    a: &DMatrix<T>,
    b: &DMatrix<T>,
    f: impl Fn(T, T) -> T + Sync,
) -> DMatrix<T> {
    debug_assert_eq!(a.shape(), b.shape());
    let data = split::zip_map(a.as_slice(), b.as_slice(), f);
    DMatrix::from_vec(a.nrows(), a.ncols(), data)
}

/// `f(aᵢ)` entry by entry, on the underlying slice, shared between the cores for large
/// matrices (`retroprop_core::split::map`).
pub(crate) fn map<T: Scalar>(a: &DMatrix<T>, f: impl Fn(T) -> T + Sync) -> DMatrix<T> {
    DMatrix::from_vec(a.nrows(), a.ncols(), split::map(a.as_slice(), f))
}

/// `acc += m`, on the underlying slices.
pub(crate) fn add_assign<T: Scalar>(acc: &mut DMatrix<T>, m: &DMatrix<T>) {
    debug_assert_eq!(acc.shape(), m.shape());
    vectorized(
        #[inline(always)]
        || {
            for (a, &v) in acc.as_mut_slice().iter_mut().zip(m.as_slice()) {
                *a += v;
            }
        },
    );
}

/// Lanes of [`sum`]: independent partial sums the compiler keeps in one vector register.
const SUM_LANES: usize = 8;

/// `Σᵢ vᵢ` in [`SUM_LANES`] interleaved partial sums (lane `l` adds `v[l], v[l + 8], …`), then
/// the lanes pairwise and the tail in order: a fixed order for a given length, so the same bits
/// on every run and thread count, vectorised where one running sum is a chain of dependent
/// additions (and at least as accurate: each partial sum is an eighth as long).
#[inline(always)]
pub(crate) fn sum<T: Scalar>(v: &[T]) -> T {
    let mut lanes = [T::zero(); SUM_LANES];
    let mut chunks = v.chunks_exact(SUM_LANES);
    for chunk in &mut chunks {
        for (acc, &x) in lanes.iter_mut().zip(chunk) {
            *acc += x;
        }
    }
    let mut width = SUM_LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
    }
    chunks.remainder().iter().fold(lanes[0], |s, &x| s + x)
}

/// Row sums added into a column: `out += m 1`.
pub(crate) fn add_row_sums<T: Scalar>(m: &DMatrix<T>, out: &mut [T]) {
    let rows = m.nrows();
    if rows == 0 {
        return;
    }
    vectorized(
        #[inline(always)]
        || {
            for col in m.as_slice().chunks_exact(rows) {
                for (o, &v) in out.iter_mut().zip(col) {
                    *o += v;
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_adds_every_value_at_every_length() {
        for len in [0, 1, 7, 8, 9, 16, 23, 100] {
            // integers: exact in any order, so the lanes must reproduce the plain sum
            let v: Vec<f64> = (0..len).map(|i: i32| f64::from(i * i % 17) - 5.0).collect();
            assert_eq!(sum(&v), v.iter().sum::<f64>(), "length {len}");
        }
        // each value counted once: a one at every position in turn
        for at in 0..19 {
            let mut v = vec![0.0_f32; 19];
            v[at] = 1.0;
            assert_eq!(sum(&v), 1.0, "position {at}");
        }
    }
}
