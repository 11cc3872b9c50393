//! f64 to the last digits: the binary losses on a logit and the cross-entropy of the pair
//! `[x, −x]`, against mpmath at 2100 digits (the table and its script live beside the
//! activations' precision test: `crates/activations/tests/reference/`).

use nalgebra::DMatrix;
use retroprop_losses::{BceWithLogits, CrossEntropy, Loss, Reduction, SigmoidMse, Target};

/// As in the activations' precision test: 1e−12 relative, 1e−300 absolute below 1e−300.
const REL_TOL: f64 = 1e-12;
const TINY: f64 = 1e-300;

fn reference() -> Vec<(String, f64, f64)> {
    include_str!("../../activations/tests/reference/values.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

/// `(value, gradient)` of a loss at one prediction column and one label.
fn loss_at(loss: &dyn Loss<f64>, column: &[f64], label: usize) -> (f64, f64) {
    let p = DMatrix::from_column_slice(column.len(), 1, column);
    let out = loss.evaluate(&p, Target::Labels(&[label])).unwrap();
    (out.value, out.grad[0])
}

fn ours(name: &str, x: f64) -> Option<f64> {
    let sum = Reduction::Sum;
    let bce = BceWithLogits { reduction: sum };
    let mse = SigmoidMse { reduction: sum };
    let ce = CrossEntropy::new(sum);
    Some(match name {
        "bce_logits_y0" => loss_at(&bce, &[x], 0).0,
        "bce_logits_y1" => loss_at(&bce, &[x], 1).0,
        "bce_logits_grad_y0" => loss_at(&bce, &[x], 0).1,
        "bce_logits_grad_y1" => loss_at(&bce, &[x], 1).1,
        "sigmoid_mse_y0" => loss_at(&mse, &[x], 0).0,
        "sigmoid_mse_y1" => loss_at(&mse, &[x], 1).0,
        "sigmoid_mse_grad_y0" => loss_at(&mse, &[x], 0).1,
        "sigmoid_mse_grad_y1" => loss_at(&mse, &[x], 1).1,
        "cross_entropy_pair_y0" => loss_at(&ce, &[x, -x], 0).0,
        "cross_entropy_pair_grad0_y0" => loss_at(&ce, &[x, -x], 0).1,
        _ => return None,
    })
}

#[test]
fn losses_match_mpmath_to_the_last_digits() {
    let mut checked = 0;
    for (name, x, want) in reference() {
        let Some(got) = ours(&name, x) else { continue };
        let ok = if want.abs() < TINY {
            (got - want).abs() <= TINY
        } else {
            (got - want).abs() <= REL_TOL * want.abs()
        };
        assert!(ok, "{name}({x}) = {got:e}, mpmath {want:e}");
        checked += 1;
    }
    assert_eq!(checked, 14 * 10);
}
