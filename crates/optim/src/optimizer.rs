//! The optimizer family: the [`Optimizer`] trait, its error, its saved state, and the one
//! generic walker every optimizer uses ([`ParamStates`]): the per-parameter state keyed by the
//! parameter's path, checked against the model before anything is written.

use std::collections::BTreeMap;

use retroprop_core::simd::vectorized;
use retroprop_core::{Scalar, split};
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
    /// The optimizer's state for a parameter has another size than the parameter: the state
    /// was built for another model. Nothing was updated.
    #[error(
        "optimizer state `{slot}` of parameter `{path}` has {expected} values, the parameter has {got}: the state belongs to another model (nothing was updated)"
    )]
    StateMismatch {
        /// The parameter's path.
        path: String,
        /// The state's name (`"momentum_buffer"`).
        slot: String,
        /// Values in the stored state.
        expected: usize,
        /// Values in the parameter.
        got: usize,
    },
    /// The optimizer holds state for parameters the model does not have. Nothing was updated.
    #[error(
        "optimizer state is for parameters the model does not have ({missing}): the state belongs to another model (nothing was updated)"
    )]
    UnknownParams {
        /// The paths, comma-separated.
        missing: String,
    },
    /// Restored state was saved by another optimizer or with other state names.
    #[error(
        "the saved optimizer state is {found}'s, with state {found_slots:?}; this optimizer is {expected}, with {expected_slots:?}: resume with the optimizer the run was started with"
    )]
    StateKind {
        /// The optimizer and its state names that restore was called on.
        expected: String,
        /// Its state names.
        expected_slots: Vec<String>,
        /// The optimizer that saved the state.
        found: String,
        /// The state names saved.
        found_slots: Vec<String>,
    },
}

