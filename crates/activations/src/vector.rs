//! The functions of part 1 on vectors: element-wise maps, `diag`, softmax and its relatives,
//! and their Jacobians.
//!
//! Every function takes anything that views as a column vector — `&DVector<T>`, a matrix
//! column `m.column(j)`, or a `DVectorView` — and returns an owned `DVector<T>` (or `DMatrix<T>`
//! for Jacobians).

use nalgebra::{DMatrix, DVector, DVectorView};

use crate::{ActivationError, Scalar, slice};

macro_rules! elementwise {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name<'a, T: Scalar>(x: impl Into<DVectorView<'a, T>>) -> DVector<T> {
            x.into().map(crate::$name)
        }
    )*};
}

elementwise! {
    /// `σ(x)` element-wise (see [`crate::sigmoid`]).
    sigmoid;
    /// `σ'(x) = σ(x)(1 − σ(x))` element-wise (question 1e).
    sigmoid_prime;
    /// `tanh(x)` element-wise.
    tanh;
    /// `tanh'(x) = 1 − tanh²(x)` element-wise.
    tanh_prime;
    /// `softplus(x) = max(x, 0) + ln(1 + e^−|x|)` element-wise.
    softplus;
    /// `softplus'(x) = σ(x)` element-wise (question 1g).
    softplus_prime;
    /// `sign(x) = 1_{x>0} − 1_{x<0}` element-wise (question 1a).
    sign;
    /// `H(x)` element-wise, `H(0) = 1/2`.
    heaviside;
    /// `ReLU(x) = max(0, x)` element-wise.
    relu;
    /// `ReLU'(x) = H(x)` for `x ≠ 0`, [`crate::RELU_PRIME_AT_ZERO`] at 0, element-wise.
    relu_prime;
}

/// `a_k(x) = σ(kx)` element-wise (question 1d).
pub fn steep_logistic<'a, T: Scalar>(k: T, x: impl Into<DVectorView<'a, T>>) -> DVector<T> {
    x.into().map(|v| crate::steep_logistic(k, v))
}

/// `1_S(x)` element-wise, `S` given by a predicate.
pub fn indicator<'a, T: Scalar>(
    x: impl Into<DVectorView<'a, T>>,
    in_set: impl Fn(T) -> bool,
) -> DVector<T> {
    x.into().map(|v| crate::indicator(v, &in_set))
}

/// `diag(x)`: the `n × n` matrix with `x` on its diagonal and zeros elsewhere.
///
/// ```text
/// diag(x)ᵢⱼ = xᵢ if i = j, 0 otherwise
/// ```
pub fn diag<'a, T: Scalar>(x: impl Into<DVectorView<'a, T>>) -> DMatrix<T> {
    DMatrix::from_diagonal(&x.into().into_owned())
}

/// Jacobian of an element-wise map `f` applied to `x`, given its derivative `f'`:
/// `J = diag(f'(x))`, i.e. `Jᵢⱼ = δ_{i=j} f'(xᵢ)`.
///
/// For a backward pass never build this matrix: `Jᵀ g = f'(x) ⊙ g`. It is here to state and
/// test the homework's claim.
pub fn elementwise_jacobian<'a, T: Scalar>(
    x: impl Into<DVectorView<'a, T>>,
    derivative: impl Fn(T) -> T,
) -> DMatrix<T> {
    DMatrix::from_diagonal(&x.into().map(derivative))
}

/// Jacobian of the element-wise logistic (question 1e):
///
/// ```text
/// ∂σ(x)ᵢ/∂xⱼ = δ_{i=j} σ(xᵢ)(1 − σ(xᵢ)),   J = diag(σ(x) ⊙ (1 − σ(x)))
/// ```
pub fn sigmoid_jacobian<'a, T: Scalar>(x: impl Into<DVectorView<'a, T>>) -> DMatrix<T> {
    elementwise_jacobian(x, crate::sigmoid_prime)
}

/// Softmax `S(x)ᵢ = e^(xᵢ) / Σⱼ e^(xⱼ)`, computed as `e^(xᵢ − m) / Σⱼ e^(xⱼ − m)` with
/// `m = maxⱼ xⱼ` (question 1h makes the shift free). Empty in, empty out.
///
/// ```
/// use nalgebra::dvector;
/// use retroprop_activations::softmax;
///
/// let s = softmax(&dvector![1000.0_f64, 1001.0, 1002.0]);
/// assert!(s.iter().all(|p| p.is_finite()));
/// assert!((s.sum() - 1.0).abs() < 1e-15);
/// ```
pub fn softmax<'a, T: Scalar>(x: impl Into<DVectorView<'a, T>>) -> DVector<T> {
    let mut s = x.into().into_owned();
    slice::softmax_in_place(s.as_mut_slice());
    s
}

/// Log-softmax `log S(x)ᵢ = xᵢ − LSE(x)`, never through the log of a probability.
/// Empty in, empty out.
pub fn log_softmax<'a, T: Scalar>(x: impl Into<DVectorView<'a, T>>) -> DVector<T> {
    let mut s = x.into().into_owned();
    slice::log_softmax_in_place(s.as_mut_slice());
    s
}

/// Log-sum-exp `LSE(x) = ln Σⱼ e^(xⱼ) = m + ln Σⱼ e^(xⱼ − m)`, `m = maxⱼ xⱼ`.
///
/// # Errors
/// [`ActivationError::Empty`] for an empty vector: the sum is empty and `ln 0` is not a number
/// a caller should silently receive.
pub fn log_sum_exp<'a, T: Scalar>(x: impl Into<DVectorView<'a, T>>) -> Result<T, ActivationError> {
    let x = x.into();
    let x = x.as_slice();
    slice::log_sum_exp(x).ok_or(ActivationError::Empty {
        function: "log_sum_exp",
    })
}

