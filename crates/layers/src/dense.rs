//! The fully connected layer of questions 2a/2b (forward) and 2m–2p (backward).

use nalgebra::DMatrix;
use retroprop_core::Scalar;

use crate::layer::{check_grad, check_rows};
use crate::linalg::add_row_sums;
use crate::shape::checked_product;
use crate::{Init, Layer, LayerConfig, LayerError, LayerSpec, Param, ParamKind, Shape};
use retroprop_core::direct::{add_outer, affine};
use retroprop_core::gemm::{MatMut, MatRef, PAR_MIN_MACS, par_gemm};
use retroprop_core::team;
use retroprop_core::transpose::transpose;

/// The configuration of a [`Dense`] layer: its sizes (kind `"Dense"` in a [`LayerSpec`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DenseConfig {
    /// Input features `d_in`.
    pub d_in: usize,
    /// Output features `d_out`.
    pub d_out: usize,
}

/// Fully connected layer: `hᵃ = W x + b` (questions 2a/2b).
///
/// ```text
/// W: d_out × d_in   b: d_out   x: d_in × n   δ = dL/dhᵃ: d_out × n
/// forward    hᵃ = W x + b 1ₙᵀ                      (one product, starting from the bias)
/// backward   dL/dW = δ xᵀ      (2m/2n: d_out × d_in, the shape of W)
///            dL/db = δ 1ₙ      (2m/2n: ∂oᵃ/∂b = I, so dL/db = δ)
///            dL/dx = Wᵀ δ      (2o/2p: note the transpose, which the answer key drops)
/// ```
///
/// Over a batch, `δ xᵀ` and `δ 1ₙ` sum the per-example gradients (question 2l's sum; a loss
/// with mean reduction has already put the `1/n` into `δ`). The forward product is
/// `retroprop_core::direct::affine`, which reads `W`'s and `x`'s columns in place; `δ xᵀ` is
/// `retroprop_core::direct::add_outer` for batches up to 512 examples (`x` read down its
/// columns) and otherwise a GEMM (matrixmultiply, `xᵀ` a strided view, never a copy); `Wᵀ δ` is
/// `affine` on a transposed copy of `W`.
///
/// ```
/// use nalgebra::DMatrix;
/// use retroprop_layers::{Dense, Init, Layer, LayerError};
///
/// # fn main() -> Result<(), LayerError> {
/// let mut dense = Dense::<f64>::new(3, 2, Init::XavierUniform { seed: 7 })?;
/// let x = DMatrix::from_element(3, 4, 0.5);          // 4 examples of 3 features
/// let h = dense.forward(&x)?;                        // 2 × 4
/// let dx = dense.backward(&DMatrix::from_element(2, 4, 1.0))?;
/// assert_eq!((h.shape(), dx.shape()), ((2, 4), (3, 4)));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Dense<T: Scalar> {
    weight: Param<T>,
    bias: Param<T>,
    input: Option<DMatrix<T>>,
}

const NAME: &str = "Dense";

/// The largest batch whose weight gradient runs on `direct::add_outer`. Measured on the 2-core
/// Xeon, 784 → 256, interleaved criterion runs: training with batches of 128 was 4.6 % faster
/// on `add_outer` (epoch 271.7 → 259.3 ms), a full-batch step (chunks of 1 000 examples) 5.6 %
/// slower (244.2 → 258.0 ms), although in isolation, operands hot in cache, `add_outer` ran at
/// 287 against matrixmultiply's 252 GFLOP/s at 1 024 examples.
const OUTER_MAX_EXAMPLES: usize = 512;

/// Below this many outputs, a layer's two backward products run side by side, one per core,
/// at any batch size: their vectors are short (10 outputs fill 10 of 16 lanes), and each split
/// in two ran slower than the two side by side (the MLP's 256 → 10 layer at 1 000 examples,
/// per-phase step harness: 159 → 130 µs).
const SIDE_BY_SIDE_MAX_OUTPUTS: usize = 32;

/// Below this many outputs, a layer's weight gradient is computed transposed, `x δᵀ`, with
/// vectors along the inputs: as `δ xᵀ` its vectors would be the short columns of `δ` (10 of 16
/// lanes). The MLP's 256 → 10 layer at 1 000 examples, one core: 85 → 39 µs (measured).
const FEW_OUTPUTS: usize = 16;

