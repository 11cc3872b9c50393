//! Kernels on contiguous slices, for the layers and losses that work on whole batches.
//!
//! A batch is an nalgebra matrix with one column per example, column-major, so each example is
//! one contiguous slice (`m.as_slice().chunks_exact(m.nrows())`). These functions are what the
//! layers call per column; they allocate nothing. The vector functions of this crate are thin
//! wrappers over them.

use crate::{Scalar, is_nan};

/// `x ← exp(x)` element-wise (vectorised for `f32`, see [`crate::Kernels`]).
pub fn exp_in_place<T: Scalar>(x: &mut [T]) {
    T::exp_in_place(x);
}

/// `softplus ← softplus(x)` and `sigmoid ← σ(x)` in one pass (questions 2q/2r: the layer keeps
/// `φ'(hᵃ) = σ(hᵃ)` for its backward pass). Slices have equal length.
pub fn softplus_sigmoid<T: Scalar>(x: &[T], softplus: &mut [T], sigmoid: &mut [T]) {
    debug_assert!(x.len() == softplus.len() && x.len() == sigmoid.len());
    T::softplus_sigmoid(x, softplus, sigmoid);
}

/// `out ← σ(x)` element-wise.
pub fn sigmoid_into<T: Scalar>(x: &[T], out: &mut [T]) {
    debug_assert_eq!(x.len(), out.len());
    T::sigmoid_into(x, out);
}

/// Largest entry ignoring NaN, and the index of its first occurrence; `None` if there is no
/// non-NaN entry.
fn max_ignoring_nan<T: Scalar>(x: &[T]) -> Option<(usize, T)> {
    let mut m: Option<(usize, T)> = None;
    for (j, &v) in x.iter().enumerate() {
        if !is_nan(v) && m.is_none_or(|(_, m)| v > m) {
            m = Some((j, v));
        }
    }
    m
}

/// `Σ_{j ≠ k} xⱼ`.
fn sum_except<T: Scalar>(x: &[T], k: usize) -> T {
    x[..k]
        .iter()
        .chain(&x[k + 1..])
        .fold(T::zero(), |acc, &v| acc + v)
}

/// Softmax in place, returning the log-sum-exp of the original values.
///
/// ```text
/// m = maxⱼ xⱼ
/// S(x)ᵢ = e^(xᵢ − m) / Σⱼ e^(xⱼ − m)        (question 1h: S(x + c) = S(x) with c = −m)
/// LSE(x) = m + ln(1 + r),  r = Σ_{j ≠ k} e^(xⱼ − m),  k the first arg-max   (ln_1p: exact for tiny r)
/// ```
///
/// Shifting by the maximum keeps every exponent ≤ 0, so `[1000, 1001, 1002]` is as exact as
/// `[0, 1, 2]`. Returns `None` for an empty slice (the softmax of nothing is nothing; its
/// log-sum-exp, `ln 0`, is left to the caller). A NaN anywhere makes every output NaN. Infinite
/// inputs take their limits: entries equal to `+∞` share the mass equally; if all are `−∞` the
/// result is uniform and LSE is `−∞`.
pub fn softmax_in_place<T: Scalar>(x: &mut [T]) -> Option<T> {
    softmax_in_place_split(x).map(|(m, rest)| m + rest.ln_1p())
}

