//! Weights that travel: export a network to [safetensors] in PyTorch's names and layouts, and
//! import one trained in PyTorch.
//!
//! ```text
//! export   every parameter (and buffer PyTorch has a module for) as a tensor named as in the
//!          equivalent nn.Sequential (`0.weight`, `3.bias`; see `names`), row-major in PyTorch's
//!          layout: Linear [out, in], Conv2d [C_out, C_in, kH, kW], biases [n]; F32 or F64 as
//!          the network's scalar. __metadata__: "format": "pt", "retroprop.architecture" (the
//!          network's LayerSpec as JSON), "retroprop.scalar", and "retroprop.buffers" (JSON:
//!          the buffers of layers PyTorch lacks, e.g. Standardize's mean and std).
//! import   with retroprop metadata: the network is rebuilt from it (the layer registry) and
//!          loaded. Without (a file written by PyTorch): into a network the caller built.
//!          Each tensor is matched by name (a `module.` prefix removed) and checked for shape
//!          and dtype; F32 and F64 load into either scalar type; missing and unexpected tensors
//!          are one error listing all of them; nothing is written unless everything fits.
//! ```
//!
//! The file's structure is checked by the `safetensors` crate (header size, JSON, offsets that
//! tile the data, overflow, lengths), after this module caps the header at [`MAX_HEADER_BYTES`];
//! an architecture from the metadata is built only if the parameters it implies are no more
//! than the values the file holds.
//!
//! [safetensors]: https://github.com/huggingface/safetensors

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use nalgebra::DMatrix;
use retroprop_core::Scalar;
use retroprop_layers::{Layer, LayerSpec, load_state_dict, state_dict};
use safetensors::tensor::{Dtype, SafeTensors, View};

use crate::Sequential;

mod error;
mod names;

pub use error::TensorsError;

/// The largest header accepted (a network of thousands of tensors needs well under this).
pub const MAX_HEADER_BYTES: u64 = 16 << 20;

/// Metadata key of the network's architecture (a `LayerSpec` as JSON).
pub const ARCHITECTURE_KEY: &str = "retroprop.architecture";
/// Metadata key of the buffers PyTorch has no module for (JSON: path → values).
pub const BUFFERS_KEY: &str = "retroprop.buffers";
/// Metadata key of the scalar type the network was exported from.
pub const SCALAR_KEY: &str = "retroprop.scalar";
/// Metadata key of the checksum of an export: 64-bit FNV-1a (hex) of the data section, then
/// the architecture and buffers metadata. safetensors has no checksum of its own; with this a
/// changed byte of a retroprop export is detected (a file written by PyTorch has none).
pub const CHECKSUM_KEY: &str = "retroprop.checksum";

/// The checksum of an export's data section and retroprop metadata.
fn checksum(data: &[u8], metadata: &HashMap<String, String>) -> String {
    let mut all = data.to_vec();
    for key in [ARCHITECTURE_KEY, BUFFERS_KEY] {
        all.extend_from_slice(metadata.get(key).map_or(&b""[..], |v| v.as_bytes()));
        all.push(0);
    }
    format!("{:016x}", crate::checkpoint::fnv1a(&all))
}

