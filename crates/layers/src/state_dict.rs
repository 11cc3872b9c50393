//! A network's tensors by path, PyTorch's `state_dict`: read them all, or load them all after
//! checking every name and shape (nothing is written unless everything fits).

use std::collections::BTreeMap;

use nalgebra::DMatrix;
use retroprop_core::Scalar;

use crate::{Layer, LayerError};

/// Every parameter and buffer of a network by path (`"0.weight"`, `"0.mean"`), as PyTorch's
/// `state_dict`.
pub type StateDict<T> = BTreeMap<String, DMatrix<T>>;

/// Copies every parameter and buffer of `layer`.
pub fn state_dict<T: Scalar>(layer: &dyn Layer<T>) -> StateDict<T> {
    let mut out = StateDict::new();
    layer.visit_params(&mut |path, p| {
        out.insert(path.to_string(), p.value().clone());
    });
    layer.visit_buffers(&mut |path, b| {
        out.insert(path.to_string(), b.value().clone());
    });
    out
}

/// Sets every parameter and buffer of `layer` from `dict` (PyTorch's `load_state_dict` with
/// `strict=True`): every tensor of the network must be in `dict` with its shape, and `dict` may
/// hold nothing else. Everything is checked first; on error nothing has been written.
///
/// ```
/// use retroprop_layers::nalgebra::DMatrix;
/// use retroprop_layers::{Dense, Init, Layer, LayerError, load_state_dict, state_dict};
///
/// # fn main() -> Result<(), LayerError> {
/// let mut dense = Dense::<f64>::new(2, 1, Init::Zeros)?;
/// let mut dict = state_dict(&dense);
/// dict.insert("weight".into(), DMatrix::from_row_slice(1, 2, &[0.5, -1.0]));
/// load_state_dict(&mut dense, &dict)?;
/// assert_eq!(dense.weight().value()[(0, 1)], -1.0);
/// dict.remove("bias");
/// dict.insert("scale".into(), DMatrix::zeros(1, 1));
/// let err = load_state_dict(&mut dense, &dict).unwrap_err();
/// assert!(err.to_string().contains("missing: bias; unexpected: scale"), "{err}");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`LayerError::StateDict`] listing every missing tensor, every unexpected one and every shape
/// that differs, together.
pub fn load_state_dict<T: Scalar>(
    layer: &mut dyn Layer<T>,
    dict: &StateDict<T>,
) -> Result<(), LayerError> {
    let mut expected = BTreeMap::new();
    layer.visit_params(&mut |path, p| {
        expected.insert(path.to_string(), p.shape());
    });
    layer.visit_buffers(&mut |path, b| {
        expected.insert(path.to_string(), b.shape());
    });
    let missing: Vec<String> = expected
        .keys()
        .filter(|k| !dict.contains_key(*k))
        .cloned()
        .collect();
    let unexpected: Vec<String> = dict
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .cloned()
        .collect();
    let shapes: Vec<String> = expected
        .iter()
        .filter_map(|(path, &(r, c))| {
            let got = dict.get(path)?.shape();
            (got != (r, c)).then(|| format!("`{path}` is {r}×{c}, given {}×{}", got.0, got.1))
        })
        .collect();
    if !(missing.is_empty() && unexpected.is_empty() && shapes.is_empty()) {
        return Err(LayerError::StateDict {
            missing,
            unexpected,
            shapes,
        });
    }
    layer.visit_params_mut(&mut |path, p| {
        p.value_mut().copy_from(&dict[path]);
    });
    layer.visit_buffers_mut(&mut |path, b| {
        b.as_mut_slice().copy_from_slice(dict[path].as_slice());
    });
    Ok(())
}