impl<T: Scalar> Dense<T> {
    /// A `d_in → d_out` layer with weights drawn by `init` (biases zero unless the scheme says
    /// otherwise).
    ///
    /// # Errors
    /// [`LayerError::ZeroSize`] if `d_in` or `d_out` is zero.
    pub fn new(d_in: usize, d_out: usize, init: Init) -> Result<Self, LayerError> {
        for (what, v) in [("input features", d_in), ("output features", d_out)] {
            if v == 0 {
                return Err(LayerError::ZeroSize { layer: NAME, what });
            }
        }
        checked_product(NAME, &[d_in, d_out])?;
        let (w, b) = init.draw(d_out, d_in, d_in, d_out);
        Ok(Self::from_parts(w, b))
    }

    /// A layer with the given `W` (`d_out × d_in`) and `b` (`d_out × 1`).
    ///
    /// # Errors
    /// [`LayerError::ParamShape`] if `b` is not a `d_out × 1` column; [`LayerError::ZeroSize`] if
    /// `W` is empty.
    pub fn from_params(weight: DMatrix<T>, bias: DMatrix<T>) -> Result<Self, LayerError> {
        if weight.is_empty() {
            return Err(LayerError::ZeroSize {
                layer: NAME,
                what: "weight",
            });
        }
        if bias.shape() != (weight.nrows(), 1) {
            return Err(LayerError::ParamShape {
                layer: NAME,
                param: "bias",
                expected_rows: weight.nrows(),
                expected_cols: 1,
                got_rows: bias.nrows(),
                got_cols: bias.ncols(),
            });
        }
        Ok(Self::from_parts(weight, bias))
    }

    fn from_parts(w: DMatrix<T>, b: DMatrix<T>) -> Self {
        Self {
            weight: Param::new("weight", ParamKind::Weight, w),
            bias: Param::new("bias", ParamKind::Bias, b),
            input: None,
        }
    }

    /// Input features `d_in`.
    pub fn d_in(&self) -> usize {
        self.weight.value().ncols()
    }

    /// Output features `d_out`.
    pub fn d_out(&self) -> usize {
        self.weight.value().nrows()
    }

    /// `W`, `d_out × d_in`.
    pub fn weight(&self) -> &Param<T> {
        &self.weight
    }

    /// `b`, `d_out × 1`.
    pub fn bias(&self) -> &Param<T> {
        &self.bias
    }

    /// `W`, mutable (its shape cannot change).
    pub fn weight_mut(&mut self) -> &mut Param<T> {
        &mut self.weight
    }

    /// `b`, mutable (its shape cannot change).
    pub fn bias_mut(&mut self) -> &mut Param<T> {
        &mut self.bias
    }

    /// `W x + b 1ᵀ`: each column's sum starts from the bias (`direct::affine`).
    fn affine(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        check_rows(NAME, "input", x, self.d_in())?;
        Ok(affine(self.weight.value(), x, self.bias.value().as_slice()))
    }
}

/// The input cached by the forward pass, checked against `grad_y` (`d_out` rows, one column
/// per example of the input).
fn cached<'a, T: Scalar>(
    input: &'a Option<DMatrix<T>>,
    d_out: usize,
    grad_y: &DMatrix<T>,
) -> Result<&'a DMatrix<T>, LayerError> {
    let x = input
        .as_ref()
        .ok_or(LayerError::NoForwardCache { layer: NAME })?;
    check_grad(NAME, grad_y, d_out, x.ncols())?;
    Ok(x)
}

