//! Gradient descent with momentum and weight decay.

use retroprop_activations::Scalar;
use retroprop_layers::{Layer, ParamKind};

/// What an optimizer rejects.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OptimError {
    /// A hyper-parameter outside its domain (a learning rate ≤ 0, a momentum ≥ 1, …).
    #[error("{name} = {value} is invalid: must be {requirement}")]
    InvalidHyperparameter {
        /// Which hyper-parameter.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What it must satisfy.
        requirement: &'static str,
    },
    /// The optimizer's state (momentum buffers) was built for a model with other parameters.
    #[error(
        "optimizer state for parameter #{index} (`{path}`) has {expected} values, the parameter has {got}"
    )]
    StateMismatch {
        /// Position of the parameter in the visiting order.
        index: usize,
        /// The parameter's path.
        path: String,
        /// Values in the stored state.
        expected: usize,
        /// Values in the parameter.
        got: usize,
    },
    /// The model has fewer parameters than the optimizer's state.
    #[error("optimizer state holds {expected} parameters, the model has {got}")]
    ParamCount {
        /// Parameters the state was built for.
        expected: usize,
        /// Parameters the model has.
        got: usize,
    },
}

fn check(
    name: &'static str,
    value: f64,
    ok: bool,
    requirement: &'static str,
) -> Result<(), OptimError> {
    if ok {
        Ok(())
    } else {
        Err(OptimError::InvalidHyperparameter {
            name,
            value,
            requirement,
        })
    }
}

/// An update rule that walks a model's parameters.
pub trait Optimizer<T: Scalar>: Send {
    /// Updates every parameter of `model` from its accumulated gradient.
    ///
    /// # Errors
    /// [`OptimError::StateMismatch`] / [`OptimError::ParamCount`] if the model is not the one the
    /// optimizer's state was built for.
    fn step(&mut self, model: &mut dyn Layer<T>) -> Result<(), OptimError>;

    /// The current learning rate `η`.
    fn learning_rate(&self) -> f64;

    /// Sets `η` (a schedule calls this at each epoch).
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless `η` is finite and positive.
    fn set_learning_rate(&mut self, lr: f64) -> Result<(), OptimError>;
}

/// Parameters at least this long are updated in two halves, on the calling thread and on the
/// helper of `retroprop_layers::team` (the thread that computed the second half of a split
/// weight gradient).
const PAR_MIN: usize = 1 << 15;

/// Applies `f(θᵢ, gᵢ, bᵢ)` to every entry (`buf` empty when there is no momentum buffer), in
/// two halves for large parameters. Each entry is independent, so the result does not depend
/// on the split; the loop body is branch-free and vectorises.
fn update<T: Scalar>(
    theta: &mut [T],
    grad: &[T],
    buf: &mut [T],
    f: impl Fn(&mut T, T, &mut T) + Sync,
) {
    fn run<T: Scalar>(
        theta: &mut [T],
        grad: &[T],
        buf: &mut [T],
        f: &(impl Fn(&mut T, T, &mut T) + Sync),
    ) {
        if buf.is_empty() {
            let mut unused = T::zero();
            for (t, &g) in theta.iter_mut().zip(grad) {
                f(t, g, &mut unused);
            }
        } else {
            for ((t, &g), b) in theta.iter_mut().zip(grad).zip(buf.iter_mut()) {
                f(t, g, b);
            }
        }
    }
    if theta.len() < PAR_MIN {
        run(theta, grad, buf, &f);
        return;
    }
    let mid = theta.len() / 2;
    let (t1, t2) = theta.split_at_mut(mid);
    let (g1, g2) = grad.split_at(mid);
    let (b1, b2) = if buf.is_empty() {
        (&mut [][..], &mut [][..])
    } else {
        buf.split_at_mut(mid)
    };
    let f = &f;
    retroprop_layers::team::join(|| run(t1, g1, b1, f), move || run(t2, g2, b2, f));
}

