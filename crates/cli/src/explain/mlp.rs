//! `explain mlp`: the MLP of part 2 on one small instance, every quantity of questions 2a–2r
//! computed by the library's own layers, loss and optimizer.
//!
//! The same computation with some of its inputs replaced by a student's values
//! ([`compute`] with overrides) is what `check` uses to tell an upstream error from a new one.

use std::collections::BTreeMap;

use retroprop_core::rng::Rng;
use retroprop_gradcheck::derivative;
use retroprop_layers::nalgebra::DMatrix;
use retroprop_layers::{Dense, Init, Layer, Softmax, Softplus};
use retroprop_losses::{CrossEntropy, Loss, Reduction, Target};
use retroprop_optim::{Optimizer, Sgd, WeightDecay};
use serde::{Deserialize, Serialize};

use super::quantity::{Quantity, Rows, matrix, value_of};

/// The instance: the network's parameters, the examples and labels, η and λ. The file format
/// of `explain mlp --instance` and of the `instance` of an answer file (docs/explain.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpInstance {
    /// `W⁽¹⁾`, `d_h` rows of `d`.
    pub w1: Rows,
    /// `b⁽¹⁾`, `d_h` values.
    pub b1: Vec<f64>,
    /// `W⁽²⁾`, `m` rows of `d_h`.
    pub w2: Rows,
    /// `b⁽²⁾`, `m` values.
    pub b2: Vec<f64>,
    /// The examples, one list of `d` values each (each is a column `x` of the homework).
    pub x: Rows,
    /// The label of each example, in `0..m` (the homework counts classes from 1: `y − 1`).
    pub y: Vec<usize>,
    /// The learning rate `η` of 2j.
    pub eta: f64,
    /// The `λ` of 2k's penalty `λ‖θ‖²`.
    pub lambda: f64,
}

impl MlpInstance {
    /// `(d, d_h, m, n)`, after checking that every size agrees.
    ///
    /// # Errors
    /// A message naming the first size that does not fit.
    pub fn sizes(&self) -> Result<(usize, usize, usize, usize), String> {
        let w1 = matrix(&self.w1).ok_or("w1 must be a non-empty matrix (a list of equal rows)")?;
        let w2 = matrix(&self.w2).ok_or("w2 must be a non-empty matrix (a list of equal rows)")?;
        let x = matrix(&self.x).ok_or("x must be a non-empty list of examples of equal length")?;
        let (d_h, d) = w1.shape();
        let (m, d_h2) = w2.shape();
        let n = x.nrows();
        let fail = |what: String| Err(what);
        if x.ncols() != d {
            return fail(format!(
                "each example has {} values, but w1 has {d} columns (d)",
                x.ncols()
            ));
        }
        if d_h2 != d_h {
            return fail(format!(
                "w2 has {d_h2} columns, but w1 has {d_h} rows (d_h)"
            ));
        }
        if self.b1.len() != d_h || self.b2.len() != m {
            return fail(format!(
                "b1 has {} values and b2 {}: they need d_h = {d_h} and m = {m}",
                self.b1.len(),
                self.b2.len()
            ));
        }
        if self.y.len() != n {
            return fail(format!("{n} examples but {} labels", self.y.len()));
        }
        if let Some(&bad) = self.y.iter().find(|&&y| y >= m) {
            return fail(format!("label {bad} is not a class: labels are 0..{m}"));
        }
        let all = self.w1.iter().chain(&self.w2).chain(&self.x).flatten();
        let finite = all.chain(&self.b1).chain(&self.b2).all(|v| v.is_finite());
        if !(finite
            && self.eta.is_finite()
            && self.eta > 0.0
            && self.lambda.is_finite()
            && self.lambda >= 0.0)
        {
            return fail("values must be finite, η > 0 and λ ≥ 0".to_string());
        }
        Ok((d, d_h, m, n))
    }

