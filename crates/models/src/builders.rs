//! The networks of the homework, ready to train or inspect.

use retroprop_core::Scalar;
use retroprop_layers::{
    Conv2d, Conv2dConfig, Dense, Flatten, Init, MaxPool2d, MaxPool2dConfig, Relu, Shape, Softplus,
    Standardize,
};

/// Mean of MNIST's training pixels scaled to `[0, 1]` (the value PyTorch's examples use;
/// `retroprop-data`'s tests recompute it from the files).
pub const MNIST_MEAN: f64 = 0.1307;
/// Standard deviation of MNIST's training pixels scaled to `[0, 1]`.
pub const MNIST_STD: f64 = 0.3081;

use crate::{ModelError, Sequential};

/// Derives the seed of layer `k` from a network seed, so layers do not share weights.
fn layer_init(init: Init, k: u64) -> Init {
    let derive = |seed: u64| seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(k);
    match init {
        Init::XavierUniform { seed } => Init::XavierUniform { seed: derive(seed) },
        Init::HeUniform { seed } => Init::HeUniform { seed: derive(seed) },
        Init::PyTorchDefault { seed } => Init::PyTorchDefault { seed: derive(seed) },
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

/// The MLP of part 2 for MNIST: pixels in `[0, 1]` standardised by a [`Standardize`] layer
/// (`(x − 0.1307)/0.3081`), then `784 → d_h` softplus `→ 10` logits. The preprocessing is part of
/// the network, so a checkpoint takes raw pixels.
///
/// # Errors
/// [`ModelError::Layer`] if `d_h` is zero.
pub fn mnist_mlp<T: Scalar>(d_h: usize, init: Init) -> Result<Sequential<T>, ModelError> {
    Sequential::new(Shape::Flat(784))
        .push(Standardize::new(MNIST_MEAN, MNIST_STD)?)?
        .push(Dense::new(784, d_h, layer_init(init, 0))?)?
        .push(Softplus::new())?
        .push(Dense::new(d_h, 10, layer_init(init, 1))?)
}

/// A small CNN for MNIST (1×28×28): standardisation, two convolution + ReLU + max-pool blocks
/// and a dense classifier — the network of the peer benchmark `mnist_cnn`.
///
/// ```text
/// 1×28×28 → standardise → conv 8@5×5 pad 2 → ReLU → pool 2 → 8×14×14
///         → conv 16@5×5 pad 2 → ReLU → pool 2 → 16×7×7 → flatten 784 → dense 10 (logits)
/// ```
///
/// # Errors
/// Never for these fixed sizes; the `Result` is the builders' common signature.
pub fn mnist_cnn<T: Scalar>(init: Init) -> Result<Sequential<T>, ModelError> {
    Sequential::new(Shape::image(1, 28, 28))
        .push(Standardize::new(MNIST_MEAN, MNIST_STD)?)?
        .push(Conv2d::new(
            Conv2dConfig::new((1, 28, 28), 8, 5).padding(2),
            layer_init(init, 0),
        )?)?
        .push(Relu::new())?
        .push(MaxPool2d::new(MaxPool2dConfig::new((8, 28, 28), 2))?)?
        .push(Conv2d::new(
            Conv2dConfig::new((8, 14, 14), 16, 5).padding(2),
            layer_init(init, 1),
        )?)?
        .push(Relu::new())?
        .push(MaxPool2d::new(MaxPool2dConfig::new((16, 14, 14), 2))?)?
        .push(Flatten::new())?
        .push(Dense::new(16 * 7 * 7, 10, layer_init(init, 2))?)
}
