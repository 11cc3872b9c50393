//! A layer written outside retroprop: LeCun's scaled hyperbolic tangent `y = a · tanh(b · x)`,
//! with its two hyperparameters saved in checkpoints.
//!
//! ```text
//! y = a tanh(b x)            dL/dx = a b (1 − tanh²(b x)) ⊙ dL/dy
//! ```
//!
//! Three steps make it a first-class layer: a configuration type ([`ScaledTanhConfig`], serde),
//! a [`Layer`] implementation whose `spec` returns it, and one call to [`register`] — after
//! which `retroprop_models::checkpoint::load` rebuilds networks holding it, hyperparameters
//! included, with no network rebuilt by hand.

use retroprop_layers::nalgebra::DMatrix;
use retroprop_layers::{Layer, LayerConfig, LayerError, LayerSpec, Scalar, Shape};
use serde::{Deserialize, Serialize};

/// The hyperparameters of a [`ScaledTanh`]: what its checkpoint entry records.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaledTanhConfig {
    /// The output scale `a`.
    pub a: f64,
    /// The input scale `b`.
    pub b: f64,
}

impl ScaledTanhConfig {
    /// LeCun's choice (Efficient BackProp, 1998): `a = 1.7159`, `b = 2/3`, so `f(±1) = ±1`.
    pub const LECUN: Self = Self {
        a: 1.7159,
        b: 2.0 / 3.0,
    };
}

impl LayerConfig for ScaledTanhConfig {
    /// Prefixed with the crate's name, as every downstream kind should be.
    const KIND: &'static str = "downstream.ScaledTanh";

    fn build<T: Scalar>(
        &self,
        _children: Vec<Box<dyn Layer<T>>>,
    ) -> Result<Box<dyn Layer<T>>, LayerError> {
        Ok(Box::new(ScaledTanh::new(*self)?))
    }

    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(Ok(Vec::new()))
    }
}

/// Registers [`ScaledTanhConfig`] (call once before loading a checkpoint that holds the layer;
/// calling it again does nothing).
///
/// # Errors
/// [`LayerError::KindTaken`] if another crate registered the same kind.
pub fn register() -> Result<(), LayerError> {
    retroprop_layers::register::<ScaledTanhConfig>()
}

/// `y = a · tanh(b · x)`, element-wise.
#[derive(Clone, Debug)]
pub struct ScaledTanh<T: Scalar> {
    config: ScaledTanhConfig,
    a: T,
    b: T,
    /// `tanh(b x)` of the last forward pass.
    tanh: Option<DMatrix<T>>,
}

impl<T: Scalar> ScaledTanh<T> {
    /// The layer with these hyperparameters.
    ///
    /// # Errors
    /// [`LayerError::InvalidValue`] unless `a` and `b` are finite.
    pub fn new(config: ScaledTanhConfig) -> Result<Self, LayerError> {
        for (what, value) in [("a", config.a), ("b", config.b)] {
            if !value.is_finite() {
                return Err(LayerError::InvalidValue {
                    layer: "ScaledTanh",
                    what,
                    value,
                    requirement: "finite",
                });
            }
        }
        Ok(Self {
            config,
            a: T::lit(config.a),
            b: T::lit(config.b),
            tanh: None,
        })
    }

    /// `tanh(b x)`.
    fn inner(&self, x: &DMatrix<T>) -> DMatrix<T> {
        x.map(|v| (self.b * v).tanh())
    }
}

impl<T: Scalar> Layer<T> for ScaledTanh<T> {
    fn name(&self) -> &'static str {
        "ScaledTanh"
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::new(ScaledTanhConfig::KIND, &self.config)
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        Ok(input)
    }

    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let t = self.inner(x);
        let y = t.map(|v| self.a * v);
        self.tanh = Some(t);
        Ok(y)
    }

    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let t = self.tanh.as_ref().ok_or(LayerError::NoForwardCache {
            layer: "ScaledTanh",
        })?;
        if grad_y.nrows() != t.nrows() {
            return Err(LayerError::ShapeMismatch {
                layer: "ScaledTanh",
                what: "gradient",
                expected: t.nrows(),
                got: grad_y.nrows(),
            });
        }
        if grad_y.ncols() != t.ncols() {
            return Err(LayerError::BatchMismatch {
                layer: "ScaledTanh",
                expected: t.ncols(),
                got: grad_y.ncols(),
            });
        }
        let ab = self.a * self.b;
        Ok(t.zip_map(grad_y, |t, g| ab * (T::one() - t * t) * g))
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        Ok(self.inner(x).map(|v| self.a * v))
    }
}