/// Momentum, with PyTorch's `SGD` semantics (dampening 0).
///
/// ```text
/// b ← μ b + g        (b starts at 0, so the first step has b = g)
/// heavy ball:  θ ← θ − η b
/// Nesterov:    θ ← θ − η (g + μ b)
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Momentum {
    /// Plain gradient descent.
    #[default]
    None,
    /// Heavy-ball momentum `μ ∈ [0, 1)`.
    Heavy {
        /// The momentum factor `μ`.
        mu: f64,
    },
    /// Nesterov momentum `μ ∈ [0, 1)`.
    Nesterov {
        /// The momentum factor `μ`.
        mu: f64,
    },
}

/// Which gradient an L2 penalty `λ‖θ‖²` contributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DecayConvention {
    /// The homework's (question 2k): `R̂_reg = R̂ + λ‖θ‖²`, so `∇ = ∇R̂ + 2λθ` and
    /// `θ ← θ − η∇R̂ − 2ηλθ`.
    #[default]
    Homework,
    /// PyTorch's `SGD(weight_decay=λ)`: `∇ = ∇R̂ + λθ` (the penalty `(λ/2)‖θ‖²`). The homework's
    /// `λ` equals PyTorch's `weight_decay / 2`.
    PyTorch,
}

/// Whether biases are decayed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Biases {
    /// All of `θ`, biases included — the homework's `‖θ‖²` sums over every parameter (2i, 2k).
    #[default]
    Include,
    /// Weights only (a common practice: biases do not overfit).
    Exclude,
}

/// L2 weight decay: the penalty `λ‖θ‖²` added to the empirical risk.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WeightDecay {
    /// `λ ≥ 0`.
    pub lambda: f64,
    /// Homework (`2λθ`) or PyTorch (`λθ`) gradient.
    pub convention: DecayConvention,
    /// Whether biases are decayed.
    pub biases: Biases,
}

impl WeightDecay {
    /// No decay.
    pub fn none() -> Self {
        Self::default()
    }

    /// Question 2k exactly: `R̂ + λ‖θ‖²` over all parameters, `θ ← θ − η∇R̂ − 2ηλθ`.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless `λ` is finite and ≥ 0.
    pub fn homework(lambda: f64) -> Result<Self, OptimError> {
        check(
            "lambda",
            lambda,
            lambda.is_finite() && lambda >= 0.0,
            "finite and >= 0",
        )?;
        Ok(Self {
            lambda,
            convention: DecayConvention::Homework,
            biases: Biases::Include,
        })
    }

    /// PyTorch's `weight_decay = λ`: `θ ← θ − η(∇R̂ + λθ)`, over all parameters.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless `λ` is finite and ≥ 0.
    pub fn pytorch(lambda: f64) -> Result<Self, OptimError> {
        Ok(Self {
            convention: DecayConvention::PyTorch,
            ..Self::homework(lambda)?
        })
    }

    /// The same, sparing the biases.
    pub fn excluding_biases(self) -> Self {
        Self {
            biases: Biases::Exclude,
            ..self
        }
    }

    /// The coefficient `k` of the decay gradient `kθ` for a parameter of this kind.
    fn coefficient(&self, kind: ParamKind) -> f64 {
        if kind == ParamKind::Bias && self.biases == Biases::Exclude {
            return 0.0;
        }
        match self.convention {
            DecayConvention::Homework => 2.0 * self.lambda,
            DecayConvention::PyTorch => self.lambda,
        }
    }
}

/// Gradient descent (question 2j), full-batch or mini-batch depending on the gradient it is
/// given, with optional [`Momentum`] and [`WeightDecay`]:
///
/// ```text
/// g ← ∇R̂(θ) + k θ        (k = 2λ homework, λ PyTorch, 0 without decay or for spared biases)
/// b ← μ b + g            (momentum only)
/// θ ← θ − η g            (plain)   θ ← θ − η b  (heavy ball)   θ ← θ − η (g + μ b)  (Nesterov)
/// ```
///
/// One fused pass per parameter over contiguous memory. Momentum buffers are kept per
/// parameter in visiting order and checked against the model at every step.
#[derive(Clone, Debug)]
pub struct Sgd<T: Scalar> {
    lr: f64,
    momentum: Momentum,
    decay: WeightDecay,
    velocity: Vec<Vec<T>>,
}

