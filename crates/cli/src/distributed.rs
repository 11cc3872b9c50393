//! `train --distributed`: the MPI world when the program is built with the `mpi` feature, and
//! a clear refusal when it is not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::ValueEnum;
use retroprop_models::collective::{Collective, ReduceMode};
use serde::{Deserialize, Serialize};

/// How the gradients of the ranks are combined (`--reduce`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reduce {
    /// Every chunk gradient gathered and summed in a fixed order: the bits of one process.
    #[default]
    Reproducible,
    /// One all-reduce of each rank's partial sum, in MPI's order.
    Fast,
}

impl Reduce {
    pub(crate) fn mode(self) -> ReduceMode {
        match self {
            Reduce::Reproducible => ReduceMode::Reproducible,
            Reduce::Fast => ReduceMode::Fast,
        }
    }
}

/// Set on every rank but 0: they train in silence and write nothing.
static QUIET: AtomicBool = AtomicBool::new(false);

/// `true` on the ranks that must not print or write.
pub(crate) fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// The MPI world of this process, once initialised; taken (and MPI finalised) by [`finish`].
#[cfg(feature = "mpi")]
static WORLD: std::sync::Mutex<Option<Arc<retroprop_distributed::Mpi>>> =
    std::sync::Mutex::new(None);

#[cfg(feature = "mpi")]
fn held() -> std::sync::MutexGuard<'static, Option<Arc<retroprop_distributed::Mpi>>> {
    WORLD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The MPI world (initialised on first use); ranks other than 0 become quiet.
#[cfg(feature = "mpi")]
pub(crate) fn world() -> Result<Arc<dyn Collective>, String> {
    let mut held = held();
    let world = match held.as_ref() {
        Some(w) => w.clone(),
        None => held
            .insert(Arc::new(retroprop_distributed::Mpi::init()?))
            .clone(),
    };
    if world.rank() != 0 {
        QUIET.store(true, Ordering::Relaxed);
    }
    Ok(world)
}

/// After a run that succeeded: every rank waits for the others (rank 0 has written the run),
/// then MPI is finalised. Nothing without a distributed run.
pub(crate) fn finish() {
    #[cfg(feature = "mpi")]
    if let Some(world) = held().take() {
        world.barrier();
        // the last reference: dropping it finalises MPI
        drop(world);
    }
}

/// Without the `mpi` feature: how to get it.
#[cfg(not(feature = "mpi"))]
pub(crate) fn world() -> Result<Arc<dyn Collective>, String> {
    Err("--distributed: this retroprop was built without MPI; install Open MPI (Debian: apt-get install openmpi-bin libopenmpi-dev libclang-dev) and build with `cargo build --release -p retroprop --features mpi`".to_string())
}

/// On a failure in a distributed run: says which rank failed and stops every rank
/// (`MPI_Abort`), so that none waits for it. Returns if the run is not distributed.
pub(crate) fn fail(message: &str) {
    #[cfg(feature = "mpi")]
    if let Some(w) = held().as_ref()
        && w.size() > 1
    {
        eprintln!(
            "retroprop: rank {} of {}: error: {message}",
            w.rank(),
            w.size()
        );
        w.abort(1);
    }
    let _ = message;
}