/// `Ok` if `ok`, else [`OptimError::InvalidHyperparameter`].
pub(crate) fn check(
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

/// `value` must be finite and positive (a rate, an ε, a clipping bound).
pub(crate) fn check_positive(name: &'static str, value: f64) -> Result<(), OptimError> {
    check(
        name,
        value,
        value.is_finite() && value > 0.0,
        "finite and > 0",
    )
}

/// `value` must be finite and ≥ 0 (a weight decay).
pub(crate) fn check_non_negative(name: &'static str, value: f64) -> Result<(), OptimError> {
    check(
        name,
        value,
        value.is_finite() && value >= 0.0,
        "finite and >= 0",
    )
}

/// `value` must be in `[0, 1)` (a momentum, a β, a smoothing constant).
pub(crate) fn check_unit(name: &'static str, value: f64) -> Result<(), OptimError> {
    check(name, value, (0.0..1.0).contains(&value), "in [0, 1)")
}

/// A learning rate must be finite and positive.
pub(crate) fn check_lr(lr: f64) -> Result<(), OptimError> {
    check_positive("learning rate", lr)
}

/// An update rule that walks a model's parameters.
///
/// Implementations keep their per-parameter state in a [`ParamStates`], which keys it by the
/// parameter's path and checks it against the model before any parameter is written: a step
/// that fails leaves the model exactly as it was.
pub trait Optimizer<T: Scalar>: Send {
    /// Updates every parameter of `model` from its accumulated gradient.
    ///
    /// # Errors
    /// [`OptimError::StateMismatch`] / [`OptimError::UnknownParams`] if the model is not the one
    /// the optimizer's state was built for; then no parameter has changed.
    fn step(&mut self, model: &mut dyn Layer<T>) -> Result<(), OptimError>;

    /// The current learning rate `η`.
    fn learning_rate(&self) -> f64;

    /// Sets `η` (a schedule calls this at each epoch).
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperparameter`] unless `η` is finite and positive.
    fn set_learning_rate(&mut self, lr: f64) -> Result<(), OptimError>;

    /// The state to save with a checkpoint (momentum buffers, moment estimates, step count).
    fn state(&self) -> OptimizerState<T>;

    /// Restores state saved by [`Optimizer::state`] (the next step checks it against the model).
    ///
    /// # Errors
    /// [`OptimError::StateKind`] if it was saved by another optimizer or configuration.
    fn restore(&mut self, state: OptimizerState<T>) -> Result<(), OptimError>;
}

/// One tensor of optimizer state: the state `slot` of the parameter at `path`.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotState<T: Scalar> {
    /// The parameter's path (`"0.weight"`).
    pub path: String,
    /// The state's name (`"momentum_buffer"`, as PyTorch's `state_dict`).
    pub slot: String,
    /// Its values, one per parameter value, column-major.
    pub values: Vec<T>,
}

/// An optimizer's saved state: which optimizer, how many steps it took, and its tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T: Scalar> {
    /// The optimizer's name (`"Sgd"`).
    pub optimizer: String,
    /// The names of the state each parameter has, in order.
    pub slot_names: Vec<String>,
    /// Steps taken.
    pub steps: u64,
    /// Every tensor, by parameter path then slot.
    pub slots: Vec<SlotState<T>>,
}

/// The per-parameter state of an optimizer, keyed by parameter path, and the walk that updates
/// a model: burn's split of an optimizer into a per-tensor rule and one generic walker.
///
/// Every optimizer names its state tensors once (`["momentum_buffer"]`, `["exp_avg",
/// "exp_avg_sq"]`, or none); [`ParamStates::apply`] checks every parameter's state against the
/// model, then runs the rule on each parameter with its state (allocated as zeros on first
/// use).
#[derive(Clone, Debug)]
pub struct ParamStates<T: Scalar> {
    slot_names: &'static [&'static str],
    by_path: BTreeMap<String, Vec<Vec<T>>>,
    steps: u64,
}

impl<T: Scalar> ParamStates<T> {
    /// Empty state with these slot names per parameter.
    pub fn new(slot_names: &'static [&'static str]) -> Self {
        Self {
            slot_names,
            by_path: BTreeMap::new(),
            steps: 0,
        }
    }

    /// The slot names.
    pub fn slot_names(&self) -> &'static [&'static str] {
        self.slot_names
    }

    /// Steps taken so far (Adam's `t` is `steps() + 1` during a step).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Checks the state against `model`: each stored tensor has the size of its parameter, and
    /// no state is for a parameter the model lacks.
    ///
    /// # Errors
    /// [`OptimError::StateMismatch`], [`OptimError::UnknownParams`].
    pub fn check(&self, model: &dyn Layer<T>) -> Result<(), OptimError> {
        let mut error = None;
        let mut matched = 0;
        model.visit_params(&mut |path, p| {
            if error.is_some() {
                return;
            }
            if let Some(slots) = self.by_path.get(path) {
                matched += 1;
                for (name, values) in self.slot_names.iter().zip(slots) {
                    if values.len() != p.len() {
                        error = Some(OptimError::StateMismatch {
                            path: path.to_string(),
                            slot: (*name).to_string(),
                            expected: values.len(),
                            got: p.len(),
                        });
                        return;
                    }
                }
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
        if matched != self.by_path.len() {
            let mut present = std::collections::BTreeSet::new();
            model.visit_params(&mut |path, _| {
                present.insert(path.to_string());
            });
            let missing: Vec<&str> = self
                .by_path
                .keys()
                .filter(|k| !present.contains(*k))
                .map(String::as_str)
                .collect();
            return Err(OptimError::UnknownParams {
                missing: missing.join(", "),
            });
        }
        Ok(())
    }

    /// Checks the state ([`ParamStates::check`]), then calls `rule(kind, θ, ∇, state)` on every
    /// parameter — a large one in two halves, in parallel — and counts the step.
    /// The rule loops over its slices itself, so its loop vectorises.
    ///
    /// # Errors
    /// As [`ParamStates::check`]; then nothing is written.
    pub fn apply(
        &mut self,
        model: &mut dyn Layer<T>,
        rule: impl Fn(ParamKind, &mut [T], &[T], &mut [&mut [T]]) + Sync,
    ) -> Result<(), OptimError> {
        self.check(&*model)?;
        let n_slots = self.slot_names.len();
        let by_path = &mut self.by_path;
        model.visit_params_mut(&mut |path, p| {
            let kind = p.kind();
            let (theta, grad) = p.value_and_grad_mut();
            // the key is allocated on a parameter's first step only, not at every step
            if !by_path.contains_key(path) {
                by_path.insert(
                    path.to_string(),
                    vec![vec![T::zero(); theta.len()]; n_slots],
                );
            }
            let state = by_path.get_mut(path).expect("inserted above");
            let slots: Vec<&mut [T]> = state.iter_mut().map(Vec::as_mut_slice).collect();
            // a large parameter in parts, one per thread (`retroprop_core::split`): each
            // entry is independent, so the result does not depend on the split
            split::halves((theta, grad, slots), |(theta, grad, mut slots)| {
                // the rule's loop compiled for the best instruction set (retroprop_core::simd)
                vectorized(
                    #[inline(always)]
                    || rule(kind, theta, grad, &mut slots),
                );
            });
        });
        self.steps += 1;
        Ok(())
    }

    /// The state to save, under the optimizer's name.
    pub fn export(&self, optimizer: &str) -> OptimizerState<T> {
        let slots = self
            .by_path
            .iter()
            .flat_map(|(path, slots)| {
                self.slot_names
                    .iter()
                    .zip(slots)
                    .map(move |(name, values)| SlotState {
                        path: path.clone(),
                        slot: (*name).to_string(),
                        values: values.clone(),
                    })
            })
            .collect();
        OptimizerState {
            optimizer: optimizer.to_string(),
            slot_names: self.slot_names.iter().map(|s| (*s).to_string()).collect(),
            steps: self.steps,
            slots,
        }
    }

    /// Replaces the state by a saved one, after checking it was saved by `optimizer` with the
    /// same slot names and holds every slot of each parameter it names, in order.
    ///
    /// # Errors
    /// [`OptimError::StateKind`].
    pub fn import(&mut self, optimizer: &str, state: OptimizerState<T>) -> Result<(), OptimError> {
        let kind_error = |state: &OptimizerState<T>| OptimError::StateKind {
            expected: optimizer.to_string(),
            expected_slots: self.slot_names.iter().map(|s| (*s).to_string()).collect(),
            found: state.optimizer.clone(),
            found_slots: state.slot_names.clone(),
        };
        if state.optimizer != optimizer || state.slot_names != self.slot_names {
            return Err(kind_error(&state));
        }
        let n = self.slot_names.len();
        let mut by_path: BTreeMap<String, Vec<Vec<T>>> = BTreeMap::new();
        if n > 0 {
            if !state.slots.len().is_multiple_of(n) {
                return Err(kind_error(&state));
            }
            for group in state.slots.chunks(n) {
                let path = &group[0].path;
                let in_order = group
                    .iter()
                    .zip(self.slot_names)
                    .all(|(s, name)| s.path == *path && s.slot == *name);
                if !in_order || by_path.contains_key(path) {
                    return Err(kind_error(&state));
                }
                by_path.insert(
                    path.clone(),
                    group.iter().map(|s| s.values.clone()).collect(),
                );
            }
        } else if !state.slots.is_empty() {
            return Err(kind_error(&state));
        }
        self.by_path = by_path;
        self.steps = state.steps;
        Ok(())
    }

    /// Forgets every state tensor and the step count.
    pub fn reset(&mut self) {
        self.by_path.clear();
        self.steps = 0;
    }
}
