//! The scalar functions of part 1 and their derivatives, one formula each.

use crate::Scalar;

/// Value of [`relu_prime`] at `x = 0`, where ReLU has no derivative.
///
/// Any value in the subdifferential `[0, 1]` is a valid subgradient; the homework's Heaviside
/// would give `H(0) = 1/2`. We use `0`, as PyTorch does, so that a unit sitting exactly at 0
/// passes no gradient (sparse, "dead" units stay dead) and so that retroprop and PyTorch agree
/// bit for bit on inputs that hit 0 (common after a ReLU feeds a max-pool, or with zero padding).
pub const RELU_PRIME_AT_ZERO: f64 = 0.0;

/// Logistic sigmoid `σ(x) = 1 / (1 + e^−x)`.
///
/// ```text
/// σ(x) = 1 / (1 + e^−x)          for x ≥ 0
/// σ(x) = e^x / (1 + e^x)         for x < 0      (same value; e^−x never overflows)
/// ```
/// `σ(1000) = 1`, `σ(−1000) = 0`, never NaN on finite input; `σ(NaN) = NaN`.
///
/// ```
/// use retroprop_activations::sigmoid;
/// assert_eq!(sigmoid(0.0_f64), 0.5);
/// assert_eq!(sigmoid(-1000.0_f64), 0.0);
/// ```
pub fn sigmoid<T: Scalar>(x: T) -> T {
    let one = T::one();
    if x >= T::zero() {
        one / (one + (-x).exp())
    } else {
        let e = x.exp();
        e / (one + e)
    }
}

/// Derivative of the sigmoid written with σ only (question 1e): `σ'(x) = σ(x) (1 − σ(x))`,
/// evaluated without cancellation.
///
/// ```text
/// σ'(x) = σ(x) (1 − σ(x)) = σ(x) σ(−x) = e / (1 + e)²,   e = e^−|x|
/// ```
///
/// `1 − σ(x)` cancels for large `x` (`σ(50)` rounds to 1, so `σ(1 − σ)` gives 0 where the true
/// value is `1.93·10⁻²²`); the last form is exact to a few ulps everywhere.
pub fn sigmoid_prime<T: Scalar>(x: T) -> T {
    let e = (-x.abs()).exp();
    let one_plus = T::one() + e;
    e / (one_plus * one_plus)
}

/// Hyperbolic tangent `tanh(x) = (e^x − e^−x) / (e^x + e^−x)` (standard library, stable).
pub fn tanh<T: Scalar>(x: T) -> T {
    x.tanh()
}

/// Derivative of tanh: `tanh'(x) = 1 − tanh²(x)`, evaluated without cancellation.
///
/// ```text
/// tanh'(x) = 1 − tanh²(x) = 4 / (eˣ + e⁻ˣ)² = 4e / (1 + e)²,   e = e^−2|x|
/// ```
///
/// (`tanh(20)` rounds to 1, so `1 − tanh²` gives 0 where the true value is `1.70·10⁻¹⁷`.)
pub fn tanh_prime<T: Scalar>(x: T) -> T {
    let e = (-(x.abs() + x.abs())).exp();
    let one_plus = T::one() + e;
    T::lit(4.0) * e / (one_plus * one_plus)
}

/// Softplus `softplus(x) = ln(1 + e^x)`, in the stable form
///
/// ```text
/// softplus(x) = max(x, 0) + ln(1 + e^−|x|)
/// ```
///
/// so `softplus(1000) = 1000` exactly and `softplus(−1000) = e^−1000` (which rounds to 0), never
/// `∞` or NaN on finite input; `softplus(NaN) = NaN`.
///
/// ```
/// use retroprop_activations::softplus;
/// assert_eq!(softplus(1000.0_f64), 1000.0);
/// assert_eq!(softplus(-1000.0_f64), 0.0);
/// // softplus(1) = ln(1 + e) ≈ 1.3133
/// assert!((softplus(1.0_f64) - 1.313_261_687_518_223).abs() < 1e-15);
/// ```
pub fn softplus<T: Scalar>(x: T) -> T {
    let pos = if x > T::zero() { x } else { T::zero() };
    pos + (-x.abs()).exp().ln_1p()
}

