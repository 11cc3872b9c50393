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
    /// The data (`retroprop-data`) rejected its input.
    #[error(transparent)]
    Dataset(#[from] retroprop_data::DataError),
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
    /// The data source holds no example.
    #[error("the data set holds no example: there is nothing to train on or evaluate")]
    EmptyData,
    /// The data source's examples have another size than the model's input.
    #[error(
        "the data's examples have {features} features ({examples} examples), but the model takes {expected}"
    )]
    Data {
        /// Examples in the source.
        examples: usize,
        /// Features per example in the source.
        features: usize,
        /// Features the model's input has.
        expected: usize,
    },
    /// Training produced a non-finite loss or parameter. The model was put back to its
    /// parameters at the end of epoch `restored_epoch` (0: the initial ones); `report` holds
    /// the epochs that completed before. The optimizer's state (momentum) is not restored.
    #[error(
        "training diverged at epoch {epoch}, step {step}: {what} is {value:e}; the model is back to its parameters {} — lower the learning rate or the weight decay",
        restored_description(*restored_epoch)
    )]
    Diverged {
        /// Epoch where it happened, from 1.
        epoch: usize,
        /// Optimizer step within the epoch, from 1 (the last step for a parameter check).
        step: usize,
        /// What was not finite: `"the loss"` or `"parameter 0.weight[12]"`.
        what: String,
        /// The value found.
        value: f64,
        /// The epoch whose parameters the model now holds (0: before training).
        restored_epoch: usize,
        /// The epochs completed before the divergence.
        report: crate::FitReport,
    },
    /// The model's outputs are not one score per class of the data (nor one logit for two
    /// classes): its predictions could not be counted.
    #[error(
        "the model has {outputs} outputs but the data have {classes} classes: a classifier needs one output per class (or one logit for two classes)"
    )]
    Classes {
        /// Outputs of the model.
        outputs: usize,
        /// Classes of the data.
        classes: usize,
    },
    /// A learning-rate schedule gives a rate that is zero, negative or not finite.
    #[error(
        "the learning-rate schedule gives η = {rate:e} at epoch {epoch} (base η = {base:e}): every rate must be finite and > 0; change the decay factor or its step"
    )]
    Schedule {
        /// Epoch, from 1.
        epoch: usize,
        /// The rate the schedule gives there.
        rate: f64,
        /// The base rate.
        base: f64,
    },
    /// A training setting outside its domain (zero epochs, zero batch size).
    #[error("{name} = {value} is invalid: must be at least 1")]
    Setting {
        /// Which setting.
        name: &'static str,
        /// The value given.
        value: usize,
    },
    /// Data-parallel training cannot go on: a rank's parameters differ, a layer is not
    /// supported, or the communication failed.
    #[error("distributed training: {detail}")]
    Collective {
        /// What went wrong, naming the rank.
        detail: String,
    },
    /// An early-stopping threshold outside its domain.
    #[error("early stopping: min_delta = {min_delta} is invalid: must be finite and ≥ 0")]
    EarlyStopping {
        /// The value given.
        min_delta: f64,
    },
    /// A resumed run asks for no more epochs than it has done.
    #[error(
        "the run has already done {done} epochs and {epochs} were asked for in total: ask for more epochs than {done} to continue it"
    )]
    NothingToResume {
        /// Epochs done.
        done: usize,
        /// Total epochs asked for.
        epochs: usize,
    },
}

fn restored_description(epoch: usize) -> String {
    match epoch {
        0 => "from before training".to_string(),
        e => format!("after epoch {e}, the last good one"),
    }
}
