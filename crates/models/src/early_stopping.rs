//! Early stopping on a validation metric, with patience (Lightning's `EarlyStopping`).

use crate::ModelError;

/// What [`EarlyStopping::update`] concludes from an epoch's validation value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// The best value so far: keep this model (the best checkpoint).
    Improved,
    /// No improvement for this many epochs in a row, fewer than the patience.
    Waiting(usize),
    /// No improvement for `patience` epochs: stop training.
    Stop,
}

/// Watches a validation value that should decrease (the validation loss) and says when it
/// has stopped improving: an epoch improves when its value is below the best so far by more
/// than `min_delta`; after `patience` epochs in a row without improvement, training stops.
/// A NaN never improves.
///
/// Use it from `fit`'s callback: evaluate on a validation set at each
/// [`Event::Epoch`](crate::Event), keep the model on [`Verdict::Improved`], and return
/// `ControlFlow::Break` on [`Verdict::Stop`]. A resumed run replays its recorded validation
/// values through [`EarlyStopping::update`] to come back to the same state.
///
/// ```
/// use retroprop_models::{EarlyStopping, Verdict};
///
/// let mut watch = EarlyStopping::new(3, 0.0).unwrap();
/// let verdicts: Vec<Verdict> = [0.9, 0.5, 0.6, 0.5, 0.55]
///     .iter()
///     .enumerate()
///     .map(|(e, &v)| watch.update(e + 1, v))
///     .collect();
/// assert_eq!(
///     verdicts,
///     [Verdict::Improved, Verdict::Improved, Verdict::Waiting(1), Verdict::Waiting(2), Verdict::Stop]
/// );
/// assert_eq!(watch.best(), Some((2, 0.5)));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStopping {
    patience: usize,
    min_delta: f64,
    best: Option<(usize, f64)>,
    waited: usize,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without an improvement of more than `min_delta`.
    ///
    /// # Errors
    /// [`ModelError::Setting`] for a patience of 0, [`ModelError::EarlyStopping`] for a
    /// `min_delta` that is negative or not finite.
    pub fn new(patience: usize, min_delta: f64) -> Result<Self, ModelError> {
        if patience == 0 {
            return Err(ModelError::Setting {
                name: "patience",
                value: 0,
            });
        }
        if !(min_delta.is_finite() && min_delta >= 0.0) {
            return Err(ModelError::EarlyStopping { min_delta });
        }
        Ok(Self {
            patience,
            min_delta,
            best: None,
            waited: 0,
        })
    }

    /// Records epoch `epoch`'s value and says what to do.
    pub fn update(&mut self, epoch: usize, value: f64) -> Verdict {
        let improved = match self.best {
            _ if value.is_nan() => false,
            None => true,
            Some((_, best)) => value < best - self.min_delta,
        };
        if improved {
            self.best = Some((epoch, value));
            self.waited = 0;
            return Verdict::Improved;
        }
        self.waited += 1;
        if self.waited >= self.patience {
            Verdict::Stop
        } else {
            Verdict::Waiting(self.waited)
        }
    }

    /// The best epoch and its value so far.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.best
    }

    /// The patience.
    pub fn patience(&self) -> usize {
        self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_delta_nan_and_bad_settings() {
        let mut w = EarlyStopping::new(1, 0.1).unwrap();
        assert_eq!(w.update(1, f64::NAN), Verdict::Stop);
        let mut w = EarlyStopping::new(3, 0.1).unwrap();
        assert_eq!(w.update(1, 1.0), Verdict::Improved);
        // 0.95 is lower, but not by more than 0.1
        assert_eq!(w.update(2, 0.95), Verdict::Waiting(1));
        assert_eq!(w.update(3, 0.85), Verdict::Improved);
        assert_eq!(w.best(), Some((3, 0.85)));
        assert!(EarlyStopping::new(0, 0.0).is_err());
        assert!(EarlyStopping::new(2, -1.0).is_err());
        assert!(EarlyStopping::new(2, f64::INFINITY).is_err());
    }
}
