//! Direct convolution products: GEMMs whose operands are rows read in place, through tables of
//! where each row starts.
//!
//! A convolution computed as im2col + GEMM copies each input value `kh·kw` times into a matrix,
//! and the GEMM copies that matrix once more into its packed panels; for the small channel
//! counts of the homework's and MNIST's networks, that copying costs as much as the
//! multiplications. A convolution's operands are in fact *rows of the input image*: in a
//! zero-padded copy of the image whose columns are split into stride phases (see
//! `retroprop-layers`' `Conv2d`), the input under kernel tap `l = (c, u, v)` for output row `s`
//! is one contiguous row of `W_out` values. These two products read such rows where they are:
//!
//! ```text
//! gemm_rows       C[c(i, s) + j]  (+)=  Σ_l A[i, l] · B[b(l, s) + j]          j < n, s < segments
//! gemm_positions  C[i, j]          +=   Σ_s Σ_t A[a(i, s) + t] · B[(s·T + t)·ldb + j]
//! ```
//!
//! where a [`RowTable`] gives the row starts `b(l, s) = starts[l] + s·step`. With the image as
//! `B` and the kernels as `A`, `gemm_rows` is a convolution's forward pass (`y = W x`); with
//! the output gradient as `B`, `Wᵀ` as `A` and the image's gradient as `C`, its input gradient;
//! `gemm_positions`, with the image's rows as `A` and the transposed output gradient `δᵀ` as
//! `B`, sums the weight gradient `dL/dW = δ xᵀ` over output positions.
//!
//! Both are written once (`kernel.rs`) against a SIMD vector type (`vector.rs`) and compiled
//! for AVX-512, AVX2 + FMA and a portable baseline, chosen at run time; a tile keeps up to 24
//! accumulator vectors in registers, its operands are read straight from the rows (no packing),
//! and a partial last vector is masked. The sums run in a fixed order: the same inputs give the
//! same bits on every call (on a given instruction set).
//!
//! ```
//! use retroprop_core::direct::{gemm_rows, RowTable, Write};
//!
//! // a 1-D "image" [1, 2, 3, 4, 5] and the kernel [1, 10]: y[j] = x[j] + 10·x[j + 1]
//! let x = [1.0_f32, 2.0, 3.0, 4.0, 5.0];
//! let w = [1.0_f32, 10.0]; // A: 1 × 2 (one output channel, two taps)
//! let mut y = [0.0_f32; 4];
//! gemm_rows(&w, 1, &x, RowTable::new(&[0, 1], 0), &mut y, RowTable::new(&[0], 0), 4, 1, Write::Overwrite);
//! assert_eq!(y, [21.0, 32.0, 43.0, 54.0]);
//! ```
#![allow(unsafe_code)]

mod aligned;
mod kernel;
mod matrix;
mod outer;
mod vector;

pub use aligned::aligned_slice;
pub use matrix::affine;
pub use outer::add_outer;

use crate::Scalar;
use crate::fast::Isa;

/// Where the rows of an operand start: row `i` of segment `s` at `starts[i] + s·step`.
#[derive(Clone, Copy, Debug)]
pub struct RowTable<'a> {
    starts: &'a [usize],
    step: usize,
}

