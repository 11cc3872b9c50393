//! The network of question 3 at batch 16: 3×128×128 → conv 32@8×8 stride 2 padding 3 →
//! max-pool 2×2 → conv 64@3×3 stride 1 padding 1 (output 64×32×32), forward and
//! forward+backward. The backward pass is what PyTorch's `net(x).sum().backward()` does: every
//! parameter gradient, and no gradient for the input images.
//!
//! Peer: `../shared/bench/peers/python/torch_bench.py --threads 2 --workloads cnn_hw`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use nalgebra::DMatrix;
use retroprop_benches::seeded_matrix;
use retroprop_layers::{Conv2d, Conv2dConfig, Init, Layer, MaxPool2d, MaxPool2dConfig};

const BATCH: usize = 16;

struct Stack {
    conv1: Conv2d<f32>,
    pool: MaxPool2d<f32>,
    conv3: Conv2d<f32>,
}

impl Stack {
    fn new() -> Self {
        Self {
            conv1: Conv2d::new(
                Conv2dConfig::new((3, 128, 128), 32, 8).stride(2).padding(3),
                Init::PyTorchDefault { seed: 1 },
            )
            .unwrap(),
            pool: MaxPool2d::new(MaxPool2dConfig::new((32, 64, 64), 2)).unwrap(),
            conv3: Conv2d::new(
                Conv2dConfig::new((32, 32, 32), 64, 3).padding(1),
                Init::PyTorchDefault { seed: 2 },
            )
            .unwrap(),
        }
    }

    /// As `Sequential::forward`: the first layer borrows the batch, the others take the
    /// activations they are given (and keep them for the backward pass without a copy).
    fn forward(&mut self, x: &DMatrix<f32>) -> DMatrix<f32> {
        let a = self.conv1.forward(x).unwrap();
        let b = self.pool.forward_owned(a).unwrap();
        self.conv3.forward_owned(b).unwrap()
    }

    fn infer(&self, x: &DMatrix<f32>) -> DMatrix<f32> {
        let a = self.conv1.infer(x).unwrap();
        let b = self.pool.infer(&a).unwrap();
        self.conv3.infer(&b).unwrap()
    }

    fn backward(&mut self, g: &DMatrix<f32>) {
        let gb = self.conv3.backward(g).unwrap();
        let ga = self.pool.backward(&gb).unwrap();
        self.conv1.backward_params(&ga).unwrap();
    }
}

fn homework_cnn(c: &mut Criterion) {
    let x = seeded_matrix::<f32>(3 * 128 * 128, BATCH, -1.0, 1.0, 1);
    // d(sum)/dy = 1: the upstream gradient of PyTorch's `.sum().backward()`
    let ones = DMatrix::<f32>::from_element(64 * 32 * 32, BATCH, 1.0);
    let mut group = c.benchmark_group("conv2d/homework_q3/n16");
    group.sample_size(30);
    let mut stack = Stack::new();
    group.bench_function("forward", |b| {
        b.iter(|| black_box(stack.infer(black_box(&x))))
    });
    group.bench_function("forward_backward", |b| {
        b.iter_batched_ref(
            || (),
            |()| {
                stack.conv1.zero_grad();
                stack.conv3.zero_grad();
                black_box(stack.forward(black_box(&x)));
                stack.backward(black_box(&ones));
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, homework_cnn);
criterion_main!(benches);
