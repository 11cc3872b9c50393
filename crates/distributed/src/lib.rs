//! # retroprop-distributed
//!
//! Data-parallel training across processes: `Mpi` (with the `mpi` feature) implements
//! [`retroprop_models::collective::Collective`] over MPI (Open MPI through the `mpi` crate),
//! behind this crate's `mpi` feature, so that a default build needs no MPI installed. Give it
//! to `fit` with `FitConfig::data_parallel`; the reduction scheme (reproducible or fast) is
//! described in [`retroprop_models::collective`] and docs/distributed.md.
//!
//! ```text
//! apt-get install openmpi-bin libopenmpi-dev libclang-dev
//! cargo build --release -p retroprop --features mpi
//! mpirun -np 4 target/release/retroprop train --distributed …
//! ```
#![deny(missing_docs)]

pub use retroprop_models::collective::{Collective, DataParallel, Local, ReduceMode};

#[cfg(feature = "mpi")]
mod world;

#[cfg(feature = "mpi")]
pub use world::Mpi;
