//! Writes two small valid checkpoints into the directory given as the first argument: the seeds
//! of the checkpoint fuzz target (`fuzz/make_seeds.sh` runs this).

use retroprop_layers::{Conv2d, Dense, MaxPool2d, Shape};
use retroprop_layers::{Conv2dConfig, Flatten, Init, MaxPool2dConfig, Relu};
use retroprop_models::{Sequential, checkpoint, mlp};

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
    Ok(())
}
