//! Batch normalisation (PyTorch's `nn.BatchNorm1d` and `nn.BatchNorm2d`).

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use serde::{Deserialize, Serialize};

use crate::layer::check_grad;
use crate::param::ParamKind;
use crate::{Buffer, Layer, LayerConfig, LayerError, LayerSpec, Param, Shape};

const NAME_1D: &str = "BatchNorm1d";
const NAME_2D: &str = "BatchNorm2d";

/// The hyperparameters of a batch normalisation, PyTorch's arguments and defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNormConfig {
    /// `C`: features of a [`Shape::Flat`] input (1d) or channels of a [`Shape::Image`] (2d).
    pub num_features: usize,
    /// `ε` added to the variance, default `1e-5`.
    pub eps: f64,
    /// Weight of the new batch in the running statistics, default `Some(0.1)`; `None` is
    /// PyTorch's `momentum=None`, the cumulative average `1/num_batches_tracked`.
    pub momentum: Option<f64>,
    /// Learned `γ` (`weight`, from 1) and `β` (`bias`, from 0), default `true`.
    pub affine: bool,
    /// Keep running statistics as buffers and use them in inference (default `true`); without,
    /// inference normalises with the batch's own statistics, like training.
    pub track_running_stats: bool,
}

impl BatchNormConfig {
    /// `C` features or channels with PyTorch's defaults (`ε = 1e−5`, momentum 0.1, affine,
    /// running statistics tracked).
    pub const fn new(num_features: usize) -> Self {
        Self {
            num_features,
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
        }
    }

    /// With this `ε`.
    pub const fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// With this momentum (`None`: the cumulative average).
    pub const fn momentum(mut self, momentum: Option<f64>) -> Self {
        self.momentum = momentum;
        self
    }

    /// With or without the learned `γ`, `β`.
    pub const fn affine(mut self, affine: bool) -> Self {
        self.affine = affine;
        self
    }

    /// With or without running statistics.
    pub const fn track_running_stats(mut self, track: bool) -> Self {
        self.track_running_stats = track;
        self
    }

    fn param_shapes(&self) -> Vec<(usize, usize)> {
        if self.affine {
            vec![(self.num_features, 1); 2]
        } else {
            Vec::new()
        }
    }
}

/// The configuration of a [`BatchNorm`] over feature vectors (kind `"BatchNorm1d"`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchNorm1dConfig(pub BatchNormConfig);

/// The configuration of a [`BatchNorm`] over image channels (kind `"BatchNorm2d"`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchNorm2dConfig(pub BatchNormConfig);

impl LayerConfig for BatchNorm1dConfig {
    const KIND: &'static str = NAME_1D;
    fn build<T: Scalar>(&self, _: Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError> {
        Ok(Box::new(BatchNorm::<T>::new_1d(self.0)?))
    }
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(Ok(self.0.param_shapes()))
    }
}

impl LayerConfig for BatchNorm2dConfig {
    const KIND: &'static str = NAME_2D;
    fn build<T: Scalar>(&self, _: Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError> {
        Ok(Box::new(BatchNorm::<T>::new_2d(self.0)?))
    }
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(Ok(self.0.param_shapes()))
    }
}

/// The running statistics: buffers `running_mean`, `running_var` (unbiased) and
/// `num_batches_tracked`, as PyTorch's `state_dict`.
#[derive(Clone, Debug)]
struct Running<T: Scalar> {
    mean: Buffer<T>,
    var: Buffer<T>,
    batches: Buffer<T>,
}

/// What the backward pass needs: `x̂`, `1/√(σ² + ε)` per channel, values per channel per example.
#[derive(Clone, Debug)]
struct Cache<T: Scalar> {
    x_hat: DMatrix<T>,
    inv_std: Vec<T>,
    spatial: usize,
}

