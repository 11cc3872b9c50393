//! The SIMD vectors the direct kernels are written against: one generic kernel body, compiled
//! for AVX-512, AVX2+FMA and a portable four-lane variant, in `f32` and `f64`.
//!
//! Every method is `unsafe` and `#[inline(always)]`: it is only called from inside a function
//! compiled with the vector's target features (see `super::kernel`), on pointers the checked
//! entry points of `super` have validated.

/// A SIMD vector of `LANES` values of `T`.
pub(super) trait Vector: Copy {
    /// The element type.
    type T: Copy;
    /// Which lanes a partial load or store touches.
    type Mask: Copy;
    /// Values per vector.
    const LANES: usize;
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// `*p` in every lane.
    unsafe fn splat(p: *const Self::T) -> Self;
    /// `LANES` values from `p`.
    unsafe fn load(p: *const Self::T) -> Self;
    /// Stores every lane at `p`.
    unsafe fn store(self, p: *mut Self::T);
    /// The first `n` lanes (`0 < n < LANES`).
    unsafe fn mask(n: usize) -> Self::Mask;
    /// The lanes of `m` from `p`, zero elsewhere; memory outside `m` is not read.
    unsafe fn load_masked(p: *const Self::T, m: Self::Mask) -> Self;
    /// Stores the lanes of `m` at `p`; memory outside `m` is not written.
    unsafe fn store_masked(self, p: *mut Self::T, m: Self::Mask);
    /// `self + a·b`, fused where the instruction set has it.
    unsafe fn mul_add(self, a: Self, b: Self) -> Self;
    /// `self + o`.
    unsafe fn add(self, o: Self) -> Self;

    /// A full load, or a masked one when `tail` is given.
    #[inline(always)]
    unsafe fn load_part(p: *const Self::T, tail: Option<Self::Mask>) -> Self {
        // SAFETY: the caller's, as for `load` and `load_masked`.
        unsafe {
            match tail {
                Some(m) => Self::load_masked(p, m),
                None => Self::load(p),
            }
        }
    }

    /// A full store, or a masked one when `tail` is given.
    #[inline(always)]
    unsafe fn store_part(self, p: *mut Self::T, tail: Option<Self::Mask>) {
        // SAFETY: the caller's, as for `store` and `store_masked`.
        unsafe {
            match tail {
                Some(m) => self.store_masked(p, m),
                None => self.store(p),
            }
        }
    }
}

/// The portable variant: four lanes as an array, which the compiler keeps in SSE registers.
/// `mul_add` is a multiplication and an addition (the baseline has no FMA).
#[derive(Clone, Copy)]
pub(super) struct Portable<T>([T; 4]);

macro_rules! portable {
    ($t:ty) => {
        impl Vector for Portable<$t> {
            type T = $t;
            type Mask = usize;
            const LANES: usize = 4;
            #[inline(always)]
            unsafe fn zero() -> Self {
                Self([0.0; 4])
            }
            #[inline(always)]
            unsafe fn splat(p: *const $t) -> Self {
                // SAFETY: the caller's: `p` is readable.
                Self([unsafe { *p }; 4])
            }
            #[inline(always)]
            unsafe fn load(p: *const $t) -> Self {
                // SAFETY: the caller's: four values from `p` are readable.
                Self(unsafe { std::ptr::read_unaligned(p.cast::<[$t; 4]>()) })
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut $t) {
                // SAFETY: the caller's: four values from `p` are writable.
                unsafe { std::ptr::write_unaligned(p.cast::<[$t; 4]>(), self.0) }
            }
            #[inline(always)]
            unsafe fn mask(n: usize) -> usize {
                n
            }
            #[inline(always)]
            unsafe fn load_masked(p: *const $t, n: usize) -> Self {
                let mut v = [0.0; 4];
                for (i, v) in v.iter_mut().enumerate().take(n) {
                    // SAFETY: the caller's: the first `n` values from `p` are readable.
                    *v = unsafe { *p.add(i) };
                }
                Self(v)
            }
            #[inline(always)]
            unsafe fn store_masked(self, p: *mut $t, n: usize) {
                for (i, &v) in self.0.iter().enumerate().take(n) {
                    // SAFETY: the caller's: the first `n` values from `p` are writable.
                    unsafe { *p.add(i) = v };
                }
            }
            #[inline(always)]
            unsafe fn mul_add(self, a: Self, b: Self) -> Self {
                Self(std::array::from_fn(|i| self.0[i] + a.0[i] * b.0[i]))
            }
            #[inline(always)]
            unsafe fn add(self, o: Self) -> Self {
                Self(std::array::from_fn(|i| self.0[i] + o.0[i]))
            }
        }
    };
}

portable!(f32);
portable!(f64);