/// Adds `δ xᵀ` into `w_grad` and `δ 1` into `b_grad`.
///
/// A layer with fewer than [`FEW_OUTPUTS`] outputs (and at least as many inputs) computes
/// `(δ xᵀ)ᵀ = x δᵀ` on `direct::add_outer`, whose vectors then run along the inputs, and adds
/// its transpose. Otherwise, up to [`OUTER_MAX_EXAMPLES`] examples, `δ xᵀ` runs on
/// `direct::add_outer` (no packing, each core computing the half of `dW` it updates); beyond,
/// on matrixmultiply's packed GEMM, which streams a large batch from memory better.
fn accumulate<T: Scalar>(
    w_grad: &mut DMatrix<T>,
    b_grad: &mut [T],
    x: &DMatrix<T>,
    grad_y: &DMatrix<T>,
) {
    let (d_out, d_in) = w_grad.shape();
    if d_out < FEW_OUTPUTS && d_in >= FEW_OUTPUTS {
        let mut sum_t = DMatrix::zeros(d_in, d_out);
        add_outer(&mut sum_t, x, grad_y);
        // w_grad[o, i] += sum_t[i, o]
        for (o, row_t) in sum_t.as_slice().chunks_exact(d_in).enumerate() {
            for (i, &v) in row_t.iter().enumerate() {
                w_grad[(o, i)] += v;
            }
        }
    } else if x.ncols() <= OUTER_MAX_EXAMPLES {
        add_outer(w_grad, grad_y, x);
    } else {
        par_gemm(
            T::one(),
            MatRef::of(grad_y),
            MatRef::transposed(x),
            T::one(),
            MatMut::of(w_grad),
        );
    }
    add_row_sums(grad_y, b_grad);
}

