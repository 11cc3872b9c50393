//! The one way element-wise work is shared between the cores: cut it at item boundaries, by
//! halving, into one part per thread of the [`team`](crate::team), and run the parts with
//! [`team::join`](crate::team::join), when it holds at least [`SPLIT_MIN_VALUES`] values.
//!
//! Every entry of element-wise work is computed independently, so the result does not depend on
//! whether or where the work was split: the bits are the same at any thread count.

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
    let values = work.items().saturating_mul(work.values_per_item());
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

#[cfg(test)]
mod tests {
    use super::*;

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
