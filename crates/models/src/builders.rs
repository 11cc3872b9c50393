//! The networks of the homework, ready to train or inspect.

use retroprop_core::Scalar;
use retroprop_layers::{
    Conv2d, Conv2dConfig, Dense, Flatten, Init, MaxPool2d, MaxPool2dConfig, Relu, Shape, Softplus,
    Standardize,
};

use crate::{ModelError, Sequential};

/// Derives the seed of layer `k` from a network seed, so layers do not share weights.
pub(crate) fn layer_init(init: Init, k: u64) -> Init {
    let derive = |seed: u64| seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(k);
    match init {
        Init::XavierUniform { seed } => Init::XavierUniform { seed: derive(seed) },
        Init::HeUniform { seed } => Init::HeUniform { seed: derive(seed) },
        Init::PyTorchDefault { seed } => Init::PyTorchDefault { seed: derive(seed) },
        Init::XavierNormal { seed } => Init::XavierNormal { seed: derive(seed) },
        Init::HeNormal { seed } => Init::HeNormal { seed: derive(seed) },
        Init::Zeros => Init::Zeros,
    }
}

/// The MLP of part 2: `d → d_h` softplus `→ m`, ending in the logits `oᵃ`.
///
/// ```text
/// hᵃ = W⁽¹⁾ x + b⁽¹⁾,  hˢ = softplus(hᵃ)     (2a)     W⁽¹⁾: d_h × d,  b⁽¹⁾: d_h
/// oᵃ = W⁽²⁾ hˢ + b⁽²⁾                         (2b)     W⁽²⁾: m × d_h,  b⁽²⁾: m
/// oˢ = softmax(oᵃ)                            (2c)     in the loss (`CrossEntropy`) or
///                                                      `Sequential::predict_proba`
/// n_θ = d_h·d + d_h + m·d_h + m               (2i)
/// ```
///
/// The output softmax is fused into the cross-entropy, which takes logits and differentiates to
/// `oˢ − onehot(y)` (2l) without ever taking the log of a probability.
///
/// ```
/// use retroprop_layers::{Init, Layer};
/// use retroprop_models::{ModelError, mlp};
///
/// # fn main() -> Result<(), ModelError> {
/// let net = mlp::<f32>(784, 256, 10, Init::XavierUniform { seed: 1 })?;
/// assert_eq!(net.param_count(), 256 * 784 + 256 + 10 * 256 + 10);   // 203 530
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`ModelError::Layer`] if a size is zero.
pub fn mlp<T: Scalar>(
    d: usize,
    d_h: usize,
    m: usize,
    init: Init,
) -> Result<Sequential<T>, ModelError> {
    Sequential::new(Shape::Flat(d))
        .push(Dense::new(d, d_h, layer_init(init, 0))?)?
        .push(Softplus::new())?
        .push(Dense::new(d_h, m, layer_init(init, 1))?)
}

/// The convolutional network of part 3: a 3×128×128 RGB image → 32 kernels 8×8, stride 2,
/// zero padding 3 → 2×2 max-pool without overlap → 64 kernels 3×3, stride 1, padding 1.
///
/// ```text
/// 3×128×128 → Conv2d → 32×64×64 → MaxPool2d → 32×32×32 → Conv2d → 64×32×32   (3a: 65 536 values)
/// last layer: 3·3·32·64 = 18 432 weights + 64 biases                         (3b)
/// ```
///
/// ```
/// use retroprop_layers::{Init, Shape};
/// use retroprop_models::{ModelError, homework_cnn};
///
/// # fn main() -> Result<(), ModelError> {
/// let net = homework_cnn::<f32>(Init::HeUniform { seed: 1 })?;
/// assert_eq!(net.shapes(), &[Shape::image(32, 64, 64), Shape::image(32, 32, 32), Shape::image(64, 32, 32)]);
/// assert_eq!(net.output_shape().len(), 65_536);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// Never for these fixed sizes; the `Result` is the builders' common signature.
pub fn homework_cnn<T: Scalar>(init: Init) -> Result<Sequential<T>, ModelError> {
    Sequential::new(Shape::image(3, 128, 128))
        .push(Conv2d::new(
            Conv2dConfig::new((3, 128, 128), 32, 8).stride(2).padding(3),
            layer_init(init, 0),
        )?)?
        .push(MaxPool2d::new(MaxPool2dConfig::new((32, 64, 64), 2))?)?
        .push(Conv2d::new(
            Conv2dConfig::new((32, 32, 32), 64, 3).padding(1),
            layer_init(init, 1),
        )?)
}

