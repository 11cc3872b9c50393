//! Training and evaluation: `fit` over a data source, `evaluate` on another.

use std::ops::ControlFlow;
use std::time::Instant;

use nalgebra::DMatrix;
use retroprop_core::{Normalize, Scalar};
use retroprop_layers::Layer;
use retroprop_losses::{Loss, Target};
use retroprop_optim::{Constant, Optimizer, Schedule};
use serde::Serialize;

use retroprop_data::{Augmentation, Batch, EpochOrder, Source};

use crate::collective::{CHUNK, DataParallel, check_replicas, sharded_gradient};
use crate::evaluation::correct;
use crate::lanes::{self, Lanes};
use crate::{MemoryEstimate, ModelError, Sequential, guard};

/// How many examples each optimizer step sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchSize {
    /// Full-batch gradient descent (question 2j): one step per epoch, on the gradient of the
    /// empirical risk over every example. Computed in chunks whose gradients are summed before
    /// the step, so memory stays bounded; the step is the same.
    Full,
    /// Mini-batch SGD: a step per batch of this many examples, in a seeded shuffled order
    /// (the last batch of an epoch may be smaller).
    Mini(usize),
}

/// What [`fit`] does.
pub struct FitConfig {
    /// Passes over the data, in total (Lightning's `max_epochs`: a resumed run counts the epochs
    /// it had done).
    pub epochs: usize,
    /// Epochs already done by the run being resumed (0 for a new run). `fit` replays their
    /// shuffles, so epoch `k + 1` sees the order it would have seen without the interruption;
    /// with the optimizer state restored ([`Optimizer::restore`]) the run continues bit for bit.
    pub done: usize,
    /// Examples per optimizer step.
    pub batch: BatchSize,
    /// Seed of the shuffling (weights are seeded when the model is built).
    pub seed: u64,
    /// Learning rate per epoch, from the optimizer's rate at the start of `fit`.
    pub schedule: Box<dyn Schedule>,
    /// Gradient clipping before each step (none by default).
    pub clip: Clip,
    /// Random distortions of each training batch (none by default), seeded from `seed`, the
    /// epoch and the step like dropout, so runs repeat and resume bit for bit.
    pub augment: Option<Augmentation>,
    /// Data-parallel training over several processes (none by default; see
    /// [`collective`](crate::collective)).
    pub parallel: Option<DataParallel>,
}

/// Gradient clipping applied after the backward pass and before each optimizer step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Clip {
    /// No clipping.
    #[default]
    None,
    /// Rescale all gradients to a global 2-norm of at most this (`clip_grad_norm_`).
    Norm(f64),
    /// Clamp every gradient entry to `[−c, c]` (`clip_grad_value_`).
    Value(f64),
}

impl Clip {
    fn apply<T: Scalar>(self, model: &mut Sequential<T>) -> Result<(), ModelError> {
        match self {
            Clip::None => {}
            Clip::Norm(max) => {
                retroprop_optim::clip_grad_norm(model, max)?;
            }
            Clip::Value(c) => retroprop_optim::clip_grad_value(model, c)?,
        }
        Ok(())
    }
}

impl FitConfig {
    /// `epochs` of mini-batches of `batch` examples, seed 0, constant learning rate.
    pub fn new(epochs: usize, batch: BatchSize) -> Self {
        Self {
            epochs,
            done: 0,
            batch,
            seed: 0,
            schedule: Box::new(Constant),
            clip: Clip::None,
            augment: None,
            parallel: None,
        }
    }

    /// Training data-parallel over `parallel`'s processes.
    pub fn data_parallel(mut self, parallel: DataParallel) -> Self {
        self.parallel = Some(parallel);
        self
    }

    /// With data augmentation of every training batch.
    pub fn augment(mut self, augmentation: Augmentation) -> Self {
        self.augment = Some(augmentation);
        self
    }

    /// With gradient clipping before each step.
    pub fn clip(mut self, clip: Clip) -> Self {
        self.clip = clip;
        self
    }

    /// Continuing a run that has done `done` of its epochs.
    pub fn resume_after(mut self, done: usize) -> Self {
        self.done = done;
        self
    }

    /// With this shuffling seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// With this learning-rate schedule.
    pub fn schedule(mut self, schedule: impl Schedule + 'static) -> Self {
        self.schedule = Box::new(schedule);
        self
    }
}

/// Statistics of one training epoch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpochStats {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's examples (as the parameters moved).
    pub train_loss: f64,
    /// Fraction of the epoch's examples classified correctly (as the parameters moved).
    pub train_accuracy: f64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Wall-clock seconds of the epoch's training (callbacks excluded).
    pub seconds: f64,
    /// Optimizer steps taken.
    pub steps: usize,
}

