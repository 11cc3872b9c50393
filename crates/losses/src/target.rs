//! What a loss compares predictions with, how it reduces a batch, and what it returns.

use nalgebra::DMatrix;
use retroprop_core::Scalar;

use crate::LossError;

/// The targets of a batch.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a, T: Scalar> {
    /// One class label per example, `0 ≤ y < classes` (the homework's `y`, counted from 0).
    Labels(&'a [usize]),
    /// One target column per example, same shape as the predictions: one-hot or soft class
    /// probabilities `c` (question 1m), or regression targets.
    Dense(&'a DMatrix<T>),
}

/// How the per-example losses of a batch become one number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// The empirical risk `R̂ = (1/n) Σᵢ L(x⁽ⁱ⁾, y⁽ⁱ⁾)` of question 2i (the default).
    #[default]
    Mean,
    /// `Σᵢ L(x⁽ⁱ⁾, y⁽ⁱ⁾)`.
    Sum,
    /// No reduction: the per-example losses are in [`LossOutput::per_example`]; `value` and
    /// `grad` are those of the sum (column `i` of the gradient is `∂Lᵢ/∂ predictionᵢ`).
    None,
}

impl Reduction {
    /// The factor applied to every per-example gradient: `1/n` for the mean, else 1.
    pub(crate) fn scale<T: Scalar>(self, n: usize) -> T {
        match self {
            Reduction::Mean if n > 0 => T::one() / T::lit(n as f64),
            _ => T::one(),
        }
    }
}

/// A loss evaluated on a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct LossOutput<T: Scalar> {
    /// The reduced loss: mean or sum of `per_example` (sum for [`Reduction::None`]).
    pub value: T,
    /// `Lᵢ` for each example, before reduction.
    pub per_example: Vec<T>,
    /// The gradient of `value` with respect to the predictions, same shape as them.
    pub grad: DMatrix<T>,
}

/// A differentiable loss of a batch of predictions (one column per example).
///
/// `evaluate` returns the loss and its gradient with respect to the predictions — exactly the
/// `dL/dy` to hand to the network's `backward`.
pub trait Loss<T: Scalar>: Send + Sync {
    /// The loss's name, for errors and logs.
    fn name(&self) -> &'static str;

    /// How this loss reduces a batch (training loops that split a batch into chunks need it to
    /// weight the chunks).
    fn reduction(&self) -> Reduction;

    /// Loss and gradient of a batch.
    ///
    /// # Errors
    /// [`LossError`] when the targets do not fit the predictions (count, shape, label range,
    /// non-finite values).
    fn evaluate(
        &self,
        prediction: &DMatrix<T>,
        target: Target<'_, T>,
    ) -> Result<LossOutput<T>, LossError>;
}

/// Checks the number of examples.
pub(crate) fn check_batch(
    loss: &'static str,
    predictions: usize,
    targets: usize,
) -> Result<(), LossError> {
    if predictions == targets {
        Ok(())
    } else {
        Err(LossError::BatchMismatch {
            loss,
            predictions,
            targets,
        })
    }
}

/// Checks a dense target's shape and that every value is finite and within `[min, max]`.
pub(crate) fn check_dense<T: Scalar>(
    loss: &'static str,
    prediction: &DMatrix<T>,
    target: &DMatrix<T>,
    (min, max): (f64, f64),
) -> Result<(), LossError> {
    check_batch(loss, prediction.ncols(), target.ncols())?;
    if prediction.nrows() != target.nrows() {
        return Err(LossError::ShapeMismatch {
            loss,
            predictions: prediction.nrows(),
            targets: target.nrows(),
        });
    }
    let rows = target.nrows().max(1);
    for (k, &v) in target.as_slice().iter().enumerate() {
        let (index, row) = (k / rows, k % rows);
        let value = v.to_f64();
        if !value.is_finite() {
            return Err(LossError::NonFiniteTarget { loss, index, row });
        }
        if value < min || value > max {
            return Err(LossError::TargetOutOfRange {
                loss,
                index,
                row,
                value,
                min,
                max,
            });
        }
    }
    Ok(())
}

/// Checks class labels against the number of classes.
pub(crate) fn check_labels(
    loss: &'static str,
    predictions: usize,
    labels: &[usize],
    classes: usize,
) -> Result<(), LossError> {
    check_batch(loss, predictions, labels.len())?;
    match labels.iter().position(|&y| y >= classes) {
        Some(index) => Err(LossError::LabelOutOfRange {
            loss,
            index,
            label: labels[index],
            classes,
        }),
        None => Ok(()),
    }
}

/// Reduces per-example losses: mean or sum (sum for `None`).
pub(crate) fn reduce<T: Scalar>(per_example: &[T], reduction: Reduction) -> T {
    let sum = per_example.iter().fold(T::zero(), |acc, &l| acc + l);
    sum * reduction.scale::<T>(per_example.len())
}
