//! The full-batch gradient in two lanes: the chunks of the first half of the data on the model,
//! those of the second half on a replica of it, one lane per core, and the replica's gradient
//! added to the model's.
//!
//! ```text
//! ∇R̂ = (Σ_{chunks k < K/2} g_k) + (Σ_{chunks k ≥ K/2} g_k)      each sum in chunk order
//! ```
//!
//! One lane computes a chunk from start to end on one core — load, forward, loss, backward —
//! with no hand-over between the cores inside it; split phase by phase, each of a chunk's eight
//! passes waits for the slower core. The halves are fixed by the number of chunks, and with one
//! thread the two lanes run one after the other: the bits do not depend on the thread count.
//! Each chunk is seeded by its index (dropout masks, augmentation), so what it computes does
//! not depend on the lane either.

use nalgebra::DMatrix;
use retroprop_core::{Scalar, team};
use retroprop_data::{Batch, Source};
use retroprop_layers::Layer;
use retroprop_losses::{Loss, Reduction, Target};

use crate::evaluation::correct;
use crate::train::{FitConfig, load_and_forward, step_seed};
use crate::{MemoryEstimate, ModelError, Sequential, guard};

/// What a run of chunks adds up to, besides the gradient.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ChunkSums {
    /// Loss summed over the examples.
    pub(crate) loss: f64,
    /// Examples classified correctly.
    pub(crate) hits: usize,
    /// Examples seen.
    pub(crate) seen: usize,
}

/// The replica of the second lane.
pub(crate) struct Lanes<T: Scalar> {
    replica: Sequential<T>,
}

impl<T: Scalar> Lanes<T> {
    /// Two lanes for `model`'s full-batch steps of `chunks` chunks of `chunk` examples, if they
    /// apply: at least two chunks; no layer keeping statistics of the batches it sees (buffers,
    /// other than those of a leading input normalisation, which never change); two chunks'
    /// activations within `CHUNK_BYTES`; a model that rebuilds from its description (every
    /// layer kind registered). None of these depends on the thread count.
    pub(crate) fn for_model(model: &Sequential<T>, chunks: usize, chunk: usize) -> Option<Self> {
        let leading = usize::from(model.leading_normalization().is_some());
        let stateful = model.layers()[leading..]
            .iter()
            .any(|l| l.buffer_count() > 0);
        // the rule by which `MemoryEstimate::full_batch_training_bytes` counts a second lane
        let fits = MemoryEstimate::of(model).two_chunks_fit(chunk);
        if chunks < 2 || stateful || !fits {
            return None;
        }
        let replica = Sequential::from_spec(&model.spec()).ok()?;
        Some(Self { replica })
    }

    /// The full-batch gradient of `model` (added to its gradients, which the caller zeroed) over
    /// the chunks `chunks` of `data`, in two lanes; `n` examples in all.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gradient(
        &mut self,
        model: &mut Sequential<T>,
        data: &dyn Source<T>,
        loss: &dyn Loss<T>,
        config: &FitConfig,
        chunks: &[&[usize]],
        epoch: usize,
        n: usize,
    ) -> Result<ChunkSums, ModelError> {
        // the replica starts from the model's parameters, its gradients from zero
        guard::Snapshot::take(model, epoch).restore(&mut self.replica);
        self.replica.zero_grad();
        let (first, second) = chunks.split_at(chunks.len().div_ceil(2));
        let replica = &mut self.replica;
        // `join` runs both closures, so both placeholders are replaced
        let (mut a, mut b) = (Ok(ChunkSums::default()), Ok(ChunkSums::default()));
        team::join(
            || a = run(model, data, loss, config, first, 0, epoch, n),
            || b = run(replica, data, loss, config, second, first.len(), epoch, n),
        );
        let (a, b) = (a?, b?);
        let mut grads = Vec::new();
        replica.visit_params(&mut |_, p| grads.push(p.grad().clone()));
        let mut grads = grads.iter();
        model.visit_params_mut(&mut |_, p| {
            if let Some(g) = grads.next() {
                p.grad_mut().zip_apply(g, |mine, theirs| *mine += theirs);
            }
        });
        Ok(ChunkSums {
            loss: a.loss + b.loss,
            hits: a.hits + b.hits,
            seen: a.seen + b.seen,
        })
    }
}

/// Scales a chunk's `dL/dy` by its share `examples / total` of the batch when `loss` takes the
/// mean: the chunks' gradients then add up to the gradient of the batch's mean loss.
pub(crate) fn weigh_chunk<T: Scalar>(
    loss: &dyn Loss<T>,
    grad: &mut DMatrix<T>,
    examples: usize,
    total: usize,
) {
    if loss.reduction() == Reduction::Mean {
        let weight = T::lit(examples as f64 / total as f64);
        for g in grad.as_mut_slice() {
            *g *= weight;
        }
    }
}

