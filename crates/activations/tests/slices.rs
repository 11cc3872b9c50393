//! The slice kernels agree with the scalar functions they vectorise, and the log-sum-exp takes
//! the limits of infinite inputs.

use retroprop_activations::{sigmoid, slice, softplus};

fn inputs() -> Vec<f64> {
    (-40..=40).map(|i| f64::from(i) * 0.37).collect()
}

#[test]
fn slice_kernels_equal_the_scalar_functions() {
    let x = inputs();
    let mut e = x.clone();
    slice::exp_in_place(&mut e);
    let (mut sp, mut sg, mut sg2) = (vec![0.0; x.len()], vec![0.0; x.len()], vec![0.0; x.len()]);
    slice::softplus_sigmoid(&x, &mut sp, &mut sg);
    slice::sigmoid_into(&x, &mut sg2);
    for (i, &v) in x.iter().enumerate() {
        assert!(
            (e[i] - v.exp()).abs() <= 4.0 * f64::EPSILON * v.exp(),
            "exp({v})"
        );
        assert!(
            (sp[i] - softplus(v)).abs() <= 4.0 * f64::EPSILON * softplus(v),
            "softplus({v})"
        );
        assert!((sg[i] - sigmoid(v)).abs() <= 4.0 * f64::EPSILON, "σ({v})");
        assert_eq!(sg2[i], sg[i], "σ({v}) two ways");
    }
    // f32 too (the SIMD kernels)
    let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let mut ef = xf.clone();
    slice::exp_in_place(&mut ef);
    for (&v, &got) in xf.iter().zip(&ef) {
        let want = f64::from(v).exp();
        assert!((f64::from(got) - want).abs() <= 4.0 * f64::from(f32::EPSILON) * want);
    }
}

#[test]
fn log_sum_exp_takes_the_limits_of_infinite_inputs() {
    assert_eq!(
        slice::log_sum_exp(&[f64::INFINITY, 1.0]),
        Some(f64::INFINITY)
    );
    assert_eq!(
        slice::log_sum_exp(&[f64::NEG_INFINITY, f64::NEG_INFINITY]),
        Some(f64::NEG_INFINITY)
    );
    // one infinite term among finite ones dominates; −∞ terms contribute nothing
    let lse = slice::log_sum_exp(&[f64::NEG_INFINITY, 0.0, 0.0]).unwrap();
    assert!((lse - std::f64::consts::LN_2).abs() < 1e-16);
    assert_eq!(slice::log_sum_exp::<f64>(&[]), None);
    assert!(slice::log_sum_exp(&[f64::NAN, 1.0]).unwrap().is_nan());
    // the log-softmax of [+∞, 1] is [NaN (∞ − ∞), −∞]: the limits, no panic
    let mut x = [f64::INFINITY, 1.0];
    slice::log_softmax_in_place(&mut x);
    assert!(x[0].is_nan() && x[1] == f64::NEG_INFINITY, "{x:?}");
}

#[test]
fn the_log_softmax_vjp_is_the_transposed_jacobian_for_any_upstream_gradient() {
    // g with Σg = 2.5 (not ±1, where g − S·Σg and g − S/Σg would agree)
    let x = [0.3_f64, -1.2, 2.0, 0.5];
    let g = [1.0_f64, -0.5, 2.0, 0.0];
    let mut s = x;
    slice::softmax_in_place(&mut s);
    let mut out = [0.0_f64; 4];
    slice::log_softmax_vjp(&s, &g, &mut out);
    // J = I − 1 Sᵀ (row i: eᵢ − S), so (Jᵀ g)ⱼ = gⱼ − Sⱼ Σᵢ gᵢ
    for j in 0..4 {
        let want = g[j] - s[j] * 2.5;
        assert!((out[j] - want).abs() < 1e-15, "{j}: {} vs {want}", out[j]);
    }
}
