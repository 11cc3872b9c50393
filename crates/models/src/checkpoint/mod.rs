//! Checkpoints: a model's architecture, parameters, buffers and (optionally) the training
//! state that resumes its run, in one checked file.
//!
//! ```text
//! offset  size  content
//! 0       8     magic "RETROPRP"
//! 8       4     format version (u32, little-endian) = 2
//! 12      8     header length H (u64, little-endian)
//! 20      H     header (bincode 2 + serde): scalar type ("f32"/"f64"); the architecture as a
//!               flat pre-order list of (kind, JSON configuration, child count); each
//!               parameter's and each buffer's path and shape; optionally the training state
//!               (optimizer, its state names and step count, each state tensor's parameter
//!               path, name and length, epochs done, the training program's settings)
//! 20 + H  P     values, little-endian: parameters, then buffers, then optimizer state, in
//!               visiting order, each column-major
//! end − 8 8     checksum: 64-bit FNV-1a of every byte before it
//! ```
//!
//! Loading checks, in order: length, magic, version, checksum, header (decoded with a byte
//! limit, so no allocation is sized by a number from the file), scalar type, that the value
//! bytes are exactly what the header declares, and that the architecture's own parameter
//! shapes (from each kind's [`LayerConfig::param_shapes`](retroprop_layers::LayerConfig::param_shapes))
//! agree with the header — before anything is allocated for the model. A truncated,
//! corrupted, wrong-version, wrong-type or wrong-architecture file is a [`CheckpointError`],
//! never a panic. FNV-1a changes its state bijectively at every byte, so a change of any
//! single byte is always detected.
//!
//! The architecture is open: each node names a kind of the layer registry
//! ([`retroprop_layers::register`]), so a network holding a downstream crate's layer saves and
//! loads with its hyperparameters once that crate has registered it. It is stored flat so that
//! decoding never recurses on file contents, and nesting deeper than [`MAX_DEPTH`] is refused.
//! Version 1 files (a closed list of kinds, no buffers) still load.
//!
//! Saving is atomic: the file is written under a temporary name in the same directory,
//! synced, then renamed over the target, so a crash mid-save leaves the previous checkpoint
//! intact.

use retroprop_core::Scalar;
use retroprop_layers::{Layer, LayerError, LayerSpec};
use retroprop_optim::{OptimizerState, SlotState};
use serde::{Deserialize, Serialize};

use crate::Sequential;

mod error;
pub(crate) mod file;
mod v1;

pub use error::CheckpointError;
pub use file::{load, load_into, load_training, save, save_training};

/// The first eight bytes of every checkpoint.
pub const MAGIC: [u8; 8] = *b"RETROPRP";
/// The format version this crate writes (it reads this one and version 1).
pub const FORMAT_VERSION: u32 = 2;
/// The largest header accepted: an architecture description is a few hundred bytes, the
/// names of an optimizer's state a few per parameter.
pub const MAX_HEADER_BYTES: usize = 1 << 20;
/// The deepest nesting of containers accepted.
pub const MAX_DEPTH: usize = 64;

const PREFIX: usize = 8 + 4 + 8;
const CHECKSUM: usize = 8;

/// 64-bit FNV-1a.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// What resumes a training run besides the model: the optimizer's state, the epochs done and
/// the training program's own settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingState<T: Scalar> {
    /// The optimizer's state (momentum buffers, step count).
    pub optimizer: OptimizerState<T>,
    /// Epochs completed.
    pub epochs_done: usize,
    /// The settings of the program that trained (JSON; the `retroprop` program stores its
    /// command line there, so `train --resume` continues with the same one).
    pub settings: String,
}

/// One node of the flat architecture (pre-order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Node {
    kind: String,
    config: String,
    children: u32,
}

/// What the header records of one parameter or buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    path: String,
    rows: u64,
    cols: u64,
}

/// What the header records of one tensor of optimizer state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SlotEntry {
    path: String,
    slot: String,
    len: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TrainingHeader {
    optimizer: String,
    slot_names: Vec<String>,
    steps: u64,
    slots: Vec<SlotEntry>,
    epochs_done: u64,
    settings: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    scalar: String,
    architecture: Vec<Node>,
    params: Vec<Entry>,
    buffers: Vec<Entry>,
    training: Option<TrainingHeader>,
}

