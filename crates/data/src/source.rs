//! `Source`: what training and evaluation read labelled examples from, and `InMemory`, a
//! source over a matrix.

use nalgebra::DMatrix;
use retroprop_core::{Normalize, Scalar, split};

use crate::DataError;

/// A labelled classification dataset that hands out examples by index.
///
/// Implement it over your own storage (`Images` keeps grey levels as bytes and converts each
/// batch on the fly); [`InMemory`] holds a matrix and labels. An example is one column of
/// [`features`](Source::features) values (an image in C×H×W order); labels are in
/// `0..classes()`.
pub trait Source<T: Scalar>: Sync {
    /// Number of examples.
    fn len(&self) -> usize;

    /// `true` if there is no example.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per example (rows of a batch).
    fn features(&self) -> usize;

    /// Number of classes.
    fn classes(&self) -> usize;

    /// Writes examples `indices` as the columns of `x` (already `features × indices.len()`) and
    /// their labels into `labels` (cleared first).
    fn gather(&self, indices: &[usize], x: &mut DMatrix<T>, labels: &mut Vec<usize>);

    /// Examples `indices` as the columns of a new matrix, each value put through `normalize`
    /// (a network's leading standardisation, applied while loading; [`Normalize::identity`]
    /// keeps the values), and their labels into `labels` (cleared first).
    ///
    /// The default gathers into a zeroed matrix and normalises it in place; a source that
    /// converts its storage anyway ([`Images`](crate::Images)) does both in one pass and
    /// writes the new matrix once.
    fn gather_new(
        &self,
        indices: &[usize],
        labels: &mut Vec<usize>,
        normalize: Normalize<T>,
    ) -> DMatrix<T> {
        let mut x = DMatrix::zeros(self.features(), indices.len());
        self.gather(indices, &mut x, labels);
        if normalize != Normalize::identity() {
            split::halves(x.as_mut_slice(), |part| {
                for v in part {
                    *v = normalize.apply(*v);
                }
            });
        }
        x
    }
}

/// A dataset in memory: one column per example, and its labels.
#[derive(Clone, Debug, PartialEq)]
pub struct InMemory<T: Scalar> {
    x: DMatrix<T>,
    labels: Vec<usize>,
    classes: usize,
}

impl<T: Scalar> InMemory<T> {
    /// A dataset of the columns of `x` with `labels` in `0..classes`.
    ///
    /// # Errors
    /// [`DataError::Labels`] if there is not one label per column or a label is out of range.
    pub fn new(x: DMatrix<T>, labels: Vec<usize>, classes: usize) -> Result<Self, DataError> {
        if labels.len() != x.ncols() {
            return Err(DataError::Labels {
                detail: format!(
                    "{} examples (columns) but {} labels: give one label per column",
                    x.ncols(),
                    labels.len()
                ),
            });
        }
        if let Some(index) = labels.iter().position(|&y| y >= classes) {
            return Err(DataError::Labels {
                detail: format!(
                    "label {} of example {index} is not in 0..{classes}",
                    labels[index]
                ),
            });
        }
        Ok(Self { x, labels, classes })
    }

    /// The examples, one per column.
    pub fn x(&self) -> &DMatrix<T> {
        &self.x
    }

    /// The labels.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }
}

impl<T: Scalar> Source<T> for InMemory<T> {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn features(&self) -> usize {
        self.x.nrows()
    }
    fn classes(&self) -> usize {
        self.classes
    }
    fn gather(&self, indices: &[usize], x: &mut DMatrix<T>, labels: &mut Vec<usize>) {
        let rows = self.x.nrows();
        labels.clear();
        for (dst, &i) in x.as_mut_slice().chunks_exact_mut(rows.max(1)).zip(indices) {
            dst.copy_from_slice(&self.x.as_slice()[i * rows..(i + 1) * rows]);
            labels.push(self.labels[i]);
        }
    }
}