impl<'a> RowTable<'a> {
    /// Rows starting at `starts` in the first segment, each segment `step` values further.
    pub fn new(starts: &'a [usize], step: usize) -> Self {
        Self { starts, step }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether the table has no row.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Panics (a bug in the caller, never user input) unless every row of every segment, `n`
    /// values long, lies inside a buffer of `len` values.
    #[track_caller]
    fn check(&self, what: &str, len: usize, n: usize, segments: usize) {
        if n == 0 || segments == 0 {
            return;
        }
        let last = self
            .starts
            .iter()
            .max()
            .map(|&s| s + (segments - 1) * self.step + n);
        assert!(
            last.is_none_or(|end| end <= len),
            "direct: a row of {what} ends at {}, past its buffer of {len}",
            last.unwrap_or(0)
        );
    }
}

/// Whether [`gemm_rows`] overwrites its output rows, adds to them, or starts each from a bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write<'a, T> {
    /// `C ← A B`. Rows of `C` should not overlap (where they do, the later row's values stay).
    Overwrite,
    /// `C ← C + A B`; overlapping rows of `C` each add their share.
    Accumulate,
    /// `C[row i] ← bias[i] + (A B)[row i]`, the sum starting from the bias (one value per row of
    /// `C`, so `m` values); rows should not overlap, as for `Overwrite`.
    Bias(&'a [T]),
}

/// `C (+)= A · B` on rows read in place (see the [module](self) docs):
///
/// ```text
/// C[c_rows(i, s) + j] (+)= Σ_l a[l·lda + i] · b[b_rows(l, s) + j]     i < m, j < n, s < segments
/// ```
///
/// Each entry's terms are added in the order of `l`, starting from 0 or from the row's bias
/// ([`Write`]); with [`Write::Accumulate`] the finished sum is then added to `C`'s value.
///
/// `A` is `m × k`, column-major with leading dimension `lda` (nalgebra's layout); `b_rows` has
/// the `k` rows of `B`, `c_rows` the `m` rows of `C`.
///
/// # Panics
/// If `lda < m`, a row of any operand leaves its buffer, or a bias has fewer than `m` values —
/// a bug in the caller.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn gemm_rows<T: Scalar>(
    a: &[T],
    lda: usize,
    b: &[T],
    b_rows: RowTable<'_>,
    c: &mut [T],
    c_rows: RowTable<'_>,
    n: usize,
    segments: usize,
    write: Write<'_, T>,
) {
    let (m, k) = (c_rows.len(), b_rows.len());
    if m == 0 || n == 0 || segments == 0 {
        return;
    }
    if k > 0 {
        assert!(
            lda >= m && a.len() >= (k - 1) * lda + m,
            "direct: A ({m} × {k}, lda {lda}) exceeds its buffer of {}",
            a.len()
        );
    }
    b_rows.check("B", b.len(), n, segments);
    c_rows.check("C", c.len(), n, segments);
    let start = match write {
        Write::Overwrite => kernel::Start::Zero,
        Write::Accumulate => kernel::Start::Output,
        Write::Bias(bias) => {
            assert!(
                bias.len() >= m,
                "direct: a bias of {} values for {m} rows",
                bias.len()
            );
            kernel::Start::Bias(bias.as_ptr())
        }
    };
    let g = kernel::Rows {
        a: a.as_ptr(),
        lda,
        b: b.as_ptr(),
        b_starts: b_rows.starts,
        b_step: b_rows.step,
        c: c.as_mut_ptr(),
        c_starts: c_rows.starts,
        c_step: c_rows.step,
        n,
        segments,
        start,
    };
    T::direct(Product(Inner::Rows(g), chosen()));
}

/// `C += Σ_positions A · B`, the sum over positions of a product whose `A` is read in rows
/// (see the [module](self) docs):
///
/// ```text
/// C[i·ldc + j] += Σ_{s < segments} Σ_{t < t_len} a[a_rows(i, s) + t] · b[(s·t_len + t)·ldb + j]
/// ```
///
/// `a_rows` has the `m` rows of `A` (each `t_len` values per segment); `B` has one row of `n`
/// values per position `s·t_len + t`, `ldb` apart; `C` is `m × n`, rows `ldc` apart.
///
/// # Panics
/// If `ldb < n`, `ldc < n` or an operand leaves its buffer — a bug in the caller.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn gemm_positions<T: Scalar>(
    a: &[T],
    a_rows: RowTable<'_>,
    t_len: usize,
    segments: usize,
    b: &[T],
    ldb: usize,
    c: &mut [T],
    ldc: usize,
    n: usize,
) {
    let m = a_rows.len();
    if m == 0 || n == 0 {
        return;
    }
    check_dense("C", "ldc", c.len(), m, n, ldc);
    let positions = segments * t_len;
    if positions == 0 {
        return;
    }
    a_rows.check("A", a.len(), t_len, segments);
    check_dense("B", "ldb", b.len(), positions, n, ldb);
    let g = kernel::Positions {
        a: a.as_ptr(),
        a_starts: a_rows.starts,
        a_step: a_rows.step,
        a_stride: 1,
        t_len,
        segments,
        b: b.as_ptr(),
        ldb,
        n,
        c: c.as_mut_ptr(),
        ldc,
    };
    T::direct(Product(Inner::Positions(g), chosen()));
}

