//! `Sequential`: layers applied in order, itself a layer.

use nalgebra::DMatrix;
use retroprop_activations::slice;
use retroprop_core::{Normalize, Scalar};
use retroprop_layers::{Buffer, Layer, LayerConfig, LayerError, LayerSpec, Param, Shape};
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// An ordered stack of layers that is itself a [`Layer`], so networks compose and nest.
///
/// The input shape of one example is fixed at creation; every [`Sequential::push`] checks that
/// the new layer accepts the previous output (`Layer::output_shape`), so a network that builds
/// is a network whose shapes chain. Forward runs the layers in order, backward in reverse;
/// parameters are visited in order with paths `"<index>.<name>"` (`"0.weight"`), as PyTorch's
/// `state_dict`.
///
/// ```
/// use nalgebra::DMatrix;
/// use retroprop_layers::{Dense, Init, Layer, Shape, Softplus};
/// use retroprop_models::{ModelError, Sequential};
///
/// # fn main() -> Result<(), ModelError> {
/// let mut net = Sequential::<f64>::new(Shape::Flat(4))
///     .push(Dense::new(4, 8, Init::XavierUniform { seed: 1 })?)?
///     .push(Softplus::new())?
///     .push(Dense::new(8, 3, Init::XavierUniform { seed: 2 })?)?;
/// assert_eq!(net.output_shape(), Shape::Flat(3));
/// let y = net.forward(&DMatrix::from_element(4, 5, 0.1))?;
/// assert_eq!(y.shape(), (3, 5));
/// let dx = net.backward(&DMatrix::from_element(3, 5, 1.0))?;
/// assert_eq!(dx.shape(), (4, 5));
/// assert_eq!(net.param_count(), 4 * 8 + 8 + 8 * 3 + 3);
/// # Ok(())
/// # }
/// ```
pub struct Sequential<T: Scalar> {
    input: Shape,
    layers: Vec<Box<dyn Layer<T>>>,
    /// Output shape of each layer.
    shapes: Vec<Shape>,
}

impl<T: Scalar> Sequential<T> {
    /// An empty network taking examples of shape `input` (the identity until layers are added).
    pub fn new(input: Shape) -> Self {
        Self {
            input,
            layers: Vec::new(),
            shapes: Vec::new(),
        }
    }

    /// Appends a layer, builder style.
    ///
    /// # Errors
    /// [`ModelError::Incompatible`] if the layer cannot take the current output shape.
    pub fn push(mut self, layer: impl Layer<T> + 'static) -> Result<Self, ModelError> {
        self.add(Box::new(layer))?;
        Ok(self)
    }

    /// Appends a boxed layer.
    ///
    /// # Errors
    /// [`ModelError::Incompatible`] if the layer cannot take the current output shape.
    pub fn add(&mut self, layer: Box<dyn Layer<T>>) -> Result<(), ModelError> {
        let input = self.output_shape();
        let out = layer
            .output_shape(input)
            .map_err(|source| ModelError::Incompatible {
                index: self.layers.len(),
                layer: layer.name(),
                input,
                source: Box::new(source),
            })?;
        self.layers.push(layer);
        self.shapes.push(out);
        Ok(())
    }

    /// The shape of one input example.
    pub fn input_shape(&self) -> Shape {
        self.input
    }

    /// The first parameter entry that is NaN or infinite, as `(path, flat index, value)`;
    /// `None` if every parameter is finite. A model that diverged has one; use it before
    /// trusting a model from elsewhere.
    pub fn first_non_finite_param(&self) -> Option<(String, usize, f64)> {
        crate::guard::first_non_finite(self)
    }

    /// The shape of one output example.
    pub fn output_shape(&self) -> Shape {
        self.shapes.last().copied().unwrap_or(self.input)
    }

    /// The layers, first to last.
    pub fn layers(&self) -> &[Box<dyn Layer<T>>] {
        &self.layers
    }

