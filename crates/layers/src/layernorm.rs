//! Layer normalisation (PyTorch's `nn.LayerNorm` over a whole example).

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use serde::{Deserialize, Serialize};

use crate::layer::{check_grad, check_rows};
use crate::param::ParamKind;
use crate::{Layer, LayerConfig, LayerError, LayerSpec, Param, Shape};

const NAME: &str = "LayerNorm";

/// The configuration of a [`LayerNorm`] (kind `"LayerNorm"`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerNormConfig {
    /// `d`, the values of one example (PyTorch's `normalized_shape`, flattened: `[C, H, W]`
    /// for an image).
    pub features: usize,
    /// `ε` added to the variance, default `1e-5`.
    pub eps: f64,
    /// Learned per-value `γ` (`weight`, from 1), default `true`.
    pub elementwise_affine: bool,
    /// Learned per-value `β` (`bias`, from 0) with the affine map, default `true`.
    pub bias: bool,
}

impl LayerNormConfig {
    /// Over `d` values, with PyTorch's defaults.
    pub const fn new(features: usize) -> Self {
        Self {
            features,
            eps: 1e-5,
            elementwise_affine: true,
            bias: true,
        }
    }

    /// With this `ε`.
    pub const fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// With or without the learned `γ` (and `β`).
    pub const fn elementwise_affine(mut self, affine: bool) -> Self {
        self.elementwise_affine = affine;
        self
    }

    /// With or without the learned `β`.
    pub const fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
}

impl LayerConfig for LayerNormConfig {
    const KIND: &'static str = NAME;
    fn build<T: Scalar>(&self, _: Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError> {
        Ok(Box::new(LayerNorm::<T>::new(*self)?))
    }
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        let d = (self.features, 1);
        Some(Ok(match (self.elementwise_affine, self.bias) {
            (false, _) => vec![],
            (true, false) => vec![d],
            (true, true) => vec![d, d],
        }))
    }
}

/// Layer normalisation: each example (column) normalised by its own mean and variance, then
/// scaled and shifted value by value.
///
/// ```text
/// per example, over its d values xᵢ:
///   μ = (1/d) Σᵢ xᵢ      σ² = (1/d) Σᵢ (xᵢ − μ)²      x̂ᵢ = (xᵢ − μ)/√(σ² + ε)
///   yᵢ = γᵢ x̂ᵢ + βᵢ
/// backward, gᵢ = ∂L/∂yᵢ, ĝᵢ = γᵢ gᵢ = ∂L/∂x̂ᵢ:
///   ∂L/∂βᵢ = Σ_examples gᵢ      ∂L/∂γᵢ = Σ_examples gᵢ x̂ᵢ
///   ∂L/∂xⱼ = 1/(d √(σ² + ε)) · (d ĝⱼ − Σᵢ ĝᵢ − x̂ⱼ Σᵢ ĝᵢ x̂ᵢ)
/// ```
///
/// The input gradient is batch normalisation's (see [`BatchNorm`](crate::BatchNorm)) with the
/// roles of examples and features exchanged: the statistics are per example, so unlike batch
/// normalisation the layer treats examples independently and honours the whole `Layer`
/// contract, and `infer` equals `forward`.
#[derive(Clone, Debug)]
pub struct LayerNorm<T: Scalar> {
    config: LayerNormConfig,
    weight: Option<Param<T>>,
    bias: Option<Param<T>>,
    cache: Option<Normalised<T>>,
}

/// `x̂` and `1/√(σ² + ε)` per example.
type Normalised<T> = (DMatrix<T>, Vec<T>);

impl<T: Scalar> LayerNorm<T> {
    /// Layer normalisation over `config.features` values.
    ///
    /// # Errors
    /// [`LayerError::ZeroSize`] for no value, [`LayerError::InvalidValue`] for `ε` not finite
    /// and positive.
    pub fn new(config: LayerNormConfig) -> Result<Self, LayerError> {
        let d = config.features;
        if d == 0 {
            return Err(LayerError::ZeroSize {
                layer: NAME,
                what: "features",
            });
        }
        if !(config.eps.is_finite() && config.eps > 0.0) {
            return Err(LayerError::InvalidValue {
                layer: NAME,
                what: "eps",
                value: config.eps,
                requirement: "finite and > 0",
            });
        }
        let column = |v: f64| DMatrix::from_element(d, 1, T::lit(v));
        let affine = config.elementwise_affine;
        Ok(Self {
            config,
            weight: affine.then(|| Param::new("weight", ParamKind::Weight, column(1.0))),
            bias: (affine && config.bias).then(|| Param::new("bias", ParamKind::Bias, column(0.0))),
            cache: None,
        })
    }

