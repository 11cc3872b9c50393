//! The `Layer` trait: the one contract every layer, model and user extension implements.

use crate::{Buffer, LayerError, LayerSpec, Param, Shape};
use nalgebra::DMatrix;
use retroprop_core::{Normalize, Scalar};

/// A differentiable map `y = f(x; θ)` with a hand-written backward pass.
///
/// Inputs have one column per example (`d_in × n`, column-major); images are columns in C×H×W
/// order.
///
/// # Contract
/// 1. [`forward`](Layer::forward)`(x)` returns `y` and keeps what `backward` needs.
/// 2. [`backward`](Layer::backward)`(dL/dy)` takes the gradient for the last `forward`, returns
///    `dL/dx`, and *adds* `dL/dθ` into each [`Param`]'s gradient (`+=`): calling it twice
///    accumulates twice; [`zero_grad`](Layer::zero_grad) resets.
/// 3. Shapes are checked on entry: wrong rows are [`LayerError::ShapeMismatch`], a gradient for
///    another batch size is [`LayerError::BatchMismatch`], never a panic.
/// 4. `backward` before any `forward` is [`LayerError::NoForwardCache`].
/// 5. [`infer`](Layer::infer) computes the same `y` as `forward` without touching the training
///    state (`&self`), so evaluation never disturbs a pending backward pass — except for layers
///    that are random in training by design ([`Dropout`](crate::Dropout): `infer` is its
///    expectation, the identity).
/// 6. [`backward_params`](Layer::backward_params) adds exactly the parameter gradients of
///    `backward`; it may only skip computing `dL/dx`.
///
/// A layer instance appears once in a network: its forward cache is its own, so the same
/// instance used twice would have its first cache overwritten before the backward pass (share
/// weights by copying them, not by reusing the instance).
///
/// The trait is object-safe: networks are built from `Box<dyn Layer<T>>`, and `Box<dyn
/// Layer<T>>` is itself a `Layer`. Layers are `Send + Sync`, so models move between threads and
/// evaluate in parallel.
///
/// `retroprop-gradcheck` proves an implementation against finite differences and checks every
/// clause of this contract in one call.
pub trait Layer<T: Scalar>: Send + Sync {
    /// The layer's type name, for summaries and errors: `"Dense"`, `"Conv2d"`, ….
    fn name(&self) -> &'static str;

    /// The architecture description stored in checkpoints: a registered kind, the layer's
    /// configuration, its children for a container. The default is the kind
    /// [`name`](Layer::name) with no configuration: a layer with hyperparameters returns
    /// `LayerSpec::new(MyConfig::KIND, &config)` and registers `MyConfig`
    /// ([`register`](crate::register)) so that checkpoints rebuild it.
    fn spec(&self) -> LayerSpec {
        LayerSpec::unit(self.name())
    }

    /// The shape of one output example for one input example of shape `input`, without running
    /// the layer (for summaries and for checking a network before training).
    ///
    /// # Errors
    /// [`LayerError::InputShape`] (or another variant) if the layer cannot take `input`.
    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError>;

    /// Training forward pass: `y = f(x; θ)`, keeping what `backward` needs.
    ///
    /// # Errors
    /// [`LayerError::ShapeMismatch`] if `x` has the wrong number of rows.
    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError>;

    /// [`Layer::forward`] on an input the caller no longer needs: a layer that keeps its input
    /// for the backward pass (dense, convolution) takes it instead of copying it. Containers
    /// pass each intermediate result this way. The default borrows and drops `x`.
    ///
    /// # Errors
    /// As [`Layer::forward`].
    fn forward_owned(&mut self, x: DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        self.forward(&x)
    }

    /// The fixed map this layer applies to each input value, when its forward pass is exactly
    /// [`Normalize::apply`] on every value and it has no parameters (the [`Standardize`]
    /// layer). A training loop may then apply it while it converts a batch and start the
    /// forward pass at the next layer (`Sequential::forward_normalized` in `retroprop-models`):
    /// one pass over the batch instead of two, the same bits. The default: `None`.
    ///
    /// [`Standardize`]: crate::Standardize
    fn input_normalization(&self) -> Option<Normalize<T>> {
        None
    }

    /// Backward pass: from `dL/dy` returns `dL/dx` and adds `dL/dθ` into the parameters.
    ///
    /// # Errors
    /// [`LayerError::NoForwardCache`], [`LayerError::ShapeMismatch`],
    /// [`LayerError::BatchMismatch`].
    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError>;

    /// Backward pass for the parameters only: adds `dL/dθ` like [`Layer::backward`] but need not
    /// compute `dL/dx` (the input of a network's first layer needs no gradient — PyTorch's
    /// `requires_grad = False`). The default calls `backward` and drops `dL/dx`; layers with a
    /// costly input gradient (dense, convolution) skip it.
    ///
    /// # Errors
    /// As [`Layer::backward`].
    fn backward_params(&mut self, grad_y: &DMatrix<T>) -> Result<(), LayerError> {
        self.backward(grad_y).map(drop)
    }

    /// Inference: the same `y` as [`Layer::forward`], leaving the layer untouched.
    ///
    /// # Errors
    /// As [`Layer::forward`].
    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError>;

