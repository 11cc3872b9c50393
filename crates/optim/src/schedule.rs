//! Learning-rate schedules: the hook a training loop calls at the start of every epoch.

/// The learning rate for an epoch, from the base rate.
pub trait Schedule: Send + Sync {
    /// `η` for epoch `epoch` (counted from 0) given the base rate `base`.
    fn rate(&self, base: f64, epoch: usize) -> f64;
}

/// The base rate throughout.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Constant;

impl Schedule for Constant {
    fn rate(&self, base: f64, _epoch: usize) -> f64 {
        base
    }
}

/// Step decay, as PyTorch's `StepLR`: `η_e = η₀ · γ^⌊e / step⌋`.
///
/// ```
/// use retroprop_optim::{Schedule, StepDecay};
///
/// let s = StepDecay { step: 2, gamma: 0.5 };
/// assert_eq!([0, 1, 2, 3, 4].map(|e| s.rate(0.1, e)), [0.1, 0.1, 0.05, 0.05, 0.025]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepDecay {
    /// Epochs between two decays (at least 1; 0 is treated as 1).
    pub step: usize,
    /// Factor applied at each decay.
    pub gamma: f64,
}

impl Schedule for StepDecay {
    fn rate(&self, base: f64, epoch: usize) -> f64 {
        let k = epoch / self.step.max(1);
        base * self.gamma.powi(i32::try_from(k).unwrap_or(i32::MAX))
    }
}