/// [`gemm_positions`] with `A` read down its columns: row `i` of `A` (one of `m = a_rows.len()`)
/// starts at `a_rows[i]` and its values are `lda` apart — rows of a column-major matrix with
/// leading dimension `lda`, for `a_rows = [0, 1, …]`:
///
/// ```text
/// C[i·ldc + j] += Σ_{t < t_len} a[a_rows[i] + t·lda] · b[t·ldb + j]        i < m, j < n
/// ```
///
/// Each entry's terms are added in the order of `t`, and the finished sum is added to `C`.
///
/// # Panics
/// If `ldb < n`, `ldc < n` or an operand leaves its buffer — a bug in the caller.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn gemm_down_columns<T: Scalar>(
    a: &[T],
    a_rows: &[usize],
    lda: usize,
    t_len: usize,
    b: &[T],
    ldb: usize,
    c: &mut [T],
    ldc: usize,
    n: usize,
) {
    let m = a_rows.len();
    if m == 0 || n == 0 || t_len == 0 {
        return;
    }
    let a_end = a_rows
        .iter()
        .max()
        .map_or(0, |&s| s + (t_len - 1) * lda + 1);
    assert!(
        a_end <= a.len(),
        "direct: a row of A ({t_len} values, {lda} apart) ends at {a_end}, past its buffer of {}",
        a.len()
    );
    check_dense("B", "ldb", b.len(), t_len, n, ldb);
    check_dense("C", "ldc", c.len(), m, n, ldc);
    let g = kernel::Positions {
        a: a.as_ptr(),
        a_starts: a_rows,
        a_step: 0,
        a_stride: lda,
        t_len,
        segments: 1,
        b: b.as_ptr(),
        ldb,
        n,
        c: c.as_mut_ptr(),
        ldc,
    };
    T::direct(Product(Inner::Positions(g), chosen()));
}

/// Panics (a bug in the caller, never user input) unless an operand of `rows ≥ 1` rows of `n`
/// values, `ld` apart (its leading dimension, named `ld_name` in the message), fits in its
/// buffer of `len` values.
#[track_caller]
fn check_dense(what: &str, ld_name: &str, len: usize, rows: usize, n: usize, ld: usize) {
    assert!(
        ld >= n && len >= (rows - 1) * ld + n,
        "direct: {what} ({rows} × {n}, {ld_name} {ld}) exceeds its buffer of {len}"
    );
}

/// The instruction set the products run on: the best of this CPU, or the one a test forces.
fn chosen() -> Isa {
    #[cfg(test)]
    if let Some(isa) = tests::FORCED.get() {
        return isa;
    }
    crate::fast::isa()
}

/// A checked product of this module, ready for [`crate::Kernels::direct`] to run on the vectors
/// of its type. Only this module makes one, after checking every operand against its buffer.
pub struct Product<'a, T>(Inner<'a, T>, Isa);

enum Inner<'a, T> {
    Rows(kernel::Rows<'a, T>),
    Positions(kernel::Positions<'a, T>),
}

/// Compiles the products for one vector type, in a function with its target features.
macro_rules! compiled {
    ($(#[$attr:meta])* $name:ident, $v:ty) => {
        $(#[$attr])*
        /// # Safety
        /// The CPU has the vector type's instruction set; the product was checked.
        unsafe fn $name(p: &Inner<'_, <$v as vector::Vector>::T>) {
            match p {
                // SAFETY: the caller's.
                Inner::Rows(g) => unsafe { kernel::rows::<$v>(g) },
                // SAFETY: the caller's.
                Inner::Positions(g) => unsafe { kernel::positions::<$v>(g) },
            }
        }
    };
}

/// Runs a product on the best of `isa` and the instruction sets below it that the CPU has.
macro_rules! dispatch {
    ($name:ident: $t:ty, $avx512:ty, $avx2:ty) => {
        pub(crate) fn $name(p: Product<'_, $t>) {
            #[cfg(target_arch = "x86_64")]
            {
                compiled!(
                    #[target_feature(enable = "avx512f,avx2,fma")]
                    avx512,
                    $avx512
                );
                compiled!(
                    #[target_feature(enable = "avx2,fma")]
                    avx2,
                    $avx2
                );
                match p.1 {
                    // SAFETY: `supported()` checked the instruction set; `p` was checked.
                    Isa::Avx512 if p.1.supported() => return unsafe { avx512(&p.0) },
                    // SAFETY: as above.
                    Isa::Avx2 if p.1.supported() => return unsafe { avx2(&p.0) },
                    _ => {}
                }
            }
            compiled!(portable, vector::Portable<$t>);
            // SAFETY: the portable variant needs no instruction beyond the baseline.
            unsafe { portable(&p.0) }
        }
    };
}

dispatch!(run_f32: f32, vector::Avx512F32, vector::Avx2F32);
dispatch!(run_f64: f64, vector::Avx512F64, vector::Avx2F64);

#[cfg(test)]
mod tests;