/// An input standardisation `(x − mean) / std`, the first layer of a classifier built here
/// (a [`Standardize`] layer: the preprocessing travels with the checkpoint, which then takes raw
/// inputs). For MNIST: `retroprop_data::mnist::{MEAN, STD}`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standardization {
    /// Subtracted from every input.
    pub mean: f64,
    /// Divides every centred input.
    pub std: f64,
}

/// Starts a network on `input`, standardised if asked.
pub(crate) fn start<T: Scalar>(
    input: Shape,
    standardize: Option<Standardization>,
) -> Result<Sequential<T>, ModelError> {
    let net = Sequential::new(input);
    match standardize {
        Some(s) => net.push(Standardize::new(s.mean, s.std)?),
        None => Ok(net),
    }
}

/// The MLP of part 2 as a classifier of `features` inputs into `classes`: an optional
/// standardisation, then `features → d_h` softplus `→ classes` logits (for MNIST: 784 features,
/// 10 classes, `Standardization { mean: 0.1307, std: 0.3081 }`).
///
/// ```
/// use retroprop_layers::{Init, Layer};
/// use retroprop_models::{ModelError, Standardization, mlp_classifier};
///
/// # fn main() -> Result<(), ModelError> {
/// let mnist = Standardization { mean: 0.1307, std: 0.3081 };
/// let net = mlp_classifier::<f32>(784, 256, 10, Some(mnist), Init::XavierUniform { seed: 1 })?;
/// assert_eq!(net.param_count(), 203_530);    // the standardisation holds buffers, not parameters
/// assert_eq!(net.buffer_count(), 2);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`ModelError::Layer`] if a size is zero or the standardisation is invalid.
pub fn mlp_classifier<T: Scalar>(
    features: usize,
    d_h: usize,
    classes: usize,
    standardize: Option<Standardization>,
    init: Init,
) -> Result<Sequential<T>, ModelError> {
    start(Shape::Flat(features), standardize)?
        .push(Dense::new(features, d_h, layer_init(init, 0))?)?
        .push(Softplus::new())?
        .push(Dense::new(d_h, classes, layer_init(init, 1))?)
}

/// A small CNN classifier of `C×H×W` images into `classes`: an optional standardisation, two
/// convolution + ReLU + max-pool blocks and a dense classifier — for MNIST (1×28×28, 10
/// classes) the network of the peer benchmark `mnist_cnn`.
///
/// ```text
/// C×H×W → standardise → conv 8@5×5 pad 2 → ReLU → pool 2 → 8×⌊H/2⌋×⌊W/2⌋
///       → conv 16@5×5 pad 2 → ReLU → pool 2 → 16×⌊H/4⌋×⌊W/4⌋ → flatten → dense (logits)
/// ```
///
/// # Errors
/// [`ModelError::Layer`] if the image is too small for two poolings (under 4×4) or a size is
/// zero.
pub fn cnn_classifier<T: Scalar>(
    (c, h, w): (usize, usize, usize),
    classes: usize,
    standardize: Option<Standardization>,
    init: Init,
) -> Result<Sequential<T>, ModelError> {
    let (h2, w2) = (h / 2, w / 2);
    let (h4, w4) = (h2 / 2, w2 / 2);
    start(Shape::image(c, h, w), standardize)?
        .push(Conv2d::new(
            Conv2dConfig::new((c, h, w), 8, 5).padding(2),
            layer_init(init, 0),
        )?)?
        .push(Relu::new())?
        .push(MaxPool2d::new(MaxPool2dConfig::new((8, h, w), 2))?)?
        .push(Conv2d::new(
            Conv2dConfig::new((8, h2, w2), 16, 5).padding(2),
            layer_init(init, 1),
        )?)?
        .push(Relu::new())?
        .push(MaxPool2d::new(MaxPool2dConfig::new((16, h2, w2), 2))?)?
        .push(Flatten::new())?
        .push(Dense::new(16 * h4 * w4, classes, layer_init(init, 2))?)
}