/// Entropy of a probability vector, `H(p) = −Σᵢ pᵢ ln pᵢ` (with `0 ln 0 = 0`), in nats: the
/// measure of question 1i — `S(αx)` has lower entropy for `α > 1` (sharper), higher for
/// `0 < α < 1` (flatter), and `ln n`, the maximum, at `α = 0`.
///
/// ```
/// use nalgebra::DVector;
/// use retroprop_activations::vector::entropy;
///
/// let uniform = DVector::from_element(4, 0.25_f64);
/// assert!((entropy(&uniform) - 4.0_f64.ln()).abs() < 1e-15);
/// assert_eq!(entropy(&DVector::from_vec(vec![1.0_f64, 0.0])), 0.0);
/// ```
pub fn entropy<'a, T: Scalar>(p: impl Into<DVectorView<'a, T>>) -> T {
    p.into().iter().fold(T::zero(), |acc, &v| {
        if v > T::zero() { acc - v * v.ln() } else { acc }
    })
}

/// Jacobian of the softmax (questions 1j/1k):
///
/// ```text
/// ∂S(x)ᵢ/∂xⱼ = S(x)ᵢ (δ_{i=j} − S(x)ⱼ),    ∂S/∂x = diag(S(x)) − S(x) S(x)ᵀ
/// ```
///
/// An `n × n` matrix: use [`softmax_vjp`] in a backward pass instead.
pub fn softmax_jacobian<'a, T: Scalar>(x: impl Into<DVectorView<'a, T>>) -> DMatrix<T> {
    let s = softmax(x);
    let n = s.len();
    // off the diagonal −SᵢSⱼ; on it Sᵢ(1 − Sᵢ) = Sᵢ Σ_{j≠i} Sⱼ, which does not cancel when Sᵢ
    // rounds to 1 (x = [50, −50]: the entry is 3.72·10⁻⁴⁴, not 0)
    DMatrix::from_fn(n, n, |i, j| {
        if i == j {
            let others = (0..n)
                .filter(|&k| k != i)
                .fold(T::zero(), |acc, k| acc + s[k]);
            s[i] * others
        } else {
            -(s[i] * s[j])
        }
    })
}

fn check_len(function: &'static str, expected: usize, got: usize) -> Result<(), ActivationError> {
    if expected == got {
        Ok(())
    } else {
        Err(ActivationError::LengthMismatch {
            function,
            expected,
            got,
        })
    }
}

/// Vector–Jacobian product of the softmax without the matrix: given the softmax output `s`
/// and the upstream gradient `g = dL/dS`, returns `dL/dx = Jᵀ g = s ⊙ (g − ⟨g, s⟩)`.
///
/// # Errors
/// [`ActivationError::LengthMismatch`] if `g` and `s` differ in length.
pub fn softmax_vjp<'a, 'b, T: Scalar>(
    s: impl Into<DVectorView<'a, T>>,
    g: impl Into<DVectorView<'b, T>>,
) -> Result<DVector<T>, ActivationError> {
    let (s, g) = (s.into(), g.into());
    check_len("softmax_vjp", s.len(), g.len())?;
    let mut out = DVector::zeros(s.len());
    slice::softmax_vjp(s.as_slice(), g.as_slice(), out.as_mut_slice());
    Ok(out)
}

/// Vector–Jacobian product of the log-softmax: `Jᵀ g = g − s · Σᵢ gᵢ`, `s = S(x)`
/// (question 1l; with `g = −c` it is question 1m's `S(x) − c`).
///
/// # Errors
/// [`ActivationError::LengthMismatch`] if `g` and `s` differ in length.
pub fn log_softmax_vjp<'a, 'b, T: Scalar>(
    s: impl Into<DVectorView<'a, T>>,
    g: impl Into<DVectorView<'b, T>>,
) -> Result<DVector<T>, ActivationError> {
    let (s, g) = (s.into(), g.into());
    check_len("log_softmax_vjp", s.len(), g.len())?;
    let mut out = DVector::zeros(s.len());
    slice::log_softmax_vjp(s.as_slice(), g.as_slice(), out.as_mut_slice());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use nalgebra::{DMatrix, dvector};

    use super::*;

    #[test]
    fn works_on_matrix_columns() {
        let m = DMatrix::from_column_slice(3, 2, &[0.0_f64, 1.0, 2.0, 5.0, 5.0, 5.0]);
        let s = softmax(m.column(1));
        assert_eq!(s, dvector![1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]);
        assert_eq!(relu(m.column(0)), dvector![0.0, 1.0, 2.0]);
    }

    #[test]
    fn empty_inputs() {
        let e = DVector::<f64>::zeros(0);
        assert_eq!(softmax(&e).len(), 0);
        assert_eq!(log_softmax(&e).len(), 0);
        assert_eq!(
            log_sum_exp(&e),
            Err(ActivationError::Empty {
                function: "log_sum_exp"
            })
        );
    }

    #[test]
    fn vjp_rejects_length_mismatch() {
        let r = softmax_vjp(&dvector![0.5_f64, 0.5], &dvector![1.0_f64]);
        assert_eq!(
            r,
            Err(ActivationError::LengthMismatch {
                function: "softmax_vjp",
                expected: 2,
                got: 1
            })
        );
    }

    #[test]
    fn diag_puts_the_vector_on_the_diagonal() {
        let d = diag(&dvector![1.0_f64, 2.0]);
        assert_eq!(d, DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, 2.0]));
    }
}