impl<T: Scalar> Layer<T> for Dense<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn spec(&self) -> LayerSpec {
        let config = DenseConfig {
            d_in: self.d_in(),
            d_out: self.d_out(),
        };
        LayerSpec::new(DenseConfig::KIND, &config)
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        if input == Shape::Flat(self.d_in()) {
            Ok(Shape::Flat(self.d_out()))
        } else {
            Err(LayerError::InputShape {
                layer: NAME,
                expected: Shape::Flat(self.d_in()),
                got: input,
            })
        }
    }

    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let h_a = self.affine(x)?;
        self.input = Some(x.clone());
        Ok(h_a)
    }

    fn forward_owned(&mut self, x: DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let h_a = self.affine(&x)?;
        self.input = Some(x);
        Ok(h_a)
    }

    /// `dL/dx = Wᵀ δ` beside the parameter gradients. The two are independent: for a layer
    /// whose products are too small to be split between the cores (fewer than
    /// `PAR_MIN_MACS` multiply-adds, as the 256 → 10 output layer of the MLP at batch 128),
    /// or whose few outputs (under 32) make split products run
    /// poorly, they run side by side, one on each core (`team::join`).
    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let (d_in, d_out) = (self.d_in(), self.d_out());
        let Self {
            weight,
            bias,
            input,
        } = self;
        let x = cached(input, d_out, grad_y)?;
        let n = x.ncols();
        let (w, w_grad) = weight.value_and_grad_matrix_mut();
        let b_grad = bias.grad_matrix_mut().as_mut_slice();
        // Wᵀ δ on the direct kernels, which read Wᵀ's columns (W's rows) as vectors: from a
        // transposed copy of W (d_in · d_out values against d_in · d_out · n multiply-adds;
        // 256 → 10 at 1 000 examples: 35 µs against matrixmultiply's 89)
        let input_grad = || {
            let mut wt = vec![T::zero(); d_in * d_out];
            transpose(w.as_slice(), d_in, d_out, d_out, &mut wt);
            affine(
                &DMatrix::from_vec(d_in, d_out, wt),
                grad_y,
                &vec![T::zero(); d_in],
            )
        };
        if d_out * d_in * n < PAR_MIN_MACS || d_out < SIDE_BY_SIDE_MAX_OUTPUTS {
            let mut grad_x = None;
            team::join(
                || accumulate(w_grad, b_grad, x, grad_y),
                || grad_x = Some(input_grad()),
            );
            // `join` ran both closures: `grad_x` is set (computed here otherwise, never a panic)
            Ok(grad_x.unwrap_or_else(input_grad))
        } else {
            accumulate(w_grad, b_grad, x, grad_y);
            Ok(input_grad())
        }
    }

    fn backward_params(&mut self, grad_y: &DMatrix<T>) -> Result<(), LayerError> {
        let x = cached(&self.input, self.d_out(), grad_y)?;
        accumulate(
            self.weight.grad_matrix_mut(),
            self.bias.grad_matrix_mut().as_mut_slice(),
            x,
            grad_y,
        );
        Ok(())
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        self.affine(x)
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("weight", &self.weight);
        f("bias", &self.bias);
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        f("weight", &mut self.weight);
        f("bias", &mut self.bias);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> Dense<f64> {
        // W = [[1, 2, 3], [4, 5, 6]], b = [0.5, −1]
        Dense::from_params(
            DMatrix::from_row_slice(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            DMatrix::from_column_slice(2, 1, &[0.5, -1.0]),
        )
        .unwrap()
    }

    #[test]
    fn forward_is_w_x_plus_b() {
        let mut d = layer();
        let x = DMatrix::from_column_slice(3, 2, &[1.0, 0.0, -1.0, 2.0, 1.0, 0.0]);
        let h = d.forward(&x).unwrap();
        // column 0: [1 − 3 + 0.5, 4 − 6 − 1] = [−1.5, −3]; column 1: [2 + 2 + 0.5, 8 + 5 − 1]
        assert_eq!(
            h,
            DMatrix::from_column_slice(2, 2, &[-1.5, -3.0, 4.5, 12.0])
        );
        assert_eq!(d.infer(&x).unwrap(), h);
    }

    #[test]
    fn backward_uses_the_transpose() {
        let mut d = layer();
        let x = DMatrix::from_column_slice(3, 1, &[1.0, 2.0, 3.0]);
        d.forward(&x).unwrap();
        let delta = DMatrix::from_column_slice(2, 1, &[1.0, -1.0]);
        let dx = d.backward(&delta).unwrap();
        // Wᵀ δ = [1 − 4, 2 − 5, 3 − 6]
        assert_eq!(dx, DMatrix::from_column_slice(3, 1, &[-3.0, -3.0, -3.0]));
        // δ xᵀ = [[1, 2, 3], [−1, −2, −3]]; δ 1 = δ
        assert_eq!(
            d.weight().grad(),
            &DMatrix::from_row_slice(2, 3, &[1.0, 2.0, 3.0, -1.0, -2.0, -3.0])
        );
        assert_eq!(d.bias().grad(), &delta);
    }

    #[test]
    fn a_layer_with_few_outputs_adds_the_same_weight_gradient() {
        // 40 → 3: the gradient is computed as x δᵀ and added transposed; integer values make
        // every order of the sums exact, so it must equal δ xᵀ added to the previous gradient
        let (d_in, d_out, n) = (40, 3, 7);
        assert!(d_out < FEW_OUTPUTS && d_in >= FEW_OUTPUTS);
        let w = DMatrix::from_fn(d_out, d_in, |i, j| ((i * 5 + j) % 7) as f64 - 3.0);
        let mut d = Dense::from_params(w, DMatrix::zeros(d_out, 1)).unwrap();
        let x = DMatrix::from_fn(d_in, n, |i, j| ((i * 3 + j * 11) % 9) as f64 - 4.0);
        let delta = DMatrix::from_fn(d_out, n, |i, j| ((i + 2 * j) % 5) as f64 - 2.0);
        for _ in 0..2 {
            d.forward(&x).unwrap();
            d.backward_params(&delta).unwrap();
        }
        assert_eq!(d.weight().grad(), &(2.0 * &delta * x.transpose()));
        assert_eq!(d.bias().grad(), &(2.0 * delta.column_sum()));
    }

    #[test]
    fn bad_shapes_are_errors() {
        let mut d = layer();
        assert_eq!(
            d.backward(&DMatrix::zeros(2, 1)),
            Err(LayerError::NoForwardCache { layer: "Dense" })
        );
        assert_eq!(
            d.forward(&DMatrix::zeros(4, 1)),
            Err(LayerError::ShapeMismatch {
                layer: "Dense",
                what: "input",
                expected: 3,
                got: 4
            })
        );
        d.forward(&DMatrix::zeros(3, 5)).unwrap();
        assert_eq!(
            d.backward(&DMatrix::zeros(2, 4)),
            Err(LayerError::BatchMismatch {
                layer: "Dense",
                expected: 5,
                got: 4
            })
        );
        assert_eq!(
            Dense::<f64>::new(0, 3, Init::Zeros).unwrap_err(),
            LayerError::ZeroSize {
                layer: "Dense",
                what: "input features"
            }
        );
    }
}
