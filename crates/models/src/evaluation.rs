//! Evaluation of a trained model: loss, accuracy and the confusion matrix, through `infer`.

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use retroprop_data::{Batch, Source};
use retroprop_layers::Layer;
use retroprop_losses::{Loss, Target};
use serde::Serialize;

use crate::train::check_source;
use crate::{MemoryEstimate, ModelError, Sequential};

/// Index of the largest entry of a column (the predicted class); for a single output, the
/// class is `1` if the logit is positive.
fn predicted_class<T: Scalar>(column: &[T]) -> usize {
    if column.len() == 1 {
        return usize::from(column[0] > T::zero());
    }
    let mut best = 0;
    for (k, &v) in column.iter().enumerate() {
        if v > column[best] {
            best = k;
        }
    }
    best
}

pub(crate) fn correct<T: Scalar>(logits: &DMatrix<T>, labels: &[usize]) -> usize {
    let rows = logits.nrows().max(1);
    logits
        .as_slice()
        .chunks_exact(rows)
        .zip(labels)
        .filter(|(col, y)| predicted_class(col) == **y)
        .count()
}

/// A confusion matrix: `counts[true class][predicted class]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfusionMatrix {
    /// Number of classes.
    pub classes: usize,
    /// Row-major `classes × classes` counts: row = true class, column = predicted class.
    pub counts: Vec<usize>,
}

impl ConfusionMatrix {
    /// An empty matrix.
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// Examples of class `truth` predicted as `predicted`; `None` if either is not a class.
    pub fn get(&self, truth: usize, predicted: usize) -> Option<usize> {
        if truth >= self.classes || predicted >= self.classes {
            return None;
        }
        self.counts.get(truth * self.classes + predicted).copied()
    }

    /// Examples counted.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Fraction on the diagonal.
    pub fn accuracy(&self) -> f64 {
        let right: usize = (0..self.classes).filter_map(|k| self.get(k, k)).sum();
        right as f64 / self.total().max(1) as f64
    }
}

impl std::fmt::Display for ConfusionMatrix {
    /// Rows are true classes, columns predicted classes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "true\\pred")?;
        for p in 0..self.classes {
            write!(f, "{p:>7}")?;
        }
        for t in 0..self.classes {
            write!(f, "\n{t:>9}")?;
            for p in 0..self.classes {
                write!(f, "{:>7}", self.get(t, p).unwrap_or(0))?;
            }
        }
        Ok(())
    }
}

/// The result of [`evaluate`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// Mean loss per example.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// Examples evaluated.
    pub examples: usize,
    /// Counts of (true, predicted) classes.
    pub confusion: ConfusionMatrix,
}

/// Loss, accuracy and confusion matrix of `model` on `data`, through `infer` (the model's
/// training state is untouched), in chunks of at most 1000 examples whose activations fit in
/// [`CHUNK_BYTES`](crate::memory::CHUNK_BYTES): the memory does not grow with the data set.
///
/// # Errors
/// [`ModelError`] if the data do not fit the model (features, or [`ModelError::Classes`] when
/// the model's outputs are not one per class) or the loss rejects the labels.
pub fn evaluate<T: Scalar>(
    model: &Sequential<T>,
    data: &dyn Source<T>,
    loss: &dyn Loss<T>,
) -> Result<Evaluation, ModelError> {
    rayon::scope(|_| evaluate_on_worker(model, data, loss))
}

fn evaluate_on_worker<T: Scalar>(
    model: &Sequential<T>,
    data: &dyn Source<T>,
    loss: &dyn Loss<T>,
) -> Result<Evaluation, ModelError> {
    check_source(model, data)?;
    let order: Vec<usize> = (0..data.len()).collect();
    let (loss_sum, confusion) = evaluate_indices(model, data, loss, &order)?;
    Ok(Evaluation {
        loss: loss_sum / data.len() as f64,
        accuracy: confusion.accuracy(),
        examples: data.len(),
        confusion,
    })
}

/// The loss summed over examples `indices` of `data` and their confusion counts (the data
/// checked by the caller).
pub(crate) fn evaluate_indices<T: Scalar>(
    model: &Sequential<T>,
    data: &dyn Source<T>,
    loss: &dyn Loss<T>,
    order: &[usize],
) -> Result<(f64, ConfusionMatrix), ModelError> {
    let classes = data.classes();
    let mut confusion = ConfusionMatrix::new(classes);
    let mut loss_sum = 0.0;
    let mut batch = Batch::new();
    for indices in order.chunks(MemoryEstimate::of(model).inference_chunk()) {
        batch.load(data, indices);
        let logits = model.infer(&batch.x)?;
        let out = loss.evaluate(&logits, Target::Labels(&batch.labels))?;
        loss_sum += out.per_example.iter().map(|l| l.to_f64()).sum::<f64>();
        let rows = logits.nrows().max(1);
        for (col, &y) in logits.as_slice().chunks_exact(rows).zip(&batch.labels) {
            // in range: check_source matched the outputs to the classes, and labels are checked
            // by the loss
            let p = predicted_class(col);
            confusion.counts[y * classes + p] += 1;
        }
    }
    Ok((loss_sum, confusion))
}
