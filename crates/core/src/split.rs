//! The one way element-wise work is shared between the cores: cut it at item boundaries, by
//! halving, into one part per thread of the [`team`](crate::team), and run the parts with
//! [`team::join`](crate::team::join), when it holds at least [`SPLIT_MIN_VALUES`] values.
//!
//! Every entry of element-wise work is computed independently, so the result does not depend on
//! whether or where the work was split: the bits are the same at any thread count.

#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use crate::Scalar;

/// Element-wise work of at least this many values is split in two. Below it, handing half to
/// the other core costs more than it saves: measured on the 2-core machine, the crossover of a
/// softplus+σ pass, a parameter update and a gradient fill is between 2¹⁴ and 2¹⁵ values (tens
/// of microseconds of work against about one microsecond of hand-over), and the conversion of a
/// batch of MNIST pixels crosses over at 64 images (50 176 values).
pub const SPLIT_MIN_VALUES: usize = 1 << 15;

/// Work that can be cut at an item boundary into two independent halves: slices, bundles of
/// slices cut at the same item, and [`Chunks`] of fixed-size items.
pub trait Split: Sized + Send {
    /// Items held (each a value of a slice, or a chunk of [`Chunks`]).
    fn items(&self) -> usize;
    /// Values in one item.
    fn values_per_item(&self) -> usize {
        1
    }
    /// The first `mid` items and the rest.
    fn split_at(self, mid: usize) -> (Self, Self);
}

impl<T: Send> Split for &mut [T] {
    fn items(&self) -> usize {
        self.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid)
    }
}

impl<T: Sync> Split for &[T] {
    fn items(&self) -> usize {
        self.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        <[T]>::split_at(self, mid)
    }
}

impl<T: Send> Split for Vec<&mut [T]> {
    /// The items of the first slice (the bundle's slices have equal lengths).
    fn items(&self) -> usize {
        self.first().map_or(usize::MAX, |s| s.len())
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        self.into_iter().map(|s| s.split_at_mut(mid)).unzip()
    }
}

impl<A: Split, B: Split> Split for (A, B) {
    fn items(&self) -> usize {
        self.0.items().min(self.1.items())
    }
    fn values_per_item(&self) -> usize {
        self.0.values_per_item().max(self.1.values_per_item())
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let ((a1, a2), (b1, b2)) = (self.0.split_at(mid), self.1.split_at(mid));
        ((a1, b1), (a2, b2))
    }
}

impl<A: Split, B: Split, C: Split> Split for (A, B, C) {
    fn items(&self) -> usize {
        self.0.items().min(self.1.items()).min(self.2.items())
    }
    fn values_per_item(&self) -> usize {
        self.0
            .values_per_item()
            .max(self.1.values_per_item())
            .max(self.2.values_per_item())
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let ((a1, a2), (b1, b2), (c1, c2)) = (
            self.0.split_at(mid),
            self.1.split_at(mid),
            self.2.split_at(mid),
        );
        ((a1, b1, c1), (a2, b2, c2))
    }
}

/// The indices of the items of the work it is paired with (to know which part is which).
impl Split for std::ops::Range<usize> {
    fn items(&self) -> usize {
        self.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let mid = self.start + mid;
        (self.start..mid, mid..self.end)
    }
}

/// A slice seen as consecutive items of `size` values (the columns of a batch).
#[derive(Debug)]
pub struct Chunks<'a, T> {
    /// The values, `size` per item.
    pub data: &'a mut [T],
    /// Values per item (at least 1).
    pub size: usize,
}

impl<T: Send> Split for Chunks<'_, T> {
    fn items(&self) -> usize {
        self.data.len() / self.size.max(1)
    }
    fn values_per_item(&self) -> usize {
        self.size.max(1)
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (a, b) = self.data.split_at_mut(mid * self.size.max(1));
        (
            Chunks {
                data: a,
                size: self.size,
            },
            Chunks {
                data: b,
                size: self.size,
            },
        )
    }
}

