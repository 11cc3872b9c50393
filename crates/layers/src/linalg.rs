//! GEMM on strided operands, so transposes and row-major im2col buffers cost no copy.
//!
//! This calls `matrixmultiply` — the kernel nalgebra itself hands large dynamic products to —
//! directly with explicit row and column strides: a transposed operand is the same buffer with
//! its strides swapped. (nalgebra's own `gemm` would do the same for large operands, but for
//! operands with a dimension ≤ 5 it falls back to a column loop that mis-indexes strided
//! views, and its `gemm_tr` is a column loop; a batch of 1 or a 3-channel image hits both.)

#![allow(unsafe_code)]

use std::any::TypeId;

use nalgebra::DMatrix;
use retroprop_activations::Scalar;

/// A read-only `rows × cols` operand: element `(i, j)` at `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// A mutable `rows × cols` operand: element `(i, j)` at `data[i·rs + j·cs]`.
pub(crate) struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// Panics (a bug in this crate, never user input) unless every `(i, j)` is inside `len`.
fn check_extent(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) {
    if rows > 0 && cols > 0 {
        let last = (rows - 1) * rs + (cols - 1) * cs;
        assert!(last < len, "strided operand exceeds its buffer");
    }
}

impl<'a, T> MatRef<'a, T> {
    /// A strided view of `data`.
    pub(crate) fn new(data: &'a [T], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        check_extent(data.len(), rows, cols, rs, cs);
        Self {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// A column-major matrix as it is.
    pub(crate) fn of(m: &'a DMatrix<T>) -> Self {
        Self::new(m.as_slice(), m.nrows(), m.ncols(), 1, m.nrows())
    }

    /// `mᵀ`: the column-major matrix read row by row.
    pub(crate) fn transposed(m: &'a DMatrix<T>) -> Self {
        Self::new(m.as_slice(), m.ncols(), m.nrows(), m.nrows(), 1)
    }
}

impl<'a, T> MatMut<'a, T> {
    /// A strided mutable view of `data`.
    pub(crate) fn new(data: &'a mut [T], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        check_extent(data.len(), rows, cols, rs, cs);
        Self {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// A column-major matrix as it is.
    pub(crate) fn of(m: &'a mut DMatrix<T>) -> Self {
        let (rows, cols) = m.shape();
        Self::new(m.as_mut_slice(), rows, cols, 1, rows)
    }
}

/// `c ← α a b + β c` (when `β = 0`, `c` is not read).
///
/// # Panics
/// If the shapes do not chain (`a: m × k`, `b: k × n`, `c: m × n`) — a bug in the caller.
pub(crate) fn gemm<T: Scalar>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == k && c.rows == m && c.cols == n,
        "gemm: shapes do not chain"
    );
    if m == 0 || n == 0 {
        return;
    }
    let signed = |s: usize| isize::try_from(s).expect("stride fits isize");
    let (rsa, csa, rsb, csb) = (signed(a.rs), signed(a.cs), signed(b.rs), signed(b.cs));
    let (rsc, csc) = (signed(c.rs), signed(c.cs));
    // SAFETY: every operand's extent was checked against its slice at construction
    // (`check_extent`), the shapes chain (asserted above), and `c` is borrowed mutably so it
    // aliases neither `a` nor `b`. `T` is exactly `f32` or `f64` in each branch, so the pointer
    // casts are identities and `to_f64` round-trips `alpha`/`beta` exactly.
    unsafe {
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                alpha.to_f64() as f32,
                a.data.as_ptr().cast::<f32>(),
                rsa,
                csa,
                b.data.as_ptr().cast::<f32>(),
                rsb,
                csb,
                beta.to_f64() as f32,
                c.data.as_mut_ptr().cast::<f32>(),
                rsc,
                csc,
            );
        } else if TypeId::of::<T>() == TypeId::of::<f64>() {
            matrixmultiply::dgemm(
                m,
                k,
                n,
                alpha.to_f64(),
                a.data.as_ptr().cast::<f64>(),
                rsa,
                csa,
                b.data.as_ptr().cast::<f64>(),
                rsb,
                csb,
                beta.to_f64(),
                c.data.as_mut_ptr().cast::<f64>(),
                rsc,
                csc,
            );
        } else {
            unreachable!("Scalar is sealed to f32 and f64");
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn product(a: &DMatrix<f64>, b: &DMatrix<f64>, ta: bool, tb: bool) -> DMatrix<f64> {
        let ra = if ta {
            MatRef::transposed(a)
        } else {
            MatRef::of(a)
        };
        let rb = if tb {
            MatRef::transposed(b)
        } else {
            MatRef::of(b)
        };
        let mut c = DMatrix::zeros(ra.rows, rb.cols);
        gemm(1.0, ra, rb, 0.0, MatMut::of(&mut c));
        c
    }

    #[test]
    fn transposes_by_strides_at_every_size() {
        // small sizes included: nalgebra's fallback path is what this module avoids
        for (m, k, n) in [(1, 1, 1), (2, 3, 1), (3, 1, 2), (7, 5, 9), (16, 33, 4)] {
            let a = DMatrix::from_fn(m, k, |i, j| (i * 7 + j * 3) as f64 - 4.0);
            let b = DMatrix::from_fn(k, n, |i, j| (i + 2 * j) as f64 * 0.5);
            let want = &a * &b;
            assert_eq!(product(&a, &b, false, false), want);
            assert_eq!(product(&a.transpose(), &b, true, false), want);
            assert_eq!(product(&a, &b.transpose(), false, true), want);
            assert_eq!(product(&a.transpose(), &b.transpose(), true, true), want);
        }
    }

    #[test]
    fn f32_takes_the_sgemm_path() {
        let a = DMatrix::from_fn(3, 4, |i, j| (i + j) as f32);
        let b = DMatrix::from_fn(4, 2, |i, j| (i * j) as f32);
        let mut c = DMatrix::from_element(3, 2, 1.0_f32);
        gemm(2.0, MatRef::of(&a), MatRef::of(&b), 1.0, MatMut::of(&mut c));
        assert_eq!(c, (&a * &b) * 2.0 + DMatrix::from_element(3, 2, 1.0));
    }
}
