//! The divergence guard of [`fit`](crate::fit): a run that blows up never costs the good model.
//!
//! ```text
//! before training   every epoch's learning rate η_e = schedule(η₀, e) must be finite and > 0
//! every step        the batch loss must be finite (it is summed anyway: no extra pass)
//! every epoch       every parameter must be finite (one pass over θ, O(n_θ));
//!                   then θ is copied as the last good state
//! on divergence     θ ← the last good state (end of the last good epoch, or the initial θ),
//!                   and fit returns ModelError::Diverged naming the epoch, step and value
//! ```
//!
//! The copy costs one pass over the parameters per epoch, far below one epoch's gradients.

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use retroprop_layers::Layer;
use retroprop_optim::Schedule;

use crate::{ModelError, Sequential};

/// The parameters and buffers (running statistics) of a model at the end of a good epoch
/// (`epoch` 0: before training).
pub(crate) struct Snapshot<T: Scalar> {
    epoch: usize,
    values: Vec<DMatrix<T>>,
    buffers: Vec<DMatrix<T>>,
}

impl<T: Scalar> Snapshot<T> {
    /// Copies every parameter and buffer of `model`.
    pub(crate) fn take(model: &Sequential<T>, epoch: usize) -> Self {
        let (mut values, mut buffers) = (Vec::new(), Vec::new());
        model.visit_params(&mut |_, p| values.push(p.value().clone()));
        model.visit_buffers(&mut |_, b| buffers.push(b.value().clone()));
        Self {
            epoch,
            values,
            buffers,
        }
    }

    /// Replaces the copy with the current parameters and buffers, reusing its memory.
    pub(crate) fn update(&mut self, model: &Sequential<T>, epoch: usize) {
        let mut values = self.values.iter_mut();
        model.visit_params(&mut |_, p| {
            if let Some(v) = values.next() {
                v.copy_from(p.value());
            }
        });
        let mut buffers = self.buffers.iter_mut();
        model.visit_buffers(&mut |_, b| {
            if let Some(v) = buffers.next() {
                v.copy_from(b.value());
            }
        });
        self.epoch = epoch;
    }

    /// The epoch the copy was taken after (0: the initial parameters).
    pub(crate) fn epoch(&self) -> usize {
        self.epoch
    }

    /// Writes the copy back into `model` (the same model: the shapes match).
    pub(crate) fn restore(&self, model: &mut Sequential<T>) {
        let mut values = self.values.iter();
        model.visit_params_mut(&mut |_, p| {
            if let Some(v) = values.next() {
                p.value_mut().copy_from(v);
            }
        });
        let mut buffers = self.buffers.iter();
        model.visit_buffers_mut(&mut |_, b| {
            if let Some(v) = buffers.next() {
                b.as_mut_slice().copy_from_slice(v.as_slice());
            }
        });
    }
}

/// The first parameter (then buffer: a running variance) entry that is NaN or infinite: its
/// path, flat index and value.
pub(crate) fn first_non_finite<T: Scalar>(model: &Sequential<T>) -> Option<(String, usize, f64)> {
    let mut found = None;
    let mut look = |path: &str, value: &DMatrix<T>| {
        if found.is_none()
            && let Some(i) = value.iter().position(|v| !v.to_f64().is_finite())
        {
            found = Some((path.to_string(), i, value[i].to_f64()));
        }
    };
    model.visit_params(&mut |path, p| look(path, p.value()));
    model.visit_buffers(&mut |path, b| look(path, b.value()));
    found
}

/// Checks the learning rate of every epoch before training starts, so a schedule that reaches
/// 0 or ∞ fails at once instead of after the epochs it could train.
pub(crate) fn check_schedule(
    schedule: &dyn Schedule,
    base: f64,
    epochs: usize,
) -> Result<(), ModelError> {
    for epoch in 0..epochs {
        let rate = schedule.rate(base, epoch);
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ModelError::Schedule {
                epoch: epoch + 1,
                rate,
                base,
            });
        }
    }
    Ok(())
}
