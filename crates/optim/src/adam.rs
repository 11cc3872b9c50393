//! Adam and AdamW, with PyTorch's semantics and order of operations.

use retroprop_core::Scalar;
use retroprop_layers::Layer;

use crate::optimizer::{
    OptimizerState, ParamStates, check_lr, check_non_negative, check_positive, check_unit,
};
use crate::{OptimError, Optimizer};

/// The state each parameter has (PyTorch's names).
const SLOTS: &[&str] = &["exp_avg", "exp_avg_sq"];

/// How weight decay enters an [`Adam`] step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdamDecay {
    /// PyTorch's `Adam(weight_decay=λ)`: an L2 term added to the gradient, `g ← g + λθ`, which
    /// the adaptive denominator then rescales per parameter.
    #[default]
    Coupled,
    /// PyTorch's `AdamW(weight_decay=λ)` (Loshchilov & Hutter): the parameter shrinks apart from
    /// the gradient, `θ ← (1 − ηλ) θ`, before the Adam step.
    Decoupled,
}

/// Adam (Kingma & Ba) and AdamW, exactly as `torch.optim.Adam` / `AdamW` (single-tensor path):
///
/// ```text
/// t ← t + 1
/// AdamW:  θ ← θ (1 − η λ)                                  (decoupled decay)
/// Adam:   g ← g + λ θ                                      (coupled L2)
/// m ← m + (1 − β₁)(g − m)                                  (= β₁ m + (1 − β₁) g)
/// v ← β₂ v + (1 − β₂) g²
/// θ ← θ − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
///
/// **How it relates to the homework's 2k step** `θ ← (1 − 2ηλ)θ − η∇R̂`: AdamW with
/// `weight_decay = 2λ` shrinks θ by the same factor `(1 − 2ηλ)` and then takes an Adam step on
/// `∇R̂` alone — the homework's decay, with Adam's step in place of the gradient step. Adam's
/// coupled L2 with `weight_decay = 2λ` differentiates the homework's penalty `λ‖θ‖²` exactly
/// (`∇ = ∇R̂ + 2λθ`), but Adam then divides that gradient by `√v̂`: the decay is rescaled per
/// parameter and is no longer the uniform shrink of 2k.
///
/// Defaults are PyTorch's: `β = (0.9, 0.999)`, `ε = 1e-8`, `λ = 0` (AdamW: `λ = 0.01`).
/// Weight decay applies to every parameter, as PyTorch's does when given all of them.
#[derive(Clone, Debug)]
pub struct Adam<T: Scalar> {
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    decay: AdamDecay,
    states: ParamStates<T>,
}

impl<T: Scalar> Adam<T> {
    /// Adam with learning rate `η` and PyTorch's defaults.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless `η` is finite and positive.
    pub fn new(lr: f64) -> Result<Self, OptimError> {
        check_lr(lr)?;
        Ok(Self {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decay: AdamDecay::Coupled,
            states: ParamStates::new(SLOTS),
        })
    }

    /// AdamW with learning rate `η`, PyTorch's defaults (`λ = 0.01`).
    ///
    /// # Errors
    /// As [`Adam::new`].
    pub fn adamw(lr: f64) -> Result<Self, OptimError> {
        Ok(Self {
            weight_decay: 0.01,
            decay: AdamDecay::Decoupled,
            ..Self::new(lr)?
        })
    }

    /// With these `(β₁, β₂)`.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless both are in `[0, 1)`.
    pub fn with_betas(mut self, beta1: f64, beta2: f64) -> Result<Self, OptimError> {
        check_unit("beta1", beta1)?;
        check_unit("beta2", beta2)?;
        self.betas = (beta1, beta2);
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

    /// With weight decay `λ` (coupled for Adam, decoupled for AdamW).
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless `λ` is finite and ≥ 0.
    pub fn with_weight_decay(mut self, lambda: f64) -> Result<Self, OptimError> {
        check_non_negative("weight decay", lambda)?;
        self.weight_decay = lambda;
        Ok(self)
    }

    /// Coupled (Adam) or decoupled (AdamW) decay.
    pub fn decay(&self) -> AdamDecay {
        self.decay
    }

    /// The name its state is saved under.
    fn name(&self) -> &'static str {
        match self.decay {
            AdamDecay::Coupled => "Adam",
            AdamDecay::Decoupled => "AdamW",
        }
    }
}

impl<T: Scalar> Optimizer<T> for Adam<T> {
    fn step(&mut self, model: &mut dyn Layer<T>) -> Result<(), OptimError> {
        // `powf` is C's `pow`, as Python's `beta ** step` (`powi` may differ in the last bit)
        let t = (self.states.steps() + 1) as f64;
        let (b1, b2) = self.betas;
        let bc1 = 1.0 - b1.powf(t);
        let bc2_sqrt = T::lit((1.0 - b2.powf(t)).sqrt());
        let step_size = T::lit(self.lr / bc1);
        let (one_minus_b1, b2t, one_minus_b2) = (T::lit(1.0 - b1), T::lit(b2), T::lit(1.0 - b2));
        let eps = T::lit(self.eps);
        let (coupled, shrink) = match self.decay {
            AdamDecay::Coupled => (T::lit(self.weight_decay), T::one()),
            AdamDecay::Decoupled => (T::zero(), T::lit(1.0 - self.lr * self.weight_decay)),
        };
        let decoupled = self.decay == AdamDecay::Decoupled && self.weight_decay != 0.0;
        self.states.apply(model, |_, theta, grad, slots| {
            let [m, v] = slots else {
                unreachable!("Adam has two state tensors per parameter")
            };
            for (((p, &g), m), v) in theta
                .iter_mut()
                .zip(grad)
                .zip(m.iter_mut())
                .zip(v.iter_mut())
            {
                if decoupled {
                    *p *= shrink;
                }
                let g = g + coupled * *p;
                *m += one_minus_b1 * (g - *m);
                *v = b2t * *v + one_minus_b2 * g * g;
                let denom = v.sqrt() / bc2_sqrt + eps;
                *p -= step_size * (*m / denom);
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
        self.states.export(self.name())
    }

    fn restore(&mut self, state: OptimizerState<T>) -> Result<(), OptimError> {
        let name = self.name();
        self.states.import(name, state)
    }
}