impl Header {
    /// Values the header declares: parameters, buffers, optimizer state (checked arithmetic:
    /// an impossible size is a header error).
    fn declared_values(&self) -> Result<u64, CheckpointError> {
        let mut tensors = self.params.iter().chain(&self.buffers);
        let mut total = tensors.try_fold(0u64, |total, e| {
            e.rows
                .checked_mul(e.cols)
                .and_then(|n| n.checked_add(total))
                .ok_or_else(|| header_error(format!("`{}` is impossibly large", e.path)))
        })?;
        for s in self.training.iter().flat_map(|t| &t.slots) {
            total = total.checked_add(s.len).ok_or_else(|| {
                header_error(format!("state of `{}` is impossibly large", s.path))
            })?;
        }
        Ok(total)
    }
}

/// The value bytes a header declares.
fn declared_bytes<T: Scalar>(header: &Header) -> Result<u64, CheckpointError> {
    header
        .declared_values()?
        .checked_mul(T::BYTES as u64)
        .ok_or_else(|| header_error("the values are impossibly large"))
}

fn header_error(detail: impl Into<String>) -> CheckpointError {
    CheckpointError::Header {
        detail: detail.into(),
    }
}

/// A header that does not decode, said for people rather than in the decoder's terms.
fn undecodable_header(e: &bincode::error::DecodeError) -> CheckpointError {
    use bincode::error::DecodeError;
    let detail = match e {
        DecodeError::UnexpectedEnd { .. } => {
            "the architecture description ends early (the file is cut short or was not written by retroprop)".to_string()
        }
        DecodeError::OtherString(s) if s.contains("variant") => {
            "it names a kind of layer this version of retroprop does not know (was the file written by a newer version?)".to_string()
        }
        DecodeError::LimitExceeded => {
            "the architecture description is larger than any this version writes".to_string()
        }
        _ => "the architecture description is malformed".to_string(),
    };
    header_error(detail)
}

/// The flat pre-order list of a spec.
fn flatten(spec: &LayerSpec) -> Vec<Node> {
    spec.preorder()
        .into_iter()
        .map(|(_, s)| Node {
            kind: s.kind.clone(),
            config: s.config.clone(),
            children: u32::try_from(s.children.len()).unwrap_or(u32::MAX),
        })
        .collect()
}

