//! Trainable parameters: a value and the gradient accumulated into it.

use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut};
use retroprop_core::{Scalar, split};
use serde::{Deserialize, Serialize};

use crate::LayerError;

/// What a parameter is, for optimizers that treat them differently (e.g. weight decay that
/// spares biases).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ParamKind {
    /// A weight matrix or convolution kernel.
    Weight,
    /// A bias vector.
    Bias,
}

/// A trainable tensor `θ` and its gradient `dL/dθ`, same shape.
///
/// `backward` *adds* into the gradient; [`Param::zero_grad`] resets it. The shape is fixed at
/// creation: the accessors hand out views and slices, and [`Param::set_value`] checks the shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Param<T: Scalar> {
    name: &'static str,
    kind: ParamKind,
    value: DMatrix<T>,
    grad: DMatrix<T>,
}

impl<T: Scalar> Param<T> {
    /// A parameter with this value and a zero gradient.
    pub fn new(name: &'static str, kind: ParamKind, value: DMatrix<T>) -> Self {
        let grad = DMatrix::zeros(value.nrows(), value.ncols());
        Self {
            name,
            kind,
            value,
            grad,
        }
    }

    /// The parameter's name inside its layer: `"weight"`, `"bias"`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Weight or bias.
    pub fn kind(&self) -> ParamKind {
        self.kind
    }

    /// `(rows, columns)`.
    pub fn shape(&self) -> (usize, usize) {
        self.value.shape()
    }

    /// Number of scalars.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// `true` if the parameter holds no scalar.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// The value `θ`.
    pub fn value(&self) -> &DMatrix<T> {
        &self.value
    }

    /// The accumulated gradient `dL/dθ`.
    pub fn grad(&self) -> &DMatrix<T> {
        &self.grad
    }

    /// A mutable view of the value (its shape cannot change).
    pub fn value_mut(&mut self) -> DMatrixViewMut<'_, T> {
        let shape = self.value.shape();
        self.value.view_mut((0, 0), shape)
    }

    /// A mutable view of the gradient (its shape cannot change).
    pub fn grad_mut(&mut self) -> DMatrixViewMut<'_, T> {
        let shape = self.grad.shape();
        self.grad.view_mut((0, 0), shape)
    }

    /// The value as a mutable slice and the gradient as a slice, column-major, together: what an
    /// optimizer step needs.
    pub fn value_and_grad_mut(&mut self) -> (&mut [T], &[T]) {
        (self.value.as_mut_slice(), self.grad.as_slice())
    }

    /// The gradient matrix itself, for the layers of this crate (which keep its shape).
    pub(crate) fn grad_matrix_mut(&mut self) -> &mut DMatrix<T> {
        &mut self.grad
    }

    /// The value, and the gradient matrix itself (as [`Self::grad_matrix_mut`]), borrowed
    /// together: for a backward pass that reads `W` while it adds into `dL/dW`.
    pub(crate) fn value_and_grad_matrix_mut(&mut self) -> (&DMatrix<T>, &mut DMatrix<T>) {
        (&self.value, &mut self.grad)
    }

    /// A read-only view of the value.
    pub fn view(&self) -> DMatrixView<'_, T> {
        self.value.view((0, 0), self.value.shape())
    }

    /// Replaces the value.
    ///
    /// # Errors
    /// [`LayerError::ParamShape`] if `value` has another shape.
    pub fn set_value(&mut self, value: DMatrix<T>) -> Result<(), LayerError> {
        check_same_shape("Param", self.name, &self.value, &value)?;
        self.value = value;
        Ok(())
    }

    /// Sets the gradient to zero.
    pub fn zero_grad(&mut self) {
        // on the slice: a memset (nalgebra's `fill` goes element by element), in two halves on
        // every thread of the team for a large parameter
        split::halves(self.grad.as_mut_slice(), |g| g.fill(T::zero()));
    }
}

/// `Ok` if `new` has the shape of `current`, else [`LayerError::ParamShape`] naming the owner
/// and the tensor.
pub(crate) fn check_same_shape<T: Scalar>(
    owner: &'static str,
    name: &'static str,
    current: &DMatrix<T>,
    new: &DMatrix<T>,
) -> Result<(), LayerError> {
    if new.shape() == current.shape() {
        return Ok(());
    }
    Err(LayerError::ParamShape {
        layer: owner,
        param: name,
        expected_rows: current.nrows(),
        expected_cols: current.ncols(),
        got_rows: new.nrows(),
        got_cols: new.ncols(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_value_checks_the_shape() {
        let mut p = Param::new("weight", ParamKind::Weight, DMatrix::<f64>::zeros(2, 3));
        assert_eq!(
            p.set_value(DMatrix::zeros(3, 2)),
            Err(LayerError::ParamShape {
                layer: "Param",
                param: "weight",
                expected_rows: 2,
                expected_cols: 3,
                got_rows: 3,
                got_cols: 2
            })
        );
        p.set_value(DMatrix::from_element(2, 3, 1.5)).unwrap();
        assert_eq!(p.value()[(1, 2)], 1.5);
    }

    #[test]
    fn zero_grad_zeroes() {
        let mut p = Param::new("bias", ParamKind::Bias, DMatrix::<f32>::zeros(4, 1));
        p.grad_mut().fill(3.0);
        p.zero_grad();
        assert!(p.grad().iter().all(|&g| g == 0.0));
    }
}
