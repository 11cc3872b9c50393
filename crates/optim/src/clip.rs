//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.

use retroprop_core::Scalar;
use retroprop_layers::Layer;

use crate::OptimError;
use crate::optimizer::check_positive;

/// Scales every gradient of `model` so that their global 2-norm is at most `max_norm`, as
/// PyTorch's `clip_grad_norm_`: with `N = ‖(all gradients)‖₂` and `c = max_norm / (N + 10⁻⁶)`,
/// every gradient is multiplied by `c` when `c < 1`. Returns `N` (before clipping).
///
/// # Errors
/// [`OptimError::InvalidHyperparameter`] unless `max_norm` is finite and positive.
pub fn clip_grad_norm<T: Scalar>(
    model: &mut dyn Layer<T>,
    max_norm: f64,
) -> Result<f64, OptimError> {
    check_positive("max norm", max_norm)?;
    // the norm of the per-parameter norms, as PyTorch computes it
    let mut squares = 0.0f64;
    model.visit_params(&mut |_, p| {
        let n = p
            .grad()
            .iter()
            .fold(T::zero(), |s, &g| s + g * g)
            .sqrt()
            .to_f64();
        squares += n * n;
    });
    let total = squares.sqrt();
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        let c = T::lit(coef);
        model.visit_params_mut(&mut |_, p| {
            for g in p.grad_mut().iter_mut() {
                *g *= c;
            }
        });
    }
    Ok(total)
}

/// Clamps every gradient entry of `model` to `[−clip, clip]`, as PyTorch's `clip_grad_value_`.
///
/// # Errors
/// [`OptimError::InvalidHyperparameter`] unless `clip` is finite and positive.
pub fn clip_grad_value<T: Scalar>(model: &mut dyn Layer<T>, clip: f64) -> Result<(), OptimError> {
    check_positive("clip value", clip)?;
    let c = T::lit(clip);
    model.visit_params_mut(&mut |_, p| {
        for g in p.grad_mut().iter_mut() {
            *g = g.max(-c).min(c);
        }
    });
    Ok(())
}
