//! The networks the program trains on MNIST: the library's classifiers with MNIST's image size,
//! class count and standardisation (from `retroprop-data`).

use retroprop_data::mnist;
use retroprop_layers::Init;
use retroprop_models::{
    ModelError, ResNetOptions, Sequential, Standardization, cnn_classifier, mlp_classifier,
    resnet_classifier,
};

/// MNIST's pixel standardisation, part of every network the program builds.
const STANDARDIZATION: Standardization = Standardization {
    mean: mnist::MEAN,
    std: mnist::STD,
};

/// The MLP of part 2 on MNIST: standardise, `784 → d_h` softplus `→ 10` logits.
pub fn mnist_mlp<T: retroprop_core::Scalar>(
    d_h: usize,
    init: Init,
) -> Result<Sequential<T>, ModelError> {
    let (c, h, w) = mnist::IMAGE;
    mlp_classifier(c * h * w, d_h, mnist::CLASSES, Some(STANDARDIZATION), init)
}

/// The small CNN on MNIST (two conv + ReLU + pool blocks and a dense classifier).
pub fn mnist_cnn<T: retroprop_core::Scalar>(init: Init) -> Result<Sequential<T>, ModelError> {
    cnn_classifier(mnist::IMAGE, mnist::CLASSES, Some(STANDARDIZATION), init)
}

/// The residual CNN on MNIST (conv–BN–ReLU, two residual blocks, global average pooling).
pub fn mnist_resnet<T: retroprop_core::Scalar>(init: Init) -> Result<Sequential<T>, ModelError> {
    resnet_classifier(
        mnist::IMAGE,
        mnist::CLASSES,
        Some(STANDARDIZATION),
        ResNetOptions::default(),
        init,
    )
}