/// What [`fit`] reports to its callback.
#[derive(Clone, Debug, PartialEq)]
pub enum Event<'a> {
    /// After each optimizer step.
    Step {
        /// Epoch number, from 1.
        epoch: usize,
        /// Step within the epoch, from 1.
        step: usize,
        /// Steps in the epoch.
        steps: usize,
        /// Examples seen so far in the epoch.
        seen: usize,
        /// Examples in the epoch.
        total: usize,
        /// Running mean loss over the epoch.
        loss: f64,
        /// Running accuracy over the epoch.
        accuracy: f64,
    },
    /// After each epoch.
    Epoch(&'a EpochStats),
}

/// The result of [`fit`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FitReport {
    /// One entry per completed epoch.
    pub epochs: Vec<EpochStats>,
    /// `true` if the callback stopped training early.
    pub stopped_early: bool,
}

pub(crate) fn check_source<T: Scalar>(
    model: &Sequential<T>,
    data: &dyn Source<T>,
) -> Result<(), ModelError> {
    let expected = model.input_shape().len();
    if data.is_empty() {
        return Err(ModelError::EmptyData);
    }
    if data.features() != expected {
        return Err(ModelError::Data {
            examples: data.len(),
            features: data.features(),
            expected,
        });
    }
    // one score per class, or one logit for two classes (the binary losses)
    let outputs = model.output_shape().len();
    let classes = data.classes();
    if outputs != classes && !(outputs == 1 && classes == 2) {
        return Err(ModelError::Classes { outputs, classes });
    }
    Ok(())
}