/// Adds the gradient of `chunks` (chunk `offset + i` of the step for `chunks[i]`) into `model`'s,
/// each chunk weighted by its share of the `n` examples for a mean loss.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<T: Scalar>(
    model: &mut Sequential<T>,
    data: &dyn Source<T>,
    loss: &dyn Loss<T>,
    config: &FitConfig,
    chunks: &[&[usize]],
    offset: usize,
    epoch: usize,
    n: usize,
) -> Result<ChunkSums, ModelError> {
    let mut batch = Batch::new();
    let mut sums = ChunkSums::default();
    for (i, indices) in chunks.iter().enumerate() {
        let chunk = offset + i + 1;
        model.reseed(step_seed(config.seed, epoch, chunk));
        let logits = load_and_forward(model, data, config, &mut batch, indices, epoch, chunk)?;
        let mut out = loss.evaluate(&logits, Target::Labels(&batch.labels))?;
        weigh_chunk(loss, &mut out.grad, indices.len(), n);
        model.backward_params(&out.grad)?;
        sums.loss += out.per_example.iter().map(|l| l.to_f64()).sum::<f64>();
        sums.hits += correct(&logits, &batch.labels);
        sums.seen += indices.len();
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;
    use retroprop_core::rng::Rng;
    use retroprop_data::InMemory;
    use retroprop_layers::{BatchNorm, BatchNormConfig, Dense, Dropout, Init, Shape, Softplus};
    use retroprop_losses::CrossEntropy;

    use crate::train::BatchSize;

    /// 2 500 seeded examples of 6 features in 3 classes: chunks of 1 000, 1 000 and 500.
    fn data() -> InMemory<f64> {
        let mut rng = Rng::new(3);
        let x = DMatrix::from_fn(6, 2500, |_, _| rng.uniform(-1.0, 1.0));
        InMemory::new(x, (0..2500).map(|i| (i * 7) % 3).collect(), 3).unwrap()
    }

    fn net(dropout: bool) -> Sequential<f64> {
        let mut net = Sequential::new(Shape::Flat(6))
            .push(Dense::new(6, 8, Init::XavierUniform { seed: 2 }).unwrap())
            .unwrap()
            .push(Softplus::new())
            .unwrap();
        if dropout {
            net = net.push(Dropout::new(0.3).unwrap()).unwrap();
        }
        net.push(Dense::new(8, 3, Init::XavierUniform { seed: 5 }).unwrap())
            .unwrap()
    }

    fn grads(model: &Sequential<f64>) -> Vec<f64> {
        let mut all = Vec::new();
        model.visit_params(&mut |_, p| all.extend(p.grad().iter().copied()));
        all
    }

    #[test]
    fn the_lanes_add_the_second_half_to_the_first() {
        let data = data();
        let indices: Vec<usize> = (0..2500).collect();
        let chunks: Vec<&[usize]> = indices.chunks(1000).collect();
        let config = FitConfig::new(1, BatchSize::Full).seed(9);
        let loss = CrossEntropy::default();
        for dropout in [false, true] {
            let mut model = net(dropout);
            let mut lanes = Lanes::for_model(&model, chunks.len(), 1000).expect("two lanes");
            model.zero_grad();
            let sums = lanes
                .gradient(&mut model, &data, &loss, &config, &chunks, 1, 2500)
                .unwrap();
            assert_eq!(sums.seen, 2500);
            // the definition: chunks 1 and 2 on one model, chunk 3 on another, added
            let (mut first, mut second) = (net(dropout), net(dropout));
            let a = run(&mut first, &data, &loss, &config, &chunks[..2], 0, 1, 2500).unwrap();
            let b = run(&mut second, &data, &loss, &config, &chunks[2..], 2, 1, 2500).unwrap();
            let want: Vec<f64> = grads(&first)
                .iter()
                .zip(grads(&second))
                .map(|(a, b)| a + b)
                .collect();
            assert_eq!(grads(&model), want, "dropout {dropout}");
            assert_eq!(sums.loss, a.loss + b.loss);
            assert_eq!(sums.hits, a.hits + b.hits);
        }
    }

    #[test]
    fn lanes_are_for_several_chunks_and_networks_without_batch_statistics() {
        assert!(Lanes::for_model(&net(false), 1, 1000).is_none());
        assert!(Lanes::for_model(&net(false), 2, 1000).is_some());
        let config = BatchNormConfig::new(8);
        let with_statistics = net(false)
            .push(Dense::new(3, 8, Init::XavierUniform { seed: 1 }).unwrap())
            .unwrap()
            .push(BatchNorm::new_1d(config).unwrap())
            .unwrap();
        assert!(Lanes::for_model(&with_statistics, 3, 1000).is_none());
    }
}