/// Runs `f` on `work`, or on parts of it on several cores when it holds at least
/// [`SPLIT_MIN_VALUES`] values: as many parts as [`team::threads`](crate::team::threads) (two on
/// a 2-core machine), none smaller than half of [`SPLIT_MIN_VALUES`], cut at item boundaries by
/// halving.
///
/// ```
/// use retroprop_core::split::halves;
///
/// let x: Vec<f32> = (0..100_000).map(|i| i as f32).collect();
/// let mut y = vec![0.0f32; x.len()];
/// halves((&x[..], &mut y[..]), |(x, y)| {
///     for (y, &x) in y.iter_mut().zip(x) {
///         *y = 2.0 * x;
///     }
/// });
/// assert_eq!(y[99_999], 199_998.0);
/// ```
pub fn halves<S: Split>(work: S, f: impl Fn(S) + Sync) {
    weighted_halves(work, 1, f);
}

/// As [`halves`], for work whose values each cost about `weight` times a simple element-wise
/// operation (an add, a multiply): it is split from `SPLIT_MIN_VALUES / weight` values. A
/// cross-entropy's column (a softmax, a logarithm, two sums over 10 logits) costs 80 ns, a
/// weight of about 30 per value.
///
/// ```
/// let mut y = vec![0.0f64; 2000];
/// retroprop_core::split::weighted_halves(&mut y[..], 25, |part| part.fill(1.0));
/// assert!(y.iter().all(|&v| v == 1.0));
/// ```
pub fn weighted_halves<S: Split>(work: S, weight: usize, f: impl Fn(S) + Sync) {
    let values = work
        .items()
        .saturating_mul(work.values_per_item())
        .saturating_mul(weight.max(1));
    let parts = if values < SPLIT_MIN_VALUES {
        1
    } else {
        crate::team::threads().min(values / (SPLIT_MIN_VALUES / 2))
    };
    in_parts(work, &f, parts);
}

/// Runs `f` on `work` cut into `parts` parts by halving (a `team::join` per cut).
pub(crate) fn in_parts<S: Split>(work: S, f: &(impl Fn(S) + Sync), parts: usize) {
    let items = work.items();
    if parts < 2 || items < 2 {
        f(work);
        return;
    }
    let left = parts / 2;
    let (a, b) = work.split_at(items * left / parts);
    crate::team::join(
        || in_parts(a, f, left),
        move || in_parts(b, f, parts - left),
    );
}

/// `f(aᵢ)` for every value of `a`, in a new vector, shared between the cores as [`halves`]
/// shares work, each part compiled for the best instruction set
/// ([`vectorized`](crate::simd::vectorized)); the output is written once, never zero-filled
/// first.
///
/// ```
/// let y = retroprop_core::split::map(&[1.0_f32, -2.0, 3.0], |v| v.max(0.0));
/// assert_eq!(y, [1.0, 0.0, 3.0]);
/// ```
pub fn map<T: Scalar>(a: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    new_vec(a.len(), a, |out, a| {
        // indexed over slices of one length: LLVM vectorises this form (zipped iterators over
        // `MaybeUninit` came out scalar)
        let a = &a[..out.len()];
        for i in 0..out.len() {
            out[i].write(f(a[i]));
        }
    })
}

/// `f(aᵢ, bᵢ)` for every pair of values, in a new vector, as [`map`] (`a` and `b` have the
/// same length; a longer one's extra values are ignored).
///
/// ```
/// let y = retroprop_core::split::zip_map(&[1.0_f64, 2.0], &[10.0, 20.0], |a, b| a * b);
/// assert_eq!(y, [10.0, 40.0]);
/// ```
pub fn zip_map<T: Scalar>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) -> Vec<T> {
    new_vec(a.len().min(b.len()), (a, b), |out, (a, b)| {
        // indexed, as in `map`
        let (a, b) = (&a[..out.len()], &b[..out.len()]);
        for i in 0..out.len() {
            out[i].write(f(a[i], b[i]));
        }
    })
}

