//! The `Layer` trait: the one contract every layer, model and user extension implements.

use nalgebra::DMatrix;
use retroprop_activations::Scalar;
use serde::{Deserialize, Serialize};

use crate::{Conv2dConfig, LayerError, MaxPool2dConfig, Param, Shape};

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
///    state (`&self`), so evaluation never disturbs a pending backward pass.
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

    /// The architecture description stored in checkpoints. Layers outside this crate keep the
    /// default, [`LayerSpec::Custom`] with their name.
    fn spec(&self) -> LayerSpec {
        LayerSpec::Custom {
            name: self.name().to_string(),
        }
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

    /// Sets every parameter gradient to zero.
    fn zero_grad(&mut self) {
        self.visit_params_mut(&mut |_, p| p.zero_grad());
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
    fn zero_grad(&mut self) {
        (**self).zero_grad();
    }
    fn param_count(&self) -> usize {
        (**self).param_count()
    }
}

/// The architecture of a layer, without its parameter values: what a checkpoint stores to
/// rebuild or to check a network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LayerSpec {
    /// [`crate::Dense`] from `d_in` to `d_out` features.
    Dense {
        /// Input features.
        d_in: usize,
        /// Output features.
        d_out: usize,
    },
    /// [`crate::Softplus`].
    Softplus,
    /// [`crate::Sigmoid`].
    Sigmoid,
    /// [`crate::Tanh`].
    Tanh,
    /// [`crate::Relu`].
    Relu,
    /// [`crate::Softmax`].
    Softmax,
    /// [`crate::Conv2d`].
    Conv2d(Conv2dConfig),
    /// [`crate::MaxPool2d`].
    MaxPool2d(MaxPool2dConfig),
    /// [`crate::Flatten`].
    Flatten,
    /// [`crate::Standardize`] with this mean and standard deviation.
    Standardize {
        /// Subtracted from every input.
        mean: f64,
        /// Divides every centred input.
        std: f64,
    },
    /// A container of layers applied in order (`retroprop-models`' `Sequential`).
    Sequential {
        /// Shape of one input example.
        input: Shape,
        /// The layers, first to last.
        layers: Vec<LayerSpec>,
    },
    /// A layer defined outside retroprop, known by its name.
    Custom {
        /// The layer's [`Layer::name`].
        name: String,
    },
}

impl LayerSpec {
    /// The shapes `(rows, columns)` of the parameters the described layer has, in visiting
    /// order, computed without building it (checked arithmetic: a corrupt description is an
    /// error, not an overflow). `None` for [`LayerSpec::Sequential`] (its children have them)
    /// and [`LayerSpec::Custom`] (unknown).
    ///
    /// # Errors
    /// The error the layer's constructor would return for these numbers.
    pub fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        Some(match self {
            LayerSpec::Dense { d_in, d_out } => {
                crate::shape::checked_product("Dense", &[*d_in, *d_out])
                    .map(|_| vec![(*d_out, *d_in), (*d_out, 1)])
            }
            LayerSpec::Conv2d(c) => c.output_size().map(|_| {
                let taps = c.in_channels * c.kernel.h * c.kernel.w;
                let mut shapes = vec![(c.out_channels, taps)];
                if c.bias == crate::Bias::Learned {
                    shapes.push((c.out_channels, 1));
                }
                shapes
            }),
            LayerSpec::MaxPool2d(c) => c.output_size().map(|_| Vec::new()),
            LayerSpec::Softplus
            | LayerSpec::Sigmoid
            | LayerSpec::Tanh
            | LayerSpec::Relu
            | LayerSpec::Softmax
            | LayerSpec::Flatten
            | LayerSpec::Standardize { .. } => Ok(Vec::new()),
            LayerSpec::Sequential { .. } | LayerSpec::Custom { .. } => return None,
        })
    }

    /// Builds the layer this spec describes, with zero parameters (to be loaded).
    ///
    /// Returns `None` for specs this crate cannot build: [`LayerSpec::Sequential`] (built by
    /// `retroprop-models`) and [`LayerSpec::Custom`].
    ///
    /// # Errors
    /// The layer constructor's error if the spec's numbers are invalid (a corrupt file).
    pub fn build<T: Scalar>(&self) -> Option<Result<Box<dyn Layer<T>>, LayerError>> {
        use crate::{
            Dense, Flatten, Init, MaxPool2d, Relu, Sigmoid, Softmax, Softplus, Standardize, Tanh,
        };
        fn boxed<T: Scalar, L: Layer<T> + 'static>(
            r: Result<L, LayerError>,
        ) -> Result<Box<dyn Layer<T>>, LayerError> {
            r.map(|l| Box::new(l) as Box<dyn Layer<T>>)
        }
        Some(match self {
            LayerSpec::Dense { d_in, d_out } => boxed(Dense::new(*d_in, *d_out, Init::Zeros)),
            LayerSpec::Softplus => Ok(Box::new(Softplus::new())),
            LayerSpec::Sigmoid => Ok(Box::new(Sigmoid::new())),
            LayerSpec::Tanh => Ok(Box::new(Tanh::new())),
            LayerSpec::Relu => Ok(Box::new(Relu::new())),
            LayerSpec::Softmax => Ok(Box::new(Softmax::new())),
            LayerSpec::Conv2d(c) => boxed(crate::Conv2d::new(*c, Init::Zeros)),
            LayerSpec::MaxPool2d(c) => boxed(MaxPool2d::new(*c)),
            LayerSpec::Flatten => Ok(Box::new(Flatten::new())),
            LayerSpec::Standardize { mean, std } => boxed(Standardize::new(*mean, *std)),
            LayerSpec::Sequential { .. } | LayerSpec::Custom { .. } => return None,
        })
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
