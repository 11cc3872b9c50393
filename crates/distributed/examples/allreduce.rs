//! The cost of one step's communication on this machine: `mpirun -np 2 cargo run --release
//! -p retroprop-distributed --features mpi --example allreduce` times an all-reduce of n_θ
//! values (the fast mode) and an all-gather of k chunk gradients (the reproducible mode), for
//! the MLP's n_θ = 203 530, as rank 0 sees them (median of 50).

use std::time::Instant;

use retroprop_distributed::{Collective, Mpi};

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() -> Result<(), String> {
    let mpi = Mpi::init()?;
    let n_theta = 203_530;
    let mut data = vec![1.0f64; n_theta];
    let time = |f: &mut dyn FnMut()| {
        f(); // warm-up
        median(
            (0..50)
                .map(|_| {
                    mpi.barrier();
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64()
                })
                .collect(),
        )
    };
    let reduce = time(&mut || mpi.all_reduce_sum(&mut data).map(drop).unwrap_or(()));
    let mut rows = vec![(
        "all-reduce of n_θ values (fast mode)".to_string(),
        reduce,
        n_theta,
    )];
    for chunks in [1, 4] {
        let local = vec![1.0f64; chunks * n_theta];
        let gather = time(&mut || {
            mpi.all_gather(&local).map(drop).unwrap_or(());
        });
        rows.push((
            format!("all-gather of {chunks} chunk gradient(s) per rank (reproducible)"),
            gather,
            chunks * n_theta,
        ));
    }
    if mpi.rank() == 0 {
        println!(
            "{} ranks, n_θ = {n_theta}, values sent as f64 (8 bytes)",
            mpi.size()
        );
        for (what, seconds, values) in rows {
            println!(
                "{what:<58} {:>8.3} ms  ({:.1} MB per rank)",
                seconds * 1e3,
                values as f64 * 8.0 / 1e6
            );
        }
    }
    mpi.barrier();
    Ok(())
}
