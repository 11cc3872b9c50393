//! Out-of-place transposes, 8 × 8 tiles at a time (AVX shuffles for `f32`).
//!
//! A convolution's weight gradient `dL/dW = Σ_positions x_tap ⊗ δ` is summed by
//! [`crate::direct::gemm_positions`] with vectors along the output channels, so it reads the
//! output gradient as `δᵀ` (`P × C_out`, each position's channels contiguous); `δ` arrives as
//! `C_out × P`, and this transposes it once per example.
#![allow(unsafe_code)]

use crate::Scalar;

/// Side of the square tiles the transpose works in.
const TILE: usize = 8;

/// `dst ← srcᵀ`: `src` is `rows × cols` row-major with rows `ld` apart (`ld ≥ cols`); `dst`
/// receives the `cols × rows` transpose, row-major and contiguous (`dst[j·rows + i] =
/// src[i·ld + j]`).
///
/// ```
/// use retroprop_core::transpose::transpose;
///
/// // 2 × 3, rows 4 apart (the last value of each row is not part of the matrix)
/// let src = [1.0_f32, 2.0, 3.0, 0.0, 4.0, 5.0, 6.0, 0.0];
/// let mut dst = [0.0; 6];
/// transpose(&src, 2, 3, 4, &mut dst);
/// assert_eq!(dst, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// ```
///
/// # Panics
/// If `ld < cols`, `src` is shorter than `(rows − 1)·ld + cols`, or `dst` shorter than
/// `rows·cols` — a bug in the caller, never user input.
pub fn transpose<T: Scalar>(src: &[T], rows: usize, cols: usize, ld: usize, dst: &mut [T]) {
    assert!(ld >= cols, "transpose: rows overlap");
    transpose_checked(src, Rows { count: rows, ld }, cols, dst);
}

/// The rows of the matrix to transpose: `count` rows, `ld` values apart, the first at 0.
#[derive(Clone, Copy, Debug)]
pub struct Rows {
    /// Number of rows.
    pub count: usize,
    /// Distance between the starts of consecutive rows.
    pub ld: usize,
}

impl Rows {
    /// Number of rows.
    #[inline]
    pub fn len(self) -> usize {
        self.count
    }

    /// Whether there are no rows.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.count == 0
    }

    /// Where row `i` starts.
    #[inline]
    pub fn start(self, i: usize) -> usize {
        i * self.ld
    }

    /// One past the last value a row of `cols` values reads (0 without rows).
    fn end(self, cols: usize) -> usize {
        match self.count {
            0 => 0,
            count => (count - 1) * self.ld + cols,
        }
    }
}

/// Checks the extents, then transposes (no allocation: this runs per block of a convolution).
fn transpose_checked<T: Scalar>(src: &[T], rows: Rows, cols: usize, dst: &mut [T]) {
    if rows.is_empty() || cols == 0 {
        return;
    }
    assert!(
        rows.end(cols) <= src.len() && dst.len() >= rows.len() * cols,
        "transpose: operand exceeds its buffer"
    );
    T::transpose_raw(src, rows, cols, dst);
}

/// The portable transpose, tile by tile (both the reads and the writes of a tile stay in a few
/// cache lines). The caller has checked the extents.
pub(crate) fn generic<T: Copy>(src: &[T], starts: Rows, cols: usize, dst: &mut [T]) {
    let rows = starts.len();
    for i0 in (0..rows).step_by(TILE) {
        let i1 = (i0 + TILE).min(rows);
        for j0 in (0..cols).step_by(TILE) {
            for j in j0..(j0 + TILE).min(cols) {
                let out = &mut dst[j * rows + i0..j * rows + i1];
                for (o, i) in out.iter_mut().zip(i0..i1) {
                    *o = src[starts.start(i) + j];
                }
            }
        }
    }
}