/// Trains `model` on `data` for `config.epochs` epochs, minimising `loss` with `optimizer`.
///
/// Each step: zero the gradients, forward, loss and `dL/dy`, backward (parameters only: the data
/// need no gradient), optimizer step. The callback sees every step and every epoch with the
/// model, and stops training by returning `ControlFlow::Break(())` (early stopping, a test-set
/// evaluation after each epoch, progress bars). With the same seeds the same run gives the same
/// parameters, bit for bit, on the same machine and thread count.
///
/// ```
/// use std::ops::ControlFlow;
/// use nalgebra::DMatrix;
/// use retroprop_layers::Init;
/// use retroprop_losses::CrossEntropy;
/// use retroprop_models::{BatchSize, FitConfig, InMemory, ModelError, fit, mlp};
/// use retroprop_optim::Sgd;
///
/// # fn main() -> Result<(), ModelError> {
/// // two well-separated classes in the plane
/// let x = DMatrix::from_fn(2, 40, |i, j| if (j % 2 == 0) == (i == 0) { 1.0 } else { -1.0 });
/// let labels: Vec<usize> = (0..40).map(|j| j % 2).collect();
/// let data = InMemory::new(x, labels, 2)?;
/// let mut net = mlp::<f64>(2, 8, 2, Init::XavierUniform { seed: 1 })?;
/// let mut sgd = Sgd::new(0.5)?;
/// let report = fit(&mut net, &data, &CrossEntropy::default(), &mut sgd,
///                  &FitConfig::new(20, BatchSize::Mini(8)), |_, _| ControlFlow::Continue(()))?;
/// assert_eq!(report.epochs.last().unwrap().train_accuracy, 1.0);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`ModelError`] if the data do not fit the model (features, or outputs against classes:
/// [`ModelError::Classes`]), a setting is zero, the schedule reaches a rate that is not finite
/// and positive ([`ModelError::Schedule`], before any step), or a layer, the loss or the
/// optimizer fails. A non-finite loss (checked every step) or parameter (every epoch) stops
/// training with [`ModelError::Diverged`], after putting the model back to its parameters at
/// the end of the last good epoch: a diverging run never leaves a NaN model behind.
pub fn fit<T: Scalar>(
    model: &mut Sequential<T>,
    data: &dyn Source<T>,
    loss: &dyn Loss<T>,
    optimizer: &mut dyn Optimizer<T>,
    config: &FitConfig,
    callback: impl FnMut(&Event<'_>, &Sequential<T>) -> ControlFlow<()> + Send,
) -> Result<FitReport, ModelError> {
    // The loop runs on a rayon worker, so the parallel work inside every step (GEMM blocks,
    // batch conversion, parameter updates) is shared by work-stealing instead of being handed
    // from this thread to the pool and back several times per step.
    rayon::scope(|_| fit_on_worker(model, data, loss, optimizer, config, callback))
}

fn fit_on_worker<T: Scalar>(
    model: &mut Sequential<T>,
    data: &dyn Source<T>,
    loss: &dyn Loss<T>,
    optimizer: &mut dyn Optimizer<T>,
    config: &FitConfig,
    mut callback: impl FnMut(&Event<'_>, &Sequential<T>) -> ControlFlow<()>,
) -> Result<FitReport, ModelError> {
    check_source(model, data)?;
    if let Some(par) = &config.parallel {
        check_replicas(model, par.collective.as_ref())?;
    }
    if config.epochs == 0 {
        return Err(ModelError::Setting {
            name: "epochs",
            value: 0,
        });
    }
    if config.batch == BatchSize::Mini(0) {
        return Err(ModelError::Setting {
            name: "batch size",
            value: 0,
        });
    }
    if config.done >= config.epochs {
        return Err(ModelError::NothingToResume {
            done: config.done,
            epochs: config.epochs,
        });
    }
    let n = data.len();
    let base_lr = optimizer.learning_rate();
    guard::check_schedule(config.schedule.as_ref(), base_lr, config.epochs)?;
    let mut last_good = guard::Snapshot::take(model, config.done);
    // the full batch is summed in chunks whose activations fit in CHUNK_BYTES
    let full_chunk = MemoryEstimate::of(model).training_chunk();
    // two lanes for the full batch when the model allows it (never for data-parallel runs)
    let mut lanes = match (config.batch, &config.parallel) {
        (BatchSize::Full, None) => Lanes::for_model(model, n.div_ceil(full_chunk), full_chunk),
        _ => None,
    };
    let mut order = EpochOrder::new(n, config.seed);
    let mut batch = Batch::new();
    let mut report = FitReport {
        epochs: Vec::new(),
        stopped_early: false,
    };
    if let BatchSize::Mini(_) = config.batch {
        // the shuffles of the epochs done, so the next one sees the order it would have
        order.skip(config.done);
    }

    for epoch in config.done + 1..=config.epochs {
        let lr = config.schedule.rate(base_lr, epoch - 1);
        optimizer.set_learning_rate(lr)?;
        let started = Instant::now();
        let (mut loss_sum, mut hits, mut seen, mut steps) = (0.0, 0usize, 0usize, 0usize);
        match config.batch {
            BatchSize::Mini(size) => {
                let total_steps = n.div_ceil(size);
                for indices in order.next_epoch().chunks(size) {
                    let step = steps + 1;
                    let (batch_loss, batch_hits) = match &config.parallel {
                        Some(par) => {
                            let t = sharded_gradient(
                                model,
                                data,
                                loss,
                                indices,
                                indices.len(),
                                CHUNK,
                                par,
                                &mut |m, b, k| prepare_chunk(config, m, b, epoch, step, k),
                            )?;
                            (t.loss_sum, t.hits)
                        }
                        None => {
                            model.reseed(step_seed(config.seed, epoch, step));
                            model.zero_grad();
                            let logits = load_and_forward(
                                model, data, config, &mut batch, indices, epoch, step,
                            )?;
                            let out = loss.evaluate(&logits, Target::Labels(&batch.labels))?;
                            model.backward_params(&out.grad)?;
                            let sum = out.per_example.iter().map(|l| l.to_f64()).sum::<f64>();
                            (sum, correct(&logits, &batch.labels))
                        }
                    };
                    if !batch_loss.is_finite() {
                        let what = "the loss".to_string();
                        return Err(diverged(
                            model, &last_good, report, epoch, step, what, batch_loss,
                        ));
                    }
                    config.clip.apply(model)?;
                    optimizer.step(model)?;
                    loss_sum += batch_loss;
                    hits += batch_hits;
                    seen += indices.len();
                    steps += 1;
                    let event = Event::Step {
                        epoch,
                        step: steps,
                        steps: total_steps,
                        seen,
                        total: n,
                        loss: loss_sum / seen as f64,
                        accuracy: hits as f64 / seen as f64,
                    };
                    if callback(&event, model).is_break() {
                        report.stopped_early = true;
                        break;
                    }
                }
            }
            BatchSize::Full => {
                // ∇R̂ over all n examples = Σ over chunks of each chunk's summed gradient / n, in
                // two lanes (one per core) when the model allows it (`lanes`)
                if let Some(par) = &config.parallel {
                    let t = sharded_gradient(
                        model,
                        data,
                        loss,
                        order.current(),
                        n,
                        full_chunk,
                        par,
                        &mut |m, b, k| prepare_chunk(config, m, b, epoch, 1, k),
                    )?;
                    (loss_sum, hits, seen) = (t.loss_sum, t.hits, n);
                } else {
                    model.zero_grad();
                    let chunks: Vec<&[usize]> = order.current().chunks(full_chunk).collect();
                    let sums = match lanes.as_mut() {
                        Some(lanes) => {
                            lanes.gradient(model, data, loss, config, &chunks, epoch, n)?
                        }
                        None => lanes::run(model, data, loss, config, &chunks, 0, epoch, n)?,
                    };
                    (loss_sum, hits, seen) = (sums.loss, sums.hits, sums.seen);
                }
                if !loss_sum.is_finite() {
                    let what = "the loss".to_string();
                    return Err(diverged(
                        model, &last_good, report, epoch, 1, what, loss_sum,
                    ));
                }
                config.clip.apply(model)?;
                optimizer.step(model)?;
                steps = 1;
                let event = Event::Step {
                    epoch,
                    step: 1,
                    steps: 1,
                    seen,
                    total: n,
                    loss: loss_sum / seen as f64,
                    accuracy: hits as f64 / seen as f64,
                };
                if callback(&event, model).is_break() {
                    report.stopped_early = true;
                }
            }
        }
        if let Some((path, i, value)) = guard::first_non_finite(model) {
            let what = format!("parameter {path}[{i}]");
            return Err(diverged(
                model, &last_good, report, epoch, steps, what, value,
            ));
        }
        last_good.update(model, epoch);
        let stats = EpochStats {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: hits as f64 / seen.max(1) as f64,
            learning_rate: lr,
            seconds: started.elapsed().as_secs_f64(),
            steps,
        };
        report.epochs.push(stats);
        if report.stopped_early {
            break;
        }
        let stats = report.epochs.last().expect("pushed above");
        if callback(&Event::Epoch(stats), model).is_break() {
            report.stopped_early = true;
            break;
        }
    }
    Ok(report)
}

/// The seed of a step's randomness (dropout masks): a function of the run's seed, the epoch and
/// the step only, so a resumed run draws what the uninterrupted one drew.
pub(crate) fn step_seed(seed: u64, epoch: usize, step: usize) -> u64 {
    let mut h = seed ^ 0xD1B5_4A32_D192_ED03;
    for v in [epoch as u64, step as u64] {
        h = (h ^ v).wrapping_mul(0x0000_0100_0000_01B3).rotate_left(29);
    }
    h
}

/// Seeds and distorts chunk `k` of a step of distributed training: from the run, the epoch,
/// the step and `k` only, so whichever rank computes the chunk computes the same thing.
fn prepare_chunk<T: Scalar>(
    config: &FitConfig,
    model: &mut Sequential<T>,
    batch: &mut Batch<T>,
    epoch: usize,
    step: usize,
    k: usize,
) -> Result<(), ModelError> {
    let chunk_step = step.wrapping_mul(1 << 20).wrapping_add(k);
    augment(config, batch, epoch, chunk_step)?;
    model.reseed(step_seed(config.seed, epoch, chunk_step));
    Ok(())
}

/// Loads examples `indices` into `batch` (augmented if the run augments) and runs the training
/// forward pass on them, handing the examples to the model without a copy. Without
/// augmentation, a leading `Standardize` layer is applied while the examples are converted
/// (`Source::gather_new`) and skipped in the forward pass (`Sequential::forward_normalized`):
/// one pass over the batch instead of two, the same bits (a chunk of 1 000 MNIST images, per
/// `step_phases`: load 133–143 µs and standardize 109–111 µs before, 141–160 µs for both
/// after). An augmentation works on the examples as the source gives them, so with one the
/// layer runs in the network.
pub(crate) fn load_and_forward<T: Scalar>(
    model: &mut Sequential<T>,
    data: &dyn Source<T>,
    config: &FitConfig,
    batch: &mut Batch<T>,
    indices: &[usize],
    epoch: usize,
    step: usize,
) -> Result<DMatrix<T>, ModelError> {
    let fused = match config.augment {
        Some(_) => None,
        None => model.leading_normalization(),
    };
    batch.load_new(data, indices, fused.unwrap_or_else(Normalize::identity));
    augment(config, batch, epoch, step)?;
    let x = batch.take_x();
    Ok(match fused {
        Some(_) => model.forward_normalized(x)?,
        None => model.forward_owned(x)?,
    })
}

/// Distorts a training batch if the run augments, with a seed of the run, epoch and step
/// (chunk, in full-batch training) other than dropout's.
fn augment<T: Scalar>(
    config: &FitConfig,
    batch: &mut Batch<T>,
    epoch: usize,
    step: usize,
) -> Result<(), ModelError> {
    if let Some(a) = &config.augment {
        a.apply(
            &mut batch.x,
            step_seed(config.seed ^ 0xA065_3E47, epoch, step),
        )?;
    }
    Ok(())
}

/// Puts `model` back to `last_good` and describes the divergence.
fn diverged<T: Scalar>(
    model: &mut Sequential<T>,
    last_good: &guard::Snapshot<T>,
    report: FitReport,
    epoch: usize,
    step: usize,
    what: String,
    value: f64,
) -> ModelError {
    last_good.restore(model);
    ModelError::Diverged {
        epoch,
        step,
        what,
        value,
        restored_epoch: last_good.epoch(),
        report,
    }
}