    /// A hand-friendly instance from a seed: parameters and inputs multiples of 0.5 in
    /// `[−1, 1]`, η = 0.5 and λ = 0.1 (so 2k's factor `1 − 2ηλ` is 0.9, and its mistakes show
    /// at the precision of a hand computation).
    pub fn draw(seed: u64, (d, d_h, m, n): (usize, usize, usize, usize)) -> Self {
        let mut rng = Rng::new(seed);
        let mut half = |rows: usize, cols: usize| -> Rows {
            (0..rows)
                .map(|_| (0..cols).map(|_| rng.below(5) as f64 * 0.5 - 1.0).collect())
                .collect()
        };
        let (w1, b1, w2, b2, x) = (
            half(d_h, d),
            half(1, d_h).remove(0),
            half(m, d_h),
            half(1, m).remove(0),
            half(n, d),
        );
        let y = (0..n).map(|_| rng.below(m)).collect();
        Self {
            w1,
            b1,
            w2,
            b2,
            x,
            y,
            eta: 0.5,
            lambda: 0.1,
        }
    }

    /// The examples as the homework's columns: `d × n`.
    fn columns(&self) -> DMatrix<f64> {
        matrix(&self.x).expect("checked by sizes").transpose()
    }
}

/// A dense layer holding `W` and `b` (the library's, so every product is its own).
pub(super) fn dense(w: &DMatrix<f64>, b: &[f64]) -> Dense<f64> {
    let mut layer = Dense::new(w.ncols(), w.nrows(), Init::Zeros).expect("non-empty sizes");
    layer.set_param("weight", w.clone()).expect("shape from w");
    layer
        .set_param("bias", DMatrix::from_column_slice(b.len(), 1, b))
        .expect("shape from b");
    layer
}

/// The values a computation may take from a student instead of computing them.
pub type Overrides = BTreeMap<String, DMatrix<f64>>;

/// The cross-entropy of labels `y` at logits `o_a` (`Sum`: each column's gradient is its own
/// example's `∂L/∂oᵃ`).
fn cross_entropy(o_a: &DMatrix<f64>, y: &[usize]) -> retroprop_losses::LossOutput<f64> {
    CrossEntropy {
        reduction: Reduction::Sum,
    }
    .evaluate(o_a, Target::Labels(y))
    .expect("labels checked by sizes")
}

