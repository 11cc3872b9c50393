//! `explain binary`: questions 2d–2g on one logit and label — σ, both losses, both gradients,
//! and the saturation of the MSE gradient that 2g is about.

use retroprop_layers::nalgebra::DMatrix;
use retroprop_losses::{BceWithLogits, Loss, Reduction, SigmoidMse, Target};
use serde::{Deserialize, Serialize};

use super::quantity::{Quantity, value_of};

/// A logit `oᵃ` and a label `y ∈ {0, 1}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BinaryInstance {
    /// The logit `oᵃ` (a real number).
    pub logit: f64,
    /// The label, 0 or 1.
    pub label: usize,
}

impl BinaryInstance {
    /// Checks the label and the logit.
    ///
    /// # Errors
    /// A message if the label is not 0 or 1 or the logit is not finite.
    pub fn check(&self) -> Result<(), String> {
        if self.label > 1 {
            return Err(format!("label {} is not 0 or 1", self.label));
        }
        if !self.logit.is_finite() {
            return Err(format!("the logit {} is not a finite number", self.logit));
        }
        Ok(())
    }
}

/// `(L, ∂L/∂oᵃ)` of a binary loss of the library at one logit.
fn loss(l: &dyn Loss<f64>, logit: f64, label: usize) -> (f64, f64) {
    let out = l
        .evaluate(
            &DMatrix::from_element(1, 1, logit),
            Target::Labels(&[label]),
        )
        .expect("a checked label");
    (out.value, out.grad[0])
}

fn mse(logit: f64, label: usize) -> (f64, f64) {
    loss(&SigmoidMse::new(Reduction::Sum), logit, label)
}

fn bce(logit: f64, label: usize) -> (f64, f64) {
    loss(&BceWithLogits::new(Reduction::Sum), logit, label)
}

/// The logits of the saturation table.
pub const SATURATION: [f64; 7] = [-10.0, -5.0, -2.0, 0.0, 2.0, 5.0, 10.0];

/// The quantities of 2d–2g for the instance, then the saturation table for its label. With a
/// student's `σ` in `sigma`, the losses are those of the logit `ln(σ/(1 − σ))` it implies.
pub fn compute(inst: BinaryInstance, sigma: Option<f64>) -> Vec<Quantity> {
    let y = inst.label;
    let (sigma, z) = match sigma {
        Some(s) if s > 0.0 && s < 1.0 => (s, (s / (1.0 - s)).ln()),
        _ => (retroprop_activations::sigmoid(inst.logit), inst.logit),
    };
    let (l_mse, g_mse) = mse(z, y);
    let (l_ce, g_ce) = bce(z, y);
    let mut q = vec![
        Quantity::scalar(
            "2d",
            "sigma",
            "σ(oᵃ)",
            "1 / (1 + e^−oᵃ) = softmax([oᵃ, 0])₁",
            sigma,
        ),
        Quantity::scalar("2e", "L_mse", "L_MSE", "(σ(oᵃ) − y)²", l_mse),
        Quantity::scalar(
            "2e",
            "dL_mse",
            "∂L_MSE/∂oᵃ",
            "2 (σ(oᵃ) − y) σ(oᵃ) (1 − σ(oᵃ))",
            g_mse,
        ),
        Quantity::scalar(
            "2f",
            "L_ce",
            "L_CE",
            "−y ln σ(oᵃ) − (1 − y) ln(1 − σ(oᵃ))",
            l_ce,
        ),
        Quantity::scalar("2f", "dL_ce", "∂L_CE/∂oᵃ", "σ(oᵃ) − y", g_ce),
    ];
    let table = DMatrix::from_fn(SATURATION.len(), 3, |i, j| match j {
        0 => SATURATION[i],
        1 => mse(SATURATION[i], y).1,
        _ => bce(SATURATION[i], y).1,
    });
    q.push(Quantity::new(
        "2g",
        "saturation",
        "[oᵃ, ∂L_MSE/∂oᵃ, ∂L_CE/∂oᵃ]",
        &format!("at y = {y}: where σ saturates the MSE gradient vanishes, right or wrong"),
        &table,
    ));
    q
}

/// The known mistakes for a quantity of 2d–2g.
pub fn mistakes(truth: &[Quantity], name: &str) -> Vec<(&'static str, &'static str, DMatrix<f64>)> {
    let value = |name: &str| value_of(truth, name);
    match name {
        "dL_mse" => vec![(
            "the factor 2 of the MSE gradient is missing: ∂(σ − y)²/∂σ = 2(σ − y)",
            "2e",
            value(name) / 2.0,
        )],
        _ => Vec::new(),
    }
}

/// What each quantity is computed from.
pub fn inputs(name: &str) -> &'static [&'static str] {
    match name {
        "L_mse" | "dL_mse" | "L_ce" | "dL_ce" => &["sigma"],
        _ => &[],
    }
}
