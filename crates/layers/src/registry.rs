//! The registry of layer kinds: how a [`LayerSpec`] becomes a layer again.
//!
//! Every built-in layer of this crate is registered on first use; `retroprop-models` registers
//! `Sequential`; a downstream crate registers its own layers with one call to [`register`].
//! Building a network from its description ([`build`]) walks the tree with an explicit stack, so
//! a description read from a file never drives a recursion.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::sync::{OnceLock, PoisonError, RwLock};

use retroprop_core::Scalar;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Layer, LayerError, LayerSpec};

/// A layer's configuration: what, with a [`KIND`](LayerConfig::KIND) name, describes a layer
/// completely except for its parameter and buffer values, and builds it.
///
/// Implement it for your layer's hyperparameters, return `LayerSpec::new(KIND, &config)` from
/// [`Layer::spec`], and call [`register`] once (say at the start of `main`): checkpoints of
/// networks holding the layer then load with `retroprop_models::checkpoint::load`.
///
/// ```
/// use retroprop_layers::nalgebra::DMatrix;
/// use retroprop_layers::{Layer, LayerConfig, LayerError, LayerSpec, Scalar, Shape};
/// use serde::{Deserialize, Serialize};
///
/// /// `y = a·x` with a fixed `a`.
/// #[derive(Clone, Copy, Serialize, Deserialize)]
/// struct ScaleConfig { a: f64 }
///
/// struct Scale<T: Scalar> { a: T }
///
/// impl<T: Scalar> Layer<T> for Scale<T> {
///     fn name(&self) -> &'static str { "Scale" }
///     fn spec(&self) -> LayerSpec { LayerSpec::new(ScaleConfig::KIND, &ScaleConfig { a: self.a.to_f64() }) }
///     fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> { Ok(input) }
///     fn forward(&mut self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> { self.infer(x) }
///     fn backward(&mut self, g: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> { Ok(g * self.a) }
///     fn infer(&self, x: &DMatrix<T>) -> Result<DMatrix<T>, LayerError> { Ok(x * self.a) }
/// }
///
/// impl LayerConfig for ScaleConfig {
///     const KIND: &'static str = "Scale";
///     fn build<T: Scalar>(&self, _: Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError> {
///         Ok(Box::new(Scale { a: T::lit(self.a) }))
///     }
/// }
///
/// # fn main() -> Result<(), LayerError> {
/// retroprop_layers::register::<ScaleConfig>()?;
/// let spec = Scale { a: 2.5f64 }.spec();
/// let rebuilt = retroprop_layers::build::<f64>(&spec)?;
/// assert_eq!(rebuilt.infer(&DMatrix::from_element(1, 1, 2.0))?[0], 5.0);
/// # Ok(())
/// # }
/// ```
pub trait LayerConfig: Serialize + DeserializeOwned + 'static {
    /// The stable kind name stored in checkpoints. Choose it once: a file records it, so a
    /// renamed kind no longer loads old files. Prefix it with your crate's name to avoid
    /// collisions (`"mycrate.Gate"`).
    const KIND: &'static str;

    /// `true` for containers, which receive their children (built first) in
    /// [`LayerConfig::build`]; other layers get no children (a spec that has some is an error).
    const CONTAINER: bool = false;

    /// Builds the layer, with parameters to be loaded (any initial values: a checkpoint
    /// overwrites them).
    ///
    /// # Errors
    /// The layer constructor's error if the configuration is invalid (a corrupt file).
    fn build<T: Scalar>(
        &self,
        children: Vec<Box<dyn Layer<T>>>,
    ) -> Result<Box<dyn Layer<T>>, LayerError>;

    /// The shapes `(rows, columns)` of the parameters the layer will have, in visiting order,
    /// computed without building it, so that a checkpoint's sizes are checked before anything
    /// is allocated. `None` (the default) if unknown: the layer is then built and its
    /// parameters compared with the file afterwards.
    fn param_shapes(&self) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
        None
    }
}

type Builder<T> = fn(&LayerSpec, Vec<Box<dyn Layer<T>>>) -> Result<Box<dyn Layer<T>>, LayerError>;
type Shapes = fn(&LayerSpec) -> Option<Result<Vec<(usize, usize)>, LayerError>>;

/// What the registry holds for one kind.
pub(crate) struct Entry {
    config_type: TypeId,
    config_name: &'static str,
    container: bool,
    f32: Builder<f32>,
    f64: Builder<f64>,
    shapes: Shapes,
}

fn build_with<C: LayerConfig, T: Scalar>(
    spec: &LayerSpec,
    children: Vec<Box<dyn Layer<T>>>,
) -> Result<Box<dyn Layer<T>>, LayerError> {
    spec.config::<C>()?.build(children)
}

fn shapes_of<C: LayerConfig>(spec: &LayerSpec) -> Option<Result<Vec<(usize, usize)>, LayerError>> {
    match spec.config::<C>() {
        Ok(config) => config.param_shapes(),
        Err(e) => Some(Err(e)),
    }
}

