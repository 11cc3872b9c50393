//! Data-parallel training: the gradient of each step computed by several processes, each on its
//! share of the batch, and combined so that every process applies the same update.
//!
//! ```text
//! a step's batch (B examples, or all n for full-batch descent) → fixed chunks of C examples
//!   (C = CHUNK for a mini-batch, the memory-bounded chunk for the full batch: neither depends
//!   on the number of processes P)
//! chunk k is computed by rank k mod P, from zero: g_k = ∇ of (|chunk k| / B) · mean loss
//! Reproducible: every rank gathers every g_k and sums them in the order k = 0, 1, 2, …
//!   — the same additions in the same order for any P: bit-identical parameters for P = 1, 2, 3, …
//!   cost: each rank receives all ⌈B/C⌉ chunk gradients (⌈B/C⌉ · n_θ values) per step
//! Fast: each rank sums its own chunks, then one all-reduce of n_θ values (MPI's order: equal to
//!   the reproducible result within rounding, not bit for bit)
//! ```
//!
//! Each chunk is seeded from the run, the epoch, the step and the chunk index (dropout masks,
//! augmentation), so what a chunk computes does not depend on which rank computes it.
//!
//! Layers with batch statistics (`BatchNorm`) normalise each chunk by its own statistics (a
//! "ghost batch" of C examples, as each GPU's share in PyTorch's DDP). Their running statistics
//! are combined like the gradients: every chunk starts from the step's buffers `r₀`, and the
//! buffers after the step are the mean over the chunks of the buffers each chunk left,
//! `(1/K) Σ_k post_k` — for a momentum `m`, `(1 − m) r₀ + m · mean_k(stat_k)` — added in
//! chunk order in `f64` (exact when every chunk left a value unchanged), so every rank holds the
//! same running statistics, bit for bit in the reproducible mode.

use std::sync::Arc;

use retroprop_core::Scalar;
use retroprop_data::{Batch, Source};
use retroprop_layers::Layer;
use retroprop_losses::{Loss, Target};

use crate::{ModelError, Sequential};

/// Examples per chunk of a mini-batch step in distributed training.
pub const CHUNK: usize = 32;

/// How the chunk gradients are combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReduceMode {
    /// Every chunk gradient gathered and summed in chunk order: bit-identical for any number
    /// of processes.
    #[default]
    Reproducible,
    /// Each rank's partial sum, then one all-reduce (the collective library's order).
    Fast,
}

/// The communication a data-parallel run needs, implemented over MPI by
/// `retroprop-distributed` (and by [`Local`] for one process).
pub trait Collective: Send + Sync {
    /// This process's rank, from 0.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// Every rank's `local` (the same length on every rank), concatenated in rank order.
    ///
    /// # Errors
    /// [`ModelError::Collective`] if the communication fails.
    fn all_gather(&self, local: &[f64]) -> Result<Vec<f64>, ModelError>;
    /// The element-wise sum of every rank's `data`, in place on every rank.
    ///
    /// # Errors
    /// [`ModelError::Collective`] if the communication fails.
    fn all_reduce_sum(&self, data: &mut [f64]) -> Result<(), ModelError>;
}

/// One process: gathering and reducing are the identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Local;

impl Collective for Local {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_gather(&self, local: &[f64]) -> Result<Vec<f64>, ModelError> {
        Ok(local.to_vec())
    }
    fn all_reduce_sum(&self, _: &mut [f64]) -> Result<(), ModelError> {
        Ok(())
    }
}

/// The data-parallel settings of [`FitConfig`](crate::FitConfig).
#[derive(Clone)]
pub struct DataParallel {
    /// The processes.
    pub collective: Arc<dyn Collective>,
    /// How gradients are combined.
    pub mode: ReduceMode,
}

