//! Writes two small valid checkpoints into the directory given as the first argument (the seeds
//! of the checkpoint fuzz target) and, if a second directory is given, a small safetensors
//! export with a standardisation (a seed of the safetensors target). `fuzz/make_seeds.sh` runs
//! this.

use retroprop_layers::{Conv2d, Dense, MaxPool2d, Shape};
use retroprop_layers::{Conv2dConfig, Flatten, Init, MaxPool2dConfig, Relu};
use retroprop_models::{Sequential, Standardization, checkpoint, mlp, mlp_classifier};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: seed_checkpoints <directory>")?;
    let dir = std::path::Path::new(&dir);
    checkpoint::save(
        &mlp::<f32>(4, 3, 2, Init::XavierUniform { seed: 1 })?,
        dir.join("mlp.ckpt"),
    )?;
    let cnn = Sequential::<f32>::new(Shape::image(1, 6, 6))
        .push(Conv2d::new(
            Conv2dConfig::new((1, 6, 6), 2, 3).padding(1),
            Init::HeUniform { seed: 2 },
        )?)?
        .push(Relu::new())?
        .push(MaxPool2d::new(MaxPool2dConfig::new((2, 6, 6), 2))?)?
        .push(Flatten::new())?
        .push(Dense::new(18, 3, Init::XavierUniform { seed: 3 })?)?;
    checkpoint::save(&cnn, dir.join("cnn.ckpt"))?;
    if let Some(dir) = std::env::args().nth(2) {
        let standardize = Some(Standardization {
            mean: 0.5,
            std: 0.25,
        });
        let net = mlp_classifier::<f32>(4, 3, 2, standardize, Init::XavierUniform { seed: 4 })?;
        retroprop_models::safetensors::export(
            &net,
            std::path::Path::new(&dir).join("mlp.safetensors"),
        )?;
    }
    Ok(())
}
