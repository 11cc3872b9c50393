//! The normalisation layers in `verify`: batch normalisation, whose Jacobian couples a
//! batch's examples.

use retroprop_gradcheck::{Config, Outcome, Suite};
use retroprop_layers::{Layer, LayerError};

use super::random;

/// Batch normalisation couples the examples of a batch, so its check is the finite difference
/// of the whole batch's objective (`check_layer`), not the per-example contract.
pub fn batch_norms(suite: &mut Suite) {
    use retroprop_layers::{BatchNorm, BatchNormConfig};
    const G: &str = "layers (gradients + Layer contract)";
    for (name, two_d, affine, rows) in [
        ("1d", false, true, 4),
        ("2d", true, true, 4 * 3 * 3),
        ("2d-no-affine", true, false, 4 * 2 * 2),
    ] {
        suite.add(
            format!("layers/batchnorm/{name}"),
            G,
            format!("BatchNorm{name}: 4 channels, batch 5, through the batch statistics"),
            move || {
                let config = BatchNormConfig::new(4).affine(affine);
                let built = if two_d {
                    BatchNorm::<f64>::new_2d(config)
                } else {
                    BatchNorm::<f64>::new_1d(config)
                };
                let run = || -> Result<Outcome, LayerError> {
                    let mut bn = built?;
                    if affine {
                        Layer::set_param(&mut bn, "weight", random(4, 1, 0.5, 1.5, 52))?;
                        Layer::set_param(&mut bn, "bias", random(4, 1, -0.5, 0.5, 53))?;
                    }
                    let x = random(rows, 5, -3.0, 3.0, 54);
                    let report = retroprop_gradcheck::check_layer(&mut bn, &x, &Config::default())?;
                    Ok(Outcome::from_report(&report))
                };
                run().unwrap_or_else(|e| Outcome::error(e.to_string()))
            },
        );
    }
}
