//! Gradient descent with momentum and weight decay.

use retroprop_core::Scalar;
use retroprop_layers::{Layer, ParamKind};

use crate::optimizer::{OptimizerState, ParamStates, check_lr, check_non_negative, check_unit};
use crate::{OptimError, Optimizer};

/// The state each parameter has under momentum (PyTorch's name).
const MOMENTUM_SLOTS: &[&str] = &["momentum_buffer"];

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
        check_non_negative("lambda", lambda)?;
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
/// One fused pass per parameter over contiguous memory. Momentum buffers are kept by parameter
/// path, checked against the model before every step, and saved with [`Optimizer::state`].
#[derive(Clone, Debug)]
pub struct Sgd<T: Scalar> {
    lr: f64,
    momentum: Momentum,
    decay: WeightDecay,
    states: ParamStates<T>,
}

/// The homework's name for [`Sgd`]: full-batch gradient descent when fed full-batch gradients.
pub type GradientDescent<T> = Sgd<T>;

impl<T: Scalar> Sgd<T> {
    /// Plain gradient descent with learning rate `η`.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless `η` is finite and positive.
    pub fn new(lr: f64) -> Result<Self, OptimError> {
        check_lr(lr)?;
        Ok(Self {
            lr,
            momentum: Momentum::None,
            decay: WeightDecay::none(),
            states: ParamStates::new(&[]),
        })
    }

    /// With momentum.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless `μ ∈ [0, 1)`.
    pub fn with_momentum(mut self, momentum: Momentum) -> Result<Self, OptimError> {
        if let Momentum::Heavy { mu } | Momentum::Nesterov { mu } = momentum {
            check_unit("momentum", mu)?;
        }
        self.momentum = momentum;
        self.states = ParamStates::new(match momentum {
            Momentum::None => &[],
            _ => MOMENTUM_SLOTS,
        });
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
        let decay = self.decay;
        let k = move |kind| T::lit(decay.coefficient(kind));
        match self.momentum {
            Momentum::None => self.states.apply(model, |kind, theta, grad, _| {
                let k = k(kind);
                for (t, &g) in theta.iter_mut().zip(grad) {
                    *t -= lr * (g + k * *t);
                }
            }),
            Momentum::Heavy { mu } => {
                let mu = T::lit(mu);
                self.states.apply(model, |kind, theta, grad, slots| {
                    let k = k(kind);
                    for ((t, &g), b) in theta.iter_mut().zip(grad).zip(slots[0].iter_mut()) {
                        let d = g + k * *t;
                        *b = mu * *b + d;
                        *t -= lr * *b;
                    }
                })
            }
            Momentum::Nesterov { mu } => {
                let mu = T::lit(mu);
                self.states.apply(model, |kind, theta, grad, slots| {
                    let k = k(kind);
                    for ((t, &g), b) in theta.iter_mut().zip(grad).zip(slots[0].iter_mut()) {
                        let d = g + k * *t;
                        *b = mu * *b + d;
                        *t -= lr * (d + mu * *b);
                    }
                })
            }
        }
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<(), OptimError> {
        check_lr(lr)?;
        self.lr = lr;
        Ok(())
    }

    fn state(&self) -> OptimizerState<T> {
        self.states.export("Sgd")
    }

    fn restore(&mut self, state: OptimizerState<T>) -> Result<(), OptimError> {
        self.states.import("Sgd", state)
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
    fn state_from_another_model_is_an_error_that_changes_nothing() {
        let mut sgd = Sgd::new(0.1)
            .unwrap()
            .with_momentum(Momentum::Heavy { mu: 0.5 })
            .unwrap();
        sgd.step(&mut layer()).unwrap();
        // the bias matches (1 value) but the weight does not: the bias must not move either
        let mut other = Dense::<f64>::new(3, 1, Init::XavierUniform { seed: 1 }).unwrap();
        other.bias_mut().grad_mut()[0] = 1.0;
        let before = other.clone();
        let err = sgd.step(&mut other).unwrap_err();
        assert!(
            matches!(
                err,
                OptimError::StateMismatch { ref path, expected: 1, got: 3, .. } if path == "weight"
            ),
            "{err}"
        );
        assert_eq!(other.weight().value(), before.weight().value());
        assert_eq!(other.bias().value(), before.bias().value());
        // a model without the parameters the state is for
        let mut other = retroprop_layers::Relu::<f64>::new();
        assert!(matches!(
            sgd.step(&mut other),
            Err(OptimError::UnknownParams { ref missing }) if missing == "bias, weight"
        ));
    }

    #[test]
    fn saved_state_resumes_the_same_trajectory() {
        let momentum = Momentum::Nesterov { mu: 0.9 };
        let new = || Sgd::new(0.1).unwrap().with_momentum(momentum).unwrap();
        // three steps in one go
        let mut d = layer();
        let mut sgd = new();
        for _ in 0..3 {
            sgd.step(&mut d).unwrap();
            set_grads(&mut d);
        }
        // one step, save, a fresh optimizer restores, two more steps
        let mut e = layer();
        let mut first = new();
        first.step(&mut e).unwrap();
        set_grads(&mut e);
        let saved = first.state();
        assert_eq!(saved.steps, 1);
        assert_eq!(saved.slots.len(), 2, "weight and bias buffers");
        let mut second = new();
        second.restore(saved.clone()).unwrap();
        for _ in 0..2 {
            second.step(&mut e).unwrap();
            set_grads(&mut e);
        }
        assert_eq!(wb(&d), wb(&e), "bit for bit");
        assert_eq!(second.state(), sgd.state());
        // state of another optimizer configuration is refused
        let mut plain = Sgd::<f64>::new(0.1).unwrap();
        assert!(matches!(
            plain.restore(saved),
            Err(OptimError::StateKind { .. })
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
