//! What exporting or importing safetensors can fail with.

use std::path::PathBuf;

use crate::ModelError;

/// What exporting to or importing from a safetensors file can fail with. Every variant names
/// the tensor or the file and says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TensorsError {
    /// Reading or writing the file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// The bytes are not a valid safetensors file (the `safetensors` crate's checks: header
    /// size, JSON, offsets that tile the data, overflow, lengths).
    #[error("not a valid safetensors file: {detail}")]
    Format {
        /// What is wrong.
        detail: String,
    },
    /// The header declares more bytes than this reader accepts.
    #[error(
        "the safetensors header declares {declared} bytes, more than the {limit} accepted: the file is corrupt or not safetensors"
    )]
    HeaderTooLarge {
        /// Header length in the file.
        declared: u64,
        /// The largest accepted.
        limit: u64,
    },
    /// A tensor has a dtype other than F32, F64 and I64.
    #[error(
        "tensor `{tensor}` is {dtype}: only F32, F64 and I64 (counts) load (convert it with tensor.float() or .double() before saving)"
    )]
    Dtype {
        /// The tensor's name in the file.
        tensor: String,
        /// Its dtype.
        dtype: String,
    },
    /// A tensor has another shape than the layer it loads into.
    #[error("tensor `{tensor}` has shape {found:?}, the network's `{path}` needs {expected:?}")]
    Shape {
        /// The tensor's name in the file.
        tensor: String,
        /// The parameter or buffer it loads into.
        path: String,
        /// The shape the network needs, PyTorch's layout.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// The file's tensors are not the network's: all the differences at once.
    #[error("{}", names_message(missing, unexpected))]
    Names {
        /// Tensors the network needs that the file lacks.
        missing: Vec<String>,
        /// Tensors in the file the network has no place for.
        unexpected: Vec<String>,
    },
    /// A retroprop export whose checksum does not match its contents: it was changed.
    #[error(
        "the file is corrupted: its retroprop checksum is {stored}, its contents give {computed}; export it again"
    )]
    Checksum {
        /// The checksum in the metadata.
        stored: String,
        /// The checksum of the contents.
        computed: String,
    },
    /// The file does not describe its architecture (a file written by PyTorch).
    #[error(
        "the file carries no retroprop architecture (it was not exported by retroprop): name the network it holds (`retroprop import --model …` or `--arch FILE`, or import_into with a network you built)"
    )]
    NoArchitecture,
    /// The file's retroprop metadata does not decode.
    #[error("the file's retroprop metadata is invalid: {detail}")]
    Metadata {
        /// What is wrong.
        detail: String,
    },
    /// Building the network the file describes failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

fn names_message(missing: &[String], unexpected: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("the file lacks {}", missing.join(", ")));
    }
    if !unexpected.is_empty() {
        parts.push(format!(
            "the network has no place for {}",
            unexpected.join(", ")
        ));
    }
    format!(
        "the file's tensors are not this network's: {} (is it the same architecture? a `module.` prefix is removed, indices follow nn.Sequential)",
        parts.join("; ")
    )
}

impl From<safetensors::SafeTensorError> for TensorsError {
    fn from(e: safetensors::SafeTensorError) -> Self {
        TensorsError::Format {
            detail: e.to_string(),
        }
    }
}
