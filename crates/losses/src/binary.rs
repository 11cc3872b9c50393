//! Losses of the binary case (questions 2d–2g) and the mean squared error.

use nalgebra::DMatrix;
use retroprop_activations::{sigmoid, sigmoid_prime, softplus};
use retroprop_core::Scalar;

use crate::target::{check_batch, check_dense, check_labels, reduce};
use crate::{Loss, LossError, LossOutput, Reduction, Target};

/// The targets of a batch as one value per prediction entry: labels (`0` or `1`, one output
/// row) become that number; dense targets are checked against `range`.
fn binary_targets<T: Scalar>(
    loss: &'static str,
    prediction: &DMatrix<T>,
    target: Target<'_, T>,
    range: (f64, f64),
) -> Result<Vec<T>, LossError> {
    match target {
        Target::Labels(labels) => {
            if prediction.nrows() != 1 {
                return Err(LossError::OutputRows {
                    loss,
                    expected: 1,
                    got: prediction.nrows(),
                });
            }
            check_labels(loss, prediction.ncols(), labels, 2)?;
            Ok(labels.iter().map(|&y| T::lit(y as f64)).collect())
        }
        Target::Dense(t) => {
            check_dense(loss, prediction, t, range)?;
            Ok(t.as_slice().to_vec())
        }
    }
}

/// Applies `f(prediction entry, target entry) → (loss term, gradient term)` over a batch; the
/// loss of an example is the mean of its terms over its `m` rows (so one-output losses are the
/// plain formula), and its gradient terms are divided by `m` too.
fn per_entry<T: Scalar>(
    prediction: &DMatrix<T>,
    targets: &[T],
    reduction: Reduction,
    f: impl Fn(T, T) -> (T, T),
) -> LossOutput<T> {
    let (m, n) = prediction.shape();
    let inv_m = if m > 0 {
        T::one() / T::lit(m as f64)
    } else {
        T::one()
    };
    let scale = reduction.scale::<T>(n) * inv_m;
    let mut grad = DMatrix::zeros(m, n);
    let mut per_example = Vec::with_capacity(n);
    if m > 0 {
        for ((g, p), t) in grad
            .as_mut_slice()
            .chunks_exact_mut(m)
            .zip(prediction.as_slice().chunks_exact(m))
            .zip(targets.chunks_exact(m))
        {
            let mut total = T::zero();
            for ((gi, &pi), &ti) in g.iter_mut().zip(p).zip(t) {
                let (l, d) = f(pi, ti);
                total += l;
                *gi = d * scale;
            }
            per_example.push(total * inv_m);
        }
    }
    LossOutput {
        value: reduce(&per_example, reduction),
        per_example,
        grad,
    }
}

/// Mean squared error between predictions and targets, averaged over the outputs of an example:
///
/// ```text
/// L(p, t) = (1/m) Σᵢ (pᵢ − tᵢ)²,     ∂L/∂p = (2/m)(p − t)
/// ```
///
/// With [`Reduction::Mean`] over the batch this is PyTorch's `MSELoss()` (mean over all
/// entries).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mse {
    /// How the batch is reduced.
    pub reduction: Reduction,
}

impl Mse {
    /// With this reduction.
    pub fn new(reduction: Reduction) -> Self {
        Self { reduction }
    }
}

impl<T: Scalar> Loss<T> for Mse {
    fn name(&self) -> &'static str {
        "Mse"
    }

    fn reduction(&self) -> Reduction {
        self.reduction
    }

    fn evaluate(
        &self,
        prediction: &DMatrix<T>,
        target: Target<'_, T>,
    ) -> Result<LossOutput<T>, LossError> {
        let t = binary_targets(
            "Mse",
            prediction,
            target,
            (f64::NEG_INFINITY, f64::INFINITY),
        )?;
        let two = T::lit(2.0);
        Ok(per_entry(prediction, &t, self.reduction, |p, t| {
            let d = p - t;
            (d * d, two * d)
        }))
    }
}

/// Question 2e: the MSE of the sigmoid of the logits, differentiated with respect to the logits.
///
/// ```text
/// L_MSE(σ(oᵃ), y) = (1/m) Σᵢ (σ(oᵃᵢ) − yᵢ)²            (m = 1 in the binary case: (σ(oᵃ) − y)²)
/// ∂L/∂oᵃ = (2/m) (σ(oᵃ) − y) ⊙ σ(oᵃ) ⊙ (1 − σ(oᵃ))      (σ is element-wise: diag Jacobian, 1e)
///
/// evaluated without cancellation near saturation:
/// σ(z) − y = (1 − y) σ(z) − y σ(−z),   σ(z)(1 − σ(z)) = σ(z) σ(−z)
/// ```
///
/// The factor `σ(1 − σ)` is what question 2g is about: on a confidently *wrong* prediction
/// (`oᵃ = −10` for `y = 1`) the gradient is about `−2·4.5·10⁻⁵`, so learning stalls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigmoidMse {
    /// How the batch is reduced.
    pub reduction: Reduction,
}

impl SigmoidMse {
    /// With this reduction.
    pub fn new(reduction: Reduction) -> Self {
        Self { reduction }
    }
}

