//! The residual container: `y = f(x) + x`, or `f(x) + P(x)` with a projection (ResNet's block).

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use serde::{Deserialize, Serialize};

use crate::layer::check_grad;
use crate::{Buffer, Layer, LayerConfig, LayerError, LayerSpec, Param, Shape};

const NAME: &str = "Residual";

/// The configuration of a [`Residual`]: none (its body and shortcut are the children of its
/// [`LayerSpec`], in that order; kind `"Residual"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidualConfig;

impl LayerConfig for ResidualConfig {
    const KIND: &'static str = NAME;
    const CONTAINER: bool = true;

    fn build<T: Scalar>(
        &self,
        children: Vec<Box<dyn Layer<T>>>,
    ) -> Result<Box<dyn Layer<T>>, LayerError> {
        let n = children.len();
        let mut children = children.into_iter();
        match (children.next(), children.next()) {
            (Some(body), None) => Ok(Box::new(Residual::new(body))),
            (Some(body), Some(shortcut)) if n == 2 => {
                Ok(Box::new(Residual::with_projection(body, shortcut)))
            }
            _ => Err(LayerError::Config {
                kind: NAME.to_string(),
                detail: format!(
                    "a residual block has a body and at most a projection, got {n} children"
                ),
            }),
        }
    }

    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(Ok(Vec::new()))
    }
}

/// A skip connection around a body `f`: `y = f(x) + x` (identity shortcut), or
/// `y = f(x) + P(x)` when a projection `P` (a 1×1 convolution, a dense layer, …) makes the
/// shapes agree — ResNet's basic block put in a `Sequential` as one layer.
///
/// ```text
/// forward   y = f(x) + s(x),   s = identity or P
/// backward  ∂L/∂x = J_f(x)ᵀ g + J_s(x)ᵀ g      (g = ∂L/∂y reaches both branches unchanged;
///           for the identity J_sᵀ g = g: the gradient flows past f, why deep ResNets train)
/// ```
///
/// Parameters and buffers are named `body.<path>` and `shortcut.<path>`. The body and the
/// shortcut take the same input shape and must produce the same output shape, checked by
/// [`Layer::output_shape`] (so a `Sequential` refuses a block whose branches disagree).
pub struct Residual<T: Scalar> {
    body: Box<dyn Layer<T>>,
    shortcut: Option<Box<dyn Layer<T>>>,
    last: Option<(usize, usize)>,
}

impl<T: Scalar> Residual<T> {
    /// `y = body(x) + x`.
    pub fn new(body: impl Layer<T> + 'static) -> Self {
        Self {
            body: Box::new(body),
            shortcut: None,
            last: None,
        }
    }

    /// `y = body(x) + projection(x)`.
    pub fn with_projection(
        body: impl Layer<T> + 'static,
        projection: impl Layer<T> + 'static,
    ) -> Self {
        Self {
            body: Box::new(body),
            shortcut: Some(Box::new(projection)),
            last: None,
        }
    }

    /// The body `f`.
    pub fn body(&self) -> &dyn Layer<T> {
        self.body.as_ref()
    }

    /// The projection `P`, `None` for the identity shortcut.
    pub fn projection(&self) -> Option<&dyn Layer<T>> {
        self.shortcut.as_deref()
    }

    fn add_shortcut(&self, mut y: DMatrix<T>, s: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        check_grad(NAME, s, y.nrows(), y.ncols()).map_err(|_| LayerError::ShapeMismatch {
            layer: NAME,
            what: "shortcut",
            expected: y.nrows(),
            got: s.nrows(),
        })?;
        y.as_mut_slice()
            .iter_mut()
            .zip(s.as_slice())
            .for_each(|(a, &b)| *a += b);
        Ok(y)
    }
}

