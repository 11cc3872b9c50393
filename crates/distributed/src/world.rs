//! The MPI world as a [`Collective`].

use std::sync::Mutex;

use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};
use retroprop_models::ModelError;
use retroprop_models::collective::Collective;

/// `MPI_COMM_WORLD`, initialised with `MPI_THREAD_SERIALIZED`: `fit` calls it from a worker
/// thread, one call at a time (the mutex makes that a guarantee).
pub struct Mpi {
    world: Mutex<SimpleCommunicator>,
    rank: usize,
    size: usize,
    // finalises MPI when dropped, after the communicator
    _universe: Universe,
}

// SAFETY: MPI is initialised with MPI_THREAD_SERIALIZED, which allows calls from any thread as
// long as no two are concurrent; every call goes through the mutex.
unsafe impl Send for Mpi {}
// SAFETY: as above: shared references only reach MPI through the mutex.
unsafe impl Sync for Mpi {}

impl Mpi {
    /// Initialises MPI (once per process).
    ///
    /// # Errors
    /// A message if MPI is already initialised or does not provide serialised threading.
    pub fn init() -> Result<Self, String> {
        let (universe, level) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or("MPI was already initialised in this process")?;
        if level < Threading::Serialized {
            return Err(format!(
                "this MPI provides threading level {level:?}, and training needs Serialized"
            ));
        }
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Ok(Self {
            world: Mutex::new(world),
            rank,
            size,
            _universe: universe,
        })
    }

    /// Waits until every rank has come here (`MPI_Barrier`): rank 0 has written the run before
    /// any rank finalises MPI and exits.
    pub fn barrier(&self) {
        let world = self
            .world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        world.barrier();
    }

    /// Stops every process of the job with `code` (`MPI_Abort`): what a rank that fails does,
    /// so that the others do not wait for it forever.
    pub fn abort(&self, code: i32) -> ! {
        let world = self
            .world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        world.abort(code)
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_gather(&self, local: &[f64]) -> Result<Vec<f64>, ModelError> {
        let mut out = vec![0.0; local.len() * self.size];
        let world = self.world.lock().map_err(|_| ModelError::Collective {
            detail: "a thread panicked during a collective call".to_string(),
        })?;
        world.all_gather_into(local, &mut out[..]);
        Ok(out)
    }

    fn all_reduce_sum(&self, data: &mut [f64]) -> Result<(), ModelError> {
        let mut out = vec![0.0; data.len()];
        let world = self.world.lock().map_err(|_| ModelError::Collective {
            detail: "a thread panicked during a collective call".to_string(),
        })?;
        world.all_reduce_into(&*data, &mut out[..], SystemOperation::sum());
        data.copy_from_slice(&out);
        Ok(())
    }
}