/// Two new vectors of `x.len()` values, written by `f(x, first, second)` over matching parts of
/// `x` and of both, shared between the cores as [`halves`] shares work — for kernels that
/// write slices, such as a softplus pass that also keeps `σ(x)`. Each part is zeroed on the
/// core that then overwrites it, where a zeroed allocation would fill both vectors on the
/// calling core first.
///
/// ```
/// let (double, square) = retroprop_core::split::fill_pair(&[1.0_f32, 3.0], |x, d, s| {
///     for ((&x, d), s) in x.iter().zip(d).zip(s) {
///         (*d, *s) = (2.0 * x, x * x);
///     }
/// });
/// assert_eq!((double, square), (vec![2.0, 6.0], vec![1.0, 9.0]));
/// ```
pub fn fill_pair<T: Scalar>(
    x: &[T],
    f: impl Fn(&[T], &mut [T], &mut [T]) + Sync,
) -> (Vec<T>, Vec<T>) {
    let len = x.len();
    let (mut first, mut second) = (Vec::with_capacity(len), Vec::with_capacity(len));
    let work = (
        &mut first.spare_capacity_mut()[..len],
        &mut second.spare_capacity_mut()[..len],
        x,
    );
    halves(work, |(a, b, x)| f(x, zeroed(a), zeroed(b)));
    // SAFETY: the parts cover the `len` values of each vector once, and `zeroed` wrote them.
    unsafe {
        first.set_len(len);
        second.set_len(len);
    }
    (first, second)
}

/// A new vector of `items.len()` columns of `size` values: `fill(ahead, column)` writes the
/// column of item `ahead[0]` (`ahead` goes on with the later items of the same part, for a
/// caller that prefetches them). Shared between the cores as [`halves`] shares work, each part
/// compiled for the best instruction set ([`vectorized`](crate::simd::vectorized)). Each column
/// is zeroed just before `fill` overwrites it, while its lines are in the core's L1 cache, where
/// a zeroed allocation would write the whole vector once more on the calling core first.
///
/// ```
/// let items = [3.0_f32, 5.0];
/// let x = retroprop_core::split::new_columns(2, &items, |ahead, column| column.fill(ahead[0]));
/// assert_eq!(x, [3.0, 3.0, 5.0, 5.0]);
/// ```
pub fn new_columns<T: Scalar, I: Sync>(
    size: usize,
    items: &[I],
    fill: impl Fn(&[I], &mut [T]) + Sync,
) -> Vec<T> {
    if size == 0 {
        return Vec::new();
    }
    let len = size * items.len();
    let mut out = Vec::with_capacity(len);
    let columns = Chunks {
        data: &mut out.spare_capacity_mut()[..len],
        size,
    };
    halves((columns, items), |(columns, items)| {
        crate::simd::vectorized(
            #[inline(always)]
            || {
                for (p, column) in columns.data.chunks_exact_mut(size).enumerate() {
                    fill(&items[p..], zeroed(column));
                }
            },
        );
    });
    // SAFETY: the parts cover the `len` values once each, column by column, and `zeroed` wrote
    // every value of each column.
    unsafe { out.set_len(len) };
    out
}

/// `out` with every value written 0.
fn zeroed<T: Scalar>(out: &mut [MaybeUninit<T>]) -> &mut [T] {
    for o in out.iter_mut() {
        o.write(T::zero());
    }
    // SAFETY: every value was written just above, and `MaybeUninit<T>` has the layout of `T`.
    unsafe { &mut *(std::ptr::from_mut(out) as *mut [T]) }
}

