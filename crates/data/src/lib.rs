//! # retroprop-data
//!
//! Data for retroprop, below the models: the [`Source`] trait training and evaluation read
//! from (generic in the number of classes and the size of an example), [`InMemory`], batching
//! written once ([`Batch`], [`EpochOrder`], [`Batches`]), labelled grey-level images of any size
//! and class count ([`Images`]), a defensive reader of the IDX format (gzip-compressed or raw,
//! detected by content), and MNIST as one dataset among them ([`mnist`]: its files, constants
//! and splits).
//!
//! Bad files are typed errors that name the file and what is wrong: wrong magic, a header whose
//! sizes disagree with the data (checked before allocating anything sized by the header),
//! truncation, images/labels count mismatch, labels out of range, a corrupt gzip stream.
//!
//! It sits on `retroprop-core` alone (for `Scalar`, the seeded RNG and the two-core split);
//! `retroprop-models` trains on its sources.
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

mod augment;
mod batch;
mod error;
pub mod idx;
mod images;
pub mod mnist;
mod source;

pub use augment::Augmentation;
pub use batch::{Batch, Batches, EpochOrder};
pub use error::DataError;
pub use images::{Images, pixel};
pub use mnist::Mnist;
pub use source::{InMemory, Source};
