//! The seeded parts of the layers, tested in this crate: dropout's mask (held or drawn anew,
//! passed back by the backward pass) and the spread of the normal initialisers.

use nalgebra::DMatrix;
use retroprop_layers::{Dense, Dropout, Init, Layer, LayerError};

fn batch(rows: usize, cols: usize) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |i, j| 1.0 + (i * cols + j) as f64 * 0.01)
}

#[test]
fn the_mask_is_what_the_forward_multiplied_by_and_what_the_backward_passes_back() {
    let mut d = Dropout::<f64>::new(0.5).unwrap();
    d.reseed(3);
    assert!(d.mask().is_none());
    assert_eq!(
        d.backward(&batch(4, 3)).unwrap_err(),
        LayerError::NoForwardCache { layer: "Dropout" }
    );
    let x = batch(40, 30);
    let y = d.forward(&x).unwrap();
    let mask = d.mask().expect("drawn by the forward pass").clone();
    // inverted dropout with p = ½: every entry of the mask is 0 or 1/(1 − p) = 2
    assert!(mask.iter().all(|&m| m == 0.0 || m == 2.0));
    assert!(mask.iter().any(|&m| m == 0.0) && mask.iter().any(|&m| m == 2.0));
    assert_eq!(y, x.component_mul(&mask));
    let g = batch(40, 30).map(|v| 3.0 - v);
    assert_eq!(d.backward(&g).unwrap(), g.component_mul(&mask));
}

#[test]
fn a_held_mask_is_reused_until_the_shape_changes() {
    let mut d = Dropout::<f64>::new(0.5).unwrap();
    d.reseed(4);
    d.hold_mask(true);
    let x = batch(20, 10);
    let first = d.forward(&x).unwrap();
    assert_eq!(d.forward(&x).unwrap(), first, "held: the same mask");
    // another batch size needs another mask, held from then on
    let other = batch(20, 7);
    let y = d.forward(&other).unwrap();
    let mask = d.mask().unwrap().clone();
    assert_eq!(mask.shape(), (20, 7));
    assert_eq!(y, other.component_mul(&mask));
    assert_eq!(d.forward(&other).unwrap(), y);
    d.hold_mask(false);
    assert_ne!(d.forward(&other).unwrap(), y, "released: a new mask");
}

/// Sample standard deviation of the weights.
fn spread(w: &DMatrix<f64>) -> f64 {
    let mean = w.mean();
    (w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / w.len() as f64).sqrt()
}

#[test]
fn the_normal_initialisers_have_their_standard_deviations() {
    // 300 → 200: 60 000 draws, so the sample deviation is within ~0.3 % of σ (1/√(2N)); 3 %
    // leaves ten of those and still tells every wrong formula apart
    let (d_in, d_out) = (300.0_f64, 200.0_f64);
    for (init, sigma) in [
        (
            Init::XavierNormal { seed: 5 },
            (2.0 / (d_in + d_out)).sqrt(),
        ),
        (Init::HeNormal { seed: 5 }, (2.0 / d_in).sqrt()),
    ] {
        let dense = Dense::<f64>::new(300, 200, init).unwrap();
        let s = spread(dense.weight().value());
        assert!(
            (s / sigma - 1.0).abs() < 0.03,
            "{init:?}: σ {s} against {sigma}"
        );
        assert!(dense.bias().value().iter().all(|&b| b == 0.0));
    }
}

#[test]
fn the_uniform_initialisers_fill_their_bounds() {
    // U(−a, a): every weight inside, and of 60 000 draws the largest within 1 % of a (the
    // chance that all fall below 0.99a is 0.99⁶⁰⁰⁰⁰)
    let (d_in, d_out) = (300.0_f64, 200.0_f64);
    for (init, bound) in [
        (
            Init::XavierUniform { seed: 6 },
            (6.0 / (d_in + d_out)).sqrt(),
        ),
        (Init::HeUniform { seed: 6 }, (6.0 / d_in).sqrt()),
    ] {
        let dense = Dense::<f64>::new(300, 200, init).unwrap();
        let largest = dense.weight().value().amax();
        assert!(
            largest < bound && largest > 0.99 * bound,
            "{init:?}: {largest} against {bound}"
        );
    }
}
