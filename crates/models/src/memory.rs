//! How much memory a model needs, from its shapes alone — before anything is allocated.
//!
//! ```text
//! parameters      n_θ · size(T), held 3 times in training (θ, ∂L/∂θ, one optimizer slot)
//! per example     training:  3 · (d_in + Σ_layers d_out) · size(T)
//!                            (each layer's output, cached for its backward pass, and the
//!                             gradient flowing back through it)
//!                 inference: 2 · max(d_in, max_layers d_out) · size(T)
//!                            (one layer's input and output are alive at a time)
//! ```
//!
//! The figures are estimates of the dominant terms (scratch space of the convolution is
//! bounded and small); they serve to refuse, with a number, what cannot fit, and to choose how
//! many examples an evaluation processes at a time.

use retroprop_core::Scalar;
use retroprop_layers::Layer;

use crate::Sequential;

/// Evaluation and full-batch training process examples in chunks of at most this many bytes of
/// activations (and at most 1000 examples), so their memory does not grow with the data set.
pub const CHUNK_BYTES: usize = 256 << 20;

/// Examples per chunk, at most.
pub(crate) const MAX_CHUNK: usize = 1000;

/// The memory a model needs, in bytes, from its shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The parameter values: `n_θ · size(T)`.
    pub parameter_bytes: usize,
    /// Activations and their gradients per example in training.
    pub training_bytes_per_example: usize,
    /// Activations per example in inference (evaluation, prediction).
    pub inference_bytes_per_example: usize,
}

impl MemoryEstimate {
    /// The estimate for `model` (saturating at `usize::MAX` instead of overflowing).
    pub fn of<T: Scalar>(model: &Sequential<T>) -> Self {
        let size = T::BYTES;
        let input = model.input_shape().len();
        let outputs = model.shapes().iter().map(|s| s.len());
        let sum = outputs.clone().fold(input, |acc, n| acc.saturating_add(n));
        let widest = outputs.fold(input, usize::max);
        Self {
            parameter_bytes: model.param_count().saturating_mul(size),
            training_bytes_per_example: sum.saturating_mul(3 * size),
            inference_bytes_per_example: widest.saturating_mul(2 * size),
        }
    }

    /// Training with batches of `batch` examples: parameters three times, plus the batch.
    pub fn training_bytes(&self, batch: usize) -> usize {
        self.parameter_bytes
            .saturating_mul(3)
            .saturating_add(batch.saturating_mul(self.training_bytes_per_example))
    }

    /// Inference on `batch` examples at a time.
    pub fn inference_bytes(&self, batch: usize) -> usize {
        self.parameter_bytes
            .saturating_add(batch.saturating_mul(self.inference_bytes_per_example))
    }

    /// Examples per evaluation chunk: as many as [`CHUNK_BYTES`] of activations hold, between
    /// 1 and 1000.
    pub fn inference_chunk(&self) -> usize {
        (CHUNK_BYTES / self.inference_bytes_per_example.max(1)).clamp(1, MAX_CHUNK)
    }

    /// Examples per chunk of a full-batch gradient (training activations), between 1 and 1000.
    pub fn training_chunk(&self) -> usize {
        (CHUNK_BYTES / self.training_bytes_per_example.max(1)).clamp(1, MAX_CHUNK)
    }

    /// Whether two chunks of `chunk` examples fit in [`CHUNK_BYTES`] of training activations:
    /// the condition for a full batch's two lanes.
    pub(crate) fn two_chunks_fit(&self, chunk: usize) -> bool {
        chunk
            .saturating_mul(2)
            .saturating_mul(self.training_bytes_per_example)
            <= CHUNK_BYTES
    }

    /// Full-batch training: [`training_bytes`](Self::training_bytes) of one chunk, plus what
    /// the second lane of a step holds (`fit` sums the chunks in two lanes, one per core, when
    /// two chunks' activations fit in [`CHUNK_BYTES`]): a replica's parameters and gradients,
    /// and a second chunk's activations.
    pub fn full_batch_training_bytes(&self) -> usize {
        let chunk = self.training_chunk();
        let second_lane = if self.two_chunks_fit(chunk) {
            (self.parameter_bytes.saturating_mul(2))
                .saturating_add(chunk.saturating_mul(self.training_bytes_per_example))
        } else {
            0
        };
        self.training_bytes(chunk).saturating_add(second_lane)
    }
}

/// `bytes` for people: `1.5 GiB`, `320.0 MiB`, `12 KiB`.
pub fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlp;
    use retroprop_layers::Init;

    #[test]
    fn the_estimate_follows_the_shapes() {
        // 4 → 3 → softplus → 2: n_θ = 4·3 + 3 + 3·2 + 2 = 23; Σ = 4 + 3 + 3 + 2 = 12; max = 4
        let net = mlp::<f64>(4, 3, 2, Init::Zeros).unwrap();
        let e = MemoryEstimate::of(&net);
        assert_eq!(e.parameter_bytes, 23 * 8);
        assert_eq!(e.training_bytes_per_example, 3 * 12 * 8);
        assert_eq!(e.inference_bytes_per_example, 2 * 4 * 8);
        assert_eq!(e.training_bytes(10), 3 * 23 * 8 + 10 * 3 * 12 * 8);
        // a full batch: chunks of 1 000, a second lane with a replica (values and gradients)
        let one_chunk = 3 * 23 * 8 + 1000 * 3 * 12 * 8;
        assert_eq!(
            e.full_batch_training_bytes(),
            one_chunk + 2 * 23 * 8 + 1000 * 3 * 12 * 8
        );
        assert_eq!(e.inference_chunk(), MAX_CHUNK);
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