/// As [`softmax_in_place`], returning the parts of the log-sum-exp instead of the sum:
/// `(m, r)` with `m` the maximum and `r = Σ_{j ≠ k} e^(xⱼ − m)` the other terms, so that
/// `LSE(x) = m + ln(1 + r)`.
///
/// No logarithm is taken: a caller that needs only the probabilities (the `Softmax` layer)
/// pays for none, and a loss `LSE(x) − x_y` computes `(m − x_y) + ln_1p(r)`, which keeps its
/// digits when `x_y` is the maximum and `r` is tiny (`m + ln(1 + r)` would round to `m`). The
/// cross-entropy does.
pub fn softmax_in_place_split<T: Scalar>(x: &mut [T]) -> Option<(T, T)> {
    if x.is_empty() {
        return None;
    }
    if x.iter().any(|&v| is_nan(v)) {
        x.fill(T::NAN);
        return Some((T::NAN, T::NAN));
    }
    let (k, m) = max_ignoring_nan(x)?;
    if m == T::INFINITY || m == T::NEG_INFINITY {
        let count = x.iter().filter(|&&v| v == m).count();
        let share = T::one() / T::lit(count as f64);
        for v in x.iter_mut() {
            *v = if *v == m { share } else { T::zero() };
        }
        return Some((m, T::zero()));
    }
    for v in x.iter_mut() {
        *v -= m;
    }
    T::exp_in_place(x);
    // the arg-max term is e⁰ = 1 exactly; the others, summed apart, keep their digits in ln_1p,
    // and the normaliser is 1 + r (one pass over the terms, as a plain sum would be)
    let rest = sum_except(x, k);
    let sum = T::one() + rest;
    for v in x.iter_mut() {
        *v /= sum;
    }
    Some((m, rest))
}

/// Log-sum-exp `LSE(x) = ln Σⱼ e^(xⱼ)`, computed as `m + ln_1p(Σ_{j ≠ k} e^(xⱼ − m))` with
/// `m = xₖ` the maximum; `None` if empty.
///
/// Exact to rounding for large inputs (`LSE([1000, 1000]) = 1000 + ln 2`) and very negative ones
/// (`LSE([−1000, −1000]) = −1000 + ln 2`). Internally the two parts `m` and `ln(1 + r)` are kept
/// apart, so the log-softmax and the cross-entropy keep `ln(1 + e⁻¹⁰⁰) = 3.72·10⁻⁴⁴` for
/// `[50, −50]`, which `ln Σ` would round to 0 (the sum `1 + 3.72·10⁻⁴⁴` is 1).
pub fn log_sum_exp<T: Scalar>(x: &[T]) -> Option<T> {
    log_sum_exp_split(x).map(|(m, log1p_rest)| m + log1p_rest)
}

/// The log-sum-exp in two parts `(m, ln(1 + r))`, as [`softmax_in_place_split`] returns them.
fn log_sum_exp_split<T: Scalar>(x: &[T]) -> Option<(T, T)> {
    if x.is_empty() {
        return None;
    }
    if x.iter().any(|&v| is_nan(v)) {
        return Some((T::NAN, T::NAN));
    }
    let (k, m) = max_ignoring_nan(x)?;
    if m == T::INFINITY || m == T::NEG_INFINITY {
        return Some((m, T::zero()));
    }
    let rest = x[..k]
        .iter()
        .chain(&x[k + 1..])
        .fold(T::zero(), |acc, &v| acc + (v - m).exp());
    Some((m, rest.ln_1p()))
}

/// Log-softmax in place: `xᵢ ← xᵢ − LSE(x)`, computed as `(xᵢ − m) − ln(1 + r)` (never the log
/// of a probability, so `−1000` stays finite where `ln S` would be `ln 0 = −∞`; and the maximal
/// entry keeps its digits: `log_softmax([50, −50])₀ = −3.72·10⁻⁴⁴`, not 0). Does nothing on an
/// empty slice.
pub fn log_softmax_in_place<T: Scalar>(x: &mut [T]) {
    // an infinite maximum comes with ln(1 + r) = 0, so this also gives the limits xᵢ − ∞
    // (and ∞ − ∞ = NaN for the infinite entries themselves)
    if let Some((m, log1p_rest)) = log_sum_exp_split(x) {
        for v in x.iter_mut() {
            *v = (*v - m) - log1p_rest;
        }
    }
}

