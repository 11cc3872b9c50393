//! The crate's one error type.

/// What a loss rejects: targets that do not match the predictions. Every variant carries the
/// index of the offending example so the bad row of a dataset can be found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LossError {
    /// Predictions and targets disagree on the number of examples.
    #[error("{loss}: {predictions} predictions but {targets} targets")]
    BatchMismatch {
        /// The loss.
        loss: &'static str,
        /// Examples (columns) in the predictions.
        predictions: usize,
        /// Examples in the targets.
        targets: usize,
    },
    /// A dense target has another number of rows than the predictions.
    #[error("{loss}: predictions have {predictions} rows but targets have {targets}")]
    ShapeMismatch {
        /// The loss.
        loss: &'static str,
        /// Rows of the predictions.
        predictions: usize,
        /// Rows of the targets.
        targets: usize,
    },
    /// A class label is not below the number of classes.
    #[error("{loss}: label {label} of example {index} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// The loss.
        loss: &'static str,
        /// The example.
        index: usize,
        /// Its label.
        label: usize,
        /// The number of classes (rows of the predictions; 2 for binary losses).
        classes: usize,
    },
    /// A target value is NaN or infinite.
    #[error("{loss}: target of example {index}, row {row} is not finite")]
    NonFiniteTarget {
        /// The loss.
        loss: &'static str,
        /// The example.
        index: usize,
        /// The row within the example.
        row: usize,
    },
    /// A target value lies outside the range the loss is defined on (a probability for the
    /// cross-entropies).
    #[error("{loss}: target {value} of example {index}, row {row} is outside [{min}, {max}]")]
    TargetOutOfRange {
        /// The loss.
        loss: &'static str,
        /// The example.
        index: usize,
        /// The row within the example.
        row: usize,
        /// The value found.
        value: f64,
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// The loss needs one output per example (a binary loss) but the predictions have more.
    #[error("{loss}: expects {expected} output row(s) per example, got {got}")]
    OutputRows {
        /// The loss.
        loss: &'static str,
        /// Rows the loss works on.
        expected: usize,
        /// Rows given.
        got: usize,
    },
}