#[cfg(target_arch = "x86_64")]
pub(super) use x86::{Avx2F32, Avx2F64, Avx512F32, Avx512F64};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Vector;

    /// Sixteen `f32` lanes (AVX-512F).
    #[derive(Clone, Copy)]
    pub(in super::super) struct Avx512F32(__m512);
    /// Eight `f64` lanes (AVX-512F).
    #[derive(Clone, Copy)]
    pub(in super::super) struct Avx512F64(__m512d);
    /// Eight `f32` lanes (AVX2 + FMA).
    #[derive(Clone, Copy)]
    pub(in super::super) struct Avx2F32(__m256);
    /// Four `f64` lanes (AVX2 + FMA).
    #[derive(Clone, Copy)]
    pub(in super::super) struct Avx2F64(__m256d);

    /// `-1` (all bits set) in the first `n` 32-bit lanes of eight: AVX2's mask for
    /// `vmaskmovps`, read from a sliding window of a constant table.
    #[inline(always)]
    unsafe fn mask32(n: usize) -> __m256i {
        const TABLE: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
        // SAFETY: `n ≤ 8`, so the eight values read are inside the table.
        unsafe { _mm256_loadu_si256(TABLE.as_ptr().add(8 - n).cast()) }
    }

    /// AVX-512's mask of the first `n` lanes.
    #[inline(always)]
    fn mask_bits(n: usize) -> u32 {
        (1_u32 << n) - 1
    }

    /// Implements [`Vector`] for one wrapper of an intrinsic vector type: the intrinsics of
    /// each operation, and how a mask of the first `n` lanes is made. AVX-512's masked load
    /// takes the mask first (`first`), AVX2's the pointer first.
    macro_rules! vector {
        ($name:ident: $t:ty, $lanes:expr, mask $mask:ty = |$n:ident| $make:expr;
         $zero:ident, $splat:ident, $load:ident, $store:ident, $mload:ident, $mstore:ident,
         $fma:ident, $add:ident, $($first:ident)?) => {
            impl Vector for $name {
                type T = $t;
                type Mask = $mask;
                const LANES: usize = $lanes;
                // SAFETY (every method): the vector's target features are enabled in the
                // function these are inlined into, and the pointers are valid for the lanes
                // touched (the trait's contract, checked by the callers).
                #[inline(always)]
                unsafe fn zero() -> Self {
                    Self(unsafe { $zero() })
                }
                #[inline(always)]
                unsafe fn splat(p: *const $t) -> Self {
                    Self(unsafe { $splat(*p) })
                }
                #[inline(always)]
                unsafe fn load(p: *const $t) -> Self {
                    Self(unsafe { $load(p) })
                }
                #[inline(always)]
                unsafe fn store(self, p: *mut $t) {
                    unsafe { $store(p, self.0) }
                }
                #[inline(always)]
                unsafe fn mask($n: usize) -> $mask {
                    #[allow(unused_unsafe)]
                    unsafe {
                        $make
                    }
                }
                #[inline(always)]
                unsafe fn load_masked(p: *const $t, m: $mask) -> Self {
                    Self(unsafe { vector!(@load $mload, p, m, $($first)?) })
                }
                #[inline(always)]
                unsafe fn store_masked(self, p: *mut $t, m: $mask) {
                    unsafe { $mstore(p, m, self.0) }
                }
                #[inline(always)]
                unsafe fn mul_add(self, a: Self, b: Self) -> Self {
                    Self(unsafe { $fma(a.0, b.0, self.0) })
                }
                #[inline(always)]
                unsafe fn add(self, o: Self) -> Self {
                    Self(unsafe { $add(self.0, o.0) })
                }
            }
        };
        (@load $f:ident, $p:ident, $m:ident, first) => { $f($m, $p) };
        (@load $f:ident, $p:ident, $m:ident,) => { $f($p, $m) };
    }

    vector!(Avx512F32: f32, 16, mask __mmask16 = |n| mask_bits(n) as __mmask16;
        _mm512_setzero_ps, _mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps,
        _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps, _mm512_fmadd_ps, _mm512_add_ps, first);
    vector!(Avx512F64: f64, 8, mask __mmask8 = |n| mask_bits(n) as __mmask8;
        _mm512_setzero_pd, _mm512_set1_pd, _mm512_loadu_pd, _mm512_storeu_pd,
        _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd, _mm512_fmadd_pd, _mm512_add_pd, first);
    vector!(Avx2F32: f32, 8, mask __m256i = |n| mask32(n);
        _mm256_setzero_ps, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps,
        _mm256_maskload_ps, _mm256_maskstore_ps, _mm256_fmadd_ps, _mm256_add_ps,);
    // a 64-bit lane is selected by its sign bit: two 32-bit lanes of −1 each
    vector!(Avx2F64: f64, 4, mask __m256i = |n| mask32(2 * n);
        _mm256_setzero_pd, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd,
        _mm256_maskload_pd, _mm256_maskstore_pd, _mm256_fmadd_pd, _mm256_add_pd,);
}