/// Vector–Jacobian product of the softmax, without the `n × n` Jacobian (questions 1j/1k):
///
/// ```text
/// J = diag(S) − S Sᵀ (symmetric), so  Jᵀ g = S ⊙ (g − ⟨g, S⟩)
/// ```
///
/// `s` is the softmax output, `g` the upstream gradient `dL/dS`; writes `dL/dx` into `out`.
/// The three slices have equal length.
pub fn softmax_vjp<T: Scalar>(s: &[T], g: &[T], out: &mut [T]) {
    debug_assert!(s.len() == g.len() && s.len() == out.len());
    let dot = s.iter().zip(g).fold(T::zero(), |acc, (&s, &g)| acc + s * g);
    for ((o, &s), &g) in out.iter_mut().zip(s).zip(g) {
        *o = s * (g - dot);
    }
}

/// Vector–Jacobian product of the log-softmax (question 1l with `x(u) = u`):
///
/// ```text
/// ∂ log S(x)ᵢ / ∂xⱼ = δᵢⱼ − S(x)ⱼ,   so  Jᵀ g = g − S · Σᵢ gᵢ
/// ```
///
/// With `g = −c` for a one-hot (or any probability vector) `c` this is `S − c`: the gradient of
/// the cross-entropy `−Σ cᵢ log S(x)ᵢ` (question 1m).
pub fn log_softmax_vjp<T: Scalar>(s: &[T], g: &[T], out: &mut [T]) {
    debug_assert!(s.len() == g.len() && s.len() == out.len());
    let total = g.iter().fold(T::zero(), |acc, &g| acc + g);
    for ((o, &s), &g) in out.iter_mut().zip(s).zip(g) {
        *o = g - s * total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_of_large_inputs_is_finite_and_exact() {
        // Expected values: softmax([0, 1, 2]) computed in f64 by the direct formula, whose
        // exponentials do not overflow; the shift invariance S(x + 1000) = S(x) makes it the
        // reference for [1000, 1001, 1002].
        let e = [1.0_f64, 1.0_f64.exp(), 2.0_f64.exp()];
        let total: f64 = e.iter().sum();
        let mut x = [1000.0_f64, 1001.0, 1002.0];
        let lse = softmax_in_place(&mut x).unwrap();
        for i in 0..3 {
            assert!((x[i] - e[i] / total).abs() < 1e-15, "{x:?}");
        }
        assert!((lse - (1000.0 + total.ln())).abs() < 1e-12);
    }

    #[test]
    fn softmax_of_infinities_takes_the_limit() {
        let mut x = [f64::INFINITY, 0.0, f64::INFINITY];
        softmax_in_place(&mut x);
        assert_eq!(x, [0.5, 0.0, 0.5]);
        let mut y = [f64::NEG_INFINITY; 4];
        assert_eq!(softmax_in_place(&mut y), Some(f64::NEG_INFINITY));
        assert_eq!(y, [0.25; 4]);
    }

    #[test]
    fn softmax_with_nan_is_all_nan() {
        let mut x = [1.0_f32, f32::NAN, 2.0];
        softmax_in_place(&mut x);
        assert!(x.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn log_sum_exp_is_exact_at_both_ends() {
        let ln2 = 2.0_f64.ln();
        assert_eq!(log_sum_exp(&[1000.0, 1000.0]), Some(1000.0 + ln2));
        assert_eq!(log_sum_exp(&[-1000.0, -1000.0]), Some(-1000.0 + ln2));
        assert_eq!(log_sum_exp::<f64>(&[]), None);
        assert_eq!(log_sum_exp(&[f64::NEG_INFINITY]), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn log_softmax_of_very_negative_entry_stays_finite() {
        let mut x = [0.0_f64, -1000.0];
        log_softmax_in_place(&mut x);
        // ln S₁ = −1000 − ln(1 + e^−1000) = −1000 to rounding
        assert_eq!(x[1], -1000.0);
        assert_eq!(x[0], 0.0);
    }
}
