//! Fixed input standardisation, part of a network so that checkpoints carry it.

use nalgebra::DMatrix;
use retroprop_core::{Normalize, Scalar};

use crate::layer::check_grad;
use crate::linalg::map;
use crate::{Buffer, Layer, LayerConfig, LayerError, LayerSpec, Shape, StandardizeConfig};

const NAME: &str = "Standardize";

/// `y = (x − μ) / σ` with a fixed mean `μ` and standard deviation `σ` (not trained).
///
/// ```text
/// dL/dx = dL/dy / σ
/// ```
///
/// `μ` and `σ` are [`Buffer`]s (`"mean"`, `"std"`, each 1×1): saved with the checkpoint, never
/// touched by an optimizer, not counted in `n_θ`.
///
/// Putting the preprocessing in the network keeps a checkpoint self-contained: a model trained
/// on standardised MNIST pixels (`μ = 0.1307`, `σ = 0.3081`) takes raw `[0, 1]` pixels when
/// reloaded. A network's leading parameter-free layers are skipped by `backward_params`.
#[derive(Clone, Debug)]
pub struct Standardize<T: Scalar> {
    mean: Buffer<T>,
    std: Buffer<T>,
    last: Option<(usize, usize)>,
}

impl<T: Scalar> Standardize<T> {
    /// Standardisation with mean `mean` and standard deviation `std`.
    ///
    /// # Errors
    /// [`LayerError::InvalidValue`] unless `mean` is finite and `std` finite and positive.
    pub fn new(mean: f64, std: f64) -> Result<Self, LayerError> {
        if !mean.is_finite() {
            return Err(LayerError::InvalidValue {
                layer: NAME,
                what: "mean",
                value: mean,
                requirement: "finite",
            });
        }
        if !(std.is_finite() && std > 0.0) {
            return Err(LayerError::InvalidValue {
                layer: NAME,
                what: "std",
                value: std,
                requirement: "finite and > 0",
            });
        }
        Ok(Self {
            mean: Buffer::new("mean", DMatrix::from_element(1, 1, T::lit(mean))),
            std: Buffer::new("std", DMatrix::from_element(1, 1, T::lit(std))),
            last: None,
        })
    }

    /// `(x − μ) · (1/σ)` from the buffers (which a checkpoint may have replaced).
    fn normalize(&self) -> Normalize<T> {
        Normalize::new(self.mean.value()[0], self.std.value()[0])
    }

    /// The mean `μ`.
    pub fn mean(&self) -> T {
        self.mean.value()[0]
    }

    /// The standard deviation `σ`.
    pub fn std(&self) -> T {
        self.std.value()[0]
    }

    fn apply(&self, x: &DMatrix<T>) -> DMatrix<T> {
        let normalize = self.normalize();
        map(x, |v| normalize.apply(v))
    }
}

impl<T: Scalar> Layer<T> for Standardize<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::new(StandardizeConfig::KIND, &StandardizeConfig)
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        Ok(input)
    }

    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        self.last = Some(x.shape());
        Ok(self.apply(x))
    }

    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let (rows, n) = self
            .last
            .ok_or(LayerError::NoForwardCache { layer: NAME })?;
        check_grad(NAME, grad_y, rows, n)?;
        let scale = self.normalize().scale();
        Ok(map(grad_y, |g| g * scale))
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        Ok(self.apply(x))
    }

    fn input_normalization(&self) -> Option<Normalize<T>> {
        Some(self.normalize())
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Buffer<T>)) {
        f("mean", &self.mean);
        f("std", &self.std);
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Buffer<T>)) {
        f("mean", &mut self.mean);
        f("std", &mut self.std);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardises_and_scales_the_gradient() {
        let mut s = Standardize::<f64>::new(0.5, 0.25).unwrap();
        let y = s
            .forward(&DMatrix::from_column_slice(2, 1, &[0.5, 1.0]))
            .unwrap();
        assert_eq!(y.as_slice(), &[0.0, 2.0]);
        let g = s
            .backward(&DMatrix::from_column_slice(2, 1, &[1.0, -1.0]))
            .unwrap();
        assert_eq!(g.as_slice(), &[4.0, -4.0]);
        assert!(matches!(
            Standardize::<f64>::new(0.0, 0.0),
            Err(LayerError::InvalidValue { what: "std", .. })
        ));
    }
}