/// `ln σ(x)` through question 1f's identity: `ln σ(x) = −softplus(−x)`, finite where `σ(x)`
/// underflows (`x < −745` in f64) and exact where `σ(x)` rounds to 1.
///
/// ```
/// use retroprop_activations::log_sigmoid;
/// assert_eq!(log_sigmoid(-1000.0_f64), -1000.0);
/// // ln σ(0) = −ln 2
/// assert!((log_sigmoid(0.0_f64) + std::f64::consts::LN_2).abs() < 1e-16);
/// ```
pub fn log_sigmoid<T: Scalar>(x: T) -> T {
    -softplus(-x)
}

/// Derivative of softplus (question 1g): `softplus'(x) = σ(x)`.
pub fn softplus_prime<T: Scalar>(x: T) -> T {
    sigmoid(x)
}

/// Sign through indicators (question 1a): `sign(x) = 1_{x>0}(x) − 1_{x<0}(x)`.
///
/// `+1` for `x > 0`, `−1` for `x < 0`, `0` for `±0`, NaN for NaN. (Rust's `f64::signum` differs:
/// it returns ±1 at ±0.)
pub fn sign<T: Scalar>(x: T) -> T {
    if crate::is_nan(x) {
        return x;
    }
    let zero = T::zero();
    indicator(x, |v| v > zero) - indicator(x, |v| v < zero)
}

/// Heaviside step: `H(x) = 1` for `x > 0`, `0` for `x < 0`, `1/2` at `x = 0`; NaN for NaN.
pub fn heaviside<T: Scalar>(x: T) -> T {
    let zero = T::zero();
    if x > zero {
        T::one()
    } else if x < zero {
        zero
    } else if x == zero {
        T::lit(0.5)
    } else {
        x
    }
}

/// Indicator `1_S(x)`: `1` if `x ∈ S` (the predicate holds), else `0`.
///
/// ```
/// use retroprop_activations::indicator;
/// assert_eq!(indicator(3.0_f64, |x| x > 2.0), 1.0);
/// assert_eq!(indicator(1.0_f64, |x| x > 2.0), 0.0);
/// ```
pub fn indicator<T: Scalar>(x: T, in_set: impl FnOnce(T) -> bool) -> T {
    if in_set(x) { T::one() } else { T::zero() }
}

/// Rectifier `rect(x) = ReLU(x) = max(0, x) = x · 1_{x>0}(x)`; NaN for NaN.
///
/// (The homework's definitions line writes `max(0, x) = 1_{x>0}(x)`, dropping the factor `x`.)
pub fn relu<T: Scalar>(x: T) -> T {
    if x > T::zero() {
        x
    } else if x <= T::zero() {
        T::zero()
    } else {
        x
    }
}

/// Derivative of ReLU where it exists (question 1b): `H(x)` for `x ≠ 0`.
///
/// At `x = 0` ReLU is not differentiable; this returns [`RELU_PRIME_AT_ZERO`] (`0`, PyTorch's
/// choice — see there why). NaN for NaN.
pub fn relu_prime<T: Scalar>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x <= T::zero() {
        T::lit(RELU_PRIME_AT_ZERO)
    } else {
        x
    }
}

