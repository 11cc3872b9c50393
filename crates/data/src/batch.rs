//! Batching, written once: a reusable batch buffer, the seeded order of each epoch, and a
//! lending iterator of mini-batches over any [`Source`].

use nalgebra::DMatrix;
use retroprop_core::rng::Rng;
use retroprop_core::{Normalize, Scalar};

use crate::Source;

/// One batch of examples (`features × n`) and their labels, reallocated only when the batch
/// size changes (the last, smaller batch of an epoch).
#[derive(Clone, Debug, Default)]
pub struct Batch<T: Scalar> {
    /// The examples, one per column.
    pub x: DMatrix<T>,
    /// Their labels.
    pub labels: Vec<usize>,
}

impl<T: Scalar> Batch<T> {
    /// An empty buffer.
    pub fn new() -> Self {
        Self {
            x: DMatrix::zeros(0, 0),
            labels: Vec::new(),
        }
    }

    /// Fills the buffer with examples `indices` of `source`.
    pub fn load(&mut self, source: &dyn Source<T>, indices: &[usize]) {
        if self.x.shape() != (source.features(), indices.len()) {
            self.x = DMatrix::zeros(source.features(), indices.len());
        }
        source.gather(indices, &mut self.x, &mut self.labels);
    }

    /// Fills the buffer with examples `indices` of `source` in a new matrix, each value put
    /// through `normalize` ([`Source::gather_new`]): for a caller that hands the examples on
    /// with [`Batch::take_x`] instead of reusing the buffer.
    pub fn load_new(&mut self, source: &dyn Source<T>, indices: &[usize], normalize: Normalize<T>) {
        self.x = source.gather_new(indices, &mut self.labels, normalize);
    }

    /// Takes the examples out, leaving a 0 × 0 matrix (the labels stay): a network's forward
    /// pass then keeps them without a copy (`Layer::forward_owned`).
    pub fn take_x(&mut self) -> DMatrix<T> {
        std::mem::replace(&mut self.x, DMatrix::zeros(0, 0))
    }
}

/// The order in which each epoch visits the examples: `0..n` shuffled by a seeded generator,
/// once per epoch, each epoch from the previous order (PyTorch's `RandomSampler` with a seeded
/// generator). Epoch `k` depends only on the seed and `k`, so a resumed run skips the epochs it
/// has done ([`EpochOrder::skip`]) and sees the order it would have seen.
#[derive(Clone, Debug)]
pub struct EpochOrder {
    rng: Rng,
    order: Vec<usize>,
}

impl EpochOrder {
    /// The order of `n` examples under `seed`, before the first epoch.
    pub fn new(n: usize, seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            order: (0..n).collect(),
        }
    }

    /// Shuffles for the next epoch and returns its order.
    pub fn next_epoch(&mut self) -> &[usize] {
        self.rng.shuffle(&mut self.order);
        &self.order
    }

    /// Skips `epochs` epochs (the shuffles of a run being resumed).
    pub fn skip(&mut self, epochs: usize) {
        for _ in 0..epochs {
            self.rng.shuffle(&mut self.order);
        }
    }

    /// The current order, unshuffled (`0..n`) before the first epoch.
    pub fn current(&self) -> &[usize] {
        &self.order
    }
}

/// Mini-batches of one shuffled epoch of a source, served from one buffer (a lending iterator:
/// each batch borrows it until the next call).
///
/// ```
/// use retroprop_core::nalgebra::DMatrix;
/// use retroprop_data::{Batches, InMemory};
///
/// let data = InMemory::new(DMatrix::from_fn(2, 10, |i, j| (i + j) as f64), (0..10).map(|j| j % 2).collect(), 2)?;
/// let mut batches = Batches::new(&data, 4, 7);
/// let mut sizes = Vec::new();
/// while let Some((x, labels)) = batches.next() {
///     assert_eq!(x.ncols(), labels.len());
///     sizes.push(labels.len());
/// }
/// assert_eq!(sizes, [4, 4, 2]);
/// # Ok::<(), retroprop_data::DataError>(())
/// ```
pub struct Batches<'a, T: Scalar> {
    source: &'a dyn Source<T>,
    order: Vec<usize>,
    size: usize,
    next: usize,
    batch: Batch<T>,
}

impl<'a, T: Scalar> Batches<'a, T> {
    /// Batches of `size` examples (at least 1) in the first epoch's order under `seed`.
    pub fn new(source: &'a dyn Source<T>, size: usize, seed: u64) -> Self {
        let order = EpochOrder::new(source.len(), seed).next_epoch().to_vec();
        Self {
            source,
            order,
            size: size.max(1),
            next: 0,
            batch: Batch::new(),
        }
    }

    /// The next batch: `features × batch` values and the labels; `None` at the end.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<(&DMatrix<T>, &[usize])> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = (self.next + self.size).min(self.order.len());
        self.batch.load(self.source, &self.order[self.next..end]);
        self.next = end;
        Some((&self.batch.x, &self.batch.labels))
    }
}

impl<T: Scalar> std::fmt::Debug for Batches<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("examples", &self.order.len())
            .field("size", &self.size)
            .field("next", &self.next)
            .finish()
    }
}
