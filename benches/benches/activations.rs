//! Element-wise kernels on one hidden layer's batch (256 units × 128 examples): the vectorised
//! f32 softplus+σ kernel against the same work done with scalar `libm` calls.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use retroprop_activations::{sigmoid, slice, softplus};
use retroprop_benches::seeded_matrix;

fn softplus_sigmoid(c: &mut Criterion) {
    let x = seeded_matrix::<f32>(256, 128, -8.0, 8.0, 1);
    let n = x.len();
    let mut group = c.benchmark_group("activations/softplus_sigmoid/256x128");
    group.throughput(Throughput::Elements(n as u64));
    let (mut sp, mut sg) = (vec![0.0_f32; n], vec![0.0_f32; n]);
    group.bench_function("f32/kernel", |b| {
        b.iter(|| slice::softplus_sigmoid(black_box(x.as_slice()), &mut sp, &mut sg));
    });
    group.bench_function("f32/scalar_libm", |b| {
        b.iter(|| {
            for ((&v, s), g) in black_box(x.as_slice()).iter().zip(&mut sp).zip(&mut sg) {
                *s = softplus(v);
                *g = sigmoid(v);
            }
        });
    });
    group.finish();
}

fn softmax_columns(c: &mut Criterion) {
    let x = seeded_matrix::<f32>(10, 128, -8.0, 8.0, 2);
    c.bench_function("activations/softmax/10x128/f32", |b| {
        b.iter_batched_ref(
            || x.clone(),
            |m| {
                for col in m.as_mut_slice().chunks_exact_mut(10) {
                    slice::softmax_in_place(col);
                }
            },
            criterion::BatchSize::SmallInput,
        );
    });
    // what the Softmax layer runs: the probabilities, without the log-sum-exp
    c.bench_function("activations/softmax_probabilities/10x128/f32", |b| {
        b.iter_batched_ref(
            || x.clone(),
            |m| {
                for col in m.as_mut_slice().chunks_exact_mut(10) {
                    slice::softmax_in_place_split(col);
                }
            },
            criterion::BatchSize::SmallInput,
        );
    });
}

criterion_group!(benches, softplus_sigmoid, softmax_columns);
criterion_main!(benches);
