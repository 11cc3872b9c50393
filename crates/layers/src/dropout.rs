//! Dropout (inverted), seeded so that runs repeat (PyTorch's `nn.Dropout`).

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use retroprop_core::rng::Rng;
use serde::{Deserialize, Serialize};

use crate::layer::check_grad;
use crate::linalg::zip_map;
use crate::{Layer, LayerConfig, LayerError, LayerSpec, Shape};

const NAME: &str = "Dropout";

/// The configuration of a [`Dropout`]: the probability of zeroing an entry (kind `"Dropout"`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DropoutConfig {
    /// `p ∈ [0, 1]`, PyTorch's default 0.5.
    pub p: f64,
}

impl LayerConfig for DropoutConfig {
    const KIND: &'static str = NAME;
    fn build<T: Scalar>(&self, _: Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError> {
        Ok(Box::new(Dropout::new(self.p)?))
    }
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(Ok(Vec::new()))
    }
}

/// Inverted dropout: in training each entry is kept with probability `1 − p` and scaled by
/// `1/(1 − p)`, so `E[y] = x`; [`Layer::infer`] is the identity (PyTorch's `eval()`).
///
/// ```text
/// y = x ⊙ m,   m_i = 1/(1 − p) with probability 1 − p, else 0      dL/dx = dL/dy ⊙ m
/// ```
///
/// The masks are seeded: `fit` calls [`Layer::reseed`] before every step with a seed derived
/// from its own seed, the epoch and the step, so a run repeats bit for bit and a resumed run
/// draws the masks the uninterrupted run drew. Within a step, successive forward passes (the
/// chunks of a full batch) draw successive masks. [`Dropout::hold_mask`] freezes the mask
/// (what a gradient check needs: the function is then `x ⊙ m`, fixed). The conformance clause
/// "`infer` equals `forward`" does not hold for dropout by design.
#[derive(Clone, Debug)]
pub struct Dropout<T: Scalar> {
    p: f64,
    seed: u64,
    draws: u64,
    held: bool,
    mask: Option<DMatrix<T>>,
}

impl<T: Scalar> Dropout<T> {
    /// Dropout with probability `p` of zeroing each entry.
    ///
    /// # Errors
    /// [`LayerError::InvalidValue`] unless `p ∈ [0, 1]`.
    pub fn new(p: f64) -> Result<Self, LayerError> {
        if !(0.0..=1.0).contains(&p) {
            return Err(LayerError::InvalidValue {
                layer: NAME,
                what: "p",
                value: p,
                requirement: "in [0, 1]",
            });
        }
        Ok(Self {
            p,
            seed: 0,
            draws: 0,
            held: false,
            mask: None,
        })
    }

    /// Keeps the current mask for every following forward pass (`true`), or draws a new one
    /// each time (`false`, the default).
    pub fn hold_mask(&mut self, held: bool) {
        self.held = held;
    }

    /// The mask of the last forward pass (`None` before one).
    pub fn mask(&self) -> Option<&DMatrix<T>> {
        self.mask.as_ref()
    }

    fn draw(&mut self, rows: usize, cols: usize) -> DMatrix<T> {
        let mut rng = Rng::new(self.seed ^ self.draws.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        self.draws += 1;
        let keep = if self.p < 1.0 {
            T::lit(1.0 / (1.0 - self.p))
        } else {
            T::zero()
        };
        let p = self.p;
        DMatrix::from_fn(
            rows,
            cols,
            |_, _| {
                if rng.unit() < p { T::zero() } else { keep }
            },
        )
    }
}

impl<T: Scalar> Layer<T> for Dropout<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::new(DropoutConfig::KIND, &DropoutConfig { p: self.p })
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        Ok(input)
    }

    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let reuse = self.held && self.mask.as_ref().is_some_and(|m| m.shape() == x.shape());
        if !reuse {
            self.mask = Some(self.draw(x.nrows(), x.ncols()));
        }
        let mask = self.mask.as_ref().expect("drawn above");
        Ok(zip_map(x, mask, |v, m| v * m))
    }

    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let mask = self
            .mask
            .as_ref()
            .ok_or(LayerError::NoForwardCache { layer: NAME })?;
        check_grad(NAME, grad_y, mask.nrows(), mask.ncols())?;
        Ok(zip_map(grad_y, mask, |g, m| g * m))
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        Ok(x.clone())
    }

    fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        self.draws = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_one_minus_p_scaled_and_infers_the_identity() {
        let mut d = Dropout::<f64>::new(0.25).unwrap();
        d.reseed(7);
        let x = DMatrix::from_element(100, 100, 2.0);
        let y = d.forward(&x).unwrap();
        let zeros = y.iter().filter(|&&v| v == 0.0).count();
        // 10 000 Bernoulli(0.25): mean 2 500, standard deviation 43
        assert!((2300..2700).contains(&zeros), "{zeros}");
        assert!(y.iter().all(|&v| v == 0.0 || v == 2.0 / 0.75));
        assert_eq!(d.infer(&x).unwrap(), x);
        // the same seed draws the same masks; another seed others
        let mut e = Dropout::<f64>::new(0.25).unwrap();
        e.reseed(7);
        assert_eq!(e.forward(&x).unwrap(), y);
        assert_ne!(
            e.forward(&x).unwrap(),
            y,
            "a second forward draws a new mask"
        );
        e.reseed(8);
        assert_ne!(e.forward(&x).unwrap(), y);
        assert!(Dropout::<f64>::new(1.5).is_err());
        let mut all = Dropout::<f64>::new(1.0).unwrap();
        assert!(all.forward(&x).unwrap().iter().all(|&v| v == 0.0));
    }
}