/// Every quantity of part 2 for the instance, in the homework's order. A quantity named in
/// `overrides` is taken from there (a student's value) for everything computed after it.
pub fn compute(inst: &MlpInstance, overrides: &Overrides) -> Vec<Quantity> {
    let (d, d_h, m, n) = inst.sizes().expect("the caller checked the instance");
    let take = |name: &str, computed: DMatrix<f64>| -> DMatrix<f64> {
        match overrides.get(name) {
            Some(v) if v.shape() == computed.shape() => v.clone(),
            _ => computed,
        }
    };
    let w1 = matrix(&inst.w1).expect("checked");
    let w2 = matrix(&inst.w2).expect("checked");
    let x = inst.columns();
    let nf = n as f64;
    let mut q = Vec::new();

    let mut l1 = dense(&w1, &inst.b1);
    let mut phi = Softplus::new();
    let mut l2 = dense(&w2, &inst.b2);
    let h_a = take("h_a", l1.infer(&x).expect("sizes"));
    q.push(Quantity::new("2a", "h_a", "hᵃ", "W⁽¹⁾ x + b⁽¹⁾", &h_a));
    let h_s = take("h_s", phi.infer(&h_a).expect("sizes"));
    q.push(Quantity::new(
        "2a",
        "h_s",
        "hˢ",
        "softplus(hᵃ) = ln(1 + e^hᵃ)",
        &h_s,
    ));
    let o_a = take("o_a", l2.infer(&h_s).expect("sizes"));
    q.push(Quantity::new("2b", "o_a", "oᵃ", "W⁽²⁾ hˢ + b⁽²⁾", &o_a));
    let o_s = take("o_s", Softmax::new().infer(&o_a).expect("sizes"));
    q.push(Quantity::new(
        "2c",
        "o_s",
        "oˢ",
        "softmax(oᵃ) = e^oᵃ / Σₖ e^oᵃₖ",
        &o_s,
    ));
    let sums = DMatrix::from_fn(1, n, |_, j| o_s.column(j).sum());
    q.push(Quantity::new(
        "2c",
        "sum_o_s",
        "Σₖ oˢₖ",
        "1 for every example",
        &sums,
    ));
    // the loss of the (possibly given) probabilities: their logarithms are logits of them
    let log_p = o_s.map(f64::ln);
    let loss = cross_entropy(&log_p, &inst.y);
    let per = DMatrix::from_row_slice(1, n, &loss.per_example);
    let per = take("L", per);
    q.push(Quantity::new(
        "2h",
        "L",
        "L",
        "−ln oˢ_y = −oᵃ_y + ln Σₖ e^oᵃₖ",
        &per,
    ));
    let risk = take("R_hat", DMatrix::from_element(1, 1, per.sum() / nf));
    q.push(Quantity::new(
        "2i",
        "R_hat",
        "R̂",
        "(1/n) Σᵢ L(xᵢ, yᵢ)",
        &risk,
    ));
    let n_theta = (d_h * d + d_h + m * d_h + m) as f64;
    q.push(Quantity::scalar(
        "2i",
        "n_theta",
        "n_θ",
        &format!("d_h·d + d_h + m·d_h + m = {d_h}·{d} + {d_h} + {m}·{d_h} + {m}"),
        n_theta,
    ));
    let jac = softmax_jacobian(&o_s);
    q.push(Quantity::new(
        "1k",
        "J_softmax",
        "∂oˢ/∂oᵃ",
        "diag(oˢ) − oˢ oˢᵀ (first example)",
        &take("J_softmax", jac),
    ));

    let delta = take("dL_do_a", loss.grad);
    q.push(Quantity::new(
        "2l",
        "dL_do_a",
        "∂L/∂oᵃ",
        "oˢ − onehot(y)",
        &delta,
    ));
    l2.forward(&h_s).expect("sizes");
    let dh_s = l2.backward(&delta).expect("sizes");
    let (gw2, gb2) = grads(&l2, nf);
    let gw2 = take("dR_dW2", gw2);
    let gb2 = take("dR_db2", gb2);
    q.push(Quantity::new(
        "2m",
        "dR_dW2",
        "∂R̂/∂W⁽²⁾",
        "(1/n) Σᵢ ∂L/∂oᵃ hˢᵀ",
        &gw2,
    ));
    q.push(Quantity::new(
        "2n",
        "dR_db2",
        "∂R̂/∂b⁽²⁾",
        "(1/n) Σᵢ ∂L/∂oᵃ",
        &gb2,
    ));
    let dh_s = take("dL_dh_s", dh_s);
    q.push(Quantity::new(
        "2p",
        "dL_dh_s",
        "∂L/∂hˢ",
        "W⁽²⁾ᵀ ∂L/∂oᵃ",
        &dh_s,
    ));
    phi.forward(&h_a).expect("sizes");
    let dh_a = take("dL_dh_a", phi.backward(&dh_s).expect("sizes"));
    q.push(Quantity::new(
        "2r",
        "dL_dh_a",
        "∂L/∂hᵃ",
        "σ(hᵃ) ⊙ ∂L/∂hˢ   (φ' = σ, 2q)",
        &dh_a,
    ));
    l1.forward(&x).expect("sizes");
    l1.backward(&dh_a).expect("sizes");
    let (gw1, gb1) = grads(&l1, nf);
    let gw1 = take("dR_dW1", gw1);
    let gb1 = take("dR_db1", gb1);
    q.push(Quantity::new(
        "2r",
        "dR_dW1",
        "∂R̂/∂W⁽¹⁾",
        "(1/n) Σᵢ ∂L/∂hᵃ xᵀ",
        &gw1,
    ));
    q.push(Quantity::new(
        "2r",
        "dR_db1",
        "∂R̂/∂b⁽¹⁾",
        "(1/n) Σᵢ ∂L/∂hᵃ",
        &gb1,
    ));

    let gradients = [&gw1, &gb1, &gw2, &gb2];
    let decays = [
        ("2j", "", "θ − η ∂R̂/∂θ", WeightDecay::none()),
        (
            "2k",
            "_l2",
            "(1 − 2ηλ)θ − η ∂R̂/∂θ",
            WeightDecay::homework(inst.lambda).expect("λ checked"),
        ),
    ];
    for (id, suffix, formula, decay) in decays {
        let stepped = step(inst, gradients, decay);
        for ((param, symbol), value) in PARAMS.iter().zip(stepped) {
            let name = format!("{param}_new{suffix}");
            let formula = formula.replace('θ', symbol);
            q.push(Quantity::new(
                id,
                &name,
                &format!("{symbol}′"),
                &formula,
                &take(&name, value),
            ));
        }
    }
    q
}