impl Entry {
    fn of<C: LayerConfig>() -> Self {
        Self {
            config_type: TypeId::of::<C>(),
            config_name: std::any::type_name::<C>(),
            container: C::CONTAINER,
            f32: build_with::<C, f32>,
            f64: build_with::<C, f64>,
            shapes: shapes_of::<C>,
        }
    }

    /// The builder for `T` (`Scalar` is sealed: `T` is `f32` or `f64`).
    fn builder<T: Scalar>(&self) -> Builder<T> {
        let f32: &dyn Any = &self.f32;
        let f64: &dyn Any = &self.f64;
        *f32.downcast_ref::<Builder<T>>()
            .or_else(|| f64.downcast_ref::<Builder<T>>())
            .expect("Scalar is implemented for f32 and f64 only")
    }
}

fn registry() -> &'static RwLock<BTreeMap<&'static str, Entry>> {
    static REGISTRY: OnceLock<RwLock<BTreeMap<&'static str, Entry>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut map = BTreeMap::new();
        for entry in crate::builtin::entries() {
            map.insert(entry.0, entry.1);
        }
        RwLock::new(map)
    })
}

/// A built-in kind and its entry, for `crate::builtin`.
pub(crate) fn entry<C: LayerConfig>() -> (&'static str, Entry) {
    (C::KIND, Entry::of::<C>())
}

/// Registers the layer kind `C::KIND`, built from configurations `C`. Registering the same
/// configuration type again does nothing, so every user of a layer may call it.
///
/// # Errors
/// [`LayerError::KindTaken`] if another configuration type already holds the kind (two
/// crates chose the same name).
pub fn register<C: LayerConfig>() -> Result<(), LayerError> {
    let mut map = registry().write().unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = map.get(C::KIND) {
        if existing.config_type == TypeId::of::<C>() {
            return Ok(());
        }
        return Err(LayerError::KindTaken {
            kind: C::KIND,
            by: existing.config_name,
        });
    }
    map.insert(C::KIND, Entry::of::<C>());
    Ok(())
}

/// The registered kinds, sorted.
pub fn registered_kinds() -> Vec<&'static str> {
    let map = registry().read().unwrap_or_else(PoisonError::into_inner);
    map.keys().copied().collect()
}

/// The error for a kind missing from `map` (the registry, already locked by the caller).
fn unknown(map: &BTreeMap<&'static str, Entry>, kind: &str) -> LayerError {
    LayerError::UnknownKind {
        kind: kind.to_string(),
        known: map.keys().copied().collect::<Vec<_>>().join(", "),
    }
}

/// Builds the layer a spec describes, children first, with parameters to be loaded.
///
/// # Errors
/// [`LayerError::UnknownKind`] for a kind nobody registered, [`LayerError::Config`] for a
/// configuration that does not decode or children given to a layer that takes none, or the
/// layer constructor's error.
pub fn build<T: Scalar>(spec: &LayerSpec) -> Result<Box<dyn Layer<T>>, LayerError> {
    // Post-order with an explicit stack: each frame collects its built children.
    struct Frame<'a, T: Scalar> {
        spec: &'a LayerSpec,
        next: usize,
        built: Vec<Box<dyn Layer<T>>>,
    }
    let map = registry().read().unwrap_or_else(PoisonError::into_inner);
    let frame = |spec| Frame {
        spec,
        next: 0,
        built: Vec::new(),
    };
    let mut stack = vec![frame(spec)];
    loop {
        let top = stack.last_mut().expect("the root frame is popped last");
        if let Some(child) = top.spec.children.get(top.next) {
            top.next += 1;
            stack.push(frame(child));
            continue;
        }
        let done = stack.pop().expect("checked above");
        let entry = map
            .get(done.spec.kind.as_str())
            .ok_or_else(|| unknown(&map, &done.spec.kind))?;
        if !entry.container && !done.spec.children.is_empty() {
            return Err(LayerError::Config {
                kind: done.spec.kind.clone(),
                detail: format!(
                    "it takes no children, the description gives it {}",
                    done.spec.children.len()
                ),
            });
        }
        let layer = (entry.builder::<T>())(done.spec, done.built)?;
        match stack.last_mut() {
            Some(parent) => parent.built.push(layer),
            None => return Ok(layer),
        }
    }
}

/// The shapes of every parameter a spec implies, in visiting order, without building anything
/// (each kind's [`LayerConfig::param_shapes`]). `None` if some kind does not know its shapes.
///
/// # Errors
/// As [`build`], for a kind that is not registered or a configuration that does not decode.
pub fn param_shapes(spec: &LayerSpec) -> Result<Option<Vec<(usize, usize)>>, LayerError> {
    let map = registry().read().unwrap_or_else(PoisonError::into_inner);
    let mut out = Vec::new();
    for (_, node) in spec.preorder() {
        let entry = map
            .get(node.kind.as_str())
            .ok_or_else(|| unknown(&map, &node.kind))?;
        match (entry.shapes)(node) {
            // a container's own parameters could come before or after its children's
            Some(Ok(shapes)) if entry.container && !shapes.is_empty() => return Ok(None),
            Some(shapes) => out.extend(shapes?),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}
