//! RMSprop, with PyTorch's semantics and order of operations.

use retroprop_core::Scalar;
use retroprop_layers::Layer;

use crate::optimizer::{
    OptimizerState, ParamStates, check_lr, check_non_negative, check_positive, check_unit,
};
use crate::{OptimError, Optimizer};

/// RMSprop (Hinton), exactly as `torch.optim.RMSprop` (single-tensor path, not centered):
///
/// ```text
/// g ← g + λ θ                                   (weight decay, coupled)
/// v ← α v + (1 − α) g²
/// d = √v + ε
/// no momentum:   θ ← θ − η g / d
/// momentum μ:    b ← μ b + g / d;   θ ← θ − η b
/// ```
///
/// Defaults are PyTorch's: `α = 0.99`, `ε = 1e-8`, `λ = 0`, no momentum. State names:
/// `square_avg` and, with momentum, `momentum_buffer`.
#[derive(Clone, Debug)]
pub struct RmsProp<T: Scalar> {
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    states: ParamStates<T>,
}

const SLOTS: &[&str] = &["square_avg"];
const SLOTS_MOMENTUM: &[&str] = &["square_avg", "momentum_buffer"];

impl<T: Scalar> RmsProp<T> {
    /// RMSprop with learning rate `η` and PyTorch's defaults.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless `η` is finite and positive.
    pub fn new(lr: f64) -> Result<Self, OptimError> {
        check_lr(lr)?;
        Ok(Self {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            states: ParamStates::new(SLOTS),
        })
    }

    /// With smoothing constant `α ∈ [0, 1)`.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] outside `[0, 1)`.
    pub fn with_alpha(mut self, alpha: f64) -> Result<Self, OptimError> {
        check_unit("alpha", alpha)?;
        self.alpha = alpha;
        Ok(self)
    }

    /// With this `ε`.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless `ε` is finite and positive.
    pub fn with_eps(mut self, eps: f64) -> Result<Self, OptimError> {
        check_positive("eps", eps)?;
        self.eps = eps;
        Ok(self)
    }

    /// With coupled weight decay `λ` (an L2 term in the gradient, as PyTorch's).
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless `λ` is finite and ≥ 0.
    pub fn with_weight_decay(mut self, lambda: f64) -> Result<Self, OptimError> {
        check_non_negative("weight decay", lambda)?;
        self.weight_decay = lambda;
        Ok(self)
    }

    /// With momentum `μ ∈ [0, 1)` (0: none).
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] outside `[0, 1)`.
    pub fn with_momentum(mut self, mu: f64) -> Result<Self, OptimError> {
        check_unit("momentum", mu)?;
        self.momentum = mu;
        self.states = ParamStates::new(if mu > 0.0 { SLOTS_MOMENTUM } else { SLOTS });
        Ok(self)
    }
}

impl<T: Scalar> Optimizer<T> for RmsProp<T> {
    fn step(&mut self, model: &mut dyn Layer<T>) -> Result<(), OptimError> {
        let lr = T::lit(self.lr);
        let (alpha, one_minus_alpha) = (T::lit(self.alpha), T::lit(1.0 - self.alpha));
        let (eps, lambda, mu) = (
            T::lit(self.eps),
            T::lit(self.weight_decay),
            T::lit(self.momentum),
        );
        let with_momentum = self.momentum > 0.0;
        self.states.apply(model, |_, theta, grad, slots| {
            let (v, rest) = slots.split_first_mut().expect("square_avg");
            for (k, (p, &g)) in theta.iter_mut().zip(grad).enumerate() {
                let g = g + lambda * *p;
                let sq = &mut v[k];
                *sq = alpha * *sq + one_minus_alpha * g * g;
                let d = sq.sqrt() + eps;
                if with_momentum {
                    let b = &mut rest[0][k];
                    *b = mu * *b + g / d;
                    *p -= lr * *b;
                } else {
                    *p -= lr * (g / d);
                }
            }
        })
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
        self.states.export("RmsProp")
    }

    fn restore(&mut self, state: OptimizerState<T>) -> Result<(), OptimError> {
        self.states.import("RmsProp", state)
    }
}