/// Rebuilds the tree from the flat list with an explicit stack (no recursion on file data).
fn unflatten(nodes: &[Node]) -> Result<LayerSpec, CheckpointError> {
    struct Frame {
        spec: LayerSpec,
        remaining: u32,
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<LayerSpec> = None;
    for node in nodes {
        if root.is_some() {
            return Err(header_error("nodes after the end of the architecture"));
        }
        let spec = LayerSpec {
            kind: node.kind.clone(),
            config: node.config.clone(),
            children: Vec::new(),
        };
        let mut done = if node.children > 0 {
            if stack.len() >= MAX_DEPTH {
                return Err(header_error(format!("nesting deeper than {MAX_DEPTH}")));
            }
            stack.push(Frame {
                spec,
                remaining: node.children,
            });
            None
        } else {
            Some(spec)
        };
        // close every container whose children are all in
        while let Some(top) = stack.last_mut() {
            if let Some(spec) = done.take() {
                top.spec.children.push(spec);
                top.remaining -= 1;
            }
            if top.remaining > 0 {
                break;
            }
            done = stack.pop().map(|frame| frame.spec);
        }
        if stack.is_empty() {
            root = done.take().or(root);
        }
    }
    if !stack.is_empty() {
        return Err(header_error("the architecture ends inside a container"));
    }
    root.ok_or_else(|| header_error("empty architecture"))
}

fn entries_of<T: Scalar>(model: &dyn Layer<T>) -> (Vec<Entry>, Vec<Entry>) {
    let entry = |path: &str, (rows, cols): (usize, usize)| Entry {
        path: path.to_string(),
        rows: rows as u64,
        cols: cols as u64,
    };
    let (mut params, mut buffers) = (Vec::new(), Vec::new());
    model.visit_params(&mut |path, p| params.push(entry(path, p.shape())));
    model.visit_buffers(&mut |path, b| buffers.push(entry(path, b.shape())));
    (params, buffers)
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_HEADER_BYTES>()
}

/// The checkpoint of `model` as bytes (what [`save`] writes).
///
/// # Errors
/// [`CheckpointError::Header`] if the architecture cannot be encoded.
pub fn to_bytes<T: Scalar>(model: &dyn Layer<T>) -> Result<Vec<u8>, CheckpointError> {
    to_bytes_with(model, None)
}

/// The checkpoint of `model` and, if given, the training state that resumes its run (what
/// [`save_training`] writes).
///
/// # Errors
/// [`CheckpointError::Header`] if the architecture cannot be encoded.
pub fn to_bytes_with<T: Scalar>(
    model: &dyn Layer<T>,
    training: Option<&TrainingState<T>>,
) -> Result<Vec<u8>, CheckpointError> {
    let (params, buffers) = entries_of(model);
    let header = Header {
        scalar: T::NAME.to_string(),
        architecture: flatten(&model.spec()),
        params,
        buffers,
        training: training.map(|t| TrainingHeader {
            optimizer: t.optimizer.optimizer.clone(),
            slot_names: t.optimizer.slot_names.clone(),
            steps: t.optimizer.steps,
            slots: t
                .optimizer
                .slots
                .iter()
                .map(|s| SlotEntry {
                    path: s.path.clone(),
                    slot: s.slot.clone(),
                    len: s.values.len() as u64,
                })
                .collect(),
            epochs_done: t.epochs_done as u64,
            settings: t.settings.clone(),
        }),
    };
    let encoded = bincode::serde::encode_to_vec(&header, bincode_config())
        .map_err(|e| header_error(e.to_string()))?;
    let values = usize::try_from(header.declared_values()?).unwrap_or(0);
    let mut out = Vec::with_capacity(PREFIX + encoded.len() + values * T::BYTES + CHECKSUM);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
    out.extend_from_slice(&encoded);
    let mut write = |values: &[T]| {
        for &v in values {
            v.write_le(&mut out);
        }
    };
    model.visit_params(&mut |_, p| write(p.value().as_slice()));
    model.visit_buffers(&mut |_, b| write(b.value().as_slice()));
    for s in training.iter().flat_map(|t| &t.optimizer.slots) {
        write(&s.values);
    }
    let checksum = fnv1a(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    Ok(out)
}

/// A checked checkpoint: its header (version 1 converted), the `(mean, std)` of version 1's
/// standardisations, and the value bytes.
struct Parsed<'a> {
    header: Header,
    v1_standardize: Vec<(f64, f64)>,
    values: &'a [u8],
}

/// Decodes a header of `bytes.len()` bytes, all of which it must use.
fn decode<H: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<H, CheckpointError> {
    let (header, used): (H, usize) = bincode::serde::decode_from_slice(bytes, bincode_config())
        .map_err(|e| undecodable_header(&e))?;
    if used != bytes.len() {
        return Err(header_error(format!(
            "{} trailing header bytes",
            bytes.len() - used
        )));
    }
    Ok(header)
}

/// The header of either version, and version 1's standardisations.
fn decode_header(version: u32, bytes: &[u8]) -> Result<(Header, Vec<(f64, f64)>), CheckpointError> {
    if version == 1 {
        let old: v1::HeaderV1 = decode(bytes)?;
        let (architecture, standardize) = v1::convert(&old);
        let header = Header {
            scalar: old.scalar,
            architecture,
            params: old.params,
            buffers: Vec::new(),
            training: None,
        };
        return Ok((header, standardize));
    }
    Ok((decode(bytes)?, Vec::new()))
}

/// After a checksum mismatch: is the file only cut short? The header's declared length, and
/// (if the header itself is whole and decodes) the value bytes it declares, give the length
/// the file should have.
fn truncation<T: Scalar>(bytes: &[u8], version: u32) -> Option<CheckpointError> {
    let len = bytes.len();
    let declared = u64::from_le_bytes(bytes.get(12..20)?.try_into().ok()?);
    let header_len = usize::try_from(declared)
        .ok()
        .filter(|&h| h <= MAX_HEADER_BYTES)?;
    let truncated = |needed: usize| CheckpointError::Truncated {
        needed: needed as u64,
        got: len as u64,
    };
    let header_end = PREFIX.checked_add(header_len)?;
    if len < header_end + CHECKSUM {
        return Some(truncated(header_end + CHECKSUM));
    }
    let (header, _) = decode_header(version, &bytes[PREFIX..header_end]).ok()?;
    let values = usize::try_from(declared_bytes::<T>(&header).ok()?).ok()?;
    let needed = header_end.checked_add(values)?.checked_add(CHECKSUM)?;
    (len < needed).then(|| truncated(needed))
}

fn parse<T: Scalar>(bytes: &[u8]) -> Result<Parsed<'_>, CheckpointError> {
    let len = bytes.len();
    let truncated = |needed: usize| CheckpointError::Truncated {
        needed: needed as u64,
        got: len as u64,
    };
    if len < 8 {
        return Err(if bytes == &MAGIC[..len] {
            truncated(PREFIX + CHECKSUM)
        } else {
            CheckpointError::BadMagic
        });
    }
    if bytes[..8] != MAGIC {
        return Err(CheckpointError::BadMagic);
    }
    if len < PREFIX + CHECKSUM {
        return Err(truncated(PREFIX + CHECKSUM));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(CheckpointError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let (body, tail) = bytes.split_at(len - CHECKSUM);
    let stored = u64::from_le_bytes(tail.try_into().expect("8 bytes"));
    let computed = fnv1a(body);
    if stored != computed {
        // a file cut short is "truncated", not "corrupted": say which
        return Err(truncation::<T>(bytes, version)
            .unwrap_or(CheckpointError::ChecksumMismatch { stored, computed }));
    }
    let declared = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let available = (body.len() - PREFIX).min(MAX_HEADER_BYTES);
    let header_len = usize::try_from(declared)
        .ok()
        .filter(|&h| h <= available)
        .ok_or(CheckpointError::HeaderSize {
            declared,
            available: available as u64,
        })?;
    let (header, v1_standardize) = decode_header(version, &body[PREFIX..PREFIX + header_len])?;
    if header.scalar != T::NAME {
        return Err(CheckpointError::ScalarMismatch {
            found: header.scalar,
            expected: T::NAME,
        });
    }
    let values = &body[PREFIX + header_len..];
    let declared_bytes = declared_bytes::<T>(&header)?;
    if declared_bytes != values.len() as u64 {
        return Err(CheckpointError::ParamBytes {
            declared: declared_bytes,
            found: values.len() as u64,
        });
    }
    Ok(Parsed {
        header,
        v1_standardize,
        values,
    })
}

/// The first difference between two lists of tensors, as an architecture mismatch.
fn check_entries(what: &str, file: &[Entry], model: &[Entry]) -> Result<(), CheckpointError> {
    let mismatch = |detail| Err(CheckpointError::ArchitectureMismatch { detail });
    if file.len() != model.len() {
        return mismatch(format!(
            "the file has {} {what}s, the model {}",
            file.len(),
            model.len()
        ));
    }
    for (f, m) in file.iter().zip(model) {
        if f != m {
            return mismatch(format!(
                "{what} `{}` is {}×{} in the file, the model has `{}` {}×{}",
                f.path, f.rows, f.cols, m.path, m.rows, m.cols
            ));
        }
    }
    Ok(())
}

/// Reads `T` values from the front of `bytes`, advancing it (sizes already checked).
fn take<T: Scalar>(bytes: &mut &[u8], out: &mut [T]) {
    let (head, rest) = bytes.split_at(out.len() * T::BYTES);
    for (v, chunk) in out.iter_mut().zip(head.chunks_exact(T::BYTES)) {
        *v = T::read_le(chunk).expect("chunk of T::BYTES");
    }
    *bytes = rest;
}

/// Copies parameters and buffers into `model` (shapes checked), sets version 1's
/// standardisations, and returns the training state that follows them.
fn fill<T: Scalar>(
    model: &mut dyn Layer<T>,
    parsed: Parsed<'_>,
) -> Result<Option<TrainingState<T>>, CheckpointError> {
    let (params, buffers) = entries_of(&*model);
    check_entries("parameter", &parsed.header.params, &params)?;
    if parsed.v1_standardize.is_empty() {
        check_entries("buffer", &parsed.header.buffers, &buffers)?;
    }
    let mut values = parsed.values;
    model.visit_params_mut(&mut |_, p| take(&mut values, p.value_and_grad_mut().0));
    model.visit_buffers_mut(&mut |_, b| {
        if parsed.v1_standardize.is_empty() {
            take(&mut values, b.as_mut_slice());
        }
    });
    set_v1_standardize(model, &parsed.v1_standardize)?;
    let Some(training) = parsed.header.training else {
        return Ok(None);
    };
    let slots = training
        .slots
        .into_iter()
        .map(|s| {
            let mut state = vec![T::zero(); s.len as usize];
            take(&mut values, &mut state);
            SlotState {
                path: s.path,
                slot: s.slot,
                values: state,
            }
        })
        .collect();
    Ok(Some(TrainingState {
        optimizer: OptimizerState {
            optimizer: training.optimizer,
            slot_names: training.slot_names,
            steps: training.steps,
            slots,
        },
        epochs_done: usize::try_from(training.epochs_done)
            .map_err(|_| header_error("impossibly many epochs"))?,
        settings: training.settings,
    }))
}

/// Version 1 kept each `Standardize`'s mean and std in the architecture: put them in the
/// buffers of the model's `Standardize` layers, in pre-order.
fn set_v1_standardize<T: Scalar>(
    model: &mut dyn Layer<T>,
    values: &[(f64, f64)],
) -> Result<(), CheckpointError> {
    if values.is_empty() {
        return Ok(());
    }
    let mut paths = Vec::new();
    model.visit_buffers(&mut |path, _| {
        if let Some(prefix) = path
            .strip_suffix(".mean")
            .or((path == "mean").then_some(""))
        {
            paths.push(prefix.to_string());
        }
    });
    if paths.len() != values.len() {
        return Err(CheckpointError::ArchitectureMismatch {
            detail: format!(
                "the file has {} standardisations, the model {}",
                values.len(),
                paths.len()
            ),
        });
    }
    for (prefix, &(mean, std)) in paths.iter().zip(values) {
        let dot = if prefix.is_empty() { "" } else { "." };
        for (name, v) in [("mean", mean), ("std", std)] {
            model
                .set_buffer(
                    &format!("{prefix}{dot}{name}"),
                    nalgebra::DMatrix::from_element(1, 1, T::lit(v)),
                )
                .map_err(|e| CheckpointError::Model(e.into()))?;
        }
    }
    Ok(())
}

/// Rebuilds a model from checkpoint bytes.
///
/// # Errors
/// Any [`CheckpointError`]; a layer kind that is not registered is
/// [`ModelError::Layer`](crate::ModelError) (as [`CheckpointError::Model`]) naming it —
/// register it, or build the model and use [`load_into_bytes`].
pub fn from_bytes<T: Scalar>(bytes: &[u8]) -> Result<Sequential<T>, CheckpointError> {
    from_bytes_with(bytes).map(|(model, _)| model)
}

/// Rebuilds a model from checkpoint bytes, with the training state if the file has one.
///
/// # Errors
/// As [`from_bytes`].
pub fn from_bytes_with<T: Scalar>(
    bytes: &[u8],
) -> Result<(Sequential<T>, Option<TrainingState<T>>), CheckpointError> {
    crate::sequential::register();
    let parsed = parse::<T>(bytes)?;
    let spec = unflatten(&parsed.header.architecture)?;
    let shapes = retroprop_layers::param_shapes(&spec).map_err(|e| match e {
        LayerError::UnknownKind { .. } => CheckpointError::Model(e.into()),
        // a description no constructor accepts: the header is corrupt or forged
        other => header_error(other.to_string()),
    })?;
    if let Some(shapes) = shapes {
        let implied = shapes.iter().map(|&(r, c)| (r as u64, c as u64));
        if !implied.eq(parsed.header.params.iter().map(|e| (e.rows, e.cols))) {
            return Err(header_error(
                "parameter shapes disagree with the architecture",
            ));
        }
    }
    // every built-in allocation below is bounded by the parameter bytes present in the file
    let mut model = Sequential::<T>::from_spec(&spec)?;
    let training = fill(&mut model, parsed)?;
    Ok((model, training))
}

/// Loads the parameters and buffers of checkpoint bytes into an existing model with the same
/// architecture.
///
/// # Errors
/// Any [`CheckpointError`]; [`CheckpointError::ArchitectureMismatch`] if the file describes
/// another network.
pub fn load_into_bytes<T: Scalar>(
    model: &mut dyn Layer<T>,
    bytes: &[u8],
) -> Result<(), CheckpointError> {
    let parsed = parse::<T>(bytes)?;
    let ours = flatten(&model.spec());
    let theirs = &parsed.header.architecture;
    if let Some(k) = (0..ours.len().max(theirs.len())).find(|&k| ours.get(k) != theirs.get(k)) {
        let describe = |n: Option<&Node>| match n {
            None => "nothing (the architecture ends there)".to_string(),
            Some(n) => LayerSpec {
                kind: n.kind.clone(),
                config: n.config.clone(),
                children: Vec::new(),
            }
            .describe(),
        };
        return Err(CheckpointError::ArchitectureMismatch {
            detail: format!(
                "layer #{k} (in pre-order) is {} in the file but {} in the model",
                describe(theirs.get(k)),
                describe(ours.get(k))
            ),
        });
    }
    fill(model, parsed).map(drop)
}
