//! The registry entries of this crate's layers: each kind's configuration and constructor.

use retroprop_core::Scalar;
use serde::{Deserialize, Serialize};

use crate::registry::{Entry, entry};
use crate::{
    Bias, Conv2d, Conv2dConfig, Dense, DenseConfig, Flatten, Init, Layer, LayerConfig, LayerError,
    MaxPool2d, MaxPool2dConfig, Relu, Sigmoid, Softmax, Softplus, Standardize, Tanh,
};

/// Every built-in kind, registered when the registry is first used.
pub(crate) fn entries() -> Vec<(&'static str, Entry)> {
    vec![
        entry::<DenseConfig>(),
        entry::<Conv2dConfig>(),
        entry::<MaxPool2dConfig>(),
        entry::<SoftplusConfig>(),
        entry::<SigmoidConfig>(),
        entry::<TanhConfig>(),
        entry::<ReluConfig>(),
        entry::<SoftmaxConfig>(),
        entry::<FlattenConfig>(),
        entry::<StandardizeConfig>(),
        entry::<crate::LeakyReluConfig>(),
        entry::<crate::DropoutConfig>(),
        entry::<crate::AvgPool2dConfig>(),
        entry::<crate::GeluConfig>(),
        entry::<crate::BatchNorm1dConfig>(),
        entry::<crate::BatchNorm2dConfig>(),
        entry::<crate::LayerNormConfig>(),
        entry::<crate::ResidualConfig>(),
    ]
}

fn boxed<T: Scalar, L: Layer<T> + 'static>(
    layer: Result<L, LayerError>,
) -> Result<Box<dyn Layer<T>>, LayerError> {
    layer.map(|l| Box::new(l) as Box<dyn Layer<T>>)
}

impl LayerConfig for DenseConfig {
    const KIND: &'static str = "Dense";
    fn build<T: Scalar>(&self, _: Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError> {
        boxed(Dense::new(self.d_in, self.d_out, Init::Zeros))
    }
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(
            crate::shape::checked_product("Dense", &[self.d_in, self.d_out])
                .map(|_| vec![(self.d_out, self.d_in), (self.d_out, 1)]),
        )
    }
}

impl LayerConfig for Conv2dConfig {
    const KIND: &'static str = "Conv2d";
    fn build<T: Scalar>(&self, _: Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError> {
        boxed(Conv2d::new(*self, Init::Zeros))
    }
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(self.output_size().map(|_| {
            let taps = self.in_channels * self.kernel.h * self.kernel.w;
            let mut shapes = vec![(self.out_channels, taps)];
            if self.bias == Bias::Learned {
                shapes.push((self.out_channels, 1));
            }
            shapes
        }))
    }
}

impl LayerConfig for MaxPool2dConfig {
    const KIND: &'static str = "MaxPool2d";
    fn build<T: Scalar>(&self, _: Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError> {
        boxed(MaxPool2d::new(*self))
    }
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(self.output_size().map(|_| Vec::new()))
    }
}

/// Kinds without a configuration (`null`), built by `new()`.
macro_rules! unit_kind {
    ($config:ident, $layer:ident, $kind:literal) => {
        #[doc = concat!("The configuration of [`", stringify!($layer), "`]: none.")]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $config;

        impl LayerConfig for $config {
            const KIND: &'static str = $kind;
            fn build<T: Scalar>(
                &self,
                _: Vec<Box<dyn Layer<T>>>,
            ) -> Result<Box<dyn Layer<T>>, LayerError> {
                Ok(Box::new($layer::<T>::new()))
            }
            fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
                Some(Ok(Vec::new()))
            }
        }
    };
}

unit_kind!(SoftplusConfig, Softplus, "Softplus");
unit_kind!(SigmoidConfig, Sigmoid, "Sigmoid");
unit_kind!(TanhConfig, Tanh, "Tanh");
unit_kind!(ReluConfig, Relu, "Relu");
unit_kind!(SoftmaxConfig, Softmax, "Softmax");

/// The configuration of [`Flatten`]: none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenConfig;

impl LayerConfig for FlattenConfig {
    const KIND: &'static str = "Flatten";
    fn build<T: Scalar>(&self, _: Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError> {
        Ok(Box::new(Flatten::new()))
    }
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(Ok(Vec::new()))
    }
}

/// The configuration of [`Standardize`]: none (its mean and standard deviation are buffers,
/// loaded with the checkpoint; it is built as the identity, mean 0 and std 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardizeConfig;

impl LayerConfig for StandardizeConfig {
    const KIND: &'static str = "Standardize";
    fn build<T: Scalar>(&self, _: Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError> {
        boxed(Standardize::new(0.0, 1.0))
    }
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(Ok(Vec::new()))
    }
}