/// The parameters, by name and symbol, in the order of the step's results.
pub(super) const PARAMS: [(&str, &str); 4] = [
    ("W1", "W⁽¹⁾"),
    ("b1", "b⁽¹⁾"),
    ("W2", "W⁽²⁾"),
    ("b2", "b⁽²⁾"),
];

/// `∂oˢ/∂oᵃ` of the first example, through the library's softmax backward: column `j` is the
/// backward pass of the unit vector `e_j` (the Jacobian is symmetric).
fn softmax_jacobian(o_s: &DMatrix<f64>) -> DMatrix<f64> {
    let logits = o_s.column(0).map(f64::ln);
    let m = logits.len();
    let mut s = Softmax::new();
    s.forward(&DMatrix::from_column_slice(m, 1, logits.as_slice()))
        .expect("one column");
    let mut jac = DMatrix::zeros(m, m);
    for j in 0..m {
        let mut e = DMatrix::zeros(m, 1);
        e[j] = 1.0;
        jac.set_column(j, &s.backward(&e).expect("one column").column(0));
    }
    jac
}

/// A dense layer's accumulated gradients divided by `n`: `(∂R̂/∂W, ∂R̂/∂b)`.
fn grads(layer: &Dense<f64>, n: f64) -> (DMatrix<f64>, DMatrix<f64>) {
    (layer.weight().grad() / n, layer.bias().grad() / n)
}

/// One step of the library's `Sgd` (η, the given decay) from the instance's parameters with
/// the gradients `[W⁽¹⁾, b⁽¹⁾, W⁽²⁾, b⁽²⁾]`: the four new values.
pub(super) fn step(
    inst: &MlpInstance,
    grads: [&DMatrix<f64>; 4],
    decay: WeightDecay,
) -> [DMatrix<f64>; 4] {
    let w1 = matrix(&inst.w1).expect("checked");
    let w2 = matrix(&inst.w2).expect("checked");
    let mut l1 = dense(&w1, &inst.b1);
    let mut l2 = dense(&w2, &inst.b2);
    let mut sgd = Sgd::new(inst.eta)
        .expect("η checked")
        .with_weight_decay(decay);
    for (layer, (gw, gb)) in [
        (&mut l1, (grads[0], grads[1])),
        (&mut l2, (grads[2], grads[3])),
    ] {
        layer.visit_params_mut(&mut |path, p| {
            let g = if path == "weight" { gw } else { gb };
            if g.shape() == p.shape() {
                p.grad_mut().copy_from(g);
            }
        });
        sgd.step(layer).expect("shapes fixed");
    }
    [
        l1.weight().value().clone(),
        l1.bias().value().clone(),
        l2.weight().value().clone(),
        l2.bias().value().clone(),
    ]
}

