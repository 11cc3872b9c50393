//! Copies of operands that start on a cache line.
//!
//! A vector of 16 `f32` (or 8 `f64`) is 64 bytes, a cache line. Loaded from an address that is
//! not a multiple of 64 it straddles two lines, and the load costs two: allocators align a
//! matrix's buffer to 16 bytes only, so the kernels of this module, reading nalgebra matrices
//! in place, lost a fifth of their rate (measured on one core, 784 × 256 weights against 128
//! examples: 148 GFLOP/s from the matrix's own buffer, 181 from an aligned copy of it). The
//! products whose vector operand is large enough to repay a copy read it from here.

use std::cell::RefCell;

use crate::Scalar;

/// Bytes in a cache line (and in an AVX-512 vector).
pub(super) const LINE: usize = 64;

/// Cache-line-sized storage: a buffer of them starts on a cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; LINE]);

/// The most a thread's buffer keeps between calls: 2 MiB, a core's L2 cache on the machines
/// measured (a larger copy would not stay in cache until the next call anyway).
const KEPT_LINES: usize = (2 << 20) / LINE;

thread_local! {
    /// Each thread's buffer for [`with_copy`], at most [`KEPT_LINES`] long: kept between
    /// calls, so that a copy writes to lines already in the core's cache.
    static BUFFER: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// Whether `data` starts on a cache line.
pub(super) fn is_aligned<T>(data: &[T]) -> bool {
    data.as_ptr().addr().is_multiple_of(LINE)
}

/// Values of `T` in a cache line: the lanes of the widest vector.
pub(super) fn lanes<T>() -> usize {
    LINE / size_of::<T>()
}

/// `len` values of `buf` that start on a cache line: `buf` grows to hold them past the first
/// line boundary in it. For a scratch buffer the kernels read vectors from (its values are
/// left as they were, but their offset in `buf` may change from call to call: fill the slice
/// before use).
///
/// ```
/// let mut buf: Vec<f32> = Vec::new();
/// let s = retroprop_core::direct::aligned_slice(&mut buf, 100);
/// assert_eq!(s.len(), 100);
/// assert_eq!(s.as_ptr().addr() % 64, 0);
/// s.fill(1.0);
/// ```
pub fn aligned_slice<T: Scalar>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    let spare = lanes::<T>();
    if buf.len() < len + spare {
        buf.resize(len + spare, T::zero());
    }
    // usize::MAX if the address cannot be aligned: then the slice starts where the buffer does
    let at = buf.as_ptr().align_offset(LINE);
    let at = if at < spare { at } else { 0 };
    &mut buf[at..at + len]
}

/// Runs `f` on a copy of `data` that starts on a cache line.
pub(super) fn with_copy<T: Scalar, R>(data: &[T], f: impl FnOnce(&[T]) -> R) -> R {
    let lines = size_of_val(data).div_ceil(LINE);
    let run = |buf: &mut Vec<Line>| {
        if buf.len() < lines {
            buf.resize(lines, Line([0; LINE]));
        }
        // SAFETY: `T` is `f32` or `f64` (`Kernels` is sealed): any bytes are a valid value, the
        // lines are aligned beyond `T` and hold at least `data.len()` values, and the slice
        // borrows `buf` mutably for its lifetime.
        let copy =
            unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<T>(), data.len()) };
        copy.copy_from_slice(data);
        f(copy)
    };
    // a copy larger than a core's cache, or a thread already inside this (a product nested in
    // another's part), takes a buffer of its own, freed afterwards
    if lines > KEPT_LINES {
        return run(&mut Vec::new());
    }
    BUFFER.with(|buf| match buf.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        Err(_) => run(&mut Vec::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_aligned_and_equal_at_every_offset_and_size() {
        let store: Vec<f32> = (0..3000).map(|i| i as f32 * 0.5).collect();
        for offset in 0..17 {
            for len in [0, 1, 15, 16, 17, 1000, 2983] {
                let data = &store[offset..offset + len];
                with_copy(data, |copy| {
                    assert!(is_aligned(copy) || copy.is_empty());
                    assert_eq!(copy, data);
                    // nested: a second buffer, the first unchanged
                    with_copy(&store[..5], |inner| assert_eq!(inner, &store[..5]));
                    assert_eq!(copy, data);
                });
            }
        }
        let mut buf = Vec::new();
        for len in [0, 1, 100, 7, 5000] {
            let s = aligned_slice::<f64>(&mut buf, len);
            assert!(s.len() == len && is_aligned(s));
        }
        let big = vec![1.5_f64; KEPT_LINES * lanes::<f64>() + 3];
        with_copy(&big, |copy| assert!(is_aligned(copy) && copy == &big[..]));
    }
}