/// The homework's name for [`Sgd`]: full-batch gradient descent when fed full-batch gradients.
pub type GradientDescent<T> = Sgd<T>;

impl<T: Scalar> Sgd<T> {
    /// Plain gradient descent with learning rate `η`.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless `η` is finite and positive.
    pub fn new(lr: f64) -> Result<Self, OptimError> {
        check(
            "learning rate",
            lr,
            lr.is_finite() && lr > 0.0,
            "finite and > 0",
        )?;
        Ok(Self {
            lr,
            momentum: Momentum::None,
            decay: WeightDecay::none(),
            velocity: Vec::new(),
        })
    }

    /// With momentum.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless `μ ∈ [0, 1)`.
    pub fn with_momentum(mut self, momentum: Momentum) -> Result<Self, OptimError> {
        if let Momentum::Heavy { mu } | Momentum::Nesterov { mu } = momentum {
            check("momentum", mu, (0.0..1.0).contains(&mu), "in [0, 1)")?;
        }
        self.momentum = momentum;
        Ok(self)
    }

    /// With weight decay.
    pub fn with_weight_decay(mut self, decay: WeightDecay) -> Self {
        self.decay = decay;
        self
    }

    /// The momentum setting.
    pub fn momentum(&self) -> Momentum {
        self.momentum
    }

    /// The weight-decay setting.
    pub fn weight_decay(&self) -> WeightDecay {
        self.decay
    }
}

