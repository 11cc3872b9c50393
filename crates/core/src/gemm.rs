//! GEMM on strided operands, so transposes cost no copy (the dense layers' products).
//!
//! This calls `matrixmultiply` — the kernel nalgebra itself hands large dynamic products to —
//! directly with explicit row and column strides: a transposed operand is the same buffer with
//! its strides swapped. (nalgebra's own `gemm` would do the same for large operands, but for
//! operands with a dimension ≤ 5 it falls back to a column loop that mis-indexes strided
//! views, and its `gemm_tr` is a column loop; a batch of 1 or a 3-channel image hits both.)

use nalgebra::DMatrix;

use crate::Scalar;

/// A read-only `rows × cols` operand: element `(i, j)` at `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// A mutable `rows × cols` operand: element `(i, j)` at `data[i·rs + j·cs]`.
pub struct MatMut<'a, T> {
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
    ///
    /// # Panics
    /// If an element `(i, j)` falls outside `data` (a bug in the caller, never user input).
    pub fn new(data: &'a [T], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
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
    pub fn of(m: &'a DMatrix<T>) -> Self {
        Self::new(m.as_slice(), m.nrows(), m.ncols(), 1, m.nrows())
    }

    /// `mᵀ`: the column-major matrix read row by row.
    pub fn transposed(m: &'a DMatrix<T>) -> Self {
        Self::new(m.as_slice(), m.ncols(), m.nrows(), m.nrows(), 1)
    }
}

impl<'a, T> MatMut<'a, T> {
    /// A strided mutable view of `data`.
    ///
    /// # Panics
    /// If an element `(i, j)` falls outside `data`.
    pub fn new(data: &'a mut [T], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
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
    pub fn of(m: &'a mut DMatrix<T>) -> Self {
        let (rows, cols) = m.shape();
        Self::new(m.as_mut_slice(), rows, cols, 1, rows)
    }
}

/// `c ← α a b + β c` (when `β = 0`, `c` is not read).
///
/// # Panics
/// If the shapes do not chain (`a: m × k`, `b: k × n`, `c: m × n`) — a bug in the caller.
pub fn gemm<T: Scalar>(alpha: T, a: MatRef<'_, T>, b: MatRef<'_, T>, beta: T, c: MatMut<'_, T>) {
    check_chain(&a, &b, &c);
    // SAFETY: the operands' extents were checked against their slices (`check_extent`), the
    // shapes chain (checked above), and `c` is a unique borrow, aliasing neither input.
    unsafe { kernel(alpha, a, b, beta, Out::of(c)) }
}

fn check_chain<T>(a: &MatRef<'_, T>, b: &MatRef<'_, T>, c: &MatMut<'_, T>) {
    assert!(
        b.rows == a.cols && c.rows == a.rows && c.cols == b.cols,
        "gemm: shapes do not chain"
    );
}

/// The output operand as a raw pointer, so that disjoint blocks of one matrix can be written
/// from different threads even when they interleave in memory (rows of a column-major matrix).
struct Out<T> {
    ptr: *mut T,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

// SAFETY: an `Out` is only created from a unique borrow (`Out::of`) and only split into blocks
// of disjoint elements (`split_gemm`), so sending one to another thread sends exclusive access
// to its elements.
unsafe impl<T: Send> Send for Out<T> {}

impl<T> Out<T> {
    fn of(c: MatMut<'_, T>) -> Self {
        Self {
            ptr: c.data.as_mut_ptr(),
            rows: c.rows,
            cols: c.cols,
            rs: c.rs,
            cs: c.cs,
        }
    }
}

/// Calls the matrixmultiply kernel for `f32` or `f64`.
///
/// # Safety
/// `c` must address `rows × cols` elements (at its strides) that nothing else reads or writes
/// during the call; `a` and `b` must chain with `c`.
unsafe fn kernel<T: Scalar>(alpha: T, a: MatRef<'_, T>, b: MatRef<'_, T>, beta: T, c: Out<T>) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    let signed = |s: usize| isize::try_from(s).expect("stride fits isize");
    // SAFETY: `a` and `b` are checked views; `c` is exclusive (the caller's contract) and
    // chains with them.
    unsafe {
        T::gemm_raw(
            (m, k, n),
            alpha,
            (a.data.as_ptr(), signed(a.rs), signed(a.cs)),
            (b.data.as_ptr(), signed(b.rs), signed(b.cs)),
            beta,
            (c.ptr, signed(c.rs), signed(c.cs)),
        );
    }
}

/// Products smaller than this many multiply-adds run on one thread: splitting costs a few
/// microseconds of scheduling, which a product this size (≈ 6 µs at 180 GFLOP/s) cannot repay.
pub const PAR_MIN_MACS: usize = 1 << 20;

/// Parts a product of `macs` multiply-adds is split into on `threads` threads: one per thread,
/// each of at least `PAR_MIN_MACS / 2` multiply-adds (so a product below [`PAR_MIN_MACS`] is
/// not split), and at least one.
pub(crate) fn parts_for(macs: usize, threads: usize) -> usize {
    threads.min(macs / (PAR_MIN_MACS / 2)).max(1)
}

/// `c ← α a b + β c` like [`gemm`], split over rayon's threads for large products.
///
/// `c` is cut into blocks of rows (each with the matching rows of `a`) or of columns (with the
/// matching columns of `b`), one per thread. Each block packs its own copy of the operand it
/// shares with the others, so the split goes along the dimension whose shared operand is the
/// cheaper to pack. Every entry is still computed by one kernel call with the same summation order, so
/// the result does not depend on the split. The parts run on the calling thread and the helper
/// threads of `crate::team`, one per thread (inline when no helper is free).
pub fn par_gemm<T: Scalar>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
) {
    check_chain(&a, &b, &c);
    let parts = parts_for(a.rows * a.cols * b.cols, crate::team::threads());
    // SAFETY: `c` is a unique borrow and the shapes chain (checked above).
    unsafe { split_gemm(alpha, a, b, beta, Out::of(c), parts) }
}

