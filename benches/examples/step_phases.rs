//! Where a training step of the benchmarks' MLP spends its time, phase by phase: the program's
//! 784 → 256 softplus → 10 network on MNIST, the step of `fit` taken apart (load the batch, zero
//! the gradients, each layer's forward, the loss, each layer's backward, the SGD update), each
//! phase timed with `Instant` and summed over epochs 2 to 6.
//!
//! ```text
//! cargo run --release -p retroprop-benches --example step_phases            # batch 128
//! BATCH=1000 cargo run --release -p retroprop-benches --example step_phases # a full-batch chunk
//! ```
//!
//! A profile by phase, not a benchmark: the speed figures come from `cargo bench` and
//! `cargo xtask bench-peers`. With `BATCH=1000` the phases are those of one chunk of the
//! full-batch step (which takes no update between chunks; its `step` line is then extra).

use std::path::Path;
use std::time::Instant;

use retroprop_data::{Batch, EpochOrder, Mnist, mnist};
use retroprop_layers::{Init, Layer};
use retroprop_losses::{CrossEntropy, Loss, Target};
use retroprop_models::{Standardization, mlp_classifier};
use retroprop_optim::{Optimizer, Sgd, WeightDecay};

/// The phases, in the order a step runs them.
const PHASES: [&str; 10] = [
    "load and standardize",
    "zero the gradients",
    "dense 784 → 256",
    "softplus",
    "dense 256 → 10",
    "cross-entropy",
    "dense 256 → 10 backward",
    "softplus backward",
    "dense 784 → 256 backward",
    "SGD update",
];

const EPOCHS: usize = 6;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batch_size: usize = match std::env::var("BATCH") {
        Ok(v) => v.parse()?,
        Err(_) => 128,
    };
    let data = Mnist::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist"))?;
    let standardize = Standardization {
        mean: mnist::MEAN,
        std: mnist::STD,
    };
    let init = Init::XavierUniform { seed: 1 };
    let mut net = mlp_classifier::<f32>(784, 256, 10, Some(standardize), init)?;
    let standardize = net
        .leading_normalization()
        .ok_or("the MLP starts with Standardize")?;
    let mut sgd = Sgd::new(0.1)?.with_weight_decay(WeightDecay::homework(5e-5)?);
    let loss = CrossEntropy::default();
    let mut order = EpochOrder::new(data.train.len(), 1);
    let mut batch = Batch::new();
    let mut spent = [0.0_f64; PHASES.len()];
    let mut steps = 0;
    for epoch in 0..EPOCHS {
        let indices = order.next_epoch().to_vec();
        for ids in indices.chunks(batch_size) {
            // the first epoch warms the caches and the allocator up: not counted
            let counted = epoch > 0;
            steps += usize::from(counted);
            let mut phase = 0;
            let mut last = Instant::now();
            let mut done = |spent: &mut [f64]| {
                let now = Instant::now();
                if counted {
                    spent[phase] += (now - last).as_secs_f64();
                }
                (last, phase) = (now, phase + 1);
            };
            // as `fit` loads: standardised while converted, handed to the network
            batch.load_new(&data.train, ids, standardize);
            done(&mut spent);
            net.zero_grad();
            done(&mut spent);
            let layers = net.layers_mut();
            let mut h = batch.take_x();
            for layer in &mut layers[1..] {
                h = layer.forward_owned(h)?;
                done(&mut spent);
            }
            let out = loss.evaluate(&h, Target::Labels(&batch.labels))?;
            done(&mut spent);
            let g = layers[3].backward(&out.grad)?;
            done(&mut spent);
            let g = layers[2].backward(&g)?;
            done(&mut spent);
            layers[1].backward_params(&g)?;
            done(&mut spent);
            sgd.step(&mut net)?;
            done(&mut spent);
        }
    }
    let total: f64 = spent.iter().sum();
    let per_step = 1e6 / steps.max(1) as f64;
    println!("batch {batch_size}, {steps} steps timed (epochs 2 to {EPOCHS})");
    for (name, s) in PHASES.iter().zip(spent) {
        let share = 100.0 * s / total;
        println!("{name:26} {:8.1} µs a step  {share:5.1} %", s * per_step);
    }
    println!("{:26} {:8.1} µs a step", "total", total * per_step);
    Ok(())
}
