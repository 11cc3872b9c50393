//! GELU, the Gaussian error linear unit (PyTorch's `nn.GELU`, exact or tanh-approximated).

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use serde::{Deserialize, Serialize};

use crate::activation::Cache;
use crate::linalg::{map, zip_map};
use crate::{Layer, LayerConfig, LayerError, LayerSpec, Shape};

const NAME: &str = "Gelu";

/// Which GELU: PyTorch's `approximate='none'` (the default) or `approximate='tanh'`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeluApproximation {
    /// `x Φ(x)` with the exact normal distribution function.
    #[default]
    None,
    /// Hendrycks and Gimpel's tanh approximation of `Φ`.
    Tanh,
}

/// The configuration of a [`Gelu`] (kind `"Gelu"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeluConfig {
    /// Exact (default) or tanh-approximated.
    pub approximate: GeluApproximation,
}

impl LayerConfig for GeluConfig {
    const KIND: &'static str = NAME;
    fn build<T: Scalar>(&self, _: Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError> {
        Ok(Box::new(Gelu::<T>::new(self.approximate)))
    }
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(Ok(Vec::new()))
    }
}

/// `y = x Φ(x)` element-wise, `Φ` the standard normal distribution function.
///
/// ```text
/// exact:  Φ(x) = ½ erfc(−x/√2)                  dy/dx = Φ(x) + x φ(x),  φ(x) = e^(−x²/2)/√(2π)
/// tanh:   Φ(x) ≈ ½(1 + tanh u) = σ(2u),  u = √(2/π)(x + 0.044715 x³)
///         dy/dx = σ(2u) + x · 2σ(2u)(1 − σ(2u)) · √(2/π)(1 + 3·0.044715 x²)
/// dL/dx = dL/dy ⊙ dy/dx
/// ```
///
/// `Φ` is computed as `½ erfc(−x/√2)` and the tanh form as `σ(2u)`, not as `½(1 + erf)` and
/// `½(1 + tanh)`: for `x ≪ 0` those subtract nearly equal numbers and lose every digit, these
/// keep the tiny negative outputs (`gelu(−10) ≈ −7.6e−23`) to full precision.
#[derive(Clone, Debug)]
pub struct Gelu<T: Scalar> {
    approximate: GeluApproximation,
    input: Cache<T>,
}

/// `(y, dy/dx)` of the GELU at `x`.
fn gelu<T: Scalar>(approximate: GeluApproximation, x: T) -> (T, T) {
    let half = T::lit(0.5);
    match approximate {
        GeluApproximation::None => {
            let phi_cdf = half * (-x * T::lit(std::f64::consts::FRAC_1_SQRT_2)).erfc();
            let density = (-half * x * x).exp() * T::lit(1.0 / (2.0 * std::f64::consts::PI).sqrt());
            (x * phi_cdf, phi_cdf + x * density)
        }
        GeluApproximation::Tanh => {
            let k = T::lit((2.0 / std::f64::consts::PI).sqrt());
            let c = T::lit(0.044_715);
            let u = k * (x + c * x * x * x);
            let two_u = u + u;
            // σ(2u), stable on both sides
            let s = if two_u >= T::zero() {
                T::one() / (T::one() + (-two_u).exp())
            } else {
                let e = two_u.exp();
                e / (T::one() + e)
            };
            let du = k * (T::one() + T::lit(3.0) * c * x * x);
            (x * s, s + x * (s + s) * (T::one() - s) * du)
        }
    }
}

impl<T: Scalar> Gelu<T> {
    /// A GELU, exact or tanh-approximated.
    pub fn new(approximate: GeluApproximation) -> Self {
        Self {
            approximate,
            input: Cache::default(),
        }
    }

    fn apply(&self, x: &DMatrix<T>) -> DMatrix<T> {
        let a = self.approximate;
        map(x, |v| gelu(a, v).0)
    }
}

impl<T: Scalar> Default for Gelu<T> {
    fn default() -> Self {
        Self::new(GeluApproximation::None)
    }
}

impl<T: Scalar> Layer<T> for Gelu<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn spec(&self) -> LayerSpec {
        let config = GeluConfig {
            approximate: self.approximate,
        };
        LayerSpec::new(GeluConfig::KIND, &config)
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
        let a = self.approximate;
        Ok(zip_map(x, grad_y, |v, g| gelu(a, v).1 * g))
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        Ok(self.apply(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_definition_and_keeps_tiny_negative_outputs() {
        // Φ(1) = 0.841344746068542948585232545632… (mpmath: ncdf(1))
        let (y, _) = gelu(GeluApproximation::None, 1.0_f64);
        assert!((y - 0.841_344_746_068_542_9).abs() < 2e-16, "{y}");
        assert_eq!(gelu(GeluApproximation::None, 0.0_f64), (0.0, 0.5));
        // gelu(−10) = −10 Φ(−10) = −7.619853024160526e−23 (mpmath), not 0
        let (y, _) = gelu(GeluApproximation::None, -10.0_f64);
        assert!((y / -7.619_853_024_160_526e-23 - 1.0).abs() < 1e-13, "{y}");
        let (y, _) = gelu(GeluApproximation::Tanh, -10.0_f64);
        assert!(y < 0.0 && y > -1e-20, "{y}");
        // large positive x: y → x, dy/dx → 1
        for a in [GeluApproximation::None, GeluApproximation::Tanh] {
            assert_eq!(gelu(a, 40.0_f64), (40.0, 1.0));
            let (y, d) = gelu(a, 40.0_f32);
            assert_eq!((y, d), (40.0, 1.0));
        }
    }

    #[test]
    fn the_tanh_form_is_close_to_the_exact_one() {
        for i in -60..=60 {
            let x = f64::from(i) / 10.0;
            let (exact, _) = gelu(GeluApproximation::None, x);
            let (approx, _) = gelu(GeluApproximation::Tanh, x);
            // the approximation's known error is below 5e−4 on the line
            assert!((exact - approx).abs() < 5e-4, "{x}: {exact} {approx}");
        }
    }
}
