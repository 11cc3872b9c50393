//! Checkpoints: a model's architecture and parameters in one checked file.
//!
//! ```text
//! offset  size  content
//! 0       8     magic "RETROPRP"
//! 8       4     format version (u32, little-endian) = 1
//! 12      8     header length H (u64, little-endian)
//! 20      H     header (bincode 2 + serde): scalar type ("f32"/"f64"), the architecture as a
//!               flat pre-order list of layer descriptions, and each parameter's path and shape
//! 20 + H  P     parameter values, little-endian, in visiting order, each column-major
//! end − 8 8     checksum: 64-bit FNV-1a of every byte before it
//! ```
//!
//! Loading checks, in order: length, magic, version, checksum, header (decoded with a byte
//! limit, so no allocation is sized by a number from the file), scalar type, that the
//! parameter bytes are exactly what the header declares, and that the architecture's own
//! parameter shapes agree with the header — before anything is allocated for the model.
//! A truncated, corrupted, wrong-version, wrong-type or wrong-architecture file is a
//! [`CheckpointError`], never a panic. FNV-1a changes its state bijectively at every byte, so a
//! change of any single byte is always detected.
//!
//! The architecture is stored flat (each `Sequential` as a node with a child count) so that
//! decoding never recurses on file contents, and nesting deeper than [`MAX_DEPTH`] is refused.
//!
//! Saving is atomic: the file is written under a temporary name in the same directory,
//! synced, then renamed over the target, so a crash mid-save leaves the previous checkpoint
//! intact.

use retroprop_activations::Scalar;
use retroprop_layers::{Conv2dConfig, Layer, LayerSpec, MaxPool2dConfig, Shape};
use serde::{Deserialize, Serialize};

use crate::{ModelError, Sequential};

mod error;
mod file;

pub use error::CheckpointError;
pub use file::{load, load_into, save};

/// The first eight bytes of every checkpoint.
pub const MAGIC: [u8; 8] = *b"RETROPRP";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The largest header accepted: an architecture description is a few hundred bytes.
pub const MAX_HEADER_BYTES: usize = 1 << 20;
/// The deepest nesting of `Sequential`s accepted.
pub const MAX_DEPTH: usize = 64;

