//! What loading or saving a checkpoint can fail with.

use std::path::PathBuf;

use crate::ModelError;

/// What loading or saving a checkpoint can fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// The file is shorter than its structure requires.
    #[error(
        "checkpoint is truncated: it has {got} bytes where at least {needed} are needed (an interrupted copy or download?)"
    )]
    Truncated {
        /// Bytes the structure needs.
        needed: u64,
        /// Bytes present.
        got: u64,
    },
    /// The file does not start with [`MAGIC`](super::MAGIC): not a retroprop checkpoint.
    #[error("not a retroprop checkpoint (bad magic number)")]
    BadMagic,
    /// The file was written by another format version.
    #[error("checkpoint format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The checksum does not match the contents: the file is corrupted.
    #[error(
        "checkpoint is corrupted: its checksum does not match its contents ({stored:#018x} stored, {computed:#018x} computed); save it again or use a backup"
    )]
    ChecksumMismatch {
        /// Checksum stored in the file.
        stored: u64,
        /// Checksum of the contents.
        computed: u64,
    },
    /// The header is larger than [`MAX_HEADER_BYTES`](super::MAX_HEADER_BYTES) or than the file.
    #[error("checkpoint header of {declared} bytes exceeds the {available} available")]
    HeaderSize {
        /// Header length declared in the file.
        declared: u64,
        /// Bytes it may take.
        available: u64,
    },
    /// The header does not decode, or describes an impossible architecture.
    #[error("checkpoint header is invalid: {detail}")]
    Header {
        /// What is wrong.
        detail: String,
    },
    /// The file holds another scalar type than requested.
    #[error("checkpoint holds {found} parameters, {expected} requested")]
    ScalarMismatch {
        /// Scalar type in the file.
        found: String,
        /// Scalar type requested.
        expected: &'static str,
    },
    /// The parameter bytes are not what the header declares.
    #[error("checkpoint declares {declared} parameter bytes but holds {found}")]
    ParamBytes {
        /// Bytes the header's shapes require.
        declared: u64,
        /// Bytes present.
        found: u64,
    },
    /// The file's architecture is not the model's.
    #[error("architecture mismatch: {detail}")]
    ArchitectureMismatch {
        /// The first difference found.
        detail: String,
    },
    /// The architecture could not be rebuilt.
    #[error(transparent)]
    Model(#[from] ModelError),
}