/// Refuses to start unless every rank holds the same parameters and buffers (an FNV-1a
/// checksum of their bytes, compared across ranks), naming the first rank that differs.
///
/// # Errors
/// [`ModelError::Collective`].
pub fn check_replicas<T: Scalar>(
    model: &Sequential<T>,
    collective: &dyn Collective,
) -> Result<(), ModelError> {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    let mut bytes = Vec::new();
    let mut add = |values: &mut dyn Iterator<Item = &T>| {
        bytes.clear();
        for v in values {
            v.write_le(&mut bytes);
        }
        for b in &bytes {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
    };
    model.visit_params(&mut |_, p| add(&mut p.value().iter()));
    model.visit_buffers(&mut |_, b| add(&mut b.value().iter()));
    // two exact halves of the 64-bit checksum
    let mine = [(hash >> 32) as f64, (hash & 0xFFFF_FFFF) as f64];
    let all = collective.all_gather(&mine)?;
    for (rank, pair) in all.chunks_exact(2).enumerate() {
        if pair != mine {
            return Err(ModelError::Collective {
                detail: format!(
                    "rank {rank} holds other parameters than rank {} (checksums differ): every rank must build the model from the same seed and checkpoint",
                    collective.rank()
                ),
            });
        }
    }
    Ok(())
}

/// What a sharded step measured: the loss summed over the batch and the examples classified
/// correctly (over every rank's chunks).
pub(crate) struct StepTotals {
    pub loss_sum: f64,
    pub hits: usize,
}

/// Seeds and distorts chunk `k` of a step before its forward pass.
pub(crate) type PrepareChunk<'a, T> =
    dyn FnMut(&mut Sequential<T>, &mut Batch<T>, usize) -> Result<(), ModelError> + 'a;

/// Sets the model's gradients to the gradient of the batch `indices` (mean loss over the
/// batch), computed in chunks of `chunk` examples shared among the ranks and combined by
/// `parallel.mode`. `prepare(batch, chunk_index)` seeds and distorts each chunk.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sharded_gradient<T: Scalar>(
    model: &mut Sequential<T>,
    data: &dyn Source<T>,
    loss: &dyn Loss<T>,
    indices: &[usize],
    total: usize,
    chunk: usize,
    parallel: &DataParallel,
    prepare: &mut PrepareChunk<'_, T>,
) -> Result<StepTotals, ModelError> {
    let (rank, size) = (parallel.collective.rank(), parallel.collective.size());
    let chunks: Vec<&[usize]> = indices.chunks(chunk.max(1)).collect();
    let slots = chunks.len().div_ceil(size);
    let n_theta = model.param_count();
    // the step's buffers r₀: every chunk starts from them
    let start = buffer_values(model);
    let n_buf = start.len();
    let per_chunk = n_theta + n_buf;
    // this rank's chunk gradients and the buffers each chunk left, one slot per chunk it owns
    // (zeros in unused slots), then its loss sum and hits
    let mut mine = Vec::with_capacity(slots * per_chunk + 2);
    let mut batch = Batch::new();
    let (mut loss_sum, mut hits) = (0.0, 0usize);
    for slot in 0..slots {
        let k = slot * size + rank;
        let Some(ids) = chunks.get(k) else {
            mine.extend(std::iter::repeat_n(0.0, per_chunk));
            continue;
        };
        if n_buf > 0 {
            set_buffer_values(model, &start);
        }
        batch.load(data, ids);
        prepare(model, &mut batch, k)?;
        model.zero_grad();
        let logits = model.forward(&batch.x)?;
        let mut out = loss.evaluate(&logits, Target::Labels(&batch.labels))?;
        crate::lanes::weigh_chunk(loss, &mut out.grad, ids.len(), total);
        model.backward_params(&out.grad)?;
        loss_sum += out.per_example.iter().map(|l| l.to_f64()).sum::<f64>();
        hits += crate::evaluation::correct(&logits, &batch.labels);
        model.visit_params(&mut |_, p| mine.extend(p.grad().iter().map(|g| g.to_f64())));
        model.visit_buffers(&mut |_, b| mine.extend(b.value().iter().map(|v| v.to_f64())));
    }
    let mut sum = vec![0.0f64; n_theta];
    // Σ_k post_k, in chunk order (reproducible) or by the all-reduce (fast)
    let mut buffers = vec![0.0f64; n_buf];
    let (loss_sum, hits) = match parallel.mode {
        ReduceMode::Reproducible => {
            mine.extend([loss_sum, hits as f64]);
            let all = parallel.collective.all_gather(&mine)?;
            let per_rank = slots * per_chunk + 2;
            // the sum in chunk order, in T's arithmetic: the same operations for any P
            let mut acc = vec![T::zero(); n_theta];
            for k in 0..chunks.len() {
                let (slot, owner) = (k / size, k % size);
                let at = owner * per_rank + slot * per_chunk;
                for (a, &g) in acc.iter_mut().zip(&all[at..at + n_theta]) {
                    *a += T::lit(g);
                }
                let post = &all[at + n_theta..at + per_chunk];
                buffers.iter_mut().zip(post).for_each(|(b, &v)| *b += v);
            }
            sum.iter_mut().zip(&acc).for_each(|(s, a)| *s = a.to_f64());
            let totals = (0..size).map(|r| {
                (
                    all[r * per_rank + per_rank - 2],
                    all[r * per_rank + per_rank - 1],
                )
            });
            totals.fold((0.0, 0usize), |(l, h), (a, b)| (l + a, h + b as usize))
        }
        ReduceMode::Fast => {
            for slot in mine.chunks_exact(per_chunk) {
                let (grad, post) = slot.split_at(n_theta);
                sum.iter_mut().zip(grad).for_each(|(s, g)| *s += g);
                buffers.iter_mut().zip(post).for_each(|(b, v)| *b += v);
            }
            sum.extend_from_slice(&buffers);
            sum.extend([loss_sum, hits as f64]);
            parallel.collective.all_reduce_sum(&mut sum)?;
            let hits = sum.pop().unwrap_or(0.0) as usize;
            let loss_sum = sum.pop().unwrap_or(0.0);
            buffers.copy_from_slice(&sum[n_theta..]);
            sum.truncate(n_theta);
            (loss_sum, hits)
        }
    };
    if n_buf > 0 {
        // the mean of what the chunks left (K equal values: exactly that value, in f64)
        let k = chunks.len() as f64;
        let mean: Vec<T> = buffers.iter().map(|&b| T::lit(b / k)).collect();
        set_buffer_values(model, &mean);
    }
    let mut at = 0;
    model.visit_params_mut(&mut |_, p| {
        let len = p.len();
        for (g, &s) in p.grad_mut().iter_mut().zip(&sum[at..at + len]) {
            *g = T::lit(s);
        }
        at += len;
    });
    Ok(StepTotals { loss_sum, hits })
}