/// # Safety
/// As [`kernel`]: `c` is exclusive and chains with `a` and `b`.
unsafe fn split_gemm<T: Scalar>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: Out<T>,
    parts: usize,
) {
    // Splitting rows makes every block pack all of b; splitting columns, all of a. matrixmultiply
    // packs a column-major a (and a row-major b) with straight copies, other layouts element
    // by element, several times slower: weigh each operand by that.
    let packing_cost = |len: usize, contiguous: bool| if contiguous { len } else { 4 * len };
    let dup_b = packing_cost(b.rows * b.cols, b.cs == 1);
    let dup_a = packing_cost(a.rows * a.cols, a.rs == 1);
    let by_rows = dup_b <= dup_a;
    let extent = if by_rows { c.rows } else { c.cols };
    if parts <= 1 || extent < 2 {
        // SAFETY: forwarded from the caller.
        unsafe { kernel(alpha, a, b, beta, c) };
        return;
    }
    let left_parts = parts / 2;
    let mid = extent * left_parts / parts;
    let (c1, c2, (a1, a2), (b1, b2)) = if by_rows {
        let top = Out { rows: mid, ..c };
        // SAFETY: rows mid.. of c start mid·rs elements in, inside c's extent.
        let bottom = Out {
            ptr: unsafe { c.ptr.add(mid * c.rs) },
            rows: c.rows - mid,
            ..c
        };
        let a_top = MatRef { rows: mid, ..a };
        let a_bottom = MatRef::new(&a.data[mid * a.rs..], a.rows - mid, a.cols, a.rs, a.cs);
        (top, bottom, (a_top, a_bottom), (b, b))
    } else {
        let left = Out { cols: mid, ..c };
        // SAFETY: columns mid.. of c start mid·cs elements in, inside c's extent.
        let right = Out {
            ptr: unsafe { c.ptr.add(mid * c.cs) },
            cols: c.cols - mid,
            ..c
        };
        let b_left = MatRef { cols: mid, ..b };
        let b_right = MatRef::new(&b.data[mid * b.cs..], b.rows, b.cols - mid, b.rs, b.cs);
        (left, right, (a, a), (b_left, b_right))
    };
    // The calling thread computes the first block while a spinning helper of `team` takes the
    // second (a sleeping rayon worker would take longer to wake than half a product saves).
    // SAFETY: the two blocks address disjoint elements of c (different rows or different
    // columns), each chaining with its operands.
    crate::team::join(
        || unsafe { split_gemm(alpha, a1, b1, beta, c1, left_parts) },
        move || unsafe { split_gemm(alpha, a2, b2, beta, c2, parts - left_parts) },
    );
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
    fn split_products_equal_the_single_call_bit_for_bit() {
        // big enough to split; both memory orders of c
        let a = DMatrix::from_fn(70, 90, |i, j| ((i * 31 + j * 17) % 23) as f64 - 11.0);
        let b = DMatrix::from_fn(90, 200, |i, j| ((i * 7 + j * 13) % 19) as f64 * 0.25);
        let mut one = DMatrix::zeros(70, 200);
        gemm(
            1.0,
            MatRef::of(&a),
            MatRef::of(&b),
            0.0,
            MatMut::of(&mut one),
        );
        for parts in [2, 3, 4] {
            let mut split = DMatrix::zeros(70, 200);
            // SAFETY: `split` is borrowed uniquely and the shapes chain.
            unsafe {
                split_gemm(
                    1.0,
                    MatRef::of(&a),
                    MatRef::of(&b),
                    0.0,
                    Out::of(MatMut::of(&mut split)),
                    parts,
                )
            };
            assert_eq!(split, one);
            // row-major c: the transpose stored column-major, viewed with swapped strides
            let mut rm = vec![0.0; 70 * 200];
            let out = Out::of(MatMut::new(&mut rm, 70, 200, 200, 1));
            // SAFETY: `rm` is borrowed uniquely and the shapes chain.
            unsafe { split_gemm(1.0, MatRef::of(&a), MatRef::of(&b), 0.0, out, parts) };
            assert_eq!(DMatrix::from_row_slice(70, 200, &rm), one);
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
