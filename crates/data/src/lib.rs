//! # retroprop-data
//!
//! MNIST for retroprop: a defensive reader of the IDX format (gzip-compressed or raw, detected
//! by content), the train and test splits kept as bytes, an optional seeded validation split,
//! and batches with one column per image (784 values in `[0, 1]`) — through `Batches`, or
//! directly by `retroprop-models`' `fit` and `evaluate`, since [`Images`] implements
//! `retroprop_models::Source`.
//!
//! Bad files are typed errors that name the file and what is wrong: wrong magic, a header whose
//! sizes disagree with the data (checked before allocating anything sized by the header),
//! truncation, images/labels count mismatch, labels out of range, a corrupt gzip stream.
//!
//! It sits at the application end of the stack: on `retroprop-models` (for `Source`) and
//! `retroprop-activations` (for `Scalar`).
//!
//! ```no_run
//! use retroprop_data::{DataError, Mnist};
//!
//! # fn main() -> Result<(), DataError> {
//! let mnist = Mnist::load("data/mnist")?;
//! assert_eq!((mnist.train.len(), mnist.test.len()), (60_000, 10_000));
//! let mut batches = mnist.train.batches::<f32>(128, 7);
//! while let Some((x, labels)) = batches.next() {
//!     assert_eq!(x.nrows(), 784);
//!     assert_eq!(x.ncols(), labels.len());
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
pub mod idx;
mod mnist;

pub use error::DataError;
pub use mnist::{Batches, CLASSES, FILES, Images, Mnist, pixel};
