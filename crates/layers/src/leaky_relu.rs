//! Leaky ReLU: ReLU with a small slope for negative inputs (PyTorch's `nn.LeakyReLU`).

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use serde::{Deserialize, Serialize};

use crate::activation::Cache;
use crate::linalg::{map, zip_map};
use crate::{Layer, LayerConfig, LayerError, LayerSpec, Shape};

const NAME: &str = "LeakyRelu";

/// The configuration of a [`LeakyRelu`]: its negative slope (kind `"LeakyRelu"`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeakyReluConfig {
    /// `α`, the slope for negative inputs (PyTorch's `negative_slope`, default 0.01).
    pub negative_slope: f64,
}

impl Default for LeakyReluConfig {
    fn default() -> Self {
        Self {
            negative_slope: 0.01,
        }
    }
}

impl LayerConfig for LeakyReluConfig {
    const KIND: &'static str = NAME;
    fn build<T: Scalar>(&self, _: Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError> {
        Ok(Box::new(LeakyRelu::new(self.negative_slope)?))
    }
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(Ok(Vec::new()))
    }
}

/// `y = x` for `x > 0`, `α x` otherwise, element-wise.
///
/// ```text
/// dL/dx = dL/dy ⊙ (1 if x > 0, else α)       (α at x = 0, as PyTorch)
/// ```
#[derive(Clone, Debug)]
pub struct LeakyRelu<T: Scalar> {
    slope: f64,
    alpha: T,
    input: Cache<T>,
}

impl<T: Scalar> LeakyRelu<T> {
    /// Leaky ReLU with negative slope `α`.
    ///
    /// # Errors
    /// [`LayerError::InvalidValue`] unless `α` is finite.
    pub fn new(negative_slope: f64) -> Result<Self, LayerError> {
        if !negative_slope.is_finite() {
            return Err(LayerError::InvalidValue {
                layer: NAME,
                what: "negative slope",
                value: negative_slope,
                requirement: "finite",
            });
        }
        Ok(Self {
            slope: negative_slope,
            alpha: T::lit(negative_slope),
            input: Cache::default(),
        })
    }

    fn apply(&self, x: &DMatrix<T>) -> DMatrix<T> {
        let alpha = self.alpha;
        map(x, |v| if v > T::zero() { v } else { alpha * v })
    }
}

impl<T: Scalar> Layer<T> for LeakyRelu<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn spec(&self) -> LayerSpec {
        let config = LeakyReluConfig {
            negative_slope: self.slope,
        };
        LayerSpec::new(LeakyReluConfig::KIND, &config)
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        Ok(input)
    }

    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let y = self.apply(x);
        self.input.kept = Some(x.clone());
        Ok(y)
    }

    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let x = self.input.get(NAME, grad_y)?;
        let alpha = self.alpha;
        Ok(zip_map(x, grad_y, |v, g| {
            if v > T::zero() { g } else { alpha * g }
        }))
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        Ok(self.apply(x))
    }
}