/// Finite differences of the derivatives: of `Σᵢ Lᵢ` with respect to `oᵃ`, `hˢ`, `hᵃ`
/// (each entry perturbed, the rest of the network run by the library), and of `R̂` with
/// respect to each parameter.
pub fn numeric(inst: &MlpInstance, quantities: &mut [Quantity]) {
    let w1 = matrix(&inst.w1).expect("checked");
    let w2 = matrix(&inst.w2).expect("checked");
    let x = inst.columns();
    let n = x.ncols() as f64;
    let l2 = dense(&w2, &inst.b2);
    let phi = Softplus::<f64>::new();
    let total = |o_a: &DMatrix<f64>| cross_entropy(o_a, &inst.y).value;
    let from_h_s = |h: &DMatrix<f64>| total(&l2.infer(h).expect("sizes"));
    let from_h_a = |h: &DMatrix<f64>| from_h_s(&phi.infer(h).expect("sizes"));
    let risk = |w1: &DMatrix<f64>, b1: &[f64], w2: &DMatrix<f64>, b2: &[f64]| {
        let h = phi
            .infer(&dense(w1, b1).infer(&x).expect("sizes"))
            .expect("sizes");
        total(&dense(w2, b2).infer(&h).expect("sizes")) / n
    };
    let value = |name: &str| value_of(quantities, name);
    let by_entry = |at: &DMatrix<f64>, f: &dyn Fn(&DMatrix<f64>) -> f64| {
        DMatrix::from_fn(at.nrows(), at.ncols(), |i, j| {
            derivative(
                |t| {
                    let mut moved = at.clone();
                    moved[(i, j)] = t;
                    f(&moved)
                },
                at[(i, j)],
            )
        })
    };
    let b1 = DMatrix::from_column_slice(inst.b1.len(), 1, &inst.b1);
    let b2 = DMatrix::from_column_slice(inst.b2.len(), 1, &inst.b2);
    let estimates = [
        ("dL_do_a", by_entry(&value("o_a"), &total)),
        ("dL_dh_s", by_entry(&value("h_s"), &from_h_s)),
        ("dL_dh_a", by_entry(&value("h_a"), &from_h_a)),
        (
            "dR_dW2",
            by_entry(&w2, &|w| risk(&w1, &inst.b1, w, &inst.b2)),
        ),
        (
            "dR_db2",
            by_entry(&b2, &|b| risk(&w1, &inst.b1, &w2, b.as_slice())),
        ),
        (
            "dR_dW1",
            by_entry(&w1, &|w| risk(w, &inst.b1, &w2, &inst.b2)),
        ),
        (
            "dR_db1",
            by_entry(&b1, &|b| risk(&w1, b.as_slice(), &w2, &inst.b2)),
        ),
    ];
    for (name, estimate) in estimates {
        if let Some(q) = quantities.iter_mut().find(|q| q.name == name) {
            *q = q.clone().with_numeric(&estimate);
        }
    }
}

/// What each quantity is computed from, for "consistent with your value of …".
pub fn inputs(name: &str) -> &'static [&'static str] {
    match name {
        "h_s" => &["h_a"],
        "o_a" => &["h_s"],
        "o_s" => &["o_a"],
        "sum_o_s" | "L" | "dL_do_a" | "J_softmax" => &["o_s"],
        "R_hat" => &["L"],
        "dR_dW2" => &["dL_do_a", "h_s"],
        "dR_db2" | "dL_dh_s" => &["dL_do_a"],
        "dL_dh_a" => &["dL_dh_s", "h_a"],
        "dR_dW1" | "dR_db1" => &["dL_dh_a"],
        _ if name.contains("_new") => &["dR_dW1", "dR_db1", "dR_dW2", "dR_db2"],
        _ => &[],
    }
}
