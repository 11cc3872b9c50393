//! The one numeric bound of the workspace: [`Scalar`], implemented by `f32` and `f64`.

use std::fmt::{Debug, Display};

use nalgebra::RealField;

use crate::fast;

/// A raw strided operand: its first element and its row and column strides, in elements.
pub type RawOperand<T> = (*const T, isize, isize);
/// A raw strided output operand.
pub type RawOutput<T> = (*mut T, isize, isize);

/// The numeric type of every function, layer and model in retroprop: `f32` to train, `f64` to
/// check gradients.
///
/// It is nalgebra's [`RealField`] (so `+ − × ÷`, `exp`, `ln`, comparisons, GEMM through
/// nalgebra) plus `Copy` and the per-type [`Kernels`] (the vectorised bulk functions). A blanket
/// impl makes every type that has those a `Scalar`; because [`Kernels`] is sealed, that is
/// exactly `f32` and `f64`.
///
/// ```
/// use retroprop_core::Scalar;
/// # fn softplus<T: Scalar>(x: T) -> T { x.max(T::zero()) + (-x.abs()).exp().ln_1p() }
///
/// fn twice_softplus<T: Scalar>(x: T) -> T {
///     softplus(x) + softplus(x)
/// }
/// // softplus(0) = ln 2
/// assert!((twice_softplus(0.0_f64) - 2.0 * 2.0_f64.ln()).abs() < 1e-15);
/// assert!((twice_softplus(0.0_f32) - 2.0 * 2.0_f32.ln()).abs() < 1e-6);
/// ```
pub trait Scalar:
    RealField + Copy + Default + Debug + Display + Send + Sync + 'static + Kernels
{
}

