//! Dense 784 → 256 at batch 128 (the homework MLP's hidden layer on MNIST), forward and
//! forward+backward, next to the raw sgemm rate measured in the same run.
//!
//! FLOPs: one GEMM is 2·256·784·128 = 51.4 M; forward is one GEMM, forward+backward three
//! (`W x`, `δ xᵀ`, `Wᵀ δ`), forward+backward_params two (the first layer's `dL/dx` is not needed).
//! Criterion reports them as "elements" per second: read Gelem/s as GFLOP/s.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nalgebra::DMatrix;
use retroprop_benches::{par_sgemm, seeded_matrix, sgemm};
use retroprop_layers::{Dense, Init, Layer};

const D_IN: usize = 784;
const D_OUT: usize = 256;
const BATCH: usize = 128;
const GEMM_FLOPS: u64 = 2 * (D_IN * D_OUT * BATCH) as u64;

fn dense(c: &mut Criterion) {
    let x = seeded_matrix::<f32>(D_IN, BATCH, 0.0, 1.0, 1);
    let g = seeded_matrix::<f32>(D_OUT, BATCH, -1.0, 1.0, 2);
    let mut group = c.benchmark_group("dense/784x256/n128");

    // One layer throughout, as in training: each step zeroes the gradients and runs again.
    let mut layer = Dense::<f32>::new(D_IN, D_OUT, Init::XavierUniform { seed: 3 }).unwrap();
    group.throughput(Throughput::Elements(GEMM_FLOPS));
    group.bench_function("forward", |b| {
        b.iter(|| black_box(layer.infer(black_box(&x)).unwrap()));
    });

    group.throughput(Throughput::Elements(3 * GEMM_FLOPS));
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            layer.zero_grad();
            layer.forward(black_box(&x)).unwrap();
            black_box(layer.backward(black_box(&g)).unwrap())
        });
    });

    group.throughput(Throughput::Elements(2 * GEMM_FLOPS));
    group.bench_function("forward_backward_params", |b| {
        b.iter(|| {
            layer.zero_grad();
            layer.forward(black_box(&x)).unwrap();
            layer.backward_params(black_box(&g)).unwrap();
        });
    });
    group.finish();
}

/// The machine's sgemm rate, same kernel, same run: the yardstick for the figures above. On
/// one thread, and on all of rayon's threads (the output split in column blocks): the second is
/// what the machine can do, and what the layer's throughput is compared with.
fn sgemm_rate(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm");
    for (m, k, n) in [(256, 784, 128), (1024, 1024, 1024)] {
        let a = seeded_matrix::<f32>(m, k, -1.0, 1.0, 4);
        let b = seeded_matrix::<f32>(k, n, -1.0, 1.0, 5);
        let mut out = DMatrix::<f32>::zeros(m, n);
        group.throughput(Throughput::Elements(2 * (m * k * n) as u64));
        group.bench_function(format!("{m}x{k}x{n}/1thread"), |bench| {
            bench.iter(|| sgemm(m, k, n, a.as_slice(), b.as_slice(), out.as_mut_slice()));
        });
        group.bench_function(format!("{m}x{k}x{n}/all_threads"), |bench| {
            bench.iter(|| par_sgemm(m, k, n, a.as_slice(), b.as_slice(), out.as_mut_slice()));
        });
    }
    group.finish();
}

criterion_group!(benches, dense, sgemm_rate);
criterion_main!(benches);