const PREFIX: usize = 8 + 4 + 8;
const CHECKSUM: usize = 8;

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One node of the flat architecture (pre-order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Node {
    Sequential { input: Shape, children: u32 },
    Dense { d_in: usize, d_out: usize },
    Softplus,
    Sigmoid,
    Tanh,
    Relu,
    Softmax,
    Conv2d(Conv2dConfig),
    MaxPool2d(MaxPool2dConfig),
    Flatten,
    Standardize { mean: f64, std: f64 },
    Custom { name: String },
}

fn flatten(spec: &LayerSpec, out: &mut Vec<Node>) {
    out.push(match spec {
        LayerSpec::Sequential { input, layers } => {
            out.push(Node::Sequential {
                input: *input,
                children: u32::try_from(layers.len()).unwrap_or(u32::MAX),
            });
            for layer in layers {
                flatten(layer, out);
            }
            return;
        }
        LayerSpec::Dense { d_in, d_out } => Node::Dense {
            d_in: *d_in,
            d_out: *d_out,
        },
        LayerSpec::Softplus => Node::Softplus,
        LayerSpec::Sigmoid => Node::Sigmoid,
        LayerSpec::Tanh => Node::Tanh,
        LayerSpec::Relu => Node::Relu,
        LayerSpec::Softmax => Node::Softmax,
        LayerSpec::Conv2d(c) => Node::Conv2d(*c),
        LayerSpec::MaxPool2d(c) => Node::MaxPool2d(*c),
        LayerSpec::Flatten => Node::Flatten,
        LayerSpec::Standardize { mean, std } => Node::Standardize {
            mean: *mean,
            std: *std,
        },
        LayerSpec::Custom { name } => Node::Custom { name: name.clone() },
        other => Node::Custom {
            name: format!("{other:?}"),
        },
    });
}

/// A node for people: `Dense 784→256`, `Conv2d 1×28×28→32 channels (5×5)`, `nothing`.
fn describe(node: Option<&Node>) -> String {
    let Some(node) = node else {
        return "nothing (the architecture ends there)".to_string();
    };
    match node {
        Node::Sequential { input, children } => {
            format!("a Sequential of {children} layers on {input}")
        }
        Node::Dense { d_in, d_out } => format!("Dense {d_in}→{d_out}"),
        Node::Softplus => "Softplus".into(),
        Node::Sigmoid => "Sigmoid".into(),
        Node::Tanh => "Tanh".into(),
        Node::Relu => "Relu".into(),
        Node::Softmax => "Softmax".into(),
        Node::Conv2d(c) => format!(
            "Conv2d {}→{} channels ({}×{} kernel)",
            c.input_shape(),
            c.out_channels,
            c.kernel.h,
            c.kernel.w
        ),
        Node::MaxPool2d(c) => format!(
            "MaxPool2d on {} ({}×{} windows)",
            c.input_shape(),
            c.kernel.h,
            c.kernel.w
        ),
        Node::Flatten => "Flatten".into(),
        Node::Standardize { mean, std } => format!("Standardize (mean {mean}, std {std})"),
        Node::Custom { name } => format!("the custom layer `{name}`"),
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

/// After a checksum mismatch: is the file only cut short? The header's declared length, and
/// (if the header itself is whole and decodes) the parameter bytes it declares, give the
/// length the file should have.
fn truncation<T: Scalar>(bytes: &[u8]) -> Option<CheckpointError> {
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
    let (header, _): (Header, usize) =
        bincode::serde::decode_from_slice(&bytes[PREFIX..header_end], bincode_config()).ok()?;
    let params = usize::try_from(declared_param_bytes::<T>(&header).ok()?).ok()?;
    let needed = header_end.checked_add(params)?.checked_add(CHECKSUM)?;
    (len < needed).then(|| truncated(needed))
}

/// The parameter bytes a header declares (checked: an impossible size is a header error).
fn declared_param_bytes<T: Scalar>(header: &Header) -> Result<u64, CheckpointError> {
    header.params.iter().try_fold(0u64, |total, e| {
        e.rows
            .checked_mul(e.cols)
            .and_then(|n| n.checked_mul(T::BYTES as u64))
            .and_then(|n| n.checked_add(total))
            .ok_or_else(|| header_error(format!("parameter `{}` is impossibly large", e.path)))
    })
}

fn header_error(detail: impl Into<String>) -> CheckpointError {
    CheckpointError::Header {
        detail: detail.into(),
    }
}

/// Rebuilds the tree from the flat list with an explicit stack (no recursion on file data).
fn unflatten(nodes: &[Node]) -> Result<LayerSpec, CheckpointError> {
    struct Frame {
        input: Shape,
        remaining: u32,
        layers: Vec<LayerSpec>,
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<LayerSpec> = None;
    for node in nodes {
        if root.is_some() {
            return Err(header_error("nodes after the end of the architecture"));
        }
        let mut done = match node {
            Node::Sequential { input, children } => {
                if stack.len() >= MAX_DEPTH {
                    return Err(header_error(format!("nesting deeper than {MAX_DEPTH}")));
                }
                if input
                    .checked_len()
                    .is_none_or(|n| n > retroprop_layers::MAX_VALUES)
                {
                    return Err(header_error(format!("input shape {input:?} is too large")));
                }
                stack.push(Frame {
                    input: *input,
                    remaining: *children,
                    layers: Vec::new(),
                });
                None
            }
            Node::Dense { d_in, d_out } => Some(LayerSpec::Dense {
                d_in: *d_in,
                d_out: *d_out,
            }),
            Node::Softplus => Some(LayerSpec::Softplus),
            Node::Sigmoid => Some(LayerSpec::Sigmoid),
            Node::Tanh => Some(LayerSpec::Tanh),
            Node::Relu => Some(LayerSpec::Relu),
            Node::Softmax => Some(LayerSpec::Softmax),
            Node::Conv2d(c) => Some(LayerSpec::Conv2d(*c)),
            Node::MaxPool2d(c) => Some(LayerSpec::MaxPool2d(*c)),
            Node::Flatten => Some(LayerSpec::Flatten),
            Node::Standardize { mean, std } => Some(LayerSpec::Standardize {
                mean: *mean,
                std: *std,
            }),
            Node::Custom { name } => Some(LayerSpec::Custom { name: name.clone() }),
        };
        // close every container whose children are all in
        loop {
            let Some(top) = stack.last_mut() else {
                root = done.take().or(root);
                break;
            };
            if let Some(spec) = done.take() {
                if top.remaining == 0 {
                    return Err(header_error("a container has more children than declared"));
                }
                top.layers.push(spec);
                top.remaining -= 1;
            }
            if top.remaining > 0 {
                break;
            }
            let frame = stack.pop().expect("top exists");
            done = Some(LayerSpec::Sequential {
                input: frame.input,
                layers: frame.layers,
            });
        }
    }
    if !stack.is_empty() {
        return Err(header_error("the architecture ends inside a container"));
    }
    root.ok_or_else(|| header_error("empty architecture"))
}

/// What the header records of one parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ParamEntry {
    path: String,
    rows: u64,
    cols: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Header {
    scalar: String,
    architecture: Vec<Node>,
    params: Vec<ParamEntry>,
}

fn entries<T: Scalar>(model: &dyn Layer<T>) -> Vec<ParamEntry> {
    let mut out = Vec::new();
    model.visit_params(&mut |path, p| {
        let (rows, cols) = p.shape();
        out.push(ParamEntry {
            path: path.to_string(),
            rows: rows as u64,
            cols: cols as u64,
        });
    });
    out
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_HEADER_BYTES>()
}

/// The checkpoint of `model` as bytes (what [`save`] writes).
///
/// # Errors
/// [`CheckpointError::Header`] if the architecture cannot be encoded.
pub fn to_bytes<T: Scalar>(model: &dyn Layer<T>) -> Result<Vec<u8>, CheckpointError> {
    let mut architecture = Vec::new();
    flatten(&model.spec(), &mut architecture);
    let header = Header {
        scalar: T::NAME.to_string(),
        architecture,
        params: entries(model),
    };
    let header = bincode::serde::encode_to_vec(&header, bincode_config())
        .map_err(|e| header_error(e.to_string()))?;
    let mut out =
        Vec::with_capacity(PREFIX + header.len() + model.param_count() * T::BYTES + CHECKSUM);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    model.visit_params(&mut |_, p| {
        for &v in p.value().as_slice() {
            v.write_le(&mut out);
        }
    });
    let checksum = fnv1a(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    Ok(out)
}

/// A checked checkpoint: its header and parameter bytes.
struct Parsed<'a> {
    header: Header,
    params: &'a [u8],
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
    if version != FORMAT_VERSION {
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
        return Err(truncation::<T>(bytes)
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
    let (header, used): (Header, usize) =
        bincode::serde::decode_from_slice(&body[PREFIX..PREFIX + header_len], bincode_config())
            .map_err(|e| undecodable_header(&e))?;
    if used != header_len {
        return Err(header_error(format!(
            "{} trailing header bytes",
            header_len - used
        )));
    }
    if header.scalar != T::NAME {
        return Err(CheckpointError::ScalarMismatch {
            found: header.scalar,
            expected: T::NAME,
        });
    }
    let params = &body[PREFIX + header_len..];
    let declared_bytes = declared_param_bytes::<T>(&header)?;
    if declared_bytes != params.len() as u64 {
        return Err(CheckpointError::ParamBytes {
            declared: declared_bytes,
            found: params.len() as u64,
        });
    }
    Ok(Parsed { header, params })
}

/// The parameter shapes an architecture implies, in visiting order (checked, no allocation
/// beyond the list); `None` if it has a custom layer whose parameters are unknown.
fn implied_shapes(
    spec: &LayerSpec,
    out: &mut Vec<(usize, usize)>,
) -> Result<bool, CheckpointError> {
    match spec {
        LayerSpec::Sequential { layers, .. } => {
            for layer in layers {
                if !implied_shapes(layer, out)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        other => match other.param_shapes() {
            Some(shapes) => {
                out.extend(shapes.map_err(|e| header_error(e.to_string()))?);
                Ok(true)
            }
            None => Ok(false),
        },
    }
}

fn check_entries(header: &[ParamEntry], model: &[ParamEntry]) -> Result<(), CheckpointError> {
    if header.len() != model.len() {
        return Err(CheckpointError::ArchitectureMismatch {
            detail: format!(
                "file has {} parameters, model has {}",
                header.len(),
                model.len()
            ),
        });
    }
    for (f, m) in header.iter().zip(model) {
        if f != m {
            return Err(CheckpointError::ArchitectureMismatch {
                detail: format!(
                    "parameter `{}` is {}×{} in the file, model has `{}` {}×{}",
                    f.path, f.rows, f.cols, m.path, m.rows, m.cols
                ),
            });
        }
    }
    Ok(())
}

/// Copies the parameter values into `model` (shapes already checked).
fn fill<T: Scalar>(model: &mut dyn Layer<T>, params: &[u8]) {
    let mut chunks = params.chunks_exact(T::BYTES);
    model.visit_params_mut(&mut |_, p| {
        for v in p.value_mut().iter_mut() {
            let bytes = chunks.next().expect("sizes checked");
            *v = T::read_le(bytes).expect("chunk of T::BYTES");
        }
    });
}

/// Rebuilds a model from checkpoint bytes.
///
/// # Errors
/// Any [`CheckpointError`]; [`ModelError::CannotBuild`] (as [`CheckpointError::Model`]) if the
/// architecture has a custom layer — then build the model and use [`load_into_bytes`].
pub fn from_bytes<T: Scalar>(bytes: &[u8]) -> Result<Sequential<T>, CheckpointError> {
    let parsed = parse::<T>(bytes)?;
    let spec = unflatten(&parsed.header.architecture)?;
    let mut shapes = Vec::new();
    if !implied_shapes(&spec, &mut shapes)? {
        let mut nodes = Vec::new();
        flatten(&spec, &mut nodes);
        let name = nodes
            .iter()
            .find_map(|n| match n {
                Node::Custom { name } => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_default();
        return Err(ModelError::CannotBuild { layer: name }.into());
    }
    let implied: Vec<(u64, u64)> = shapes.iter().map(|&(r, c)| (r as u64, c as u64)).collect();
    let declared: Vec<(u64, u64)> = parsed
        .header
        .params
        .iter()
        .map(|e| (e.rows, e.cols))
        .collect();
    if implied != declared {
        return Err(header_error(
            "parameter shapes disagree with the architecture",
        ));
    }
    // every allocation below is bounded by the parameter bytes present in the file
    let mut model = Sequential::<T>::from_spec(&spec)?;
    check_entries(&parsed.header.params, &entries(&model))?;
    fill(&mut model, parsed.params);
    Ok(model)
}

/// Loads the parameters of checkpoint bytes into an existing model with the same architecture
/// (custom layers included).
///
/// # Errors
/// Any [`CheckpointError`]; [`CheckpointError::ArchitectureMismatch`] if the file describes
/// another network.
pub fn load_into_bytes<T: Scalar>(
    model: &mut dyn Layer<T>,
    bytes: &[u8],
) -> Result<(), CheckpointError> {
    let parsed = parse::<T>(bytes)?;
    let mut ours = Vec::new();
    flatten(&model.spec(), &mut ours);
    if let Some(k) = (0..ours.len().max(parsed.header.architecture.len()))
        .find(|&k| ours.get(k) != parsed.header.architecture.get(k))
    {
        return Err(CheckpointError::ArchitectureMismatch {
            detail: format!(
                "layer #{k} (in pre-order) is {} in the file but {} in the model",
                describe(parsed.header.architecture.get(k)),
                describe(ours.get(k))
            ),
        });
    }
    check_entries(&parsed.header.params, &entries(model))?;
    fill(model, parsed.params);
    Ok(())
}
