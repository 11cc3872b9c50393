//! Parameter-free layers that apply a function to each example: softplus (the homework's φ),
//! sigmoid, tanh, ReLU, and softmax.
//!
//! Each keeps exactly what its backward pass needs — `φ'(x)` or the output — and none builds a
//! Jacobian: for an element-wise φ, `dL/dx = φ'(x) ⊙ dL/dy` (question 2r's `diag(φ'(hᵃ)) g`
//! without the diagonal matrix); for the softmax, `dL/dx = S ⊙ (g − ⟨g, S⟩)` per column.

use nalgebra::DMatrix;
use retroprop_activations::slice;
use retroprop_core::{Scalar, split};

use crate::layer::check_grad;
use crate::linalg::{map, zip_map};
use crate::{Layer, LayerConfig, LayerError, LayerSpec, Shape};

/// What an element-wise layer keeps between forward and backward (its input, its output or
/// `φ'`), and so the batch it came from.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cache<T: Scalar> {
    pub(crate) kept: Option<DMatrix<T>>,
}

impl<T: Scalar> Cache<T> {
    /// The kept matrix, after checking the gradient against its shape.
    pub(crate) fn get(
        &self,
        layer: &'static str,
        grad_y: &DMatrix<T>,
    ) -> Result<&DMatrix<T>, LayerError> {
        let kept = self
            .kept
            .as_ref()
            .ok_or(LayerError::NoForwardCache { layer })?;
        check_grad(layer, grad_y, kept.nrows(), kept.ncols())?;
        Ok(kept)
    }
}

/// `y = f(x)` column by column, for functions of a whole example (softmax).
fn map_columns<T: Scalar>(x: &DMatrix<T>, f: impl Fn(&mut [T])) -> DMatrix<T> {
    let mut y = x.clone();
    let rows = y.nrows();
    if rows > 0 {
        for col in y.as_mut_slice().chunks_exact_mut(rows) {
            f(col);
        }
    }
    y
}

/// Generates the shared parts of a parameter-free layer.
macro_rules! activation_layer {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $spec:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default)]
        pub struct $ty<T: Scalar> {
            cache: Cache<T>,
        }

        impl<T: Scalar> $ty<T> {
            /// A new layer (no parameters).
            pub fn new() -> Self {
                Self { cache: Cache { kept: None } }
            }
        }

        impl<T: Scalar> Layer<T> for $ty<T> {
            fn name(&self) -> &'static str {
                $name
            }
            fn spec(&self) -> LayerSpec {
                LayerSpec::new(crate::builtin::$spec::KIND, &crate::builtin::$spec)
            }
            /// Same shape out as in.
            fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
                Ok(input)
            }
            fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
                let (y, kept) = Self::apply(x);
                self.cache.kept = Some(kept);
                Ok(y)
            }
            fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
                let kept = self.cache.get($name, grad_y)?;
                Ok(Self::input_grad(kept, grad_y))
            }
            fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
                Ok(Self::apply(x).0)
            }
        }
    };
}

activation_layer!(
    /// The homework's hidden non-linearity φ = softplus (questions 2q/2r).
    ///
    /// ```text
    /// hˢ = φ(hᵃ) = max(hᵃ, 0) + ln(1 + e^−|hᵃ|)
    /// φ'(z) = σ(z),   dL/dhᵃ = σ(hᵃ) ⊙ dL/dhˢ        (2r: diag(σ(hᵃ)) dL/dhˢ)
    /// ```
    ///
    /// Forward computes softplus and σ from one exponential per value (vectorised for `f32`)
    /// and keeps σ(hᵃ) for the backward pass.
    Softplus,
    "Softplus",
    SoftplusConfig
);

impl<T: Scalar> Softplus<T> {
    /// `(softplus(x), σ(x))`.
    fn apply(x: &DMatrix<T>) -> (DMatrix<T>, DMatrix<T>) {
        let (y, sigma) = split::fill_pair(x.as_slice(), slice::softplus_sigmoid);
        let (rows, n) = x.shape();
        (
            DMatrix::from_vec(rows, n, y),
            DMatrix::from_vec(rows, n, sigma),
        )
    }

    fn input_grad(sigma: &DMatrix<T>, grad_y: &DMatrix<T>) -> DMatrix<T> {
        zip_map(sigma, grad_y, |s, g| s * g)
    }
}

activation_layer!(
    /// Logistic sigmoid, element-wise.
    ///
    /// ```text
    /// y = σ(x),   dL/dx = y ⊙ (1 − y) ⊙ dL/dy      (question 1e: σ' = σ(1 − σ))
    /// ```
    Sigmoid,
    "Sigmoid",
    SigmoidConfig
);

impl<T: Scalar> Sigmoid<T> {
    /// `(σ(x), σ(x))`: the output is what backward needs.
    fn apply(x: &DMatrix<T>) -> (DMatrix<T>, DMatrix<T>) {
        let mut y = DMatrix::zeros(x.nrows(), x.ncols());
        slice::sigmoid_into(x.as_slice(), y.as_mut_slice());
        (y.clone(), y)
    }

    fn input_grad(y: &DMatrix<T>, grad_y: &DMatrix<T>) -> DMatrix<T> {
        zip_map(y, grad_y, |s, g| s * (T::one() - s) * g)
    }
}

activation_layer!(
    /// Hyperbolic tangent, element-wise.
    ///
    /// ```text
    /// y = tanh(x),   dL/dx = (1 − y²) ⊙ dL/dy
    /// ```
    Tanh,
    "Tanh",
    TanhConfig
);

impl<T: Scalar> Tanh<T> {
    fn apply(x: &DMatrix<T>) -> (DMatrix<T>, DMatrix<T>) {
        let y = map(x, |v| v.tanh());
        (y.clone(), y)
    }