    /// `y`, and what the backward pass keeps: `x̂` and `1/√(σ² + ε)` per example.
    fn apply(&self, x: &DMatrix<T>) -> Result<(DMatrix<T>, Normalised<T>), LayerError> {
        let d = self.config.features;
        check_rows(NAME, "input", x, d)?;
        let inv_d = T::one() / T::lit(d as f64);
        let eps = T::lit(self.config.eps);
        let mut x_hat = x.clone();
        let mut inv_std = Vec::with_capacity(x.ncols());
        for col in x_hat.as_mut_slice().chunks_exact_mut(d) {
            let mu = col.iter().fold(T::zero(), |s, &v| s + v) * inv_d;
            let var = col.iter().fold(T::zero(), |s, &v| s + (v - mu) * (v - mu)) * inv_d;
            let s = T::one() / (var + eps).sqrt();
            col.iter_mut().for_each(|v| *v = (*v - mu) * s);
            inv_std.push(s);
        }
        let mut y = x_hat.clone();
        if let Some(w) = &self.weight {
            let w = w.value().as_slice();
            let b = self.bias.as_ref().map(|b| b.value().as_slice());
            for col in y.as_mut_slice().chunks_exact_mut(d) {
                for (i, v) in col.iter_mut().enumerate() {
                    *v = w[i] * *v + b.map_or(T::zero(), |b| b[i]);
                }
            }
        }
        Ok((y, (x_hat, inv_std)))
    }
}

impl<T: Scalar> Layer<T> for LayerNorm<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::new(LayerNormConfig::KIND, &self.config)
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        if input.len() == self.config.features {
            Ok(input)
        } else {
            Err(LayerError::InputShape {
                layer: NAME,
                expected: Shape::Flat(self.config.features),
                got: input,
            })
        }
    }

    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let (y, normalised) = self.apply(x)?;
        self.cache = Some(normalised);
        Ok(y)
    }

    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let (x_hat, inv_std) = self
            .cache
            .as_ref()
            .ok_or(LayerError::NoForwardCache { layer: NAME })?;
        let d = self.config.features;
        check_grad(NAME, grad_y, d, x_hat.ncols())?;
        let dn = T::lit(d as f64);
        let gamma = self.weight.as_ref().map(|w| w.value().as_slice());
        let mut dx = grad_y.clone();
        for ((dcol, hcol), &s) in dx
            .as_mut_slice()
            .chunks_exact_mut(d)
            .zip(x_hat.as_slice().chunks_exact(d))
            .zip(inv_std)
        {
            // ĝ = γ ⊙ g, in place
            if let Some(w) = gamma {
                dcol.iter_mut().zip(w).for_each(|(g, &w)| *g *= w);
            }
            let (sum, sum_x) = dcol
                .iter()
                .zip(hcol)
                .fold((T::zero(), T::zero()), |(a, b), (&g, &h)| {
                    (a + g, b + g * h)
                });
            let scale = s / dn;
            for (g, &h) in dcol.iter_mut().zip(hcol) {
                *g = scale * (dn * *g - sum - h * sum_x);
            }
        }
        if let Some(w) = self.weight.as_mut() {
            let mut gw = w.grad_mut();
            for (gcol, hcol) in grad_y
                .as_slice()
                .chunks_exact(d)
                .zip(x_hat.as_slice().chunks_exact(d))
            {
                for (i, (&g, &h)) in gcol.iter().zip(hcol).enumerate() {
                    gw[i] += g * h;
                }
            }
        }
        if let Some(b) = self.bias.as_mut() {
            let mut gb = b.grad_mut();
            for gcol in grad_y.as_slice().chunks_exact(d) {
                for (i, &g) in gcol.iter().enumerate() {
                    gb[i] += g;
                }
            }
        }
        Ok(dx)
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        Ok(self.apply(x)?.0)
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        for p in [&self.weight, &self.bias].into_iter().flatten() {
            f(p.name(), p);
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        for p in [&mut self.weight, &mut self.bias].into_iter().flatten() {
            f(p.name(), p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_each_example() {
        let mut ln = LayerNorm::<f64>::new(LayerNormConfig::new(4)).unwrap();
        let x = DMatrix::from_column_slice(4, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0]);
        let y = ln.forward(&x).unwrap();
        let s = 1.0 / (1.25f64 + 1e-5).sqrt();
        for (a, b) in y
            .iter()
            .zip([-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s, 0.0, 0.0, 0.0, 0.0])
        {
            assert!((a - b).abs() < 1e-15, "{a} {b}");
        }
        assert_eq!(ln.infer(&x).unwrap(), y);
        assert_eq!(ln.param_count(), 8);
        let no_bias = LayerNorm::<f64>::new(LayerNormConfig::new(4).bias(false)).unwrap();
        assert_eq!(no_bias.param_count(), 4);
        assert!(LayerNorm::<f64>::new(LayerNormConfig::new(0)).is_err());
        assert!(matches!(
            ln.forward(&DMatrix::zeros(3, 1)),
            Err(LayerError::ShapeMismatch { .. })
        ));
    }
}