impl<T> Scalar for T where
    T: RealField + Copy + Default + Debug + Display + Send + Sync + 'static + Kernels
{
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// Per-type hooks behind [`Scalar`]: literals, byte encoding, and the bulk kernels that the
/// layers call on whole batches.
///
/// For `f64` (the checking type) the kernels are the standard library's correctly rounded
/// functions. For `f32` (the training type) they are branch-free approximations that the
/// compiler vectorises (AVX-512, AVX2+FMA or SSE2, chosen at run time), accurate to a few
/// units in the last place; the crate's tests bound their error against `f64`.
/// Sealed: implemented for `f32` and `f64` only.
pub trait Kernels: Sized + sealed::Sealed {
    /// The type's name as stored in checkpoints: `"f32"` or `"f64"`.
    const NAME: &'static str;
    /// Size of one value in bytes.
    const BYTES: usize;
    /// Not a number.
    const NAN: Self;
    /// `+∞`.
    const INFINITY: Self;
    /// `−∞`.
    const NEG_INFINITY: Self;
    /// Machine epsilon: the gap between 1 and the next representable value.
    const EPSILON: Self;

    /// Converts an `f64` literal (rounding to nearest for `f32`).
    fn lit(v: f64) -> Self;
    /// Widens to `f64` (exact for both types).
    fn to_f64(self) -> f64;
    /// Converts a byte exactly (a pixel value); vectorises where `lit` would not.
    fn from_byte(v: u8) -> Self;
    /// Appends the little-endian bytes of `self` to `out`.
    fn write_le(self, out: &mut Vec<u8>);
    /// Reads a value from exactly [`Kernels::BYTES`] little-endian bytes; `None` if the slice
    /// has another length.
    fn read_le(bytes: &[u8]) -> Option<Self>;

    /// `x ← exp(x)` element-wise. NaN stays NaN, `exp(+∞) = +∞`, `exp(−∞) = 0`.
    fn exp_in_place(x: &mut [Self]);
    /// `softplus ← max(x, 0) + ln(1 + e^−|x|)` and `sigmoid ← σ(x)` element-wise, in one pass
    /// (one exponential per element), for a softplus layer that keeps `φ'(x) = σ(x)` for its
    /// backward pass. The three slices have equal length (shorter ones bound the loop).
    fn softplus_sigmoid(x: &[Self], softplus: &mut [Self], sigmoid: &mut [Self]);
    /// `out ← σ(x)` element-wise.
    fn sigmoid_into(x: &[Self], out: &mut [Self]);
    /// The complementary error function `erfc(x) = 1 − erf(x) = (2/√π) ∫ₓ^∞ e^(−t²) dt`,
    /// accurate to about one unit in the last place over the whole line (no cancellation for
    /// large `x`, where `1 − erf(x)` would give 0): the exact GELU's `Φ(x) = ½ erfc(−x/√2)`.
    fn erfc(self) -> Self;

    /// `dst ← Mᵀ` for the matrix whose row `i` is `src[rows.start(i)..][..cols]`; `dst` gets
    /// the contiguous row-major transpose. Use the checked [`crate::transpose::transpose`],
    /// which checks the extents before calling this.
    fn transpose_raw(src: &[Self], rows: crate::transpose::Rows, cols: usize, dst: &mut [Self]);

    /// Runs a checked product of [`crate::direct`] on this type's vectors. Call
    /// [`crate::direct::gemm_rows`] or [`crate::direct::gemm_positions`]: they check the
    /// operands and make the [`crate::direct::Product`].
    fn direct(product: crate::direct::Product<'_, Self>);

    /// `c ← α a b + β c` for `a: m × k`, `b: k × n`, `c: m × n` on raw strided operands:
    /// matrixmultiply's `sgemm` or `dgemm`, chosen by the type (no run-time type test, no
    /// pointer cast). Use the checked wrappers of [`crate::gemm`].
    ///
    /// # Safety
    /// Every element `(i, j)` of each operand, at its strides, is inside one live allocation;
    /// nothing else reads or writes `c`'s elements during the call (when `β = 0`, `c` is not
    /// read).
    unsafe fn gemm_raw(
        mkn: (usize, usize, usize),
        alpha: Self,
        a: RawOperand<Self>,
        b: RawOperand<Self>,
        beta: Self,
        c: RawOutput<Self>,
    );
}

/// Implements [`Kernels::gemm_raw`] with one of matrixmultiply's kernels.
macro_rules! gemm_raw {
    ($kernel:path) => {
        unsafe fn gemm_raw(
            (m, k, n): (usize, usize, usize),
            alpha: Self,
            (a, rsa, csa): RawOperand<Self>,
            (b, rsb, csb): RawOperand<Self>,
            beta: Self,
            (c, rsc, csc): RawOutput<Self>,
        ) {
            // SAFETY: the caller's contract is matrixmultiply's.
            unsafe { $kernel(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
        }
    };
}

impl Kernels for f64 {
    const NAME: &'static str = "f64";
    const BYTES: usize = 8;
    const NAN: Self = f64::NAN;
    const INFINITY: Self = f64::INFINITY;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    const EPSILON: Self = f64::EPSILON;

    #[inline]
    fn lit(v: f64) -> Self {
        v
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_byte(v: u8) -> Self {
        f64::from(v)
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn read_le(bytes: &[u8]) -> Option<Self> {
        Some(f64::from_le_bytes(bytes.try_into().ok()?))
    }
    fn exp_in_place(x: &mut [Self]) {
        for v in x {
            *v = v.exp();
        }
    }
    fn softplus_sigmoid(x: &[Self], softplus: &mut [Self], sigmoid: &mut [Self]) {
        for ((&x, sp), sg) in x.iter().zip(softplus).zip(sigmoid) {
            let e = (-x.abs()).exp();
            *sp = if x > 0.0 { x } else { 0.0 } + e.ln_1p();
            *sg = if x >= 0.0 {
                1.0 / (1.0 + e)
            } else {
                e / (1.0 + e)
            };
        }
    }
    fn sigmoid_into(x: &[Self], out: &mut [Self]) {
        for (&x, o) in x.iter().zip(out) {
            // the stable logistic: no overflow of e^−x for x ≪ 0
            *o = if x >= 0.0 {
                1.0 / (1.0 + (-x).exp())
            } else {
                let e = x.exp();
                e / (1.0 + e)
            };
        }
    }
    fn erfc(self) -> Self {
        libm::erfc(self)
    }
    fn transpose_raw(src: &[Self], rows: crate::transpose::Rows, cols: usize, dst: &mut [Self]) {
        crate::transpose::generic(src, rows, cols, dst);
    }
    fn direct(product: crate::direct::Product<'_, Self>) {
        crate::direct::run_f64(product);
    }
    gemm_raw!(matrixmultiply::dgemm);
}

impl Kernels for f32 {
    const NAME: &'static str = "f32";
    const BYTES: usize = 4;
    const NAN: Self = f32::NAN;
    const INFINITY: Self = f32::INFINITY;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    const EPSILON: Self = f32::EPSILON;

    #[inline]
    fn lit(v: f64) -> Self {
        v as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn from_byte(v: u8) -> Self {
        f32::from(v)
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn read_le(bytes: &[u8]) -> Option<Self> {
        Some(f32::from_le_bytes(bytes.try_into().ok()?))
    }
    fn exp_in_place(x: &mut [Self]) {
        fast::exp_in_place(x);
    }
    fn softplus_sigmoid(x: &[Self], softplus: &mut [Self], sigmoid: &mut [Self]) {
        fast::softplus_sigmoid(x, softplus, sigmoid);
    }
    fn sigmoid_into(x: &[Self], out: &mut [Self]) {
        fast::sigmoid_into(x, out);
    }
    fn erfc(self) -> Self {
        libm::erfcf(self)
    }
    fn transpose_raw(src: &[Self], rows: crate::transpose::Rows, cols: usize, dst: &mut [Self]) {
        crate::transpose::f32s(src, rows, cols, dst);
    }
    fn direct(product: crate::direct::Product<'_, Self>) {
        crate::direct::run_f32(product);
    }
    gemm_raw!(matrixmultiply::sgemm);
}