    /// The layers, mutable (their shapes cannot change through `Layer`).
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer<T>>] {
        &mut self.layers
    }

    /// The normalisation the first layer applies to every input value, if it is a fixed one
    /// ([`Layer::input_normalization`]: a `Standardize` layer): a data loader may apply it while
    /// it converts a batch, and [`Sequential::forward_normalized`] then skips the layer.
    pub fn leading_normalization(&self) -> Option<Normalize<T>> {
        self.layers.first()?.input_normalization()
    }

    /// Training forward pass of a batch already put through
    /// [`Sequential::leading_normalization`] (by the loader, while converting it): the first
    /// layer is skipped and `x` goes to the second without a copy. The same bits as
    /// [`Layer::forward`] on the batch before normalisation; `backward_params` follows it as it
    /// follows `forward` (the skipped layer has no parameters).
    ///
    /// ```
    /// use nalgebra::DMatrix;
    /// use retroprop_layers::{Dense, Layer, Shape, Standardize};
    /// use retroprop_models::Sequential;
    ///
    /// let mut net = Sequential::<f64>::new(Shape::Flat(2));
    /// net.add(Box::new(Standardize::new(0.5, 0.25)?))?;
    /// net.add(Box::new(Dense::from_params(
    ///     DMatrix::from_row_slice(1, 2, &[1.0, -1.0]),
    ///     DMatrix::zeros(1, 1),
    /// )?))?;
    /// let raw = DMatrix::from_column_slice(2, 1, &[1.0, 0.0]);
    /// let normalize = net.leading_normalization().expect("Standardize comes first");
    /// let loaded = raw.map(|v| normalize.apply(v));
    /// assert_eq!(net.forward_normalized(loaded)?, net.forward(&raw)?); // (2 − (−2)) = 4
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`LayerError::NotNormalizing`] if the first layer is not an input normalisation; the
    /// layers' errors otherwise.
    pub fn forward_normalized(&mut self, x: DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        match self.layers.split_first_mut() {
            Some((first, rest)) if first.input_normalization().is_some() => {
                let mut y = x;
                for layer in rest {
                    y = layer.forward_owned(y)?;
                }
                Ok(y)
            }
            first => Err(LayerError::NotNormalizing {
                layer: "Sequential",
                first: first.map_or("none", |(first, _)| first.name()),
            }),
        }
    }

    /// The output shape of each layer, first to last.
    pub fn shapes(&self) -> &[Shape] {
        &self.shapes
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// `true` if the network has no layer.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Class probabilities: the softmax of each output column (for networks that end in
    /// logits, like the builders of this crate).
    ///
    /// # Errors
    /// As [`Layer::infer`].
    pub fn predict_proba(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, ModelError> {
        let mut p = self.infer(x)?;
        let rows = p.nrows();
        if rows > 0 {
            for col in p.as_mut_slice().chunks_exact_mut(rows) {
                // the probabilities only: no log-sum-exp is needed here
                slice::softmax_in_place_split(col);
            }
        }
        Ok(p)
    }

    /// Rebuilds a network from its description (any registered kinds), with parameters to be
    /// loaded.
    ///
    /// # Errors
    /// [`ModelError::Layer`] for a kind that is not registered or an invalid description,
    /// [`ModelError::CannotBuild`] if the description is not a `Sequential`.
    pub fn from_spec(spec: &LayerSpec) -> Result<Self, ModelError> {
        register();
        if spec.kind != SequentialConfig::KIND {
            return Err(ModelError::CannotBuild {
                layer: spec.describe(),
            });
        }
        let config: SequentialConfig = spec.config()?;
        let mut net = Self::new(config.input);
        for child in &spec.children {
            net.add(retroprop_layers::build::<T>(child)?)?;
        }
        Ok(net)
    }
}

/// The configuration of a [`Sequential`]: the shape of one input example (its layers are the
/// children of its [`LayerSpec`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequentialConfig {
    /// Shape of one input example.
    pub input: Shape,
}

impl LayerConfig for SequentialConfig {
    const KIND: &'static str = "Sequential";
    const CONTAINER: bool = true;

