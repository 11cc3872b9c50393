//! Data-parallel training without MPI: P ranks as P threads (each with its own model and a
//! one-thread pool) exchanging through shared memory. The reproducible mode gives the same
//! parameters, bit for bit, for P = 1, 2, 3 (mini-batch and full batch, with dropout); the fast
//! mode the same within rounding; replicas that differ are refused naming the rank; a network
//! with batch normalisation gets the same parameters and running statistics on every rank.

use std::ops::ControlFlow;
use std::sync::{Arc, Barrier, Mutex};

use nalgebra::DMatrix;
use retroprop_core::rng::Rng;
use retroprop_layers::{BatchNorm, BatchNormConfig, Dense, Dropout, Init, Layer, Relu, Shape};
use retroprop_losses::CrossEntropy;
use retroprop_models::collective::{Collective, DataParallel, ReduceMode};
use retroprop_models::{BatchSize, FitConfig, InMemory, ModelError, Sequential, fit};
use retroprop_optim::{Adam, Momentum, Optimizer, Sgd};

struct Shared {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<f64>>>,
}

/// Rank `rank` of a group of threads.
struct Rank {
    rank: usize,
    shared: Arc<Shared>,
}

impl Collective for Rank {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.slots.lock().unwrap().len()
    }
    fn all_gather(&self, local: &[f64]) -> Result<Vec<f64>, ModelError> {
        self.shared.slots.lock().unwrap()[self.rank] = local.to_vec();
        self.shared.barrier.wait();
        let out = self.shared.slots.lock().unwrap().concat();
        self.shared.barrier.wait();
        Ok(out)
    }
    fn all_reduce_sum(&self, data: &mut [f64]) -> Result<(), ModelError> {
        let all = self.all_gather(data)?;
        data.fill(0.0);
        for part in all.chunks_exact(data.len()) {
            data.iter_mut().zip(part).for_each(|(d, v)| *d += v);
        }
        Ok(())
    }
}

fn network(seed: u64, dropout: bool) -> Sequential<f32> {
    let net = Sequential::new(Shape::Flat(6))
        .push(Dense::new(6, 16, Init::HeUniform { seed }).unwrap())
        .unwrap()
        .push(Relu::new())
        .unwrap();
    let net = if dropout {
        net.push(Dropout::new(0.2).unwrap()).unwrap()
    } else {
        net
    };
    net.push(Dense::new(16, 3, Init::HeUniform { seed: seed + 1 }).unwrap())
        .unwrap()
}

/// The network of the tests without dropout, with a batch normalisation after its first layer.
fn with_batch_norm(seed: u64) -> Sequential<f32> {
    Sequential::new(Shape::Flat(6))
        .push(Dense::new(6, 16, Init::HeUniform { seed }).unwrap())
        .unwrap()
        .push(BatchNorm::new_1d(BatchNormConfig::new(16)).unwrap())
        .unwrap()
        .push(Relu::new())
        .unwrap()
        .push(Dense::new(16, 3, Init::HeUniform { seed: seed + 1 }).unwrap())
        .unwrap()
}

fn data() -> InMemory<f32> {
    let mut rng = Rng::new(5);
    let x = DMatrix::from_fn(6, 250, |_, _| rng.uniform(-1.0, 1.0) as f32);
    let labels = (0..250)
        .map(|j| usize::from(x[(0, j)] > 0.0) + usize::from(x[(1, j)] > 0.3))
        .collect();
    InMemory::new(x, labels, 3).unwrap()
}

/// Every rank's parameters (then buffers, if any) after training on `p` ranks.
fn train(
    p: usize,
    batch: BatchSize,
    mode: ReduceMode,
    dropout: bool,
    seeds: &[u64],
) -> Vec<Result<Vec<f32>, ModelError>> {
    let build = if dropout {
        |seed| network(seed, true)
    } else {
        |seed| network(seed, false)
    };
    train_with(p, batch, mode, seeds, false, build)
}

