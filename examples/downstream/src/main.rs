//! Trains a small network holding the downstream layer, saves it, loads it back with
//! `checkpoint::load` (nothing rebuilt by hand) and checks the predictions are identical.
//!
//! ```sh
//! cargo run --manifest-path examples/downstream/Cargo.toml
//! ```

use std::error::Error;
use std::ops::ControlFlow;

use retroprop_downstream_example::{ScaledTanh, ScaledTanhConfig, register};
use retroprop_layers::nalgebra::DMatrix;
use retroprop_layers::{Dense, Init, Layer, Shape};
use retroprop_losses::CrossEntropy;
use retroprop_models::{
    BatchSize, FitConfig, InMemory, Sequential, Summary, checkpoint, evaluate, fit,
};
use retroprop_optim::{Momentum, Sgd};

fn main() -> Result<(), Box<dyn Error>> {
    register()?;
    // three classes of points on three rays
    let x = DMatrix::from_fn(2, 300, |i, j| {
        let angle = (j % 3) as f64 * 2.1 + 0.3;
        let r = 0.5 + (j / 3) as f64 / 100.0;
        if i == 0 {
            r * angle.cos()
        } else {
            r * angle.sin()
        }
    });
    let labels: Vec<usize> = (0..300).map(|j| j % 3).collect();
    let data = InMemory::new(x.clone(), labels, 3)?;
    let mut net = Sequential::<f64>::new(Shape::Flat(2))
        .push(Dense::new(2, 16, Init::XavierUniform { seed: 1 })?)?
        .push(ScaledTanh::new(ScaledTanhConfig::LECUN)?)?
        .push(Dense::new(16, 3, Init::XavierUniform { seed: 2 })?)?;
    println!("{}", Summary::of(&net));
    let mut sgd = Sgd::new(0.1)?.with_momentum(Momentum::Heavy { mu: 0.9 })?;
    fit(
        &mut net,
        &data,
        &CrossEntropy::default(),
        &mut sgd,
        &FitConfig::new(30, BatchSize::Mini(30)).seed(3),
        |_, _| ControlFlow::Continue(()),
    )?;
    let accuracy = evaluate(&net, &data, &CrossEntropy::default())?.accuracy;
    let path = std::env::temp_dir().join(format!("downstream-{}.ckpt", std::process::id()));
    checkpoint::save(&net, &path)?;
    let loaded = checkpoint::load::<f64>(&path)?;
    std::fs::remove_file(&path)?;
    let same = loaded.infer(&x)? == net.infer(&x)?;
    println!(
        "accuracy {:.1}%, reloaded with its hyperparameters: {}, identical predictions: {same}",
        100.0 * accuracy,
        loaded.layers()[1].spec().config
    );
    if !same {
        return Err("the reloaded network predicts differently".into());
    }
    Ok(())
}
