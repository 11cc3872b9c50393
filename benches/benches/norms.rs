//! Batch normalisation at the sizes of the residual MNIST CNN's first stage: BatchNorm2d over
//! 32 channels of 14×14 at batch 128 (802 816 values), training forward (batch statistics and
//! running update) and forward + backward (through the statistics), and inference (running
//! statistics). PyTorch's `nn.BatchNorm2d(32)` on the same tensor is the peer to run beside it.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nalgebra::DMatrix;
use retroprop_benches::seeded_matrix;
use retroprop_layers::{BatchNorm, BatchNormConfig, Layer};

const BATCH: usize = 128;
const ROWS: usize = 32 * 14 * 14;

fn norms(c: &mut Criterion) {
    let x: DMatrix<f32> = seeded_matrix(ROWS, BATCH, -2.0, 2.0, 1);
    let g: DMatrix<f32> = seeded_matrix(ROWS, BATCH, -1.0, 1.0, 2);
    let mut bn = BatchNorm::new_2d(BatchNormConfig::new(32)).unwrap();
    let mut group = c.benchmark_group("batchnorm2d/32x14x14/n128");
    group.bench_function("forward", |b| {
        b.iter(|| black_box(bn.forward(black_box(&x)).unwrap()));
    });
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            bn.forward(black_box(&x)).unwrap();
            black_box(bn.backward(black_box(&g)).unwrap())
        });
    });
    group.bench_function("infer", |b| {
        b.iter(|| black_box(bn.infer(black_box(&x)).unwrap()));
    });
    group.finish();
}

criterion_group!(benches, norms);
criterion_main!(benches);