    /// Calls `f(path, param)` for every parameter, in a fixed order. `path` names the parameter
    /// inside this layer (`"weight"`); containers prefix their children's paths (`"0.weight"`).
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        let _ = f;
    }

    /// Like [`Layer::visit_params`], with mutable access (optimizers, checkpoint loading).
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        let _ = f;
    }

    /// Calls `f(path, buffer)` for every buffer (state that is saved but not trained), in a
    /// fixed order, with paths as in [`Layer::visit_params`]. The default has none.
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Buffer<T>)) {
        let _ = f;
    }

    /// Like [`Layer::visit_buffers`], with mutable access (checkpoint loading).
    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Buffer<T>)) {
        let _ = f;
    }

    /// Sets every parameter gradient to zero.
    fn zero_grad(&mut self) {
        self.visit_params_mut(&mut |_, p| p.zero_grad());
    }

    /// Seeds the layer's randomness for the coming training step (a dropout mask): `fit` calls
    /// it before every step with a seed derived from its own seed, the epoch and the step, so
    /// runs repeat and resumed runs draw what they would have. Containers pass derived seeds
    /// to their children. The default does nothing.
    fn reseed(&mut self, seed: u64) {
        let _ = seed;
    }

    /// A copy of the value of the parameter at `path` (`"0.weight"`), `None` if there is none.
    fn param_value(&self, path: &str) -> Option<DMatrix<T>> {
        let mut found = None;
        self.visit_params(&mut |p, param| {
            if p == path {
                found = Some(param.value().clone());
            }
        });
        found
    }

    /// Replaces the value of the parameter at `path`.
    ///
    /// # Errors
    /// [`LayerError::UnknownPath`] (listing the paths there are) or [`LayerError::ParamShape`];
    /// the network is unchanged on error.
    fn set_param(&mut self, path: &str, value: DMatrix<T>) -> Result<(), LayerError> {
        let mut value = Some(value);
        let mut result = None;
        self.visit_params_mut(&mut |p, param| {
            if p == path
                && let Some(v) = value.take()
            {
                result = Some(param.set_value(v));
            }
        });
        result.unwrap_or_else(|| {
            let mut known = Vec::new();
            self.visit_params(&mut |p, _| known.push(p.to_string()));
            Err(LayerError::UnknownPath {
                what: "parameter",
                path: path.to_string(),
                known: known.join(", "),
            })
        })
    }

    /// Replaces the value of the buffer at `path` (`"0.mean"`).
    ///
    /// # Errors
    /// [`LayerError::UnknownPath`] or [`LayerError::ParamShape`]; unchanged on error.
    fn set_buffer(&mut self, path: &str, value: DMatrix<T>) -> Result<(), LayerError> {
        let mut value = Some(value);
        let mut result = None;
        self.visit_buffers_mut(&mut |p, buffer| {
            if p == path
                && let Some(v) = value.take()
            {
                result = Some(buffer.set_value(v));
            }
        });
        result.unwrap_or_else(|| {
            let mut known = Vec::new();
            self.visit_buffers(&mut |p, _| known.push(p.to_string()));
            Err(LayerError::UnknownPath {
                what: "buffer",
                path: path.to_string(),
                known: known.join(", "),
            })
        })
    }

    /// Number of buffer scalars (saved, not trained, not in `n_θ`).
    fn buffer_count(&self) -> usize {
        let mut n = 0;
        self.visit_buffers(&mut |_, b| n += b.len());
        n
    }

    /// Number of trainable scalars (`n_θ` in question 2i).
    fn param_count(&self) -> usize {
        let mut n = 0;
        self.visit_params(&mut |_, p| n += p.len());
        n
    }
}

impl<T: Scalar> Layer<T> for Box<dyn Layer<T>> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn spec(&self) -> LayerSpec {
        (**self).spec()
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        (**self).output_shape(input)
    }
    fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        (**self).forward(x)
    }
    fn forward_owned(&mut self, x: DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        (**self).forward_owned(x)
    }
    fn input_normalization(&self) -> Option<Normalize<T>> {
        (**self).input_normalization()
    }
    fn backward(&mut self, grad_y: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        (**self).backward(grad_y)
    }
    fn backward_params(&mut self, grad_y: &DMatrix<T>) -> Result<(), LayerError> {
        (**self).backward_params(grad_y)
    }
    fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> {
        (**self).infer(x)
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        (**self).visit_params(f);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        (**self).visit_params_mut(f);
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Buffer<T>)) {
        (**self).visit_buffers(f);
    }
    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Buffer<T>)) {
        (**self).visit_buffers_mut(f);
    }
    fn zero_grad(&mut self) {
        (**self).zero_grad();
    }
    fn reseed(&mut self, seed: u64) {
        (**self).reseed(seed);
    }
    fn param_count(&self) -> usize {
        (**self).param_count()
    }
}

/// Checks that `x` has `expected` rows.
pub(crate) fn check_rows<T: Scalar>(
    layer: &'static str,
    what: &'static str,
    x: &DMatrix<T>,
    expected: usize,
) -> Result<(), LayerError> {
    if x.nrows() == expected {
        Ok(())
    } else {
        Err(LayerError::ShapeMismatch {
            layer,
            what,
            expected,
            got: x.nrows(),
        })
    }
}

/// Checks a gradient against the last forward pass: `rows` rows and `batch` columns.
pub(crate) fn check_grad<T: Scalar>(
    layer: &'static str,
    grad_y: &DMatrix<T>,
    rows: usize,
    batch: usize,
) -> Result<(), LayerError> {
    check_rows(layer, "gradient", grad_y, rows)?;
    if grad_y.ncols() == batch {
        Ok(())
    } else {
        Err(LayerError::BatchMismatch {
            layer,
            expected: batch,
            got: grad_y.ncols(),
        })
    }
}