impl<T: Scalar> Optimizer<T> for Sgd<T> {
    fn step(&mut self, model: &mut dyn Layer<T>) -> Result<(), OptimError> {
        let lr = T::lit(self.lr);
        let (mu, nesterov) = match self.momentum {
            Momentum::None => (None, false),
            Momentum::Heavy { mu } => (Some(T::lit(mu)), false),
            Momentum::Nesterov { mu } => (Some(T::lit(mu)), true),
        };
        let decay = self.decay;
        let velocity = &mut self.velocity;
        let mut index = 0;
        let mut error = None;
        model.visit_params_mut(&mut |path, p| {
            if error.is_some() {
                return;
            }
            let k = T::lit(decay.coefficient(p.kind()));
            let (theta, grad) = p.value_and_grad_mut();
            match mu {
                None => update(theta, grad, &mut [], |t, g, _| *t -= lr * (g + k * *t)),
                Some(mu) => {
                    if velocity.len() == index {
                        velocity.push(vec![T::zero(); theta.len()]);
                    }
                    let buf = &mut velocity[index];
                    if buf.len() != theta.len() {
                        error = Some(OptimError::StateMismatch {
                            index,
                            path: path.to_string(),
                            expected: buf.len(),
                            got: theta.len(),
                        });
                        return;
                    }
                    if nesterov {
                        update(theta, grad, buf, |t, g, b| {
                            let d = g + k * *t;
                            *b = mu * *b + d;
                            *t -= lr * (d + mu * *b);
                        });
                    } else {
                        update(theta, grad, buf, |t, g, b| {
                            let d = g + k * *t;
                            *b = mu * *b + d;
                            *t -= lr * *b;
                        });
                    }
                }
            }
            index += 1;
        });
        if let Some(e) = error {
            return Err(e);
        }
        if mu.is_some() && index != velocity.len() {
            return Err(OptimError::ParamCount {
                expected: velocity.len(),
                got: index,
            });
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<(), OptimError> {
        check(
            "learning rate",
            lr,
            lr.is_finite() && lr > 0.0,
            "finite and > 0",
        )?;
        self.lr = lr;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use nalgebra::DMatrix;
    use retroprop_layers::{Dense, Init, Layer};

    use super::*;

    /// A 1→1 dense layer with w = 2, b = −1 and gradients dL/dw = 0.5, dL/db = 0.25.
    fn layer() -> Dense<f64> {
        let mut d = Dense::from_params(
            DMatrix::from_element(1, 1, 2.0),
            DMatrix::from_element(1, 1, -1.0),
        )
        .unwrap();
        set_grads(&mut d);
        d
    }

    fn set_grads(d: &mut Dense<f64>) {
        d.zero_grad();
        d.weight_mut().grad_mut()[0] = 0.5;
        d.bias_mut().grad_mut()[0] = 0.25;
    }

    fn wb(d: &Dense<f64>) -> (f64, f64) {
        (d.weight().value()[0], d.bias().value()[0])
    }

    #[test]
    fn homework_weight_decay_is_a_hand_computed_step() {
        // θ ← θ − η∇R̂ − 2ηλθ, η = 0.1, λ = 0.05:
        // w: 2 − 0.1·0.5 − 2·0.1·0.05·2 = 2 − 0.05 − 0.02 = 1.93
        // b: −1 − 0.1·0.25 − 2·0.1·0.05·(−1) = −1 − 0.025 + 0.01 = −1.015
        let mut d = layer();
        let mut sgd = Sgd::new(0.1)
            .unwrap()
            .with_weight_decay(WeightDecay::homework(0.05).unwrap());
        sgd.step(&mut d).unwrap();
        let (w, b) = wb(&d);
        assert!(
            (w - 1.93).abs() < 1e-15 && (b + 1.015).abs() < 1e-15,
            "{w} {b}"
        );
    }

    #[test]
    fn pytorch_convention_has_no_factor_two_and_biases_can_be_spared() {
        // w: 2 − 0.1·(0.5 + 0.05·2) = 1.94;  b spared: −1 − 0.1·0.25 = −1.025
        let mut d = layer();
        let decay = WeightDecay::pytorch(0.05).unwrap().excluding_biases();
        let mut sgd = Sgd::new(0.1).unwrap().with_weight_decay(decay);
        sgd.step(&mut d).unwrap();
        let (w, b) = wb(&d);
        assert!(
            (w - 1.94).abs() < 1e-15 && (b + 1.025).abs() < 1e-15,
            "{w} {b}"
        );
    }

    #[test]
    fn momentum_follows_pytorch() {
        // μ = 0.9, η = 0.1, g_w = 0.5 both steps: b₁ = 0.5, w₁ = 2 − 0.05 = 1.95;
        // b₂ = 0.9·0.5 + 0.5 = 0.95, w₂ = 1.95 − 0.095 = 1.855
        let mut d = layer();
        let mut sgd = Sgd::new(0.1)
            .unwrap()
            .with_momentum(Momentum::Heavy { mu: 0.9 })
            .unwrap();
        sgd.step(&mut d).unwrap();
        set_grads(&mut d);
        sgd.step(&mut d).unwrap();
        assert!((wb(&d).0 - 1.855).abs() < 1e-15);
        // Nesterov: step 1: b = 0.5, w = 2 − 0.1·(0.5 + 0.45) = 1.905
        let mut d = layer();
        let mut nag = Sgd::new(0.1)
            .unwrap()
            .with_momentum(Momentum::Nesterov { mu: 0.9 })
            .unwrap();
        nag.step(&mut d).unwrap();
        assert!((wb(&d).0 - 1.905).abs() < 1e-15);
    }

    #[test]
    fn state_from_another_model_is_an_error() {
        let mut sgd = Sgd::new(0.1)
            .unwrap()
            .with_momentum(Momentum::Heavy { mu: 0.5 })
            .unwrap();
        sgd.step(&mut layer()).unwrap();
        let mut other = Dense::<f64>::new(3, 2, Init::Zeros).unwrap();
        assert!(matches!(
            sgd.step(&mut other),
            Err(OptimError::StateMismatch {
                index: 0,
                expected: 1,
                got: 6,
                ..
            })
        ));
    }

    #[test]
    fn invalid_hyperparameters_are_errors() {
        assert!(Sgd::<f64>::new(0.0).is_err());
        assert!(Sgd::<f64>::new(f64::NAN).is_err());
        assert!(
            Sgd::<f64>::new(0.1)
                .unwrap()
                .with_momentum(Momentum::Heavy { mu: 1.0 })
                .is_err()
        );
        assert!(WeightDecay::homework(-1.0).is_err());
    }
}