/// The data section of safetensors bytes (after the 8-byte length and the header).
fn data_section(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .get(..8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    usize::try_from(n)
        .ok()
        .and_then(|n| bytes.get(8 + n..))
        .unwrap_or(&[])
}

/// `true` if `bytes` start like a safetensors file (an 8-byte header length, then the JSON
/// header's `{`), as opposed to a retroprop checkpoint (which starts with `RETROPRP`).
pub fn is_safetensors(bytes: &[u8]) -> bool {
    let Some(len) = bytes.get(..8) else {
        return false;
    };
    let n = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    n >= 2 && n <= (bytes.len() as u64).saturating_sub(8) && bytes[8] == b'{'
}

/// A tensor to write: its dtype, PyTorch shape and little-endian bytes.
struct Owned {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Owned {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn dtype_of<T: Scalar>() -> Dtype {
    if T::BYTES == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

/// Every tensor of the network with its `(rows, cols)`, in visiting order.
fn tensor_shapes<T: Scalar>(model: &dyn Layer<T>) -> Vec<(String, (usize, usize))> {
    let mut out = Vec::new();
    model.visit_params(&mut |p, t| out.push((p.to_string(), t.shape())));
    model.visit_buffers(&mut |p, b| out.push((p.to_string(), b.shape())));
    out
}

/// The network as safetensors bytes (see the module documentation for names and layouts).
///
/// # Errors
/// [`TensorsError::Format`] if the `safetensors` crate refuses to serialise (it does not for
/// a valid network).
pub fn to_bytes<T: Scalar>(model: &Sequential<T>) -> Result<Vec<u8>, TensorsError> {
    let spec = model.spec();
    let dict = state_dict(model);
    let mut tensors = BTreeMap::new();
    let mut extra: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for place in names::placements(&spec, &tensor_shapes(model)) {
        let m = &dict[&place.ours];
        match place.torch {
            Some(name) if place.shape.is_empty() && place.ours.ends_with(names::COUNT) => {
                // PyTorch's int64 count, so that load_state_dict finds the dtype it has
                let owned = Owned {
                    dtype: Dtype::I64,
                    shape: place.shape,
                    data: (m[0].to_f64() as i64).to_le_bytes().to_vec(),
                };
                tensors.insert(name, owned);
            }
            Some(name) => {
                let mut data = Vec::with_capacity(m.len() * T::BYTES);
                // row-major: PyTorch's layout of the same matrix
                for i in 0..m.nrows() {
                    for j in 0..m.ncols() {
                        m[(i, j)].write_le(&mut data);
                    }
                }
                let owned = Owned {
                    dtype: dtype_of::<T>(),
                    shape: place.shape,
                    data,
                };
                tensors.insert(name, owned);
            }
            None => {
                extra.insert(place.ours, m.iter().map(|v| v.to_f64()).collect());
            }
        }
    }
    let json = |e: serde_json::Error| TensorsError::Format {
        detail: e.to_string(),
    };
    let mut metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (
            ARCHITECTURE_KEY.to_string(),
            serde_json::to_string(&spec).map_err(json)?,
        ),
        (SCALAR_KEY.to_string(), T::NAME.to_string()),
        (
            BUFFERS_KEY.to_string(),
            serde_json::to_string(&extra).map_err(json)?,
        ),
    ]);
    let serialize = |metadata: &HashMap<String, String>| {
        safetensors::serialize(
            tensors.iter().map(|(k, v)| (k.as_str(), v)),
            Some(metadata.clone()),
        )
    };
    // the data section does not depend on the metadata: write once to checksum it, then again
    // with the checksum in the header
    let first = serialize(&metadata)?;
    let sum = checksum(data_section(&first), &metadata);
    metadata.insert(CHECKSUM_KEY.to_string(), sum);
    Ok(serialize(&metadata)?)
}

/// The checked file: its tensors and its metadata.
fn parse(bytes: &[u8]) -> Result<(SafeTensors<'_>, HashMap<String, String>), TensorsError> {
    let declared = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or_else(|| TensorsError::Format {
            detail: format!(
                "{} bytes: shorter than the 8-byte header length",
                bytes.len()
            ),
        })?;
    if declared > MAX_HEADER_BYTES {
        return Err(TensorsError::HeaderTooLarge {
            declared,
            limit: MAX_HEADER_BYTES,
        });
    }
    let (_, metadata) = SafeTensors::read_metadata(bytes)?;
    let tensors = SafeTensors::deserialize(bytes)?;
    let metadata = metadata.metadata().clone().unwrap_or_default();
    if let Some(stored) = metadata.get(CHECKSUM_KEY) {
        let computed = checksum(data_section(bytes), &metadata);
        if *stored != computed {
            return Err(TensorsError::Checksum {
                stored: stored.clone(),
                computed,
            });
        }
    }
    Ok((tensors, metadata))
}

fn metadata_error(detail: impl Into<String>) -> TensorsError {
    TensorsError::Metadata {
        detail: detail.into(),
    }
}

/// Rebuilds and loads a network exported by [`to_bytes`] (the architecture is in the file).
///
/// # Errors
/// [`TensorsError::NoArchitecture`] for a file without retroprop metadata (use
/// [`load_into_bytes`] with the network it holds), or any error of [`load_into_bytes`].
pub fn from_bytes<T: Scalar>(bytes: &[u8]) -> Result<Sequential<T>, TensorsError> {
    crate::sequential::register();
    let (tensors, metadata) = parse(bytes)?;
    let text = metadata
        .get(ARCHITECTURE_KEY)
        .ok_or(TensorsError::NoArchitecture)?;
    let spec: LayerSpec = serde_json::from_str(text)
        .map_err(|e| metadata_error(format!("{ARCHITECTURE_KEY}: {e}")))?;
    // the parameters the architecture implies must be in the file before anything is built
    let values_in_file: usize = tensors
        .iter()
        .map(|(_, t)| t.data().len() * 8 / t.dtype().bitsize().max(1))
        .sum();
    let implied = retroprop_layers::param_shapes(&spec).map_err(crate::ModelError::from)?;
    if let Some(shapes) = implied {
        let needed = shapes
            .iter()
            .try_fold(0usize, |n, &(r, c)| r.checked_mul(c)?.checked_add(n));
        if needed.is_none_or(|n| n > values_in_file) {
            return Err(metadata_error(format!(
                "the architecture needs more parameters than the {values_in_file} values the file holds"
            )));
        }
    }
    let mut model = Sequential::from_spec(&spec)?;
    load_parsed(&mut model, &tensors, &metadata)?;
    Ok(model)
}

/// Loads a safetensors file into `model`: a file exported by retroprop, or one written by
/// PyTorch from the equivalent `nn.Sequential` (`model.state_dict()` saved with
/// `safetensors.torch.save_file`). Buffers PyTorch lacks (a `Standardize`'s mean and std) come
/// from the file's metadata when it has them and otherwise keep the model's values.
///
/// # Errors
/// [`TensorsError::Names`] (every missing and unexpected tensor), [`TensorsError::Shape`],
/// [`TensorsError::Dtype`], or a structural error of the file; the model is unchanged on error.
pub fn load_into_bytes<T: Scalar>(
    model: &mut Sequential<T>,
    bytes: &[u8],
) -> Result<(), TensorsError> {
    let (tensors, metadata) = parse(bytes)?;
    load_parsed(model, &tensors, &metadata)
}

fn load_parsed<T: Scalar>(
    model: &mut Sequential<T>,
    tensors: &SafeTensors<'_>,
    metadata: &HashMap<String, String>,
) -> Result<(), TensorsError> {
    let spec = model.spec();
    let placements = names::placements(&spec, &tensor_shapes(&*model));
    let by_torch: BTreeMap<&str, &names::Placement> = placements
        .iter()
        .filter_map(|p| Some((p.torch.as_deref()?, p)))
        .collect();
    let mut found = BTreeMap::new();
    let mut unexpected = Vec::new();
    for (name, view) in tensors.iter() {
        match by_torch.get(names::normalise(name)) {
            Some(place) => {
                found.insert(place.ours.clone(), (name.to_string(), view));
            }
            None => unexpected.push(name.to_string()),
        }
    }
    let missing: Vec<String> = by_torch
        .iter()
        .filter(|(_, p)| !found.contains_key(&p.ours))
        .map(|(name, _)| (*name).to_string())
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        unexpected.sort();
        return Err(TensorsError::Names {
            missing,
            unexpected,
        });
    }
    let mut dict = state_dict(&*model);
    for place in &placements {
        let Some((name, view)) = found.get(&place.ours) else {
            continue;
        };
        if view.shape() != place.shape.as_slice() {
            return Err(TensorsError::Shape {
                tensor: name.clone(),
                path: place.ours.clone(),
                expected: place.shape.clone(),
                found: view.shape().to_vec(),
            });
        }
        let target = dict
            .get_mut(&place.ours)
            .expect("placements come from the dict");
        fill_row_major(target, view.dtype(), view.data(), name)?;
    }
    if let Some(text) = metadata.get(BUFFERS_KEY) {
        let extra: BTreeMap<String, Vec<f64>> = serde_json::from_str(text)
            .map_err(|e| metadata_error(format!("{BUFFERS_KEY}: {e}")))?;
        for (path, values) in extra {
            let target = dict
                .get_mut(&path)
                .filter(|m| m.len() == values.len())
                .ok_or_else(|| {
                    metadata_error(format!(
                        "{BUFFERS_KEY}: `{path}` is not a buffer of this size"
                    ))
                })?;
            for (t, v) in target.iter_mut().zip(values) {
                *t = T::lit(v);
            }
        }
    }
    load_state_dict(model, &dict).map_err(|e| TensorsError::Model(e.into()))
}

/// Writes row-major little-endian values of `dtype` into the column-major `target` (same
/// shape, already checked), converting F32, F64 or I64 to `T`.
fn fill_row_major<T: Scalar>(
    target: &mut DMatrix<T>,
    dtype: Dtype,
    data: &[u8],
    name: &str,
) -> Result<(), TensorsError> {
    let cols = target.ncols();
    let read: fn(&[u8]) -> f64 = match dtype {
        Dtype::F32 => |b| f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        Dtype::F64 => |b| f64::from_le_bytes(b.try_into().expect("8 bytes")),
        // a count (BatchNorm's num_batches_tracked), exact below 2⁵³
        Dtype::I64 => |b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f64,
        other => {
            return Err(TensorsError::Dtype {
                tensor: name.to_string(),
                dtype: format!("{other:?}"),
            });
        }
    };
    let size = dtype.bitsize() / 8;
    for (k, chunk) in data.chunks_exact(size).enumerate() {
        target[(k / cols, k % cols)] = T::lit(read(chunk));
    }
    Ok(())
}

/// Exports `model` to `path` atomically (as checkpoints are saved).
///
/// # Errors
/// [`TensorsError::Io`] if the file cannot be written.
pub fn export<T: Scalar>(
    model: &Sequential<T>,
    path: impl AsRef<Path>,
) -> Result<(), TensorsError> {
    let path = path.as_ref();
    crate::checkpoint::file::write_atomically(path, &to_bytes(model)?).map_err(|e| {
        TensorsError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TensorsError> {
    std::fs::read(path).map_err(|e| TensorsError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Loads a network exported by retroprop from `path` ([`from_bytes`]).
///
/// # Errors
/// As [`from_bytes`], plus [`TensorsError::Io`].
pub fn load<T: Scalar>(path: impl AsRef<Path>) -> Result<Sequential<T>, TensorsError> {
    from_bytes(&read(path.as_ref())?)
}

/// Loads a safetensors file into `model` ([`load_into_bytes`]).
///
/// # Errors
/// As [`load_into_bytes`], plus [`TensorsError::Io`].
pub fn load_into<T: Scalar>(
    model: &mut Sequential<T>,
    path: impl AsRef<Path>,
) -> Result<(), TensorsError> {
    load_into_bytes(model, &read(path.as_ref())?)
}

/// The tensors of a state dict of `model` under PyTorch's names, without writing a file (to
/// compare with a PyTorch `state_dict()`).
pub fn torch_names<T: Scalar>(model: &Sequential<T>) -> Vec<(String, String)> {
    names::placements(&model.spec(), &tensor_shapes(model))
        .into_iter()
        .filter_map(|p| Some((p.ours, p.torch?)))
        .collect()
}
