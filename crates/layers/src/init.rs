//! Seeded weight initialisation: same seed, same weights, on every machine.

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use retroprop_core::rng::Rng;
use serde::{Deserialize, Serialize};

/// How a layer's weights are drawn. Biases start at zero except for [`Init::PyTorchDefault`].
///
/// All schemes are uniform: drawing them needs only integer arithmetic and `√`, which IEEE 754
/// rounds exactly, so a seed gives bit-identical weights on every platform (normal draws would
/// need `ln` and `cos`, whose last bit differs between math libraries).
///
/// `fan_in` is the number of inputs of one output unit (`d_in` for a dense layer,
/// `C_in · kh · kw` for a convolution); `fan_out` likewise for outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Init {
    /// Glorot & Bengio (2010), for tanh, σ, softplus: `W ~ U(−a, a)`, `a = √(6 / (fan_in + fan_out))`.
    XavierUniform {
        /// Seed of the draw.
        seed: u64,
    },
    /// He et al. (2015), for ReLU: `W ~ U(−a, a)`, `a = √(6 / fan_in)`.
    HeUniform {
        /// Seed of the draw.
        seed: u64,
    },
    /// Glorot & Bengio (2010), normal: `W ~ N(0, σ²)`, `σ = √(2 / (fan_in + fan_out))`
    /// (PyTorch's `xavier_normal_`).
    XavierNormal {
        /// Seed of the draw.
        seed: u64,
    },
    /// He et al. (2015), normal, for ReLU: `W ~ N(0, σ²)`, `σ = √(2 / fan_in)` (PyTorch's
    /// `kaiming_normal_` with its defaults, fan-in mode).
    HeNormal {
        /// Seed of the draw.
        seed: u64,
    },
    /// PyTorch's default for `Linear` and `Conv2d`: `W, b ~ U(−1/√fan_in, 1/√fan_in)`.
    PyTorchDefault {
        /// Seed of the draw.
        seed: u64,
    },
    /// Every parameter zero (a placeholder before loading a checkpoint).
    Zeros,
}

impl Init {
    /// Draws a `rows × cols` weight matrix and a `rows`-vector of biases.
    pub(crate) fn draw<T: Scalar>(
        self,
        rows: usize,
        cols: usize,
        fan_in: usize,
        fan_out: usize,
    ) -> (DMatrix<T>, DMatrix<T>) {
        let fan_in = fan_in.max(1) as f64;
        let fan_out = fan_out.max(1) as f64;
        let normal = |seed: u64, sigma: f64| {
            let mut rng = Rng::new(seed);
            let w = DMatrix::from_fn(rows, cols, |_, _| T::lit(sigma * rng.normal()));
            (w, DMatrix::zeros(rows, 1))
        };
        let (seed, weight_bound, bias_bound) = match self {
            Init::XavierNormal { seed } => return normal(seed, (2.0 / (fan_in + fan_out)).sqrt()),
            Init::HeNormal { seed } => return normal(seed, (2.0 / fan_in).sqrt()),
            Init::XavierUniform { seed } => (seed, (6.0 / (fan_in + fan_out)).sqrt(), 0.0),
            Init::HeUniform { seed } => (seed, (6.0 / fan_in).sqrt(), 0.0),
            Init::PyTorchDefault { seed } => {
                let a = 1.0 / fan_in.sqrt();
                (seed, a, a)
            }
            Init::Zeros => return (DMatrix::zeros(rows, cols), DMatrix::zeros(rows, 1)),
        };
        let mut rng = Rng::new(seed);
        let w = DMatrix::from_fn(rows, cols, |_, _| {
            T::lit(rng.uniform(-weight_bound, weight_bound))
        });
        let b = DMatrix::from_fn(rows, 1, |_, _| {
            if bias_bound == 0.0 {
                T::zero()
            } else {
                T::lit(rng.uniform(-bias_bound, bias_bound))
            }
        });
        (w, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_weights_and_bounds_hold() {
        let (w1, b1) = Init::XavierUniform { seed: 7 }.draw::<f64>(20, 30, 30, 20);
        let (w2, _) = Init::XavierUniform { seed: 7 }.draw::<f64>(20, 30, 30, 20);
        assert_eq!(w1, w2);
        let a = (6.0_f64 / 50.0).sqrt();
        assert!(w1.iter().all(|&v| v.abs() < a));
        assert!(b1.iter().all(|&v| v == 0.0));
        let (w3, _) = Init::XavierUniform { seed: 8 }.draw::<f64>(20, 30, 30, 20);
        assert_ne!(w1, w3);
        // f32 weights are the f64 draw rounded
        let (wf, _) = Init::XavierUniform { seed: 7 }.draw::<f32>(20, 30, 30, 20);
        assert_eq!(wf, w1.map(|v| v as f32));
    }

    #[test]
    fn normal_initialisers_have_their_standard_deviation() {
        for (init, sigma) in [
            (
                Init::XavierNormal { seed: 3 },
                (2.0f64 / (200.0 + 300.0)).sqrt(),
            ),
            (Init::HeNormal { seed: 3 }, (2.0f64 / 300.0).sqrt()),
        ] {
            let (w, b) = init.draw::<f64>(200, 300, 300, 200);
            let n = w.len() as f64;
            let std = (w.iter().map(|v| v * v).sum::<f64>() / n).sqrt();
            assert!(
                (std / sigma - 1.0).abs() < 0.01,
                "{init:?}: {std} vs {sigma}"
            );
            assert!(b.iter().all(|&v| v == 0.0));
            assert_eq!(init.draw::<f64>(200, 300, 300, 200).0, w, "seeded");
        }
    }

    #[test]
    fn pytorch_default_draws_biases() {
        let (_, b) = Init::PyTorchDefault { seed: 1 }.draw::<f64>(50, 4, 4, 50);
        assert!(b.iter().any(|&v| v != 0.0));
        assert!(b.iter().all(|&v| v.abs() < 0.5));
    }
}
