//! Flatten: the bookkeeping step between convolutional and dense layers.

use nalgebra::DMatrix;
use retroprop_core::Scalar;

use crate::layer::check_grad;
use crate::{FlattenConfig, Layer, LayerConfig, LayerError, LayerSpec, Shape};

const NAME: &str = "Flatten";

/// Turns an image `C × H × W` into a feature vector of `C·H·W` values.
///
/// With one column per example in C×H×W order, the flattened vector *is* the image column: the
/// values and their order are unchanged (forward and backward copy the buffer as is, because
/// the trait returns owned matrices). What changes is the tracked [`Shape`]: after `Flatten`,
/// a [`crate::Dense`] layer accepts the output, and shape inference checks the sizes.
#[derive(Clone, Debug, Default)]
pub struct Flatten {
    /// `(rows, batch)` of the last forward pass.
    last: Option<(usize, usize)>,
}

impl Flatten {
    /// A new flatten layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T: Scalar> Layer<T> for Flatten {
    fn name(&self) -> &'static str {
        NAME
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::new(FlattenConfig::KIND, &FlattenConfig)
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        Ok(Shape::Flat(input.len()))
    }

    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        self.last = Some(x.shape());
        Ok(x.clone())
    }

    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let (rows, n) = self
            .last
            .ok_or(LayerError::NoForwardCache { layer: NAME })?;
        check_grad(NAME, grad_y, rows, n)?;
        Ok(grad_y.clone())
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        Ok(x.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_the_shape_not_the_data() {
        let mut f = Flatten::new();
        let s = <Flatten as Layer<f64>>::output_shape(&f, Shape::image(16, 7, 7)).unwrap();
        assert_eq!(s, Shape::Flat(784));
        let x = DMatrix::from_fn(12, 2, |i, j| (i + 100 * j) as f64);
        assert_eq!(f.forward(&x).unwrap(), x);
        assert_eq!(
            f.backward(&DMatrix::<f64>::zeros(12, 3)),
            Err(LayerError::BatchMismatch {
                layer: "Flatten",
                expected: 2,
                got: 3
            })
        );
    }
}
