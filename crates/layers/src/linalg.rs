//! Element-wise helpers on column-major matrices, over their underlying slices (nalgebra's
//! iterators go with strides and do not vectorise).

use nalgebra::DMatrix;
use retroprop_core::Scalar;

/// `f(aᵢ, bᵢ)` entry by entry, on the underlying slices (nalgebra's `zip_map` iterates with
/// strides and does not vectorise). `a` and `b` have the same shape.
pub(crate) fn zip_map<T: Scalar>(
    a: &DMatrix<T>,
    b: &DMatrix<T>,
    f: impl Fn(T, T) -> T,
) -> DMatrix<T> {
    debug_assert_eq!(a.shape(), b.shape());
    let data = a
        .as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(&x, &y)| f(x, y))
        .collect();
    DMatrix::from_vec(a.nrows(), a.ncols(), data)
}

/// `f(aᵢ)` entry by entry, on the underlying slice.
pub(crate) fn map<T: Scalar>(a: &DMatrix<T>, f: impl Fn(T) -> T) -> DMatrix<T> {
    let data = a.as_slice().iter().map(|&x| f(x)).collect();
    DMatrix::from_vec(a.nrows(), a.ncols(), data)
}

/// `acc += m`, on the underlying slices.
pub(crate) fn add_assign<T: Scalar>(acc: &mut DMatrix<T>, m: &DMatrix<T>) {
    debug_assert_eq!(acc.shape(), m.shape());
    for (a, &v) in acc.as_mut_slice().iter_mut().zip(m.as_slice()) {
        *a += v;
    }
}

/// Row sums added into a column: `out += m 1`.
pub(crate) fn add_row_sums<T: Scalar>(m: &DMatrix<T>, out: &mut [T]) {
    let rows = m.nrows();
    if rows == 0 {
        return;
    }
    for col in m.as_slice().chunks_exact(rows) {
        for (o, &v) in out.iter_mut().zip(col) {
            *o += v;
        }
    }
}

/// A `rows × n` matrix whose every column is `b`.
pub(crate) fn broadcast_columns<T: Scalar>(b: &[T], n: usize) -> DMatrix<T> {
    let rows = b.len();
    let mut m = DMatrix::zeros(rows, n);
    if rows > 0 {
        for col in m.as_mut_slice().chunks_exact_mut(rows) {
            col.copy_from_slice(b);
        }
    }
    m
}
