//! The crate's one error type.

use crate::Shape;

/// What a layer rejects. Every variant names the layer and carries the numbers; nothing a user
/// passes (a batch, a gradient, a configuration) makes a layer panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// A matrix has the wrong number of rows (features) for this layer.
    #[error("{layer}: {what} has {got} rows, expected {expected}")]
    ShapeMismatch {
        /// The layer's type name.
        layer: &'static str,
        /// Which matrix: `"input"` or `"gradient"`.
        what: &'static str,
        /// Rows the layer needs.
        expected: usize,
        /// Rows it was given.
        got: usize,
    },
    /// `backward` got a gradient for a different batch size than the last `forward`.
    #[error("{layer}: gradient has {got} columns but the last forward had a batch of {expected}")]
    BatchMismatch {
        /// The layer's type name.
        layer: &'static str,
        /// Batch size of the last forward pass.
        expected: usize,
        /// Columns of the gradient.
        got: usize,
    },
    /// `backward` was called before any `forward`.
    #[error("{layer}: backward called before forward")]
    NoForwardCache {
        /// The layer's type name.
        layer: &'static str,
    },
    /// The input shape does not match what the layer was configured for.
    #[error("{layer}: input shape {got}, expected {expected}")]
    InputShape {
        /// The layer's type name.
        layer: &'static str,
        /// The shape the layer was built for.
        expected: Shape,
        /// The shape it was given.
        got: Shape,
    },
    /// A size in the configuration is zero (channels, kernel, stride, dilation, features).
    #[error("{layer}: {what} must be at least 1, got 0")]
    ZeroSize {
        /// The layer's type name.
        layer: &'static str,
        /// Which size: `"kernel height"`, `"stride width"`, …
        what: &'static str,
    },
    /// The configuration leaves no output along an axis: `i + 2p < d(k − 1) + 1`.
    #[error(
        "{layer}: empty output along {axis}: {}; use a smaller kernel, more padding or a larger input",
        window_too_large(*input, *padding, *kernel, *dilation)
    )]
    EmptyOutput {
        /// The layer's type name.
        layer: &'static str,
        /// `"height"` or `"width"` (or `"length"` in 1-D).
        axis: &'static str,
        /// Input size along the axis.
        input: usize,
        /// Kernel size along the axis.
        kernel: usize,
        /// Zero padding on each side.
        padding: usize,
        /// Dilation along the axis.
        dilation: usize,
    },
    /// Max-pool padding larger than half the kernel (a window could be all padding).
    #[error("{layer}: padding {padding} along {axis} exceeds half the kernel {kernel}")]
    PaddingTooLarge {
        /// The layer's type name.
        layer: &'static str,
        /// `"height"` or `"width"`.
        axis: &'static str,
        /// Requested padding.
        padding: usize,
        /// Kernel size along the axis.
        kernel: usize,
    },
    /// A matrix given to replace a parameter has another shape.
    #[error(
        "{layer}: parameter `{param}` is {expected_rows}×{expected_cols}, got {got_rows}×{got_cols}"
    )]
    ParamShape {
        /// The layer (or parameter owner) name.
        layer: &'static str,
        /// The parameter's name.
        param: &'static str,
        /// Rows of the parameter.
        expected_rows: usize,
        /// Columns of the parameter.
        expected_cols: usize,
        /// Rows given.
        got_rows: usize,
        /// Columns given.
        got_cols: usize,
    },
    /// One example holds more values than the layer can index.
    #[error("{layer}: an example of {values} values exceeds the limit of {limit}")]
    TooLarge {
        /// The layer's type name.
        layer: &'static str,
        /// Values in one example.
        values: usize,
        /// The largest supported count.
        limit: usize,
    },
    /// A value of the configuration is outside its domain (a non-positive scale).
    #[error("{layer}: {what} = {value} is invalid: must be {requirement}")]
    InvalidValue {
        /// The layer's type name.
        layer: &'static str,
        /// Which value.
        what: &'static str,
        /// The value given.
        value: f64,
        /// What it must satisfy.
        requirement: &'static str,
    },
    /// A training batch too small for batch statistics (one value per channel has no
    /// variance).
    #[error(
        "{layer}: training needs more than one value per channel, got {values} \
         (a batch of {batch} with {per_example} per example); use a larger batch, or `infer` \
         with the running statistics"
    )]
    BatchTooSmall {
        /// The layer's type name.
        layer: &'static str,
        /// Values per channel in the batch.
        values: usize,
        /// Examples in the batch.
        batch: usize,
        /// Values per channel in one example.
        per_example: usize,
    },
    /// A layer description names a kind nobody registered.
    #[error(
        "no layer kind `{kind}` is registered (known: {known}); if it is a layer of your own, call retroprop_layers::register::<ItsConfig>() before loading"
    )]
    UnknownKind {
        /// The kind in the description.
        kind: String,
        /// The kinds registered, comma-separated.
        known: String,
    },
    /// A layer description's configuration does not fit its kind.
    #[error("the `{kind}` layer's description is invalid: {detail}")]
    Config {
        /// The kind.
        kind: String,
        /// What is wrong, in words.
        detail: String,
    },
    /// Two configuration types claim the same layer kind.
    #[error(
        "layer kind `{kind}` is already registered by {by}; give your layer another kind name (prefix it with your crate's name)"
    )]
    KindTaken {
        /// The kind.
        kind: &'static str,
        /// The configuration type that holds it.
        by: &'static str,
    },
    /// A parameter or buffer path names nothing in the layer.
    #[error("no {what} `{path}` in this network (it has: {known})")]
    UnknownPath {
        /// `"parameter"` or `"buffer"`.
        what: &'static str,
        /// The path asked for.
        path: String,
        /// The paths it has, comma-separated.
        known: String,
    },
    /// Tensors given to load a network do not match its parameters and buffers.
    #[error("{}", state_dict_mismatch(missing, unexpected, shapes))]
    StateDict {
        /// The network's tensors that were not given.
        missing: Vec<String>,
        /// Tensors given that the network does not have.
        unexpected: Vec<String>,
        /// Tensors given with another shape, in words.
        shapes: Vec<String>,
    },
    /// A batch said to be normalised already was given to a network whose first layer is not
    /// an input normalisation (`Sequential::forward_normalized`).
    #[error(
        "{layer}: the batch was normalised while loading, but the first layer ({first}) is not an input normalisation (Standardize); load it without normalising and call forward"
    )]
    NotNormalizing {
        /// The container's type name.
        layer: &'static str,
        /// The first layer's type name, or `"none"` for an empty network.
        first: &'static str,
    },
    /// A 1-D convolution got an empty signal or kernel.
    #[error("convolve1d: {what} is empty")]
    EmptyConvolution {
        /// `"signal"` or `"kernel"`.
        what: &'static str,
    },
}

/// `input + 2·padding < span` in words, the dilation named only where there is one (pooling
/// has none).
fn window_too_large(input: usize, padding: usize, kernel: usize, dilation: usize) -> String {
    if dilation == 1 {
        format!("input {input} + 2·padding {padding} is smaller than the kernel {kernel}")
    } else {
        format!(
            "input {input} + 2·padding {padding} is smaller than the dilated kernel, dilation {dilation}·(kernel {kernel} − 1) + 1"
        )
    }
}

/// Everything wrong with a state dict, in one sentence per kind of problem.
fn state_dict_mismatch(missing: &[String], unexpected: &[String], shapes: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing: {}", missing.join(", ")));
    }
    if !unexpected.is_empty() {
        parts.push(format!("unexpected: {}", unexpected.join(", ")));
    }
    if !shapes.is_empty() {
        parts.push(format!("wrong shapes: {}", shapes.join(", ")));
    }
    format!(
        "the tensors do not fit the network ({}); nothing was loaded",
        parts.join("; ")
    )
}