/// The steep logistic of question 1d: `a_k(x) = 1 / (1 + e^(−kx)) = σ(kx)`.
///
/// As `k → ∞` it tends to the Heaviside step: to 1 for `x > 0`, to 0 for `x < 0`, and
/// `a_k(0) = 1/2 = H(0)` for every `k`. For `x ≠ 0` the approach is monotone in `k`.
pub fn steep_logistic<T: Scalar>(k: T, x: T) -> T {
    sigmoid(k * x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_saturates_without_nan() {
        assert_eq!(sigmoid(1000.0_f64), 1.0);
        assert_eq!(sigmoid(-1000.0_f64), 0.0);
        assert_eq!(sigmoid(1000.0_f32), 1.0);
        assert_eq!(sigmoid(-1000.0_f32), 0.0);
        assert!(sigmoid(f64::NAN).is_nan());
        assert_eq!(sigmoid_prime(1000.0_f64), 0.0);
    }

    #[test]
    fn softplus_extremes() {
        assert_eq!(softplus(1000.0_f64), 1000.0);
        assert_eq!(softplus(1000.0_f32), 1000.0);
        assert_eq!(softplus(-1000.0_f64), 0.0);
        // softplus(−700) = ln(1 + e^−700) ≈ e^−700, representable in f64: relative accuracy holds
        let v = softplus(-700.0_f64);
        assert!((v / (-700.0_f64).exp() - 1.0).abs() < 1e-15, "{v}");
        assert!(softplus(f64::NAN).is_nan());
        assert_eq!(softplus(f64::INFINITY), f64::INFINITY);
        assert_eq!(softplus(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn sign_and_heaviside_at_zero_and_nan() {
        assert_eq!(sign(0.0_f64), 0.0);
        assert_eq!(sign(-0.0_f64), 0.0);
        assert_eq!(sign(-3.0_f64), -1.0);
        assert!(sign(f64::NAN).is_nan());
        assert_eq!(heaviside(0.0_f64), 0.5);
        assert_eq!(heaviside(-0.0_f64), 0.5);
        assert!(heaviside(f32::NAN).is_nan());
    }

    #[test]
    fn relu_and_its_derivative_at_zero() {
        assert_eq!(relu(-2.0_f64), 0.0);
        assert_eq!(relu(2.5_f64), 2.5);
        assert_eq!(relu_prime(0.0_f64), RELU_PRIME_AT_ZERO);
        assert_eq!(relu_prime(1e-300_f64), 1.0);
        assert_eq!(relu_prime(-1e-300_f64), 0.0);
        assert!(relu(f64::NAN).is_nan());
        assert!(relu_prime(f64::NAN).is_nan());
    }

    #[test]
    fn steep_logistic_is_half_at_zero_for_every_k() {
        for k in [0.0, 1.0, 1e3, 1e300] {
            assert_eq!(steep_logistic(k, 0.0_f64), 0.5);
        }
    }

    #[test]
    fn relu_of_a_non_positive_input_is_positive_zero() {
        // max(0, x) is +0 for x ≤ 0, −0 included (the sign of a zero reaches 1/x and atan2)
        for x in [0.0_f64, -0.0, -1.0, -1e-300] {
            assert!(
                relu(x) == 0.0 && relu(x).is_sign_positive(),
                "relu({x}) = {}",
                relu(x)
            );
        }
        assert!(relu(-0.0_f32).is_sign_positive());
        assert_eq!(relu(2.5_f64), 2.5);
        assert_eq!((relu_prime(-0.0_f64), relu_prime(0.0_f64)), (0.0, 0.0));
    }

    #[test]
    fn softplus_at_zero_is_ln_2_on_both_sides() {
        // softplus(±0) = ln 2: the max(x, 0) branch is +0 or −0, and either adds to ln 2
        assert_eq!(softplus(0.0_f64), std::f64::consts::LN_2);
        assert_eq!(softplus(-0.0_f64), std::f64::consts::LN_2);
    }

    #[test]
    fn steep_logistic_at_finite_k_is_the_definition() {
        // a_2(1) = 1/(1 + e^−2) ≈ 0.880797; a_3(−0.5) = 1/(1 + e^1.5) ≈ 0.182426
        assert!((steep_logistic(2.0, 1.0_f64) - 0.880_797_077_977_882_3).abs() < 1e-15);
        assert!((steep_logistic(3.0, -0.5_f64) - 0.182_425_523_806_356_35).abs() < 1e-15);
    }
}