/// A vector of `len` values written by `fill(out, part)` over the parts of `work`, whose items
/// are the output's values: `fill` writes every value of `out` (one per item of `part`; the
/// callers above zip the two).
fn new_vec<T: Scalar, S: Split>(
    len: usize,
    work: S,
    fill: impl Fn(&mut [MaybeUninit<T>], S) + Sync,
) -> Vec<T> {
    debug_assert!(work.items() >= len);
    let mut out = Vec::with_capacity(len);
    halves(
        (&mut out.spare_capacity_mut()[..len], work),
        |(out, part)| {
            crate::simd::vectorized(
                #[inline(always)]
                || fill(out, part),
            );
        },
    );
    // SAFETY: the parts cover the `len` values once each, and `fill` wrote every value of its
    // part (both callers write one value per item, zipped with the input).
    unsafe { out.set_len(len) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_and_zip_map_write_every_value_at_every_size() {
        for n in [0, 1, 17, SPLIT_MIN_VALUES - 1, 2 * SPLIT_MIN_VALUES + 3] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 - 7.5).collect();
            let b: Vec<f32> = (0..n).map(|i| (i % 5) as f32).collect();
            let y = map(&a, |v| v * 2.0 + 1.0);
            assert!(y.len() == n && y.iter().zip(&a).all(|(&y, &a)| y == a * 2.0 + 1.0));
            let z = zip_map(&a, &b, |a, b| a - b);
            assert!(
                z.len() == n
                    && z.iter()
                        .zip(a.iter().zip(&b))
                        .all(|(&z, (&a, &b))| z == a - b)
            );
        }
        assert_eq!(zip_map(&[1.0_f64, 2.0, 3.0], &[1.0], |a, b| a + b), [2.0]);
    }

    #[test]
    fn fill_pair_hands_every_value_to_one_part() {
        for n in [0, 3, 2 * SPLIT_MIN_VALUES + 1] {
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let (a, b) = fill_pair(&x, |x, a, b| {
                assert!(a.iter().chain(b.iter()).all(|&v| v == 0.0), "handed zeroed");
                for ((&x, a), b) in x.iter().zip(a).zip(b) {
                    (*a, *b) = (x + 1.0, -x);
                }
            });
            assert!(a.iter().zip(&x).all(|(&a, &x)| a == x + 1.0) && a.len() == n);
            assert!(b.iter().zip(&x).all(|(&b, &x)| b == -x) && b.len() == n);
        }
    }

    #[test]
    fn new_columns_writes_each_column_once_from_its_item() {
        // sizes around the split: 64 columns of 784 values are split, 3 are not
        for (size, n) in [
            (784, 0),
            (784, 3),
            (784, 64),
            (1, 2 * SPLIT_MIN_VALUES + 1),
            (0, 5),
        ] {
            let items: Vec<usize> = (0..n).map(|i| 7 * i + 1).collect();
            let x = new_columns(size, &items, |ahead, column: &mut [f32]| {
                assert!(column.iter().all(|&v| v == 0.0), "handed zeroed");
                // `ahead` is this column's item and the later ones, in order
                assert!(ahead.windows(2).all(|w| w[1] == w[0] + 7));
                for (p, v) in column.iter_mut().enumerate() {
                    *v = (ahead[0] * 1000 + p) as f32;
                }
            });
            assert_eq!(x.len(), size * n);
            for (j, column) in x.chunks(size.max(1)).enumerate() {
                assert!(
                    column
                        .iter()
                        .enumerate()
                        .all(|(p, &v)| v == (items[j] * 1000 + p) as f32),
                    "column {j} of {n}, size {size}"
                );
            }
        }
    }

    #[test]
    fn halves_cover_the_work_once_at_item_boundaries() {
        for n in [
            0,
            1,
            5,
            SPLIT_MIN_VALUES - 1,
            SPLIT_MIN_VALUES,
            3 * SPLIT_MIN_VALUES + 7,
        ] {
            let mut seen = vec![0u8; n];
            halves(&mut seen[..], |part| {
                for s in part {
                    *s += 1;
                }
            });
            assert!(seen.iter().all(|&s| s == 1), "n = {n}");
        }
        // chunks of 784 values: each half holds whole items
        let mut data = vec![0u32; 784 * 65];
        let labels: Vec<u32> = (0..65).collect();
        halves(
            (
                Chunks {
                    data: &mut data,
                    size: 784,
                },
                &labels[..],
            ),
            |(chunks, labels)| {
                assert_eq!(chunks.data.len(), 784 * labels.len());
                for (col, &l) in chunks.data.chunks_exact_mut(784).zip(labels) {
                    col.fill(l);
                }
            },
        );
        assert!(
            data.chunks(784)
                .enumerate()
                .all(|(i, c)| c.iter().all(|&v| v == i as u32))
        );
    }
}