/// The same for the network `build(seed)`, with AdamW instead of SGD if `adam`.
fn train_with(
    p: usize,
    batch: BatchSize,
    mode: ReduceMode,
    seeds: &[u64],
    adam: bool,
    build: fn(u64) -> Sequential<f32>,
) -> Vec<Result<Vec<f32>, ModelError>> {
    let shared = Arc::new(Shared {
        barrier: Barrier::new(p),
        slots: Mutex::new(vec![Vec::new(); p]),
    });
    let data = Arc::new(data());
    let handles: Vec<_> = (0..p)
        .map(|rank| {
            let (shared, data) = (shared.clone(), data.clone());
            let seed = seeds[rank.min(seeds.len() - 1)];
            std::thread::spawn(move || {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let mut net = build(seed);
                    let mut optimizer: Box<dyn Optimizer<f32>> = if adam {
                        Box::new(Adam::adamw(0.01).unwrap())
                    } else {
                        let sgd = Sgd::new(0.1).unwrap();
                        Box::new(sgd.with_momentum(Momentum::Heavy { mu: 0.9 }).unwrap())
                    };
                    let parallel = DataParallel {
                        collective: Arc::new(Rank { rank, shared }),
                        mode,
                    };
                    let config = FitConfig::new(3, batch).seed(11).data_parallel(parallel);
                    fit(
                        &mut net,
                        data.as_ref(),
                        &CrossEntropy::default(),
                        optimizer.as_mut(),
                        &config,
                        |_, _| ControlFlow::Continue(()),
                    )?;
                    let mut values = Vec::new();
                    net.visit_params(&mut |_, p| values.extend(p.value().iter().copied()));
                    net.visit_buffers(&mut |_, b| values.extend(b.value().iter().copied()));
                    Ok(values)
                })
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn the_reproducible_mode_gives_the_same_bits_on_one_two_and_three_ranks() {
    for (batch, dropout) in [
        (BatchSize::Mini(64), true),
        (BatchSize::Full, false),
        (BatchSize::Mini(100), false),
    ] {
        let one = train(1, batch, ReduceMode::Reproducible, dropout, &[3])
            .remove(0)
            .unwrap();
        for p in [2, 3] {
            for (rank, params) in train(p, batch, ReduceMode::Reproducible, dropout, &[3])
                .into_iter()
                .enumerate()
            {
                let params = params.unwrap();
                assert!(
                    params == one,
                    "{batch:?}: rank {rank} of {p} differs from one process"
                );
            }
        }
        // and training moved the parameters
        let start: Vec<f32> = {
            let net = network(3, dropout);
            let mut v = Vec::new();
            net.visit_params(&mut |_, p| v.extend(p.value().iter().copied()));
            v
        };
        assert!(start != one);
    }
}

/// The largest deviation of `values` from `exact`, relative where `|exact| > 1`.
fn worst_deviation(values: &[f32], exact: &[f32]) -> f32 {
    values
        .iter()
        .zip(exact)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
        .fold(0.0f32, f32::max)
}

#[test]
fn the_fast_mode_agrees_within_rounding() {
    let exact = train(
        1,
        BatchSize::Mini(64),
        ReduceMode::Reproducible,
        false,
        &[3],
    )
    .remove(0)
    .unwrap();
    for params in train(3, BatchSize::Mini(64), ReduceMode::Fast, false, &[3]) {
        let worst = worst_deviation(&params.unwrap(), &exact);
        assert!(worst < 1e-4, "fast mode deviates by {worst}");
    }
}

#[test]
fn replicas_that_differ_are_refused_naming_the_rank() {
    let results = train(
        3,
        BatchSize::Mini(64),
        ReduceMode::Reproducible,
        false,
        &[3, 3, 4],
    );
    for r in results {
        let err = r.unwrap_err();
        assert!(matches!(err, ModelError::Collective { .. }), "{err}");
        assert!(err.to_string().contains("rank 2"), "{err}");
    }
}

#[test]
fn adamw_gives_the_same_bits_on_three_ranks_too() {
    let with_dropout = |seed| network(seed, true);
    let one = train_with(
        1,
        BatchSize::Mini(64),
        ReduceMode::Reproducible,
        &[3],
        true,
        with_dropout,
    )
    .remove(0)
    .unwrap();
    for params in train_with(
        3,
        BatchSize::Mini(64),
        ReduceMode::Reproducible,
        &[3],
        true,
        with_dropout,
    ) {
        assert!(params.unwrap() == one);
    }
}

#[test]
fn batch_normalisation_gives_the_same_parameters_and_running_statistics_on_every_rank() {
    for batch in [BatchSize::Mini(100), BatchSize::Full] {
        let one = train_with(
            1,
            batch,
            ReduceMode::Reproducible,
            &[3],
            false,
            with_batch_norm,
        )
        .remove(0)
        .unwrap();
        for p in [2, 3] {
            for (rank, values) in train_with(
                p,
                batch,
                ReduceMode::Reproducible,
                &[3],
                false,
                with_batch_norm,
            )
            .into_iter()
            .enumerate()
            {
                assert!(
                    values.unwrap() == one,
                    "{batch:?}: rank {rank} of {p} differs from one process"
                );
            }
        }
        // the running statistics moved from their start (mean 0, variance 1, 0 batches)
        let net = with_batch_norm(3);
        let mut start = Vec::new();
        net.visit_params(&mut |_, p| start.extend(p.value().iter().copied()));
        let n_params = start.len();
        net.visit_buffers(&mut |_, b| start.extend(b.value().iter().copied()));
        assert!(
            one[n_params..] != start[n_params..],
            "{batch:?}: buffers unchanged"
        );
        // the fast mode agrees within rounding, buffers included
        for values in train_with(3, batch, ReduceMode::Fast, &[3], false, with_batch_norm) {
            let worst = worst_deviation(&values.unwrap(), &one);
            assert!(worst < 1e-4, "{batch:?}: fast mode deviates by {worst}");
        }
    }
}

#[test]
fn a_sharded_evaluation_is_the_evaluation_of_the_whole_set() {
    use retroprop_models::collective::evaluate_sharded;
    let whole =
        retroprop_models::evaluate(&network(3, false), &data(), &CrossEntropy::default()).unwrap();
    let p = 3;
    let shared = Arc::new(Shared {
        barrier: Barrier::new(p),
        slots: Mutex::new(vec![Vec::new(); p]),
    });
    let handles: Vec<_> = (0..p)
        .map(|rank| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let collective = Rank { rank, shared };
                evaluate_sharded(
                    &network(3, false),
                    &data(),
                    &CrossEntropy::default(),
                    &collective,
                )
                .unwrap()
            })
        })
        .collect();
    for h in handles {
        let shard = h.join().unwrap();
        assert_eq!(shard.confusion, whole.confusion);
        assert_eq!(shard.examples, 250);
        assert!((shard.loss - whole.loss).abs() < 1e-12 * whole.loss);
    }
}