impl<T: Scalar> Loss<T> for SigmoidMse {
    fn name(&self) -> &'static str {
        "SigmoidMse"
    }

    fn reduction(&self) -> Reduction {
        self.reduction
    }

    fn evaluate(
        &self,
        logits: &DMatrix<T>,
        target: Target<'_, T>,
    ) -> Result<LossOutput<T>, LossError> {
        let t = binary_targets(
            "SigmoidMse",
            logits,
            target,
            (f64::NEG_INFINITY, f64::INFINITY),
        )?;
        let two = T::lit(2.0);
        Ok(per_entry(logits, &t, self.reduction, |o, y| {
            let d = sigmoid_minus(o, y);
            (d * d, two * d * sigmoid_prime(o))
        }))
    }
}

/// Question 2f: binary cross-entropy of the sigmoid of the logits, from the logits (stable):
///
/// ```text
/// L_CE(σ(oᵃ), y) = −[y log σ(oᵃ) + (1 − y) log(1 − σ(oᵃ))]
///               = y softplus(−oᵃ) + (1 − y) softplus(oᵃ)   (1f: log σ(x) = −softplus(−x))
///               = softplus(oᵃ) − y oᵃ                      (1g; this form cancels for y = 1, oᵃ ≫ 1)
/// ∂L/∂oᵃ = σ(oᵃ) − y = (1 − y) σ(oᵃ) − y σ(−oᵃ)
/// ```
///
/// The code uses the first form and the last gradient: no cancellation, so at `oᵃ = 30`, `y = 1`
/// the loss is `9.36·10⁻¹⁴` to the last digits (`softplus(30) − 30` loses 1.3 % of it).
///
/// Averaged over the outputs of an example if there are several. On a confidently wrong
/// prediction (`oᵃ = −10`, `y = 1`) the gradient is `σ(−10) − 1 ≈ −1`: it does not vanish
/// (question 2g). This is PyTorch's `BCEWithLogitsLoss`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BceWithLogits {
    /// How the batch is reduced.
    pub reduction: Reduction,
}

impl BceWithLogits {
    /// With this reduction.
    pub fn new(reduction: Reduction) -> Self {
        Self { reduction }
    }
}

impl<T: Scalar> Loss<T> for BceWithLogits {
    fn name(&self) -> &'static str {
        "BceWithLogits"
    }

    fn reduction(&self) -> Reduction {
        self.reduction
    }

    fn evaluate(
        &self,
        logits: &DMatrix<T>,
        target: Target<'_, T>,
    ) -> Result<LossOutput<T>, LossError> {
        let t = binary_targets("BceWithLogits", logits, target, (0.0, 1.0))?;
        let one = T::one();
        Ok(per_entry(logits, &t, self.reduction, |o, y| {
            let value = (one - y) * softplus(o) + y * softplus(-o);
            (value, sigmoid_minus(o, y))
        }))
    }
}

/// `σ(z) − y` without cancellation: `(1 − y) σ(z) − y σ(−z)` (equal since `σ(z) + σ(−z) = 1`);
/// for `y ∈ {0, 1}` one term vanishes and the other is a correctly rounded sigmoid.
fn sigmoid_minus<T: Scalar>(z: T, y: T) -> T {
    (T::one() - y) * sigmoid(z) - y * sigmoid(-z)
}

/// Binary cross-entropy of probabilities `p` (already through σ), as PyTorch's `BCELoss`:
///
/// ```text
/// L(p, y) = −[y max(log p, −100) + (1 − y) max(log(1 − p), −100)]
/// ∂L/∂p   = (p − y) / max(p (1 − p), ε)
/// ```
///
/// The logs are clamped at −100 (PyTorch's rule) so `p = 0` or `1` gives a large finite loss
/// instead of ∞. Prefer [`BceWithLogits`], which needs no clamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BinaryCrossEntropy {
    /// How the batch is reduced.
    pub reduction: Reduction,
}

impl BinaryCrossEntropy {
    /// With this reduction.
    pub fn new(reduction: Reduction) -> Self {
        Self { reduction }
    }
}

impl<T: Scalar> Loss<T> for BinaryCrossEntropy {
    fn name(&self) -> &'static str {
        "BinaryCrossEntropy"
    }

    fn reduction(&self) -> Reduction {
        self.reduction
    }

    fn evaluate(&self, p: &DMatrix<T>, target: Target<'_, T>) -> Result<LossOutput<T>, LossError> {
        let name = "BinaryCrossEntropy";
        let t = binary_targets(name, p, target, (0.0, 1.0))?;
        check_batch(name, p.ncols(), t.len() / p.nrows().max(1))?;
        if let Some(k) = p
            .as_slice()
            .iter()
            .position(|&v| !(v >= T::zero() && v <= T::one()))
        {
            let rows = p.nrows().max(1);
            return Err(LossError::TargetOutOfRange {
                loss: name,
                index: k / rows,
                row: k % rows,
                value: p.as_slice()[k].to_f64(),
                min: 0.0,
                max: 1.0,
            });
        }
        let floor = T::lit(-100.0);
        Ok(per_entry(p, &t, self.reduction, |p, y| {
            let one = T::one();
            let log_p = p.ln().max(floor);
            let log_q = (one - p).ln().max(floor);
            let l = -(y * log_p + (one - y) * log_q);
            let d = (p - y) / (p * (one - p)).max(T::EPSILON);
            (l, d)
        }))
    }
}