impl<T: Scalar> Layer<T> for Residual<T> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn spec(&self) -> LayerSpec {
        let mut children = vec![self.body.spec()];
        children.extend(self.shortcut.iter().map(|s| s.spec()));
        LayerSpec::new(ResidualConfig::KIND, &ResidualConfig).with_children(children)
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        let out = self.body.output_shape(input)?;
        let skip = match &self.shortcut {
            Some(p) => p.output_shape(input)?,
            None => input,
        };
        if skip == out {
            Ok(out)
        } else {
            Err(LayerError::InputShape {
                layer: NAME,
                expected: out,
                got: skip,
            })
        }
    }

    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let y = self.body.forward(x)?;
        let y = match &mut self.shortcut {
            Some(p) => {
                let s = p.forward(x)?;
                self.add_shortcut(y, &s)?
            }
            None => self.add_shortcut(y, x)?,
        };
        self.last = Some(y.shape());
        Ok(y)
    }

    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let (rows, n) = self
            .last
            .ok_or(LayerError::NoForwardCache { layer: NAME })?;
        check_grad(NAME, grad_y, rows, n)?;
        let dx = self.body.backward(grad_y)?;
        match &mut self.shortcut {
            Some(p) => {
                let ds = p.backward(grad_y)?;
                self.add_shortcut(dx, &ds)
            }
            None => self.add_shortcut(dx, grad_y),
        }
    }

    fn backward_params(&mut self, grad_y: &DMatrix<T>) -> Result<(), LayerError> {
        let (rows, n) = self
            .last
            .ok_or(LayerError::NoForwardCache { layer: NAME })?;
        check_grad(NAME, grad_y, rows, n)?;
        self.body.backward_params(grad_y)?;
        match &mut self.shortcut {
            Some(p) => p.backward_params(grad_y),
            None => Ok(()),
        }
    }

    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        let y = self.body.infer(x)?;
        match &self.shortcut {
            Some(p) => self.add_shortcut(y, &p.infer(x)?),
            None => self.add_shortcut(y, x),
        }
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        self.body
            .visit_params(&mut |path, p| f(&format!("body.{path}"), p));
        if let Some(s) = &self.shortcut {
            s.visit_params(&mut |path, p| f(&format!("shortcut.{path}"), p));
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        self.body
            .visit_params_mut(&mut |path, p| f(&format!("body.{path}"), p));
        if let Some(s) = &mut self.shortcut {
            s.visit_params_mut(&mut |path, p| f(&format!("shortcut.{path}"), p));
        }
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Buffer<T>)) {
        self.body
            .visit_buffers(&mut |path, b| f(&format!("body.{path}"), b));
        if let Some(s) = &self.shortcut {
            s.visit_buffers(&mut |path, b| f(&format!("shortcut.{path}"), b));
        }
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Buffer<T>)) {
        self.body
            .visit_buffers_mut(&mut |path, b| f(&format!("body.{path}"), b));
        if let Some(s) = &mut self.shortcut {
            s.visit_buffers_mut(&mut |path, b| f(&format!("shortcut.{path}"), b));
        }
    }

    /// The body gets a seed derived from `seed` and 1, the shortcut from `seed` and 2.
    fn reseed(&mut self, seed: u64) {
        let derive = |i: u64| seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i);
        self.body.reseed(derive(1));
        if let Some(s) = &mut self.shortcut {
            s.reseed(derive(2));
        }
    }

    fn zero_grad(&mut self) {
        self.body.zero_grad();
        if let Some(s) = &mut self.shortcut {
            s.zero_grad();
        }
    }
}

impl<T: Scalar> std::fmt::Debug for Residual<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(NAME)
            .field("body", &self.body.name())
            .field("shortcut", &self.shortcut.as_ref().map(|s| s.name()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dense, Init, Relu};

    #[test]
    fn adds_the_shortcut_and_routes_the_gradient_to_both_branches() {
        let mut block = Residual::new(Relu::<f64>::new());
        let x = DMatrix::from_column_slice(3, 1, &[-1.0, 0.5, 2.0]);
        assert_eq!(block.forward(&x).unwrap().as_slice(), &[-1.0, 1.0, 4.0]);
        let g = DMatrix::from_element(3, 1, 1.0);
        assert_eq!(block.backward(&g).unwrap().as_slice(), &[1.0, 2.0, 2.0]);

        let body = Dense::<f64>::new(3, 2, Init::XavierUniform { seed: 1 }).unwrap();
        let proj = Dense::<f64>::new(3, 2, Init::XavierUniform { seed: 2 }).unwrap();
        let block = Residual::with_projection(body, proj);
        let mut paths = Vec::new();
        block.visit_params(&mut |p, _| paths.push(p.to_string()));
        assert_eq!(
            paths,
            [
                "body.weight",
                "body.bias",
                "shortcut.weight",
                "shortcut.bias"
            ]
        );
        assert_eq!(block.output_shape(Shape::Flat(3)).unwrap(), Shape::Flat(2));
        // no projection: the body must keep the shape
        let bad = Residual::new(Dense::<f64>::new(3, 2, Init::Zeros).unwrap());
        assert!(matches!(
            bad.output_shape(Shape::Flat(3)),
            Err(LayerError::InputShape { .. })
        ));
    }
}
