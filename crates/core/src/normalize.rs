//! The fixed affine map of input standardisation, `x ↦ (x − μ) / σ`, written once: the
//! `Standardize` layer applies it in a network, and a data loader may apply it while it converts
//! a batch (one pass over the batch instead of two), with the same bits.

use crate::Scalar;

/// `x ↦ (x − μ) · (1/σ)`: a fixed shift and scale applied to every value (PyTorch's
/// `transforms.Normalize` with one mean and one standard deviation).
///
/// ```
/// use retroprop_core::Normalize;
///
/// let n = Normalize::new(0.5_f64, 0.25);
/// assert_eq!(n.apply(1.0), 2.0);
/// assert_eq!(Normalize::<f32>::identity().apply(0.3), 0.3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalize<T: Scalar> {
    shift: T,
    scale: T,
}

impl<T: Scalar> Normalize<T> {
    /// The identity: shift 0, scale 1 (`(x − 0) · 1 = x` for every `x`, bit for bit).
    pub fn identity() -> Self {
        Self {
            shift: T::zero(),
            scale: T::one(),
        }
    }

    /// Subtracts `mean`, then multiplies by the rounded reciprocal `1/std` (a multiply per
    /// value, not a division).
    pub fn new(mean: T, std: T) -> Self {
        Self {
            shift: mean,
            scale: T::one() / std,
        }
    }

    /// The mean subtracted, `μ`.
    pub fn shift(&self) -> T {
        self.shift
    }

    /// The factor applied after the shift, `1/σ` rounded.
    pub fn scale(&self) -> T {
        self.scale
    }

    /// `(x − μ) · (1/σ)`.
    #[inline(always)]
    pub fn apply(&self, x: T) -> T {
        (x - self.shift) * self.scale
    }
}