    fn input_grad(y: &DMatrix<T>, grad_y: &DMatrix<T>) -> DMatrix<T> {
        zip_map(y, grad_y, |t, g| (T::one() - t * t) * g)
    }
}

activation_layer!(
    /// Rectified linear unit, element-wise.
    ///
    /// ```text
    /// y = max(0, x),   dL/dx = H(x) ⊙ dL/dy  for x ≠ 0;  0 at x = 0 (as PyTorch; see
    ///                  retroprop_activations::RELU_PRIME_AT_ZERO)
    /// ```
    Relu,
    "Relu",
    ReluConfig
);

impl<T: Scalar> Relu<T> {
    /// `(relu(x), relu(x))`: `y > 0` exactly where `x > 0`, so the output is the mask.
    fn apply(x: &DMatrix<T>) -> (DMatrix<T>, DMatrix<T>) {
        let y = map(x, retroprop_activations::relu);
        (y.clone(), y)
    }

    fn input_grad(y: &DMatrix<T>, grad_y: &DMatrix<T>) -> DMatrix<T> {
        zip_map(y, grad_y, |y, g| if y > T::zero() { g } else { T::zero() })
    }
}

activation_layer!(
    /// Softmax over each example (column): the output layer of question 2c.
    ///
    /// ```text
    /// oˢ = S(oᵃ),  S(x)ᵢ = e^(xᵢ − m) / Σⱼ e^(xⱼ − m),  m = max x
    /// dL/doᵃ = Jᵀ g = S ⊙ (g − ⟨g, S⟩)      (J = diag(S) − S Sᵀ, questions 1j/1k; never built)
    /// ```
    ///
    /// For classification, prefer feeding logits to `retroprop-losses`' cross-entropy, which
    /// fuses the softmax with the loss (`dL/doᵃ = oˢ − onehot(y)`, question 2l) and never takes
    /// the log of a probability.
    Softmax,
    "Softmax",
    SoftmaxConfig
);

impl<T: Scalar> Softmax<T> {
    fn apply(x: &DMatrix<T>) -> (DMatrix<T>, DMatrix<T>) {
        let s = map_columns(x, |col| {
            // the probabilities only: no log-sum-exp is needed here
            slice::softmax_in_place_split(col);
        });
        (s.clone(), s)
    }

    fn input_grad(s: &DMatrix<T>, grad_y: &DMatrix<T>) -> DMatrix<T> {
        let rows = s.nrows();
        let mut grad_x = DMatrix::zeros(rows, s.ncols());
        if rows > 0 {
            for ((o, s), g) in grad_x
                .as_mut_slice()
                .chunks_exact_mut(rows)
                .zip(s.as_slice().chunks_exact(rows))
                .zip(grad_y.as_slice().chunks_exact(rows))
            {
                slice::softmax_vjp(s, g, o);
            }
        }
        grad_x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softplus_forward_and_backward() {
        let mut l = Softplus::<f64>::new();
        let x = DMatrix::from_column_slice(2, 2, &[0.0, 1000.0, -1000.0, 1.0]);
        let y = l.forward(&x).unwrap();
        assert_eq!(y[(0, 0)], 2.0_f64.ln());
        assert_eq!(y[(1, 0)], 1000.0);
        assert_eq!(y[(0, 1)], 0.0);
        let g = DMatrix::from_element(2, 2, 2.0);
        let dx = l.backward(&g).unwrap();
        // 2σ(0) = 1, 2σ(1000) = 2, 2σ(−1000) = 0
        assert_eq!((dx[(0, 0)], dx[(1, 0)], dx[(0, 1)]), (1.0, 2.0, 0.0));
    }

    #[test]
    fn relu_gradient_at_zero_is_zero() {
        let mut l = Relu::<f64>::new();
        l.forward(&DMatrix::from_column_slice(3, 1, &[-1.0, 0.0, 2.0]))
            .unwrap();
        let dx = l.backward(&DMatrix::from_element(3, 1, 1.0)).unwrap();
        assert_eq!(dx.as_slice(), &[0.0, 0.0, 1.0]);
    }

    #[test]
    fn softmax_columns_sum_to_one_and_backward_is_orthogonal_to_ones() {
        let mut l = Softmax::<f64>::new();
        let x = DMatrix::from_column_slice(3, 2, &[1000.0, 1001.0, 1002.0, -5.0, 0.0, 5.0]);
        let s = l.forward(&x).unwrap();
        for c in 0..2 {
            assert!((s.column(c).sum() - 1.0).abs() < 1e-15);
        }
        // Jᵀ 1 = S ⊙ (1 − 1) = 0: adding a constant to every input changes nothing
        let dx = l.backward(&DMatrix::from_element(3, 2, 1.0)).unwrap();
        assert!(dx.amax() < 1e-16);
    }

    #[test]
    fn backward_checks_the_batch() {
        let mut l = Tanh::<f32>::new();
        assert_eq!(
            l.backward(&DMatrix::zeros(2, 2)),
            Err(LayerError::NoForwardCache { layer: "Tanh" })
        );
        l.forward(&DMatrix::zeros(2, 3)).unwrap();
        assert_eq!(
            l.backward(&DMatrix::zeros(2, 2)),
            Err(LayerError::BatchMismatch {
                layer: "Tanh",
                expected: 3,
                got: 2
            })
        );
        assert_eq!(
            l.backward(&DMatrix::zeros(3, 3)),
            Err(LayerError::ShapeMismatch {
                layer: "Tanh",
                what: "gradient",
                expected: 2,
                got: 3
            })
        );
    }
}