/// Batch normalisation: each feature (1d) or channel (2d) normalised by the batch's mean and
/// variance in training, by running estimates in inference, then scaled and shifted.
///
/// ```text
/// per channel k, over its m = n·H·W values xᵢ in the batch (H·W = 1 for 1d):
///   μ = (1/m) Σᵢ xᵢ      σ² = (1/m) Σᵢ (xᵢ − μ)²      x̂ᵢ = (xᵢ − μ)/√(σ² + ε)
///   yᵢ = γ x̂ᵢ + β
/// running (training only):  μ̄ ← (1 − α) μ̄ + α μ,   σ̄² ← (1 − α) σ̄² + α · m/(m − 1) · σ²
///   (α the momentum 0.1, or 1/t after t batches with momentum None; σ̄² is unbiased, as PyTorch)
/// inference:  yᵢ = γ (xᵢ − μ̄)/√(σ̄² + ε) + β
/// ```
///
/// **Backward**, in the homework's style. With `gᵢ = ∂L/∂yᵢ`:
///
/// ```text
/// ∂L/∂β = Σᵢ gᵢ          ∂L/∂γ = Σᵢ gᵢ x̂ᵢ          ∂L/∂x̂ᵢ = γ gᵢ
/// each xⱼ moves every x̂ᵢ through μ and σ²  (∂μ/∂xⱼ = 1/m,  ∂σ²/∂xⱼ = 2(xⱼ − μ)/m):
///   ∂x̂ᵢ/∂xⱼ = (δᵢⱼ − 1/m − x̂ᵢ x̂ⱼ / m) / √(σ² + ε)
/// ∂L/∂xⱼ = Σᵢ γ gᵢ ∂x̂ᵢ/∂xⱼ = γ / (m √(σ² + ε)) · (m gⱼ − Σᵢ gᵢ − x̂ⱼ Σᵢ gᵢ x̂ᵢ)
/// ```
///
/// Like the softmax of 1j the Jacobian is a diagonal minus low-rank terms, applied without
/// building it. It couples the examples of a batch, so the `Layer` contract's "a batch's
/// gradient is the sum of its examples' gradients" and "`infer` equals `forward`" do not hold
/// for this layer; its gradient is checked by finite differences of the whole batch's objective
/// (`retroprop_gradcheck::check_layer`). Full-batch training in chunks normalises each chunk
/// with its own statistics (as gradient accumulation does in PyTorch). Training needs more
/// than one value per channel ([`LayerError::BatchTooSmall`]).
#[derive(Clone, Debug)]
pub struct BatchNorm<T: Scalar> {
    name: &'static str,
    config: BatchNormConfig,
    weight: Option<Param<T>>,
    bias: Option<Param<T>>,
    running: Option<Running<T>>,
    cache: Option<Cache<T>>,
}

impl<T: Scalar> BatchNorm<T> {
    /// `nn.BatchNorm1d(C)`: normalises each of the `C` features of [`Shape::Flat`] inputs.
    ///
    /// # Errors
    /// [`LayerError::ZeroSize`] for no feature, [`LayerError::InvalidValue`] for `ε` not
    /// finite and positive or a momentum outside `[0, 1]`.
    pub fn new_1d(config: BatchNormConfig) -> Result<Self, LayerError> {
        Self::with_name(NAME_1D, config)
    }

    /// `nn.BatchNorm2d(C)`: normalises each of the `C` channels of [`Shape::Image`] inputs.
    ///
    /// # Errors
    /// As [`BatchNorm::new_1d`].
    pub fn new_2d(config: BatchNormConfig) -> Result<Self, LayerError> {
        Self::with_name(NAME_2D, config)
    }

