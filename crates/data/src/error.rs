//! The crate's one error type.

use std::path::PathBuf;

/// What reading a dataset can fail with. Every variant names the file (or directory) and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The data directory does not exist.
    #[error(
        "data directory `{dir}` not found: pass --data DIR with a directory holding the four MNIST files \
         (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)",
        dir = dir.display()
    )]
    MissingDirectory {
        /// The directory looked for.
        dir: PathBuf,
    },
    /// A standard file is missing from the directory.
    #[error("`{file}` (or `{file}.gz`) not found in `{dir}`", dir = dir.display())]
    MissingFile {
        /// The directory.
        dir: PathBuf,
        /// The file's standard name.
        file: String,
    },
    /// The file could not be read.
    #[error("{file}: {message}", file = file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// The gzip stream is corrupt.
    #[error("{file}: corrupt gzip data: {message}; download the file again", file = file.display())]
    Gzip {
        /// The file.
        file: PathBuf,
        /// What is wrong, from the decoder.
        message: String,
    },
    /// The file holds no example.
    #[error("{file}: holds no image: there is nothing to train on or evaluate", file = file.display())]
    Empty {
        /// The images file.
        file: PathBuf,
    },
    /// Bytes follow the last gzip member that are not a gzip member themselves.
    #[error(
        "{file}: {bytes} bytes of something other than gzip data follow the compressed data; the file is damaged or was appended to",
        file = file.display()
    )]
    TrailingBytes {
        /// The file.
        file: PathBuf,
        /// How many bytes follow.
        bytes: usize,
    },
    /// The decompressed data exceed the limit.
    #[error("{file}: decompresses to more than {limit} bytes", file = file.display())]
    TooLarge {
        /// The file.
        file: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The magic number is not the expected one (not an IDX file of this kind).
    #[error("{file}: magic number {found:#010x}, expected {expected:#010x}", file = file.display())]
    BadMagic {
        /// The file.
        file: PathBuf,
        /// The magic number expected.
        expected: u32,
        /// The one found.
        found: u32,
    },
    /// The file ends before its header or data do.
    #[error("{file}: truncated {what}: {needed} bytes needed, {found} present", file = file.display())]
    Truncated {
        /// The file.
        file: PathBuf,
        /// What is cut: `"magic number"`, `"header"` or `"data"`.
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        found: u64,
    },
    /// The header declares another number of elements than the file holds.
    #[error("{file}: header declares {declared} elements, the file holds {present}", file = file.display())]
    LengthMismatch {
        /// The file.
        file: PathBuf,
        /// Elements declared (`u64::MAX` if the product overflows).
        declared: u64,
        /// Elements present.
        present: u64,
    },
    /// An images file does not have three dimensions.
    #[error("{file}: {found} dimensions, expected {expected}", file = file.display())]
    Dimensions {
        /// The file.
        file: PathBuf,
        /// Dimensions expected.
        expected: usize,
        /// Dimensions found.
        found: usize,
    },
    /// Images and labels disagree in number.
    #[error("{file}: {images} images but {labels} labels", file = file.display())]
    CountMismatch {
        /// The labels file.
        file: PathBuf,
        /// Images.
        images: usize,
        /// Labels.
        labels: usize,
    },
    /// A label is not one of the classes.
    #[error("{file}: label {label} of image {index} is not in 0..{classes}", file = file.display())]
    LabelOutOfRange {
        /// The labels file.
        file: PathBuf,
        /// The image.
        index: usize,
        /// Its label.
        label: u8,
        /// The number of classes.
        classes: usize,
    },
    /// Labels given with examples in memory do not fit them.
    #[error("the labels do not fit the examples: {detail}")]
    Labels {
        /// What is wrong, with the numbers.
        detail: String,
    },
    /// Data augmentation settings or a batch that do not fit.
    #[error("augmentation: {detail}")]
    Augmentation {
        /// What is wrong, with the numbers.
        detail: String,
    },
}
