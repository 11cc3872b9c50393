//! `--optimizer`: the update rules the program trains with, and how the homework's λ maps to
//! each.

use clap::ValueEnum;
use retroprop_optim::{Adam, Momentum, OptimError, Optimizer, RmsProp, Sgd, WeightDecay};
use serde::{Deserialize, Serialize};

/// The optimizers `train` offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Gradient descent (2j) with momentum and the homework's L2 decay (2k).
    #[default]
    Sgd,
    /// Adam, the L2 penalty λ‖θ‖² in the gradient (PyTorch's weight_decay = 2λ).
    Adam,
    /// AdamW, decoupled decay θ ← (1 − 2ηλ)θ as in 2k, then the Adam step.
    Adamw,
    /// RMSprop, the L2 penalty in the gradient (weight_decay = 2λ), with --momentum.
    Rmsprop,
}

impl OptimizerKind {
    /// The default learning rate when --lr is not given: the model's for SGD, PyTorch's
    /// customary 1e-3 for the adaptive rules.
    pub fn default_lr(self, sgd: f64) -> f64 {
        match self {
            OptimizerKind::Sgd => sgd,
            _ => 1e-3,
        }
    }

    /// The optimizer, with the homework's λ (`R̂ + λ‖θ‖²`) as each rule's weight decay.
    pub fn build(
        self,
        lr: f64,
        momentum: f64,
        lambda: f64,
    ) -> Result<Box<dyn Optimizer<f32>>, OptimError> {
        // the gradient of λ‖θ‖² is 2λθ: PyTorch's weight_decay for the same penalty is 2λ
        let torch_decay = 2.0 * lambda;
        Ok(match self {
            OptimizerKind::Sgd => {
                let momentum = if momentum > 0.0 {
                    Momentum::Heavy { mu: momentum }
                } else {
                    Momentum::None
                };
                Box::new(
                    Sgd::new(lr)?
                        .with_momentum(momentum)?
                        .with_weight_decay(WeightDecay::homework(lambda)?),
                )
            }
            OptimizerKind::Adam => Box::new(Adam::new(lr)?.with_weight_decay(torch_decay)?),
            OptimizerKind::Adamw => Box::new(Adam::adamw(lr)?.with_weight_decay(torch_decay)?),
            OptimizerKind::Rmsprop => Box::new(
                RmsProp::new(lr)?
                    .with_momentum(momentum)?
                    .with_weight_decay(torch_decay)?,
            ),
        })
    }
}
