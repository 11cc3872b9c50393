//! f64 to the last digits: every scalar function of part 1 and its derivative, and the softmax
//! of the pair `[x, −x]`, against values computed with mpmath at 2100 digits
//! (`tests/reference/make_reference.py`, which wrote `tests/reference/values.tsv`), at
//! `x ∈ {±1e−8, ±0.5, ±2.5, ±20, ±30, ±50, ±1000}`.

use nalgebra::DVector;
use retroprop_activations::{
    log_sigmoid, log_softmax, sigmoid, sigmoid_prime, softmax, softmax_jacobian, softplus,
    softplus_prime, tanh, tanh_prime,
};

/// Relative tolerance where the formula allows it: a few ulps (`4.5·ε ≈ 10⁻¹⁵`) would do for
/// most; 1e−12 is the issue's bar and leaves room for `exp`'s last-bit differences.
const REL_TOL: f64 = 1e-12;
/// Below this magnitude the reference underflows or is subnormal in f64: absolute tolerance.
const TINY: f64 = 1e-300;

/// `(name, x, value)` for every line of the table.
fn reference() -> Vec<(String, f64, f64)> {
    let text = include_str!("reference/values.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "malformed line: {l}");
            let parse = |s: &str| s.parse::<f64>().unwrap_or_else(|e| panic!("{s}: {e}"));
            (f[0].to_string(), parse(f[1]), parse(f[2]))
        })
        .collect()
}

/// The library's value for a name of the table, or `None` if this test does not cover it.
fn ours(name: &str, x: f64) -> Option<f64> {
    let pair = DVector::from_vec(vec![x, -x]);
    Some(match name {
        "sigmoid" => sigmoid(x),
        "sigmoid_prime" => sigmoid_prime(x),
        "tanh" => tanh(x),
        "tanh_prime" => tanh_prime(x),
        "softplus" => softplus(x),
        "softplus_prime" => softplus_prime(x),
        "log_sigmoid" => log_sigmoid(x),
        "log_softmax_pair_0" => log_softmax(&pair)[0],
        "log_softmax_pair_1" => log_softmax(&pair)[1],
        "softmax_pair_0" => softmax(&pair)[0],
        "softmax_jacobian_pair_00" => softmax_jacobian(&pair)[(0, 0)],
        "softmax_jacobian_pair_01" => softmax_jacobian(&pair)[(0, 1)],
        _ => return None,
    })
}

#[track_caller]
fn assert_matches(name: &str, x: f64, got: f64, want: f64) {
    let ok = if want.abs() < TINY {
        (got - want).abs() <= TINY
    } else {
        (got - want).abs() <= REL_TOL * want.abs()
    };
    assert!(
        ok,
        "{name}({x}) = {got:e}, mpmath {want:e}: relative error {:.2e}",
        ((got - want) / want).abs()
    );
}

#[test]
fn scalar_functions_and_derivatives_match_mpmath_to_the_last_digits() {
    let mut checked = 0;
    for (name, x, want) in reference() {
        if let Some(got) = ours(&name, x) {
            assert_matches(&name, x, got, want);
            checked += 1;
        }
    }
    // 14 points × 12 functions
    assert_eq!(checked, 14 * 12);
}

#[test]
fn the_issue_examples_are_exact() {
    // σ'(50) = 1.93e−22 (was 0), tanh'(20) = 1.70e−17 (was 0), log_softmax([50, −50])₀ = −3.72e−44
    assert!((sigmoid_prime(50.0_f64) / 1.928_749_847_963_917_8e-22 - 1.0).abs() < 1e-14);
    assert!((tanh_prime(20.0_f64) / 1.699_341_702_116_635_6e-17 - 1.0).abs() < 1e-14);
    let ls = log_softmax(&DVector::from_vec(vec![50.0_f64, -50.0]));
    assert!(
        (ls[0] / -3.720_075_976_020_836e-44 - 1.0).abs() < 1e-14,
        "{ls}"
    );
    // f32 follows the same formulas and stays finite and non-negative
    assert!(sigmoid_prime(50.0_f32) > 0.0 && tanh_prime(20.0_f32) >= 0.0);
}