/// Every buffer value of the model, in visiting order.
fn buffer_values<T: Scalar>(model: &Sequential<T>) -> Vec<T> {
    let mut values = Vec::new();
    model.visit_buffers(&mut |_, b| values.extend(b.value().iter().copied()));
    values
}

/// Sets every buffer value of the model from `values` (in visiting order).
fn set_buffer_values<T: Scalar>(model: &mut Sequential<T>, values: &[T]) {
    let mut at = 0;
    model.visit_buffers_mut(&mut |_, b| {
        let slice = b.as_mut_slice();
        slice.copy_from_slice(&values[at..at + slice.len()]);
        at += slice.len();
    });
}

/// [`evaluate`](crate::evaluate) with the examples shared among the ranks: rank `r` evaluates
/// examples `r, r + P, r + 2P, …`, and the loss sums and confusion counts of every rank are
/// added (in rank order), so every rank returns the evaluation of the whole set in about `1/P`
/// of the time.
///
/// # Errors
/// As [`evaluate`](crate::evaluate), and [`ModelError::Collective`] if the communication fails.
pub fn evaluate_sharded<T: Scalar>(
    model: &Sequential<T>,
    data: &dyn Source<T>,
    loss: &dyn Loss<T>,
    collective: &dyn Collective,
) -> Result<crate::Evaluation, ModelError> {
    crate::train::check_source(model, data)?;
    let (rank, size) = (collective.rank(), collective.size());
    let mine: Vec<usize> = (rank..data.len()).step_by(size.max(1)).collect();
    let (loss_sum, confusion) = crate::evaluation::evaluate_indices(model, data, loss, &mine)?;
    let mut local = vec![loss_sum];
    local.extend(confusion.counts.iter().map(|&c| c as f64));
    let all = collective.all_gather(&local)?;
    let mut total = crate::ConfusionMatrix::new(confusion.classes);
    let mut loss_total = 0.0;
    for part in all.chunks_exact(local.len()) {
        loss_total += part[0];
        for (t, &c) in total.counts.iter_mut().zip(&part[1..]) {
            *t += c as usize;
        }
    }
    Ok(crate::Evaluation {
        loss: loss_total / data.len() as f64,
        accuracy: total.accuracy(),
        examples: data.len(),
        confusion: total,
    })
}