    fn build<T: Scalar>(
        &self,
        children: Vec<Box<dyn Layer<T>>>,
    ) -> Result<Box<dyn Layer<T>>, LayerError> {
        let mut net = Sequential::new(self.input);
        for (index, layer) in children.into_iter().enumerate() {
            net.add(layer).map_err(|e| LayerError::Config {
                kind: Self::KIND.to_string(),
                detail: format!("layer {index} does not fit: {e}"),
            })?;
        }
        Ok(Box::new(net))
    }

    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(Ok(Vec::new()))
    }
}

/// Registers the kinds of this crate (`Sequential`) in `retroprop-layers`' registry; called by
/// everything here that builds from a description, and harmless to call again.
pub fn register() {
    retroprop_layers::register::<SequentialConfig>()
        .expect("no other type registers the kind `Sequential`");
}

impl<T: Scalar> Layer<T> for Sequential<T> {
    fn name(&self) -> &'static str {
        "Sequential"
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::new(
            SequentialConfig::KIND,
            &SequentialConfig { input: self.input },
        )
        .with_children(self.layers.iter().map(|l| l.spec()).collect())
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        if input == self.input {
            Ok(Sequential::output_shape(self))
        } else {
            Err(LayerError::InputShape {
                layer: "Sequential",
                expected: self.input,
                got: input,
            })
        }
    }

    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let mut layers = self.layers.iter_mut();
        let Some(first) = layers.next() else {
            return Ok(x.clone());
        };
        let mut y = first.forward(x)?;
        for layer in layers {
            y = layer.forward_owned(y)?;
        }
        Ok(y)
    }

    fn forward_owned(&mut self, x: DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let mut y = x;
        for layer in &mut self.layers {
            y = layer.forward_owned(y)?;
        }
        Ok(y)
    }

    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let mut g = grad_y.clone();
        for layer in self.layers.iter_mut().rev() {
            g = layer.backward(&g)?;
        }
        Ok(g)
    }

    /// Backward down to the first layer that has parameters, which skips its input gradient;
    /// the parameter-free layers before it (a `Standardize`, say) need no gradient at all.
    fn backward_params(&mut self, grad_y: &DMatrix<T>) -> Result<(), LayerError> {
        let Some(first) = self.layers.iter().position(|l| l.param_count() > 0) else {
            return Ok(());
        };
        let (head, rest) = self.layers[first..].split_at_mut(1);
        let mut g: Option<DMatrix<T>> = None;
        for layer in rest.iter_mut().rev() {
            g = Some(layer.backward(g.as_ref().unwrap_or(grad_y))?);
        }
        head[0].backward_params(g.as_ref().unwrap_or(grad_y))
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let mut layers = self.layers.iter();
        let Some(first) = layers.next() else {
            return Ok(x.clone());
        };
        let mut y = first.infer(x)?;
        for layer in layers {
            y = layer.infer(&y)?;
        }
        Ok(y)
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit_params(&mut |path, p| f(&format!("{i}.{path}"), p));
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.visit_params_mut(&mut |path, p| f(&format!("{i}.{path}"), p));
        }
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Buffer<T>)) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit_buffers(&mut |path, b| f(&format!("{i}.{path}"), b));
        }
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Buffer<T>)) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.visit_buffers_mut(&mut |path, b| f(&format!("{i}.{path}"), b));
        }
    }

    /// Each layer `i` gets a seed derived from `seed` and `i`.
    fn reseed(&mut self, seed: u64) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.reseed(
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(i as u64 + 1),
            );
        }
    }

    fn zero_grad(&mut self) {
        for layer in &mut self.layers {
            layer.zero_grad();
        }
    }
}

impl<T: Scalar> std::fmt::Debug for Sequential<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequential")
            .field("input", &self.input)
            .field(
                "layers",
                &self.layers.iter().map(|l| l.name()).collect::<Vec<_>>(),
            )
            .field("shapes", &self.shapes)
            .finish()
    }
}
