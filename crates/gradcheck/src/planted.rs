//! Deliberately wrong layers, to prove that a checker (or a CI job) fails when a gradient is
//! wrong: a verifier that cannot fail proves nothing.

use nalgebra::DMatrix;
use retroprop_layers::{Dense, Init, Layer, LayerError, Param, Shape};

/// The answer key's mistake in question 2p: a dense layer whose `dL/dx` is computed without
/// the transpose of `W`. With a non-square `W` the product `W δ` does not even chain, so the
/// bug takes the form it has in code: `W`'s buffer read with swapped dimensions — the shape of
/// `Wᵀ` without its values. Forward and the parameter gradients are right.
///
/// ```
/// use nalgebra::DMatrix;
/// use retroprop_gradcheck::{Config, check_layer, planted::DroppedTranspose};
///
/// let mut wrong = DroppedTranspose::new(5, 3, 1).unwrap();
/// let x = DMatrix::from_fn(5, 2, |i, j| (i + j) as f64 * 0.2 - 0.5);
/// assert!(!check_layer(&mut wrong, &x, &Config::default()).unwrap().passed());
/// ```
#[derive(Clone, Debug)]
pub struct DroppedTranspose(Dense<f64>);

impl DroppedTranspose {
    /// A `d_in → d_out` layer with Xavier weights from `seed`.
    ///
    /// # Errors
    /// As [`Dense::new`].
    pub fn new(d_in: usize, d_out: usize, seed: u64) -> Result<Self, LayerError> {
        Ok(Self(Dense::new(d_in, d_out, Init::XavierUniform { seed })?))
    }
}

impl Layer<f64> for DroppedTranspose {
    fn name(&self) -> &'static str {
        "DroppedTranspose"
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        self.0.output_shape(input)
    }
    fn forward(&mut self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        self.0.forward(x)
    }
    fn backward(&mut self, grad_y: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        self.0.backward_params(grad_y)?;
        let w = self.0.weight().value();
        let not_transposed = DMatrix::from_column_slice(w.ncols(), w.nrows(), w.as_slice());
        Ok(not_transposed * grad_y)
    }
    fn infer(&self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        self.0.infer(x)
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
        self.0.visit_params(f);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<f64>)) {
        self.0.visit_params_mut(f);
    }
}
