//! The crate's error types: one for building and training models, one for checkpoints.

use retroprop_layers::{LayerError, Shape};
use retroprop_losses::LossError;
use retroprop_optim::OptimError;

/// What can go wrong building, running or training a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A layer rejected its input or gradient.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The loss rejected the targets.
    #[error(transparent)]
    Loss(#[from] LossError),
    /// The optimizer rejected the model or a hyper-parameter.
    #[error(transparent)]
    Optim(#[from] OptimError),
    /// A layer added to a `Sequential` cannot take the previous layer's output.
    #[error("layer #{index} ({layer}) cannot take input of shape {input}: {source}")]
    Incompatible {
        /// Position the layer would have.
        index: usize,
        /// The layer's name.
        layer: &'static str,
        /// The shape it would receive.
        input: Shape,
        /// Why it refuses.
        source: Box<LayerError>,
    },
    /// An architecture description names a layer this crate cannot rebuild (a custom layer):
    /// build the model yourself and load the parameters into it.
    #[error(
        "cannot rebuild layer `{layer}` from its description; build the model and use load_into"
    )]
    CannotBuild {
        /// The layer's name.
        layer: String,
    },
    /// The data source is empty or its examples have another size than the model's input.
    #[error(
        "data: {examples} examples of {features} features; the model takes {expected} features"
    )]
    Data {
        /// Examples in the source.
        examples: usize,
        /// Features per example in the source.
        features: usize,
        /// Features the model's input has.
        expected: usize,
    },
    /// A training setting outside its domain (zero epochs, zero batch size).
    #[error("{name} = {value} is invalid: must be at least 1")]
    Setting {
        /// Which setting.
        name: &'static str,
        /// The value given.
        value: usize,
    },
}
