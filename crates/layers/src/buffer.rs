//! Buffers: state a layer keeps and saves but does not train (PyTorch's `register_buffer`).

use nalgebra::DMatrix;
use retroprop_core::Scalar;

use crate::LayerError;

/// A non-trainable tensor of a layer: running statistics, a fixed mean and standard deviation.
///
/// Buffers are visited apart from parameters ([`Layer::visit_buffers`](crate::Layer::visit_buffers)):
/// checkpoints save and load them and summaries show them, but no optimizer, weight decay or
/// gradient ever touches them, and they do not count in `n_θ` (question 2i counts what is
/// trained).
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer<T: Scalar> {
    name: &'static str,
    value: DMatrix<T>,
}

impl<T: Scalar> Buffer<T> {
    /// A buffer with this name inside its layer and this value.
    pub fn new(name: &'static str, value: DMatrix<T>) -> Self {
        Self { name, value }
    }

    /// The buffer's name inside its layer: `"mean"`, `"running_var"`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `(rows, columns)`.
    pub fn shape(&self) -> (usize, usize) {
        self.value.shape()
    }

    /// Number of scalars.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// `true` if the buffer holds no scalar.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// The value.
    pub fn value(&self) -> &DMatrix<T> {
        &self.value
    }

    /// The value as a mutable slice, column-major (its shape cannot change).
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        self.value.as_mut_slice()
    }

    /// Replaces the value.
    ///
    /// # Errors
    /// [`LayerError::ParamShape`] if `value` has another shape.
    pub fn set_value(&mut self, value: DMatrix<T>) -> Result<(), LayerError> {
        crate::param::check_same_shape("Buffer", self.name, &self.value, &value)?;
        self.value = value;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_value_keeps_the_shape() {
        let mut b = Buffer::new("mean", DMatrix::<f64>::zeros(1, 1));
        assert!(b.set_value(DMatrix::zeros(2, 1)).is_err());
        b.set_value(DMatrix::from_element(1, 1, 0.5)).unwrap();
        assert_eq!(b.value()[0], 0.5);
        b.as_mut_slice()[0] = 0.25;
        assert_eq!((b.name(), b.len(), b.shape()), ("mean", 1, (1, 1)));
        assert_eq!(b.value()[0], 0.25);
    }
}