/// The `f32` transpose: full 8 × 8 tiles with AVX when the CPU has it, the edges that do not
/// fill a tile element by element (on a CPU without AVX, all of it by [`generic`]). The caller
/// has checked the extents.
pub(crate) fn f32s(src: &[f32], starts: Rows, cols: usize, dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX (checked above); the extents were checked by the caller.
        unsafe { avx::transpose(src, starts, cols, dst) };
        return;
    }
    generic(src, starts, cols, dst);
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::{
        __m256, _mm256_loadu_ps, _mm256_permute2f128_ps, _mm256_shuffle_ps, _mm256_storeu_ps,
        _mm256_unpackhi_ps, _mm256_unpacklo_ps,
    };

    use super::{Rows, TILE};

    /// # Safety
    /// The CPU has AVX; every `starts[i] + cols ≤ src.len()`, `dst` holds `rows·cols`.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn transpose(src: &[f32], starts: Rows, cols: usize, dst: &mut [f32]) {
        let rows = starts.len();
        let (full_rows, full_cols) = (rows / TILE * TILE, cols / TILE * TILE);
        for i0 in (0..full_rows).step_by(TILE) {
            let rows_of_tile: [*const f32; TILE] =
                std::array::from_fn(|i| src[starts.start(i0 + i)..].as_ptr());
            for j0 in (0..full_cols).step_by(TILE) {
                // SAFETY: rows i0..i0+8 and columns j0..j0+8 are inside both matrices.
                unsafe { tile(rows_of_tile, j0, dst.as_mut_ptr().add(j0 * rows + i0), rows) };
            }
        }
        // the right-hand columns and the bottom rows that do not fill a tile
        for j in full_cols..cols {
            for i in 0..full_rows {
                dst[j * rows + i] = src[starts.start(i) + j];
            }
        }
        for j in 0..cols {
            for i in full_rows..rows {
                dst[j * rows + i] = src[starts.start(i) + j];
            }
        }
    }

    /// One 8 × 8 tile: columns `j0..j0 + 8` of the eight rows, into rows of `dst` `ld_dst`
    /// apart.
    ///
    /// # Safety
    /// AVX; 8 values readable at each `row + j0`, 8 rows of 8 writable at `dst`.
    #[target_feature(enable = "avx")]
    unsafe fn tile(rows: [*const f32; TILE], j0: usize, dst: *mut f32, ld_dst: usize) {
        // SAFETY: the caller's contract.
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(rows[i].add(j0)));
            // pairs of rows interleaved: t[2k] = (r[2k], r[2k+1]) low halves of each lane…
            let t = [
                _mm256_unpacklo_ps(r[0], r[1]),
                _mm256_unpackhi_ps(r[0], r[1]),
                _mm256_unpacklo_ps(r[2], r[3]),
                _mm256_unpackhi_ps(r[2], r[3]),
                _mm256_unpacklo_ps(r[4], r[5]),
                _mm256_unpackhi_ps(r[4], r[5]),
                _mm256_unpacklo_ps(r[6], r[7]),
                _mm256_unpackhi_ps(r[6], r[7]),
            ];
            // …then quadruples: s[k] holds columns k and k + 4 of rows 0–3 (k < 4) or 4–7
            let s = [
                _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
            ];
            // columns 0–3 from the low 128-bit lanes, 4–7 from the high ones
            for k in 0..4 {
                let low = _mm256_permute2f128_ps::<0x20>(s[k], s[k + 4]);
                let high = _mm256_permute2f128_ps::<0x31>(s[k], s[k + 4]);
                _mm256_storeu_ps(dst.add(k * ld_dst), low);
                _mm256_storeu_ps(dst.add((k + 4) * ld_dst), high);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(src: &[f32], rows: usize, cols: usize, ld: usize) -> Vec<f32> {
        let mut want = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                want[j * rows + i] = src[i * ld + j];
            }
        }
        want
    }

    #[test]
    fn every_shape_around_the_tile_size_matches_the_definition() {
        for rows in [1, 3, 7, 8, 9, 16, 17, 30] {
            for cols in [1, 2, 8, 11, 16, 25] {
                for pad in [0, 3] {
                    let ld = cols + pad;
                    let src: Vec<f32> = (0..rows * ld).map(|v| v as f32 * 0.5 - 7.0).collect();
                    let want = reference(&src, rows, cols, ld);
                    let mut fast = vec![f32::NAN; rows * cols];
                    transpose(&src, rows, cols, ld, &mut fast);
                    assert_eq!(fast, want, "{rows} × {cols}, ld {ld}");
                    let mut portable = vec![f32::NAN; rows * cols];
                    generic(&src, Rows { count: rows, ld }, cols, &mut portable);
                    assert_eq!(portable, want, "portable {rows} × {cols}, ld {ld}");
                    let src64: Vec<f64> = src.iter().map(|&v| f64::from(v)).collect();
                    let mut out64 = vec![f64::NAN; rows * cols];
                    transpose(&src64, rows, cols, ld, &mut out64);
                    let want64: Vec<f64> = want.iter().map(|&v| f64::from(v)).collect();
                    assert_eq!(out64, want64, "f64 {rows} × {cols}, ld {ld}");
                }
            }
        }
    }

    #[test]
    fn an_empty_matrix_writes_nothing() {
        let mut dst = [1.0_f32; 2];
        transpose(&[], 0, 5, 5, &mut dst);
        transpose(&[], 4, 0, 0, &mut dst);
        assert_eq!(dst, [1.0, 1.0]);
    }

    #[test]
    #[should_panic(expected = "exceeds its buffer")]
    fn a_short_source_is_a_caller_bug() {
        transpose(&[0.0_f32; 5], 2, 3, 3, &mut [0.0; 6]);
    }
}
