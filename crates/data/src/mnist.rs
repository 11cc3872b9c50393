//! MNIST: its four IDX files, its constants, and its two splits as [`Images`].

use std::path::{Path, PathBuf};

use crate::{DataError, Images};

/// The standard file names (gzip-compressed or not; the `.gz` suffix is optional).
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Number of classes (digits 0–9).
pub const CLASSES: usize = 10;

/// The shape of one image, channels × height × width.
pub const IMAGE: (usize, usize, usize) = (1, 28, 28);

/// Mean of MNIST's training pixels scaled to `[0, 1]` (the value PyTorch's examples use; this
/// crate's tests recompute it from the files).
pub const MEAN: f64 = 0.1307;

/// Standard deviation of MNIST's training pixels scaled to `[0, 1]`.
pub const STD: f64 = 0.3081;

/// MNIST's training and test splits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mnist {
    /// The 60 000 training images.
    pub train: Images,
    /// The 10 000 test images.
    pub test: Images,
}

impl Mnist {
    /// Loads the four standard files from `dir` (each gzip-compressed or raw, with or without
    /// `.gz`).
    ///
    /// # Errors
    /// [`DataError::MissingDirectory`] / [`DataError::MissingFile`] with the path and how to fix
    /// it, or any error of a file.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, DataError> {
        let [train_images, train_labels, test_images, test_labels] = Self::find(dir.as_ref())?;
        Ok(Self {
            train: Images::read(&train_images?, &train_labels?, CLASSES)?,
            test: Images::read(&test_images?, &test_labels?, CLASSES)?,
        })
    }

    /// Loads the test split only (the two `t10k` files): what evaluation and prediction need,
    /// so a directory without the training files, or with a damaged one, still serves them.
    ///
    /// # Errors
    /// As [`Mnist::load`], for the two test files.
    pub fn load_test(dir: impl AsRef<Path>) -> Result<Images, DataError> {
        let [_, _, test_images, test_labels] = Self::find(dir.as_ref())?;
        Images::read(&test_images?, &test_labels?, CLASSES)
    }

    /// The paths of the four files in `dir` (each `.gz` or raw), each found or an error.
    fn find(dir: &Path) -> Result<[Result<PathBuf, DataError>; 4], DataError> {
        if !dir.is_dir() {
            return Err(DataError::MissingDirectory {
                dir: dir.to_path_buf(),
            });
        }
        let find = |name: &str| -> Result<PathBuf, DataError> {
            [format!("{name}.gz"), name.to_string()]
                .into_iter()
                .map(|f| dir.join(f))
                .find(|p| p.is_file())
                .ok_or_else(|| DataError::MissingFile {
                    dir: dir.to_path_buf(),
                    file: name.to_string(),
                })
        };
        Ok(FILES.map(find))
    }
}
