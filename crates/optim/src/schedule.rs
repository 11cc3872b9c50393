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

/// Exponential decay, as PyTorch's `ExponentialLR`: `η_e = η₀ · γ^e`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exponential {
    /// Factor applied every epoch.
    pub gamma: f64,
}

impl Schedule for Exponential {
    fn rate(&self, base: f64, epoch: usize) -> f64 {
        // PyTorch multiplies the rate by γ once per epoch: the same products, in order
        (0..epoch).fold(base, |lr, _| lr * self.gamma)
    }
}

/// `end + (start − end)/2 · (1 + cos(π·pct))`: cosine annealing from `start` at `pct = 0` to
/// `end` at `pct = 1` (PyTorch's `_annealing_cos`).
fn annealing_cos(start: f64, end: f64, pct: f64) -> f64 {
    let cos_out = (std::f64::consts::PI * pct).cos() + 1.0;
    end + (start - end) / 2.0 * cos_out
}

/// Cosine annealing after a linear warm-up (Hugging Face's `get_cosine_schedule_with_warmup`,
/// with a floor): for `e < warmup`, `η_e = η₀ (e + 1) / warmup`; then over the remaining epochs
/// `η_e = η_min + (η₀ − η_min)(1 + cos(π p))/2`, `p = (e − warmup) / (epochs − warmup)`. With
/// `warmup = 0` it is PyTorch's `CosineAnnealingLR(T_max = epochs, eta_min)` in closed form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cosine {
    /// Epochs of the whole schedule (`T_max` plus the warm-up).
    pub epochs: usize,
    /// Epochs of linear warm-up (0: none).
    pub warmup: usize,
    /// The floor `η_min`.
    pub min_lr: f64,
}

impl Schedule for Cosine {
    fn rate(&self, base: f64, epoch: usize) -> f64 {
        if epoch < self.warmup {
            return base * (epoch + 1) as f64 / self.warmup as f64;
        }
        let span = self.epochs.saturating_sub(self.warmup).max(1) as f64;
        let pct = ((epoch - self.warmup) as f64 / span).min(1.0);
        annealing_cos(base, self.min_lr, pct)
    }
}

/// The one-cycle policy (Smith & Topin), as PyTorch's `OneCycleLR` with its defaults (cosine
/// annealing, two phases), stepped once per epoch: the rate rises from `η_max / div` to
/// `η_max` (the optimizer's base rate) over the first `pct_start` of the epochs, then falls to
/// `η_max / (div · final_div)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneCycle {
    /// Epochs of the cycle (PyTorch's `total_steps`).
    pub epochs: usize,
    /// Fraction of the cycle spent rising (PyTorch's default 0.3).
    pub pct_start: f64,
    /// `η_max / η_initial` (default 25).
    pub div: f64,
    /// `η_initial / η_min` (default 10⁴).
    pub final_div: f64,
}

impl OneCycle {
    /// PyTorch's defaults over `epochs`.
    pub fn new(epochs: usize) -> Self {
        Self {
            epochs,
            pct_start: 0.3,
            div: 25.0,
            final_div: 1e4,
        }
    }
}

impl Schedule for OneCycle {
    fn rate(&self, base: f64, epoch: usize) -> f64 {
        let initial = base / self.div;
        let min = initial / self.final_div;
        // PyTorch's phase ends: step pct_start·total − 1, then total − 1
        let up_end = self.pct_start * self.epochs as f64 - 1.0;
        let down_end = self.epochs as f64 - 1.0;
        let step = epoch as f64;
        if step <= up_end {
            annealing_cos(initial, base, step / up_end)
        } else {
            let pct = ((step - up_end) / (down_end - up_end)).min(1.0);
            annealing_cos(base, min, pct)
        }
    }
}