    fn with_name(name: &'static str, config: BatchNormConfig) -> Result<Self, LayerError> {
        let c = config.num_features;
        if c == 0 {
            return Err(LayerError::ZeroSize {
                layer: name,
                what: "num_features",
            });
        }
        if !(config.eps.is_finite() && config.eps > 0.0) {
            return Err(LayerError::InvalidValue {
                layer: name,
                what: "eps",
                value: config.eps,
                requirement: "finite and > 0",
            });
        }
        if let Some(m) = config.momentum
            && !(0.0..=1.0).contains(&m)
        {
            return Err(LayerError::InvalidValue {
                layer: name,
                what: "momentum",
                value: m,
                requirement: "in [0, 1]",
            });
        }
        let column = |v: f64| DMatrix::from_element(c, 1, T::lit(v));
        Ok(Self {
            name,
            config,
            weight: config
                .affine
                .then(|| Param::new("weight", ParamKind::Weight, column(1.0))),
            bias: config
                .affine
                .then(|| Param::new("bias", ParamKind::Bias, column(0.0))),
            running: config.track_running_stats.then(|| Running {
                mean: Buffer::new("running_mean", column(0.0)),
                var: Buffer::new("running_var", column(1.0)),
                batches: Buffer::new("num_batches_tracked", DMatrix::zeros(1, 1)),
            }),
            cache: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> BatchNormConfig {
        self.config
    }

    /// The running mean `μ̄` per channel (`None` without running statistics).
    pub fn running_mean(&self) -> Option<&DMatrix<T>> {
        self.running.as_ref().map(|r| r.mean.value())
    }

    /// The running (unbiased) variance `σ̄²` per channel.
    pub fn running_var(&self) -> Option<&DMatrix<T>> {
        self.running.as_ref().map(|r| r.var.value())
    }

    /// Values per channel in one example (1 for 1d, `H·W` for 2d), checking the rows.
    fn spatial(&self, x: &DMatrix<T>) -> Result<usize, LayerError> {
        let c = self.config.num_features;
        let rows = x.nrows();
        let ok = if self.name == NAME_1D {
            rows == c
        } else {
            rows > 0 && rows.is_multiple_of(c)
        };
        if ok {
            Ok(rows / c)
        } else {
            Err(LayerError::ShapeMismatch {
                layer: self.name,
                what: "input",
                expected: c * (rows / c).max(1),
                got: rows,
            })
        }
    }

    /// The batch's mean and biased variance per channel (two passes: no cancellation).
    fn batch_stats(&self, x: &DMatrix<T>, spatial: usize) -> Result<(Vec<T>, Vec<T>), LayerError> {
        let c = self.config.num_features;
        let m = x.ncols() * spatial;
        if m < 2 {
            return Err(LayerError::BatchTooSmall {
                layer: self.name,
                values: m,
                batch: x.ncols(),
                per_example: spatial,
            });
        }
        let inv_m = T::one() / T::lit(m as f64);
        let mut mean = vec![T::zero(); c];
        for col in x.as_slice().chunks_exact(x.nrows()) {
            for (k, block) in col.chunks_exact(spatial).enumerate() {
                mean[k] += block.iter().fold(T::zero(), |s, &v| s + v);
            }
        }
        mean.iter_mut().for_each(|v| *v *= inv_m);
        let mut var = vec![T::zero(); c];
        for col in x.as_slice().chunks_exact(x.nrows()) {
            for (k, block) in col.chunks_exact(spatial).enumerate() {
                let mu = mean[k];
                var[k] += block
                    .iter()
                    .fold(T::zero(), |s, &v| s + (v - mu) * (v - mu));
            }
        }
        var.iter_mut().for_each(|v| *v *= inv_m);
        Ok((mean, var))
    }

    fn gamma(&self, k: usize) -> T {
        self.weight.as_ref().map_or(T::one(), |w| w.value()[k])
    }

    /// `x ← x̂ = (x − μ) s` per channel, in place, with `s = 1/√(σ² + ε)`.
    fn standardise(x: &mut DMatrix<T>, spatial: usize, mean: &[T], inv_std: &[T]) {
        let rows = x.nrows();
        if rows == 0 {
            return;
        }
        for col in x.as_mut_slice().chunks_exact_mut(rows) {
            for ((block, &mu), &s) in col.chunks_exact_mut(spatial).zip(mean).zip(inv_std) {
                block.iter_mut().for_each(|v| *v = (*v - mu) * s);
            }
        }
    }

    /// `y = γ x̂ + β` per channel (a copy of `x̂` without the affine map).
    fn scale_shift(&self, x_hat: &DMatrix<T>, spatial: usize) -> DMatrix<T> {
        let (Some(w), Some(b)) = (&self.weight, &self.bias) else {
            return x_hat.clone();
        };
        let (w, b) = (w.value().as_slice(), b.value().as_slice());
        let rows = x_hat.nrows();
        let mut data = Vec::with_capacity(x_hat.len());
        for col in x_hat.as_slice().chunks_exact(rows.max(1)) {
            for ((block, &g), &beta) in col.chunks_exact(spatial).zip(w).zip(b) {
                data.extend(block.iter().map(|&v| g * v + beta));
            }
        }
        DMatrix::from_vec(rows, x_hat.ncols(), data)
    }

    fn inv_std(&self, var: &[T]) -> Vec<T> {
        let eps = T::lit(self.config.eps);
        var.iter().map(|&v| T::one() / (v + eps).sqrt()).collect()
    }

    fn update_running(&mut self, mean: &[T], var: &[T], m: usize) {
        let Some(r) = self.running.as_mut() else {
            return;
        };
        let t = r.batches.value()[0] + T::one();
        r.batches.as_mut_slice()[0] = t;
        let alpha = match self.config.momentum {
            Some(a) => T::lit(a),
            None => T::one() / t,
        };
        let unbias = T::lit(m as f64 / (m - 1) as f64);
        for (rm, &mu) in r.mean.as_mut_slice().iter_mut().zip(mean) {
            *rm = (T::one() - alpha) * *rm + alpha * mu;
        }
        for (rv, &v) in r.var.as_mut_slice().iter_mut().zip(var) {
            *rv = (T::one() - alpha) * *rv + alpha * v * unbias;
        }
    }
}

impl<T: Scalar> Layer<T> for BatchNorm<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn spec(&self) -> LayerSpec {
        if self.name == NAME_1D {
            LayerSpec::new(BatchNorm1dConfig::KIND, &BatchNorm1dConfig(self.config))
        } else {
            LayerSpec::new(BatchNorm2dConfig::KIND, &BatchNorm2dConfig(self.config))
        }
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        let c = self.config.num_features;
        let fits = match input {
            Shape::Flat(n) => self.name == NAME_1D && n == c,
            Shape::Image { c: ch, .. } => self.name == NAME_2D && ch == c,
        };
        if fits {
            Ok(input)
        } else {
            let expected = if self.name == NAME_1D {
                Shape::Flat(c)
            } else {
                match input {
                    Shape::Image { h, w, .. } => Shape::image(c, h, w),
                    Shape::Flat(_) => Shape::image(c, 1, 1),
                }
            };
            Err(LayerError::InputShape {
                layer: self.name,
                expected,
                got: input,
            })
        }
    }

    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        self.spatial(x)?;
        self.forward_owned(x.clone())
    }

    /// Standardises the input in place into the `x̂` the backward pass keeps: one allocation
    /// (the output) per call.
    fn forward_owned(&mut self, mut x: DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let spatial = self.spatial(&x)?;
        let (mean, var) = self.batch_stats(&x, spatial)?;
        let inv_std = self.inv_std(&var);
        Self::standardise(&mut x, spatial, &mean, &inv_std);
        let y = self.scale_shift(&x, spatial);
        self.update_running(&mean, &var, x.ncols() * spatial);
        self.cache = Some(Cache {
            x_hat: x,
            inv_std,
            spatial,
        });
        Ok(y)
    }

    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let cache = self
            .cache
            .as_ref()
            .ok_or(LayerError::NoForwardCache { layer: self.name })?;
        let (x_hat, spatial) = (&cache.x_hat, cache.spatial);
        check_grad(self.name, grad_y, x_hat.nrows(), x_hat.ncols())?;
        let c = self.config.num_features;
        let rows = x_hat.nrows();
        // Σᵢ gᵢ and Σᵢ gᵢ x̂ᵢ per channel
        let (mut sum_g, mut sum_gx) = (vec![T::zero(); c], vec![T::zero(); c]);
        for (gcol, hcol) in grad_y
            .as_slice()
            .chunks_exact(rows)
            .zip(x_hat.as_slice().chunks_exact(rows))
        {
            for (k, (gb, hb)) in gcol
                .chunks_exact(spatial)
                .zip(hcol.chunks_exact(spatial))
                .enumerate()
            {
                for (&g, &h) in gb.iter().zip(hb) {
                    sum_g[k] += g;
                    sum_gx[k] += g * h;
                }
            }
        }
        let m = T::lit((x_hat.ncols() * spatial) as f64);
        let scale: Vec<T> = (0..c)
            .map(|k| self.gamma(k) * cache.inv_std[k] / m)
            .collect();
        let mut data = Vec::with_capacity(grad_y.len());
        for (gcol, hcol) in grad_y
            .as_slice()
            .chunks_exact(rows)
            .zip(x_hat.as_slice().chunks_exact(rows))
        {
            for (k, (gb, hb)) in gcol
                .chunks_exact(spatial)
                .zip(hcol.chunks_exact(spatial))
                .enumerate()
            {
                let (s, sg, sgx) = (scale[k], sum_g[k], sum_gx[k]);
                data.extend(gb.iter().zip(hb).map(|(&g, &h)| s * (m * g - sg - h * sgx)));
            }
        }
        let dx = DMatrix::from_vec(rows, grad_y.ncols(), data);
        if let Some(w) = self.weight.as_mut() {
            for (g, s) in w.grad_mut().iter_mut().zip(&sum_gx) {
                *g += *s;
            }
        }
        if let Some(b) = self.bias.as_mut() {
            for (g, s) in b.grad_mut().iter_mut().zip(&sum_g) {
                *g += *s;
            }
        }
        Ok(dx)
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let spatial = self.spatial(x)?;
        let (mean, var) = match &self.running {
            Some(r) => (
                r.mean.value().as_slice().to_vec(),
                r.var.value().as_slice().to_vec(),
            ),
            None => self.batch_stats(x, spatial)?,
        };
        let inv_std = self.inv_std(&var);
        let mut x_hat = x.clone();
        Self::standardise(&mut x_hat, spatial, &mean, &inv_std);
        Ok(self.scale_shift(&x_hat, spatial))
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

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Buffer<T>)) {
        if let Some(r) = &self.running {
            for b in [&r.mean, &r.var, &r.batches] {
                f(b.name(), b);
            }
        }
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Buffer<T>)) {
        if let Some(r) = &mut self.running {
            for b in [&mut r.mean, &mut r.var, &mut r.batches] {
                f(b.name(), b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_each_channel_and_tracks_unbiased_running_statistics() {
        // 2 channels of 2×1 pixels, batch of 2: channel 0 holds 1, 2, 3, 4; channel 1 holds 5s
        let x = DMatrix::from_column_slice(4, 2, &[1.0, 2.0, 5.0, 5.0, 3.0, 4.0, 5.0, 5.0]);
        let mut bn = BatchNorm::<f64>::new_2d(BatchNormConfig::new(2)).unwrap();
        let y = bn.forward(&x).unwrap();
        // μ₀ = 2.5, σ₀² = 1.25
        let s = 1.0 / (1.25f64 + 1e-5).sqrt();
        let expect = [-1.5 * s, -0.5 * s, 0.0, 0.0, 0.5 * s, 1.5 * s, 0.0, 0.0];
        for (a, b) in y.iter().zip(expect) {
            assert!((a - b).abs() < 1e-15, "{a} {b}");
        }
        // running: 0.9·0 + 0.1·2.5; 0.9·1 + 0.1·(1.25·4/3)
        let rm = bn.running_mean().unwrap();
        let rv = bn.running_var().unwrap();
        assert!((rm[0] - 0.25).abs() < 1e-16 && (rm[1] - 0.5).abs() < 1e-16);
        assert!((rv[0] - (0.9 + 0.1 * 1.25 * 4.0 / 3.0)).abs() < 1e-15);
        assert!((rv[1] - 0.9).abs() < 1e-16);
        let mut count = 0.0;
        bn.visit_buffers(&mut |p, b| {
            if p == "num_batches_tracked" {
                count = b.value()[0];
            }
        });
        assert_eq!(count, 1.0);
        // inference uses the running statistics
        let inferred = bn.infer(&x).unwrap();
        assert!((inferred[0] - (1.0 - 0.25) / (rv[0] + 1e-5).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn refuses_one_value_per_channel_and_bad_settings() {
        let mut bn = BatchNorm::<f64>::new_1d(BatchNormConfig::new(3)).unwrap();
        let err = bn.forward(&DMatrix::zeros(3, 1)).unwrap_err();
        assert!(
            matches!(err, LayerError::BatchTooSmall { values: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("larger batch"), "{err}");
        assert!(matches!(
            bn.forward(&DMatrix::zeros(4, 2)),
            Err(LayerError::ShapeMismatch { .. })
        ));
        assert!(BatchNorm::<f64>::new_1d(BatchNormConfig::new(0)).is_err());
        assert!(BatchNorm::<f64>::new_1d(BatchNormConfig::new(2).eps(0.0)).is_err());
        assert!(BatchNorm::<f64>::new_1d(BatchNormConfig::new(2).momentum(Some(1.5))).is_err());
        // a constant channel is finite: σ² = 0, x̂ = 0
        let y = bn.forward(&DMatrix::from_element(3, 4, 7.0)).unwrap();
        assert!(y.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn cumulative_average_without_momentum() {
        let config = BatchNormConfig::new(1).momentum(None);
        let mut bn = BatchNorm::<f64>::new_1d(config).unwrap();
        bn.forward(&DMatrix::from_row_slice(1, 2, &[0.0, 2.0]))
            .unwrap();
        bn.forward(&DMatrix::from_row_slice(1, 2, &[4.0, 6.0]))
            .unwrap();
        // the mean of the batch means 1 and 5
        assert!((bn.running_mean().unwrap()[0] - 3.0).abs() < 1e-15);
    }
}
